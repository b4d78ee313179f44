//! `kind = "drill"` and `kind = "standby"` jobs: what they read into the
//! model (source and storage inherited from `from`), their defaults, and
//! each mistake's message and position.

use std::path::PathBuf;

use super::{at, errors, parse_ok, the_error, BASE};
use crate::config::{DrillPoint, JobKind, RestoreTarget};

/// BASE (lines 1-7), a scratch source (8-9), a full job "nightly" (11-15)
/// and `[jobs.check]` on line 17 with `body` from line 18.
fn with_reader(body: &str) -> String {
    format!(
        "{BASE}[sources.scratch]\nuri = \"mongodb://scratch:27017/\"\n\n\
         [jobs.nightly]\nsource = \"prod\"\nstorage = \"local\"\nkind = \"full\"\n\
         schedule = \"0 2 * * *\"\n\n[jobs.check]\n{body}"
    )
}

fn drill(extra: &str) -> String {
    with_reader(&format!(
        "kind = \"drill\"\nfrom = \"nightly\"\ntarget = \"scratch\"\nschedule = \"0 6 * * 0\"\n{extra}"
    ))
}

#[test]
fn a_drill_reads_its_from_jobs_backups_with_safe_defaults() {
    let cfg = parse_ok(&drill(""));
    let job = &cfg.jobs["check"];
    assert_eq!(job.kind, JobKind::Drill);
    // Listings and alerts find the drilled backups through these.
    assert_eq!(job.source, "prod");
    assert_eq!(job.storage, "local");
    assert_eq!(
        job.restore_target,
        Some(RestoreTarget {
            from: "nightly".into(),
            target: "scratch".into(),
            prefix: "drill_".into(),
            identity_file: None,
            point: DrillPoint::Newest,
            sample: 100,
        })
    );
    assert!(!job.kind.makes_backups());
}

#[test]
fn drill_settings_are_read() {
    let cfg = parse_ok(&drill(
        "prefix = \"verify-\"\npoint = \"random\"\nsample = 5\nidentity_file = \"/etc/mongo-backupd/drill.key\"\n",
    ));
    let target = cfg.jobs["check"].restore_target.clone().expect("a target");
    assert_eq!(target.prefix, "verify-");
    assert_eq!(target.point, DrillPoint::Random);
    assert_eq!(target.sample, 5);
    assert_eq!(
        target.identity_file,
        Some(PathBuf::from("/etc/mongo-backupd/drill.key"))
    );
}

#[test]
fn a_standby_has_no_prefix_by_default_and_may_come_before_its_job_in_the_file() {
    let text = format!(
        "{BASE}[sources.standby]\nuri = \"mongodb://standby:27017/\"\n\n\
         [jobs.follow]\nkind = \"standby\"\nfrom = \"hourly\"\ntarget = \"standby\"\n\
         schedule = \"*/5 * * * *\"\n\n\
         [jobs.hourly]\nsource = \"prod\"\nstorage = \"local\"\nkind = \"incremental\"\n\
         schedule = \"0 * * * *\"\n"
    );
    let cfg = parse_ok(&text);
    let job = &cfg.jobs["follow"];
    assert_eq!(job.kind, JobKind::Standby);
    let target = job.restore_target.as_ref().expect("a target");
    assert_eq!(
        (target.from.as_str(), target.prefix.as_str()),
        ("hourly", "")
    );
}

#[test]
fn from_must_name_a_full_or_incremental_job() {
    let error = the_error(&with_reader(
        "kind = \"drill\"\nfrom = \"nighty\"\ntarget = \"scratch\"\nschedule = \"0 6 * * 0\"\n",
    ));
    assert_eq!(
        error,
        at(
            19,
            8,
            "jobs.check.from: there is no job \"nighty\" (full and incremental jobs: nightly) (hint: did you mean \"nightly\"?)"
        )
    );
    let text = format!(
        "{}\n[jobs.adhoc]\nsource = \"prod\"\nstorage = \"local\"\nkind = \"manual\"\n",
        with_reader(
            "kind = \"drill\"\nfrom = \"adhoc\"\ntarget = \"scratch\"\nschedule = \"0 6 * * 0\"\n"
        )
    );
    let error = the_error(&text);
    assert!(error.contains("job \"adhoc\" is a manual job"), "{error}");
}

