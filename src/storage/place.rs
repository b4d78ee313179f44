//! Where a backup's files are read from: a directory on this machine or
//! a prefix in an object store. Listing, verification and restore take a
//! [`BackupFiles`] instead of a path, so everything that works on local
//! storage works on every location, and a backup in an object store is
//! read straight from it (streamed, never downloaded whole first).
//!
//! Object stores are reached through async clients while the readers of
//! backup files are blocking code; every method here that may reach an
//! object store must therefore run on a blocking thread
//! (`tokio::task::spawn_blocking`) of a tokio runtime, or on a runtime
//! worker of a multi-threaded runtime (it then steps aside with
//! `block_in_place`).

use std::future::Future;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::crypt::Identities;
use super::object::ObjectLocation;
use super::{validate_rel_path, StorageError};
use crate::catalog::MANIFEST_FILE;
use crate::config::{Backend, StorageLocation};

/// A configured storage location, opened.
#[derive(Debug, Clone)]
pub enum Location {
    Local { name: String, root: PathBuf },
    Object(ObjectLocation),
}

impl Location {
    /// Opens `loc` (an object store's credentials are read now).
    pub fn open(loc: &StorageLocation) -> Result<Location, StorageError> {
        match &loc.backend {
            Backend::Local { path } => Ok(Location::Local {
                name: loc.name.clone(),
                root: path.clone(),
            }),
            Backend::Object(_) => ObjectLocation::open(loc).map(Location::Object),
        }
    }

    /// A local directory as a location (for `--storage DIR`).
    pub fn local_dir(root: impl Into<PathBuf>) -> Location {
        let root = root.into();
        Location::Local {
            name: root.display().to_string(),
            root,
        }
    }

    /// The `[storage.NAME]`.
    pub fn name(&self) -> &str {
        match self {
            Location::Local { name, .. } => name,
            Location::Object(o) => o.name(),
        }
    }

    /// The directory or URL, for messages.
    pub fn describe(&self) -> String {
        match self {
            Location::Local { root, .. } => root.display().to_string(),
            Location::Object(o) => o.url().to_string(),
        }
    }

    /// The files of backup `id` of `job` here.
    pub fn backup(&self, job: &str, id: &str) -> BackupFiles {
        match self {
            Location::Local { root, .. } => BackupFiles::local(root.join(job).join(id)),
            Location::Object(o) => BackupFiles::object(o.clone(), job, id),
        }
    }
}

/// The stored files of one backup, and the identities that decrypt them
/// when it is encrypted.
#[derive(Debug, Clone)]
pub struct BackupFiles {
    place: Place,
    identities: Option<Arc<Identities>>,
}

#[derive(Debug, Clone)]
enum Place {
    Local(PathBuf),
    Object {
        location: ObjectLocation,
        /// `job/id/`, relative to the location's prefix.
        prefix: String,
    },
}

impl BackupFiles {
    pub fn local(dir: impl Into<PathBuf>) -> BackupFiles {
        BackupFiles {
            place: Place::Local(dir.into()),
            identities: None,
        }
    }

    pub fn object(location: ObjectLocation, job: &str, id: &str) -> BackupFiles {
        BackupFiles {
            place: Place::Object {
                location,
                prefix: format!("{job}/{id}/"),
            },
            identities: None,
        }
    }

    /// The same files, decrypted with `identities` when read.
    pub fn with_identities(mut self, identities: Option<Arc<Identities>>) -> BackupFiles {
        self.identities = identities;
        self
    }

    pub fn identities(&self) -> Option<&Identities> {
        self.identities.as_deref()
    }

    pub fn identities_arc(&self) -> Option<Arc<Identities>> {
        self.identities.clone()
    }

    /// The backup's directory, or its URL (`s3://bucket/prefix/job/id`)
    /// as a path, so errors name it the same way for every location.
    pub fn path(&self) -> PathBuf {
        match &self.place {
            Place::Local(dir) => dir.clone(),
            Place::Object { location, prefix } => PathBuf::from(format!(
                "{}{}",
                location.url(),
                prefix.trim_end_matches('/')
            )),
        }
    }

    /// The directory, for a local backup.
    pub fn local_dir(&self) -> Option<&Path> {
        match &self.place {
            Place::Local(dir) => Some(dir),
            Place::Object { .. } => None,
        }
    }

    /// The backup's own name (its id), from where it is stored.
    pub fn dir_name(&self) -> String {
        self.path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Reads the manifest, or `None` if there is none.
    pub fn read_manifest(&self) -> Result<Option<Vec<u8>>, StorageError> {
        match &self.place {
            Place::Local(dir) => {
                let path = dir.join(MANIFEST_FILE);
                match std::fs::read(&path) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(StorageError::io(&path, "read", e)),
                }
            }
            Place::Object { location, prefix } => {
                let key = format!("{prefix}{MANIFEST_FILE}");
                Ok(block_on(location.get_bytes(&key))??)
            }
        }
    }

    /// Opens stored file `rel` (relative, `/`-separated) for reading its
    /// bytes as stored. Checks what can be checked before reading: that
    /// it exists and, locally, that it is a regular file of `expected_size`.
    pub(crate) fn open_raw(
        &self,
        rel: &str,
        expected_size: Option<u64>,
    ) -> Result<(PathBuf, Box<dyn Read + Send>), StorageError> {
        let path = self.path().join(rel);
        match &self.place {
            Place::Local(dir) => {
                let (path, file) = super::reader::open_local(dir, rel, expected_size)?;
                Ok((path, Box::new(file)))
            }
            Place::Object { location, prefix } => {
                let reader = location.open_read(&format!("{prefix}{rel}"))?;
                Ok((path, Box::new(reader)))
            }
        }
    }

    /// Every stored file but the manifest, relative to the backup.
    pub fn list_files(&self) -> Result<Vec<String>, StorageError> {
        match &self.place {
            Place::Local(dir) => list_local(dir),
            Place::Object { location, prefix } => {
                let objects = block_on(location.list(prefix))??;
                let mut out: Vec<String> = objects
                    .into_iter()
                    .filter_map(|o| o.key.strip_prefix(prefix.as_str()).map(str::to_string))
                    .filter(|rel| rel != MANIFEST_FILE)
                    .collect();
                out.sort();
                Ok(out)
            }
        }
    }

    /// Checks that `rel` is a plain relative path inside the backup.
    pub(crate) fn check_rel(&self, rel: &str) -> Result<(), StorageError> {
        validate_rel_path(rel).map_err(|_| StorageError::Corrupt {
            path: self.path().join(MANIFEST_FILE),
            detail: format!(
                "it names the file {rel:?}, which is not a plain path inside the backup"
            ),
        })
    }
}

fn list_local(dir: &Path) -> Result<Vec<String>, StorageError> {
    let mut out = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((abs, rel)) = pending.pop() {
        let read = std::fs::read_dir(&abs).map_err(|e| StorageError::io(&abs, "list", e))?;
        for entry in read {
            let entry = entry.map_err(|e| StorageError::io(&abs, "list", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let file_type = entry
                .file_type()
                .map_err(|e| StorageError::io(&entry.path(), "inspect", e))?;
            if file_type.is_dir() {
                pending.push((entry.path(), child));
            } else if child != MANIFEST_FILE {
                out.push(child);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Runs `fut` to completion from blocking code (see the module header).
pub(crate) fn block_on<F: Future>(fut: F) -> Result<F::Output, StorageError> {
    let handle = tokio::runtime::Handle::try_current().map_err(|_| StorageError::NoRuntime)?;
    Ok(match handle.runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(fut))
        }
        _ => handle.block_on(fut),
    })
}
