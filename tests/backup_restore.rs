//! Full backups and restores end to end, against the test server (or the
//! replica set in MONGODB_TEST_URI): round trips of every BSON type and
//! collection kind, each compression, consistency under concurrent writes,
//! repeated restores, and the mongodump layout.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::Read;
use std::time::Duration;

use bson::{doc, Document};
use chrono::Utc;
use common::{client, populate, request, snapshot};
use mongo_backupd::backup;
use mongo_backupd::catalog::{self, Manifest};
use mongo_backupd::restore::{self, NsMapper, RestoreOptions};
use mongo_backupd::storage::{Compression, CompressionKind};
use mongo_testserver::harness::Target;
use mongo_testserver::TestServer;
use tokio_util::sync::CancellationToken;

/// Where a restore goes: a second, empty test server; or, against a real
/// replica set, another database on it (renamed on restore).
struct RestoreTarget {
    _server: Option<TestServer>,
    uri: String,
    db: String,
    mapper: NsMapper,
}

fn restore_target(source: &Target, src_db: &str) -> RestoreTarget {
    match source.local() {
        Some(_) => {
            let server = TestServer::start().unwrap();
            RestoreTarget {
                uri: server.uri(),
                _server: Some(server),
                db: src_db.to_string(),
                mapper: NsMapper::default(),
            }
        }
        None => {
            let db = source.unique_db("restored");
            RestoreTarget {
                uri: source.uri(),
                _server: None,
                mapper: NsMapper::new(&[], &[], &[format!("{src_db}.*")], &[format!("{db}.*")])
                    .unwrap(),
                db,
            }
        }
    }
}

fn restore_opts(from: &std::path::Path, t: &RestoreTarget) -> RestoreOptions {
    RestoreOptions {
        from: mongo_backupd::storage::BackupFiles::local(from),
        uri: t.uri.clone(),
        drop: false,
        namespaces: t.mapper.clone(),
        dry_run: false,
        no_indexes: false,
        oplog_replay: true,
        connect_timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn every_type_index_option_and_view_round_trips_with_each_compression() {
    let source = Target::new().unwrap();
    let src_db = source.unique_db("roundtrip");
    let src = client(&source.uri()).await;
    populate(&src, &src_db).await;
    let expected = snapshot(&src.database(&src_db)).await;
    assert_eq!(
        expected.len(),
        5,
        "items, events, checked, even_items, empty"
    );
    for compression in [
        Compression::none(),
        Compression::gzip(),
        Compression::zstd(3),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let req = request(&source.uri(), &src_db, dir.path(), compression);
        let outcome = backup::run(&req, &CancellationToken::new(), Utc::now())
            .await
            .unwrap();
        assert_eq!(outcome.documents(), 60 + 50 + 10);
        assert!(outcome.manifest.consistent);
        let t = restore_target(&source, &src_db);
        let (_, summary) =
            restore::run(&restore_opts(&outcome.path, &t), &CancellationToken::new())
                .await
                .unwrap();
        assert_eq!(summary.inserted, 120, "{compression:?}");
        let got = snapshot(&client(&t.uri).await.database(&t.db)).await;
        assert_eq!(
            got, expected,
            "{compression:?}: the restore differs from the source"
        );
        if source.is_external() {
            let _ = client(&t.uri).await.database(&t.db).drop().await;
        }
    }
    let _ = src.database(&src_db).drop().await;
}

#[tokio::test]
async fn gzip_backups_use_mongodumps_names_and_formats() {
    let source = Target::new().unwrap();
    let db = source.unique_db("gzlayout");
    let src = client(&source.uri()).await;
    populate(&src, &db).await;
    let dir = tempfile::tempdir().unwrap();
    let outcome = backup::run(
        &request(&source.uri(), &db, dir.path(), Compression::gzip()),
        &CancellationToken::new(),
        Utc::now(),
    )
    .await
    .unwrap();
    let root = &outcome.path;
    assert_eq!(root.parent().unwrap(), dir.path().join("test-full"));
    let mut names: Vec<String> = std::fs::read_dir(root.join(&db))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "checked.bson.gz",
            "checked.metadata.json.gz",
            "empty.bson.gz",
            "empty.metadata.json.gz",
            "even_items.metadata.json.gz",
            "events.bson.gz",
            "events.metadata.json.gz",
            "items.bson.gz",
            "items.metadata.json.gz",
        ]
    );
    assert!(root.join("oplog.bson.gz").is_file());
    assert!(root.join("manifest.json").is_file());
    // Plain gzip streams of concatenated BSON, as mongorestore --gzip reads.
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(root.join(&db).join("checked.bson.gz")).unwrap(),
    )
    .read_to_end(&mut raw)
    .unwrap();
    let mut docs = 0;
    let mut rest = raw.as_slice();
    while !rest.is_empty() {
        let d = Document::from_reader(&mut rest).unwrap();
        assert!(d.contains_key("qty"));
        docs += 1;
    }
    assert_eq!(docs, 10);
    let mut meta = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(root.join(&db).join("items.metadata.json.gz")).unwrap(),
    )
    .read_to_string(&mut meta)
    .unwrap();
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    let keys: Vec<&str> = meta
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["options", "indexes", "uuid", "collectionName", "type"]
    );
    assert_eq!(
        meta["indexes"][0]["v"],
        serde_json::json!({ "$numberInt": "2" }),
        "canonical Extended JSON"
    );
    assert_eq!(meta["uuid"].as_str().unwrap().len(), 32);
    let _ = src.database(&db).drop().await;
}

