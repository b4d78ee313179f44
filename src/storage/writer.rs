//! Writing a backup so that only a finished one ever looks finished.
//!
//! The order that makes this crash-safe:
//! 1. every data file is written into `<job>/.partial-<id>/`, compressed and
//!    hashed on the way out, and fsynced when finished;
//! 2. `commit` refuses while any file is still open, then writes
//!    `manifest.json` and fsyncs it;
//! 3. every directory of the partial tree is fsynced, so the entries naming
//!    the files are durable too;
//! 4. the partial directory is renamed to `<job>/<id>` (one atomic step);
//! 5. the job directory is fsynced, so the rename itself is durable.
//!
//! A crash before 4 leaves a `.partial-*` directory, which never counts as a
//! backup and which [`clean_partials`] removes; after 4 the backup is whole
//! because everything in it was made durable before its name appeared.
//!
//! With encryption ([`BackupWriter::encrypt_to`]) each data file's bytes
//! go compressor → age → hasher → disk: encryption comes after compression
//! (ciphertext does not compress), and the hash is of the stored ciphertext,
//! so `verify` catches damage without the secret key.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::crypt::{self, Recipients, AGE_SUFFIX};
use super::{validate_rel_path, Compression, CompressionKind, StorageError};
use crate::catalog::MANIFEST_FILE;

/// Name prefix of a backup directory that is being written or whose writer
/// was interrupted.
pub const PARTIAL_PREFIX: &str = ".partial-";

/// One stored file as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the backup directory, `/`-separated, with the
    /// compression suffix (and `.age` when encrypted).
    pub path: String,
    /// Bytes on disk (compressed, and encrypted if the backup is).
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes on disk.
    pub sha256: String,
}

/// A backup being written. Dropping it without [`commit`](Self::commit)
/// removes everything written so far, so a cancelled task or a panic cannot
/// leave a half backup behind under a final name.
#[derive(Debug)]
pub struct BackupWriter {
    job_dir: PathBuf,
    partial: PathBuf,
    final_dir: PathBuf,
    open_files: Arc<AtomicUsize>,
    /// Set once the partial directory has been renamed or removed on
    /// purpose, so `Drop` leaves it alone.
    settled: bool,
    /// When set, every file opened from now on is encrypted to these.
    recipients: Option<Arc<Recipients>>,
    /// Whether `file` was ever called, so that turning encryption on too
    /// late (which would leave plaintext files in an encrypted backup) is
    /// caught.
    any_file: AtomicBool,
}

