//! What the running daemon answers to: the requests of the control socket
//! and the HTTP API, their replies, and [`DaemonHandle`], through which
//! both reach the scheduler loop. Replies are plain serde types, so the two
//! front ends (and `status --json`) show the same fields.
//!
//! Requests go through the scheduler's own loop rather than shared state,
//! so the answer always agrees with what the scheduler does next (a
//! `backup-now` and a scheduled fire can never both start a job).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

/// Who asked: recorded in the history and manifest of what they start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// `alice (uid 1000)` on the socket, `token "ops"` over HTTP.
    pub name: String,
    /// `socket` or `http`.
    pub via: String,
}

impl Caller {
    /// As recorded: `alice (uid 1000) via socket`.
    pub fn describe(&self) -> String {
        format!("{} via {}", self.name, self.via)
    }
}

/// Stable error codes: scripts and the HTTP API match on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    UnknownJob,
    /// The job is running (or queued) already.
    JobRunning,
    NotFound,
    InvalidRequest,
    /// The daemon is stopping and starts nothing new.
    ShuttingDown,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownJob => "unknown_job",
            ErrorCode::JobRunning => "job_running",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A refused request: a stable code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

/// What a job is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobActivity {
    Idle,
    /// Due, waiting for a slot (`max_concurrent_jobs`).
    Queued,
    Running,
    /// Scheduling stopped with `pause` (persisted across restarts).
    Paused,
    /// `enabled = false` in the configuration.
    Disabled,
}

/// How far a running backup is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub collections_done: u64,
    pub collections_total: u64,
    pub documents: u64,
    pub bytes: u64,
}

/// The state of one run started by the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Queued,
    Running,
    Success,
    Failed,
    Cancelled,
}

impl RunState {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunState::Success | RunState::Failed | RunState::Cancelled
        )
    }
}

/// One run, as `backup-now --wait`, `GET /runs/{id}` and status show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Unique while the daemon runs (runs are recorded in the history).
    pub id: u64,
    pub job: String,
    /// `full`, `incremental` or `manual`.
    pub kind: String,
    pub state: RunState,
    pub requested_by: Option<String>,
    pub note: Option<String>,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub backup_id: Option<String>,
    pub error: Option<String>,
    pub progress: Progress,
    /// Of a complete backup: its size as stored (compressed) and the
    /// documents it holds.
    #[serde(default)]
    pub stored_bytes: Option<u64>,
    #[serde(default)]
    pub documents: Option<u64>,
}

/// One job in `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    pub name: String,
    pub kind: String,
    pub source: String,
    pub storage: String,
    pub activity: JobActivity,
    /// The run in progress or queued, if any.
    pub run: Option<RunInfo>,
    pub paused: bool,
    pub enabled: bool,
    /// `success`, `failed`, `cancelled` or `skipped`.
    pub last_result: Option<String>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_duration_secs: Option<f64>,
    pub last_backup_bytes: Option<u64>,
    pub next_fire: Option<DateTime<Utc>>,
    /// Complete backups of this job in its storage, and their total size.
    pub backup_count: u64,
    pub total_bytes: u64,
    /// For incremental jobs: how far the newest incremental's end is
    /// behind now.
    pub oplog_lag_secs: Option<f64>,
    /// Runs by result since the daemon started.
    pub runs_succeeded: u64,
    pub runs_failed: u64,
    /// Backup jobs: when a restore drill last passed on their backups;
    /// drill jobs: when they last passed.
    #[serde(default)]
    pub last_verified: Option<DateTime<Utc>>,
    /// Standby jobs: where the standby stands, once a sync has run since
    /// the daemon started.
    #[serde(default)]
    pub standby: Option<StandbyStatus>,
}

/// A standby's position, in `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandbyStatus {
    /// The last backup applied.
    pub backup_id: String,
    /// The instant of the source the standby reflects.
    pub position: DateTime<Utc>,
    /// How far that is behind now.
    pub lag_secs: f64,
}

/// Alert delivery, in `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertStatus {
    pub email_configured: bool,
    pub queued: usize,
    pub delivered: u64,
    pub failed_attempts: u64,
    pub dropped: u64,
    pub last_delivered: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
}

/// The whole daemon, for `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub uptime_secs: u64,
    pub config_file: String,
    pub config_loaded_at: DateTime<Utc>,
    pub jobs: Vec<JobStatus>,
    pub alerts: AlertStatus,
}

/// A backup in storage, for `list` and `GET /backups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSummary {
    pub id: String,
    pub job: String,
    pub kind: String,
    pub status: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub bytes: u64,
    pub note: Option<String>,
    pub requested_by: Option<String>,
    pub path: String,
}

/// `backup-now` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupNow {
    /// Take it as a manual backup (kept by the manual retention) instead of
    /// the job's own kind.
    #[serde(default)]
    pub manual: bool,
    #[serde(default)]
    pub note: Option<String>,
}

/// The requests the scheduler loop serves.
#[derive(Debug)]
pub enum Request {
    Status,
    BackupNow {
        job: String,
        options: BackupNow,
        caller: Caller,
    },
    Run {
        id: u64,
    },
    /// Updates of one run until it ends.
    WatchRun {
        id: u64,
    },
    Pause {
        job: String,
        caller: Caller,
    },
    Resume {
        job: String,
        caller: Caller,
    },
    /// The backups of one job (or all), newest first.
    Backups {
        job: Option<String>,
    },
    /// The run history, newest first.
    History {
        job: Option<String>,
        limit: Option<usize>,
    },
    /// What retention would delete now, as `prune --dry-run` prints it.
    PrunePlan {
        job: Option<String>,
    },
}

