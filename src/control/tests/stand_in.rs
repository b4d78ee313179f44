//! The stand-in daemon the control tests talk to: canned answers in
//! place of the scheduler loop, and a server on a temporary socket.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::control::server::{self, Limits};
use crate::daemon::api::{
    self, AlertStatus, ApiError, Caller, ErrorCode, JobActivity, JobStatus, Progress, Reply,
    Request, RunInfo, RunState, Status,
};

fn at(secs: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + secs, 0).unwrap()
}

pub(crate) fn sample_run(id: u64, job: &str, state: RunState) -> RunInfo {
    RunInfo {
        id,
        job: job.into(),
        kind: "full".into(),
        state,
        requested_by: Some("root (uid 0) via socket".into()),
        note: None,
        queued_at: at(0),
        started_at: (state != RunState::Queued).then(|| at(1)),
        finished_at: state.is_finished().then(|| at(300)),
        backup_id: (state == RunState::Success).then(|| "20260921T000000Z-full".into()),
        error: None,
        progress: Progress::default(),
        stored_bytes: None,
        documents: None,
    }
}

pub(crate) fn sample_job(name: &str, activity: JobActivity) -> JobStatus {
    JobStatus {
        name: name.into(),
        kind: "full".into(),
        source: "prod".into(),
        storage: "local".into(),
        activity,
        run: None,
        paused: activity == JobActivity::Paused,
        enabled: true,
        last_result: Some("success".into()),
        last_run_at: Some(at(-3600)),
        last_success_at: Some(at(-3600)),
        last_duration_secs: Some(12.5),
        last_backup_bytes: Some(1 << 30),
        next_fire: Some(at(7200)),
        backup_count: 3,
        total_bytes: 3 << 30,
        oplog_lag_secs: None,
        last_verified: None,
        standby: None,
        runs_succeeded: 1,
        runs_failed: 0,
    }
}

pub(crate) fn sample_status() -> Status {
    Status {
        version: "0.1.0".into(),
        pid: 4242,
        started_at: at(-86400),
        uptime_secs: 86400,
        config_file: "/etc/mongo-backupd/config.toml".into(),
        config_loaded_at: at(-600),
        jobs: vec![sample_job("prod-full", JobActivity::Idle)],
        alerts: AlertStatus::default(),
    }
}

/// How the stand-in daemon behaves.
#[derive(Clone, Copy)]
pub(crate) struct StandIn {
    /// Between the states of a watched run (queued, running 1/4, running
    /// 3/4, success).
    pub step: Duration,
}

/// Jobs the stand-in knows: `busy` is running already, `slow` never ends.
const JOBS: &[&str] = &["prod-full", "x", "busy", "slow"];

fn no_job(job: &str) -> Reply {
    Reply::Error(ApiError::new(
        ErrorCode::UnknownJob,
        format!("there is no job \"{job}\""),
    ))
}

/// Answers like the scheduler loop would; records who asked.
pub(crate) fn spawn_stand_in(
    mut requests: api::Requests,
    behaviour: StandIn,
    callers: Arc<Mutex<Vec<Caller>>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some((req, reply)) = requests.next().await {
            let answer = match req {
                Request::Status => Reply::Status(Box::new(sample_status())),
                Request::BackupNow { job, caller, .. } => {
                    callers.lock().unwrap().push(caller);
                    match job.as_str() {
                        "busy" => Reply::Error(ApiError::new(
                            ErrorCode::JobRunning,
                            "job \"busy\" is running already (run 3, started 10 minutes ago)",
                        )),
                        j if JOBS.contains(&j) => Reply::Run(sample_run(
                            if j == "slow" { 8 } else { 7 },
                            j,
                            RunState::Queued,
                        )),
                        j => no_job(j),
                    }
                }
                Request::Run { id: 7 } => Reply::Run(sample_run(7, "x", RunState::Running)),
                Request::Run { id } => {
                    Reply::Error(ApiError::new(ErrorCode::NotFound, format!("no run {id}")))
                }
                Request::WatchRun { id } => {
                    let (tx, rx) = watch::channel(sample_run(id, "x", RunState::Queued));
                    if id == 7 {
                        tokio::spawn(play_run(tx, behaviour.step));
                    } else {
                        // `slow`: the sender lives on, the run never ends.
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            drop(tx);
                        });
                    }
                    Reply::Watch(rx)
                }
                Request::Pause { job, caller } | Request::Resume { job, caller }
                    if !JOBS.contains(&job.as_str()) =>
                {
                    callers.lock().unwrap().push(caller);
                    no_job(&job)
                }
                Request::Pause { job, caller } => {
                    callers.lock().unwrap().push(caller);
                    Reply::Job(Box::new(sample_job(&job, JobActivity::Paused)))
                }
                Request::Resume { job, caller } => {
                    callers.lock().unwrap().push(caller);
                    Reply::Job(Box::new(sample_job(&job, JobActivity::Idle)))
                }
                Request::Backups { .. } => Reply::Backups(Vec::new()),
                Request::History { .. } => Reply::History(Vec::new()),
                Request::PrunePlan { .. } => Reply::Text("Nothing to delete.\n".into()),
            };
            let _ = reply.send(answer);
        }
    })
}

/// Run 7: queued, running with progress, success.
async fn play_run(tx: watch::Sender<RunInfo>, step: Duration) {
    let mut run = sample_run(7, "x", RunState::Queued);
    for (done, bytes) in [(1, 1000), (3, 300_000)] {
        tokio::time::sleep(step).await;
        run.state = RunState::Running;
        run.started_at = Some(at(1));
        run.progress = Progress {
            collections_done: done,
            collections_total: 4,
            documents: done * 100,
            bytes,
        };
        let _ = tx.send(run.clone());
    }
    tokio::time::sleep(step).await;
    run.state = RunState::Success;
    run.finished_at = Some(at(300));
    run.backup_id = Some("20260921T000000Z-full".into());
    run.progress.collections_done = 4;
    let _ = tx.send(run);
}

/// A server on a socket in a temporary directory, with the stand-in.
pub(crate) struct TestServer {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<()>,
    pub callers: Arc<Mutex<Vec<Caller>>>,
}

pub(crate) fn fast_limits() -> Limits {
    Limits {
        read_timeout: Duration::from_secs(5),
        write_timeout: Duration::from_secs(5),
        max_connections: 32,
        event_interval: Duration::from_millis(10),
        shutdown_grace: Duration::from_millis(100),
    }
}

pub(crate) async fn start(limits: Limits, behaviour: StandIn) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let (handle, requests) = api::channel();
    let callers = Arc::new(Mutex::new(Vec::new()));
    spawn_stand_in(requests, behaviour, callers.clone());
    let bound = server::bind(&socket, None).await.unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(bound.run(handle, shutdown.clone(), limits));
    TestServer {
        dir,
        socket,
        shutdown,
        task,
        callers,
    }
}