#[test]
fn backup_settings_are_refused_with_the_reason() {
    let error = the_error(&drill("retention = \"7d\"\n"));
    assert!(error.starts_with(&at(
        22,
        1,
        "jobs.check.retention: drill jobs have no retention"
    )));
    assert!(
        error.contains("reads the backups of the job named in `from`"),
        "{error}"
    );
    let all = errors(&drill("source = \"prod\"\ncompression = \"zstd\"\n"));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(all[0].contains("drill jobs have no source"), "{all:#?}");
    assert!(all[1].contains("unknown key \"compression\""), "{all:#?}");
}

#[test]
fn a_drill_needs_a_schedule_a_target_and_a_safe_prefix() {
    let error = the_error(&with_reader(
        "kind = \"drill\"\nfrom = \"nightly\"\ntarget = \"scratch\"\n",
    ));
    assert!(
        error.contains("missing key \"schedule\"") || error.contains("schedule"),
        "{error}"
    );
    let error = the_error(&with_reader(
        "kind = \"drill\"\nfrom = \"nightly\"\ntarget = \"nowhere\"\nschedule = \"0 6 * * 0\"\n",
    ));
    assert!(
        error.contains("target \"nowhere\" is not defined"),
        "{error}"
    );
    let error = the_error(&drill("prefix = \"\"\n"));
    assert!(
        error.contains("a drill's prefix must not be empty"),
        "{error}"
    );
    let error = the_error(&drill("prefix = \"a.b\"\n"));
    assert!(error.contains("may hold only letters, digits"), "{error}");
    let error = the_error(&drill("point = \"oldest\"\n"));
    assert!(error.contains("oldest"), "{error}");
}

#[test]
fn an_encrypted_job_needs_an_identity_file_to_be_drilled() {
    let recipient = crate::storage::crypt::generate().1;
    let text = format!(
        "{BASE}[sources.scratch]\nuri = \"mongodb://scratch:27017/\"\n\n\
         [jobs.nightly]\nsource = \"prod\"\nstorage = \"local\"\nkind = \"full\"\n\
         schedule = \"0 2 * * *\"\nencrypt_to = [\"{recipient}\"]\n\n[jobs.check]\n\
         kind = \"drill\"\nfrom = \"nightly\"\ntarget = \"scratch\"\nschedule = \"0 6 * * 0\"\n"
    );
    let error = the_error(&text);
    assert!(
        error.contains("job \"nightly\" encrypts its backups"),
        "{error}"
    );
    assert!(error.contains("identity_file"), "{error}");
}

#[test]
fn a_standby_on_its_own_source_needs_a_prefix() {
    let text = format!(
        "{BASE}[jobs.hourly]\nsource = \"prod\"\nstorage = \"local\"\nkind = \"incremental\"\n\
         schedule = \"0 * * * *\"\n\n[jobs.follow]\nkind = \"standby\"\nfrom = \"hourly\"\n\
         target = \"prod\"\nschedule = \"*/5 * * * *\"\n"
    );
    let error = the_error(&text);
    assert!(
        error.contains("a standby there would drop and overwrite the source's own databases"),
        "{error}"
    );
    assert!(error.contains("prefix = \"standby_\""), "{error}");
    let cfg = parse_ok(&text.replace(
        "schedule = \"*/5 * * * *\"",
        "schedule = \"*/5 * * * *\"\nprefix = \"sb_\"",
    ));
    assert_eq!(
        cfg.jobs["follow"].restore_target.as_ref().unwrap().prefix,
        "sb_"
    );
}
