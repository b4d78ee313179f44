//! Backup runs started by the scheduler: at most `max_concurrent_jobs` at
//! a time (the rest wait for a permit), each cancellable, each recorded in
//! the run history and logged with its job name and backup id.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use tracing::Instrument;

use crate::alert::runlog;
use crate::backup::{self, BackupError, BackupRequest, JobError};
use crate::config::JobKind;
use crate::history::{self, RunRecord, RunResult};

/// A run has ended (whatever its result).
#[derive(Debug)]
pub struct RunDone {
    pub job: String,
    /// The run found an oplog gap: its chain cannot continue.
    pub gap: bool,
    /// The run completed a backup.
    pub success: bool,
    /// The backup's id (also of a failed one: what it would have been).
    pub backup_id: Option<String>,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// For a failed run: what went wrong, for the alert.
    pub failure: Option<RunFailure>,
}

/// What an alert about a failed run quotes.
#[derive(Debug)]
pub struct RunFailure {
    pub error: String,
    pub advice: Option<String>,
    pub log_lines: Vec<String>,
}

struct Active {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

pub struct Runs {
    permits: Arc<Semaphore>,
    state_dir: PathBuf,
    done_tx: mpsc::UnboundedSender<RunDone>,
    done_rx: mpsc::UnboundedReceiver<RunDone>,
    active: HashMap<String, Active>,
}

fn kind_name(kind: JobKind) -> String {
    match kind {
        JobKind::Full => "full",
        JobKind::Incremental => "incremental",
        JobKind::Manual => "manual",
    }
    .to_string()
}

fn record(state_dir: &std::path::Path, rec: &RunRecord) {
    if let Err(e) = history::append(state_dir, rec) {
        tracing::error!(job = %rec.job, "{e} This run is missing from the run history.");
    }
}

impl Runs {
    pub fn new(permits: Arc<Semaphore>, state_dir: PathBuf) -> Runs {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Runs {
            permits,
            state_dir,
            done_tx,
            done_rx,
            active: HashMap::new(),
        }
    }

    pub fn running(&self) -> usize {
        self.active.len()
    }

    /// The next run to end; None never happens while `self` lives (it holds
    /// a sender), so the scheduler's select loop can wait on it forever.
    pub async fn finished(&mut self) -> Option<RunDone> {
        let done = self.done_rx.recv().await?;
        self.active.remove(&done.job);
        Some(done)
    }

    pub fn record_skipped(&self, job: &str, kind: JobKind, scheduled: DateTime<Utc>) {
        let now = Utc::now();
        record(
            &self.state_dir,
            &RunRecord {
                job: job.to_string(),
                kind: kind_name(kind),
                scheduled: Some(scheduled),
                started: now,
                finished: now,
                result: RunResult::Skipped,
                error: None,
                backup_id: None,
                bytes: None,
                documents: None,
                note: Some("the previous run of this job was still going".into()),
                requested_by: None,
            },
        );
    }

    /// Starts a run; it waits for a permit if `max_concurrent_jobs` runs
    /// are already going.
    pub fn start(
        &mut self,
        job: &str,
        kind: JobKind,
        scheduled: DateTime<Utc>,
        request: Result<BackupRequest, JobError>,
    ) {
        let cancel = CancellationToken::new();
        let (permits, state_dir, done_tx) = (
            self.permits.clone(),
            self.state_dir.clone(),
            self.done_tx.clone(),
        );
        let (name, token) = (job.to_string(), cancel.clone());
        let run = runlog::next_run();
        let span = runlog::span(job, run);
        let task = tokio::spawn(async move {
            let permit = match permits.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    tracing::info!(
                        job = %name,
                        "Job \"{name}\" is due but waits: the maximum number of jobs (max_concurrent_jobs) is running."
                    );
                    tokio::select! {
                        p = permits.acquire_owned() => p.ok(),
                        _ = token.cancelled() => None,
                    }
                }
            };
            let started = Utc::now();
            let mut gap = false;
            let mut failure = None;
            let mut backup_id = None;
            let mut rec = RunRecord {
                job: name.clone(),
                kind: kind_name(kind),
                scheduled: Some(scheduled),
                started,
                finished: started,
                result: RunResult::Cancelled,
                error: None,
                backup_id: None,
                bytes: None,
                documents: None,
                note: None,
                requested_by: None,
            };
            if permit.is_some() {
                match request {
                    Err(e) => {
                        tracing::error!(job = %name, "The scheduled backup of job \"{name}\" cannot run: {e}.");
                        rec.result = RunResult::Failed;
                        rec.error = Some(e.to_string());
                        failure = Some((e.to_string(), Some("Fix the job's configuration (the error names the setting) and reload.".to_string())));
                    }
                    Ok(req) => {
                        let id = backup::next_id(&req, started);
                        backup_id = Some(id.clone());
                        match backup::run_with_id(&req, &token, started, &id).await {
                        Ok(out) => {
                            rec.result = RunResult::Success;
                            rec.backup_id = Some(out.manifest.id.clone());
                            rec.bytes = Some(out.bytes());
                            rec.documents = Some(out.documents());
                        }
                        Err(BackupError::Cancelled) => {
                            tracing::warn!(job = %name, "The backup of job \"{name}\" was cancelled before it completed; nothing was kept.");
                            rec.note = Some("cancelled at shutdown".into());
                        }
                        Err(e) => {
                            gap = matches!(e, BackupError::OplogGap { .. });
                            let chain = crate::error_chain(&e);
                            tracing::error!(job = %name, "The backup of job \"{name}\" failed: {chain}.{}", e.advice().map(|a| format!(" {a}")).unwrap_or_default());
                            rec.result = RunResult::Failed;
                            rec.backup_id = backup_id.clone();
                            failure = Some((chain.clone(), e.advice().map(str::to_string)));
                            rec.error = Some(chain);
                        }
                        }
                    }
                }
            }
            rec.finished = Utc::now();
            record(&state_dir, &rec);
            drop(permit);
            let success = rec.result == RunResult::Success;
            let log_lines = runlog::take(run);
            let _ = done_tx.send(RunDone {
                job: name,
                gap,
                success,
                backup_id: rec.backup_id.clone().or(backup_id),
                started: rec.started,
                finished: rec.finished,
                failure: failure.map(|(error, advice)| RunFailure {
                    error,
                    advice,
                    log_lines,
                }),
            });
        }.instrument(span));
        self.active.insert(job.to_string(), Active { cancel, task });
    }

    /// Waits up to `grace` for running backups, then cancels the rest and
    /// waits for them to clean up (a cancelled backup removes its partial
    /// directory before its task ends).
    pub async fn drain(&mut self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while !self.active.is_empty() {
            match tokio::time::timeout_at(deadline, self.finished()).await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        if self.active.is_empty() {
            return;
        }
        tracing::warn!(
            "The shutdown grace period is over: cancelling {} running backups (their partial output is removed).",
            self.active.len()
        );
        for a in self.active.values() {
            a.cancel.cancel();
        }
        for (_, a) in self.active.drain() {
            let _ = a.task.await;
        }
    }
}
