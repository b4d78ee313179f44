//! Reading the documents of a backup as they were at its consistent point,
//! or at a chosen time of a point-in-time chain, without a server.
//!
//! A full backup's collection files are copied while writes continue, so
//! on their own they are not consistent: the backup's oplog slice (T0, T1]
//! applied to them gives the data as of T1 (what a restore does with
//! `applyOps`). A point-in-time snapshot also applies the incrementals'
//! oplog (and bridges) up to the chosen time. Here the oplog is applied
//! without a server and with memory bounded by one collection's share of
//! the oplog, never by the data:
//!
//! 1. one pass over the oplog files works out which collections exist at
//!    the end (creates, drops, renames, index builds) and which files touch
//!    which namespace;
//! 2. for each collection, the entries that change it are loaded, folded
//!    per `_id` (an insert or a replacement resets a document, a delete
//!    removes it, other updates wait for the document they change);
//! 3. its collection file is streamed and each affected document patched
//!    on the way; documents the file does not hold (inserted after it was
//!    copied) follow, in oplog order.
//!
//! Updates are applied as oplog application does: `$v: 2` diffs, 4.4-style
//! `$set`/`$unset` and replacements; an update of a document that is not
//! there creates it, as `applyOps` (and so a restore) does. Commands that
//! change data in ways that cannot be reproduced here make the collections
//! they touch fail with a clear error instead of giving a wrong answer.
//!
//! Everything here is blocking; for backups in object stores it must run
//! on a blocking thread of a tokio runtime (see [`crate::storage::BackupFiles`]).

mod catalog;
mod diff;
mod documents;
mod oplog;
mod update;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod update_tests;

use std::io::Read;
use std::path::PathBuf;

use bson::{Bson, Document, Timestamp};

use crate::catalog::{BackupKind, CatalogError, Manifest, OpTime, MANIFEST_FILE};
use crate::restore::pitr::{Link, PitrPlan};
use crate::storage::{self, BackupFiles, StorageError};

pub use documents::Documents;

use catalog::{Catalog, Lineage, START};
use oplog::{OplogFile, OplogStream};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("backup {backup} at {} is damaged: {source}", dir.display())]
    Damaged {
        backup: String,
        dir: PathBuf,
        #[source]
        source: Box<StorageError>,
    },
    #[error(
        "the oplog of backup {backup} cannot be applied at {at} ({}): {detail}; restore the \
         backup into a server instead, or leave the affected collections out",
        file.display()
    )]
    Unapplicable {
        backup: String,
        file: PathBuf,
        at: OpTime,
        detail: String,
    },
    #[error(
        "the documents of {ns} cannot be read from the backup: {detail}; leave it out \
         (--ns-exclude {ns}) or restore the backup into a server instead"
    )]
    Unreadable { ns: String, detail: String },
    #[error("{0}")]
    Invalid(String),
}

impl SnapshotError {
    fn damaged(link: &Link, source: StorageError) -> SnapshotError {
        SnapshotError::Damaged {
            backup: link.manifest.id.clone(),
            dir: link.dir.path(),
            source: Box::new(source),
        }
    }
}

/// A collection (or view) of the snapshot, with its metadata as of the
/// snapshot's instant.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotCollection {
    pub db: String,
    pub name: String,
    /// `collection` or `view` (views have no documents).
    pub kind: String,
    /// The options it was created with (validator, collation, capped, ...),
    /// as in `<coll>.metadata.json`.
    pub options: Document,
    /// Index specifications, `_id_` included.
    pub indexes: Vec<Document>,
    lineage: Lineage,
}

impl SnapshotCollection {
    /// `db.name`.
    pub fn namespace(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }

    pub fn is_view(&self) -> bool {
        self.kind == "view"
    }

    /// The full backup's data file its documents start from, if any.
    pub fn data_file(&self) -> Option<&str> {
        self.lineage.data_file.as_deref()
    }
}

