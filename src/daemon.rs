//! The service: runs the configured jobs on their schedules until told to
//! stop, reloads its configuration on request, and records every run.
//!
//! Control arrives as [`Control`] messages (the CLI turns SIGHUP, SIGTERM
//! and SIGINT into them), so the loop is the same under systemd, in a
//! terminal and in tests. Scheduling decisions are the pure functions of
//! [`crate::schedule`]; this module only applies them against the wall
//! clock, waking at least every 30 s because timers are monotonic and the
//! wall clock can jump (suspend, NTP steps).

pub mod api;
mod health;
pub mod notify;
mod paused;
mod reload;
mod requests;
mod runs;
mod status;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, Semaphore};

use crate::alert::{AlertTasks, Alerts};
use crate::config::{self, Config};
use crate::schedule::{self, FireOutcome, JobState, JobTiming, StartupDecision};
pub use notify::Notifier;
use runs::{RunDone, Runs};

/// The longest the loop sleeps before looking at the wall clock again.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// How often retention runs for every job on its own (it also runs after
/// each successful backup).
const RETENTION_EVERY: chrono::Duration = chrono::Duration::hours(1);

/// What the outside world asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Re-read the configuration (SIGHUP); a broken file is rejected and
    /// the running configuration kept.
    Reload,
    /// Stop scheduling, let running backups finish within the grace
    /// period, then cancel them (SIGTERM, SIGINT).
    Shutdown,
}

/// A job as the scheduler holds it.
struct ScheduledJob {
    job: config::Job,
    /// None for jobs that are not scheduled (manual without a schedule,
    /// disabled, or kinds not supported yet).
    timing: Option<JobTiming>,
    state: JobState,
}

/// Whether the daemon schedules this job, and if not, why (for the log).
fn timing_of(job: &config::Job) -> Result<Option<JobTiming>, String> {
    if !job.enabled {
        return Ok(None);
    }
    Ok(JobTiming::from_job(job))
}

fn schedule_jobs(
    cfg: &Config,
    last_fires: &BTreeMap<String, DateTime<Utc>>,
) -> BTreeMap<String, ScheduledJob> {
    cfg.jobs
        .iter()
        .map(|(name, job)| {
            let timing = timing_of(job).unwrap_or_else(|why| {
                tracing::warn!(job = %name, "{why}");
                None
            });
            let state = JobState::new(last_fires.get(name).copied());
            (
                name.clone(),
                ScheduledJob {
                    job: job.clone(),
                    timing,
                    state,
                },
            )
        })
        .collect()
}

pub struct Daemon {
    config: Config,
    /// When retention next runs for every job, besides after each backup:
    /// backups of a job that stopped running must expire too.
    retention_due: DateTime<Utc>,
    jobs: BTreeMap<String, ScheduledJob>,
    runs: Runs,
    notifier: Notifier,
    alerts: Alerts,
    alert_tasks: Option<AlertTasks>,
    /// The front ends' way in; `requests` is taken by [`Daemon::run`].
    handle: api::DaemonHandle,
    requests: Option<api::Requests>,
    /// Jobs whose scheduling an operator paused (persisted).
    paused: BTreeMap<String, paused::Pause>,
    stats: BTreeMap<String, status::JobStats>,
    /// Where each standby stands, from its last successful sync.
    standby_positions: BTreeMap<String, crate::standby::Position>,
    started_at: DateTime<Utc>,
    config_loaded_at: DateTime<Utc>,
}

