//! The catalog of backups: the manifest that makes a backup directory a
//! backup, listing what is in a storage location (complete, interrupted
//! and damaged backups alike, so `list` hides nothing), and verifying a
//! backup end to end before anyone has to restore from it.
//!
//! The manifest is the single source of truth about a backup: what it
//! contains, the exact instant it restores to (`oplog_end`, T1), and the
//! size and SHA-256 of every stored file. It is written last, by
//! [`BackupWriter::commit`](crate::storage::BackupWriter::commit), so its
//! presence in a non-hidden directory means the backup is whole.

mod listing;
mod manifest;
mod update;
mod verify;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use listing::{list_backups, list_location, BackupListing, BackupStatus};
pub use manifest::{
    new_backup_id, BackupKind, BridgeRecord, CollectionRecord, CopyRecord, DrillRecord,
    EncryptionRecord, Manifest, OpTime, OplogRecord, DRILLS_KEPT,
};
pub use update::{update_manifest, update_manifest_blocking};
pub use verify::{verify_backup, Problem, ProblemKind, VerifyReport};

use crate::storage::StorageError;

/// The manifest's file name inside a backup directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The manifest format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Storage(#[from] StorageError),

    #[error(
        "{} has no {MANIFEST_FILE}, so it is not a complete backup (an interrupted run \
         leaves its files without one); it cannot be restored or verified, use another backup",
        dir.display()
    )]
    NoManifest { dir: PathBuf },

    #[error(
        "the manifest {} is not valid (line {line}, column {column}: {detail}); it was \
         damaged or edited, so the backup cannot be trusted: restore from another backup, \
         or repair the file if you know exactly what changed",
        path.display()
    )]
    InvalidManifest {
        path: PathBuf,
        line: usize,
        column: usize,
        detail: String,
    },

    #[error(
        "the manifest {} has format_version {found}: it was written by a newer \
         mongo-backupd (this one reads format {FORMAT_VERSION} at most); upgrade \
         mongo-backupd to use this backup",
        path.display()
    )]
    NewerFormat { path: PathBuf, found: u32 },
}