#[tokio::test]
async fn writes_during_the_backup_are_captured_exactly_as_of_t1() {
    let source = Target::new().unwrap();
    let db = source.unique_db("concurrent");
    let src = client(&source.uri()).await;
    let big = src.database(&db).collection::<Document>("big");
    big.insert_many((0..5000).map(|i| doc! { "_id": i, "v": i, "pad": "p".repeat(100) }))
        .await
        .unwrap();
    // Slow the copy down (each getMore waits) so the writer overlaps it.
    src.database("admin")
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": { "times": 4 },
            "data": { "failCommands": ["getMore"], "blockConnection": true, "blockTimeMS": 150, "appName": "mongo-backupd" } })
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let writer = {
        let (src, db, stop) = (src.clone(), db.clone(), stop.clone());
        tokio::spawn(async move {
            let big = src.database(&db).collection::<Document>("big");
            let side = src.database(&db).collection::<Document>("side");
            let mut n = 0i32;
            while !stop.is_cancelled() {
                big.update_one(
                    doc! { "_id": n % 5000 },
                    doc! { "$inc": { "v": 1 }, "$set": { "w": n } },
                )
                .await
                .unwrap();
                side.insert_one(doc! { "_id": n, "at": n }).await.unwrap();
                if n % 3 == 0 {
                    big.delete_one(doc! { "_id": 4999 - (n % 5000) })
                        .await
                        .unwrap();
                }
                n += 1;
            }
            n
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let outcome = backup::run(
        &request(&source.uri(), &db, dir.path(), Compression::zstd(1)),
        &CancellationToken::new(),
        Utc::now(),
    )
    .await
    .unwrap();
    stop.cancel();
    let writes = writer.await.unwrap();
    let _ = src
        .database("admin")
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": "off" })
        .await;
    let oplog_entries = outcome.manifest.oplog.as_ref().unwrap().entries;
    assert!(
        oplog_entries > 0 && writes > 0,
        "the writer ran during the copy ({oplog_entries} entries, {writes} writes)"
    );
    let t1: bson::Timestamp = outcome.manifest.oplog_end.unwrap().into();
    let oracle_db = source.unique_db("oracle");
    let expected = common::state_at(&src, &db, &oracle_db, t1).await;
    let t = restore_target(&source, &db);
    restore::run(&restore_opts(&outcome.path, &t), &CancellationToken::new())
        .await
        .unwrap();
    let got = snapshot(&client(&t.uri).await.database(&t.db)).await;
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (name, (_, _, docs)) in &expected {
        assert_eq!(
            &got[name].2, docs,
            "{name} differs from the source as of T1"
        );
    }
    let _ = src.database(&db).drop().await;
    let _ = src.database(&oracle_db).drop().await;
    if source.is_external() {
        let _ = src.database(&t.db).drop().await;
    }
}

#[tokio::test]
async fn restoring_twice_does_not_duplicate_and_dry_run_writes_nothing() {
    let source = Target::new().unwrap();
    let db = source.unique_db("twice");
    let src = client(&source.uri()).await;
    populate(&src, &db).await;
    let dir = tempfile::tempdir().unwrap();
    let outcome = backup::run(
        &request(&source.uri(), &db, dir.path(), Compression::zstd(3)),
        &CancellationToken::new(),
        Utc::now(),
    )
    .await
    .unwrap();
    let t = restore_target(&source, &db);
    let target = client(&t.uri).await;
    let mut dry = restore_opts(&outcome.path, &t);
    dry.dry_run = true;
    let (plan, _) = restore::run(&dry, &CancellationToken::new()).await.unwrap();
    assert!(plan.render().contains("items -> "), "{}", plan.render());
    assert!(
        !target.list_database_names().await.unwrap().contains(&t.db),
        "a dry run writes nothing"
    );
    restore::run(&restore_opts(&outcome.path, &t), &CancellationToken::new())
        .await
        .unwrap();
    let (_, again) = restore::run(&restore_opts(&outcome.path, &t), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(again.inserted, 0);
    assert_eq!(again.already_present, 120);
    assert_eq!(
        snapshot(&target.database(&t.db)).await,
        snapshot(&src.database(&db)).await
    );
    let mut drop = restore_opts(&outcome.path, &t);
    drop.drop = true;
    let (_, fresh) = restore::run(&drop, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(fresh.inserted, 120, "--drop starts each collection over");
    let manifest: Manifest = Manifest::from_json(
        &std::fs::read(outcome.path.join("manifest.json")).unwrap(),
        &outcome.path,
    )
    .unwrap();
    assert_eq!(manifest.compression, CompressionKind::Zstd);
    assert!(
        catalog::verify_backup(&mongo_backupd::storage::BackupFiles::local(&outcome.path))
            .unwrap()
            .is_ok()
    );
    let _ = src.database(&db).drop().await;
    if source.is_external() {
        let _ = target.database(&t.db).drop().await;
    }
}
