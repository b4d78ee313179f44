//! What `status` and the metrics report about each job: results kept in
//! memory as runs end (seeded from the run history at start), plus what is
//! in storage (counted off the scheduler's thread when asked).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::api::{BackupSummary, JobStatus};
use crate::catalog::{self, BackupKind};
use crate::config::Config;
use crate::history::{RunRecord, RunResult};

/// The latest results of one job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobStats {
    pub last_result: Option<String>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_duration_secs: Option<f64>,
    pub last_backup_bytes: Option<u64>,
    /// Since the daemon started.
    pub runs_succeeded: u64,
    pub runs_failed: u64,
}

impl JobStats {
    /// Takes in one finished run (skips are not runs: they leave the last
    /// result as it was).
    pub fn observe(&mut self, r: &RunRecord, count: bool) {
        self.observe_run(r.result, r.started, r.finished, r.bytes, count);
    }

    /// [`observe`](Self::observe) from the parts of a run.
    pub fn observe_run(
        &mut self,
        result: RunResult,
        started: DateTime<Utc>,
        finished: DateTime<Utc>,
        bytes: Option<u64>,
        count: bool,
    ) {
        if matches!(result, RunResult::Skipped) {
            return;
        }
        self.last_result = Some(result.as_str().to_string());
        self.last_run_at = Some(started);
        self.last_duration_secs = (finished - started).to_std().ok().map(|d| d.as_secs_f64());
        if result == RunResult::Success {
            self.last_success_at = Some(finished);
            self.last_backup_bytes = bytes.or(self.last_backup_bytes);
        }
        if count {
            match result {
                RunResult::Success => self.runs_succeeded += 1,
                RunResult::Failed => self.runs_failed += 1,
                _ => {}
            }
        }
    }
}

/// Each job's latest results from the run history (oldest record first),
/// without counting them as runs of this daemon.
pub fn seed(records: &[RunRecord]) -> BTreeMap<String, JobStats> {
    let mut out: BTreeMap<String, JobStats> = BTreeMap::new();
    let mut ordered: Vec<&RunRecord> = records.iter().filter(|r| r.is_backup()).collect();
    ordered.sort_by_key(|r| r.started);
    for r in ordered {
        out.entry(r.job.clone()).or_default().observe(r, false);
    }
    out
}

/// What storage holds for each job: (count, bytes, newest incremental's
/// restore point). Read from the manifests; a location that cannot be
/// listed counts as empty (status must answer even then).
pub fn stored(cfg: &Config) -> BTreeMap<String, (u64, u64, Option<DateTime<Utc>>)> {
    let mut out: BTreeMap<String, (u64, u64, Option<DateTime<Utc>>)> = BTreeMap::new();
    for location in cfg.storage.values() {
        let Some(Ok(listings)) = location
            .local_path()
            .map(|p| catalog::list_backups(p, None))
        else {
            continue;
        };
        for l in listings.iter().filter(|l| l.is_complete()) {
            if !cfg.jobs.contains_key(&l.job) {
                continue;
            }
            let entry = out.entry(l.job.clone()).or_default();
            entry.0 += 1;
            entry.1 += l.size;
            if l.manifest
                .as_ref()
                .is_some_and(|m| m.kind == BackupKind::Incremental)
            {
                entry.2 = entry.2.max(l.consistent_as_of());
            }
        }
    }
    out
}

/// Fills in the storage figures of `jobs`.
pub fn with_storage(
    mut jobs: Vec<JobStatus>,
    stored: &BTreeMap<String, (u64, u64, Option<DateTime<Utc>>)>,
    now: DateTime<Utc>,
) -> Vec<JobStatus> {
    for j in &mut jobs {
        if let Some((count, bytes, newest)) = stored.get(&j.name) {
            j.backup_count = *count;
            j.total_bytes = *bytes;
            if j.kind == "incremental" {
                j.oplog_lag_secs = newest
                    .and_then(|t| (now - t).to_std().ok())
                    .map(|d| d.as_secs_f64());
            }
        }
    }
    jobs
}

/// The backups of `job` (or all jobs of the configuration), newest first.
pub fn backups(cfg: &Config, job: Option<&str>) -> Result<Vec<BackupSummary>, String> {
    let mut out = Vec::new();
    for (name, location) in &cfg.storage {
        if let Some(j) = job.and_then(|j| cfg.jobs.get(j)) {
            if &j.storage != name {
                continue;
            }
        }
        let Some(root) = location.local_path() else {
            continue;
        };
        let listings = catalog::list_backups(root, job)
            .map_err(|e| format!("cannot list storage \"{name}\": {e}"))?;
        for l in listings {
            if !cfg.jobs.contains_key(&l.job) {
                continue;
            }
            let m = l.manifest.as_ref();
            out.push(BackupSummary {
                id: l.id.clone(),
                job: l.job.clone(),
                kind: m.map_or("unknown", |m| m.kind.as_str()).to_string(),
                status: match &l.status {
                    catalog::BackupStatus::Complete => "complete".to_string(),
                    catalog::BackupStatus::Partial => "partial".to_string(),
                    catalog::BackupStatus::Invalid(why) => format!("invalid: {why}"),
                },
                started_at: m.map(|m| m.started_at),
                finished_at: m.map(|m| m.finished_at),
                bytes: l.size,
                note: m.and_then(|m| m.note.clone()),
                requested_by: m.and_then(|m| m.requested_by.clone()),
                path: l.path.display().to_string(),
            });
        }
    }
    out.sort_by(|a, b| b.finished_at.cmp(&a.finished_at).then(b.id.cmp(&a.id)));
    Ok(out)
}
