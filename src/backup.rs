//! Full backups: a consistent logical snapshot in `mongodump`'s layout.
//!
//! Consistency works the way `mongodump --oplog` does it, which also holds
//! for dumps longer than MongoDB's snapshot window: note the newest oplog
//! timestamp T0, copy every selected collection, note T1, and save the
//! oplog entries in (T0, T1]. Restoring the data and replaying that slice
//! yields the database exactly as of T1. The copy streams raw BSON from
//! the driver to the compressor on blocking threads through bounded
//! channels, so memory does not grow with collection size.

pub mod copies;
mod dump;
pub mod incremental;
mod progress;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bson::{doc, Bson, Document, RawDocumentBuf, Timestamp};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::Client;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::catalog::{
    new_backup_id, BackupKind, CollectionRecord, Manifest, OpTime, OplogRecord, FORMAT_VERSION,
};
use crate::config::Selection;
use crate::source::{self, SourceError};
use crate::storage::{self, BackupWriter, Compression, FileEntry, StorageError};
pub use progress::BackupProgress;

pub use dump::metadata_json;

/// What to back up, where to, and how.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    pub job: String,
    /// The source's name from the configuration, recorded in the manifest
    /// (never the URI, which may carry credentials).
    pub source_name: String,
    pub uri: String,
    pub storage_root: PathBuf,
    pub kind: BackupKind,
    pub compression: Compression,
    pub selection: Selection,
    /// Also save `admin.system.users` and `admin.system.roles`.
    pub include_users: bool,
    pub parallel_collections: usize,
    pub connect_timeout: std::time::Duration,
    pub note: Option<String>,
    /// Who asked for it, for a backup on request (recorded in the
    /// manifest).
    pub requested_by: Option<String>,
    /// Counters the copy updates as it goes, for whoever watches.
    pub progress: Option<std::sync::Arc<BackupProgress>>,
    /// Encrypt every data file to these age recipients (the job's
    /// `encrypt_to`); `None` stores them unencrypted.
    pub encryption: Option<std::sync::Arc<crate::storage::crypt::Recipients>>,
}

/// Why a configured job cannot be turned into a backup request.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{config}: there is no job \"{job}\"; the jobs are: {known}")]
    UnknownJob {
        config: PathBuf,
        job: String,
        known: String,
    },
    #[error("{config}: job \"{job}\": its encrypt_to recipients cannot be used: {source}")]
    Encryption {
        config: PathBuf,
        job: String,
        #[source]
        source: Box<crate::storage::crypt::CryptError>,
    },
    #[error(
        "{config}: job \"{job}\" is a {kind} job: it restores backups rather than taking them"
    )]
    NotABackupJob {
        config: PathBuf,
        job: String,
        kind: crate::config::JobKind,
    },
    #[error("{config}: {source}")]
    Uri {
        config: PathBuf,
        #[source]
        source: Box<crate::config::ConfigError>,
    },
}

