//! The demo's directory, its configuration file and its logging.
//!
//! The configuration is an ordinary `config.toml`, read by the same parser
//! as `/etc/mongo-backupd/config.toml`, with schedules fast enough to show
//! a day's worth of activity in two minutes. The file stays in the
//! directory, so `mongo-backupd list`, `history` and `prune --dry-run`
//! work on it after the demo (and `status` while it runs).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use super::DemoError;
use crate::config::{self, Config};

pub const FULL_JOB: &str = "shop-full";
pub const INCREMENTAL_JOB: &str = "shop-incremental";
pub const FAILING_JOB: &str = "unreachable";
pub const SOURCE: &str = "shop";
pub const CONFIG_FILE: &str = "config.toml";
pub const MAIL_FILE: &str = "mail.txt";
pub const LOG_FILE: &str = "mongo-backupd.log";
/// Seconds from the daemon's start to the first incremental, and between
/// incrementals: the first full has that long to finish.
pub const INCREMENTAL_FIRST: u32 = 6;
pub const INCREMENTAL_EVERY: u32 = 10;
/// Seconds from the daemon's start to the failing job's first run.
const FAILING_FIRST: u32 = 8;
/// Retention of the shop's backups, applied by the demo in memory: the
/// configuration accepts whole hours at least (a safety rule for real
/// deployments), which would delete nothing within a demo. A whole minute,
/// because retention's log lines round ages to minutes.
pub const RETENTION: Duration = Duration::from_secs(60);

