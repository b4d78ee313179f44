//! Listing the backups in a storage location. Everything in a job directory
//! is shown, including interrupted and damaged backups, because an operator
//! looking for a restore point must see why one they expected is unusable.

use std::cmp::Reverse;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::manifest::time_of_id;
use super::{CatalogError, Manifest, MANIFEST_FILE};
use crate::storage::{block_on, Location, StorageError, PARTIAL_PREFIX};

#[derive(Debug, Clone, PartialEq)]
pub enum BackupStatus {
    /// Committed with a readable manifest.
    Complete,
    /// A `.partial-` directory: still being written, or interrupted.
    Partial,
    /// Not usable; says why (no manifest, unreadable manifest, ...).
    Invalid(String),
}

#[derive(Debug, Clone)]
pub struct BackupListing {
    pub id: String,
    pub job: String,
    pub path: PathBuf,
    pub status: BackupStatus,
    pub manifest: Option<Manifest>,
    /// The manifest's total for complete backups, bytes on disk otherwise.
    pub size: u64,
}

impl BackupListing {
    /// The instant the backup restores to (see
    /// [`Manifest::consistent_as_of`]); None without a manifest.
    pub fn consistent_as_of(&self) -> Option<DateTime<Utc>> {
        self.manifest.as_ref().map(Manifest::consistent_as_of)
    }

    pub fn is_complete(&self) -> bool {
        self.status == BackupStatus::Complete
    }

    /// What orders listings: the restore point, or for backups without a
    /// manifest the start time in their id.
    fn sort_time(&self) -> Option<DateTime<Utc>> {
        self.consistent_as_of().or_else(|| time_of_id(&self.id))
    }
}