impl BackupRequest {
    /// The request for a configured job. The source's URI is resolved now
    /// (from the file, the environment or the config), not when loaded,
    /// so a rotated credential is picked up by the next run.
    pub fn for_job(
        cfg: &crate::config::Config,
        name: &str,
        note: Option<String>,
    ) -> Result<BackupRequest, JobError> {
        use crate::config::JobKind;
        let job = cfg.jobs.get(name).ok_or_else(|| JobError::UnknownJob {
            config: cfg.path.clone(),
            job: name.to_string(),
            known: cfg.jobs.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        if !job.kind.makes_backups() {
            return Err(JobError::NotABackupJob {
                config: cfg.path.clone(),
                job: name.to_string(),
                kind: job.kind,
            });
        }
        // Validation guarantees that a job's source and storage exist.
        let (Some(src), Some(store)) =
            (cfg.sources.get(&job.source), cfg.storage.get(&job.storage))
        else {
            return Err(JobError::UnknownJob {
                config: cfg.path.clone(),
                job: name.to_string(),
                known: String::new(),
            });
        };
        let uri = src.resolve_uri().map_err(|source| JobError::Uri {
            config: cfg.path.clone(),
            source: Box::new(source),
        })?;
        // The configuration checked the recipients; parsing them again
        // here means a request never holds unchecked keys.
        let encryption = match &job.encryption {
            None => None,
            Some(enc) => Some(std::sync::Arc::new(
                crate::storage::crypt::Recipients::parse(&enc.recipients).map_err(|source| {
                    JobError::Encryption {
                        config: cfg.path.clone(),
                        job: name.to_string(),
                        source: Box::new(source),
                    }
                })?,
            )),
        };
        let compression = match job.compression {
            crate::config::CompressionSetting::None => Compression::none(),
            crate::config::CompressionSetting::Gzip { level } => Compression {
                kind: crate::storage::CompressionKind::Gzip,
                level: level as i32,
            },
            crate::config::CompressionSetting::Zstd { level } => Compression::zstd(level),
        };
        Ok(BackupRequest {
            job: name.to_string(),
            source_name: src.name.clone(),
            uri,
            storage_root: store
                .local_path()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            kind: match job.kind {
                JobKind::Full => BackupKind::Full,
                JobKind::Incremental => BackupKind::Incremental,
                // Drills and standbys were refused above.
                JobKind::Manual | JobKind::Drill | JobKind::Standby => BackupKind::Manual,
            },
            compression,
            selection: job.selection.clone(),
            include_users: job.include_users,
            parallel_collections: job.parallel_collections,
            connect_timeout: src.connect_timeout,
            note,
            requested_by: None,
            progress: None,
            encryption,
        })
    }
}

#[derive(Debug, Clone)]
pub struct BackupOutcome {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub duration: std::time::Duration,
}

impl BackupOutcome {
    pub fn documents(&self) -> u64 {
        self.manifest.collections.iter().map(|c| c.documents).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.manifest.total_size()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{what} failed: {source}")]
    Mongo {
        what: String,
        #[source]
        source: mongodb::error::Error,
    },
    #[error("the oplog rolled over during the backup: its oldest entry is now {oldest}, after the backup's start T0 = {t0}, so the changes made while copying are lost and the backup would not be consistent; enlarge the oplog (replSetResizeOplog) or make the backup faster (more parallel_collections)")]
    OplogRolledOver { t0: OpTime, oldest: OpTime },
    #[error("oplog gap: the oplog no longer holds the entries from {from} (where the previous backup {parent} ended) to {oldest}, so the changes in between are lost to this chain; a new full backup must start a new chain (enlarge the oplog or take incrementals more often to avoid this)")]
    OplogGap {
        from: OpTime,
        oldest: OpTime,
        parent: String,
    },
    #[error("job \"{job}\" has no complete full backup of source \"{source_name}\" in {storage} to continue: run or schedule a full backup of that source into that storage first")]
    NoFullYet {
        job: String,
        source_name: String,
        storage: PathBuf,
    },
    #[error("the backup was cancelled before it completed; nothing was kept")]
    Cancelled,
    #[error("{0}")]
    Invalid(String),
}

impl BackupError {
    fn mongo(what: impl Into<String>) -> impl FnOnce(mongodb::error::Error) -> BackupError {
        let what = what.into();
        move |source| BackupError::Mongo { what, source }
    }

    /// True when the database could not be reached at all (the server is
    /// down or the network is), as opposed to a failure during the copy.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, BackupError::Source(e) if e.is_unreachable())
    }

    /// The server refused our credentials (wrong user or password, or a
    /// mechanism it does not allow).
    pub fn is_authentication(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            if let Some(m) = e.downcast_ref::<mongodb::error::Error>() {
                let refused = match m.kind.as_ref() {
                    mongodb::error::ErrorKind::Authentication { .. } => true,
                    mongodb::error::ErrorKind::Command(c) => c.code == 18,
                    _ => false,
                };
                if refused {
                    return true;
                }
            }
            cause = e.source();
        }
        false
    }

    /// What the operator should do, for the failures that have an obvious
    /// answer (the rest depend on the message itself).
    pub fn advice(&self) -> Option<&'static str> {
        Some(match self {
            _ if self.is_authentication() => "Check the user name and password in the source's URI (uri_file / uri_env) and that the user has the backup role.",
            _ if self.is_unreachable() => "Check that MongoDB is running and reachable from this host (firewall, DNS, the host names in the URI).",
            BackupError::Storage(s) if s.is_disk_full() => "Free space on the backup storage (or lower retention), or point the job at a larger filesystem.",
            BackupError::OplogGap { .. } => "A full backup starts a new chain (the daemon starts one at once unless full_on_gap = false); to avoid gaps, enlarge the oplog or take incrementals more often.",
            BackupError::OplogRolledOver { .. } => "Enlarge the oplog (replSetResizeOplog) or make the backup faster (more parallel_collections).",
            BackupError::NoFullYet { .. } => "Run the source's full backup job (or `mongo-backupd backup --job NAME`) so incrementals have a base.",
            _ => return None,
        })
    }
}