/// What a request gets back.
// Each reply is moved once through a channel; boxing the run would only
// add an allocation to the commonest answer.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Reply {
    Status(Box<Status>),
    Run(RunInfo),
    Watch(watch::Receiver<RunInfo>),
    Job(Box<JobStatus>),
    Backups(Vec<BackupSummary>),
    History(Vec<crate::history::RunRecord>),
    Text(String),
    Error(ApiError),
}

type Envelope = (Request, oneshot::Sender<Reply>);

/// A front end's way to the scheduler loop. Cheap to clone.
#[derive(Clone)]
pub struct DaemonHandle {
    tx: mpsc::Sender<Envelope>,
}

/// The loop's end of the channel.
pub struct Requests {
    rx: mpsc::Receiver<Envelope>,
}

impl Requests {
    /// The next request and where to send its reply; `None` once every
    /// handle is gone. (Public so front ends can be tested against a
    /// stand-in loop.)
    pub async fn next(&mut self) -> Option<(Request, oneshot::Sender<Reply>)> {
        self.rx.recv().await
    }
}

/// Requests waiting for the loop beyond this many are refused as busy
/// rather than queued without bound.
const QUEUE: usize = 64;
/// The loop answers within a tick; this only bounds a wedged daemon.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

pub fn channel() -> (DaemonHandle, Requests) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (DaemonHandle { tx }, Requests { rx })
}

fn unexpected(reply: Reply) -> ApiError {
    match reply {
        Reply::Error(e) => e,
        other => ApiError::new(
            ErrorCode::Internal,
            format!("the daemon answered with an unexpected reply: {other:?}"),
        ),
    }
}

impl DaemonHandle {
    /// Sends `request` and waits for the loop's answer.
    pub async fn ask(&self, request: Request) -> Reply {
        let (tx, rx) = oneshot::channel();
        if self.tx.try_send((request, tx)).is_err() {
            return Reply::Error(ApiError::new(
                ErrorCode::Internal,
                "the daemon is busy or stopping; try again in a moment",
            ));
        }
        match tokio::time::timeout(ANSWER_WITHIN, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Reply::Error(ApiError::new(
                ErrorCode::ShuttingDown,
                "the daemon is stopping",
            )),
            Err(_) => Reply::Error(ApiError::new(
                ErrorCode::Internal,
                "the daemon did not answer within 30 s; its scheduler may be stuck (see its log)",
            )),
        }
    }

    pub async fn status(&self) -> Result<Status, ApiError> {
        match self.ask(Request::Status).await {
            Reply::Status(s) => Ok(*s),
            other => Err(unexpected(other)),
        }
    }

    /// Starts (or queues) a backup of `job` now; the run as it stands.
    pub async fn backup_now(
        &self,
        job: &str,
        options: BackupNow,
        caller: Caller,
    ) -> Result<RunInfo, ApiError> {
        let request = Request::BackupNow {
            job: job.to_string(),
            options,
            caller,
        };
        match self.ask(request).await {
            Reply::Run(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    pub async fn run(&self, id: u64) -> Result<RunInfo, ApiError> {
        match self.ask(Request::Run { id }).await {
            Reply::Run(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Follows a run: the receiver's value changes as it progresses and
    /// ends in a finished state.
    pub async fn watch_run(&self, id: u64) -> Result<watch::Receiver<RunInfo>, ApiError> {
        match self.ask(Request::WatchRun { id }).await {
            Reply::Watch(w) => Ok(w),
            other => Err(unexpected(other)),
        }
    }

    pub async fn pause(&self, job: &str, caller: Caller) -> Result<JobStatus, ApiError> {
        let request = Request::Pause {
            job: job.to_string(),
            caller,
        };
        match self.ask(request).await {
            Reply::Job(j) => Ok(*j),
            other => Err(unexpected(other)),
        }
    }

    pub async fn resume(&self, job: &str, caller: Caller) -> Result<JobStatus, ApiError> {
        let request = Request::Resume {
            job: job.to_string(),
            caller,
        };
        match self.ask(request).await {
            Reply::Job(j) => Ok(*j),
            other => Err(unexpected(other)),
        }
    }

    pub async fn backups(&self, job: Option<&str>) -> Result<Vec<BackupSummary>, ApiError> {
        let request = Request::Backups {
            job: job.map(str::to_string),
        };
        match self.ask(request).await {
            Reply::Backups(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    pub async fn history(
        &self,
        job: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<crate::history::RunRecord>, ApiError> {
        let request = Request::History {
            job: job.map(str::to_string),
            limit,
        };
        match self.ask(request).await {
            Reply::History(h) => Ok(h),
            other => Err(unexpected(other)),
        }
    }

    pub async fn prune_plan(&self, job: Option<&str>) -> Result<String, ApiError> {
        let request = Request::PrunePlan {
            job: job.map(str::to_string),
        };
        match self.ask(request).await {
            Reply::Text(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }
}