impl Daemon {
    /// A daemon for a loaded configuration; reads the record of past runs
    /// from its state directory.
    pub fn new(config: Config, notifier: Notifier) -> Daemon {
        // systemd's StateDirectory= creates it; by hand it may not exist yet.
        if let Err(e) = std::fs::create_dir_all(&config.daemon.state_dir) {
            tracing::error!(
                "Cannot create the state directory {}: {e}. Runs are not recorded and missed runs cannot be caught up until it is writable.",
                config.daemon.state_dir.display()
            );
        }
        let last_fires = match schedule::load_state(&config.daemon.state_dir) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("{e} Starting without the record of past runs: missed runs cannot be caught up this time.");
                BTreeMap::new()
            }
        };
        let jobs = schedule_jobs(&config, &last_fires);
        let permits = Arc::new(Semaphore::new(config.daemon.max_concurrent_jobs.max(1)));
        let (alerts, alert_tasks) = Alerts::start(&config);
        let (handle, requests) = api::channel();
        let paused = paused::load(&config.daemon.state_dir).unwrap_or_else(|e| {
            tracing::error!("{e}; starting with no job paused. Pause the jobs again with `mongo-backupd pause JOB` if needed.");
            BTreeMap::new()
        });
        let history = crate::history::read(
            &config.daemon.state_dir,
            crate::history::HistoryFilter::default(),
        )
        .unwrap_or_default();
        let now = Utc::now();
        let daemon = Daemon {
            retention_due: now,
            runs: Runs::new(permits, config.daemon.state_dir.clone()),
            config,
            jobs,
            notifier,
            alerts,
            alert_tasks: Some(alert_tasks),
            handle,
            requests: Some(requests),
            paused,
            stats: status::seed(&history),
            standby_positions: BTreeMap::new(),
            started_at: now,
            config_loaded_at: now,
        };
        // The history was read once above; the last successes come from it.
        let successes: BTreeMap<String, DateTime<Utc>> = daemon
            .stats
            .iter()
            .filter_map(|(job, s)| s.last_success_at.map(|t| (job.clone(), t)))
            .collect();
        daemon.sync_health(Utc::now(), &[], Some(&successes));
        daemon
    }

    pub fn config_path(&self) -> PathBuf {
        self.config.path.clone()
    }

    /// For the control socket and the HTTP API.
    pub fn handle(&self) -> api::DaemonHandle {
        self.handle.clone()
    }

    /// Runs until a `Control::Shutdown` (or the control channel closing).
    pub async fn run(mut self, mut control: mpsc::Receiver<Control>) {
        let now = Utc::now();
        self.startup(now);
        let scheduled = self.jobs.values().filter(|j| j.timing.is_some()).count();
        tracing::info!(
            "mongo-backupd {} started with {} ({} jobs, {scheduled} scheduled).",
            env!("CARGO_PKG_VERSION"),
            self.config.path.display(),
            self.jobs.len()
        );
        self.notifier.ready(&format!("{scheduled} jobs scheduled"));
        let watchdog = self.notifier.watchdog_interval();
        let mut requests = self.requests.take();
        loop {
            let now = Utc::now();
            self.tick(now);
            let sleep = self.next_wake(now, watchdog);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                msg = control.recv() => match msg {
                    Some(Control::Reload) => self.reload(),
                    Some(Control::Shutdown) | None => break,
                },
                Some(done) = self.runs.finished() => self.finished(done),
                Some((request, reply)) = next_request(&mut requests) => self.handle_request(request, reply),
            }
            if watchdog.is_some() {
                self.notifier.watchdog();
            }
        }
        self.shutdown().await;
    }

    fn startup(&mut self, now: DateTime<Utc>) {
        let mut fires = Vec::new();
        for (name, sj) in &mut self.jobs {
            let Some(timing) = &sj.timing else { continue };
            if self.paused.contains_key(name) {
                tracing::info!(job = %name, "Job \"{name}\" is paused (by {}); it is not scheduled until `mongo-backupd resume {name}`.", self.paused.get(name).map(|p| p.by.as_str()).unwrap_or("?"));
                continue;
            }
            let decision = schedule::on_startup(timing, sj.state.last_fire, now);
            match &decision {
                StartupDecision::RunNow {
                    missed,
                    skipped_count,
                    ..
                } => tracing::info!(
                    job = %name,
                    "The run scheduled for {} was missed while the daemon was down; running it now (catching up){}.",
                    missed.to_rfc3339(),
                    if *skipped_count > 0 { format!("; {skipped_count} older missed runs are not run") } else { String::new() }
                ),
                StartupDecision::Missed {
                    missed,
                    skipped_count,
                    latest,
                    ..
                } => tracing::warn!(
                    job = %name,
                    "{skipped_count} scheduled runs were missed while the daemon was down (the latest, {}, is outside the catch-up window, so none is run now); first missed: {}.",
                    latest.to_rfc3339(),
                    missed.first().map(|t| t.to_rfc3339()).unwrap_or_default()
                ),
                StartupDecision::NothingMissed => {}
            }
            if let Some(FireOutcome::Fired { scheduled }) = sj.state.apply_startup(&decision, now) {
                fires.push((name.clone(), scheduled));
            }
        }
        for (name, scheduled) in fires {
            self.start(&name, scheduled);
        }
        self.save_state();
    }

    fn tick(&mut self, now: DateTime<Utc>) {
        self.alerts.with_health(|h| h.last_tick = now);
        if now >= self.retention_due {
            self.apply_retention(None);
            self.retention_due = now + RETENTION_EVERY;
        }
        let mut fires = Vec::new();
        let mut changed = false;
        for (name, sj) in &mut self.jobs {
            if self.paused.contains_key(name) {
                continue;
            }
            let Some(timing) = &sj.timing else { continue };
            let before = sj.state.last_fire;
            match sj.state.apply_tick(timing, now) {
                Some(FireOutcome::Fired { scheduled }) => fires.push((name.clone(), scheduled)),
                Some(FireOutcome::SkippedOverlap { scheduled }) => {
                    tracing::warn!(
                        job = %name,
                        "The run scheduled for {} was skipped: the previous run of this job is still going ({} runs skipped so far).",
                        scheduled.to_rfc3339(),
                        sj.state.skipped_overlaps
                    );
                    self.runs.record_skipped(name, sj.job.kind, scheduled);
                    self.alerts.with_health(|h| {
                        if let Some(j) = h.jobs.get_mut(name) {
                            j.skipped += 1;
                        }
                    });
                }
                _ => {}
            }
            changed |= sj.state.last_fire != before;
        }
        for (name, scheduled) in fires {
            self.start(&name, scheduled);
        }
        if changed {
            self.save_state();
        }
    }

    fn start(&mut self, name: &str, scheduled: DateTime<Utc>) {
        let Some(sj) = self.jobs.get(name) else {
            return;
        };
        self.runs.start(runs::RunSpec {
            job: name.to_string(),
            kind: sj.job.kind,
            scheduled: Some(scheduled),
            work: runs::Work::for_job(&self.config, name, None),
            requested_by: None,
            note: None,
        });
        let now = Utc::now();
        self.alerts.with_health(|h| {
            if let Some(j) = h.jobs.get_mut(name) {
                j.running_since = Some(now);
            }
        });
    }

    fn finished(&mut self, done: RunDone) {
        if let Some(sj) = self.jobs.get_mut(&done.job) {
            sj.state.finish();
        }
        let result = match (done.success, &done.failure) {
            (true, _) => crate::history::RunResult::Success,
            (false, Some(_)) => crate::history::RunResult::Failed,
            (false, None) => crate::history::RunResult::Cancelled,
        };
        self.stats.entry(done.job.clone()).or_default().observe_run(
            result,
            done.started,
            done.finished,
            done.bytes,
            true,
        );
        self.alerts.with_health(|h| {
            if let Some(j) = h.jobs.get_mut(&done.job) {
                j.running_since = None;
                if done.success {
                    j.last_success = Some(done.finished);
                    j.skipped = 0;
                }
            }
        });
        self.report(&done);
        if let Some(position) = &done.standby {
            self.standby_positions
                .insert(done.job.clone(), position.clone());
            if let Some(why) = &done.reseeded {
                self.report_reseed(&done.job, why, position);
            }
        }
        if done.success {
            self.start_standbys(&done.job);
        }
        if done.gap {
            let error = done.failure.as_ref().map(|f| f.error.clone());
            self.restart_chain(&done.job, error.unwrap_or_default());
        }
        self.after_run(&done.job, done.success);
    }

    /// A backup of `job` landed: the standbys following its source apply it
    /// now rather than at their next scheduled sync.
    fn start_standbys(&mut self, job: &str) {
        let Some(source) = self
            .jobs
            .get(job)
            .filter(|sj| sj.job.kind.makes_backups())
            .map(|sj| sj.job.source.clone())
        else {
            return;
        };
        let standbys: Vec<String> = self
            .jobs
            .iter()
            .filter(|(name, sj)| {
                sj.job.kind == config::JobKind::Standby
                    && sj.job.source == source
                    && sj.job.enabled
                    && !sj.state.running
                    && !self.paused.contains_key(*name)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in standbys {
            tracing::info!(job = %name, "Standby \"{name}\" syncs now: a backup of job \"{job}\" completed.");
            if let Some(sj) = self.jobs.get_mut(&name) {
                sj.state.running = true;
            }
            self.start(&name, Utc::now());
        }
    }

    /// How long to sleep: until the next fire of any job, at most
    /// `MAX_SLEEP` (or the watchdog's interval). The next fires also go to
    /// the staleness watchdog, so they are computed once per wake.
    fn next_wake(&self, now: DateTime<Utc>, watchdog: Option<Duration>) -> Duration {
        let mut wake = watchdog.map_or(MAX_SLEEP, |w| w.min(MAX_SLEEP));
        let mut nexts = Vec::with_capacity(self.jobs.len());
        for (name, sj) in &self.jobs {
            let next = match &sj.timing {
                Some(timing) if !self.paused.contains_key(name) => {
                    schedule::next_fire(timing, sj.state.last_fire.unwrap_or(now).max(now))
                }
                _ => None,
            };
            if let Some(next) = next {
                wake = wake.min((next - now).to_std().unwrap_or(Duration::ZERO));
            }
            nexts.push((name, next));
        }
        self.alerts.with_health(|h| {
            for (name, next) in nexts {
                if let Some(j) = h.jobs.get_mut(name) {
                    j.next_fire = next;
                }
            }
        });
        wake
    }

    fn save_state(&self) {
        let fires: BTreeMap<String, DateTime<Utc>> = self
            .jobs
            .iter()
            .filter_map(|(n, sj)| sj.state.last_fire.map(|t| (n.clone(), t)))
            .collect();
        if let Err(e) = schedule::save_state(&self.config.daemon.state_dir, &fires) {
            tracing::error!(
                "{e} Missed runs cannot be caught up after a restart until this is fixed."
            );
        }
    }

    async fn shutdown(mut self) {
        self.notifier.stopping();
        let grace = self.config.daemon.shutdown_grace;
        let running = self.runs.running();
        if running > 0 {
            tracing::info!(
                "Stopping: waiting up to {} s for {running} running backups to finish.",
                grace.as_secs()
            );
        } else {
            tracing::info!("Stopping: no backup is running.");
        }
        self.runs.drain(grace).await;
        self.save_state();
        // Every handle must go for the alert tasks to end: the last one is
        // ours. Mails still waiting get one last attempt.
        let tasks = self.alert_tasks.take();
        drop(self);
        if let Some(tasks) = tasks {
            tasks.finish().await;
        }
        tracing::info!("mongo-backupd stopped.");
    }
}

/// The next request from a front end; pending forever once the channel is
/// gone (or was never taken), so the loop's `select!` simply stops asking.
async fn next_request(
    requests: &mut Option<api::Requests>,
) -> Option<(api::Request, tokio::sync::oneshot::Sender<api::Reply>)> {
    match requests.as_mut() {
        Some(r) => r.next().await,
        None => std::future::pending().await,
    }
}
