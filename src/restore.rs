//! Restoring a backup into a MongoDB deployment.
//!
//! Nothing is written to the target before every file of the backup has
//! passed its checksum: a damaged backup is refused whole, with the file
//! named. Then each collection is created with its options, its documents
//! inserted in unordered batches (documents already present are left as
//! they are, so a repeated restore does not duplicate anything), its
//! indexes built after the data, views created last, and the backup's
//! oplog slice replayed up to T1 so the result is consistent to that
//! instant.

mod namespaces;
pub mod pitr;
mod replay;
pub mod target;

use std::path::PathBuf;

use bson::{doc, Document, RawDocumentBuf};
use mongodb::error::ErrorKind;
use mongodb::{Client, Database};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::catalog::{CatalogError, CollectionRecord, Manifest, MANIFEST_FILE};
use crate::source::{self, SourceError};
use crate::storage::{self, BackupFiles, BsonReader, StorageError};

pub use namespaces::{NsMapper, NsPattern};

/// Documents per insert batch (and at most this many bytes), below the
/// server's 100,000-operation and 48 MB message limits.
const INSERT_BATCH_DOCS: usize = 1000;
const INSERT_BATCH_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The backup: a directory, or a prefix in an object store; with the
    /// identities that decrypt it when it is encrypted.
    pub from: BackupFiles,
    pub uri: String,
    /// Drop each target collection before restoring it.
    pub drop: bool,
    pub namespaces: NsMapper,
    pub dry_run: bool,
    pub no_indexes: bool,
    /// Replay the backup's oplog slice (on by default; without it the
    /// result is not consistent to one instant).
    pub oplog_replay: bool,
    pub connect_timeout: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("the backup at {dir} is damaged and was not restored: {source}")]
    Damaged {
        dir: PathBuf,
        #[source]
        source: StorageError,
    },
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{what} failed: {source}")]
    Mongo {
        what: String,
        #[source]
        source: mongodb::error::Error,
    },
    #[error("the restore was cancelled; the target may hold part of the data (run it again, with --drop to start over)")]
    Cancelled,
    #[error("{0}")]
    Invalid(String),
}

impl RestoreError {
    fn mongo(what: impl Into<String>) -> impl FnOnce(mongodb::error::Error) -> RestoreError {
        let what = what.into();
        move |source| RestoreError::Mongo { what, source }
    }
}

/// One collection or view to restore, source and target names.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedCollection {
    pub record: CollectionRecord,
    pub target_db: String,
    pub target_name: String,
}

#[derive(Debug, Clone)]
pub struct RestorePlan {
    pub dir: BackupFiles,
    pub manifest: Manifest,
    pub collections: Vec<PlannedCollection>,
}