/// The backups at `location`, of every job or only of `job`, newest first,
/// from that location's own listing. In an object store a backup whose
/// objects are there but whose manifest is not (the manifest is uploaded
/// last) is partial: an upload in progress or interrupted. Blocking (see
/// [`crate::storage::BackupFiles`] on where it may run).
pub fn list_location(
    location: &Location,
    job: Option<&str>,
) -> Result<Vec<BackupListing>, CatalogError> {
    let object = match location {
        Location::Local { root, .. } => return list_backups(root, job),
        Location::Object(object) => object,
    };
    if let Some(job) = job {
        check_job_name(job)?;
    }
    let under = job.map(|j| format!("{j}/")).unwrap_or_default();
    let objects = block_on(object.list(&under))??;
    // (job, id) -> (bytes stored, has a manifest)
    let mut found: std::collections::BTreeMap<(String, String), (u64, bool)> =
        std::collections::BTreeMap::new();
    for o in objects {
        let mut parts = o.key.splitn(3, '/');
        let (Some(job), Some(id), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if job.starts_with('.') || id.starts_with('.') {
            continue;
        }
        let entry = found.entry((job.to_string(), id.to_string())).or_default();
        entry.0 += o.size;
        entry.1 |= rest == MANIFEST_FILE;
    }
    let mut listings = Vec::new();
    for ((job, id), (stored, has_manifest)) in found {
        let files = location.backup(&job, &id);
        let path = files.path();
        if !has_manifest {
            listings.push(BackupListing {
                id,
                job,
                path,
                status: BackupStatus::Partial,
                manifest: None,
                size: stored,
            });
            continue;
        }
        let manifest_path = path.join(MANIFEST_FILE);
        let loaded = match files.read_manifest() {
            Ok(Some(bytes)) => {
                Manifest::from_json(&bytes, &manifest_path).map_err(|e| e.to_string())
            }
            Ok(None) => Err(format!("no {MANIFEST_FILE}: it was removed while listing")),
            Err(e) => Err(e.to_string()),
        };
        listings.push(judge(&job, &id, path, loaded, stored));
    }
    sort_newest_first(&mut listings);
    Ok(listings)
}

fn check_job_name(job: &str) -> Result<(), CatalogError> {
    if job.is_empty() || job.starts_with('.') || job.contains(['/', '\\', '\0']) {
        return Err(StorageError::InvalidName {
            name: job.to_string(),
            reason: "a job name is a single, non-hidden directory name",
        }
        .into());
    }
    Ok(())
}

fn sort_newest_first(listings: &mut [BackupListing]) {
    listings.sort_by(|a, b| {
        (Reverse(a.sort_time()), Reverse(&a.id), &a.job).cmp(&(
            Reverse(b.sort_time()),
            Reverse(&b.id),
            &b.job,
        ))
    });
}

/// The backups under `root`, of every job or only of `job`, newest first
/// (by restore point, then id). A root or job directory that does not exist
/// holds no backups. Hidden entries other than `.partial-*` and plain files
/// are not backups and are skipped.
pub fn list_backups(root: &Path, job: Option<&str>) -> Result<Vec<BackupListing>, CatalogError> {
    let jobs = match job {
        Some(job) => {
            check_job_name(job)?;
            vec![job.to_string()]
        }
        None => sub_dirs(root)?,
    };
    let mut listings = Vec::new();
    for job in jobs {
        let job_dir = root.join(&job);
        for name in entries(&job_dir)? {
            let path = job_dir.join(&name);
            if !is_dir(&path)? {
                continue;
            }
            if let Some(id) = name.strip_prefix(PARTIAL_PREFIX) {
                listings.push(BackupListing {
                    id: id.to_string(),
                    job: job.clone(),
                    size: disk_usage(&path)?,
                    path,
                    status: BackupStatus::Partial,
                    manifest: None,
                });
            } else if !name.starts_with('.') {
                listings.push(inspect(&job, &name, path)?);
            }
        }
    }
    sort_newest_first(&mut listings);
    Ok(listings)
}

/// A non-hidden backup directory: complete if its manifest reads and
/// belongs to it.
fn inspect(job: &str, id: &str, path: PathBuf) -> Result<BackupListing, CatalogError> {
    let manifest_path = path.join(MANIFEST_FILE);
    let loaded = match fs::read(&manifest_path) {
        Ok(bytes) => Manifest::from_json(&bytes, &manifest_path).map_err(|e| e.to_string()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(format!(
            "no {MANIFEST_FILE}: the backup was never committed, or its manifest was removed"
        )),
        Err(e) => Err(StorageError::io(&manifest_path, "read", e).to_string()),
    };
    // A complete backup's size is its manifest's total; only the others
    // are measured on disk.
    let stored = match &loaded {
        Ok(m) if m.id == id => 0,
        _ => disk_usage(&path)?,
    };
    Ok(judge(job, id, path, loaded, stored))
}

/// Complete if the manifest loaded and belongs to the backup it is in;
/// `stored` is the size to show when it is not complete.
fn judge(
    job: &str,
    id: &str,
    path: PathBuf,
    loaded: Result<Manifest, String>,
    stored: u64,
) -> BackupListing {
    let (status, manifest) = match loaded {
        Ok(manifest) if manifest.id != id => (
            BackupStatus::Invalid(format!(
                "its manifest is for backup {:?}, not {id:?}: the directory was renamed or \
                 the manifest copied from another backup",
                manifest.id
            )),
            Some(manifest),
        ),
        Ok(manifest) => (BackupStatus::Complete, Some(manifest)),
        Err(reason) => (BackupStatus::Invalid(reason), None),
    };
    let size = match (&status, &manifest) {
        (BackupStatus::Complete, Some(manifest)) => manifest.total_size(),
        _ => stored,
    };
    BackupListing {
        id: id.to_string(),
        job: job.to_string(),
        path,
        status,
        manifest,
        size,
    }
}

/// Names in `dir`, sorted; none if it does not exist. Names that are not
/// UTF-8 were not written by us and cannot be job names or ids.
fn entries(dir: &Path) -> Result<Vec<String>, CatalogError> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::io(dir, "list", e).into()),
    };
    let mut names = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| StorageError::io(dir, "list", e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// The job directories under `root`.
fn sub_dirs(root: &Path) -> Result<Vec<String>, CatalogError> {
    let mut dirs = Vec::new();
    for name in entries(root)? {
        if !name.starts_with('.') && is_dir(&root.join(&name))? {
            dirs.push(name);
        }
    }
    Ok(dirs)
}

/// Whether `path` is a directory, not following symlinks (a backup is a
/// real directory; a link could point anywhere).
fn is_dir(path: &Path) -> Result<bool, CatalogError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(meta.is_dir()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StorageError::io(path, "inspect", e).into()),
    }
}

/// Bytes in regular files under `dir`. A file that disappears meanwhile
/// (a running backup's, or one being cleaned up) is skipped.
fn disk_usage(dir: &Path) -> Result<u64, CatalogError> {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let read = match fs::read_dir(&dir) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StorageError::io(&dir, "list", e).into()),
        };
        for entry in read {
            let entry = entry.map_err(|e| StorageError::io(&dir, "list", e))?;
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => pending.push(entry.path()),
                Ok(meta) if meta.is_file() => total += meta.len(),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(&entry.path(), "inspect", e).into()),
            }
        }
    }
    Ok(total)
}
