//! Replaying a backup's oplog slice with `applyOps`, the way mongorestore's
//! `--oplogReplay` does, made idempotent so that entries whose effect is
//! already in the copied data (they happened while it was being copied)
//! are harmless: inserts become replacing upserts, and commands that find
//! their work done (a collection that exists, an index already dropped)
//! are accepted.

use bson::{doc, Bson, Document, RawDocumentBuf, Timestamp};
use mongodb::error::ErrorKind;
use mongodb::Client;
use tokio::sync::mpsc;

use super::{NsMapper, RestoreError, RestoreOptions, RestorePlan};
use crate::storage::{self, BsonReader, StorageError};

/// CRUD entries sent per applyOps command.
const APPLY_BATCH_OPS: usize = 500;
const APPLY_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Server error codes that mean a replayed command's work is already done.
const ALREADY_DONE: &[i32] = &[
    26, // NamespaceNotFound: dropping what is gone
    27, // IndexNotFound: dropping an index that is gone
    48, // NamespaceExists: creating what the copy already holds
];

/// Turns one oplog entry into the operations to apply on the target
/// (none when it is filtered out or carries nothing to restore).
pub fn convert(entry: &Document, mapper: &NsMapper) -> Vec<Document> {
    let op = entry.get_str("op").unwrap_or("");
    let ns = entry.get_str("ns").unwrap_or("");
    let Ok(o) = entry.get_document("o") else {
        return Vec::new();
    };
    match op {
        "i" | "u" | "d" => {
            let Some((db, coll)) = ns.split_once('.') else {
                return Vec::new();
            };
            let Some((tdb, tcoll)) = mapper.map(db, coll) else {
                return Vec::new();
            };
            let target = format!("{tdb}.{tcoll}");
            match op {
                "i" => {
                    let id = o.get("_id").cloned().unwrap_or(Bson::Null);
                    vec![doc! { "op": "u", "ns": target, "o": o.clone(), "o2": { "_id": id } }]
                }
                "u" => {
                    let o2 = entry.get_document("o2").cloned().unwrap_or_default();
                    vec![doc! { "op": "u", "ns": target, "o": o.clone(), "o2": o2 }]
                }
                _ => vec![doc! { "op": "d", "ns": target, "o": o.clone() }],
            }
        }
        "c" => convert_command(ns, o, mapper),
        _ => Vec::new(),
    }
}

