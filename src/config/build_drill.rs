//! `[jobs.NAME]` tables of kind `drill` and `standby`: jobs that read the
//! backups of another job (`from`) and restore them into a database of
//! their own (`target`, a `[sources.NAME]`).
//!
//! They are built after the backup jobs because they take their source
//! and storage from the job they read: a drill of job "nightly" lists,
//! alerts and reports against nightly's backups, and checking `from`
//! needs nightly to have been parsed already.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono_tz::Tz;

use super::build::{absolute_path, time_zone};
use super::build_alerts::mailboxes;
use super::build_job::{bool_or, reference, schedule, stale_after, undefined, Names};
use super::error::Sink;
use super::model::{CompressionSetting, DrillPoint, Job, JobKind, RestoreTarget, RetentionPolicy};
use super::reader::Section;

const DRILL_KEYS: [&str; 13] = [
    "kind",
    "from",
    "target",
    "prefix",
    "identity_file",
    "point",
    "sample",
    "schedule",
    "timezone",
    "catch_up",
    "enabled",
    "alert_to",
    "stale_after",
];
const STANDBY_KEYS: [&str; 10] = [
    "kind",
    "from",
    "target",
    "prefix",
    "identity_file",
    "schedule",
    "timezone",
    "catch_up",
    "enabled",
    "alert_to",
];
/// Keys that belong to backup jobs: named in the error so the reader
/// knows why they do not apply here.
const BACKUP_ONLY: [&str; 4] = ["source", "storage", "copies", "retention"];
/// Drill targets get a prefix by default so a drill can never land on the
/// databases of a server it shares.
const DRILL_PREFIX: &str = "drill_";
/// Enough documents to catch a damaged file, few enough to check quickly.
const DEFAULT_SAMPLE: i64 = 100;
/// MongoDB database names are at most 64 bytes: keep room for the name.
const MAX_PREFIX: usize = 32;

/// Peeks at `kind` without reporting anything: the drill and standby
/// tables are built in a second pass.
pub(crate) fn is_reader(section: &Section<'_>) -> bool {
    section
        .entries()
        .find(|(k, _)| *k == "kind")
        .and_then(|(_, item)| item.as_str())
        .is_some_and(|kind| kind == "drill" || kind == "standby")
}

/// A drill or standby job; `jobs` are the backup jobs already built.
pub(crate) fn job(
    sink: &mut Sink<'_>,
    name: &str,
    section: &Section<'_>,
    names: &Names,
    jobs: &BTreeMap<String, Job>,
    default_tz: Tz,
) -> Option<Job> {
    let kind = match section.string(sink, "kind")?.value {
        "drill" => JobKind::Drill,
        _ => JobKind::Standby,
    };
    let known: &[&str] = match kind {
        JobKind::Drill => &DRILL_KEYS,
        _ => &STANDBY_KEYS,
    };
    for key in BACKUP_ONLY {
        if section.contains(key) {
            sink.error(
                section.key_span(key),
                &section.key_path(key),
                format!("{kind} jobs have no {key}"),
                Some(format!(
                    "a {kind} job reads the backups of the job named in `from` (its source, \
                     storage and retention); remove {key}"
                )),
            );
        }
    }
    let handled: Vec<&str> = BACKUP_ONLY.to_vec();
    section.reject_unknown_except(sink, known, &handled);

    let from = from(sink, section, kind, jobs);
    let target = reference(sink, section, "target", "sources", &names.sources);
    let prefix = prefix(sink, section, kind);
    let identity_file = match section.contains("identity_file") {
        true => absolute_path(sink, section, "identity_file").map(Some),
        false => Some(None),
    };
    let point = match (kind, section.contains("point")) {
        (JobKind::Drill, true) => section.choice(
            sink,
            "point",
            "drill point",
            &["newest", "random"],
            |p| match p {
                "newest" => Some(DrillPoint::Newest),
                "random" => Some(DrillPoint::Random),
                _ => None,
            },
        ),
        _ => Some(DrillPoint::Newest),
    };
    let sample = match section.contains("sample") {
        true => section.integer_in(sink, "sample", 0, 100_000),
        false => Some(DEFAULT_SAMPLE),
    }
    .and_then(|n| u32::try_from(n).ok());
    let schedule = schedule(sink, section, Some(kind));
    let timezone = match section.contains("timezone") {
        true => time_zone(sink, section, "timezone"),
        false => Some(default_tz),
    };
    let catch_up = match section.contains("catch_up") {
        true => section
            .duration(sink, "catch_up", "wdhms")
            .map(|d| Some(d.value)),
        false => Some(None),
    };
    let enabled = bool_or(sink, section, "enabled", true);
    let alert_to = match section.contains("alert_to") {
        true => mailboxes(sink, section, "alert_to"),
        false => Some(Vec::new()),
    };
    let stale_after = stale_after(sink, section, Some(kind), schedule.as_ref());

    let from_job = jobs.get(from.as_deref()?)?;
    let (target, prefix) = (target?, prefix?);
    if kind == JobKind::Standby && target == from_job.source && prefix.is_empty() {
        // Seeding drops the databases it restores: on the source itself
        // that would destroy the data being backed up.
        sink.error(
            section.value_span("target"),
            &section.key_path("target"),
            format!(
                "target {target:?} is the source of job {:?}: a standby there would drop and \
                 overwrite the source's own databases",
                from_job.name
            ),
            Some(
                "point target at another [sources.NAME] (the standby server), or set a prefix \
                 such as prefix = \"standby_\""
                    .to_string(),
            ),
        );
        return None;
    }
    let identity_file = identity_file?;
    if from_job.encryption.is_some() && identity_file.is_none() {
        sink.error(
            section.key_span("from"),
            &section.key_path("from"),
            format!(
                "job {:?} encrypts its backups, so this {kind} job needs the secret key to read \
                 them",
                from_job.name
            ),
            Some(
                "add identity_file = \"/etc/mongo-backupd/drill.key\" (mode 0600); it lets this \
                 server decrypt every backup, so consider running drills on another machine"
                    .to_string(),
            ),
        );
        return None;
    }
    Some(Job {
        name: name.to_string(),
        source: from_job.source.clone(),
        storage: from_job.storage.clone(),
        copies: Vec::new(),
        encryption: None,
        kind,
        schedule: schedule?,
        timezone: timezone?,
        // Unused: drills and standbys keep no backups.
        retention: RetentionPolicy::max_age(Duration::ZERO),
        compression: CompressionSetting::None,
        selection: from_job.selection.clone(),
        include_users: from_job.include_users,
        full_on_gap: false,
        parallel_collections: from_job.parallel_collections,
        catch_up: catch_up?,
        enabled: enabled?,
        alert_to: alert_to?,
        stale_after: stale_after?,
        restore_target: Some(RestoreTarget {
            from: from_job.name.clone(),
            target,
            prefix,
            identity_file,
            point: point?,
            sample: sample?,
        }),
    })
}

