//! Tests of manifests, listing and verification, on real backups written
//! with the storage layer.

use std::fs;
use std::path::{Path, PathBuf};

use bson::doc;
use chrono::{DateTime, TimeZone, Utc};

use super::manifest::time_of_id;
use super::*;
use crate::storage::{escape_name, BackupWriter, Compression, CompressionKind, FileEntry};

mod verify_tests;

const USERS: u64 = 97;
const ODD: u64 = 3;
const OPLOG: u64 = 5;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap()
}

fn bson_docs(n: u64, seed: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        doc! { "_id": i as i64, "seed": seed, "arr": [1, { "x": "y" }] }
            .to_writer(&mut out)
            .unwrap();
    }
    out
}

fn put(writer: &BackupWriter, rel: &str, c: Compression, data: &[u8]) -> FileEntry {
    let mut sink = writer.file(rel, c).unwrap();
    sink.write_all(data).unwrap();
    sink.finish().unwrap()
}

/// Writes a realistic backup: two collections (one with an odd name), a
/// view, and an oplog; returns its directory and manifest.
fn build(
    root: &Path,
    job: &str,
    id: &str,
    c: Compression,
    t1: Option<u32>,
    finished: i64,
) -> (PathBuf, Manifest) {
    let writer = BackupWriter::create(root, job, id).unwrap();
    let odd = escape_name("odd/name $");
    let mut files = vec![
        put(&writer, "app/users.bson", c, &bson_docs(USERS, "u")),
        put(
            &writer,
            "app/users.metadata.json",
            c,
            br#"{"indexes":[],"uuid":"00"}"#,
        ),
        put(&writer, &format!("app/{odd}.bson"), c, &bson_docs(ODD, "o")),
        put(&writer, &format!("app/{odd}.metadata.json"), c, b"{}"),
        put(
            &writer,
            "app/v.metadata.json",
            c,
            br#"{"options":{"viewOn":"users"}}"#,
        ),
    ];
    if t1.is_some() {
        files.push(put(&writer, "oplog.bson", c, &bson_docs(OPLOG, "op")));
    }
    let suffix = c.suffix();
    let record = |name: &str, kind: &str, documents, stem: &str, data: bool| CollectionRecord {
        db: "app".into(),
        name: name.into(),
        kind: kind.into(),
        documents,
        data_file: data.then(|| format!("app/{stem}.bson{suffix}")),
        metadata_file: format!("app/{stem}.metadata.json{suffix}"),
    };
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        id: id.into(),
        kind: BackupKind::Full,
        job: job.into(),
        source: "prod".into(),
        server_version: "7.0.14".into(),
        tool_version: "0.1.0".into(),
        started_at: at(finished - 60),
        finished_at: at(finished),
        consistent: t1.is_some(),
        oplog_start: t1.map(|t| OpTime { t: t - 50, i: 1 }),
        oplog_end: t1.map(|t| OpTime { t, i: 7 }),
        compression: c.kind,
        collections: vec![
            record("users", "collection", USERS, "users", true),
            record("odd/name $", "collection", ODD, &odd, true),
            record("v", "view", 0, "v", false),
        ],
        oplog: t1.map(|_| OplogRecord {
            file: format!("oplog.bson{suffix}"),
            entries: OPLOG,
        }),
        files,
        parent: None,
        note: None,
        requested_by: None,
        bridge: None,
        encryption: None,
        copies: Vec::new(),
        drills: Vec::new(),
    };
    let dir = writer.commit(&manifest.to_json()).unwrap();
    (dir, manifest)
}

