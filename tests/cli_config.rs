//! `backup --config FILE --job NAME` as a sysadmin runs it: jobs from the
//! configuration, configuration errors, namespace selection, restore
//! options, and the cleanup of an interrupted (killed) backup.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bson::{doc, Document};
use common::{client, populate, run, text};
use mongo_testserver::harness::Target;
use mongo_testserver::TestServer;

fn write_config(dir: &Path, uri: &str, storage: &Path, db: &str, extra: &str) -> String {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[sources.prod]
uri = "{uri}"

[storage.local]
type = "local"
path = "{storage}"

[jobs.nightly]
source = "prod"
storage = "local"
kind = "full"
schedule = "0 2 * * *"
compression = "gzip"
include = ["{db}"]
exclude = ["{db}.events"]
{extra}
"#,
            storage = storage.display()
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn a_configured_job_backs_up_its_selection() {
    let source = Target::new().unwrap();
    let db = source.unique_db("configured");
    let src = client(&source.uri()).await;
    populate(&src, &db).await;
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("backups");
    let config = write_config(work.path(), &source.uri(), &storage, &db, "");
    let out = run(&["backup", "--config", &config, "--job", "nightly"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed = run(&["list", "--config", &config]);
    let listing = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listing
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("nightly") && l.contains("full") && l.contains("complete")),
        "{listing}"
    );
    let dir = std::fs::read_dir(storage.join("nightly"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    assert!(
        manifest.contains("\"source\": \"prod\""),
        "the source's name, not its URI"
    );
    assert!(
        !manifest.contains("\"events\""),
        "the excluded collection is not in the backup"
    );
    assert!(dir.join(&db).join("items.bson.gz").is_file());
    assert!(!dir.join(&db).join("events.bson.gz").exists());

    // --no-indexes leaves secondary indexes out of the restore.
    let target = TestServer::start().unwrap();
    let restored = run(&[
        "restore",
        "--from",
        &dir.display().to_string(),
        "--to",
        &target.uri(),
        "--no-indexes",
    ]);
    assert_eq!(restored.status.code(), Some(0), "{}", text(&restored));
    let names = client(&target.uri())
        .await
        .database(&db)
        .collection::<Document>("items")
        .list_index_names()
        .await
        .unwrap();
    assert_eq!(names, ["_id_"]);
    let _ = src.database(&db).drop().await;
}

#[test]
fn configuration_mistakes_exit_78_with_every_error_located() {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("b");
    let config = write_config(
        work.path(),
        "mongodb://127.0.0.1:1/",
        &storage,
        "app",
        "retention = \"30 days\"\nparallel_collectons = 4\n",
    );
    let out = run(&["backup", "--config", &config, "--job", "nightly"]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{config}:17:13: jobs.nightly.retention: invalid duration"
        )),
        "line numbers: {stderr}"
    );
    assert!(stderr.contains("jobs.nightly.retention"), "{stderr}");
    assert!(
        stderr.contains("parallel_collectons") && stderr.contains("parallel_collections"),
        "a did-you-mean hint: {stderr}"
    );
    let missing = run(&[
        "backup",
        "--config",
        &work.path().join("nope.toml").display().to_string(),
        "--job",
        "x",
    ]);
    assert_eq!(missing.status.code(), Some(78), "{}", text(&missing));
    let good = write_config(work.path(), "mongodb://127.0.0.1:1/", &storage, "app", "");
    let unknown = run(&["backup", "--config", &good, "--job", "weekly"]);
    assert_eq!(unknown.status.code(), Some(78), "{}", text(&unknown));
    assert!(String::from_utf8_lossy(&unknown.stderr)
        .contains("there is no job \"weekly\"; the jobs are: nightly"));
}

#[tokio::test]
async fn a_killed_backup_never_looks_complete_and_the_next_run_cleans_up() {
    let source = Target::new().unwrap();
    let db = source.unique_db("killed");
    let src = client(&source.uri()).await;
    src.database(&db)
        .collection::<Document>("big")
        .insert_many((0..5000).map(|i| doc! { "_id": i }))
        .await
        .unwrap();
    let admin = src.database("admin");
    admin
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": "alwaysOn",
            "data": { "failCommands": ["getMore"], "blockConnection": true, "blockTimeMS": 300, "appName": "mongo-backupd" } })
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("backups");
    let config = write_config(work.path(), &source.uri(), &storage, &db, "");
    let mut child = common::bin()
        .args(["backup", "--config", &config, "--job", "nightly"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let job = storage.join("nightly");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_dir(&job).is_ok_and(|mut d| {
        d.any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".partial-")
        })
    }) {
        assert!(Instant::now() < deadline, "the backup never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let listed = run(&["list", "--config", &config]);
    let listing = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listing.contains("partial"),
        "the leftover shows as partial: {listing}"
    );
    assert!(!listing.contains("complete"), "{listing}");
    admin
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": "off" })
        .await
        .unwrap();
    let next = run(&["backup", "--config", &config, "--job", "nightly"]);
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    assert!(
        String::from_utf8_lossy(&next.stderr).contains("the leftovers of an interrupted backup"),
        "{}",
        text(&next)
    );
    let entries: Vec<String> = std::fs::read_dir(&job)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.len(), 1, "only the new backup: {entries:?}");
    assert!(!entries[0].starts_with('.'));
    let _ = src.database(&db).drop().await;
}
