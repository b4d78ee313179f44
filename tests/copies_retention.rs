//! Retention at a copy location with its own `retention` age, end to end
//! through the CLI against real S3 (s3s-fs) and Azure (Azurite) servers:
//! a location that keeps longer than the primary keeps what the primary
//! deletes; one that keeps shorter deletes its aged copies (every object,
//! not just the manifest) while the primary keeps them; and an
//! incremental's full stays wherever the incremental does, so a restore
//! chain is never broken. Aged backups are copies of real ones with their
//! manifests moved back in time, as tests/prune.rs makes them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::{Path, PathBuf};

use bson::{doc, Document};
use common::objstore::{Azurite, ObjectServer, S3Server};
use common::{client, run, text};
use mongo_backupd::storage::object::ObjectLocation;
use mongo_testserver::harness::Target;

const PREFIX: &str = "mongo-backupd/";

fn write_config(path: &Path, work: &Path, uri: &str, db: &str, offsite: &str, keep: &str) {
    std::fs::write(
        path,
        format!(
            "[daemon]\nstate_dir = \"{state}\"\n\n[sources.prod]\nuri = \"{uri}\"\n\n\
             [storage.local]\ntype = \"local\"\npath = \"{storage}\"\n\n\
             {offsite}retention = \"{keep}\"\n\n\
             [jobs.nightly]\nsource = \"prod\"\nstorage = \"local\"\ncopies = [\"offsite\"]\n\
             kind = \"full\"\nschedule = \"0 2 * * *\"\nretention = \"30d\"\ninclude = [\"{db}\"]\n\n\
             [jobs.hourly]\nsource = \"prod\"\nstorage = \"local\"\ncopies = [\"offsite\"]\n\
             kind = \"incremental\"\nschedule = \"0 * * * *\"\nretention = \"30d\"\n",
            state = work.join("state").display(),
            storage = work.join("backups").display(),
        ),
    )
    .unwrap();
}