/// One namespace to copy, as found by listCollections.
#[derive(Debug, Clone)]
struct Namespace {
    db: String,
    name: String,
    kind: String,
    options: Document,
    uuid: Option<bson::Binary>,
}

/// Runs one full (or manual) backup now. `cancel` aborts it cleanly: the
/// partial directory is removed and nothing looks complete.
pub async fn run(
    req: &BackupRequest,
    cancel: &CancellationToken,
    now: DateTime<Utc>,
) -> Result<BackupOutcome, BackupError> {
    let id = next_id(req, now);
    run_with_id(req, cancel, now, &id).await
}

/// The id a backup of `req` started at `now` gets, so a caller can name
/// it in its own records (an alert about a failed run) before it ends.
pub fn next_id(req: &BackupRequest, now: DateTime<Utc>) -> String {
    unique_id(&req.storage_root, &req.job, new_backup_id(req.kind, now))
}

/// [`run`] under an id from [`next_id`].
pub async fn run_with_id(
    req: &BackupRequest,
    cancel: &CancellationToken,
    now: DateTime<Utc>,
    id: &str,
) -> Result<BackupOutcome, BackupError> {
    let started = Instant::now();
    let id = id.to_string();
    tracing::info!(job = %req.job, backup_id = %id, "Backup started.");
    let result = run_as(req, cancel, now, &id, started).await;
    if let Err(e) = &result {
        let outcome = if matches!(e, BackupError::Cancelled) {
            "cancelled"
        } else {
            "failed"
        };
        tracing::info!(
            job = %req.job,
            backup_id = %id,
            result = outcome,
            duration_ms = started.elapsed().as_millis() as u64,
            "Backup ended without completing ({outcome}); nothing was kept."
        );
    }
    result
}

/// Ids have one-second resolution; a second backup of the job within the
/// same second (a manual run right after a scheduled one) gets a suffix
/// (`-2`, `-3`, ...) so it sorts after the first and never collides.
fn unique_id(root: &Path, job: &str, base: String) -> String {
    let taken = |id: &str| {
        let dir = root.join(job);
        dir.join(id).exists()
            || dir
                .join(format!("{}{id}", storage::PARTIAL_PREFIX))
                .exists()
    };
    if !taken(&base) {
        return base;
    }
    (2u32..)
        .map(|n| format!("{base}-{n}"))
        .find(|id| !taken(id))
        .unwrap_or(base)
}

async fn run_as(
    req: &BackupRequest,
    cancel: &CancellationToken,
    now: DateTime<Utc>,
    id: &str,
    started: Instant,
) -> Result<BackupOutcome, BackupError> {
    for leftover in storage::clean_partials(&req.storage_root, &req.job)? {
        tracing::warn!(
            job = %req.job,
            "Removed {}, the leftovers of an interrupted backup.",
            leftover.display()
        );
    }
    if req.kind == BackupKind::Incremental {
        return run_incremental(req, cancel, now, id, started).await;
    }
    let client = source::connect(&req.uri, req.connect_timeout).await?;
    let result = full_with(&client, req, cancel, now, id, started).await;
    source::close(client).await;
    result
}

