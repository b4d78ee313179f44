//! Incremental backups: chain continuity, empty incrementals, a missing
//! base full, and oplog gaps (against the test server, or MONGODB_TEST_URI
//! where the test does not need a tiny oplog).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use bson::{doc, Document, RawDocumentBuf};
use chrono::Utc;
use common::{client, request};
use mongo_backupd::backup::{self, BackupError};
use mongo_backupd::catalog::BackupKind;
use mongo_backupd::storage::{self, Compression};
use mongo_testserver::harness::{skip_external, Target};
use mongo_testserver::TestServer;
use tokio_util::sync::CancellationToken;

fn incremental(uri: &str, db: &str, root: &std::path::Path) -> backup::BackupRequest {
    let mut r = request(uri, db, root, Compression::zstd(3));
    r.kind = BackupKind::Incremental;
    r.job = "test-incr".into();
    r
}

fn oplog_entries(outcome: &backup::BackupOutcome) -> Vec<Document> {
    let file = outcome.manifest.oplog.as_ref().unwrap().file.clone();
    let entry = outcome.manifest.file(&file).unwrap().clone();
    backup::read_documents(&outcome.path, &entry)
        .unwrap()
        .into_iter()
        .map(|d: RawDocumentBuf| Document::try_from(d.as_ref()).unwrap())
        .collect()
}

#[tokio::test]
async fn incrementals_continue_the_chain_exactly() {
    let source = Target::new().unwrap();
    let db = source.unique_db("incr");
    let c = client(&source.uri()).await;
    let coll = c.database(&db).collection::<Document>("c");
    coll.insert_many((0..10).map(|i| doc! { "_id": i }))
        .await
        .unwrap();
    let store = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let full = backup::run(
        &request(&source.uri(), &db, store.path(), Compression::zstd(3)),
        &cancel,
        Utc::now(),
    )
    .await
    .unwrap();
    coll.insert_one(doc! { "_id": 100 }).await.unwrap();
    coll.update_one(doc! { "_id": 1 }, doc! { "$set": { "x": 1 } })
        .await
        .unwrap();
    coll.delete_one(doc! { "_id": 2 }).await.unwrap();
    let first = backup::run(
        &incremental(&source.uri(), &db, store.path()),
        &cancel,
        Utc::now() + chrono::Duration::seconds(1),
    )
    .await
    .unwrap();
    let m = &first.manifest;
    assert_eq!(m.kind, BackupKind::Incremental);
    assert_eq!(m.parent.as_deref(), Some(full.manifest.id.as_str()));
    assert_eq!(
        m.oplog_start, full.manifest.oplog_end,
        "starts exactly where the full ended"
    );
    let ops: Vec<String> = oplog_entries(&first)
        .iter()
        .map(|e| e.get_str("op").unwrap().to_string())
        .collect();
    assert_eq!(
        ops,
        ["i", "u", "d"],
        "exactly the writes since the full, only this database's"
    );
    assert!(storage::verify_file(
        &storage::BackupFiles::local(&first.path),
        &first.manifest.files[0]
    )
    .is_ok());

    // No writes since: an empty incremental still records continuity.
    let second = backup::run(
        &incremental(&source.uri(), &db, store.path()),
        &cancel,
        Utc::now() + chrono::Duration::seconds(2),
    )
    .await
    .unwrap();
    assert_eq!(second.manifest.parent.as_deref(), Some(m.id.as_str()));
    assert_eq!(second.manifest.oplog_start, m.oplog_end);
    let count = second.manifest.oplog.as_ref().unwrap().entries;
    assert!(oplog_entries(&second)
        .iter()
        .all(|e| e.get_str("ns").unwrap().starts_with(&db)));
    assert_eq!(count as usize, oplog_entries(&second).len());
    let _ = c.database(&db).drop().await;
}

#[tokio::test]
async fn an_incremental_without_a_full_says_what_to_do() {
    let source = Target::new().unwrap();
    let store = tempfile::tempdir().unwrap();
    let e = backup::run(
        &incremental(&source.uri(), "nothing", store.path()),
        &CancellationToken::new(),
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, BackupError::NoFullYet { .. }), "{e}");
    assert!(
        e.to_string().contains("run or schedule a full backup"),
        "{e}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(store.path())
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "nothing written: {leftovers:?}");
}

#[tokio::test]
async fn an_oplog_that_rolled_past_the_chain_is_a_gap_naming_the_lost_interval() {
    let target = Target::new().unwrap();
    if target.is_external() {
        return skip_external(
            "an_oplog_that_rolled_past_the_chain_is_a_gap_naming_the_lost_interval",
        );
    }
    let server = TestServer::builder()
        .oplog_max_bytes(64 * 1024)
        .start()
        .unwrap();
    let c = client(&server.uri()).await;
    let coll = c.database("app").collection::<Document>("c");
    coll.insert_one(doc! { "_id": 0 }).await.unwrap();
    let store = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let full = backup::run(
        &request(&server.uri(), "app", store.path(), Compression::none()),
        &cancel,
        Utc::now(),
    )
    .await
    .unwrap();
    // A burst of writes larger than the whole oplog.
    let pad = "z".repeat(1000);
    for i in 1..300 {
        coll.insert_one(doc! { "_id": i, "pad": pad.clone() })
            .await
            .unwrap();
    }
    let e = backup::run(
        &incremental(&server.uri(), "app", store.path()),
        &cancel,
        Utc::now() + chrono::Duration::seconds(1),
    )
    .await
    .unwrap_err();
    let BackupError::OplogGap {
        from,
        oldest,
        parent,
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(Some(*from), full.manifest.oplog_end);
    assert!(oldest > from);
    assert_eq!(parent, &full.manifest.id);
    let text = e.to_string();
    assert!(
        text.starts_with("oplog gap: the oplog no longer holds the entries from Timestamp("),
        "{text}"
    );
    let incr_dir = store.path().join("test-incr");
    let kept: Vec<_> = std::fs::read_dir(&incr_dir)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(
        kept.is_empty(),
        "no incremental that hides the gap: {kept:?}"
    );
}
