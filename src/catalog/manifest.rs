//! The manifest (`manifest.json`): what a backup holds and the instant it
//! restores to. Unknown fields are refused rather than ignored: a field
//! this build does not understand could change what a restore must do.

use std::path::Path;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CatalogError, FORMAT_VERSION};
use crate::storage::{CompressionKind, FileEntry};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupKind {
    Full,
    Incremental,
    Manual,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Full => "full",
            BackupKind::Incremental => "incremental",
            BackupKind::Manual => "manual",
        }
    }
}

impl std::fmt::Display for BackupKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An oplog position (a BSON timestamp): seconds since the epoch and an
/// ordinal within that second. Ordered like MongoDB orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpTime {
    pub t: u32,
    pub i: u32,
}

impl OpTime {
    /// The wall-clock second this position belongs to.
    pub fn to_datetime(&self) -> DateTime<Utc> {
        // Every u32 second count is a valid date, so the default (the
        // epoch) is never used.
        DateTime::from_timestamp(i64::from(self.t), 0).unwrap_or_default()
    }
}

impl From<bson::Timestamp> for OpTime {
    fn from(ts: bson::Timestamp) -> OpTime {
        OpTime {
            t: ts.time,
            i: ts.increment,
        }
    }
}

impl From<OpTime> for bson::Timestamp {
    fn from(op: OpTime) -> bson::Timestamp {
        bson::Timestamp {
            time: op.t,
            increment: op.i,
        }
    }
}

impl std::fmt::Display for OpTime {
    /// The way the mongo shell prints a timestamp, which operators know.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Timestamp({}, {})", self.t, self.i)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionRecord {
    pub db: String,
    pub name: String,
    /// `collection`, `view` or `timeseries`.
    pub kind: String,
    pub documents: u64,
    /// Relative path with suffix; views have no data.
    pub data_file: Option<String>,
    pub metadata_file: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OplogRecord {
    pub file: String,
    pub entries: u64,
}

/// The oplog entries in (`from`, T0] of a full that continues the chain
/// ending with backup `parent`, in their own file (`oplog.bson` stays
/// exactly the (T0, T1] slice that mongorestore expects).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeRecord {
    pub file: String,
    pub entries: u64,
    pub from: OpTime,
    pub parent: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    pub id: String,
    pub kind: BackupKind,
    pub job: String,
    /// The source's configured name, never its URI: manifests are copied
    /// around and must not carry credentials.
    pub source: String,
    pub server_version: String,
    pub tool_version: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// False for a standalone server, which has no oplog to make the copy
    /// consistent to one instant.
    pub consistent: bool,
    /// T0: the oplog position when the copy started.
    pub oplog_start: Option<OpTime>,
    /// T1: the backup restores to exactly this instant.
    pub oplog_end: Option<OpTime>,
    pub compression: CompressionKind,
    pub collections: Vec<CollectionRecord>,
    pub oplog: Option<OplogRecord>,
    pub files: Vec<FileEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Who asked for a backup on request (`alice (uid 1000) via socket`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// For a full taken after an existing chain: the oplog from that
    /// chain's end to this backup's T0, so point-in-time restores can cross
    /// from the old chain into this one without a hole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<BridgeRecord>,
    /// Set when the data files are encrypted (each stored with the extra
    /// suffix `.age`); absent in unencrypted backups and in manifests
    /// written before encryption existed, which therefore still load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionRecord>,
    /// The other locations (the job's `copies`) where this backup is
    /// complete, added as each copy finishes. Only the primary's manifest
    /// is updated; a copy's manifest is the primary's at upload time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<CopyRecord>,
    /// Restore drills that passed on this backup (as the newest backup of
    /// the instant they restored), oldest first, the last
    /// [`DRILLS_KEPT`] only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drills: Vec<DrillRecord>,
}

/// How many drill records a manifest keeps: enough to show a habit.
pub const DRILLS_KEPT: usize = 10;

/// A restore drill that passed: the backups up to this one restored into a
/// scratch database and matched what they hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillRecord {
    /// The drill job.
    pub job: String,
    pub verified_at: DateTime<Utc>,
    /// The instant restored (the newest, or one drawn at random).
    pub restored_to: OpTime,
    /// The `[sources.NAME]` restored into.
    pub target: String,
    pub collections: u64,
    pub documents: u64,
    /// Documents compared byte for byte with the backup.
    pub sampled: u64,
}