async fn full_with(
    client: &Client,
    req: &BackupRequest,
    cancel: &CancellationToken,
    now: DateTime<Utc>,
    id: &str,
    started: Instant,
) -> Result<BackupOutcome, BackupError> {
    let client = client.clone();
    let info = source::describe(&client, &req.uri).await?;
    let mut writer = BackupWriter::create(&req.storage_root, &req.job, id)?;
    if let Some(recipients) = &req.encryption {
        writer.encrypt_to(recipients.clone());
    }
    let consistent = info.oplog.is_some();
    if !consistent {
        tracing::warn!(
            job = %req.job,
            backup_id = %id,
            "The source has no oplog (it is not a replica set member): this backup copies each collection as it is at the moment it is read and is not consistent to one instant."
        );
    }
    // A full after an existing chain bridges the oplog from that chain's
    // end, so there is no unrestorable stretch between the two chains.
    let tip = match consistent {
        true => incremental::chain_tip(&req.storage_root, &req.source_name)?,
        false => None,
    };
    let work = async {
        let t0 = match consistent {
            true => Some(newest_oplog_ts(&client).await?),
            false => None,
        };
        let namespaces = enumerate(&client, req).await?;
        let files = Arc::new(std::sync::Mutex::new(Vec::<FileEntry>::new()));
        let records = copy_all(&client, req, &writer, &namespaces, files.clone(), cancel).await?;
        let mut bridge = None;
        let (t1, oplog) = match t0 {
            Some(t0) => {
                let t1 = newest_oplog_ts(&client).await?;
                let (entry, count) =
                    dump::oplog_slice(&client, req, &writer, "oplog.bson", t0, t1, cancel).await?;
                push_file(&files, entry.clone());
                bridge = match tip.as_ref().filter(|t| Timestamp::from(t.end) < t0) {
                    None => None,
                    Some(t) => match dump::oplog_slice(
                        &client,
                        req,
                        &writer,
                        "oplog-bridge.bson",
                        t.end.into(),
                        t0,
                        cancel,
                    )
                    .await
                    {
                        Ok((file, entries)) => {
                            push_file(&files, file.clone());
                            Some(crate::catalog::BridgeRecord {
                                file: file.path,
                                entries,
                                from: t.end,
                                parent: t.id.clone(),
                            })
                        }
                        Err(BackupError::OplogRolledOver { .. }) => {
                            tracing::warn!(
                                job = %req.job,
                                "The oplog no longer reaches back to {} where backup {} ended: point-in-time restores between then and this backup are not possible.",
                                t.end,
                                t.id
                            );
                            None
                        }
                        Err(e) => return Err(e),
                    },
                };
                (
                    Some(t1),
                    Some(OplogRecord {
                        file: entry.path,
                        entries: count,
                    }),
                )
            }
            None => (None, None),
        };
        let files = std::mem::take(&mut *storage_lock(&files));
        Ok::<_, BackupError>((t0, t1, records, oplog, files, bridge))
    };
    let (t0, t1, collections, oplog, mut files, bridge) = tokio::select! {
        r = work => r?,
        _ = cancel.cancelled() => return Err(BackupError::Cancelled),
    };
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        id: id.to_string(),
        kind: req.kind,
        job: req.job.clone(),
        source: req.source_name.clone(),
        server_version: info.version.clone(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: now,
        finished_at: Utc::now(),
        consistent,
        oplog_start: t0.map(OpTime::from),
        oplog_end: t1.map(OpTime::from),
        compression: req.compression.kind,
        collections,
        oplog,
        files,
        parent: None,
        note: req.note.clone(),
        requested_by: req.requested_by.clone(),
        bridge,
        encryption: None,
        copies: Vec::new(),
        drills: Vec::new(),
    };
    if cancel.is_cancelled() {
        return Err(BackupError::Cancelled);
    }
    let outcome = complete(writer, manifest, started)?;
    tracing::info!(
        job = %req.job,
        backup_id = %id,
        result = "success",
        documents = outcome.documents(),
        bytes = outcome.bytes(),
        duration_ms = outcome.duration.as_millis() as u64,
        "Backup completed: {} documents, {} bytes in {:.1} s.",
        outcome.documents(),
        outcome.bytes(),
        outcome.duration.as_secs_f64()
    );
    Ok(outcome)
}

