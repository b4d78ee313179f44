//! Backup runs started by the scheduler or on request: at most
//! `max_concurrent_jobs` at a time (the rest wait for a permit), each
//! cancellable, each with a live [`RunInfo`] that watchers follow, each
//! recorded in the run history and logged with its job name and backup id.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::api::{Progress, RunInfo, RunState};
use crate::alert::runlog;
use crate::backup::{self, BackupError, BackupProgress, BackupRequest, JobError};
use crate::config::JobKind;
use crate::history::{self, RunRecord, RunResult};

/// Finished runs kept for `GET /runs/{id}` and late watchers.
const RECENT_RUNS: usize = 256;
/// How often a running backup's progress is published.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// A run has ended (whatever its result).
#[derive(Debug)]
pub struct RunDone {
    pub id: u64,
    pub job: String,
    /// The run found an oplog gap: its chain cannot continue.
    pub gap: bool,
    /// The run completed a backup.
    pub success: bool,
    /// The backup's id (also of a failed one: what it would have been).
    pub backup_id: Option<String>,
    pub bytes: Option<u64>,
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

/// What to run.
pub struct RunSpec {
    pub job: String,
    /// The kind recorded (`manual` for a manual backup of any job).
    pub kind: JobKind,
    /// The fire it is for; `None` on request.
    pub scheduled: Option<DateTime<Utc>>,
    pub request: Result<BackupRequest, JobError>,
    pub requested_by: Option<String>,
    pub note: Option<String>,
}

struct Active {
    cancel: CancellationToken,
    task: JoinHandle<()>,
    id: u64,
}

pub struct Runs {
    permits: Arc<Semaphore>,
    state_dir: PathBuf,
    done_tx: mpsc::UnboundedSender<RunDone>,
    done_rx: mpsc::UnboundedReceiver<RunDone>,
    active: HashMap<String, Active>,
    /// Every run's live info, newest last, bounded.
    infos: VecDeque<(u64, watch::Receiver<RunInfo>)>,
    next_id: u64,
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
            infos: VecDeque::new(),
            next_id: 1,
        }
    }

    pub fn running(&self) -> usize {
        self.active.len()
    }

    /// The next run to end; None never happens while `self` lives (it holds
    /// a sender), so the scheduler's select loop can wait on it forever.
    pub async fn finished(&mut self) -> Option<RunDone> {
        let done = self.done_rx.recv().await?;
        if self.active.get(&done.job).is_some_and(|a| a.id == done.id) {
            self.active.remove(&done.job);
        }
        Some(done)
    }

    /// A run's live info, while it is recent.
    pub fn watch(&self, id: u64) -> Option<watch::Receiver<RunInfo>> {
        self.infos
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, rx)| rx.clone())
    }

    /// The run of `job` going on (queued or running) now.
    pub fn active_run(&self, job: &str) -> Option<RunInfo> {
        let id = self.active.get(job)?.id;
        self.watch(id).map(|rx| rx.borrow().clone())
    }

    pub fn record_skipped(&self, job: &str, kind: JobKind, scheduled: DateTime<Utc>) {
        let now = Utc::now();
        record(
            &self.state_dir,
            &RunRecord {
                job: job.to_string(),
                kind: kind.as_str().to_string(),
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
    /// are already going. Returns its info as it stands (queued).
    pub fn start(&mut self, spec: RunSpec) -> RunInfo {
        let id = self.next_id;
        self.next_id += 1;
        let info = RunInfo {
            id,
            job: spec.job.clone(),
            kind: spec.kind.as_str().to_string(),
            state: RunState::Queued,
            requested_by: spec.requested_by.clone(),
            note: spec.note.clone(),
            queued_at: Utc::now(),
            started_at: None,
            finished_at: None,
            backup_id: None,
            error: None,
            progress: Progress::default(),
            stored_bytes: None,
            documents: None,
        };
        let (info_tx, info_rx) = watch::channel(info.clone());
        self.infos.push_back((id, info_rx));
        while self.infos.len() > RECENT_RUNS {
            self.infos.pop_front();
        }
        let cancel = CancellationToken::new();
        let context = RunContext {
            permits: self.permits.clone(),
            state_dir: self.state_dir.clone(),
            done_tx: self.done_tx.clone(),
            cancel: cancel.clone(),
            info: info_tx,
            id,
            log_run: runlog::next_run(),
        };
        let span = runlog::span(&spec.job, context.log_run);
        let job = spec.job.clone();
        let task = tokio::spawn(context.run(spec).instrument(span));
        self.active.insert(job, Active { cancel, task, id });
        info
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

/// What a run's task carries.
struct RunContext {
    permits: Arc<Semaphore>,
    state_dir: PathBuf,
    done_tx: mpsc::UnboundedSender<RunDone>,
    cancel: CancellationToken,
    info: watch::Sender<RunInfo>,
    id: u64,
    /// The run's key for its captured log lines.
    log_run: u64,
}

impl RunContext {
    async fn run(self, spec: RunSpec) {
        let name = spec.job.clone();
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                tracing::info!(
                    job = %name,
                    "Job \"{name}\" is due but waits: the maximum number of jobs (max_concurrent_jobs) is running."
                );
                tokio::select! {
                    p = self.permits.clone().acquire_owned() => p.ok(),
                    _ = self.cancel.cancelled() => None,
                }
            }
        };
        let started = Utc::now();
        let mut rec = RunRecord {
            job: name.clone(),
            kind: spec.kind.as_str().to_string(),
            scheduled: spec.scheduled,
            started,
            finished: started,
            result: RunResult::Cancelled,
            error: None,
            backup_id: None,
            bytes: None,
            documents: None,
            note: spec.note.clone(),
            requested_by: spec.requested_by.clone(),
        };
        let (mut gap, mut failure, mut backup_id) = (false, None, None);
        if permit.is_some() {
            match spec.request {
                Err(e) => {
                    tracing::error!(job = %name, "The backup of job \"{name}\" cannot run: {e}.");
                    rec.result = RunResult::Failed;
                    rec.error = Some(e.to_string());
                    failure = Some((
                        e.to_string(),
                        Some(
                            "Fix the job's configuration (the error names the setting) and reload."
                                .to_string(),
                        ),
                    ));
                }
                Ok(mut req) => {
                    let id = backup::next_id(&req, started);
                    backup_id = Some(id.clone());
                    let progress = Arc::new(BackupProgress::default());
                    req.progress = Some(progress.clone());
                    req.requested_by = spec.requested_by.clone();
                    if spec.note.is_some() {
                        req.note = spec.note.clone();
                    }
                    self.info.send_modify(|i| {
                        i.state = RunState::Running;
                        i.started_at = Some(started);
                        i.backup_id = Some(id.clone());
                    });
                    let result = self.watch_progress(&req, started, &id, &progress).await;
                    match result {
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
                            let advice = e.advice().map(str::to_string);
                            tracing::error!(job = %name, "The backup of job \"{name}\" failed: {chain}.{}", advice.as_ref().map(|a| format!(" {a}")).unwrap_or_default());
                            rec.result = RunResult::Failed;
                            rec.backup_id = backup_id.clone();
                            rec.error = Some(chain.clone());
                            failure = Some((chain, advice));
                        }
                    }
                    self.info.send_modify(|i| i.progress = progress.snapshot());
                }
            }
        }
        rec.finished = Utc::now();
        record(&self.state_dir, &rec);
        drop(permit);
        self.info.send_modify(|i| {
            i.state = match rec.result {
                RunResult::Success => RunState::Success,
                RunResult::Failed => RunState::Failed,
                _ => RunState::Cancelled,
            };
            i.finished_at = Some(rec.finished);
            i.backup_id = rec.backup_id.clone().or(i.backup_id.take());
            i.error = rec.error.clone();
            i.stored_bytes = rec.bytes;
            i.documents = rec.documents;
            i.started_at.get_or_insert(started);
        });
        let log_lines = runlog::take(self.log_run);
        let _ = self.done_tx.send(RunDone {
            id: self.id,
            job: name,
            gap,
            success: rec.result == RunResult::Success,
            backup_id: rec.backup_id.clone().or(backup_id),
            bytes: rec.bytes,
            started: rec.started,
            finished: rec.finished,
            failure: failure.map(|(error, advice)| RunFailure {
                error,
                advice,
                log_lines,
            }),
        });
    }

    /// Runs the backup, publishing its progress while it goes.
    async fn watch_progress(
        &self,
        req: &BackupRequest,
        started: DateTime<Utc>,
        id: &str,
        progress: &BackupProgress,
    ) -> Result<backup::BackupOutcome, BackupError> {
        let backup = backup::run_with_id(req, &self.cancel, started, id);
        tokio::pin!(backup);
        let mut ticker = tokio::time::interval(PROGRESS_EVERY);
        loop {
            tokio::select! {
                result = &mut backup => return result,
                _ = ticker.tick() => {
                    let now = progress.snapshot();
                    self.info.send_if_modified(|i| {
                        let changed = i.progress != now;
                        i.progress = now;
                        changed
                    });
                }
            }
        }
    }
}
