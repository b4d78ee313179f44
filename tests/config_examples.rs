//! Every example configuration shipped in `etc/` must be valid: they are
//! what sysadmins copy, so a broken example is a broken install.
//!
//! Also pins the canonical policy of `etc/mongo-backupd.toml` (a full backup
//! daily at 02:00 UTC kept 30 days, hourly incrementals kept 7 days, manual
//! backups kept 90 days) so the example and the documentation cannot drift.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use mongo_backupd::config::{self, CompressionSetting, JobKind, UriSpec};

const DAY: u64 = 86_400;

fn etc() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("etc")
}

/// Every `*.toml` file under `etc/` (other files there, such as systemd
/// environment files, are not configurations).
fn example_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            example_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

#[test]
fn every_example_is_valid() {
    let mut files = Vec::new();
    example_files(&etc(), &mut files);
    assert!(
        !files.is_empty(),
        "no example configurations in {:?}",
        etc()
    );
    for file in files {
        if let Err(errors) = config::load(&file) {
            panic!("{} is not valid:\n{errors}", file.display());
        }
    }
}

#[test]
fn main_example_has_the_canonical_policy() {
    let config = config::load(&etc().join("mongo-backupd.toml")).unwrap();

    let prod = &config.sources["prod"];
    match &prod.uri {
        UriSpec::Inline(uri) => assert!(uri.starts_with("mongodb://localhost")),
        other => panic!("source prod should have an inline localhost uri, not {other:?}"),
    }
    assert_eq!(
        prod.resolve_uri().unwrap(),
        "mongodb://localhost:27017/?replicaSet=rs0"
    );
    assert_eq!(
        config.storage["local"].local_path().unwrap(),
        Path::new("/var/backups/mongo-backupd")
    );

    let kinds: Vec<JobKind> = config.jobs.values().map(|j| j.kind).collect();
    for kind in [JobKind::Full, JobKind::Incremental, JobKind::Manual] {
        assert!(kinds.contains(&kind), "no {kind} job in the example");
    }
    for job in config.jobs.values() {
        assert_eq!(job.source, "prod", "job {}", job.name);
        assert_eq!(job.storage, "local", "job {}", job.name);
        assert!(job.enabled, "job {}", job.name);
        let days = match job.kind {
            JobKind::Full => 30,
            JobKind::Incremental => 7,
            _ => 90,
        };
        assert_eq!(
            job.retention.max_age,
            Duration::from_secs(days * DAY),
            "job {}",
            job.name
        );
        assert_eq!(job.retention.max_age, job.kind.default_retention());
        assert_eq!(job.retention.min_keep, 1);
        assert_eq!(job.compression, CompressionSetting::Zstd { level: 3 });
    }

    // Fires, seen from a fixed instant: full daily at 02:00 UTC,
    // incremental at the top of every hour, manual never on its own.
    let from = Utc.with_ymd_and_hms(2025, 6, 1, 12, 34, 0).unwrap();
    let full = config
        .jobs
        .values()
        .find(|j| j.kind == JobKind::Full)
        .unwrap();
    assert_eq!(
        config::next_fires(full, from, 2),
        vec![
            Utc.with_ymd_and_hms(2025, 6, 2, 2, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2025, 6, 3, 2, 0, 0).unwrap(),
        ]
    );
    let incremental = config
        .jobs
        .values()
        .find(|j| j.kind == JobKind::Incremental)
        .unwrap();
    assert_eq!(
        config::next_fires(incremental, from, 2),
        vec![
            Utc.with_ymd_and_hms(2025, 6, 1, 13, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2025, 6, 1, 14, 0, 0).unwrap(),
        ]
    );
    let manual = config
        .jobs
        .values()
        .find(|j| j.kind == JobKind::Manual)
        .unwrap();
    assert!(manual.schedule.is_none());
    assert!(config::next_fires(manual, from, 3).is_empty());
}

/// Every key the parser knows appears in the example, set or commented
/// out, so the example stays the complete reference.
#[test]
fn main_example_documents_every_key() {
    assert_documents_every_key(&etc().join("mongo-backupd.toml"));
}

/// The packaged copy of the example stays as complete as the example.
#[test]
fn packaged_config_documents_every_key() {
    assert_documents_every_key(&packaged_config());
}