fn convert_command(ns: &str, o: &Document, mapper: &NsMapper) -> Vec<Document> {
    let Some(db) = ns.strip_suffix(".$cmd") else {
        return Vec::new();
    };
    let Some(name) = o.keys().next().cloned() else {
        return Vec::new();
    };
    match name.as_str() {
        // Transactions: their inner operations, each converted.
        "applyOps" => o
            .get_array("applyOps")
            .map(|ops| {
                ops.iter()
                    .filter_map(|op| op.as_document())
                    .flat_map(|op| convert(op, mapper))
                    .collect()
            })
            .unwrap_or_default(),
        // mongod refuses these in applyOps; the commit carries the specs.
        "startIndexBuild" | "abortIndexBuild" => Vec::new(),
        "commitIndexBuild" => {
            let Ok(coll) = o.get_str("commitIndexBuild") else {
                return Vec::new();
            };
            let Some((tdb, tcoll)) = mapper.map(db, coll) else {
                return Vec::new();
            };
            o.get_array("indexes")
                .map(|specs| {
                    specs
                        .iter()
                        .filter_map(|s| s.as_document())
                        .map(|spec| {
                            let mut create = doc! { "createIndexes": tcoll.clone() };
                            create.extend(spec.clone());
                            doc! { "op": "c", "ns": format!("{tdb}.$cmd"), "o": create }
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
        // 4.4+ logs each collection's drop before it: those are enough, and
        // a rename or a filter may mean the target database holds more.
        "dropDatabase" => Vec::new(),
        // Logged on admin.$cmd with both full namespaces in the document:
        // each is mapped on its own, so a renamed restore (a drill's
        // prefix) never renames anything outside its own databases.
        "renameCollection" => {
            let map_ns = |key: &str| {
                let (db, coll) = o.get_str(key).ok()?.split_once('.')?;
                mapper.map(db, coll).map(|(d, c)| format!("{d}.{c}"))
            };
            let (Some(from), Some(to)) = (map_ns("renameCollection"), map_ns("to")) else {
                return Vec::new();
            };
            let mut out = o.clone();
            out.insert("renameCollection", from);
            out.insert("to", to);
            vec![doc! { "op": "c", "ns": "admin.$cmd", "o": out }]
        }
        _ => {
            let Ok(coll) = o.get_str(&name) else {
                return Vec::new();
            };
            let Some((tdb, tcoll)) = mapper.map(db, coll) else {
                return Vec::new();
            };
            let mut out = o.clone();
            out.insert(name.clone(), tcoll);
            if name == "create" {
                if let Ok(view_on) = o.get_str("viewOn") {
                    if let Some((vdb, vcoll)) = mapper.map(db, view_on) {
                        if vdb == tdb {
                            out.insert("viewOn", vcoll);
                        }
                    }
                }
            }
            vec![doc! { "op": "c", "ns": format!("{tdb}.$cmd"), "o": out }]
        }
    }
}

/// Replays the backup's oplog file; returns how many operations it applied.
pub(super) async fn replay_backup_oplog(
    client: &Client,
    opts: &RestoreOptions,
    plan: &RestorePlan,
) -> Result<u64, RestoreError> {
    match &plan.manifest.oplog {
        Some(o) => {
            replay_oplog_file(
                client,
                &opts.namespaces,
                &plan.dir,
                &plan.manifest,
                &o.file,
                None,
            )
            .await
        }
        None => Ok(0),
    }
}

/// Replays an oplog file (`file`) of the backup in `dir`, stopping after the last
/// entry at or before `until` (all of it when None).
pub(super) async fn replay_oplog_file(
    client: &Client,
    namespaces: &NsMapper,
    dir: &crate::storage::BackupFiles,
    manifest: &crate::catalog::Manifest,
    file: &str,
    until: Option<Timestamp>,
) -> Result<u64, RestoreError> {
    let entry = manifest
        .file(file)
        .cloned()
        .ok_or_else(|| RestoreError::Invalid(format!("the manifest does not list {file}")))?;
    let reader_dir = dir.clone();
    let dir = dir.path();
    let (tx, mut rx) = mpsc::channel::<Result<RawDocumentBuf, StorageError>>(256);
    let reader = tokio::task::spawn_blocking(move || {
        let stream = match storage::open_verified(&reader_dir, &entry) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        for doc in BsonReader::new(stream, reader_dir.path().join(&entry.path)) {
            if tx.blocking_send(doc).is_err() {
                return;
            }
        }
    });
    let admin = client.database("admin");
    let mut batch: Vec<Document> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut applied = 0u64;
    while let Some(raw) = rx.recv().await {
        let raw = raw.map_err(|source| RestoreError::Damaged {
            dir: dir.clone(),
            source,
        })?;
        if let (Some(limit), Ok(ts)) = (until, raw.get_timestamp("ts")) {
            if ts > limit {
                break;
            }
        }
        let entry = Document::try_from(raw.as_ref())
            .map_err(|e| RestoreError::Invalid(format!("an oplog entry cannot be decoded: {e}")))?;
        for op in convert(&entry, namespaces) {
            if op.get_str("op") == Ok("c") {
                applied += flush(&admin, &mut batch).await?;
                batch_bytes = 0;
                apply_command(&admin, op).await?;
                applied += 1;
                continue;
            }
            batch_bytes += raw.as_bytes().len();
            batch.push(op);
            if batch.len() >= APPLY_BATCH_OPS || batch_bytes >= APPLY_BATCH_BYTES {
                applied += flush(&admin, &mut batch).await?;
                batch_bytes = 0;
            }
        }
    }
    applied += flush(&admin, &mut batch).await?;
    drop(rx);
    let _ = reader.await;
    Ok(applied)
}

async fn flush(admin: &mongodb::Database, batch: &mut Vec<Document>) -> Result<u64, RestoreError> {
    if batch.is_empty() {
        return Ok(0);
    }
    let ops = std::mem::take(batch);
    let n = ops.len() as u64;
    admin
        .run_command(doc! { "applyOps": ops })
        .await
        .map_err(RestoreError::mongo("replaying the backup's oplog"))?;
    Ok(n)
}

async fn apply_command(admin: &mongodb::Database, op: Document) -> Result<(), RestoreError> {
    let what = format!(
        "replaying the oplog command {}",
        op.get_document("o")
            .map(|o| o.to_string())
            .unwrap_or_default()
    );
    match admin.run_command(doc! { "applyOps": [op] }).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind.as_ref(), ErrorKind::Command(c) if ALREADY_DONE.contains(&c.code)) => {
            Ok(())
        }
        Err(source) => Err(RestoreError::Mongo { what, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapper() -> NsMapper {
        NsMapper::new(
            &[],
            &["app.skip".to_string()],
            &["app.*".to_string()],
            &["copy.*".to_string()],
        )
        .unwrap()
    }

    #[test]
    fn inserts_become_idempotent_upserts_in_the_target() {
        let e = doc! { "op": "i", "ns": "app.c", "ui": bson::Uuid::new(), "o": { "_id": 1, "a": 2 }, "ts": bson::Timestamp { time: 1, increment: 1 } };
        assert_eq!(
            convert(&e, &mapper()),
            vec![doc! { "op": "u", "ns": "copy.c", "o": { "_id": 1, "a": 2 }, "o2": { "_id": 1 } }]
        );
        let skipped = doc! { "op": "i", "ns": "app.skip", "o": { "_id": 1 } };
        assert!(convert(&skipped, &mapper()).is_empty());
        assert!(convert(
            &doc! { "op": "n", "ns": "", "o": { "msg": "x" } },
            &mapper()
        )
        .is_empty());
    }

    #[test]
    fn index_builds_and_transactions_are_unwrapped() {
        let commit = doc! { "op": "c", "ns": "app.$cmd", "o": { "commitIndexBuild": "c", "indexBuildUUID": bson::Uuid::new(), "indexes": [ { "v": 2, "key": { "a": 1 }, "name": "a_1" } ] } };
        assert_eq!(
            convert(&commit, &mapper()),
            vec![
                doc! { "op": "c", "ns": "copy.$cmd", "o": { "createIndexes": "c", "v": 2, "key": { "a": 1 }, "name": "a_1" } }
            ]
        );
        let start =
            doc! { "op": "c", "ns": "app.$cmd", "o": { "startIndexBuild": "c", "indexes": [] } };
        assert!(convert(&start, &mapper()).is_empty());
        let txn = doc! { "op": "c", "ns": "admin.$cmd", "o": { "applyOps": [
            { "op": "i", "ns": "app.c", "o": { "_id": 5 } },
            { "op": "d", "ns": "app.skip", "o": { "_id": 6 } },
            { "op": "d", "ns": "app.c", "o": { "_id": 7 } },
        ] } };
        let ops = convert(&txn, &mapper());
        assert_eq!(ops.len(), 2);
        assert_eq!(
            ops[1],
            doc! { "op": "d", "ns": "copy.c", "o": { "_id": 7 } }
        );
    }

    #[test]
    fn ddl_follows_renames() {
        let create = doc! { "op": "c", "ns": "app.$cmd", "o": { "create": "v", "viewOn": "c", "pipeline": [] } };
        assert_eq!(
            convert(&create, &mapper()),
            vec![
                doc! { "op": "c", "ns": "copy.$cmd", "o": { "create": "v", "viewOn": "c", "pipeline": [] } }
            ]
        );
        let drop_db = doc! { "op": "c", "ns": "app.$cmd", "o": { "dropDatabase": 1 } };
        assert!(convert(&drop_db, &mapper()).is_empty());
    }

    #[test]
    fn renames_map_both_namespaces_or_are_left_out() {
        let rename = |from: &str, to: &str| {
            doc! { "op": "c", "ns": "admin.$cmd", "o": { "renameCollection": from, "to": to, "dropTarget": false } }
        };
        assert_eq!(
            convert(&rename("app.a", "app.b"), &mapper()),
            vec![
                doc! { "op": "c", "ns": "admin.$cmd", "o": { "renameCollection": "copy.a", "to": "copy.b", "dropTarget": false } }
            ]
        );
        // A drill's prefix: nothing may land outside it.
        let drill =
            NsMapper::new(&[], &[], &["*.*".to_string()], &["drill_*.*".to_string()]).unwrap();
        assert_eq!(
            convert(&rename("shop.orders", "shop.orders_old"), &drill),
            vec![
                doc! { "op": "c", "ns": "admin.$cmd", "o": { "renameCollection": "drill_shop.orders", "to": "drill_shop.orders_old", "dropTarget": false } }
            ]
        );
        // Into or out of what the restore leaves out: nothing to apply.
        assert!(convert(&rename("app.skip", "app.b"), &mapper()).is_empty());
        assert!(convert(&rename("app.a", "app.skip"), &mapper()).is_empty());
        // Without renames it is applied as logged.
        assert_eq!(
            convert(&rename("app.a", "app.b"), &NsMapper::default()),
            vec![rename("app.a", "app.b")]
        );
    }
}