impl BackupWriter {
    /// Starts backup `id` of `job` under `root` (both are single path
    /// components). Fails with `AlreadyExists` if that backup, or a partial
    /// one with the same id, is already there.
    pub fn create(root: &Path, job: &str, id: &str) -> Result<BackupWriter, StorageError> {
        validate_component(job)?;
        validate_component(id)?;
        let job_dir = root.join(job);
        let final_dir = job_dir.join(id);
        let partial = job_dir.join(format!("{PARTIAL_PREFIX}{id}"));
        if exists(&final_dir)? {
            return Err(StorageError::AlreadyExists { path: final_dir });
        }
        create_dirs_durably(&job_dir)?;
        match fs::create_dir(&partial) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StorageError::AlreadyExists { path: partial });
            }
            Err(e) => return Err(StorageError::io(&partial, "create directory", e)),
        }
        Ok(BackupWriter {
            job_dir,
            partial,
            final_dir,
            open_files: Arc::new(AtomicUsize::new(0)),
            settled: false,
            recipients: None,
            any_file: AtomicBool::new(false),
        })
    }

    /// Encrypts every data file of this backup to `recipients` (age,
    /// X25519): [`file`](Self::file) then stores `rel` + compression suffix
    /// + [`AGE_SUFFIX`], and the bytes go compressor → age → hasher → disk.
    ///
    /// Call it right after [`create`](Self::create), before the first
    /// `file`: it only affects files opened afterwards, and a backup with
    /// some files in plaintext would not be what its manifest claims. (A
    /// late call is a bug; it panics in debug builds and is logged
    /// otherwise.) `manifest.json` itself is never encrypted; recording the
    /// recipients' fingerprints in it is the caller's job.
    pub fn encrypt_to(&mut self, recipients: Arc<Recipients>) {
        let late = self.any_file.load(Ordering::SeqCst);
        debug_assert!(
            !late,
            "BackupWriter::encrypt_to called after files were opened"
        );
        if late {
            tracing::error!(
                path = %self.partial.display(),
                "encryption was turned on after files of this backup were written; those \
                 files stay unencrypted (this is a bug in mongo-backupd)"
            );
        }
        self.recipients = Some(recipients);
    }

    /// The recipients files are encrypted to, if encryption is on.
    pub fn recipients(&self) -> Option<&Recipients> {
        self.recipients.as_deref()
    }

    /// Where the files are written until commit.
    pub fn partial_dir(&self) -> &Path {
        &self.partial
    }

    /// Where the backup will be once committed.
    pub fn final_dir(&self) -> &Path {
        &self.final_dir
    }

    /// Opens `rel` (`db/coll.bson`, `db/coll.metadata.json`, `oplog.bson`;
    /// names already escaped with [`escape_name`](super::escape_name)) for
    /// writing, with the compression's suffix appended, and `.age` after it
    /// when the backup is encrypted. Each file can be created once; the
    /// returned sink can be moved to another thread.
    pub fn file(&self, rel: &str, compression: Compression) -> Result<FileSink, StorageError> {
        validate_rel_path(rel)?;
        let encryption_suffix = if self.recipients.is_some() {
            AGE_SUFFIX
        } else {
            ""
        };
        let rel = format!("{rel}{}{encryption_suffix}", compression.suffix());
        validate_rel_path(&rel)?;
        self.any_file.store(true, Ordering::SeqCst);
        let path = self.partial.join(&rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| StorageError::io(parent, "create directory", e))?;
        }
        let file = match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StorageError::AlreadyExists { path });
            }
            Err(e) => return Err(StorageError::io(&path, "create", e)),
        };
        let hashing = HashingWriter {
            inner: BufWriter::with_capacity(256 * 1024, file),
            hasher: Sha256::new(),
            written: 0,
        };
        // Should anything below fail, the file just created is removed: a
        // file with only a header must not stay behind.
        let remove_on_error = |err: StorageError| {
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "could not remove an unfinished backup file"
                );
            }
            err
        };
        let out = match &self.recipients {
            None => Stage::Clear(hashing),
            Some(recipients) => Stage::Age(crypt::encrypt(recipients, hashing).map_err(|err| {
                remove_on_error(match err {
                    crypt::CryptError::Io { source, .. } => {
                        StorageError::io(&path, "start encryption of", source)
                    }
                    other => {
                        StorageError::io(&path, "start encryption of", io::Error::other(other))
                    }
                })
            })?),
        };
        let encoder = match compression.kind {
            CompressionKind::None => Encoder::Plain(out),
            CompressionKind::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::new(compression.level.clamp(0, 9).unsigned_abs()),
            )),
            CompressionKind::Zstd => Encoder::Zstd(
                zstd::stream::write::Encoder::new(out, compression.level).map_err(|e| {
                    remove_on_error(StorageError::io(&path, "start zstd compression of", e))
                })?,
            ),
        };
        self.open_files.fetch_add(1, Ordering::SeqCst);
        Ok(FileSink {
            rel,
            path,
            encoder: Some(encoder),
            open_files: Arc::clone(&self.open_files),
            failed: false,
        })
    }

    /// Writes `manifest_json` as `manifest.json`, makes everything durable
    /// and renames the backup into place; returns its final directory.
    ///
    /// On error the backup is not complete and the partial directory is
    /// removed. The one exception is a failing fsync of the job directory
    /// after the rename: the backup is then in place but its name may not
    /// survive a power cut, which the error reports.
    pub fn commit(mut self, manifest_json: &[u8]) -> Result<PathBuf, StorageError> {
        let open = self.open_files.load(Ordering::SeqCst);
        if open > 0 {
            return Err(StorageError::FilesStillOpen {
                path: self.partial.clone(),
                count: open,
            });
        }
        let manifest = self.partial.join(MANIFEST_FILE);
        write_durably(&manifest, manifest_json)?;
        sync_dir_tree(&self.partial)?;
        // rename(2) silently replaces an empty directory, so check first;
        // backups of one job are serialised, so nothing races this check.
        if exists(&self.final_dir)? {
            return Err(StorageError::AlreadyExists {
                path: self.final_dir.clone(),
            });
        }
        fs::rename(&self.partial, &self.final_dir)
            .map_err(|e| StorageError::io(&self.partial, "rename into place", e))?;
        self.settled = true;
        sync_dir(&self.job_dir)?;
        Ok(self.final_dir.clone())
    }

    /// Gives up on this backup and removes what was written.
    pub fn abort(mut self) -> Result<(), StorageError> {
        self.settled = true;
        remove_tree(&self.partial)
    }
}

