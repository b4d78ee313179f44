//! Serving the requests of the control socket and the HTTP API inside the
//! scheduler loop. Quick answers are made here; anything that reads storage
//! or the history runs on a blocking thread and replies from there, so a
//! slow disk never holds up the schedule.

use chrono::Utc;
use tokio::sync::oneshot;

use super::api::{
    AlertStatus, ApiError, BackupNow, Caller, ErrorCode, JobActivity, JobStatus, Reply, Request,
    RunState, Status,
};
use super::paused::{self, Pause};
use super::runs::RunSpec;
use super::{status, Daemon};
use crate::catalog::BackupKind;
use crate::config::JobKind;
use crate::schedule;

fn unknown_job(d: &Daemon, job: &str) -> ApiError {
    let known: Vec<&str> = d.jobs.keys().map(String::as_str).collect();
    ApiError::new(
        ErrorCode::UnknownJob,
        format!(
            "there is no job \"{job}\" in {}; the jobs are: {}",
            d.config.path.display(),
            known.join(", ")
        ),
    )
}

/// Runs `work` on a blocking thread and sends its reply.
fn answer_later(reply: oneshot::Sender<Reply>, work: impl FnOnce() -> Reply + Send + 'static) {
    tokio::task::spawn_blocking(move || {
        let _ = reply.send(work());
    });
}

impl Daemon {
    pub(super) fn handle_request(&mut self, request: Request, reply: oneshot::Sender<Reply>) {
        let answer = match request {
            Request::Status => {
                let status = self.status_now();
                let cfg = self.config.clone();
                return answer_later(reply, move || {
                    let stored = status::stored(&cfg);
                    let mut status = status;
                    status.jobs = status::with_storage(status.jobs, &stored, Utc::now());
                    Reply::Status(Box::new(status))
                });
            }
            Request::BackupNow {
                job,
                options,
                caller,
            } => self.backup_now(&job, options, &caller),
            Request::Run { id } => match self.runs.watch(id) {
                Some(rx) => Reply::Run(rx.borrow().clone()),
                None => Reply::Error(ApiError::new(
                    ErrorCode::NotFound,
                    format!("there is no run {id} (runs are numbered from 1 at each start of the daemon; older ones are in the history)"),
                )),
            },
            Request::WatchRun { id } => match self.runs.watch(id) {
                Some(rx) => Reply::Watch(rx),
                None => Reply::Error(ApiError::new(
                    ErrorCode::NotFound,
                    format!("there is no run {id}"),
                )),
            },
            Request::Pause { job, caller } => self.set_paused(&job, true, &caller),
            Request::Resume { job, caller } => self.set_paused(&job, false, &caller),
            Request::Backups { job } => {
                if let Some(j) = job.as_deref().filter(|j| !self.jobs.contains_key(*j)) {
                    Reply::Error(unknown_job(self, j))
                } else {
                    let cfg = self.config.clone();
                    return answer_later(reply, move || {
                        match status::backups(&cfg, job.as_deref()) {
                            Ok(b) => Reply::Backups(b),
                            Err(e) => Reply::Error(ApiError::new(ErrorCode::Internal, e)),
                        }
                    });
                }
            }
            Request::History { job, limit } => {
                let dir = self.config.daemon.state_dir.clone();
                return answer_later(reply, move || {
                    let filter = crate::history::HistoryFilter {
                        job,
                        limit,
                        since: None,
                    };
                    match crate::history::read(&dir, filter) {
                        Ok(h) => Reply::History(h),
                        Err(e) => Reply::Error(ApiError::new(ErrorCode::Internal, e.to_string())),
                    }
                });
            }
            Request::PrunePlan { job } => {
                if let Some(j) = job.as_deref().filter(|j| !self.jobs.contains_key(*j)) {
                    Reply::Error(unknown_job(self, j))
                } else {
                    let cfg = self.config.clone();
                    return answer_later(reply, move || {
                        let now = Utc::now();
                        match crate::retention::prune::plan(&cfg, job.as_deref(), now) {
                            Ok(plans) => Reply::Text(
                                plans
                                    .iter()
                                    .map(|p| p.render(now))
                                    .collect::<Vec<_>>()
                                    .join("\n"),
                            ),
                            Err(e) => Reply::Error(ApiError::new(
                                ErrorCode::Internal,
                                crate::error_chain(&e),
                            )),
                        }
                    });
                }
            }
        };
        let _ = reply.send(answer);
    }