/// The data of one full backup at its consistent point, or of a chain at a
/// point in time.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The full backup whose files are read first, then the backups whose
    /// oplog follows.
    links: Vec<Link>,
    files: Vec<OplogFile>,
    until: Option<Timestamp>,
    as_of: Option<OpTime>,
    collections: Vec<SnapshotCollection>,
}

impl Snapshot {
    /// A full (or manual) backup at its consistent point T1. Every file's
    /// checksum is checked first, so a damaged backup is refused whole;
    /// an encrypted one needs `files` to carry the identities.
    pub fn of_backup(files: BackupFiles) -> Result<Snapshot, SnapshotError> {
        let manifest_path = files.path().join(MANIFEST_FILE);
        let bytes = files
            .read_manifest()
            .map_err(CatalogError::from)?
            .ok_or_else(|| CatalogError::NoManifest { dir: files.path() })?;
        let manifest = Manifest::from_json(&bytes, &manifest_path)?;
        if manifest.kind == BackupKind::Incremental {
            return Err(SnapshotError::Invalid(format!(
                "backup {} is an incremental: it holds only oplog entries; read a point in \
                 time of its chain instead (export --at TIME --job JOB)",
                manifest.id
            )));
        }
        let link = Link {
            dir: files,
            manifest,
        };
        check_link(&link)?;
        let as_of = link.manifest.oplog_end.filter(|_| link.manifest.consistent);
        let files = link
            .manifest
            .oplog
            .iter()
            .map(|o| OplogFile::new(0, o.file.clone()))
            .collect();
        Snapshot::open(vec![link], files, None, as_of)
    }

    /// The point in time a checked [`PitrPlan`] restores to (the plan has
    /// verified every file it needs).
    pub fn of_plan(plan: &PitrPlan) -> Result<Snapshot, SnapshotError> {
        let mut links = vec![plan.full.clone()];
        links.extend(plan.incrementals.iter().cloned());
        let mut files = Vec::new();
        for (i, link) in links.iter().enumerate() {
            if i > 0 && link.manifest.kind == BackupKind::Full {
                // A full after the first only bridges: its bridge, then its
                // own slice (its data is already in the oplog).
                if let Some(b) = &link.manifest.bridge {
                    files.push(OplogFile::new(i, b.file.clone()));
                }
            }
            if let Some(o) = &link.manifest.oplog {
                files.push(OplogFile::new(i, o.file.clone()));
            }
        }
        Snapshot::open(links, files, plan.until, Some(plan.restores_to))
    }

    fn open(
        links: Vec<Link>,
        files: Vec<OplogFile>,
        until: Option<Timestamp>,
        as_of: Option<OpTime>,
    ) -> Result<Snapshot, SnapshotError> {
        let Some(base) = links.first() else {
            return Err(SnapshotError::Invalid(
                "a snapshot needs a full backup to start from".into(),
            ));
        };
        let mut cat = Catalog::default();
        for record in &base.manifest.collections {
            let meta = read_metadata(base, &record.metadata_file)?;
            let doc_of = |key: &str| match meta.get(key).cloned().map(Bson::try_from) {
                Some(Ok(Bson::Document(d))) => Some(d),
                _ => None,
            };
            let indexes = match meta.get("indexes").and_then(|v| v.as_array()) {
                Some(a) => a
                    .iter()
                    .filter_map(|v| match Bson::try_from(v.clone()) {
                        Ok(Bson::Document(d)) => Some(d),
                        _ => None,
                    })
                    .collect(),
                None => Vec::new(),
            };
            cat.add_base(Lineage {
                db: record.db.clone(),
                name: record.name.clone(),
                kind: record.kind.clone(),
                options: doc_of("options").unwrap_or_default(),
                indexes,
                data_file: record.data_file.clone(),
                segments: vec![catalog::Segment {
                    ns: format!("{}.{}", record.db, record.name),
                    from: START,
                    to: None,
                }],
                broken: None,
            });
        }
        let order: Vec<usize> = (0..files.len()).collect();
        let mut stream =
            OplogStream::new(&links, &files, order, until, |_: &str, _| false).summarizing();
        for op in stream.by_ref() {
            cat.apply(&op?);
        }
        let files = stream.summaries.take().unwrap_or_default();
        let collections = cat
            .into_alive()
            .into_iter()
            .map(|l| SnapshotCollection {
                db: l.db.clone(),
                name: l.name.clone(),
                kind: l.kind.clone(),
                options: l.options.clone(),
                indexes: l.indexes.clone(),
                lineage: l,
            })
            .collect();
        Ok(Snapshot {
            links,
            files,
            until,
            as_of,
            collections,
        })
    }