impl Drop for BackupWriter {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        if let Err(err) = remove_tree(&self.partial) {
            tracing::warn!(
                path = %self.partial.display(),
                error = %err,
                "could not remove an unfinished backup; the next run of the job removes it"
            );
        }
    }
}

/// One file being written. Bytes go through the compressor, then (if the
/// backup is encrypted) through age, then through the hasher, then to disk,
/// so the checksum is of exactly what is stored.
/// Dropping it unfinished deletes the file, so an abandoned file can never
/// end up in a committed backup.
pub struct FileSink {
    rel: String,
    path: PathBuf,
    encoder: Option<Encoder>,
    open_files: Arc<AtomicUsize>,
    failed: bool,
}

enum Encoder {
    Plain(Stage),
    Gzip(flate2::write::GzEncoder<Stage>),
    Zstd(zstd::stream::write::Encoder<'static, Stage>),
}

/// What the compressor writes into: the hasher directly, or age encrypting
/// into the hasher.
enum Stage {
    Clear(HashingWriter),
    Age(age::stream::StreamWriter<HashingWriter>),
}

impl Stage {
    /// Writes age's final chunk (without which the file reads as
    /// truncated) and hands back the hasher.
    fn finish(self) -> io::Result<HashingWriter> {
        match self {
            Stage::Clear(w) => Ok(w),
            Stage::Age(w) => w.finish(),
        }
    }
}

impl Write for Stage {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stage::Clear(w) => w.write(buf),
            Stage::Age(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stage::Clear(w) => w.flush(),
            Stage::Age(w) => w.flush(),
        }
    }
}

impl std::fmt::Debug for FileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("path", &self.path)
            .field("finished", &self.encoder.is_none())
            .finish()
    }
}

impl FileSink {
    /// The path of the file, relative to the backup, with its suffix.
    pub fn rel_path(&self) -> &str {
        &self.rel
    }

    pub fn write_all(&mut self, buf: &[u8]) -> Result<(), StorageError> {
        if self.failed {
            return Err(self.poisoned());
        }
        let result = match self.encoder.as_mut() {
            Some(Encoder::Plain(w)) => w.write_all(buf),
            Some(Encoder::Gzip(w)) => w.write_all(buf),
            Some(Encoder::Zstd(w)) => w.write_all(buf),
            None => return Err(self.poisoned()),
        };
        result.map_err(|e| {
            // The compressor's state is unknown after a failed write; refuse
            // to pretend the file can still be completed.
            self.failed = true;
            StorageError::io(&self.path, "write", e)
        })
    }

    /// Finishes the compressor, then age's last chunk (if encrypted),
    /// fsyncs the file and returns what the manifest must record about it:
    /// the size and SHA-256 of the stored bytes.
    pub fn finish(mut self) -> Result<FileEntry, StorageError> {
        if self.failed {
            return Err(self.poisoned());
        }
        let Some(encoder) = self.encoder.take() else {
            return Err(self.poisoned());
        };
        // If anything below fails the file is removed by Drop, which needs
        // to know it is unfinished.
        self.failed = true;
        let out = match encoder {
            Encoder::Plain(w) => Ok(w),
            Encoder::Gzip(w) => w.finish(),
            Encoder::Zstd(w) => w.finish(),
        }
        .and_then(Stage::finish)
        .map_err(|e| StorageError::io(&self.path, "write", e))?;
        let HashingWriter {
            inner,
            hasher,
            written,
        } = out;
        let file = inner
            .into_inner()
            .map_err(|e| StorageError::io(&self.path, "write", e.into_error()))?;
        file.sync_all()
            .map_err(|e| StorageError::io(&self.path, "fsync", e))?;
        self.failed = false;
        Ok(FileEntry {
            path: self.rel.clone(),
            size: written,
            sha256: hex::encode(hasher.finalize()),
        })
    }