/// `--dir`, created if missing and refused unless empty (backups of an
/// earlier demo's server would not belong to this one's chain); without
/// it, a new private directory under the system's temporary directory.
pub fn create_dir(requested: Option<&Path>) -> Result<PathBuf, DemoError> {
    use std::os::unix::fs::DirBuilderExt;
    let cannot = |path: &Path, e: std::io::Error| DemoError::Dir {
        path: path.to_path_buf(),
        why: e.to_string(),
    };
    if let Some(path) = requested {
        std::fs::create_dir_all(path).map_err(|e| cannot(path, e))?;
        let mut entries = std::fs::read_dir(path).map_err(|e| cannot(path, e))?;
        if entries.next().is_some() {
            return Err(DemoError::Dir {
                path: path.to_path_buf(),
                why: "it is not empty; give a new or empty directory".into(),
            });
        }
        return std::fs::canonicalize(path).map_err(|e| cannot(path, e));
    }
    let base = std::env::temp_dir();
    let seed = u64::from(std::process::id()) << 32 ^ Utc::now().timestamp_subsec_nanos() as u64;
    let mut rng = super::dataset::Rng::new(seed);
    for _ in 0..16 {
        let path = base.join(format!(
            "mongo-backupd-demo-{:06x}",
            rng.next_u64() & 0xff_ffff
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(cannot(&path, e)),
        }
    }
    Err(DemoError::Dir {
        path: base,
        why: "no unused name found for a new directory".into(),
    })
}

/// A schedule of `every`-second steps starting `first` seconds after
/// `start`, as the seconds field of a 6-field cron expression.
fn seconds_field(start: DateTime<Utc>, first: u32, every: u32) -> String {
    let mut secs: Vec<u32> = (0..60 / every)
        .map(|k| (start.second() + first + k * every) % 60)
        .collect();
    secs.sort_unstable();
    secs.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The configuration for a daemon started at `start`, encrypting the
/// shop's backups to `recipients` (whose secret keys are in `key_file`).
pub fn config_text(
    dir: &Path,
    source_uri: &str,
    smtp_port: u16,
    start: DateTime<Utc>,
    recipients: &[String],
    key_file: &Path,
) -> String {
    let d = dir.display();
    let key = key_file.display();
    let encrypt_to = recipients
        .iter()
        .map(|r| format!("\"{r}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let incremental = seconds_field(start, INCREMENTAL_FIRST, INCREMENTAL_EVERY);
    let failing = seconds_field(start, FAILING_FIRST, 30);
    format!(
        r#"# Written by `mongo-backupd demo`: the daemon backing up the demo's
# embedded test server. Schedules are 6-field cron (seconds first) so that
# a few minutes show what a real deployment does over days. See
# etc/mongo-backupd.toml in the sources for every setting.

[daemon]
state_dir = "{d}/state"
# `mongo-backupd status --config {d}/{CONFIG_FILE}` reaches the demo's
# daemon here while it runs.
control_socket = "{d}/control.sock"
max_concurrent_jobs = 4
shutdown_grace = "10s"

[alerts]
reminder_interval = "1h"

# Alert mails go to the demo's own SMTP server on this machine, which
# appends them to {d}/{MAIL_FILE}.
[alerts.email]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "mongo-backupd demo <backupd@demo.invalid>"
to = ["On-call <oncall@demo.invalid>"]
subject_prefix = "[mongo-backupd demo]"
timeout = "5s"
retry_max_interval = "5s"

# The embedded test server: a single-node replica set holding the `shop`
# database.
[sources.{SOURCE}]
uri = "{source_uri}"
connect_timeout = "5s"

# Nothing listens on port 1: every backup of this source fails, which is
# what the alert mails are for.
[sources.unreachable]
uri = "mongodb://127.0.0.1:1/?directConnection=true"
connect_timeout = "1s"

[storage.demo]
type = "local"
path = "{d}/backups"

# A full backup at the start of every minute (the demo also asks for one
# as soon as the daemon runs).
[jobs.{FULL_JOB}]
source = "{SOURCE}"
storage = "demo"
kind = "full"
schedule = "0 * * * * *"
include = ["shop"]
# Every data file is compressed, then encrypted with age to this public
# key. The daemon holds no secret key: restores and `verify --decrypt`
# take the identity file
#   {key}
# (a real deployment keeps it off the database server).
encrypt_to = [{encrypt_to}]
# Retention takes whole hours at least; the demo shortens it to
# {retention} s in memory so you can watch it delete old backups (it never
# deletes what a kept backup needs for a restore, nor the last full).
retention = "1h"
min_keep = 1

# The oplog every 10 seconds: together with the fulls, a restore can go to
# any second since the first full.
[jobs.{INCREMENTAL_JOB}]
source = "{SOURCE}"
storage = "demo"
kind = "incremental"
schedule = "{incremental} * * * * *"
include = ["shop"]
encrypt_to = [{encrypt_to}]
# Shortened to {retention} s in memory by the demo.
retention = "1h"

# Every 30 seconds, and it always fails.
[jobs.{FAILING_JOB}]
source = "unreachable"
storage = "demo"
kind = "full"
schedule = "{failing} * * * * *"
retention = "1h"
"#,
        retention = RETENTION.as_secs(),
    )
}

/// Writes the configuration into `dir` and loads it with the daemon's own
/// parser; then applies the demo's short retention.
pub fn write_config(dir: &Path, text: &str) -> Result<Config, DemoError> {
    let path = dir.join(CONFIG_FILE);
    std::fs::write(&path, text).map_err(|e| DemoError::Dir {
        path: path.clone(),
        why: e.to_string(),
    })?;
    let mut cfg = config::load(&path).map_err(|e| DemoError::Config(e.to_string()))?;
    for name in [FULL_JOB, INCREMENTAL_JOB] {
        if let Some(job) = cfg.jobs.get_mut(name) {
            job.retention.max_age = RETENTION;
        }
    }
    Ok(cfg)
}

/// Logs on stderr as the daemon writes them, and in `DIR/mongo-backupd.log`.
/// `MONGO_BACKUPD_LOG` overrides the level. The test server's own
/// connection chatter is left out: it is not what the demo is about.
pub fn init_logging(dir: &Path) -> Result<WorkerGuard, DemoError> {
    let filter = || {
        std::env::var("MONGO_BACKUPD_LOG")
            .ok()
            .and_then(|v| EnvFilter::try_new(v).ok())
            .unwrap_or_else(|| EnvFilter::new("info,mongo_testserver=error"))
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(filter());
    let appender = tracing_appender::rolling::RollingFileAppender::builder()
        .rotation(tracing_appender::rolling::Rotation::NEVER)
        .filename_prefix(LOG_FILE)
        .build(dir)
        .map_err(|e| DemoError::Dir {
            path: dir.join(LOG_FILE),
            why: e.to_string(),
        })?;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(appender);
    let file = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(false)
        .with_filter(filter());
    let run_lines = crate::alert::runlog::layer();
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .with(run_lines)
        .try_init();
    Ok(guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_configuration_is_valid_and_fast() {
        let dir = tempfile::tempdir().unwrap();
        let start = DateTime::parse_from_rfc3339("2026-11-21T12:00:57Z")
            .unwrap()
            .with_timezone(&Utc);
        let (_, public) = crate::storage::crypt::generate();
        let text = config_text(
            dir.path(),
            "mongodb://127.0.0.1:27017/?replicaSet=rs0",
            2525,
            start,
            std::slice::from_ref(&public),
            &dir.path().join("backup-key.txt"),
        );
        assert!(
            text.contains("schedule = \"3,13,23,33,43,53 * * * * *\""),
            "{text}"
        );
        assert!(text.contains("schedule = \"5,35 * * * * *\""), "{text}");
        let cfg = write_config(dir.path(), &text).unwrap();
        assert_eq!(cfg.jobs.len(), 3);
        assert_eq!(cfg.jobs[FULL_JOB].retention.max_age, RETENTION);
        assert_eq!(cfg.jobs[INCREMENTAL_JOB].retention.max_age, RETENTION);
        for job in [FULL_JOB, INCREMENTAL_JOB] {
            let encryption = cfg.jobs[job].encryption.as_ref().unwrap();
            assert_eq!(encryption.recipients, vec![public.clone()]);
        }
        let email = cfg.alerts.email.unwrap();
        assert_eq!((email.host.as_str(), email.port), ("127.0.0.1", 2525));
    }

    #[test]
    fn a_given_directory_must_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("new/demo");
        assert_eq!(
            create_dir(Some(&fresh)).unwrap(),
            fresh.canonicalize().unwrap()
        );
        std::fs::write(fresh.join("x"), "").unwrap();
        assert!(matches!(
            create_dir(Some(&fresh)),
            Err(DemoError::Dir { .. })
        ));
    }
}
