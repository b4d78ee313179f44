//! Canned daemon answers for the HTTP tests: a status with two jobs (one
//! paused full job, one running incremental job), a backup listing, and a
//! run.

use chrono::{DateTime, TimeZone, Utc};

use crate::daemon::api::{
    AlertStatus, BackupSummary, JobActivity, JobStatus, Progress, RunInfo, RunState, Status,
};

/// The nightly job's last success, seconds since the epoch.
pub const T_SUCCESS: i64 = 1_790_000_000;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

pub fn run(id: u64, job: &str) -> RunInfo {
    RunInfo {
        id,
        job: job.to_string(),
        kind: "manual".to_string(),
        state: RunState::Queued,
        requested_by: Some("token \"ops\" via http".to_string()),
        note: None,
        queued_at: at(T_SUCCESS + 100),
        started_at: None,
        finished_at: None,
        backup_id: None,
        error: None,
        progress: Progress::default(),
        stored_bytes: None,
        documents: None,
    }
}

pub fn job(name: &str, kind: &str) -> JobStatus {
    JobStatus {
        name: name.to_string(),
        kind: kind.to_string(),
        source: "main".to_string(),
        storage: "local".to_string(),
        activity: JobActivity::Idle,
        run: None,
        paused: false,
        enabled: true,
        last_result: None,
        last_run_at: None,
        last_success_at: None,
        last_duration_secs: None,
        last_backup_bytes: None,
        next_fire: None,
        backup_count: 0,
        total_bytes: 0,
        oplog_lag_secs: None,
        last_verified: None,
        standby: None,
        runs_succeeded: 0,
        runs_failed: 0,
    }
}

pub fn status() -> Status {
    let mut nightly = job("nightly", "full");
    nightly.paused = true;
    nightly.activity = JobActivity::Paused;
    nightly.last_result = Some("success".to_string());
    nightly.last_run_at = Some(at(T_SUCCESS - 13));
    nightly.last_success_at = Some(at(T_SUCCESS));
    nightly.last_duration_secs = Some(12.5);
    nightly.last_backup_bytes = Some(4096);
    nightly.backup_count = 2;
    nightly.total_bytes = 3000;
    nightly.runs_succeeded = 7;
    nightly.runs_failed = 2;
    nightly.last_verified = Some(at(T_SUCCESS + 600));

    let mut oplog = job("oplog", "incremental");
    oplog.activity = JobActivity::Running;
    oplog.run = Some(run(41, "oplog"));
    oplog.oplog_lag_secs = Some(42.0);

    let mut standby = job("standby", "standby");
    standby.standby = Some(crate::daemon::api::StandbyStatus {
        backup_id: "20261121T100000Z-oplog".to_string(),
        position: at(T_SUCCESS),
        lag_secs: 90.5,
    });

    Status {
        version: "9.9.9".to_string(),
        pid: 4242,
        started_at: at(T_SUCCESS - 3600),
        uptime_secs: 3600,
        config_file: "/etc/mongo-backupd/config.toml".to_string(),
        config_loaded_at: at(T_SUCCESS - 3600),
        jobs: vec![nightly, oplog, standby],
        alerts: AlertStatus {
            email_configured: true,
            queued: 1,
            failed_attempts: 3,
            ..AlertStatus::default()
        },
    }
}

pub fn backups() -> Vec<BackupSummary> {
    let backup = |id: &str, status: &str, bytes: u64| BackupSummary {
        id: id.to_string(),
        job: "nightly".to_string(),
        kind: "full".to_string(),
        status: status.to_string(),
        started_at: Some(at(T_SUCCESS - 13)),
        finished_at: Some(at(T_SUCCESS)),
        bytes,
        note: None,
        requested_by: None,
        path: format!("/var/backups/mongo/nightly/{id}"),
    };
    vec![
        backup("20260911T000000Z-full", "complete", 1000),
        backup("20260910T000000Z-full", "complete", 2000),
        backup(".partial-20260912T000000Z-full", "partial", 500),
    ]
}