/// Copies backup directory `backup` beside itself as if it had been taken
/// `days` earlier (times, oplog positions and id moved back), with
/// `parent` as its parent when given; returns the new id.
fn aged(backup: &Path, days: i64, parent: Option<&str>) -> String {
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    for key in ["started_at", "finished_at"] {
        let t: chrono::DateTime<chrono::Utc> = m[key].as_str().unwrap().parse().unwrap();
        m[key] = (t - chrono::Duration::days(days)).to_rfc3339().into();
    }
    for key in ["oplog_start", "oplog_end"] {
        let t = m[key]["t"].as_u64().unwrap() - days as u64 * 86_400;
        m[key]["t"] = t.into();
    }
    if let Some(p) = parent {
        m["parent"] = p.into();
    }
    let when: chrono::DateTime<chrono::Utc> = m["finished_at"].as_str().unwrap().parse().unwrap();
    let id = format!(
        "{}-{}",
        when.format("%Y%m%dT%H%M%SZ"),
        m["kind"].as_str().unwrap()
    );
    m["id"] = id.clone().into();
    let dest = backup.parent().unwrap().join(&id);
    for file in common::walk(backup) {
        let to = dest.join(file.strip_prefix(backup).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&file, to).unwrap();
    }
    std::fs::write(
        dest.join("manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
    id
}

fn local(storage: &Path, job: &str, id: &str) -> PathBuf {
    storage.join(job).join(id)
}

fn only_backup(dir: &Path) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.pop().unwrap()
}

/// The ids `list --location offsite` shows complete.
fn complete_offsite(config: &str) -> Vec<String> {
    let out = run(&["list", "--config", config, "--location", "offsite"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.ends_with("complete"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// Every object key (relative to the location's prefix) in the store.
async fn object_keys(server: &dyn ObjectServer) -> Vec<String> {
    let store = ObjectLocation::open(&server.storage_location("offsite", PREFIX, 1 << 20)).unwrap();
    store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect()
}

fn objects_of<'a>(keys: &'a [String], job: &str, id: &str) -> Vec<&'a String> {
    let prefix = format!("{job}/{id}/");
    keys.iter().filter(|k| k.starts_with(&prefix)).collect()
}

/// The decision line for `id` in the part of `prune` output about
/// storage `location`.
fn decision(out: &str, location: &str, id: &str) -> String {
    let header = format!("{location} (");
    let mut lines = out.lines().skip_while(|l| !l.starts_with(&header));
    assert!(lines.next().is_some(), "no section {location} in:\n{out}");
    lines
        .take_while(|l| !l.starts_with("local (") && !l.starts_with("offsite ("))
        .find(|l| l.contains(id))
        .unwrap_or_else(|| panic!("{id} not in section {location} of:\n{out}"))
        .to_string()
}

fn backup(config: &str, job: &str) -> String {
    let out = run(&["backup", "--config", config, "--job", job]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    text(&out)
}

fn prune(config: &str, dry_run: bool) -> String {
    let mut args = vec!["prune", "--config", config];
    if dry_run {
        args.push("--dry-run");
    }
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn retention_per_location(server: &mut dyn ObjectServer) {
    let target = Target::new().unwrap();
    let db = target.unique_db("copies_ret");
    let source = client(&target.uri()).await;
    let items = source.database(&db).collection::<Document>("items");
    items
        .insert_many((0..20).map(|i| doc! { "_id": i }))
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("backups");
    let config_path = work.path().join("config.toml");
    let config = config_path.display().to_string();
    let offsite = server.toml_section("offsite");
    // First the location keeps longer than the primary (90 days, 30 here).
    write_config(
        &config_path,
        work.path(),
        &target.uri(),
        &db,
        &offsite,
        "90d",
    );

    // A real full and an incremental on it, then the same moved back in
    // time: fulls 40, 20 and 10 days old, and a 5-day-old incremental
    // whose full is the 10-day-old one.
    backup(&config, "nightly");
    let full = only_backup(&storage.join("nightly"));
    items.insert_one(doc! { "_id": "later" }).await.unwrap();
    backup(&config, "hourly");
    let incr = only_backup(&storage.join("hourly"));
    let full_40 = aged(&full, 40, None);
    let full_20 = aged(&full, 20, None);
    let full_10 = aged(&full, 10, None);
    let incr_5 = aged(&incr, 5, Some(&full_10));

    // The next runs copy everything the location keeps, aged ones included.
    let out = backup(&config, "nightly");
    assert!(out.contains("4 backups copied"), "{out}");
    let out = backup(&config, "hourly");
    assert!(out.contains("2 backups copied"), "{out}");
    let listed = complete_offsite(&config);
    for id in [&full_40, &full_20, &full_10, &incr_5] {
        assert!(listed.contains(id), "{id} not copied: {listed:?}");
    }
    assert_eq!(listed.len(), 8, "{listed:?}");

    // The primary deletes its 40-day-old full; the location keeps it.
    let plan = prune(&config, true);
    assert!(
        decision(&plan, "local", &full_40).contains("DELETE"),
        "{plan}"
    );
    let kept = decision(&plan, "offsite", &full_40);
    assert!(
        kept.contains("KEEP") && kept.contains("younger than retention 90d"),
        "{plan}"
    );
    let done = prune(&config, false);
    assert!(!local(&storage, "nightly", &full_40).exists(), "{done}");
    assert!(complete_offsite(&config).contains(&full_40), "{done}");
    assert!(!objects_of(&object_keys(server).await, "nightly", &full_40).is_empty());

    // Now the location keeps shorter than the primary: 7 days.
    write_config(
        &config_path,
        work.path(),
        &target.uri(),
        &db,
        &offsite,
        "7d",
    );
    let before = object_keys(server).await;
    let plan = prune(&config, true);
    for id in [&full_40, &full_20] {
        let line = decision(&plan, "offsite", id);
        assert!(
            line.contains("DELETE") && line.contains("older than retention 7d"),
            "{plan}"
        );
    }
    // The 10-day-old full is past 7 days too, but a kept incremental
    // needs it.
    let base = decision(&plan, "offsite", &full_10);
    assert!(
        base.contains("KEEP") && base.contains(&format!("the base of kept incremental {incr_5}")),
        "{plan}"
    );
    assert!(
        decision(&plan, "offsite", &incr_5).contains("KEEP"),
        "{plan}"
    );
    assert!(
        decision(&plan, "local", &full_20).contains("KEEP"),
        "{plan}"
    );
    assert!(plan.contains("Dry run: nothing was deleted."), "{plan}");
    assert_eq!(
        object_keys(server).await,
        before,
        "a dry run deletes nothing"
    );

    let done = prune(&config, false);
    assert!(done.contains("Deleted 2 backups from offsite"), "{done}");
    let keys = object_keys(server).await;
    for id in [&full_40, &full_20] {
        let left = objects_of(&keys, "nightly", id);
        assert!(left.is_empty(), "objects of {id} remain: {left:?}");
    }
    let listed = complete_offsite(&config);
    assert!(!listed.contains(&full_40) && !listed.contains(&full_20));
    assert_eq!(listed.len(), 6, "{listed:?}");
    // The chain at the location is whole: the incremental, its full, and
    // every object of both.
    for (job, id) in [("nightly", &full_10), ("hourly", &incr_5)] {
        assert!(listed.contains(id), "{id} was deleted: {listed:?}");
        let out = run(&[
            "verify",
            "--config",
            &config,
            "--location",
            "offsite",
            &format!("{job}/{id}"),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    // The primary keeps what only the location's retention deleted.
    assert!(local(&storage, "nightly", &full_20).is_dir());
    assert!(local(&storage, "nightly", &full_10).is_dir());
    assert!(local(&storage, "hourly", &incr_5).is_dir());

    // What the location's retention deleted is not uploaded again by the
    // next run, though the primary still holds it: only the new backup is.
    let out = backup(&config, "nightly");
    assert!(out.contains("1 backups copied"), "{out}");
    let listed = complete_offsite(&config);
    assert!(!listed.contains(&full_40) && !listed.contains(&full_20));
    assert_eq!(listed.len(), 7, "{listed:?}");

    // And the newest chain still restores from the location alone.
    let restored = format!("{db}_r");
    let out = run(&[
        "restore",
        "--config",
        &config,
        "--location",
        "offsite",
        "--at",
        "latest",
        "--job",
        "hourly",
        "--to",
        &target.uri(),
        "--ns-from",
        &format!("{db}.*"),
        "--ns-to",
        &format!("{restored}.*"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let back = source
        .database(&restored)
        .collection::<Document>("items")
        .count_documents(doc! {})
        .await
        .unwrap();
    assert_eq!(back, 21);
    let _ = source.database(&db).drop().await;
    let _ = source.database(&restored).drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_location_retention_prunes_copies_on_its_own_age() {
    let mut server = S3Server::start();
    retention_per_location(&mut server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_location_retention_prunes_copies_on_its_own_age() {
    let mut server = Azurite::start();
    retention_per_location(&mut server).await;
}