/// `from`: a defined full or incremental job.
fn from(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    kind: JobKind,
    jobs: &BTreeMap<String, Job>,
) -> Option<String> {
    let readable: Vec<String> = jobs
        .values()
        .filter(|j| matches!(j.kind, JobKind::Full | JobKind::Incremental))
        .map(|j| j.name.clone())
        .collect();
    let value = section.required_string(
        sink,
        "from",
        Some(format!(
            "from = \"JOB\": the full or incremental job whose backups this {kind} job restores"
        )),
    )?;
    let name = value.value;
    let problem = match jobs.get(name) {
        Some(job) if !matches!(job.kind, JobKind::Full | JobKind::Incremental) => Some((
            format!("job {name:?} is a {} job", job.kind),
            "name a full or incremental job: drills and standbys follow a chain of scheduled \
             backups"
                .to_string(),
        )),
        Some(_) => None,
        None => {
            let (_, hint) = undefined("jobs", name, &readable);
            let listed = match readable.is_empty() {
                true => "there are no full or incremental jobs".to_string(),
                false => format!("full and incremental jobs: {}", readable.join(", ")),
            };
            Some((format!("there is no job {name:?} ({listed})"), hint))
        }
    };
    if let Some((message, hint)) = problem {
        sink.error(value.span, &section.key_path("from"), message, Some(hint));
        return None;
    }
    Some(name.to_string())
}

/// `prefix`: letters, digits, `_` and `-`, so the renamed databases are
/// valid names on every platform MongoDB runs on.
fn prefix(sink: &mut Sink<'_>, section: &Section<'_>, kind: JobKind) -> Option<String> {
    if !section.contains("prefix") {
        return Some(match kind {
            JobKind::Drill => DRILL_PREFIX.to_string(),
            _ => String::new(),
        });
    }
    let value = section.string(sink, "prefix")?;
    let text = value.value;
    let valid = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let problem = if kind == JobKind::Drill && text.is_empty() {
        Some((
            "a drill's prefix must not be empty".to_string(),
            "the drill drops what it restored: without a prefix it would drop databases named \
             like the source's; keep the default \"drill_\""
                .to_string(),
        ))
    } else if !valid {
        Some((
            format!("prefix {text:?} may hold only letters, digits, \"_\" and \"-\""),
            "e.g. prefix = \"drill_\"".to_string(),
        ))
    } else if text.len() > MAX_PREFIX {
        Some((
            format!("prefix {text:?} is longer than {MAX_PREFIX} bytes"),
            "MongoDB database names are at most 64 bytes; keep the prefix short".to_string(),
        ))
    } else {
        None
    };
    if let Some((message, hint)) = problem {
        sink.error(value.span, &section.key_path("prefix"), message, Some(hint));
        return None;
    }
    Some(text.to_string())
}