impl RestorePlan {
    /// The plan as `--dry-run` prints it.
    pub fn render(&self) -> String {
        let m = &self.manifest;
        let mut out = format!(
            "Backup {} (job {}, {} of {}), taken {}.\n",
            m.id,
            m.job,
            serde_json::to_value(m.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            m.source,
            m.finished_at.to_rfc3339()
        );
        match m.oplog_end {
            Some(t1) => out.push_str(&format!(
                "Restores the data as of {} ({t1}).\n",
                t1.to_datetime().to_rfc3339()
            )),
            None => out.push_str(
                "The backup is not consistent to one instant (the source had no oplog).\n",
            ),
        }
        for c in &self.collections {
            let what = if c.record.kind == "view" {
                "view".to_string()
            } else {
                format!("{} documents", c.record.documents)
            };
            out.push_str(&format!(
                "  {}.{} -> {}.{} ({what})\n",
                c.record.db, c.record.name, c.target_db, c.target_name
            ));
        }
        if let Some(o) = &m.oplog {
            out.push_str(&format!(
                "Then replays {} oplog entries up to T1.\n",
                o.entries
            ));
        }
        out
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestoreSummary {
    pub collections: usize,
    pub inserted: u64,
    /// Documents that were already in the target and left untouched.
    pub already_present: u64,
    pub oplog_applied: u64,
}

/// Loads the manifest, verifies every file, and works out what goes where.
/// Blocking (it reads every file; see [`plan_blocking`] from async code).
pub fn plan(opts: &RestoreOptions) -> Result<RestorePlan, RestoreError> {
    let dir = opts.from.clone();
    let manifest_path = dir.path().join(MANIFEST_FILE);
    let bytes = match dir.read_manifest() {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return Err(RestoreError::Invalid(format!(
                "{} has no {MANIFEST_FILE}; a backup without a manifest is not complete",
                dir.path().display()
            )))
        }
        Err(e) => {
            return Err(RestoreError::Invalid(format!(
                "cannot read {}: {e}",
                manifest_path.display()
            )))
        }
    };
    let manifest = Manifest::from_json(&bytes, &manifest_path)?;
    check_identity(&dir, &manifest)?;
    for file in &manifest.files {
        storage::verify_file(&dir, file).map_err(|source| RestoreError::Damaged {
            dir: dir.path(),
            source,
        })?;
    }
    let mut collections = Vec::new();
    for record in &manifest.collections {
        let Some((target_db, target_name)) = opts.namespaces.map(&record.db, &record.name) else {
            continue;
        };
        collections.push(PlannedCollection {
            record: record.clone(),
            target_db,
            target_name,
        });
    }
    Ok(RestorePlan {
        dir,
        manifest,
        collections,
    })
}

/// Restores a backup. With `dry_run` only the plan is computed.
pub async fn run(
    opts: &RestoreOptions,
    cancel: &CancellationToken,
) -> Result<(RestorePlan, RestoreSummary), RestoreError> {
    let plan = plan_blocking(opts).await?;
    if opts.dry_run {
        return Ok((plan, RestoreSummary::default()));
    }
    let client = source::connect(&opts.uri, opts.connect_timeout).await?;
    let mut summary = RestoreSummary::default();
    let work = async {
        source::describe(&client, &opts.uri).await?;
        // Collections first, views after (a view may be on any collection).
        let (views, colls): (Vec<_>, Vec<_>) = plan
            .collections
            .iter()
            .partition(|c| c.record.kind == "view");
        for c in colls.iter().chain(views.iter()) {
            restore_collection(&client, opts, &plan, c, &mut summary).await?;
        }
        if opts.oplog_replay {
            summary.oplog_applied = replay::replay_backup_oplog(&client, opts, &plan).await?;
        }
        Ok::<_, RestoreError>(())
    };
    let result = tokio::select! {
        r = work => r,
        _ = cancel.cancelled() => Err(RestoreError::Cancelled),
    };
    source::close(client).await;
    result?;
    Ok((plan, summary))
}

/// [`plan`] on a blocking thread.
pub async fn plan_blocking(opts: &RestoreOptions) -> Result<RestorePlan, RestoreError> {
    let opts = opts.clone();
    tokio::task::spawn_blocking(move || plan(&opts))
        .await
        .map_err(|e| RestoreError::Invalid(format!("the restore plan could not be made: {e}")))?
}

/// Refuses an encrypted backup without an identity, or with one that
/// holds none of its recipients' keys, before anything is read, saying
/// which keys the backup was encrypted to.
pub(crate) fn check_identity(files: &BackupFiles, manifest: &Manifest) -> Result<(), RestoreError> {
    let Some(enc) = &manifest.encryption else {
        return Ok(());
    };
    let Some(ids) = files.identities() else {
        return Err(RestoreError::Invalid(format!(
            "backup {} is encrypted (age, to the keys {}); pass --identity FILE with the \
             private key of one of them",
            manifest.id,
            enc.recipients.join(", ")
        )));
    };
    let have = ids.fingerprints();
    if !have.iter().any(|f| enc.recipients.contains(f)) {
        return Err(RestoreError::Invalid(format!(
            "none of the keys in the identity file ({}) can decrypt backup {}: it is encrypted \
             to {}; use the identity file that holds one of those keys",
            have.join(", "),
            manifest.id,
            enc.recipients.join(", ")
        )));
    }
    Ok(())
}

pub(crate) async fn metadata(
    dir: &BackupFiles,
    manifest: &Manifest,
    rel: &str,
) -> Result<serde_json::Value, RestoreError> {
    let entry = manifest
        .file(rel)
        .cloned()
        .ok_or_else(|| RestoreError::Invalid(format!("the manifest does not list {rel}")))?;
    let files = dir.clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut reader = storage::open_verified(&files, &entry)?;
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut text)
            .map_err(|e| storage::map_read_error(&files.path().join(&entry.path), "reading", e))?;
        Ok::<_, StorageError>(text)
    })
    .await
    .map_err(|e| RestoreError::Invalid(format!("cannot read {rel}: {e}")))?;
    let text = read.map_err(|source| RestoreError::Damaged {
        dir: dir.path(),
        source,
    })?;
    serde_json::from_slice(&text)
        .map_err(|e| RestoreError::Invalid(format!("{rel} is not valid JSON: {e}")))
}

/// A metadata field as BSON (the file holds canonical Extended JSON).
pub(crate) fn ext_json_doc(
    value: Option<&serde_json::Value>,
    what: &str,
) -> Result<Document, RestoreError> {
    match value {
        None => Ok(Document::new()),
        Some(v) => match bson::Bson::try_from(v.clone()) {
            Ok(bson::Bson::Document(d)) => Ok(d),
            _ => Err(RestoreError::Invalid(format!("{what} is not a document"))),
        },
    }
}

