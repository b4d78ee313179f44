//! Point-in-time restore from a full and its incrementals: to an instant
//! between writes, to the latest time, outside the covered window, and
//! with a damaged incremental in the middle of the chain.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::time::Duration;

use bson::{doc, Document};
use chrono::{DateTime, Utc};
use common::{client, request, snapshot};
use mongo_backupd::backup;
use mongo_backupd::catalog::BackupKind;
use mongo_backupd::restore::pitr::{self, At};
use mongo_backupd::restore::{NsMapper, RestoreError, RestoreOptions};
use mongo_backupd::storage::Compression;
use mongo_testserver::harness::Target;
use mongo_testserver::TestServer;
use tokio_util::sync::CancellationToken;

/// Oplog timestamps have one-second resolution: wait until the wall clock
/// enters a new second, so writes before and after are told apart.
async fn next_second() -> DateTime<Utc> {
    let s = Utc::now().timestamp();
    while Utc::now().timestamp() == s {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Utc::now()
}

struct Fresh {
    _server: Option<TestServer>,
    uri: String,
    db: String,
    mapper: NsMapper,
}

fn fresh_target(source: &Target, db: &str) -> Fresh {
    match source.local() {
        Some(_) => {
            let s = TestServer::start().unwrap();
            Fresh {
                uri: s.uri(),
                _server: Some(s),
                db: db.to_string(),
                mapper: NsMapper::default(),
            }
        }
        None => {
            let to = source.unique_db("pitr_to");
            Fresh {
                uri: source.uri(),
                _server: None,
                mapper: NsMapper::new(&[], &[], &[format!("{db}.*")], &[format!("{to}.*")])
                    .unwrap(),
                db: to,
            }
        }
    }
}

async fn restore_at(
    root: &std::path::Path,
    source: &Target,
    db: &str,
    at: At,
) -> Result<common::Snapshot, RestoreError> {
    let t = fresh_target(source, db);
    let opts = RestoreOptions {
        from: mongo_backupd::storage::BackupFiles::local(""),
        uri: t.uri.clone(),
        drop: false,
        namespaces: t.mapper.clone(),
        dry_run: false,
        no_indexes: false,
        oplog_replay: true,
        connect_timeout: Duration::from_secs(10),
    };
    pitr::run(
        &mongo_backupd::storage::Location::local_dir(root),
        "test",
        at,
        &opts,
        &CancellationToken::new(),
    )
    .await?;
    let snap = snapshot(&client(&t.uri).await.database(&t.db)).await;
    if source.is_external() {
        let _ = client(&t.uri).await.database(&t.db).drop().await;
    }
    Ok(snap)
}

#[tokio::test]
async fn restores_to_an_instant_to_latest_and_refuses_what_is_not_covered() {
    let source = Target::new().unwrap();
    let db = source.unique_db("pitr");
    let c = client(&source.uri()).await;
    let coll = c.database(&db).collection::<Document>("c");
    coll.insert_many((0..20).map(|i| doc! { "_id": i, "v": 0 }))
        .await
        .unwrap();
    let store = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let full_req = request(&source.uri(), &db, store.path(), Compression::zstd(3));
    let mut incr_req = full_req.clone();
    incr_req.kind = BackupKind::Incremental;
    incr_req.job = "test-incr".into();
    let full = backup::run(&full_req, &cancel, Utc::now()).await.unwrap();

    // Writes A, then the instant to restore to, then writes B.
    coll.update_many(doc! {}, doc! { "$inc": { "v": 1 } })
        .await
        .unwrap();
    coll.insert_one(doc! { "_id": 100, "phase": "A" })
        .await
        .unwrap();
    c.database(&db)
        .collection::<Document>("created_in_a")
        .insert_one(doc! { "x": 1 })
        .await
        .unwrap();
    let target = next_second().await;
    let state_a = snapshot(&c.database(&db)).await;
    next_second().await;
    coll.delete_many(doc! { "_id": { "$lt": 5 } })
        .await
        .unwrap();
    coll.insert_one(doc! { "_id": 200, "phase": "B" })
        .await
        .unwrap();
    let inc1 = backup::run(&incr_req, &cancel, next_second().await)
        .await
        .unwrap();
    coll.update_one(doc! { "_id": 200 }, doc! { "$set": { "phase": "C" } })
        .await
        .unwrap();
    let inc2 = backup::run(&incr_req, &cancel, next_second().await)
        .await
        .unwrap();
    coll.insert_one(doc! { "_id": 300 }).await.unwrap();
    let _inc3 = backup::run(&incr_req, &cancel, next_second().await)
        .await
        .unwrap();
    let state_latest = snapshot(&c.database(&db)).await;
    assert_eq!(
        inc1.manifest.parent.as_deref(),
        Some(full.manifest.id.as_str())
    );

    let at_a = restore_at(store.path(), &source, &db, At::Time(target))
        .await
        .unwrap();
    assert_eq!(at_a, state_a, "the restore equals the source at {target}");
    let latest = restore_at(store.path(), &source, &db, At::Latest)
        .await
        .unwrap();
    assert_eq!(latest, state_latest);

    let before = full.manifest.oplog_end.unwrap().to_datetime() - chrono::Duration::days(1);
    let e = restore_at(store.path(), &source, &db, At::Time(before))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("the covered windows are: "), "{e}");
    let after = Utc::now() + chrono::Duration::days(1);
    let e = restore_at(store.path(), &source, &db, At::Time(after))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("its backups end at"), "{e}");

    // A damaged incremental in the middle: later instants are refused with
    // the cause; earlier ones still restore.
    let oplog = inc2.manifest.oplog.as_ref().unwrap().file.clone();
    let path = inc2.path.join(&oplog);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    let e = restore_at(store.path(), &source, &db, At::Latest)
        .await
        .unwrap_err();
    assert!(matches!(e, RestoreError::Damaged { .. }), "{e}");
    assert!(mongo_backupd::error_chain(&e).contains(&oplog), "{e}");
    let still = restore_at(store.path(), &source, &db, At::Time(target))
        .await
        .unwrap();
    assert_eq!(still, state_a);

    // A missing incremental in the middle: the chain stops before it, later
    // instants are refused with the windows still covered.
    std::fs::remove_dir_all(&inc2.path).unwrap();
    let e = restore_at(
        store.path(),
        &source,
        &db,
        At::Time(Utc::now() - chrono::Duration::seconds(1)),
    )
    .await
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("its backups end at") && text.contains("the covered windows are: "),
        "{text}"
    );
    let still = restore_at(store.path(), &source, &db, At::Time(target))
        .await
        .unwrap();
    assert_eq!(
        still, state_a,
        "instants before the missing incremental still restore"
    );
    let _ = c.database(&db).drop().await;
}
