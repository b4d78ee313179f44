//! Shared helpers for the integration tests of mongo-backupd: datasets,
//! whole-database snapshots for comparison, and running the real binary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly by design

pub mod daemon;
pub mod objstore;
pub mod smtp;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use bson::spec::BinarySubtype;
use bson::{doc, Binary, Bson, Document, RawDocumentBuf};
use futures_util::TryStreamExt;
use mongo_backupd::backup::BackupRequest;
use mongo_backupd::catalog::BackupKind;
use mongo_backupd::config::Selection;
use mongo_backupd::storage::Compression;
use mongodb::options::IndexOptions;
use mongodb::{Client, Database, IndexModel};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mongo-backupd"))
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run mongo-backupd")
}

pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub async fn client(uri: &str) -> Client {
    Client::with_uri_str(uri).await.expect("parse URI")
}

/// A backup request for `db` only, into `root`.
pub fn request(uri: &str, db: &str, root: &Path, compression: Compression) -> BackupRequest {
    BackupRequest {
        job: "test-full".into(),
        source_name: "test".into(),
        uri: uri.into(),
        storage_root: root.to_path_buf(),
        kind: BackupKind::Full,
        compression,
        selection: Selection::from_patterns(&[db.to_string()], &[]).unwrap(),
        include_users: false,
        parallel_collections: 3,
        connect_timeout: std::time::Duration::from_secs(10),
        note: None,
        requested_by: None,
        progress: None,
        encryption: None,
    }
}

/// One value of every BSON type a backup must carry unchanged.
pub fn every_type(i: i32) -> Document {
    doc! {
        "_id": bson::oid::ObjectId::new(),
        "i32": i,
        "i64": i as i64 * 10_000_000_000,
        "f64": i as f64 + 0.25,
        "dec": "1234.5678".parse::<bson::Decimal128>().unwrap(),
        "s": format!("text-{i} ünïcødé"),
        "long": "x".repeat(20_000 + i as usize),
        "bool": i % 2 == 0,
        "null": Bson::Null,
        "date": bson::DateTime::from_millis(1_700_000_000_000 + i as i64),
        "ts": bson::Timestamp { time: 1_700_000_000, increment: i as u32 },
        "re": bson::Regex { pattern: "^a.*b$".into(), options: "i".into() },
        "bin_generic": Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 1, 2, 255] },
        "bin_uuid": Binary { subtype: BinarySubtype::Uuid, bytes: vec![7; 16] },
        "bin_md5": Binary { subtype: BinarySubtype::Md5, bytes: vec![9; 16] },
        "bin_user": Binary { subtype: BinarySubtype::UserDefined(0x80), bytes: vec![1, 2, 3] },
        "code": Bson::JavaScriptCode("function() { return 1; }".into()),
        "code_scope": Bson::JavaScriptCodeWithScope(bson::JavaScriptCodeWithScope { code: "x".into(), scope: doc! { "x": 1 } }),
        "min": Bson::MinKey,
        "max": Bson::MaxKey,
        "nested": { "a": [1, [2, [3, { "deep": [] }]], { "b": { "c": "d" } }], "empty": {} },
    }
}

/// Builds the dataset of the round-trip test in `db_name`: several
/// collections of every BSON type, secondary and unique indexes, a capped
/// collection, a view and a validated collection; plus a second database.
pub async fn populate(client: &Client, db_name: &str) {
    let db = client.database(db_name);
    let items = db.collection::<Document>("items");
    items.insert_many((0..60).map(every_type)).await.unwrap();
    items
        .create_index(
            IndexModel::builder()
                .keys(doc! { "i32": 1, "s": -1 })
                .build(),
        )
        .await
        .unwrap();
    items
        .create_index(
            IndexModel::builder()
                .keys(doc! { "i64": 1 })
                .options(
                    IndexOptions::builder()
                        .unique(true)
                        .name("i64_unique".to_string())
                        .build(),
                )
                .build(),
        )
        .await
        .unwrap();
    db.create_collection("events")
        .capped(true)
        .size(1 << 20)
        .max(500)
        .await
        .unwrap();
    db.collection::<Document>("events")
        .insert_many((0..50).map(|i| doc! { "n": i, "at": bson::DateTime::now() }))
        .await
        .unwrap();
    db.create_collection("checked")
        .validator(doc! { "$jsonSchema": { "bsonType": "object", "required": ["qty"] } })
        .await
        .unwrap();
    db.collection::<Document>("checked")
        .insert_many((0..10).map(|i| doc! { "_id": i, "qty": i * 3 }))
        .await
        .unwrap();
    db.create_collection("even_items")
        .view_on("items".to_string())
        .pipeline(vec![doc! { "$match": { "bool": true } }])
        .await
        .unwrap();
    db.create_collection("empty").await.unwrap();
}