/// Writes the manifest last and moves the backup into place: from here on
/// it is complete.
fn complete(
    writer: BackupWriter,
    mut manifest: Manifest,
    started: Instant,
) -> Result<BackupOutcome, BackupError> {
    // Recorded by fingerprint: enough to tell which secret key a restore
    // needs, without publishing the recipients.
    manifest.encryption = writer
        .recipients()
        .map(|r| crate::catalog::EncryptionRecord {
            scheme: crate::catalog::EncryptionRecord::AGE_X25519.to_string(),
            recipients: r.fingerprints(),
        });
    let path = writer.commit(&manifest.to_json())?;
    Ok(BackupOutcome {
        path,
        manifest,
        duration: started.elapsed(),
    })
}

async fn run_incremental(
    req: &BackupRequest,
    cancel: &CancellationToken,
    now: DateTime<Utc>,
    id: &str,
    started: Instant,
) -> Result<BackupOutcome, BackupError> {
    let tip = incremental::chain_tip(&req.storage_root, &req.source_name)?.ok_or_else(|| {
        BackupError::NoFullYet {
            job: req.job.clone(),
            source_name: req.source_name.clone(),
            storage: req.storage_root.clone(),
        }
    })?;
    let client = source::connect(&req.uri, req.connect_timeout).await?;
    let result = incremental_with(&client, req, cancel, now, id, started, &tip).await;
    source::close(client).await;
    result
}

async fn incremental_with(
    client: &Client,
    req: &BackupRequest,
    cancel: &CancellationToken,
    now: DateTime<Utc>,
    id: &str,
    started: Instant,
    tip: &incremental::ChainTip,
) -> Result<BackupOutcome, BackupError> {
    let info = source::describe(client, &req.uri).await?;
    if info.oplog.is_none() {
        return Err(BackupError::Invalid(format!(
            "job \"{}\": incremental backups read the oplog, and the source has none (it is not a replica set member)",
            req.job
        )));
    }
    let mut writer = BackupWriter::create(&req.storage_root, &req.job, id)?;
    if let Some(recipients) = &req.encryption {
        writer.encrypt_to(recipients.clone());
    }
    let (end, entries, file) = tokio::select! {
        r = incremental::slice_since(client, req, &writer, tip, cancel) => r?,
        _ = cancel.cancelled() => return Err(BackupError::Cancelled),
    };
    let manifest = incremental::manifest(req, id, info.version, now, tip, end, entries, file);
    let outcome = complete(writer, manifest, started)?;
    tracing::info!(
        job = %req.job,
        backup_id = %id,
        result = "success",
        parent = %tip.id,
        entries,
        bytes = outcome.bytes(),
        duration_ms = outcome.duration.as_millis() as u64,
        "Incremental backup completed: {entries} oplog entries since {} (after {}).",
        tip.end,
        tip.id
    );
    Ok(outcome)
}

fn storage_lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn push_file(files: &std::sync::Mutex<Vec<FileEntry>>, entry: FileEntry) {
    storage_lock(files).push(entry);
}

/// The timestamp of the newest oplog entry.
pub(crate) async fn newest_oplog_ts(client: &Client) -> Result<Timestamp, BackupError> {
    let last = client
        .database("local")
        .collection::<Document>("oplog.rs")
        .find_one(doc! {})
        .sort(doc! { "$natural": -1 })
        .projection(doc! { "ts": 1 })
        .await
        .map_err(BackupError::mongo("reading the newest oplog entry"))?;
    match last.and_then(|d| d.get("ts").cloned()) {
        Some(Bson::Timestamp(ts)) => Ok(ts),
        _ => Err(BackupError::Invalid(
            "the oplog (local.oplog.rs) is empty or has no timestamps; is the replica set initiated?".into(),
        )),
    }
}

