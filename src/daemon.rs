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
pub mod notify;
mod runs;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, Semaphore};

use crate::alert::{self, stale, AlertTasks, Alerts, Event, Operation};
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
        let daemon = Daemon {
            retention_due: Utc::now(),
            runs: Runs::new(permits, config.daemon.state_dir.clone()),
            config,
            jobs,
            notifier,
            alerts,
            alert_tasks: Some(alert_tasks),
        };
        let successes = last_successes(&daemon.config.daemon.state_dir);
        daemon.sync_health(Utc::now(), &[], Some(&successes));
        daemon
    }

    /// Tells the staleness watchdog about the jobs as configured now.
    /// Jobs in `fresh` (added, or with a changed schedule) are watched from
    /// `now`; `successes` seeds the last success of each job at start.
    fn sync_health(
        &self,
        now: DateTime<Utc>,
        fresh: &[String],
        successes: Option<&BTreeMap<String, DateTime<Utc>>>,
    ) {
        let factor = self.config.alerts.stale_factor;
        let entries: BTreeMap<String, stale::JobHealth> = self
            .jobs
            .iter()
            .map(|(name, sj)| {
                let threshold = sj.timing.as_ref().and_then(|t| {
                    stale::threshold(
                        sj.job.stale_after,
                        schedule::longest_gap(t, now, 50),
                        factor,
                    )
                });
                let next_fire = sj.timing.as_ref().and_then(|t| schedule::next_fire(t, now));
                let health = stale::JobHealth {
                    job: alert::job_ref(&self.config, &sj.job),
                    threshold,
                    watched_since: now,
                    last_success: successes.and_then(|s| s.get(name).copied()),
                    running_since: None,
                    skipped: 0,
                    next_fire,
                };
                (name.clone(), health)
            })
            .collect();
        self.alerts.with_health(|h| {
            let old = std::mem::take(&mut h.jobs);
            for (name, mut new) in entries {
                if let Some(prev) = old.get(&name) {
                    if !fresh.contains(&name) {
                        new.watched_since = prev.watched_since;
                    }
                    new.last_success = new.last_success.or(prev.last_success);
                    new.running_since = prev.running_since;
                    new.skipped = prev.skipped;
                }
                h.jobs.insert(name, new);
            }
            h.last_tick = now;
        });
    }

    pub fn config_path(&self) -> PathBuf {
        self.config.path.clone()
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
        let next: Vec<(String, Option<DateTime<Utc>>)> = self
            .jobs
            .iter()
            .map(|(n, sj)| {
                let next = sj.timing.as_ref().and_then(|t| {
                    schedule::next_fire(t, sj.state.last_fire.unwrap_or(now).max(now))
                });
                (n.clone(), next)
            })
            .collect();
        self.alerts.with_health(|h| {
            h.last_tick = now;
            for (name, next) in next {
                if let Some(j) = h.jobs.get_mut(&name) {
                    j.next_fire = next;
                }
            }
        });
        if now >= self.retention_due {
            self.apply_retention(None);
            self.retention_due = now + RETENTION_EVERY;
        }
        let mut fires = Vec::new();
        let mut changed = false;
        for (name, sj) in &mut self.jobs {
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
        let request = crate::backup::BackupRequest::for_job(&self.config, name, None);
        self.runs.start(name, sj.job.kind, scheduled, request);
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
        if done.gap {
            let error = done.failure.as_ref().map(|f| f.error.clone());
            self.restart_chain(&done.job, error.unwrap_or_default());
        }
        if done.success {
            self.apply_retention(Some(&done.job));
        }
    }

    /// Tells alerting how a run ended.
    fn report(&self, done: &RunDone) {
        let Some(sj) = self.jobs.get(&done.job) else {
            return;
        };
        let job = alert::job_ref(&self.config, &sj.job);
        if done.success {
            self.alerts
                .succeeded(job, Operation::Backup, done.backup_id.clone());
            return;
        }
        let Some(f) = &done.failure else {
            // Cancelled at shutdown: nobody needs to be woken for that.
            return;
        };
        let now = Utc::now();
        let next_attempt = sj.timing.as_ref().and_then(|t| schedule::next_fire(t, now));
        self.alerts.event(Event::Failed(alert::Failure {
            job,
            operation: Operation::Backup,
            backup_id: done.backup_id.clone(),
            started: done.started,
            duration: (done.finished - done.started).to_std().unwrap_or_default(),
            error: f.error.clone(),
            advice: f.advice.clone(),
            log_lines: f.log_lines.clone(),
            next_attempt,
        }));
    }

    /// Deletes what retention no longer keeps, for one job (after its
    /// backup) or all (on the daemon's own schedule), off the scheduler's
    /// thread.
    fn apply_retention(&self, job: Option<&str>) {
        let cfg = self.config.clone();
        let jobs: Vec<String> = match job {
            Some(j) => vec![j.to_string()],
            None => cfg.jobs.keys().cloned().collect(),
        };
        let alerts = self.alerts.clone();
        tokio::task::spawn_blocking(move || {
            for job in jobs {
                let Some(j) = cfg.jobs.get(&job) else {
                    continue;
                };
                let started = Utc::now();
                let problems = retain(&cfg, &job);
                let job_ref = alert::job_ref(&cfg, j);
                if problems.is_empty() {
                    alerts.succeeded(job_ref, Operation::Retention, None);
                    continue;
                }
                alerts.event(Event::Failed(alert::Failure {
                    job: job_ref,
                    operation: Operation::Retention,
                    backup_id: None,
                    started,
                    duration: (Utc::now() - started).to_std().unwrap_or_default(),
                    error: problems.join("; "),
                    advice: Some("Check that the storage is mounted and that the daemon's user may list and delete in it; retention retries after the next backup and every hour.".into()),
                    log_lines: Vec::new(),
                    next_attempt: Some(Utc::now() + RETENTION_EVERY),
                }));
            }
        });
    }

    /// After an oplog gap, the chain cannot continue: start a full backup
    /// of the same source into the same storage now, so the next
    /// incremental has a base again instead of failing until the next
    /// scheduled full.
    fn restart_chain(&mut self, incremental: &str, error: String) {
        let Some(inc) = self.jobs.get(incremental).map(|sj| sj.job.clone()) else {
            return;
        };
        let gap = |full_job: Option<&str>, reason: Option<String>| {
            Event::Gap(alert::GapRestart {
                job: alert::job_ref(&self.config, &inc),
                error: error.clone(),
                full_job: full_job.map(str::to_string),
                reason,
            })
        };
        if !inc.full_on_gap {
            self.alerts.event(gap(None, Some(format!("full_on_gap = false for this job, so no full backup was started: its incrementals fail until the next full backup of source \"{}\"; run one now with `mongo-backupd backup --job FULL-JOB`.", inc.source))));
            tracing::error!(
                job = %incremental,
                "Job \"{incremental}\" cannot continue its chain (full_on_gap = false, so no full backup is started): its incrementals fail until the next full backup of source \"{}\".",
                inc.source
            );
            return;
        }
        let fulls: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, sj)| {
                sj.job.kind == config::JobKind::Full
                    && sj.job.enabled
                    && sj.job.source == inc.source
                    && sj.job.storage == inc.storage
            })
            .map(|(n, _)| n.clone())
            .collect();
        let Some(full) = fulls.first() else {
            self.alerts.event(gap(None, Some(format!("No enabled full backup job backs up source \"{}\" into storage \"{}\": add one, or run `mongo-backupd backup` for a full backup now.", inc.source, inc.storage))));
            tracing::error!(
                job = %incremental,
                "No enabled full backup job backs up source \"{}\" into storage \"{}\", so the broken chain cannot be restarted: add one, or run `mongo-backupd backup` for a full backup now.",
                inc.source,
                inc.storage
            );
            return;
        };
        let event = gap(Some(full), None);
        self.alerts.event(event);
        let Some(sj) = self.jobs.get_mut(full) else {
            return;
        };
        if sj.state.running {
            tracing::info!(job = %full, "A full backup of job \"{full}\" is already running; it starts the new chain.");
            return;
        }
        tracing::warn!(
            job = %full,
            "Starting full backup job \"{full}\" now, because job \"{incremental}\" found an oplog gap: the new full starts a new chain."
        );
        sj.state.running = true;
        self.start(full, Utc::now());
    }

    fn next_wake(&self, now: DateTime<Utc>, watchdog: Option<Duration>) -> Duration {
        let mut wake = watchdog.map_or(MAX_SLEEP, |w| w.min(MAX_SLEEP));
        for sj in self.jobs.values() {
            let Some(timing) = &sj.timing else { continue };
            if let Some(next) =
                schedule::next_fire(timing, sj.state.last_fire.unwrap_or(now).max(now))
            {
                let until = (next - now).to_std().unwrap_or(Duration::ZERO);
                wake = wake.min(until);
            }
        }
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

    /// Applies a changed configuration without touching running backups;
    /// a broken file leaves everything as it was.
    fn reload(&mut self) {
        self.notifier.reloading();
        let path = self.config.path.clone();
        let new = match config::load(&path) {
            Ok(c) => c,
            Err(errors) => {
                self.alerts.event(Event::ReloadRejected {
                    path: path.clone(),
                    errors: errors.iter().map(ToString::to_string).collect(),
                });
                for e in &errors.0 {
                    tracing::error!("{e}");
                }
                tracing::error!(
                    "The reloaded configuration {} has {} errors (listed above); still running the previous configuration. Fix the file and reload again.",
                    path.display(),
                    errors.0.len()
                );
                self.notifier
                    .ready("configuration reload rejected; previous configuration active");
                return;
            }
        };
        let now = Utc::now();
        let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
        for name in self.jobs.keys() {
            if !new.jobs.contains_key(name) {
                removed.push(name.clone());
            }
        }
        for name in &removed {
            self.jobs.remove(name);
        }
        for (name, job) in &new.jobs {
            match self.jobs.get_mut(name) {
                Some(sj) if sj.job == *job => {}
                Some(sj) => {
                    let timing = timing_of(job).unwrap_or_else(|why| {
                        tracing::warn!(job = %name, "{why}");
                        None
                    });
                    let schedule_changed =
                        sj.job.schedule != job.schedule || sj.job.timezone != job.timezone;
                    sj.job = job.clone();
                    sj.timing = timing;
                    if schedule_changed {
                        // The new schedule starts now: its past fires are not due.
                        sj.state.last_fire = Some(now);
                    }
                    changed.push(name.clone());
                }
                None => {
                    let timing = timing_of(job).unwrap_or_else(|why| {
                        tracing::warn!(job = %name, "{why}");
                        None
                    });
                    let state = JobState::new(Some(now));
                    self.jobs.insert(
                        name.clone(),
                        ScheduledJob {
                            job: job.clone(),
                            timing,
                            state,
                        },
                    );
                    added.push(name.clone());
                }
            }
        }
        let old = &self.config.daemon;
        let mut needs_restart = Vec::new();
        if old.state_dir != new.daemon.state_dir {
            needs_restart.push("daemon.state_dir");
        }
        if old.log_file != new.daemon.log_file || old.log_rotation != new.daemon.log_rotation {
            needs_restart.push("daemon.log_file/log_rotation");
        }
        if old.log_level != new.daemon.log_level {
            needs_restart.push("daemon.log_level");
        }
        if old.max_concurrent_jobs != new.daemon.max_concurrent_jobs {
            needs_restart.push("daemon.max_concurrent_jobs");
        }
        let keep_daemon = old.clone();
        self.config = new;
        // Settings that cannot change live keep their running values.
        self.config.daemon.state_dir = keep_daemon.state_dir;
        self.config.daemon.log_file = keep_daemon.log_file;
        self.config.daemon.log_rotation = keep_daemon.log_rotation;
        self.config.daemon.log_level = keep_daemon.log_level;
        self.config.daemon.max_concurrent_jobs = keep_daemon.max_concurrent_jobs;
        let list = |v: &Vec<String>| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        tracing::info!(
            "Reloaded {}: jobs added: {}; removed: {}; changed: {}. Running backups were not interrupted.",
            path.display(),
            list(&added),
            list(&removed),
            list(&changed)
        );
        if !needs_restart.is_empty() {
            tracing::warn!(
                "These settings changed but only take effect after a restart (systemctl restart mongo-backupd): {}.",
                needs_restart.join(", ")
            );
        }
        self.save_state();
        self.alerts.reloaded(&self.config);
        let fresh: Vec<String> = added.iter().chain(&changed).cloned().collect();
        self.sync_health(now, &fresh, None);
        let scheduled = self.jobs.values().filter(|j| j.timing.is_some()).count();
        self.notifier.ready(&format!("{scheduled} jobs scheduled"));
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

/// Applies retention for one job; the problems found, as sentences.
fn retain(cfg: &Config, job: &str) -> Vec<String> {
    let plans = match crate::retention::prune::plan(cfg, Some(job), Utc::now()) {
        Ok(plans) => plans,
        Err(e) => {
            let chain = crate::error_chain(&e);
            tracing::error!(job = %job, "Retention could not list the backups of job \"{job}\": {chain}.");
            return vec![format!("cannot list the backups: {chain}")];
        }
    };
    let mut problems = Vec::new();
    for plan in plans {
        let (removed, errors) = plan.execute();
        if !removed.is_empty() {
            tracing::info!(job = %job, "Retention deleted {} backups of job \"{job}\".", removed.len());
        }
        for e in errors {
            tracing::error!(job = %job, "Retention could not delete a backup: {e}. Check the storage's permissions.");
            problems.push(format!("cannot delete a backup: {e}"));
        }
    }
    problems
}

/// The last successful backup of each job, from the run history, so the
/// watchdog knows at start how old each job's newest backup is.
fn last_successes(state_dir: &std::path::Path) -> BTreeMap<String, DateTime<Utc>> {
    let records = crate::history::read(state_dir, crate::history::HistoryFilter::default())
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    for r in records {
        if r.kind != "alert" && r.result == crate::history::RunResult::Success {
            let t = out.entry(r.job).or_insert(r.finished);
            *t = (*t).max(r.finished);
        }
    }
    out
}