    fn backup_now(&mut self, job: &str, options: BackupNow, caller: &Caller) -> Reply {
        let Some(sj) = self.jobs.get(job) else {
            return Reply::Error(unknown_job(self, job));
        };
        if let Some(run) = self.runs.active_run(job) {
            let since = run
                .started_at
                .map(|t| {
                    format!(
                        "running since {}",
                        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    )
                })
                .unwrap_or_else(|| "queued".to_string());
            return Reply::Error(ApiError::new(
                ErrorCode::JobRunning,
                format!(
                    "job \"{job}\" is already running (run {}, {since}); `mongo-backupd status` shows its progress: ask again once it has finished",
                    run.id
                ),
            ));
        }
        if options.manual && !sj.job.kind.makes_backups() {
            return Reply::Error(ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "job \"{job}\" is a {} job: it restores backups and cannot take a manual one; run it without --kind manual, or ask its backup job",
                    sj.job.kind
                ),
            ));
        }
        let kind = if options.manual {
            JobKind::Manual
        } else {
            sj.job.kind
        };
        let mut work = super::runs::Work::for_job(&self.config, job, options.note.clone());
        if let (super::runs::Work::Backup(Ok(r)), true) = (&mut work, options.manual) {
            // A manual backup is a complete dump whatever the job's kind,
            // filed under the job and kept by the manual retention.
            r.kind = BackupKind::Manual;
        }
        let by = caller.describe();
        tracing::info!(
            job = %job,
            "A {} run of job \"{job}\" was requested by {by}{}.",
            kind.as_str(),
            options.note.as_deref().map(|n| format!(" (note: {n})")).unwrap_or_default()
        );
        if let Some(sj) = self.jobs.get_mut(job) {
            sj.state.running = true;
        }
        let info = self.runs.start(RunSpec {
            job: job.to_string(),
            kind,
            scheduled: None,
            work,
            requested_by: Some(by),
            note: options.note,
        });
        let now = Utc::now();
        self.alerts.with_health(|h| {
            if let Some(j) = h.jobs.get_mut(job) {
                j.running_since = Some(now);
            }
        });
        Reply::Run(info)
    }

    /// Pauses or resumes the scheduling of a job.
    fn set_paused(&mut self, job: &str, pause: bool, caller: &Caller) -> Reply {
        if !self.jobs.contains_key(job) {
            return Reply::Error(unknown_job(self, job));
        }
        let now = Utc::now();
        match pause {
            true => {
                if !self.paused.contains_key(job) {
                    tracing::info!(job = %job, "Scheduling of job \"{job}\" was paused by {}.", caller.describe());
                    self.paused.insert(
                        job.to_string(),
                        Pause {
                            by: caller.describe(),
                            at: now,
                        },
                    );
                }
            }
            false => {
                if self.paused.remove(job).is_some() {
                    tracing::info!(job = %job, "Scheduling of job \"{job}\" was resumed by {}; runs missed while paused are not caught up.", caller.describe());
                    if let Some(sj) = self.jobs.get_mut(job) {
                        sj.state.last_fire = Some(now);
                    }
                    self.save_state();
                }
            }
        }
        // The audit trail: who paused or resumed what, in the history.
        let record = crate::history::RunRecord {
            job: job.to_string(),
            kind: if pause { "pause" } else { "resume" }.to_string(),
            scheduled: None,
            started: now,
            finished: now,
            result: crate::history::RunResult::Success,
            error: None,
            backup_id: None,
            bytes: None,
            documents: None,
            note: Some(format!(
                "scheduling {} by {}",
                if pause { "paused" } else { "resumed" },
                caller.describe()
            )),
            requested_by: Some(caller.describe()),
        };
        if let Err(e) = crate::history::append(&self.config.daemon.state_dir, &record) {
            tracing::error!(job = %job, "{e} This pause/resume is missing from the run history.");
        }
        if let Err(e) = paused::save(&self.config.daemon.state_dir, &self.paused) {
            tracing::error!("{e}; the pause/resume of job \"{job}\" is in effect but will not survive a restart until the state directory is writable.");
        }
        self.sync_health(now, &[job.to_string()], None);
        match self.job_status(job, now) {
            Some(j) => Reply::Job(Box::new(j)),
            None => Reply::Error(unknown_job(self, job)),
        }
    }

    /// The last passed drill of `name` (a drill job), or of any drill of
    /// `name`'s backups (a backup job).
    fn last_verified(&self, name: &str) -> Option<chrono::DateTime<Utc>> {
        let drills = self.config.jobs.values().filter(|j| {
            j.kind == JobKind::Drill
                && (j.name == name || j.restore_target.as_ref().is_some_and(|t| t.from == name))
        });
        drills
            .filter_map(|j| self.stats.get(&j.name)?.last_success_at)
            .max()
    }

    fn job_status(&self, name: &str, now: chrono::DateTime<Utc>) -> Option<JobStatus> {
        let sj = self.jobs.get(name)?;
        let run = self.runs.active_run(name);
        let paused = self.paused.contains_key(name);
        let activity = match (&run, paused, sj.job.enabled) {
            (Some(r), _, _) if r.state == RunState::Running => JobActivity::Running,
            (Some(_), _, _) => JobActivity::Queued,
            (None, true, _) => JobActivity::Paused,
            (None, false, false) => JobActivity::Disabled,
            (None, false, true) => JobActivity::Idle,
        };
        let next_fire = match (&sj.timing, paused) {
            (Some(t), false) => schedule::next_fire(t, sj.state.last_fire.unwrap_or(now).max(now)),
            _ => None,
        };
        let stats = self.stats.get(name).cloned().unwrap_or_default();
        Some(JobStatus {
            name: name.to_string(),
            kind: sj.job.kind.as_str().to_string(),
            source: sj.job.source.clone(),
            storage: sj.job.storage.clone(),
            activity,
            run,
            paused,
            enabled: sj.job.enabled,
            last_result: stats.last_result,
            last_run_at: stats.last_run_at,
            last_success_at: stats.last_success_at,
            last_duration_secs: stats.last_duration_secs,
            last_backup_bytes: stats.last_backup_bytes,
            next_fire,
            backup_count: 0,
            total_bytes: 0,
            oplog_lag_secs: None,
            runs_succeeded: stats.runs_succeeded,
            runs_failed: stats.runs_failed,
            last_verified: self.last_verified(name),
            standby: self
                .standby_positions
                .get(name)
                .map(|p| super::api::StandbyStatus {
                    backup_id: p.backup_id.clone(),
                    position: p.at.to_datetime(),
                    lag_secs: crate::standby::lag(p, now).as_secs_f64(),
                }),
        })
    }

    /// Everything but the storage figures, which the caller adds off the
    /// scheduler's thread.
    fn status_now(&self) -> Status {
        let now = Utc::now();
        let d = self.alerts.delivery();
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            started_at: self.started_at,
            uptime_secs: (now - self.started_at).to_std().map_or(0, |d| d.as_secs()),
            config_file: self.config.path.display().to_string(),
            config_loaded_at: self.config_loaded_at,
            jobs: self
                .jobs
                .keys()
                .filter_map(|n| self.job_status(n, now))
                .collect(),
            alerts: AlertStatus {
                email_configured: self.config.alerts.email.is_some(),
                queued: d.queued,
                delivered: d.delivered,
                failed_attempts: d.failed_attempts,
                dropped: d.dropped,
                last_delivered: d.last_delivered,
                last_error: d.last_error,
                failing_since: d.failing_since,
            },
        }
    }
}
