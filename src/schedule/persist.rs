//! `schedule-state.json`: the last fire of each job, so that after a restart
//! the daemon knows what it missed and never fires a time twice.
//!
//! ```json
//! {
//!   "version": 1,
//!   "jobs": {
//!     "prod-full": { "last_fire": "2025-06-01T02:00:00Z" }
//!   }
//! }
//! ```
//!
//! An object per job (rather than a bare timestamp) leaves room for more
//! per-job fields; unknown fields and jobs are ignored on load, so a file
//! written by a later version or for a job since removed still loads.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ScheduleError;

/// The file name in the state directory.
pub const STATE_FILE: &str = "schedule-state.json";

/// The format written; a file with a higher version is refused rather than
/// misread.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    #[serde(default)]
    jobs: BTreeMap<String, JobEntry>,
}

#[derive(Serialize, Deserialize)]
struct JobEntry {
    // Optional so a later version may record jobs that have not fired yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_fire: Option<DateTime<Utc>>,
}

/// The last fire of each job recorded in `dir`. A missing file (or
/// directory) is an empty map: the first start ever.
pub fn load_state(dir: &Path) -> Result<BTreeMap<String, DateTime<Utc>>, ScheduleError> {
    let path = dir.join(STATE_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => return Err(ScheduleError::Read { path, source }),
    };
    let file: StateFile = serde_json::from_slice(&bytes).map_err(|err| ScheduleError::Corrupt {
        path: path.clone(),
        reason: if err.is_eof() {
            "it is truncated".to_string()
        } else {
            format!("it is not valid JSON of the expected shape ({err})")
        },
    })?;
    if file.version > VERSION {
        return Err(ScheduleError::Corrupt {
            path,
            reason: format!(
                "it has format version {}, written by a newer mongo-backupd (this one reads {VERSION})",
                file.version
            ),
        });
    }
    Ok(file
        .jobs
        .into_iter()
        .filter_map(|(name, entry)| Some((name, entry.last_fire?)))
        .collect())
}

/// Replaces the state in `dir` with `state`, atomically: a crash leaves
/// either the old file or the new one, never a mix. Creates `dir` if needed.
pub fn save_state(
    dir: &Path,
    state: &BTreeMap<String, DateTime<Utc>>,
) -> Result<(), ScheduleError> {
    let path = dir.join(STATE_FILE);
    let file = StateFile {
        version: VERSION,
        jobs: state
            .iter()
            .map(|(name, fire)| {
                let entry = JobEntry {
                    last_fire: Some(*fire),
                };
                (name.clone(), entry)
            })
            .collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&file).map_err(|err| ScheduleError::Write {
        path: path.clone(),
        op: "encode",
        source: io::Error::other(err),
    })?;
    bytes.push(b'\n');
    fs::create_dir_all(dir).map_err(|source| ScheduleError::Write {
        path: path.clone(),
        op: "create the directory of",
        source,
    })?;
    write_atomic(&path, &bytes).map_err(|(op, source)| ScheduleError::Write { path, op, source })
}

/// Writes `bytes` to `path` through a temporary file in the same directory:
/// write, fsync, rename over `path`, fsync the directory. Readers see the
/// old contents or the new, and after a crash the new contents are durable
/// once this returns. The error names the step that failed.
///
/// The temporary name is fixed (`.NAME.tmp`), so a crash mid-write leaves at
/// most one stray file, which the next write reuses. One writer per file is
/// assumed (the daemon).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), (&'static str, io::Error)> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp"));
    let result = write_and_rename(&temp, path, bytes);
    if result.is_err() {
        // Best effort: the error being returned is the one that matters.
        let _ = fs::remove_file(&temp);
    }
    result?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ("fsync the directory of", e))
}

fn write_and_rename(
    temp: &Path,
    path: &Path,
    bytes: &[u8],
) -> Result<(), (&'static str, io::Error)> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)
        .map_err(|e| ("create a temporary file for", e))?;
    file.write_all(bytes).map_err(|e| ("write", e))?;
    file.sync_all().map_err(|e| ("fsync", e))?;
    drop(file);
    fs::rename(temp, path).map_err(|e| ("replace", e))
}
