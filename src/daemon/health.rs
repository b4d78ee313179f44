//! What the daemon tells alerting and the staleness watchdog: how runs
//! ended, the health of each job, retention results, and the oplog gaps
//! that restart a chain.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::runs::RunDone;
use super::{Daemon, RETENTION_EVERY};
use crate::alert::{self, stale, Event, Operation};
use crate::config::{self, Config};
use crate::schedule;

impl Daemon {
    /// Tells the staleness watchdog about the jobs as configured now.
    /// Jobs in `fresh` (added, or with a changed schedule) are watched from
    /// `now`; `successes` seeds the last success of each job at start.
    pub(super) fn sync_health(
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
                // A paused job is quiet on purpose: it is not stale.
                let timing = sj
                    .timing
                    .as_ref()
                    .filter(|_| !self.paused.contains_key(name));
                let threshold = timing.and_then(|t| {
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

    /// Tells alerting how a run ended.
    pub(super) fn report(&self, done: &RunDone) {
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

    /// A standby was seeded again: for a while it did not follow the
    /// source, which on-call must hear about even though the run passed.
    pub(super) fn report_reseed(&self, job: &str, why: &str, position: &crate::standby::Position) {
        let Some(sj) = self.jobs.get(job) else {
            return;
        };
        self.alerts.event(Event::Reseeded(alert::Reseed {
            job: alert::job_ref(&self.config, &sj.job),
            reason: why.to_string(),
            full_id: position.seeded_from.clone(),
            position: position.at.to_datetime(),
        }));
    }

    /// Deletes what retention no longer keeps, for one job (after its
    /// backup) or all (on the daemon's own schedule), off the scheduler's
    /// thread.
    pub(super) fn apply_retention(&self, job: Option<&str>) {
        let cfg = self.config.clone();
        let jobs: Vec<String> = match job {
            Some(j) => vec![j.to_string()],
            None => cfg.jobs.keys().cloned().collect(),
        };
        let alerts = self.alerts.clone();
        tokio::task::spawn_blocking(move || retain_and_report(&cfg, &alerts, jobs, &[]));
    }

    /// After a run of `job`: brings its copy locations up to date (a
    /// failed copy is retried after every run until it succeeds), then,
    /// after a successful run, applies retention. In that order, so
    /// retention never judges a copy while it is being uploaded.
    pub(super) fn after_run(&self, job: &str, success: bool) {
        let cfg = self.config.clone();
        let alerts = self.alerts.clone();
        let job = job.to_string();
        let next_fire = self
            .jobs
            .get(&job)
            .and_then(|sj| sj.timing.as_ref())
            .and_then(|t| schedule::next_fire(t, Utc::now()));
        tokio::spawn(async move {
            let mut copy_failed = Vec::new();
            if let Some(j) = cfg.jobs.get(&job).filter(|j| !j.copies.is_empty()) {
                let started = Utc::now();
                let reports = crate::backup::copies::sync_copies(&cfg, j, started).await;
                report_copies(&cfg, &alerts, j, &reports, started, next_fire);
                copy_failed = reports
                    .into_iter()
                    .filter(|r| r.error.is_some())
                    .map(|r| r.location)
                    .collect();
            }
            // Drills and standbys keep no backups of their own.
            let makes_backups = cfg.jobs.get(&job).is_some_and(|j| j.kind.makes_backups());
            if success && makes_backups {
                let _ = tokio::task::spawn_blocking(move || {
                    retain_and_report(&cfg, &alerts, vec![job], &copy_failed)
                })
                .await;
            }
        });
    }

    /// After an oplog gap, the chain cannot continue: start a full backup
    /// of the same source into the same storage now, so the next
    /// incremental has a base again instead of failing until the next
    /// scheduled full.
    pub(super) fn restart_chain(&mut self, incremental: &str, error: String) {
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
}

/// Applies retention for one job; the problems found, as sentences, and
/// whether a location was left out because `copy_failed` names it.
fn retain(cfg: &Config, job: &str, copy_failed: &[String]) -> (Vec<String>, bool) {
    let plans = match crate::retention::prune::plan(cfg, Some(job), Utc::now()) {
        Ok(plans) => plans,
        Err(e) => {
            let chain = crate::error_chain(&e);
            tracing::error!(job = %job, "Retention could not list the backups of job \"{job}\": {chain}.");
            return (vec![format!("cannot list the backups: {chain}")], false);
        }
    };
    let mut problems = Vec::new();
    let mut left_out = false;
    for plan in plans {
        // The copy to this location failed moments ago and was alerted
        // with what to do; its being unreachable again here is the same
        // outage, not a second problem to mail about.
        if plan.unreachable.is_some() && copy_failed.contains(&plan.name) {
            tracing::warn!(job = %job, "Retention skipped storage \"{}\" ({}) because it cannot be reached, as the copy to it just reported; it is pruned once it can be listed again.", plan.name, plan.describe);
            left_out = true;
            continue;
        }
        let (removed, errors) = plan.execute();
        if !removed.is_empty() {
            tracing::info!(job = %job, "Retention deleted {} backups of job \"{job}\".", removed.len());
        }
        for e in errors {
            tracing::error!(job = %job, "Retention could not delete a backup: {e}. Check the storage's permissions.");
            problems.push(format!("cannot delete a backup: {e}"));
        }
    }
    (problems, left_out)
}

/// Applies retention for `jobs`, alerting on problems and recoveries;
/// locations in `copy_failed` that cannot be reached are left to the copy
/// alert (see [`retain`]).
fn retain_and_report(
    cfg: &Config,
    alerts: &alert::Alerts,
    jobs: Vec<String>,
    copy_failed: &[String],
) {
    for job in jobs {
        let Some(j) = cfg.jobs.get(&job) else {
            continue;
        };
        let started = Utc::now();
        let (problems, left_out) = retain(cfg, &job, copy_failed);
        let job_ref = alert::job_ref(cfg, j);
        if problems.is_empty() {
            // With a location left out, retention did not run everywhere:
            // a retention failure mailed earlier has not recovered yet.
            if !left_out {
                alerts.succeeded(job_ref, Operation::Retention, None);
            }
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
}

/// Logs and alerts the outcome of bringing a job's copies up to date.
fn report_copies(
    cfg: &Config,
    alerts: &alert::Alerts,
    job: &config::Job,
    reports: &[crate::backup::copies::CopyReport],
    started: DateTime<Utc>,
    next_attempt: Option<DateTime<Utc>>,
) {
    let failed: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            let error = r.error.as_ref()?;
            tracing::error!(job = %job.name, "The copy of job \"{}\"'s backups to storage \"{}\" ({}) failed: {error}. {} backups are not there yet; the copy is retried after the next run of the job.", job.name, r.location, r.url, r.missing);
            Some(format!(
                "storage \"{}\" ({}): {error} ({} backups not copied yet)",
                r.location, r.url, r.missing
            ))
        })
        .collect();
    let job_ref = alert::job_ref(cfg, job);
    if failed.is_empty() {
        alerts.succeeded(job_ref, Operation::Copy, None);
        return;
    }
    alerts.event(Event::Failed(alert::Failure {
        job: job_ref,
        operation: Operation::Copy,
        backup_id: None,
        started,
        duration: (Utc::now() - started).to_std().unwrap_or_default(),
        error: failed.join("; "),
        advice: Some(
            "The backups are complete in the job's primary storage; only the copies are \
             missing. Check that the location is reachable from this host and accepts writes \
             (endpoint, credentials, bucket or container, permissions, space); the copy is \
             retried after the next run of the job, and `mongo-backupd list --location NAME` \
             shows what is there."
                .into(),
        ),
        log_lines: Vec::new(),
        next_attempt,
    }));
}
