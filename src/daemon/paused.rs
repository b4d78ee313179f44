//! `paused.json` in the state directory: the jobs an operator paused, by
//! whom and when, so a pause survives restarts and upgrades (a job paused
//! for maintenance must not start again because the server rebooted).
//!
//! Written atomically (temporary file, fsync, rename): a crash leaves the
//! old list or the new one, never a torn file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const PAUSED_FILE: &str = "paused.json";

/// Who paused a job, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub by: String,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    #[serde(default)]
    jobs: BTreeMap<String, Pause>,
}

/// The paused jobs recorded in `dir`; a missing file means none. A file
/// that cannot be read is an error the caller logs (and then treats as
/// none: refusing to start would stop every job).
pub fn load(dir: &Path) -> Result<BTreeMap<String, Pause>, String> {
    let path = dir.join(PAUSED_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let file: File = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not a valid list of paused jobs: {e}", path.display()))?;
    Ok(file.jobs)
}

pub fn save(dir: &Path, jobs: &BTreeMap<String, Pause>) -> Result<(), String> {
    let path = dir.join(PAUSED_FILE);
    let tmp = dir.join(format!(".{PAUSED_FILE}.tmp"));
    let file = File {
        version: 1,
        jobs: jobs.clone(),
    };
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pauses_survive_a_round_trip_and_a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        let mut jobs = BTreeMap::new();
        jobs.insert(
            "prod-full".to_string(),
            Pause {
                by: "alice (uid 1000) via socket".into(),
                at: Utc::now(),
            },
        );
        save(dir.path(), &jobs).unwrap();
        assert_eq!(load(dir.path()).unwrap(), jobs);
        std::fs::write(dir.path().join(PAUSED_FILE), "{ torn").unwrap();
        assert!(load(dir.path())
            .unwrap_err()
            .contains("paused.json is not a valid"));
    }
}