/// Everything a restore must reproduce, by namespace: collection options
/// (without the uuid), index specs, and each document's exact bytes in
/// `_id` order.
pub type Snapshot = BTreeMap<String, (Document, Vec<Document>, Vec<Vec<u8>>)>;

pub async fn snapshot(db: &Database) -> Snapshot {
    let specs: Vec<Document> = db
        .run_cursor_command(doc! { "listCollections": 1 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for spec in specs {
        let name = spec.get_str("name").unwrap().to_string();
        if name == "system.views" {
            continue;
        }
        let mut options = spec.get_document("options").unwrap().clone();
        options.insert("type", spec.get_str("type").unwrap());
        if spec.get_str("type") == Ok("view") {
            out.insert(name, (options, vec![], vec![]));
            continue;
        }
        let coll = db.collection::<RawDocumentBuf>(&name);
        let mut indexes: Vec<Document> = db
            .run_cursor_command(doc! { "listIndexes": &name })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        for i in &mut indexes {
            i.remove("ns");
        }
        indexes.sort_by_key(|d| d.get_str("name").unwrap_or("").to_string());
        let docs: Vec<Vec<u8>> = coll
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .unwrap()
            .try_collect::<Vec<RawDocumentBuf>>()
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.into_bytes())
            .collect();
        out.insert(name, (options, indexes, docs));
    }
    out
}

/// Replays `db`'s whole oplog history up to `t1` into `into`, with a
/// conversion written here independently of the restore code: the
/// source's exact state at T1, to compare a restore with.
pub async fn state_at(
    client: &mongodb::Client,
    db: &str,
    into: &str,
    t1: bson::Timestamp,
) -> Snapshot {
    let entries: Vec<Document> = client
        .database("local")
        .collection::<Document>("oplog.rs")
        .find(doc! { "ns": { "$regex": format!("^{db}\\.") }, "ts": { "$lte": t1 } })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let admin = client.database("admin");
    for mut e in entries {
        e.remove("ui");
        let ns = e
            .get_str("ns")
            .unwrap()
            .replacen(&format!("{db}."), &format!("{into}."), 1);
        e.insert("ns", ns);
        let o = e.get_document("o").unwrap().clone();
        let first = o.keys().next().cloned().unwrap_or_default();
        if first == "startIndexBuild" {
            continue;
        }
        if first == "commitIndexBuild" {
            for spec in o.get_array("indexes").unwrap() {
                let mut create = doc! { "createIndexes": o.get_str("commitIndexBuild").unwrap() };
                create.extend(spec.as_document().unwrap().clone());
                let mut c = e.clone();
                c.insert("o", create);
                admin.run_command(doc! { "applyOps": [c] }).await.unwrap();
            }
            continue;
        }
        admin.run_command(doc! { "applyOps": [e] }).await.unwrap();
    }
    snapshot(&client.database(into)).await
}

/// Copies a backup as if it had been taken `days` earlier.
pub fn aged_copy(backup: &Path, days: i64) -> String {
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    let shift = |v: &mut serde_json::Value| {
        let t: chrono::DateTime<chrono::Utc> = v.as_str().unwrap().parse().unwrap();
        *v = serde_json::Value::String((t - chrono::Duration::days(days)).to_rfc3339());
    };
    shift(&mut manifest["started_at"]);
    shift(&mut manifest["finished_at"]);
    for key in ["oplog_start", "oplog_end"] {
        let t = manifest[key]["t"].as_u64().unwrap() - days as u64 * 86_400;
        manifest[key]["t"] = t.into();
    }
    let when: chrono::DateTime<chrono::Utc> =
        manifest["finished_at"].as_str().unwrap().parse().unwrap();
    let id = format!("{}-full", when.format("%Y%m%dT%H%M%SZ"));
    manifest["id"] = id.clone().into();
    let dest = backup.parent().unwrap().join(&id);
    std::fs::create_dir_all(&dest).unwrap();
    for e in walk(backup) {
        let rel = e.strip_prefix(backup).unwrap();
        std::fs::create_dir_all(dest.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(&e, dest.join(rel)).unwrap();
    }
    std::fs::write(
        dest.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    id
}

pub fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p)
            } else {
                vec![p]
            }
        })
        .collect()
}