/// How a backup's data files are encrypted. The manifest itself stays
/// plaintext (it holds no document data) so that listing, retention and
/// checksum verification work without any key; it records only the
/// recipients' fingerprints (see
/// [`crypt::fingerprint`](crate::storage::crypt::fingerprint)), which tell an
/// operator which secret key a restore needs without publishing the keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionRecord {
    /// `age-x25519`: age files (age-encryption.org/v1) to X25519
    /// recipients.
    pub scheme: String,
    /// Fingerprints of the recipients (`sha256:` + 32 hex characters).
    pub recipients: Vec<String>,
}

impl EncryptionRecord {
    /// The only scheme this build writes and reads.
    pub const AGE_X25519: &'static str = "age-x25519";
}

/// A location where a copy of the backup is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyRecord {
    /// The `[storage.NAME]`.
    pub location: String,
    /// Its directory or URL when the copy was made.
    pub url: String,
    pub completed_at: DateTime<Utc>,
}

/// Just enough of a manifest to read its version before the strict parse,
/// so that a newer manifest gets "upgrade" rather than "unknown field".
#[derive(Deserialize)]
struct VersionProbe {
    format_version: Option<u32>,
}

impl Manifest {
    /// Pretty JSON with a trailing newline, as written to disk.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain structs, strings, numbers and chrono dates to
        // JSON cannot fail. Should it ever, an empty manifest makes the
        // backup list as invalid, which is the safe failure.
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_else(|err| {
            tracing::error!(error = %err, id = %self.id, "could not serialise a manifest");
            Vec::new()
        });
        out.push(b'\n');
        out
    }

    /// Parses a manifest read from `path` (used in error messages).
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Manifest, CatalogError> {
        if let Ok(VersionProbe {
            format_version: Some(found),
        }) = serde_json::from_slice::<VersionProbe>(bytes)
        {
            if found > FORMAT_VERSION {
                return Err(CatalogError::NewerFormat {
                    path: path.to_path_buf(),
                    found,
                });
            }
            if found == 0 {
                return Err(CatalogError::InvalidManifest {
                    path: path.to_path_buf(),
                    line: 1,
                    column: 1,
                    detail: "format_version 0 was never written by mongo-backupd".to_string(),
                });
            }
        }
        serde_json::from_slice(bytes).map_err(|err| CatalogError::InvalidManifest {
            path: path.to_path_buf(),
            line: err.line(),
            column: err.column(),
            detail: strip_position(&err),
        })
    }

    /// Bytes on disk of all stored files.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The record of the stored file at `path` (relative, with suffix).
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }

    /// The instant the backup restores the data to: T1 for a consistent
    /// backup, the end of the copy otherwise (whose data may then be from
    /// anywhere between start and end).
    pub fn consistent_as_of(&self) -> DateTime<Utc> {
        match (self.consistent, self.oplog_end) {
            (true, Some(t1)) => t1.to_datetime(),
            _ => self.finished_at,
        }
    }
}

/// serde_json appends " at line L column C"; the error variant has its own.
fn strip_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

const ID_TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// A new backup id, e.g. `20261121T020000Z-full`: sorts by time, to the
/// second, and says what kind it is.
pub fn new_backup_id(kind: BackupKind, now: DateTime<Utc>) -> String {
    format!("{}-{}", now.format(ID_TIME_FORMAT), kind.as_str())
}

/// When a backup with this id was started, if the id has the form
/// [`new_backup_id`] gives.
pub(crate) fn time_of_id(id: &str) -> Option<DateTime<Utc>> {
    let stamp = id.get(..16)?;
    NaiveDateTime::parse_from_str(stamp, ID_TIME_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}