/// Every selected namespace, in a stable order.
async fn enumerate(client: &Client, req: &BackupRequest) -> Result<Vec<Namespace>, BackupError> {
    let dbs = client
        .list_database_names()
        .await
        .map_err(BackupError::mongo("listing databases"))?;
    let mut out = Vec::new();
    for db in dbs {
        let wanted_db = match db.as_str() {
            // Never copied: node-local state and cluster metadata.
            "local" | "config" => false,
            "admin" => req.include_users,
            _ => req.selection.includes_db(&db),
        };
        if !wanted_db {
            continue;
        }
        let specs: Vec<Document> = client
            .database(&db)
            .run_cursor_command(doc! { "listCollections": 1 })
            .await
            .map_err(BackupError::mongo(format!(
                "listing the collections of {db}"
            )))?
            .try_collect()
            .await
            .map_err(BackupError::mongo(format!(
                "listing the collections of {db}"
            )))?;
        for spec in specs {
            let name = spec.get_str("name").unwrap_or_default().to_string();
            let kind = spec.get_str("type").unwrap_or("collection").to_string();
            if !wanted_collection(req, &db, &name) {
                continue;
            }
            let uuid = spec
                .get_document("info")
                .ok()
                .and_then(|i| match i.get("uuid") {
                    Some(Bson::Binary(b)) => Some(b.clone()),
                    _ => None,
                });
            out.push(Namespace {
                db: db.clone(),
                name,
                kind,
                options: spec.get_document("options").cloned().unwrap_or_default(),
                uuid,
            });
        }
    }
    out.sort_by(|a, b| (&a.db, &a.name).cmp(&(&b.db, &b.name)));
    Ok(out)
}

/// mongodump's rules: system collections are server-maintained and are
/// skipped, except the ones that hold user data (`system.js`) and, when
/// asked for, users and roles. Views are saved as definitions, so
/// `system.views` itself is not copied.
fn wanted_collection(req: &BackupRequest, db: &str, name: &str) -> bool {
    if db == "admin" {
        return req.include_users && matches!(name, "system.users" | "system.roles");
    }
    if name.starts_with("system.") && name != "system.js" {
        return false;
    }
    req.selection.includes(db, name)
}

/// Copies every namespace, `parallel_collections` at a time.
async fn copy_all(
    client: &Client,
    req: &BackupRequest,
    writer: &BackupWriter,
    namespaces: &[Namespace],
    files: Arc<std::sync::Mutex<Vec<FileEntry>>>,
    cancel: &CancellationToken,
) -> Result<Vec<CollectionRecord>, BackupError> {
    let limit = Arc::new(Semaphore::new(req.parallel_collections.max(1)));
    if let Some(p) = &req.progress {
        p.set_total(namespaces.len() as u64);
    }
    let mut tasks = futures_util::stream::FuturesOrdered::new();
    for ns in namespaces {
        let limit = limit.clone();
        let files = files.clone();
        tasks.push_back(async move {
            let _permit = limit
                .acquire()
                .await
                .map_err(|_| BackupError::Invalid("the copy was shut down".into()))?;
            if cancel.is_cancelled() {
                return Err(BackupError::Cancelled);
            }
            let copied = dump::collection(client, req, writer, ns, cancel).await?;
            if let Some(p) = &req.progress {
                p.collection_done();
            }
            for f in copied.files.iter().cloned() {
                push_file(&files, f);
            }
            Ok::<_, BackupError>(copied.record)
        });
    }
    let mut records = Vec::with_capacity(namespaces.len());
    // The first failure ends the backup; the other copies are dropped,
    // which closes their cursors and files.
    while let Some(r) = tasks.try_next().await? {
        records.push(r);
    }
    Ok(records)
}

/// Reads all documents of a stored `.bson` file (used by tests and verify).
pub fn read_documents(dir: &Path, entry: &FileEntry) -> Result<Vec<RawDocumentBuf>, StorageError> {
    let reader = storage::open_verified(&storage::BackupFiles::local(dir), entry)?;
    storage::BsonReader::new(reader, dir.join(&entry.path)).collect()
}
