//! Hand-made backups for the snapshot reader's tests: collection files,
//! oplog slices, bridges and manifests written the way a backup writes
//! them (uncompressed), with entries built by small helpers.

use std::path::Path;

use bson::{doc, Bson, Document, Timestamp};
use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::catalog::{
    BackupKind, BridgeRecord, CollectionRecord, Manifest, OplogRecord, FORMAT_VERSION,
};
use crate::restore::pitr::Link;
use crate::storage::{BackupFiles, CompressionKind, FileEntry};

pub(super) fn ts(i: u32) -> Timestamp {
    Timestamp {
        time: 1000 + i,
        increment: 1,
    }
}

pub(super) fn ins(i: u32, ns: &str, o: Document) -> Document {
    doc! { "op": "i", "ns": ns, "o": o, "ts": ts(i) }
}

pub(super) fn upd(i: u32, ns: &str, id: impl Into<Bson>, o: Document) -> Document {
    doc! { "op": "u", "ns": ns, "o": o, "o2": { "_id": id.into() }, "ts": ts(i) }
}

pub(super) fn del(i: u32, ns: &str, id: impl Into<Bson>) -> Document {
    doc! { "op": "d", "ns": ns, "o": { "_id": id.into() }, "ts": ts(i) }
}

pub(super) fn cmd(i: u32, db: &str, o: Document) -> Document {
    doc! { "op": "c", "ns": format!("{db}.$cmd"), "o": o, "ts": ts(i) }
}

pub(super) fn set(fields: Document) -> Document {
    doc! { "$v": 2, "diff": { "u": fields } }
}

struct Built {
    files: Vec<FileEntry>,
}

impl Built {
    fn write(&mut self, dir: &Path, rel: &str, bytes: &[u8]) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        self.files.push(FileEntry {
            path: rel.to_string(),
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        });
    }
}

fn bson_file(docs: &[Document]) -> Vec<u8> {
    docs.iter().flat_map(|d| bson::to_vec(d).unwrap()).collect()
}

/// A backup with `collections` (db, name, documents) and oplog `entries`,
/// covering the times `start`..`end` (entry numbers, see [`ts`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn backup(
    root: &Path,
    id: &str,
    kind: BackupKind,
    collections: &[(&str, &str, Vec<Document>)],
    entries: &[Document],
    start: u32,
    end: u32,
    parent: Option<&str>,
    bridge: Option<(&[Document], u32, &str)>,
) -> Link {
    let dir = root.join(id);
    let mut built = Built { files: Vec::new() };
    let mut records = Vec::new();
    for (db, name, docs) in collections {
        let meta = crate::backup::metadata_json(
            name,
            "collection",
            &doc! { "validator": { "a": { "$exists": true } } },
            &[doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }],
            None,
        );
        built.write(&dir, &format!("{db}/{name}.metadata.json"), &meta);
        built.write(&dir, &format!("{db}/{name}.bson"), &bson_file(docs));
        records.push(CollectionRecord {
            db: db.to_string(),
            name: name.to_string(),
            kind: "collection".into(),
            documents: docs.len() as u64,
            data_file: Some(format!("{db}/{name}.bson")),
            metadata_file: format!("{db}/{name}.metadata.json"),
        });
    }
    built.write(&dir, "oplog.bson", &bson_file(entries));
    let bridge = bridge.map(|(bridge_entries, from, parent)| {
        built.write(&dir, "oplog-bridge.bson", &bson_file(bridge_entries));
        BridgeRecord {
            file: "oplog-bridge.bson".into(),
            entries: bridge_entries.len() as u64,
            from: ts(from).into(),
            parent: parent.into(),
        }
    });
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        id: id.into(),
        kind,
        job: "job".into(),
        source: "src".into(),
        server_version: "7.0.0".into(),
        tool_version: "test".into(),
        started_at: Utc::now(),
        finished_at: Utc::now(),
        consistent: true,
        oplog_start: Some(ts(start).into()),
        oplog_end: Some(ts(end).into()),
        compression: CompressionKind::None,
        collections: records,
        oplog: Some(OplogRecord {
            file: "oplog.bson".into(),
            entries: entries.len() as u64,
        }),
        files: built.files,
        parent: parent.map(str::to_string),
        note: None,
        requested_by: None,
        bridge,
        encryption: None,
        copies: Vec::new(),
        drills: Vec::new(),
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("manifest.json"), manifest.to_json()).unwrap();
    Link {
        dir: BackupFiles::local(&dir),
        manifest,
    }
}

pub(super) fn full(
    root: &Path,
    collections: &[(&str, &str, Vec<Document>)],
    entries: &[Document],
) -> Link {
    backup(
        root,
        "full",
        BackupKind::Full,
        collections,
        entries,
        0,
        50,
        None,
        None,
    )
}
