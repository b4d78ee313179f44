//! A backup that cannot complete must fail loudly, exit non-zero and leave
//! nothing that looks complete: dropped connections, a server that dies,
//! command errors, a full disk, SIGINT, and no server at all.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bson::{doc, Document};
use common::{client, run, text};
use mongo_testserver::harness::{skip_external, Target};

async fn seed(target: &Target, db: &str, docs: i32, pad: usize) {
    let c = client(&target.uri()).await;
    c.database(db)
        .collection::<Document>("big")
        .insert_many((0..docs).map(|i| doc! { "_id": i, "pad": "p".repeat(pad) }))
        .await
        .unwrap();
    c.database(db)
        .collection::<Document>("small")
        .insert_one(doc! { "x": 1 })
        .await
        .unwrap();
}

async fn fail_point(target: &Target, mode: bson::Bson, data: Document) {
    client(&target.uri())
        .await
        .database("admin")
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": mode, "data": data })
        .await
        .unwrap();
}

async fn fail_point_off(target: &Target) {
    fail_point(target, "off".into(), doc! {}).await;
}

fn backup_args<'a>(uri: &'a str, out: &'a Path, db: &'a str) -> Vec<String> {
    vec![
        "backup".into(),
        "--uri".into(),
        uri.into(),
        "--out".into(),
        out.display().to_string(),
        "--job".into(),
        "faulty".into(),
        "--include".into(),
        db.into(),
        "--compression".into(),
        "none".into(),
    ]
}

/// Nothing under the job's directory: no backup, and no leftovers.
fn assert_nothing_kept(out: &Path) {
    let job = out.join("faulty");
    let entries: Vec<String> = std::fs::read_dir(&job)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        entries.is_empty(),
        "left behind in {}: {entries:?}",
        job.display()
    );
    let listed = run(&["list", "--storage", &out.display().to_string()]);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).lines().count(),
        1,
        "only the header: {}",
        text(&listed)
    );
}

fn run_backup(args: &[String]) -> std::process::Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&refs)
}

#[tokio::test]
async fn a_connection_dropped_mid_collection_fails_the_backup() {
    let target = Target::new().unwrap();
    let db = target.unique_db("dropmid");
    seed(&target, &db, 3000, 10).await;
    fail_point(
        &target,
        doc! { "times": 1 }.into(),
        doc! { "failCommands": ["getMore"], "closeConnection": true, "appName": "mongo-backupd" },
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let result = run_backup(&backup_args(&target.uri(), out.path(), &db));
    fail_point_off(&target).await;
    assert_eq!(result.status.code(), Some(1), "{}", text(&result));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains(&format!(
            "backup of job \"faulty\" failed: reading {db}.big failed"
        )),
        "{stderr}"
    );
    assert_nothing_kept(out.path());
}

#[tokio::test]
async fn a_server_that_stops_mid_backup_fails_it() {
    let target = Target::new().unwrap();
    let Some(server) = target.local() else {
        return skip_external("a_server_that_stops_mid_backup_fails_it");
    };
    let db = target.unique_db("stopmid");
    seed(&target, &db, 3000, 10).await;
    server.stop_on("getMore", 1);
    let out = tempfile::tempdir().unwrap();
    let result = run_backup(&backup_args(&target.uri(), out.path(), &db));
    assert!(!server.is_running());
    assert_ne!(result.status.code(), Some(0), "{}", text(&result));
    assert!(
        String::from_utf8_lossy(&result.stderr).contains("failed"),
        "{}",
        text(&result)
    );
    assert_nothing_kept(out.path());
}

#[tokio::test]
async fn a_command_error_names_the_step_and_the_server_error() {
    let target = Target::new().unwrap();
    let db = target.unique_db("cmderr");
    seed(&target, &db, 10, 10).await;
    fail_point(
        &target,
        doc! { "times": 1 }.into(),
        doc! { "failCommands": ["listIndexes"], "errorCode": 13, "appName": "mongo-backupd" },
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let result = run_backup(&backup_args(&target.uri(), out.path(), &db));
    fail_point_off(&target).await;
    assert_eq!(result.status.code(), Some(1), "{}", text(&result));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("listing the indexes of"), "{stderr}");
    assert!(stderr.contains("Unauthorized"), "{stderr}");
    assert_nothing_kept(out.path());
}

#[tokio::test]
async fn a_full_disk_fails_with_exit_74_and_leaves_nothing() {
    let target = Target::new().unwrap();
    let db = target.unique_db("diskfull");
    seed(&target, &db, 2000, 1000).await; // ~2 MB, far beyond the disk
    let out = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(out.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("a_full_disk_fails_with_exit_74_and_leaves_nothing: skipped: mounting a small tmpfs needs root");
        return;
    }
    let result = run_backup(&backup_args(&target.uri(), out.path(), &db));
    let leftovers: Vec<_> = std::fs::read_dir(out.path().join("faulty"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    let _ = std::process::Command::new("umount")
        .arg(out.path())
        .status();
    assert_eq!(result.status.code(), Some(74), "{}", text(&result));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.to_lowercase().contains("full"), "{stderr}");
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn sigint_mid_backup_exits_130_and_removes_the_partial_backup() {
    let target = Target::new().unwrap();
    let db = target.unique_db("sigint");
    seed(&target, &db, 5000, 10).await;
    // Each getMore of the backup takes a while, so it is surely running.
    fail_point(
        &target,
        "alwaysOn".into(),
        doc! { "failCommands": ["getMore"], "blockConnection": true, "blockTimeMS": 300, "appName": "mongo-backupd" },
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let child = common::bin()
        .args(backup_args(&target.uri(), out.path(), &db))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until the backup has started writing.
    let job = out.path().join("faulty");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let started = std::fs::read_dir(&job)
            .map(|mut d| {
                d.any(|e| {
                    e.unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with(".partial-")
                })
            })
            .unwrap_or(false);
        if started {
            break;
        }
        assert!(Instant::now() < deadline, "the backup never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let result = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    fail_point_off(&target).await;
    assert_eq!(result.status.code(), Some(130), "{}", text(&result));
    assert!(
        String::from_utf8_lossy(&result.stderr).contains("interrupted"),
        "{}",
        text(&result)
    );
    assert_nothing_kept(out.path());
}

#[test]
fn no_server_at_all_exits_69() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tempfile::tempdir().unwrap();
    let uri = format!("mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=500");
    let result = run_backup(&backup_args(&uri, out.path(), "app"));
    assert_eq!(result.status.code(), Some(69), "{}", text(&result));
    assert!(String::from_utf8_lossy(&result.stderr)
        .contains(&format!("cannot reach MongoDB at 127.0.0.1:{port}")));
    assert_nothing_kept(out.path());
}
