//! Runs started by the scheduler or on request (backups, restore drills
//! and standby syncs): at most `max_concurrent_jobs` at a time (the rest
//! wait for a permit), each cancellable, each with a live [`RunInfo`] that
//! watchers follow, each recorded in the run history and logged with its
//! job name and backup id.

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
use crate::drill::DrillError;
use crate::history::{self, RunRecord, RunResult};
use crate::restore::target::{TargetJob, TargetJobError};
use crate::standby::StandbyError;

/// Finished runs kept for `GET /runs/{id}` and late watchers.
const RECENT_RUNS: usize = 256;
/// The advice for a job whose request could not be made.
const FIX_CONFIG: &str = "Fix the job's configuration (the error names the setting) and reload.";
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
    /// A standby sync that succeeded: where the standby stands now.
    pub standby: Option<crate::standby::Position>,
    /// A standby sync that had to seed again, and why (for the alert).
    pub reseeded: Option<String>,
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
    pub work: Work,
    pub requested_by: Option<String>,
    pub note: Option<String>,
}

/// What a run does, by the job's kind; a request that could not be made
/// fails the run with its error.
pub enum Work {
    Backup(Result<BackupRequest, JobError>),
    Drill(Result<TargetJob, TargetJobError>),
    Standby(Result<TargetJob, TargetJobError>),
}

impl Work {
    /// The work of a scheduled run of `name`.
    pub fn for_job(cfg: &crate::config::Config, name: &str, note: Option<String>) -> Work {
        match cfg.jobs.get(name).map(|j| j.kind) {
            Some(JobKind::Drill) => Work::Drill(TargetJob::resolve(cfg, name, JobKind::Drill)),
            Some(JobKind::Standby) => {
                Work::Standby(TargetJob::resolve(cfg, name, JobKind::Standby))
            }
            _ => Work::Backup(BackupRequest::for_job(cfg, name, note)),
        }
    }
}

