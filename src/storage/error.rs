//! What can go wrong in backup storage. Every variant carries the full path
//! it concerns, and every message is a sentence that tells the on-call
//! engineer what failed and what to do, because these errors end up in
//! alert emails read at 3 a.m.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "no space left on the device while writing {}: free space on that filesystem, \
         or point the job's storage at a larger one, then run the backup again \
         (the incomplete backup has been or will be removed)",
        path.display()
    )]
    DiskFull { path: PathBuf },

    #[error("could not {op} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },

    #[error(
        "{} is corrupt: its sha256 is {actual} but the manifest recorded {expected}; \
         the file changed after the backup was written, so do not restore from it \
         (use another backup, and check the disk)",
        path.display()
    )]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error(
        "{} is missing: the manifest lists it but it is not on disk; \
         this backup is incomplete, restore from another one",
        path.display()
    )]
    Missing { path: PathBuf },

    #[error(
        "{} is truncated: {detail}; the file was cut short (disk full, a copy that \
         did not finish, or damage), so restore from another backup",
        path.display()
    )]
    Truncated { path: PathBuf, detail: String },

    #[error(
        "{} already exists, and backup storage never overwrites anything: another \
         backup with the same id was started or written (ids have one-second \
         resolution, so retry a second later), or the same file was written twice",
        path.display()
    )]
    AlreadyExists { path: PathBuf },

    #[error("{} is corrupt: {detail}; restore from another backup", path.display())]
    Corrupt { path: PathBuf, detail: String },

    #[error("refusing to use {name:?} as a name in backup storage: {reason}")]
    InvalidName { name: String, reason: &'static str },

    #[error(
        "{} cannot be completed because an earlier write to it failed (see the error \
         before this one); the backup must be aborted and run again",
        path.display()
    )]
    EarlierWriteFailed { path: PathBuf },

    #[error(
        "cannot commit {}: {count} of its files are still being written; every file \
         must be finished before the manifest is written (this is a bug in mongo-backupd)",
        path.display()
    )]
    FilesStillOpen { path: PathBuf, count: usize },

    #[error("object storage {location:?} ({url}) cannot be used: {detail}; {hint}")]
    ObjectSetup {
        location: String,
        url: String,
        detail: String,
        hint: String,
    },

    // The object variants box their target so that every Result carrying
    // a StorageError stays small.
    #[error(
        "could not {op} {target}: the service refused the credentials or their \
         permissions ({detail}); {hint}"
    )]
    ObjectCredentials {
        target: Box<super::object::ObjectTarget>,
        op: &'static str,
        detail: String,
        hint: String,
    },

    #[error(
        "could not {op} {target}: no answer from {endpoint} ({detail}); is the endpoint \
         reachable? Check the endpoint setting, the network (DNS, proxy, firewall) and TLS \
         (ca_file), then run it again"
    )]
    ObjectUnreachable {
        target: Box<super::object::ObjectTarget>,
        op: &'static str,
        endpoint: String,
        detail: String,
    },

    #[error(
        "could not {op} {target}: the {container} does not exist ({detail}): create it \
         first, or fix the location's {container} setting"
    )]
    ObjectBucketMissing {
        target: Box<super::object::ObjectTarget>,
        op: &'static str,
        /// "bucket" or "container".
        container: &'static str,
        detail: String,
    },

    #[error(
        "{target} does not exist: it was deleted (by retention?) or never written; list \
         the location to see what it holds"
    )]
    ObjectNotFound {
        target: Box<super::object::ObjectTarget>,
    },

    #[error(
        "upload of {} to {target} aborted: {detail}; the local file changed or is damaged, \
         so nothing was stored: check the local backup with `mongo-backupd verify`, then \
         copy it again",
        path.display()
    )]
    ObjectLocalChanged {
        target: Box<super::object::ObjectTarget>,
        path: PathBuf,
        detail: String,
    },

    #[error("could not {op} {target}: {detail}; {hint}")]
    ObjectRequest {
        target: Box<super::object::ObjectTarget>,
        op: &'static str,
        detail: String,
        hint: String,
    },

    #[error(
        "{} is encrypted and no identity was given to decrypt it: pass the age identity \
         file that holds the private key of one of the backup's recipients \
         (--identity FILE, or --decrypt FILE for verify)",
        path.display()
    )]
    NeedsIdentity { path: PathBuf },

    #[error("cannot decrypt {}: {source}", path.display())]
    Decrypt {
        path: PathBuf,
        #[source]
        source: Box<super::crypt::CryptError>,
    },

    #[error(
        "an object store was to be read outside the tokio runtime (this is a bug in \
         mongo-backupd)"
    )]
    NoRuntime,
}

impl StorageError {
    /// Wraps an I/O error from `op` on `path`, turning "no space" and "quota
    /// exceeded" into [`StorageError::DiskFull`] because the operator's fix
    /// for those is the same and differs from every other I/O failure.
    pub(crate) fn io(path: &Path, op: &'static str, source: io::Error) -> StorageError {
        if is_disk_full(&source) {
            StorageError::DiskFull {
                path: path.to_path_buf(),
            }
        } else {
            StorageError::Io {
                path: path.to_path_buf(),
                op,
                source,
            }
        }
    }

    /// The path the error concerns, if it has one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            StorageError::DiskFull { path }
            | StorageError::Io { path, .. }
            | StorageError::ChecksumMismatch { path, .. }
            | StorageError::Missing { path }
            | StorageError::Truncated { path, .. }
            | StorageError::AlreadyExists { path }
            | StorageError::Corrupt { path, .. }
            | StorageError::EarlierWriteFailed { path }
            | StorageError::FilesStillOpen { path, .. }
            | StorageError::ObjectLocalChanged { path, .. }
            | StorageError::NeedsIdentity { path }
            | StorageError::Decrypt { path, .. } => Some(path),
            // Names, object-store keys and the rest have no path.
            _ => None,
        }
    }

    /// Whether the error is the storage filling up, which alerts word
    /// differently from data problems.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StorageError::DiskFull { .. })
    }
}

fn is_disk_full(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_becomes_disk_full_with_advice() {
        let err = StorageError::io(
            Path::new("/backups/job/.partial-x/db/c.bson"),
            "write",
            io::Error::from_raw_os_error(28),
        );
        assert!(err.is_disk_full());
        let msg = err.to_string();
        assert!(msg.contains("/backups/job/.partial-x/db/c.bson"), "{msg}");
        assert!(msg.contains("free space"), "{msg}");
        assert!(msg.contains("point the job's storage"), "{msg}");
    }

    #[test]
    fn other_io_errors_name_operation_and_path() {
        let err = StorageError::io(
            Path::new("/backups/job"),
            "create directory",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(!err.is_disk_full());
        let msg = err.to_string();
        assert!(
            msg.starts_with("could not create directory /backups/job: "),
            "{msg}"
        );
        assert_eq!(err.path(), Some(Path::new("/backups/job")));
    }
}
