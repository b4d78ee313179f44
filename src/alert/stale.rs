//! The staleness watchdog's view of the jobs: what the scheduler last
//! reported about each, and the pure checks over it. The alert task runs
//! the checks on its own timer, so a job is reported stale even when the
//! reason is the scheduler itself being stuck, a run that hangs, or fires
//! that keep being skipped.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::event::{JobRef, Stale};

/// The scheduler wakes at least every 30 s; this long without a tick means
/// it is stuck (allowing for a busy machine).
pub const STUCK_AFTER: Duration = Duration::from_secs(5 * 60);

/// What the watchdog knows about one scheduled job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobHealth {
    pub job: JobRef,
    /// No success for this long makes the job stale; `None`: never (the
    /// job has no schedule, or is disabled).
    pub threshold: Option<Duration>,
    /// Since when the daemon has been watching (its start, or the job's
    /// addition or schedule change): staleness counts from here at the
    /// earliest, so a restart after downtime gives catch-up runs a chance.
    pub watched_since: DateTime<Utc>,
    pub last_success: Option<DateTime<Utc>>,
    pub running_since: Option<DateTime<Utc>>,
    /// Fires skipped since the last success.
    pub skipped: u32,
    pub next_fire: Option<DateTime<Utc>>,
}

/// Shared between the scheduler (which writes) and the alert task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub jobs: BTreeMap<String, JobHealth>,
    /// The scheduler's last wake.
    pub last_tick: DateTime<Utc>,
}

impl Health {
    pub fn new(now: DateTime<Utc>) -> Health {
        Health {
            jobs: BTreeMap::new(),
            last_tick: now,
        }
    }
}

/// Derived thresholds allow at least this much beyond the schedule's gap:
/// a job that runs every few seconds is not stale because one run waited
/// for a slot (`max_concurrent_jobs`) or took a little longer.
pub const MIN_SLACK: Duration = Duration::from_secs(60);

/// The threshold for a job: its own `stale_after`, or the longest wait of
/// its schedule times the factor (and at least [`MIN_SLACK`] beyond it).
pub fn threshold(
    stale_after: Option<Duration>,
    longest_gap: Option<Duration>,
    factor: f64,
) -> Option<Duration> {
    stale_after.or_else(|| longest_gap.map(|g| g.mul_f64(factor.max(1.0)).max(g + MIN_SLACK)))
}

/// The jobs that are stale at `now`.
pub fn stale_jobs(health: &Health, now: DateTime<Utc>) -> Vec<Stale> {
    health
        .jobs
        .values()
        .filter_map(|h| {
            let threshold = h.threshold?;
            let reference = h
                .last_success
                .map_or(h.watched_since, |t| t.max(h.watched_since));
            let quiet = (now - reference).to_std().unwrap_or_default();
            (quiet > threshold).then(|| Stale {
                job: h.job.clone(),
                last_success: h.last_success,
                watched_since: h.watched_since,
                threshold,
                skipped: h.skipped,
                running_since: h.running_since,
                next_fire: h.next_fire,
            })
        })
        .collect()
}

/// `Some(last tick)` when the scheduler has not run for [`STUCK_AFTER`].
pub fn scheduler_stuck(health: &Health, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let quiet = (now - health.last_tick).to_std().unwrap_or_default();
    (quiet > STUCK_AFTER).then_some(health.last_tick)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, h, m, 0).unwrap()
    }

    fn health(last_success: Option<DateTime<Utc>>, watched: DateTime<Utc>) -> Health {
        let job = JobRef {
            job: "prod-full".into(),
            kind: "full".into(),
            source: "prod".into(),
            hosts: "db1:27017".into(),
            storage: "local".into(),
        };
        let mut h = Health::new(watched);
        h.jobs.insert(
            "prod-full".into(),
            JobHealth {
                job,
                threshold: Some(Duration::from_secs(26 * 3600)),
                watched_since: watched,
                last_success,
                running_since: None,
                skipped: 0,
                next_fire: None,
            },
        );
        h
    }

    #[test]
    fn a_daily_job_is_stale_after_26_hours_without_success() {
        let h = health(Some(at(2, 30)), at(0, 0));
        let next_day = at(2, 30) + chrono::Duration::hours(26);
        assert!(stale_jobs(&h, next_day).is_empty());
        let late = next_day + chrono::Duration::seconds(1);
        let stale = stale_jobs(&h, late);
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].last_success, Some(at(2, 30)));
    }

    #[test]
    fn staleness_counts_from_when_the_daemon_started_watching() {
        // Down for three days: the catch-up run gets a full threshold.
        let h = health(Some(at(2, 0) - chrono::Duration::days(3)), at(9, 0));
        assert!(stale_jobs(&h, at(23, 0)).is_empty());
        let h = health(None, at(9, 0));
        assert!(stale_jobs(&h, at(23, 0)).is_empty());
        assert_eq!(
            stale_jobs(&h, at(9, 0) + chrono::Duration::hours(27)).len(),
            1
        );
    }

    #[test]
    fn unscheduled_jobs_are_never_stale_and_thresholds_scale() {
        let mut h = health(None, at(0, 0));
        h.jobs.values_mut().for_each(|j| j.threshold = None);
        assert!(stale_jobs(&h, at(0, 0) + chrono::Duration::days(400)).is_empty());
        let hour = Duration::from_secs(3600);
        assert_eq!(threshold(None, Some(hour), 1.5), Some(hour.mul_f64(1.5)));
        let ten_s = Duration::from_secs(10);
        assert_eq!(
            threshold(None, Some(ten_s), 1.5),
            Some(Duration::from_secs(70))
        );
        assert_eq!(threshold(Some(hour), Some(hour * 24), 1.5), Some(hour));
        assert_eq!(threshold(None, None, 1.5), None);
    }

    #[test]
    fn a_scheduler_without_ticks_for_five_minutes_is_stuck() {
        let h = health(None, at(3, 0));
        assert_eq!(scheduler_stuck(&h, at(3, 5)), None);
        assert_eq!(
            scheduler_stuck(&h, at(3, 5) + chrono::Duration::seconds(1)),
            Some(at(3, 0))
        );
    }
}
