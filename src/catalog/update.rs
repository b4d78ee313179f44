//! Changing the manifest of a complete backup after the fact: the copies
//! record where else it is complete, drills record that it restored.
//!
//! Several tasks may do this to one backup at once (a copy finishing while
//! a drill of the same backup passes), so every update is a read, change
//! and atomic replace under one process-wide lock: neither change can be
//! lost, and a reader sees the old or the new manifest, never a torn one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Manifest, MANIFEST_FILE};
use crate::storage::StorageError;

/// Serialises manifest updates within the daemon.
static UPDATES: Mutex<()> = Mutex::new(());

/// Applies `change` to the manifest in the backup directory `dir` and
/// replaces the file atomically (written beside the backup, fsynced,
/// renamed over it). Blocking.
pub fn update_manifest(
    dir: &Path,
    change: impl FnOnce(&mut Manifest),
) -> Result<Manifest, StorageError> {
    // A poisoned lock only means another update panicked; the file on disk
    // is still whole (it is replaced by rename), so carry on.
    let _guard = UPDATES.lock().unwrap_or_else(|p| p.into_inner());
    let path = dir.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).map_err(|e| StorageError::io(&path, "read", e))?;
    let mut manifest = Manifest::from_json(&bytes, &path).map_err(|e| StorageError::Corrupt {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    change(&mut manifest);
    let tmp = temp_path(dir);
    std::fs::write(&tmp, manifest.to_json()).map_err(|e| StorageError::io(&tmp, "write", e))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| StorageError::io(&tmp, "fsync", e))?;
    std::fs::rename(&tmp, &path).map_err(|e| StorageError::io(&path, "replace", e))?;
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| StorageError::io(dir, "fsync", e))?;
    Ok(manifest)
}

/// [`update_manifest`] on a blocking thread.
pub async fn update_manifest_blocking(
    dir: &Path,
    change: impl FnOnce(&mut Manifest) + Send + 'static,
) -> Result<Manifest, StorageError> {
    let dir = dir.to_path_buf();
    let owned = dir.clone();
    tokio::task::spawn_blocking(move || update_manifest(&owned, change))
        .await
        .map_err(|e| {
            StorageError::io(&dir.join(MANIFEST_FILE), "update", std::io::Error::other(e))
        })?
}

/// Beside the backup directory, hidden, so it is never taken for a file of
/// the backup or for a backup of its own.
fn temp_path(dir: &Path) -> PathBuf {
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let job_dir = dir.parent().unwrap_or(dir);
    job_dir.join(format!(".manifest-{id}.tmp"))
}