/// How a run ended, whatever it did.
#[derive(Default)]
struct Outcome {
    gap: bool,
    /// What went wrong and the advice, for the alert.
    failure: Option<(String, Option<String>)>,
    /// The backup written, or the one drilled.
    backup_id: Option<String>,
    standby: Option<crate::standby::Position>,
    reseeded: Option<String>,
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

/// A drill or standby whose configuration could not be resolved.
fn refused(name: &str, e: &TargetJobError, rec: &mut RunRecord) -> Outcome {
    let chain = crate::error_chain(e);
    tracing::error!(job = %name, "Job \"{name}\" cannot run: {chain}.");
    rec.result = RunResult::Failed;
    rec.error = Some(chain.clone());
    Outcome {
        failure: Some((chain, Some(e.advice().to_string()))),
        ..Outcome::default()
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
        let mut outcome = Outcome::default();
        if permit.is_some() {
            outcome = match spec.work {
                Work::Backup(request) => {
                    self.backup(
                        &name,
                        request,
                        &spec.requested_by,
                        &spec.note,
                        started,
                        &mut rec,
                    )
                    .await
                }
                Work::Drill(Err(e)) | Work::Standby(Err(e)) => refused(&name, &e, &mut rec),
                Work::Drill(Ok(req)) => {
                    self.mark_running();
                    self.drill(&name, req, &mut rec).await
                }
                Work::Standby(Ok(req)) => {
                    self.mark_running();
                    self.standby(&name, req, &mut rec).await
                }
            };
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
        let Outcome {
            gap,
            failure,
            backup_id,
            standby,
            reseeded,
        } = outcome;
        let _ = self.done_tx.send(RunDone {
            id: self.id,
            job: name,
            gap,
            success: rec.result == RunResult::Success,
            standby,
            reseeded,
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

    /// A backup run; `rec` is filled in for the history.
    async fn backup(
        &self,
        name: &str,
        request: Result<BackupRequest, JobError>,
        requested_by: &Option<String>,
        note: &Option<String>,
        started: DateTime<Utc>,
        rec: &mut RunRecord,
    ) -> Outcome {
        let mut out = Outcome::default();
        match request {
            Err(e) => {
                tracing::error!(job = %name, "The backup of job \"{name}\" cannot run: {e}.");
                rec.result = RunResult::Failed;
                rec.error = Some(e.to_string());
                out.failure = Some((e.to_string(), Some(FIX_CONFIG.to_string())));
            }
            Ok(mut req) => {
                let id = backup::next_id(&req, started);
                out.backup_id = Some(id.clone());
                let progress = Arc::new(BackupProgress::default());
                req.progress = Some(progress.clone());
                req.requested_by = requested_by.clone();
                if note.is_some() {
                    req.note = note.clone();
                }
                self.info.send_modify(|i| {
                    i.state = RunState::Running;
                    i.started_at = Some(started);
                    i.backup_id = Some(id.clone());
                });
                let result = self.watch_progress(&req, started, &id, &progress).await;
                match result {
                    Ok(done) => {
                        rec.result = RunResult::Success;
                        rec.backup_id = Some(done.manifest.id.clone());
                        rec.bytes = Some(done.bytes());
                        rec.documents = Some(done.documents());
                    }
                    Err(BackupError::Cancelled) => {
                        tracing::warn!(job = %name, "The backup of job \"{name}\" was cancelled before it completed; nothing was kept.");
                        rec.note = Some("cancelled at shutdown".into());
                    }
                    Err(e) => {
                        out.gap = matches!(e, BackupError::OplogGap { .. });
                        let chain = crate::error_chain(&e);
                        let advice = e.advice().map(str::to_string);
                        tracing::error!(job = %name, "The backup of job \"{name}\" failed: {chain}.{}", advice.as_ref().map(|a| format!(" {a}")).unwrap_or_default());
                        rec.result = RunResult::Failed;
                        rec.backup_id = out.backup_id.clone();
                        rec.error = Some(chain.clone());
                        out.failure = Some((chain, advice));
                    }
                }
                self.info.send_modify(|i| i.progress = progress.snapshot());
            }
        }
        out
    }

    /// A restore drill; a passed one is recorded in the drilled backup's
    /// manifest.
    async fn drill(&self, name: &str, req: TargetJob, rec: &mut RunRecord) -> Outcome {
        let mut out = Outcome::default();
        let started = Utc::now();
        // Seconds and nanoseconds: a different instant and sample each run.
        let seed = u64::try_from(started.timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0);
        match crate::drill::run(&req, seed, &self.cancel).await {
            Ok(report) => {
                tracing::info!(
                    job = %name,
                    "Drill \"{name}\" passed: backup {} of job \"{}\" restored to {} with {} collections, {} documents ({} compared byte for byte) and {} indexes as the backups hold them.",
                    report.backup_id,
                    req.from,
                    report.restored_to.to_datetime().to_rfc3339(),
                    report.collections,
                    report.documents,
                    report.sampled,
                    report.indexes
                );
                crate::drill::record(&req, &report, Utc::now()).await;
                rec.result = RunResult::Success;
                rec.backup_id = Some(report.backup_id.clone());
                rec.documents = Some(report.documents);
                rec.note = Some(format!(
                    "restored to {}; {} collections, {} sampled",
                    report.restored_to.to_datetime().to_rfc3339(),
                    report.collections,
                    report.sampled
                ));
                out.backup_id = Some(report.backup_id);
            }
            Err(DrillError::Cancelled) => {
                tracing::warn!(job = %name, "The drill \"{name}\" was cancelled; its databases on the target were dropped.");
                rec.note = Some("cancelled at shutdown".into());
            }
            Err(e) => {
                let chain = crate::error_chain(&e);
                tracing::error!(job = %name, "The drill \"{name}\" failed: {chain}.{}", e.advice().map(|a| format!(" {a}")).unwrap_or_default());
                rec.result = RunResult::Failed;
                rec.error = Some(chain.clone());
                out.backup_id = match &e {
                    DrillError::Mismatch { backup, .. }
                    | DrillError::Restore { backup, .. }
                    | DrillError::Unreadable { backup, .. } => Some(backup.clone()),
                    _ => None,
                };
                rec.backup_id = out.backup_id.clone();
                out.failure = Some((chain, e.advice().map(str::to_string)));
            }
        }
        out
    }

    fn mark_running(&self) {
        let started = Utc::now();
        self.info.send_modify(|i| {
            i.state = RunState::Running;
            i.started_at = Some(started);
        });
    }

    /// A standby sync: seeds the target if needed, then applies what
    /// continues its chain.
    async fn standby(&self, name: &str, req: TargetJob, rec: &mut RunRecord) -> Outcome {
        let mut out = Outcome::default();
        match crate::standby::run(&req, &self.cancel).await {
            Ok(report) => {
                let at = report.position.at.to_datetime().to_rfc3339();
                rec.result = RunResult::Success;
                rec.backup_id = Some(report.position.backup_id.clone());
                rec.note = Some(
                    match (&report.reseeded, report.seeded, report.applied.len()) {
                        (Some(_), _, n) => format!("seeded again; {n} backups applied; at {at}"),
                        (None, true, n) => format!("seeded; {n} backups applied; at {at}"),
                        (None, false, 0) => format!("up to date at {at}"),
                        (None, false, n) => format!("{n} backups applied; at {at}"),
                    },
                );
                out.backup_id = Some(report.position.backup_id.clone());
                out.standby = Some(report.position);
                out.reseeded = report.reseeded;
            }
            Err(StandbyError::Cancelled) => {
                tracing::warn!(job = %name, "The standby sync \"{name}\" was cancelled; it continues from its last recorded position next time.");
                rec.note = Some("cancelled at shutdown".into());
            }
            Err(e) => {
                let chain = crate::error_chain(&e);
                tracing::error!(job = %name, "The standby sync \"{name}\" failed: {chain}.{}", e.advice().map(|a| format!(" {a}")).unwrap_or_default());
                rec.result = RunResult::Failed;
                rec.error = Some(chain.clone());
                if let StandbyError::Apply { backup, .. } = &e {
                    out.backup_id = Some(backup.clone());
                    rec.backup_id = Some(backup.clone());
                }
                out.failure = Some((chain, e.advice().map(str::to_string)));
            }
        }
        out
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
