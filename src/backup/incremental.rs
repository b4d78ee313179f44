//! Incremental backups: the oplog slice since the end of the previous
//! backup in the chain.
//!
//! A chain is a full backup followed by incrementals, each continuing the
//! one before it. An incremental continues the newest complete full or
//! incremental of the same source in the same storage location, so the
//! full and incremental jobs of one source form one chain. Continuity is
//! checked, never assumed: the read starts at the previous end (`$gte`)
//! and the first entry must be exactly that timestamp; otherwise the oplog
//! has rolled past it and the run fails with an oplog gap that names the
//! lost interval.

use bson::{doc, Bson, Document, RawDocumentBuf, Timestamp};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::error::ErrorKind;
use tokio_util::sync::CancellationToken;

use super::dump::{stream_into, BlockingSink};
use super::{BackupError, BackupRequest};
use crate::catalog::{self, BackupKind, BackupListing, Manifest, OpTime};

/// The backup an incremental continues, and where its slice ends.
#[derive(Debug, Clone)]
pub struct ChainTip {
    pub id: String,
    pub end: OpTime,
}

/// The newest complete full or incremental of `source` in `root`.
pub fn chain_tip(root: &std::path::Path, source: &str) -> Result<Option<ChainTip>, BackupError> {
    let listings = catalog::list_backups(root, None).map_err(|e| {
        BackupError::Invalid(format!(
            "cannot list the backups in {}: {e}",
            root.display()
        ))
    })?;
    Ok(newest_in_chain(&listings, source))
}

fn newest_in_chain(listings: &[BackupListing], source: &str) -> Option<ChainTip> {
    listings
        .iter()
        .filter(|l| l.is_complete())
        .filter_map(|l| l.manifest.as_ref())
        .filter(|m| {
            m.source == source && matches!(m.kind, BackupKind::Full | BackupKind::Incremental)
        })
        .filter_map(|m| m.oplog_end.map(|end| (end, m)))
        .max_by(|(a, ma), (b, mb)| a.cmp(b).then(ma.id.cmp(&mb.id)))
        .map(|(end, m)| ChainTip {
            id: m.id.clone(),
            end,
        })
}

fn is_capped_position_lost(e: &mongodb::error::Error) -> bool {
    matches!(e.kind.as_ref(), ErrorKind::Command(c) if c.code == 136)
}

/// Reads the oplog from `tip.end` to now into the incremental's file.
/// Returns (last timestamp, entries written).
pub(super) async fn slice_since(
    client: &mongodb::Client,
    req: &BackupRequest,
    writer: &crate::storage::BackupWriter,
    tip: &ChainTip,
    cancel: &CancellationToken,
) -> Result<(Timestamp, u64, crate::storage::FileEntry), BackupError> {
    let start: Timestamp = tip.end.into();
    let end = super::newest_oplog_ts(client).await?;
    let gap = |oldest: Timestamp| BackupError::OplogGap {
        from: tip.end,
        oldest: oldest.into(),
        parent: tip.id.clone(),
    };
    let what = "reading the oplog since the previous backup";
    let oplog = client
        .database("local")
        .collection::<RawDocumentBuf>("oplog.rs");
    let mut cursor = oplog
        .find(doc! { "ts": { "$gte": start, "$lte": end } })
        .batch_size(1000)
        .await
        .map_err(BackupError::mongo(what))?;
    let first = match cursor.try_next().await {
        Ok(f) => f,
        Err(e) if is_capped_position_lost(&e) => return Err(gap(end)),
        Err(e) => return Err(BackupError::mongo(what)(e)),
    };
    match first.as_deref().and_then(|d| d.get_timestamp("ts").ok()) {
        Some(ts) if ts == start => {}
        Some(ts) => return Err(gap(ts)),
        None => {
            let oldest = oldest_oplog_ts(client).await.unwrap_or(end);
            return Err(gap(oldest));
        }
    }
    let mut sink = BlockingSink::start(writer.file("oplog.bson", req.compression)?);
    let copied = stream_into(
        &mut cursor,
        &mut sink,
        what,
        cancel,
        req.progress.as_deref(),
        |e| super::dump::entry_selected(req, e),
    )
    .await;
    let entries = match copied {
        Err(BackupError::Mongo { source, .. }) if is_capped_position_lost(&source) => {
            return Err(gap(end))
        }
        other => other?,
    };
    Ok((end, entries, sink.finish().await?))
}

async fn oldest_oplog_ts(client: &mongodb::Client) -> Option<Timestamp> {
    let first: Option<Document> = client
        .database("local")
        .collection::<Document>("oplog.rs")
        .find_one(doc! {})
        .sort(doc! { "$natural": 1 })
        .await
        .ok()?;
    match first?.get("ts") {
        Some(Bson::Timestamp(t)) => Some(*t),
        _ => None,
    }
}

/// The manifest of an incremental: no collections, the slice and its parent.
#[allow(clippy::too_many_arguments)]
pub(super) fn manifest(
    req: &BackupRequest,
    id: &str,
    server_version: String,
    started: DateTime<Utc>,
    tip: &ChainTip,
    end: Timestamp,
    entries: u64,
    file: crate::storage::FileEntry,
) -> Manifest {
    Manifest {
        format_version: catalog::FORMAT_VERSION,
        id: id.to_string(),
        kind: BackupKind::Incremental,
        job: req.job.clone(),
        source: req.source_name.clone(),
        server_version,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: started,
        finished_at: Utc::now(),
        consistent: true,
        oplog_start: Some(tip.end),
        oplog_end: Some(end.into()),
        compression: req.compression.kind,
        collections: Vec::new(),
        oplog: Some(catalog::OplogRecord {
            file: file.path.clone(),
            entries,
        }),
        files: vec![file],
        parent: Some(tip.id.clone()),
        note: req.note.clone(),
        requested_by: req.requested_by.clone(),
        bridge: None,
        encryption: None,
        copies: Vec::new(),
        drills: Vec::new(),
    }
}