    fn poisoned(&self) -> StorageError {
        StorageError::EarlierWriteFailed {
            path: self.path.clone(),
        }
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if self.encoder.is_some() || self.failed {
            // Close the handle before unlinking; errors are irrelevant here
            // because the whole backup is being abandoned or will be
            // refused by verification.
            self.encoder = None;
            if let Err(err) = fs::remove_file(&self.path) {
                if err.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(
                        path = %self.path.display(),
                        error = %err,
                        "could not remove an unfinished backup file"
                    );
                }
            }
        }
        self.open_files.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts and hashes what actually reaches the file.
struct HashingWriter {
    inner: BufWriter<File>,
    hasher: Sha256,
    written: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Removes the `.partial-*` directories that interrupted runs of `job` left
/// under `root`, returning what was removed. Call it only when no backup of
/// that job is running: a running one's directory looks the same.
pub fn clean_partials(root: &Path, job: &str) -> Result<Vec<PathBuf>, StorageError> {
    validate_component(job)?;
    let job_dir = root.join(job);
    let entries = match fs::read_dir(&job_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::io(&job_dir, "list", e)),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(&job_dir, "list", e))?;
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(PARTIAL_PREFIX)
        {
            continue;
        }
        let path = entry.path();
        remove_tree(&path)?;
        removed.push(path);
    }
    removed.sort();
    Ok(removed)
}

/// Job names and backup ids become directory names of their own.
fn validate_component(name: &str) -> Result<(), StorageError> {
    let invalid = |reason| {
        Err(StorageError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("job names and backup ids cannot be empty");
    }
    if name.starts_with('.') {
        return invalid("job names and backup ids cannot start with `.` (hidden names are reserved for partial backups)");
    }
    if name.contains(['/', '\\', '\0']) {
        return invalid("job names and backup ids cannot contain `/`, `\\` or NUL");
    }
    if name.len() + PARTIAL_PREFIX.len() > 255 {
        return invalid("job names and backup ids must be shorter than 246 bytes");
    }
    Ok(())
}

fn exists(path: &Path) -> Result<bool, StorageError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StorageError::io(path, "inspect", e)),
    }
}

/// `create_dir_all`, then fsync the parent of every directory it created,
/// so that a new storage root or job directory survives a power cut along
/// with the backups later committed into it.
fn create_dirs_durably(dir: &Path) -> Result<(), StorageError> {
    let mut missing = Vec::new();
    let mut cursor = Some(dir);
    while let Some(path) = cursor {
        if exists(path)? {
            break;
        }
        missing.push(path);
        cursor = path.parent().filter(|p| !p.as_os_str().is_empty());
    }
    fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, "create directory", e))?;
    for created in missing.iter().rev() {
        match created.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent)?,
            _ => sync_dir(Path::new("."))?,
        }
    }
    Ok(())
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| StorageError::io(path, "create", e))?;
    file.write_all(bytes)
        .map_err(|e| StorageError::io(path, "write", e))?;
    file.sync_all()
        .map_err(|e| StorageError::io(path, "fsync", e))
}

/// fsync on a directory makes the names in it durable (files' own data is
/// synced separately).
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, "fsync directory", e))
}

/// fsyncs every directory under `top` (deepest first) and `top` itself.
fn sync_dir_tree(top: &Path) -> Result<(), StorageError> {
    let mut dirs = vec![top.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() {
        let dir = dirs[i].clone();
        for entry in fs::read_dir(&dir).map_err(|e| StorageError::io(&dir, "list", e))? {
            let entry = entry.map_err(|e| StorageError::io(&dir, "list", e))?;
            let is_dir = entry
                .file_type()
                .map_err(|e| StorageError::io(&entry.path(), "inspect", e))?
                .is_dir();
            if is_dir {
                dirs.push(entry.path());
            }
        }
        i += 1;
    }
    for dir in dirs.iter().rev() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Removes a directory tree (or a stray file or symlink, never following
/// it); a path that is already gone is fine.
fn remove_tree(path: &Path) -> Result<(), StorageError> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, "remove", e)),
    }
}
