//! What the daemon reports: each event carries everything the mail about
//! it must say, because on-call reads only the mail.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// What failed: a backup or the retention run that follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    Backup,
    Retention,
    /// Copying backups to the job's `copies` locations.
    Copy,
}

/// The job an event is about, as mails name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    pub job: String,
    /// `full`, `incremental` or `manual`.
    pub kind: String,
    pub source: String,
    /// The source's hosts (never its credentials).
    pub hosts: String,
    pub storage: String,
}

impl JobRef {
    /// The first host's name without its port: what subjects show.
    pub fn first_host(&self) -> &str {
        let first = self.hosts.split(',').next().unwrap_or("");
        match first.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => first,
        }
    }
}

/// A run that ended in failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub job: JobRef,
    pub operation: Operation,
    /// The id the backup would have had (nothing is kept under it).
    pub backup_id: Option<String>,
    pub started: DateTime<Utc>,
    pub duration: Duration,
    /// The error with all its causes.
    pub error: String,
    /// What to do, when the cause is a common one.
    pub advice: Option<String>,
    /// The last lines this run logged.
    pub log_lines: Vec<String>,
    /// When the job runs next on its own; `None` for jobs without schedule.
    pub next_attempt: Option<DateTime<Utc>>,
}

/// An incremental found an oplog gap; its chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapRestart {
    pub job: JobRef,
    pub error: String,
    /// The full backup job started to begin a new chain; `None` when none
    /// could be started (`reason` says why).
    pub full_job: Option<String>,
    pub reason: Option<String>,
}

/// A standby had to be seeded again from a full backup: for a while it
/// was not following the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reseed {
    pub job: JobRef,
    /// Why its chain stopped.
    pub reason: String,
    /// The full it was seeded from.
    pub full_id: String,
    /// The instant of the source it reflects now.
    pub position: DateTime<Utc>,
}

/// A stale job: no success for longer than its schedule allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub job: JobRef,
    pub last_success: Option<DateTime<Utc>>,
    /// When the daemon started watching (its start, or the job's addition).
    pub watched_since: DateTime<Utc>,
    /// How long without success makes the job stale.
    pub threshold: Duration,
    /// Runs skipped because the previous one was still going.
    pub skipped: u32,
    /// A run that has been going since then, if any.
    pub running_since: Option<DateTime<Utc>>,
    pub next_fire: Option<DateTime<Utc>>,
}

/// The first success after failures (or after the job was stale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub job: JobRef,
    pub operation: Operation,
    pub broken_since: DateTime<Utc>,
    pub recovered_at: DateTime<Utc>,
    /// Failed runs while broken.
    pub failures: u32,
    pub was_stale: bool,
    pub backup_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Failed(Failure),
    Gap(GapRestart),
    Reseeded(Reseed),
    ReloadRejected {
        path: PathBuf,
        errors: Vec<String>,
    },
    Stale(Stale),
    /// The scheduler loop has not run since `last_tick` (it wakes at least
    /// every 30 s), so no job is being started.
    SchedulerStuck {
        last_tick: DateTime<Utc>,
    },
    SchedulerResumed {
        stuck_since: DateTime<Utc>,
    },
    Recovered(Recovery),
    /// `mongo-backupd test-alert`.
    Test,
}

/// Identifies a condition, so the same trouble mails once and is then
/// only reminded of, and so a success can clear it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Failed(String, Operation),
    Stale(String),
    /// Reloads rejected for the same list of errors are one condition.
    Reload(String),
    Scheduler,
    /// Events that do not persist (a gap, a recovery, a test): the key only
    /// groups identical ones within the reminder interval.
    Once(String),
}

impl Event {
    pub fn key(&self) -> Key {
        match self {
            Event::Failed(f) => Key::Failed(f.job.job.clone(), f.operation),
            Event::Stale(s) => Key::Stale(s.job.job.clone()),
            Event::ReloadRejected { errors, .. } => Key::Reload(errors.join("\n")),
            Event::SchedulerStuck { .. } => Key::Scheduler,
            Event::Gap(g) => Key::Once(format!("gap {}", g.job.job)),
            Event::Reseeded(r) => Key::Once(format!("reseed {}", r.job.job)),
            Event::SchedulerResumed { .. } => Key::Once("scheduler resumed".into()),
            Event::Recovered(r) => Key::Once(format!("recovered {}", r.job.job)),
            Event::Test => Key::Once("test".into()),
        }
    }

    /// Whether the event describes a state that lasts until something
    /// clears it (and is reminded of meanwhile).
    pub fn persists(&self) -> bool {
        !matches!(self.key(), Key::Once(_))
    }

    /// The job concerned, for per-job recipients.
    pub fn job(&self) -> Option<&str> {
        match self {
            Event::Failed(f) => Some(&f.job.job),
            Event::Gap(g) => Some(&g.job.job),
            Event::Reseeded(r) => Some(&r.job.job),
            Event::Stale(s) => Some(&s.job.job),
            Event::Recovered(r) => Some(&r.job.job),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_show_the_first_host_without_port() {
        let mut j = JobRef {
            job: "j".into(),
            kind: "full".into(),
            source: "s".into(),
            hosts: "db1.example.net:27017,db2:27017".into(),
            storage: "local".into(),
        };
        assert_eq!(j.first_host(), "db1.example.net");
        j.hosts = "[::1]:27017".into();
        assert_eq!(j.first_host(), "[::1]");
        j.hosts = "cluster.example.net".into();
        assert_eq!(j.first_host(), "cluster.example.net");
    }
}