fn assert_documents_every_key(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let keys = [
        "state_dir",
        "timezone",
        "max_concurrent_jobs",
        "shutdown_grace",
        "log_level",
        "log_file",
        "log_rotation",
        "uri",
        "uri_file",
        "uri_env",
        "connect_timeout",
        "type",
        "path",
        "source",
        "storage",
        "kind",
        "schedule",
        "retention",
        "keep_daily",
        "keep_weekly",
        "keep_monthly",
        "min_keep",
        "compression",
        "compression_level",
        "include",
        "exclude",
        "include_users",
        "full_on_gap",
        "parallel_collections",
        "catch_up",
        "enabled",
        "alert_to",
        "stale_after",
        "reminder_interval",
        "max_per_hour",
        "stale_factor",
        "host",
        "port",
        "tls",
        "ca_file",
        "username",
        "password_file",
        "password_env",
        "from",
        "to",
        "subject_prefix",
        "timeout",
        "queue_limit",
        "retry_max_interval",
        "control_socket",
        "control_group",
        "listen",
        "token_file",
        "tls_cert",
        "tls_key",
        "metrics_public",
        "mutations_per_minute",
        "max_body_bytes",
    ];
    for key in keys {
        let set = format!("\n{key} = ");
        let commented = format!("\n# {key} = ");
        assert!(
            text.contains(&set) || text.contains(&commented),
            "{} does not show {key}",
            path.display()
        );
    }
}

/// What the Debian package installs as /etc/mongo-backupd/config.toml.
fn packaged_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/config.toml")
}

/// The packaged configuration passes `check-config` (the unit runs it
/// before starting) and is safe on a machine without MongoDB or a mail
/// server: its source is on localhost, mail alerts and the HTTP API are
/// off, and it writes only where the package and the unit expect.
#[test]
fn packaged_config_passes_check_config_and_is_safe() {
    let path = packaged_config();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mongo-backupd"))
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check-config rejects {}:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );

    let config = config::load(&path).unwrap();
    for (name, source) in &config.sources {
        match &source.uri {
            UriSpec::Inline(uri) => assert!(
                uri.starts_with("mongodb://localhost"),
                "source {name} is not on localhost: {uri}"
            ),
            other => panic!("source {name} should have an inline localhost uri, not {other:?}"),
        }
    }
    assert!(config.alerts.email.is_none(), "alert mails are on");
    assert!(config.http.is_none(), "the HTTP API is on");
    assert!(config.jobs.values().all(|j| j.alert_to.is_empty()));
    // postinst creates these (owned by the service user) and the unit's
    // StateDirectory= and ReadWritePaths= name them.
    assert_eq!(config.daemon.state_dir, Path::new("/var/lib/mongo-backupd"));
    for storage in config.storage.values() {
        assert_eq!(
            storage.local_path().unwrap(),
            Path::new("/var/backups/mongo-backupd")
        );
    }
    assert!(!config.jobs.is_empty());
}

/// A file that does not exist is reported like any other problem, with the
/// configuration exit status available to the caller.
#[test]
fn missing_file_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let errors = config::load(&path).unwrap_err();
    assert_eq!(errors.len(), 1);
    let text = errors.to_string();
    assert!(text.starts_with(&format!(
        "{}: cannot read the configuration file",
        path.display()
    )));
    assert_eq!(config::EXIT_CONFIG, 78);
}

/// The drill and standby examples are commented out (they need servers of
/// their own); uncommented, they must be valid as written.
#[test]
fn the_commented_drill_and_standby_examples_are_valid() {
    let path = etc().join("mongo-backupd.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("# [sources.scratch]").expect("the drill example");
    let (head, tail) = text.split_at(start);
    let uncommented: String = tail
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            // Keys and tables become live; the explanations stay comments.
            Some(rest)
                if rest.starts_with('[') || rest.contains(" = ") && !rest.starts_with('#') =>
            {
                rest.to_string()
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let cfg = config::parse(&format!("{head}{uncommented}\n"), &path)
        .unwrap_or_else(|e| panic!("the uncommented examples are invalid:\n{e}"));
    let drill = &cfg.jobs["prod-drill"];
    assert_eq!(drill.kind, JobKind::Drill);
    let target = drill.restore_target.as_ref().unwrap();
    assert_eq!(
        (target.from.as_str(), target.target.as_str()),
        ("prod-incremental", "scratch")
    );
    assert_eq!(target.prefix, "drill_");
    assert_eq!(cfg.jobs["prod-standby"].kind, JobKind::Standby);
    assert_eq!(
        cfg.jobs["prod-standby"]
            .restore_target
            .as_ref()
            .unwrap()
            .prefix,
        ""
    );
}