#[test]
fn manifest_json_round_trip_and_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, manifest) = build(
        tmp.path(),
        "job",
        "b1",
        Compression::gzip(),
        Some(5000),
        6000,
    );
    let json = manifest.to_json();
    assert_eq!(json.last(), Some(&b'\n'));
    assert_eq!(fs::read(dir.join(MANIFEST_FILE)).unwrap(), json);
    assert_eq!(
        Manifest::from_json(&json, Path::new("m")).unwrap(),
        manifest
    );

    let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(value["kind"], "full");
    assert_eq!(value["compression"], "gzip");
    assert_eq!(value["oplog_end"], serde_json::json!({"t": 5000, "i": 7}));
    assert_eq!(value["files"][0]["path"], "app/users.bson.gz");
    assert!(value.get("parent").is_none() && value.get("note").is_none());
    assert_eq!(value["started_at"], "1970-01-01T01:39:00Z");

    assert_eq!(
        manifest.total_size(),
        manifest.files.iter().map(|f| f.size).sum::<u64>()
    );
    assert_eq!(
        manifest.file("oplog.bson.gz").map(|f| f.path.as_str()),
        Some("oplog.bson.gz")
    );
    assert!(manifest.file("oplog.bson").is_none());
}

#[test]
fn manifest_errors_say_where_and_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, manifest) = build(tmp.path(), "job", "b1", Compression::none(), Some(100), 200);
    let path = Path::new("/backups/job/b1/manifest.json");

    let mut value: serde_json::Value = serde_json::from_slice(&manifest.to_json()).unwrap();
    value["surprise"] = serde_json::json!(1);
    let err = Manifest::from_json(value.to_string().as_bytes(), path).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, CatalogError::InvalidManifest { line: 1, .. }),
        "{msg}"
    );
    assert!(msg.contains("/backups/job/b1/manifest.json"), "{msg}");
    assert!(
        msg.contains("surprise") && msg.contains("restore from another backup"),
        "{msg}"
    );

    let err = Manifest::from_json(b"{\n  \"format_version\": 1,\n  oops\n}", path).unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::InvalidManifest {
                line: 3,
                column: 3,
                ..
            }
        ),
        "{err}"
    );

    value["format_version"] = serde_json::json!(2);
    let err = Manifest::from_json(value.to_string().as_bytes(), path).unwrap_err();
    assert!(matches!(err, CatalogError::NewerFormat { found: 2, .. }));
    assert!(
        err.to_string().contains("written by a newer mongo-backupd"),
        "{err}"
    );

    let err = Manifest::from_json(b"", path).unwrap_err();
    assert!(matches!(err, CatalogError::InvalidManifest { .. }), "{err}");
}

#[test]
fn optime_conversions_and_display() {
    let ts = bson::Timestamp {
        time: 1_700_000_000,
        increment: 5,
    };
    let op = OpTime::from(ts);
    assert_eq!(
        op,
        OpTime {
            t: 1_700_000_000,
            i: 5
        }
    );
    assert_eq!(bson::Timestamp::from(op), ts);
    assert_eq!(op.to_string(), "Timestamp(1700000000, 5)");
    assert_eq!(op.to_datetime(), at(1_700_000_000));
    assert!(OpTime { t: 1, i: 9 } < OpTime { t: 2, i: 0 });
    assert!(OpTime { t: 2, i: 1 } < OpTime { t: 2, i: 2 });
    assert_eq!(
        OpTime { t: u32::MAX, i: 0 }.to_datetime().timestamp(),
        i64::from(u32::MAX)
    );
}

#[test]
fn backup_ids_sort_by_time() {
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 2, 0, 0).unwrap();
    let id = new_backup_id(BackupKind::Full, now);
    assert_eq!(id, "20261121T020000Z-full");
    assert_eq!(time_of_id(&id), Some(now));
    let later = new_backup_id(BackupKind::Incremental, now + chrono::Duration::seconds(1));
    assert_eq!(later, "20261121T020001Z-incremental");
    assert!(later > id);
    assert_eq!(
        new_backup_id(BackupKind::Manual, now),
        "20261121T020000Z-manual"
    );
    assert_eq!(time_of_id("nightly"), None);
}