    /// The instant the documents reflect: T1 of the backup, or the point
    /// in time of the chain; None for a backup of a server without an
    /// oplog, whose data is from somewhere during the copy.
    pub fn as_of(&self) -> Option<OpTime> {
        self.as_of
    }

    /// The backups read: the full first.
    pub fn backups(&self) -> impl Iterator<Item = &Manifest> {
        self.links.iter().map(|l| &l.manifest)
    }

    /// Collections and views in `db.name` order.
    pub fn collections(&self) -> &[SnapshotCollection] {
        &self.collections
    }

    /// The documents of `coll` at the snapshot's instant: the collection
    /// file's in their stored order (changed ones patched in place), then
    /// those inserted later, in oplog order.
    pub fn documents(&self, coll: &SnapshotCollection) -> Result<Documents<'_>, SnapshotError> {
        let lineage = &coll.lineage;
        if let Some(detail) = &lineage.broken {
            return Err(SnapshotError::Unreadable {
                ns: coll.namespace(),
                detail: detail.clone(),
            });
        }
        if coll.is_view() {
            return Ok(Documents::empty(self));
        }
        documents::open(self, coll)
    }

    /// The oplog files `lineage` needs (every one touching one of its
    /// names, and those whose transactions run into them), in order.
    fn files_for(&self, lineage: &Lineage) -> Vec<usize> {
        let mut wanted = vec![false; self.files.len()];
        for (i, f) in self.files.iter().enumerate() {
            if lineage.segments.iter().any(|s| f.touched.contains(&s.ns)) {
                wanted[i] = true;
                let mut j = i;
                while j > 0 && self.files[j - 1].carries_txn {
                    j -= 1;
                    wanted[j] = true;
                }
            }
        }
        (0..self.files.len()).filter(|&i| wanted[i]).collect()
    }

    fn stream<'a>(
        &'a self,
        lineage: &'a Lineage,
    ) -> OplogStream<'a, impl FnMut(&str, oplog::Pos) -> bool + 'a> {
        OplogStream::new(
            &self.links,
            &self.files,
            self.files_for(lineage),
            self.until,
            move |ns: &str, pos| lineage.wants(ns, pos),
        )
    }
}

/// Refuses an encrypted backup without the right identity, then checks
/// every stored file against the manifest.
fn check_link(link: &Link) -> Result<(), SnapshotError> {
    crate::restore::check_identity(&link.dir, &link.manifest)
        .map_err(|e| SnapshotError::Invalid(e.to_string()))?;
    for file in &link.manifest.files {
        storage::verify_file(&link.dir, file).map_err(|e| SnapshotError::damaged(link, e))?;
    }
    Ok(())
}

/// A collection's `metadata.json` (canonical Extended JSON).
fn read_metadata(link: &Link, rel: &str) -> Result<serde_json::Value, SnapshotError> {
    let damaged = |source| SnapshotError::damaged(link, source);
    let entry = link.manifest.file(rel).ok_or_else(|| {
        SnapshotError::Invalid(format!(
            "the manifest of backup {} does not list {rel}",
            link.manifest.id
        ))
    })?;
    let mut reader = storage::open_verified(&link.dir, entry).map_err(damaged)?;
    let mut text = Vec::new();
    reader.read_to_end(&mut text).map_err(|e| {
        damaged(storage::map_read_error(
            &link.dir.path().join(rel),
            "reading",
            e,
        ))
    })?;
    serde_json::from_slice(&text).map_err(|e| {
        damaged(StorageError::Corrupt {
            path: link.dir.path().join(rel),
            detail: format!("it is not valid JSON: {e}"),
        })
    })
}
