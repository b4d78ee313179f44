//! Copying one collection, or the oplog slice, into a backup: raw BSON in
//! natural order from a driver cursor, through a bounded channel, into a
//! compressing file on a blocking thread.

use bson::{doc, Bson, Document, RawDocument, RawDocumentBuf, Timestamp};
use futures_util::TryStreamExt;
use mongodb::Client;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{wanted_collection, BackupError, BackupProgress, BackupRequest, Namespace};
use crate::catalog::CollectionRecord;
use crate::storage::{escape_name, BackupWriter, FileEntry, FileSink, StorageError};

/// Documents per cursor batch: big enough to keep round trips rare, small
/// enough that a batch of large documents stays far below memory limits.
const BATCH_DOCS: u32 = 1000;
/// Bytes handed to the writer thread at a time.
const CHUNK_BYTES: usize = 1 << 20;
/// Chunks that may wait for the writer: bounds memory per collection.
const CHUNKS_IN_FLIGHT: usize = 4;

pub(super) struct Copied {
    pub record: CollectionRecord,
    pub files: Vec<FileEntry>,
}

/// `<coll>.metadata.json` as mongodump writes it: options, index specs,
/// uuid (hex) and type, in canonical Extended JSON.
pub fn metadata_json(
    name: &str,
    kind: &str,
    options: &Document,
    indexes: &[Document],
    uuid: Option<&bson::Binary>,
) -> Vec<u8> {
    let mut meta = serde_json::Map::new();
    meta.insert(
        "options".into(),
        Bson::Document(options.clone()).into_canonical_extjson(),
    );
    meta.insert(
        "indexes".into(),
        serde_json::Value::Array(
            indexes
                .iter()
                .map(|i| Bson::Document(i.clone()).into_canonical_extjson())
                .collect(),
        ),
    );
    if let Some(u) = uuid {
        meta.insert("uuid".into(), hex::encode(&u.bytes).into());
    }
    meta.insert("collectionName".into(), name.into());
    meta.insert("type".into(), kind.into());
    let mut out = serde_json::Value::Object(meta).to_string().into_bytes();
    out.push(b'\n');
    out
}

/// Writes bytes to a sink on a blocking thread; the async side only moves
/// buffers, so compression never stalls the runtime.
pub(super) struct BlockingSink {
    tx: mpsc::Sender<Vec<u8>>,
    task: tokio::task::JoinHandle<Result<FileEntry, StorageError>>,
}

impl BlockingSink {
    pub(super) fn start(mut sink: FileSink) -> BlockingSink {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
        let task = tokio::task::spawn_blocking(move || {
            while let Some(chunk) = rx.blocking_recv() {
                sink.write_all(&chunk)?;
            }
            sink.finish()
        });
        BlockingSink { tx, task }
    }

    /// Hands over a chunk; if the writer died, its error is the one to
    /// report (a full disk, say), not the closed channel.
    async fn send(&mut self, chunk: Vec<u8>) -> Result<(), BackupError> {
        if self.tx.send(chunk).await.is_err() {
            let (tx, _) = mpsc::channel(1);
            let sender = std::mem::replace(&mut self.tx, tx);
            drop(sender);
            return Err(self.join_error().await);
        }
        Ok(())
    }

    async fn join_error(&mut self) -> BackupError {
        match (&mut self.task).await {
            Ok(Err(e)) => e.into(),
            Ok(Ok(_)) => BackupError::Invalid("the file writer stopped early".into()),
            Err(e) => BackupError::Invalid(format!("the file writer failed: {e}")),
        }
    }

    pub(super) async fn finish(self) -> Result<FileEntry, BackupError> {
        drop(self.tx);
        match self.task.await {
            Ok(r) => Ok(r?),
            Err(e) => Err(BackupError::Invalid(format!("the file writer failed: {e}"))),
        }
    }
}

async fn write_small(
    writer: &BackupWriter,
    rel: &str,
    req: &BackupRequest,
    bytes: Vec<u8>,
) -> Result<FileEntry, BackupError> {
    let mut sink = BlockingSink::start(writer.file(rel, req.compression)?);
    sink.send(bytes).await?;
    sink.finish().await
}

/// Copies one collection (or saves one view's definition).
pub(super) async fn collection(
    client: &Client,
    req: &BackupRequest,
    writer: &BackupWriter,
    ns: &Namespace,
    cancel: &CancellationToken,
) -> Result<Copied, BackupError> {
    let full = format!("{}.{}", ns.db, ns.name);
    if ns.kind == "timeseries" {
        return Err(BackupError::Invalid(format!(
            "{full} is a time-series collection, which mongo-backupd cannot back up yet; add \"{full}\" to the job's exclude list"
        )));
    }
    let db = client.database(&ns.db);
    // mongodump escapes collection names only: MongoDB already forbids
    // path characters in database names.
    let base = format!("{}/{}", ns.db, escape_name(&ns.name));
    let indexes: Vec<Document> = if ns.kind == "view" {
        Vec::new()
    } else {
        db.run_cursor_command(doc! { "listIndexes": &ns.name })
            .await
            .map_err(BackupError::mongo(format!("listing the indexes of {full}")))?
            .try_collect()
            .await
            .map_err(BackupError::mongo(format!("listing the indexes of {full}")))?
    };
    let meta = metadata_json(&ns.name, &ns.kind, &ns.options, &indexes, ns.uuid.as_ref());
    let meta_entry = write_small(writer, &format!("{base}.metadata.json"), req, meta).await?;
    if ns.kind == "view" {
        return Ok(Copied {
            record: CollectionRecord {
                db: ns.db.clone(),
                name: ns.name.clone(),
                kind: ns.kind.clone(),
                documents: 0,
                data_file: None,
                metadata_file: meta_entry.path.clone(),
            },
            files: vec![meta_entry],
        });
    }
    let mut sink = BlockingSink::start(writer.file(&format!("{base}.bson"), req.compression)?);
    let what = format!("reading {full}");
    let mut cursor = db
        .collection::<RawDocumentBuf>(&ns.name)
        .find(doc! {})
        .batch_size(BATCH_DOCS)
        .await
        .map_err(BackupError::mongo(what.clone()))?;
    let progress = req.progress.as_deref();
    let documents = stream_into(&mut cursor, &mut sink, &what, cancel, progress, |_| true).await?;
    let data_entry = sink.finish().await?;
    tracing::debug!("Copied {documents} documents of {full}.");
    Ok(Copied {
        record: CollectionRecord {
            db: ns.db.clone(),
            name: ns.name.clone(),
            kind: ns.kind.clone(),
            documents,
            data_file: Some(data_entry.path.clone()),
            metadata_file: meta_entry.path.clone(),
        },
        files: vec![meta_entry, data_entry],
    })
}