async fn restore_collection(
    client: &Client,
    opts: &RestoreOptions,
    plan: &RestorePlan,
    c: &PlannedCollection,
    summary: &mut RestoreSummary,
) -> Result<(), RestoreError> {
    let target = format!("{}.{}", c.target_db, c.target_name);
    let db = client.database(&c.target_db);
    let meta = metadata(&plan.dir, &plan.manifest, &c.record.metadata_file).await?;
    let options = ext_json_doc(
        meta.get("options"),
        &format!("the options in {}", c.record.metadata_file),
    )?;
    if opts.drop {
        db.collection::<Document>(&c.target_name)
            .drop()
            .await
            .map_err(RestoreError::mongo(format!("dropping {target}")))?;
    }
    create_collection(&db, &c.target_name, options).await?;
    summary.collections += 1;
    if c.record.kind == "view" {
        return Ok(());
    }
    if let Some(data) = &c.record.data_file {
        let (inserted, present) =
            load_documents(&db, &c.target_name, &plan.dir, &plan.manifest, data).await?;
        summary.inserted += inserted;
        summary.already_present += present;
        if present > 0 {
            tracing::warn!("{present} documents of {target} were already in the target and were left as they are.");
        }
    }
    if !opts.no_indexes {
        let indexes: Vec<Document> = meta
            .get("indexes")
            .and_then(|i| i.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| ext_json_doc(Some(v), "an index").ok())
                    .collect()
            })
            .unwrap_or_default();
        let specs: Vec<Document> = indexes
            .into_iter()
            .filter(|i| i.get_str("name") != Ok("_id_"))
            .map(|mut i| {
                i.remove("ns");
                i
            })
            .collect();
        if !specs.is_empty() {
            db.run_command(doc! { "createIndexes": &c.target_name, "indexes": specs })
                .await
                .map_err(RestoreError::mongo(format!(
                    "building the indexes of {target}"
                )))?;
        }
    }
    Ok(())
}

/// Creates a collection or view with its options; an existing one is kept
/// (restoring into a database that already has it must work).
async fn create_collection(
    db: &Database,
    name: &str,
    options: Document,
) -> Result<(), RestoreError> {
    let mut cmd = doc! { "create": name };
    cmd.extend(options);
    match db.run_command(cmd).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind.as_ref(), ErrorKind::Command(c) if c.code == 48) => Ok(()),
        Err(e) => Err(RestoreError::Mongo {
            what: format!("creating {}.{name}", db.name()),
            source: e,
        }),
    }
}

/// Streams a data file into the target in unordered batches. Returns
/// (inserted, already present).
async fn load_documents(
    db: &Database,
    coll: &str,
    dir: &BackupFiles,
    manifest: &Manifest,
    rel: &str,
) -> Result<(u64, u64), RestoreError> {
    let entry = manifest
        .file(rel)
        .cloned()
        .ok_or_else(|| RestoreError::Invalid(format!("the manifest does not list {rel}")))?;
    let (tx, mut rx) = mpsc::channel::<Result<Vec<RawDocumentBuf>, StorageError>>(2);
    let dir_owned = dir.clone();
    let reader_task = tokio::task::spawn_blocking(move || {
        let send_err = |tx: &mpsc::Sender<_>, e| {
            let _ = tx.blocking_send(Err(e));
        };
        let reader = match storage::open_verified(&dir_owned, &entry) {
            Ok(r) => r,
            Err(e) => return send_err(&tx, e),
        };
        let mut batch = Vec::new();
        let mut bytes = 0;
        for doc in BsonReader::new(reader, dir_owned.path().join(&entry.path)) {
            match doc {
                Ok(d) => {
                    bytes += d.as_bytes().len();
                    batch.push(d);
                    if batch.len() >= INSERT_BATCH_DOCS || bytes >= INSERT_BATCH_BYTES {
                        bytes = 0;
                        if tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => return send_err(&tx, e),
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(Ok(batch));
        }
    });
    let collection = db.collection::<RawDocumentBuf>(coll);
    let target = format!("{}.{coll}", db.name());
    let (mut inserted, mut present) = (0u64, 0u64);
    while let Some(batch) = rx.recv().await {
        let batch = batch.map_err(|source| RestoreError::Damaged {
            dir: dir.path(),
            source,
        })?;
        let n = batch.len() as u64;
        match collection.insert_many(batch).ordered(false).await {
            Ok(r) => inserted += r.inserted_ids.len() as u64,
            Err(e) => {
                let dups = duplicate_only(&e).ok_or_else(|| RestoreError::Mongo {
                    what: format!("inserting into {target}"),
                    source: e,
                })?;
                present += dups;
                inserted += n - dups;
            }
        }
    }
    let _ = reader_task.await;
    Ok((inserted, present))
}

/// How many documents a failed unordered insert skipped because their
/// `_id` already existed, when that is all that went wrong.
fn duplicate_only(e: &mongodb::error::Error) -> Option<u64> {
    match e.kind.as_ref() {
        ErrorKind::InsertMany(im) if im.write_concern_error.is_none() => {
            let errs = im.write_errors.as_ref()?;
            // Only an equal `_id` means "the same document is already
            // there"; a clash on another unique index is a real conflict.
            errs.iter()
                .all(|w| w.code == 11000 && w.message.contains(" index: _id_ "))
                .then_some(errs.len() as u64)
        }
        _ => None,
    }
}
