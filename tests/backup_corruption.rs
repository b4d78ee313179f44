//! Damaged backups: `verify` and `restore` name the exact problem, and a
//! restore writes nothing at all from a backup that fails its checks.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::{Path, PathBuf};

use chrono::Utc;
use common::{client, populate, request, run, text};
use mongo_backupd::backup;
use mongo_backupd::storage::Compression;
use mongo_testserver::harness::Target;
use mongo_testserver::TestServer;
use tokio_util::sync::CancellationToken;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A damaged copy of `good`, and what verify/restore must say about it.
struct Case {
    name: &'static str,
    damage: fn(&Path, &str),
    expect: &'static [&'static str],
}

fn items(dir: &Path, db: &str) -> PathBuf {
    dir.join(db).join("items.bson")
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "flipped byte",
            damage: |d, db| {
                let p = items(d, db);
                let mut b = std::fs::read(&p).unwrap();
                let mid = b.len() / 2;
                b[mid] ^= 0x20;
                std::fs::write(&p, b).unwrap();
            },
            expect: &["items.bson", "sha256"],
        },
        Case {
            name: "truncated file",
            damage: |d, db| {
                let p = items(d, db);
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() - 100]).unwrap();
            },
            expect: &["items.bson", "truncated"],
        },
        Case {
            name: "missing file",
            damage: |d, db| std::fs::remove_file(d.join(db).join("checked.metadata.json")).unwrap(),
            expect: &["checked.metadata.json", "missing"],
        },
        Case {
            name: "damaged manifest",
            damage: |d, _| {
                let p = d.join("manifest.json");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() / 2]).unwrap();
            },
            expect: &["manifest.json", "line"],
        },
    ]
}

#[tokio::test]
async fn verify_and_restore_name_the_damage_and_restore_nothing() {
    let source = Target::new().unwrap();
    let db = source.unique_db("damaged");
    let src = client(&source.uri()).await;
    populate(&src, &db).await;
    let store = tempfile::tempdir().unwrap();
    let good = backup::run(
        &request(&source.uri(), &db, store.path(), Compression::none()),
        &CancellationToken::new(),
        Utc::now(),
    )
    .await
    .unwrap()
    .path;
    let ok = run(&["verify", &good.display().to_string()]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("OK"),
        "{}",
        text(&ok)
    );

    // Restores go to a fresh server (or a fresh database on the real one).
    let target_server = source.local().map(|_| TestServer::start().unwrap());
    let target_uri = target_server
        .as_ref()
        .map(|s| s.uri())
        .unwrap_or_else(|| source.uri());
    let target_db = if target_server.is_some() {
        db.clone()
    } else {
        source.unique_db("never")
    };
    for case in cases() {
        let work = tempfile::tempdir().unwrap();
        let copy = work.path().join("backup");
        copy_dir(&good, &copy);
        (case.damage)(&copy, &db);
        let verify = run(&["verify", &copy.display().to_string()]);
        assert_eq!(
            verify.status.code(),
            Some(65),
            "{}: {}",
            case.name,
            text(&verify)
        );
        let said = text(&verify).to_lowercase();
        for word in case.expect {
            assert!(
                said.contains(word),
                "{}: verify does not mention {word}: {said}",
                case.name
            );
        }
        let restore = run(&[
            "restore",
            "--from",
            &copy.display().to_string(),
            "--to",
            &target_uri,
            "--ns-from",
            &format!("{db}.*"),
            "--ns-to",
            &format!("{target_db}.*"),
        ]);
        assert_eq!(
            restore.status.code(),
            Some(65),
            "{}: {}",
            case.name,
            text(&restore)
        );
        let said = text(&restore).to_lowercase();
        for word in case.expect {
            assert!(
                said.contains(word),
                "{}: restore does not mention {word}: {said}",
                case.name
            );
        }
        let dbs = client(&target_uri)
            .await
            .list_database_names()
            .await
            .unwrap();
        assert!(
            !dbs.contains(&target_db),
            "{}: a damaged backup wrote to the target",
            case.name
        );
    }
    let _ = src.database(&db).drop().await;
}

#[tokio::test]
async fn the_cli_round_trip_lists_verifies_and_restores() {
    let source = Target::new().unwrap();
    let db = source.unique_db("cli");
    let src = client(&source.uri()).await;
    populate(&src, &db).await;
    let store = tempfile::tempdir().unwrap();
    let out = run(&[
        "backup",
        "--uri",
        &source.uri(),
        "--out",
        &store.path().display().to_string(),
        "--job",
        "cli",
        "--include",
        &db,
        "--compression",
        "gzip",
        "--note",
        "before migration",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("complete: 5 collections, 120 documents"),
        "{stdout}"
    );
    let listed = run(&["list", "--storage", &store.path().display().to_string()]);
    let listing = String::from_utf8_lossy(&listed.stdout).to_string();
    let row = listing.lines().nth(1).unwrap_or_default().to_string();
    assert!(
        row.contains("cli") && row.contains("manual") && row.contains("complete"),
        "{listing}"
    );
    let id = row.split_whitespace().next().unwrap().to_string();
    let dir = store.path().join("cli").join(&id);
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    assert!(manifest.contains("before migration"));
    assert!(
        !manifest.contains("mongodb://"),
        "the manifest names no URI"
    );
    let target = TestServer::start().unwrap();
    let dry = run(&[
        "restore",
        "--from",
        &dir.display().to_string(),
        "--to",
        &target.uri(),
        "--dry-run",
    ]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert!(String::from_utf8_lossy(&dry.stdout).contains("Dry run: nothing was written."));
    let restored = run(&[
        "restore",
        "--from",
        &dir.display().to_string(),
        "--to",
        &target.uri(),
        "--ns-include",
        &format!("{db}.items"),
    ]);
    assert_eq!(restored.status.code(), Some(0), "{}", text(&restored));
    let t = client(&target.uri()).await;
    assert_eq!(
        t.database(&db).list_collection_names().await.unwrap(),
        ["items"]
    );
    assert_eq!(
        t.database(&db)
            .collection::<bson::Document>("items")
            .count_documents(bson::doc! {})
            .await
            .unwrap(),
        60
    );
    let _ = src.database(&db).drop().await;
}
