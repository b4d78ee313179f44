//! Backing up a standalone mongod, which has no oplog: the real binary must
//! still take a complete, verifiable, restorable backup, and say plainly
//! that it is not consistent to one instant. The source is always a local
//! standalone test server, even with MONGODB_TEST_URI set (that names a
//! replica set, which is not what is under test); the restore goes to a
//! fresh local replica-set test server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::{Path, PathBuf};

use common::{client, populate, run, snapshot, text};
use mongo_testserver::TestServer;
use serde_json::Value;

const NOT_CONSISTENT: &str = "not consistent to one instant";

fn standalone() -> TestServer {
    TestServer::builder().standalone().start().unwrap()
}

/// The one backup directory under `out/<job>/`.
fn only_backup(out: &Path, job: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out.join(job))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.remove(0)
}

/// Every file below `dir`, relative to it.
fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_standalone_is_backed_up_verified_and_restored_with_a_warning() {
    let source = standalone();
    let db = "standalone_app";
    let src = client(&source.uri()).await;
    populate(&src, db).await;
    let expected = snapshot(&src.database(db)).await;
    let out = tempfile::tempdir().unwrap();
    let out_arg = out.path().display().to_string();

    let backup = run(&[
        "backup",
        "--uri",
        &source.uri(),
        "--out",
        &out_arg,
        "--include",
        db,
    ]);
    assert_eq!(backup.status.code(), Some(0), "{}", text(&backup));
    let stderr = String::from_utf8_lossy(&backup.stderr);
    assert!(
        stderr.contains("The source has no oplog") && stderr.contains(NOT_CONSISTENT),
        "the backup must warn that it is not point-in-time: {}",
        text(&backup)
    );
    let stdout = String::from_utf8_lossy(&backup.stdout);
    assert!(
        stdout.contains("consistent as of no single instant (the source has no oplog)"),
        "{}",
        text(&backup)
    );

    // No oplog anywhere: not in the manifest, not on disk.
    let dir = only_backup(out.path(), "adhoc");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["consistent"], Value::Bool(false), "{manifest:#}");
    for field in ["oplog_start", "oplog_end", "oplog"] {
        assert!(
            manifest.get(field).is_none_or(Value::is_null),
            "{field} in {manifest:#}"
        );
    }
    let files = files_below(&dir);
    assert!(
        !files.iter().any(|f| f.starts_with("oplog")),
        "an oplog file in {files:?}"
    );
    let listed: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(!listed.iter().any(|f| f.starts_with("oplog")), "{listed:?}");
    assert!(files.contains(&format!("{db}/items.bson.zst")), "{files:?}");

    let dir_arg = dir.display().to_string();
    let verify = run(&["verify", &dir_arg]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));

    let target = TestServer::start().unwrap();
    let dry = run(&[
        "restore",
        "--from",
        &dir_arg,
        "--to",
        &target.uri(),
        "--dry-run",
    ]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let dry_out = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry_out.contains(&format!("The backup is {NOT_CONSISTENT}")),
        "{}",
        text(&dry)
    );
    assert!(!dry_out.contains("oplog entries"), "{}", text(&dry));

    let restore = run(&["restore", "--from", &dir_arg, "--to", &target.uri()]);
    assert_eq!(restore.status.code(), Some(0), "{}", text(&restore));
    assert!(
        String::from_utf8_lossy(&restore.stdout)
            .contains("120 documents inserted, 0 already present, 0 oplog operations replayed"),
        "{}",
        text(&restore)
    );
    let got = snapshot(&client(&target.uri()).await.database(db)).await;
    assert_eq!(got, expected, "the restore differs from the standalone");
}

#[test]
fn ping_reports_a_standalone_without_an_oplog() {
    let server = standalone();
    let out = run(&["ping", "--uri", &server.uri()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(standalone)"), "{}", text(&out));
    assert!(stdout.contains("No oplog"), "{}", text(&out));
    assert!(!stdout.contains("Oplog window"), "{}", text(&out));
}