/// Copies the documents of a cursor that `keep` accepts into a file, in
/// chunks; returns how many it copied.
pub(super) async fn stream_into(
    cursor: &mut mongodb::Cursor<RawDocumentBuf>,
    sink: &mut BlockingSink,
    what: &str,
    cancel: &CancellationToken,
    progress: Option<&BackupProgress>,
    keep: impl Fn(&RawDocument) -> bool,
) -> Result<u64, BackupError> {
    let mut chunk = Vec::with_capacity(CHUNK_BYTES);
    let mut copied = 0u64;
    loop {
        let next = tokio::select! {
            n = cursor.try_next() => n.map_err(BackupError::mongo(what))?,
            _ = cancel.cancelled() => return Err(BackupError::Cancelled),
        };
        let Some(doc) = next else { break };
        if !keep(&doc) {
            continue;
        }
        chunk.extend_from_slice(doc.as_bytes());
        copied += 1;
        if let Some(p) = progress {
            p.copied(1, doc.as_bytes().len() as u64);
        }
        if chunk.len() >= CHUNK_BYTES {
            sink.send(std::mem::replace(
                &mut chunk,
                Vec::with_capacity(CHUNK_BYTES),
            ))
            .await?;
        }
    }
    if !chunk.is_empty() {
        sink.send(chunk).await?;
    }
    Ok(copied)
}

fn entry_ts(entry: &RawDocument) -> Option<Timestamp> {
    entry.get_timestamp("ts").ok()
}

/// Whether an oplog entry concerns the backed-up namespaces. Entries of
/// excluded namespaces stay out of the backup (their data must not leak
/// into it); no-ops carry nothing to restore.
pub(super) fn entry_selected(req: &BackupRequest, entry: &RawDocument) -> bool {
    let op = entry.get_str("op").unwrap_or("");
    let ns = entry.get_str("ns").unwrap_or("");
    if op == "n" {
        return false;
    }
    let Some((db, coll)) = ns.split_once('.') else {
        return false;
    };
    if coll == "$cmd" {
        if op == "c" && db == "admin" {
            // Transactions and applyOps: kept when any inner op is ours;
            // restore filters the inner ops again.
            let inner = entry
                .get_document("o")
                .ok()
                .and_then(|o| o.get_array("applyOps").ok());
            return inner.is_some_and(|ops| {
                ops.into_iter()
                    .flatten()
                    .any(|op| op.as_document().is_some_and(|d| entry_selected(req, d)))
            });
        }
        return match db {
            "local" | "config" | "admin" => false,
            _ => req.selection.includes_db(db),
        };
    }
    wanted_collection(req, db, coll)
}

/// Saves the oplog entries in (t0, t1], after checking that the entry at
/// t0 is still there: if it is not, the oplog rolled past the start of the
/// backup and changes made during the copy are lost.
pub(super) async fn oplog_slice(
    client: &Client,
    req: &BackupRequest,
    writer: &BackupWriter,
    file: &str,
    t0: Timestamp,
    t1: Timestamp,
    cancel: &CancellationToken,
) -> Result<(FileEntry, u64), BackupError> {
    let what = "reading the oplog slice of the backup";
    let mut cursor = client
        .database("local")
        .collection::<RawDocumentBuf>("oplog.rs")
        .find(doc! { "ts": { "$gte": t0, "$lte": t1 } })
        .batch_size(BATCH_DOCS)
        .await
        .map_err(BackupError::mongo(what))?;
    let first = cursor.try_next().await.map_err(BackupError::mongo(what))?;
    match first.as_deref().and_then(entry_ts) {
        Some(ts) if ts == t0 => {}
        Some(ts) => {
            return Err(BackupError::OplogRolledOver {
                t0: t0.into(),
                oldest: ts.into(),
            })
        }
        None => {
            return Err(BackupError::OplogRolledOver {
                t0: t0.into(),
                oldest: t1.into(),
            })
        }
    }
    let mut sink = BlockingSink::start(writer.file(file, req.compression)?);
    let entries = stream_into(
        &mut cursor,
        &mut sink,
        what,
        cancel,
        req.progress.as_deref(),
        |e| entry_selected(req, e),
    )
    .await?;
    let entry = sink.finish().await?;
    Ok((entry, entries))
}