#[test]
fn list_backups_orders_newest_first_and_shows_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    assert!(list_backups(&root.join("missing"), None)
        .unwrap()
        .is_empty());

    // Restore points in 2026; ids deliberately disagree with them.
    const T: u32 = 1_780_000_000;
    let c = Compression::gzip();
    let (_, old) = build(root, "job", "20260101T000000Z-full", c, Some(T + 1_000), 1);
    build(root, "job", "20260102T000000Z-full", c, Some(T + 3_000), 2);
    // Standalone: ordered by finished_at, not by its later id.
    build(
        root,
        "job",
        "20260103T000000Z-full",
        c,
        None,
        i64::from(T) + 2_000,
    );
    build(
        root,
        "other",
        "20260104T000000Z-full",
        c,
        Some(T + 2_500),
        3,
    );
    // Interrupted run with a newer id, and a directory without a manifest.
    fs::create_dir_all(root.join("job/.partial-20300101T000000Z-full/app")).unwrap();
    fs::write(
        root.join("job/.partial-20300101T000000Z-full/app/c.bson"),
        [0u8; 42],
    )
    .unwrap();
    fs::create_dir_all(root.join("job/19990101T000000Z-full")).unwrap();
    // A manifest that belongs to another backup.
    fs::create_dir_all(root.join("job/renamed")).unwrap();
    fs::write(root.join("job/renamed/manifest.json"), old.to_json()).unwrap();
    // Not backups: hidden things and stray files.
    fs::create_dir_all(root.join("job/.trash")).unwrap();
    fs::write(root.join("job/README"), b"x").unwrap();
    fs::create_dir_all(root.join(".hidden-job/x")).unwrap();

    let all = list_backups(root, None).unwrap();
    let order: Vec<(&str, &str)> = all
        .iter()
        .map(|l| (l.job.as_str(), l.id.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("job", "20300101T000000Z-full"),
            ("job", "20260102T000000Z-full"),
            ("other", "20260104T000000Z-full"),
            ("job", "20260103T000000Z-full"),
            ("job", "renamed"),
            ("job", "20260101T000000Z-full"),
            ("job", "19990101T000000Z-full"),
        ]
    );
    assert_eq!(all[0].status, BackupStatus::Partial);
    assert_eq!(all[0].size, 42);
    assert!(all[0].manifest.is_none() && all[0].consistent_as_of().is_none());
    assert_eq!(all[1].status, BackupStatus::Complete);
    assert_eq!(all[1].consistent_as_of(), Some(at(i64::from(T) + 3_000)));
    assert_eq!(all[1].size, all[1].manifest.as_ref().unwrap().total_size());
    assert_eq!(all[3].consistent_as_of(), Some(at(i64::from(T) + 2_000)));
    assert!(matches!(&all[4].status, BackupStatus::Invalid(why) if why.contains("renamed")));
    assert!(
        matches!(&all[6].status, BackupStatus::Invalid(why) if why.contains("no manifest.json"))
    );

    let job_only = list_backups(root, Some("job")).unwrap();
    assert_eq!(job_only.len(), 6);
    assert!(job_only.iter().all(|l| l.job == "job"));
    assert!(list_backups(root, Some("../etc")).is_err());
}

#[test]
fn an_unfinished_backup_never_lists_as_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = BackupWriter::create(tmp.path(), "job", "b1").unwrap();
    let mut sink = writer.file("app/c.bson", Compression::none()).unwrap();
    sink.write_all(&bson_docs(3, "z")).unwrap();
    sink.finish().unwrap();
    // Even a manifest in the partial directory (a crash just before the
    // rename) does not make it complete.
    fs::write(writer.partial_dir().join(MANIFEST_FILE), b"{}").unwrap();
    let listed = list_backups(tmp.path(), None).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, BackupStatus::Partial);
    assert!(!listed[0].is_complete());
    drop(writer);
    assert!(list_backups(tmp.path(), None).unwrap().is_empty());

    // An unreadable manifest is listed as invalid, with the reason.
    fs::create_dir_all(tmp.path().join("job/b2")).unwrap();
    fs::write(
        tmp.path().join("job/b2/manifest.json"),
        b"{\"format_version\": 9}",
    )
    .unwrap();
    let listed = list_backups(tmp.path(), Some("job")).unwrap();
    assert!(
        matches!(&listed[0].status, BackupStatus::Invalid(why) if why.contains("newer mongo-backupd")),
        "{:?}",
        listed[0].status
    );
}
