//! The typed result: defaults, every setting read, and use-time URI
//! resolution.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;

use super::{full_job, job, parse_ok, BASE, FILE};
use crate::config::model::expand_vars;
use crate::config::{
    CompressionSetting, DaemonSettings, JobKind, LogLevel, LogRotation, RetentionPolicy, UriSpec,
};

const DAY: u64 = 86_400;

#[test]
fn daemon_defaults_and_settings() {
    let defaults = DaemonSettings::default();
    assert_eq!(defaults.state_dir, Path::new("/var/lib/mongo-backupd"));
    assert_eq!(defaults.timezone, Tz::UTC);
    assert_eq!(defaults.max_concurrent_jobs, 2);
    assert_eq!(defaults.shutdown_grace, Duration::from_secs(300));
    assert_eq!(defaults.log_level, LogLevel::Info);
    assert_eq!(defaults.log_file, None);
    assert_eq!(defaults.log_rotation, LogRotation::Daily);

    let config = parse_ok(
        "[daemon]\nstate_dir = \"/srv/state\"\ntimezone = \"Asia/Tokyo\"\nmax_concurrent_jobs = 8\n\
         shutdown_grace = \"1h30m\"\nlog_level = \"debug\"\nlog_file = \"/var/log/b.log\"\n\
         log_rotation = \"never\"\n",
    );
    let d = &config.daemon;
    assert_eq!(d.state_dir, Path::new("/srv/state"));
    assert_eq!(d.timezone, Tz::Asia__Tokyo);
    assert_eq!(d.max_concurrent_jobs, 8);
    assert_eq!(d.shutdown_grace, Duration::from_secs(5400));
    assert_eq!(d.log_level, LogLevel::Debug);
    assert_eq!(d.log_file.as_deref(), Some(Path::new("/var/log/b.log")));
    assert_eq!(d.log_rotation, LogRotation::Never);
    assert_eq!(tracing::Level::from(d.log_level), tracing::Level::DEBUG);
}

#[test]
fn job_defaults_follow_the_canonical_policy() {
    for (kind, days, schedule) in [
        ("full", 30, "schedule = \"0 2 * * *\"\n"),
        ("incremental", 7, "schedule = \"0 * * * *\"\n"),
        ("manual", 90, ""),
    ] {
        let config = parse_ok(&job(&format!(
            "source = \"prod\"\nstorage = \"local\"\nkind = \"{kind}\"\n{schedule}"
        )));
        let job = &config.jobs["prod-full"];
        assert_eq!(job.kind.as_str(), kind);
        assert_eq!(
            job.retention,
            RetentionPolicy::max_age(Duration::from_secs(days * DAY))
        );
        assert_eq!(job.timezone, Tz::UTC);
        assert_eq!(job.compression, CompressionSetting::Zstd { level: 3 });
        assert!(!job.include_users);
        assert_eq!(job.parallel_collections, 4);
        assert_eq!(job.catch_up, None);
        assert!(job.enabled);
        assert_eq!(job.source, "prod");
        assert_eq!(job.storage, "local");
        assert_eq!(job.name, "prod-full");
    }
    assert!(JobKind::Full.needs_schedule() && JobKind::Incremental.needs_schedule());
    assert!(!JobKind::Manual.needs_schedule());
}

#[test]
fn every_job_setting_is_read() {
    let config = parse_ok(&full_job(
        "timezone = \"Europe/Berlin\"\nretention = \"2w\"\nkeep_daily = 7\nkeep_weekly = 4\n\
         keep_monthly = 6\nmin_keep = 3\ncompression = \"gzip\"\ninclude_users = true\n\
         parallel_collections = 16\ncatch_up = \"1h\"\nenabled = false\n",
    ));
    let job = &config.jobs["prod-full"];
    assert_eq!(job.kind, JobKind::Full);
    assert_eq!(job.schedule.as_ref().map(|s| s.as_str()), Some("0 2 * * *"));
    assert_eq!(job.timezone, Tz::Europe__Berlin);
    assert_eq!(job.retention.max_age, Duration::from_secs(14 * DAY));
    assert_eq!(job.retention.keep_daily, Some(7));
    assert_eq!(job.retention.keep_weekly, Some(4));
    assert_eq!(job.retention.keep_monthly, Some(6));
    assert_eq!(job.retention.min_keep, 3);
    assert_eq!(job.compression, CompressionSetting::Gzip { level: 6 });
    assert_eq!(job.compression.name(), "gzip");
    assert!(job.include_users);
    assert_eq!(job.parallel_collections, 16);
    assert_eq!(job.catch_up, Some(Duration::from_secs(3600)));
    assert!(!job.enabled);

    let none = parse_ok(&full_job("compression = \"none\"\n"));
    assert_eq!(none.jobs["prod-full"].compression, CompressionSetting::None);
    let zstd = parse_ok(&full_job("compression_level = 19\n"));
    assert_eq!(
        zstd.jobs["prod-full"].compression,
        CompressionSetting::Zstd { level: 19 }
    );
}

#[test]
fn sources_and_storage() {
    let config = parse_ok(&format!(
        "{BASE}[sources.file]\nuri_file = \"${{CREDENTIALS_DIRECTORY}}/prod-uri\"\nconnect_timeout = \"3s\"\n\n\
         [sources.env]\nuri_env = \"PROD_MONGODB_URI\"\n"
    ));
    let prod = &config.sources["prod"];
    assert_eq!(prod.name, "prod");
    assert_eq!(
        prod.uri,
        UriSpec::Inline("mongodb://localhost:27017/".to_string())
    );
    assert_eq!(prod.connect_timeout, Duration::from_secs(10));
    let file = &config.sources["file"];
    assert_eq!(
        file.uri,
        UriSpec::File(PathBuf::from("${CREDENTIALS_DIRECTORY}/prod-uri"))
    );
    assert_eq!(file.connect_timeout, Duration::from_secs(3));
    assert_eq!(
        config.sources["env"].uri,
        UriSpec::Env("PROD_MONGODB_URI".to_string())
    );
    let local = &config.storage["local"];
    assert_eq!(local.name, "local");
    assert_eq!(
        local.local_path(),
        Some(Path::new("/var/backups/mongo-backupd"))
    );
}

#[test]
fn moving_lines_does_not_change_equality() {
    let a = parse_ok(&full_job(""));
    let b = parse_ok(&format!("\n\n# moved\n{}", full_job("")));
    assert_eq!(a.sources, b.sources);
    assert_eq!(a.jobs, b.jobs);
    assert_ne!(a.sources["prod"].origin, b.sources["prod"].origin);
}

#[test]
fn inline_uri_is_redacted_in_debug_output() {
    let spec = UriSpec::Inline("mongodb://admin:hunter2@db1/".to_string());
    assert_eq!(format!("{spec:?}"), "Inline(<redacted>)");
    let config = parse_ok("[sources.a]\nuri = \"mongodb://admin:hunter2@db1/\"\n");
    assert!(!format!("{config:?}").contains("hunter2"));
}

fn no_env(_: &str) -> Option<OsString> {
    None
}

#[test]
fn resolve_inline_and_env() {
    let config =
        parse_ok("[sources.a]\nuri = \"mongodb://db1/\"\n\n[sources.b]\nuri_env = \"B_URI\"\n");
    assert_eq!(config.sources["a"].resolve_uri().unwrap(), "mongodb://db1/");
    let b = &config.sources["b"];
    let env =
        |var: &str| (var == "B_URI").then(|| OsString::from("mongodb+srv://cluster.example/"));
    assert_eq!(
        b.resolve_uri_with(env).unwrap(),
        "mongodb+srv://cluster.example/"
    );
    assert_eq!(
        b.resolve_uri_with(no_env).unwrap_err().to_string(),
        format!(
            "{FILE}:5:11: sources.b.uri_env: source \"b\": environment variable B_URI is not set \
             (hint: set it in the daemon's environment (Environment= or EnvironmentFile= in the systemd unit))"
        )
    );
    let wrong = |_: &str| Some(OsString::from("postgres://secret@db/"));
    let err = b.resolve_uri_with(wrong).unwrap_err().to_string();
    assert!(
        err.contains("does not start with mongodb:// or mongodb+srv://"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
}

#[test]
fn resolve_from_file_expands_variables_and_trims() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prod-uri"),
        "  mongodb://db1:27017/?replicaSet=rs0\n\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("empty"), "\n").unwrap();
    let config = parse_ok(
        "[sources.cred]\nuri_file = \"${CREDENTIALS_DIRECTORY}/prod-uri\"\n\n\
         [sources.empty]\nuri_file = \"${CREDENTIALS_DIRECTORY}/empty\"\n\n\
         [sources.missing]\nuri_file = \"${CREDENTIALS_DIRECTORY}/nope\"\n",
    );
    let creds = dir.path().as_os_str().to_owned();
    let env = move |var: &str| (var == "CREDENTIALS_DIRECTORY").then(|| creds.clone());
    assert_eq!(
        config.sources["cred"].resolve_uri_with(&env).unwrap(),
        "mongodb://db1:27017/?replicaSet=rs0"
    );
    assert_eq!(
        config.sources["empty"].resolve_uri_with(&env).unwrap_err().to_string(),
        format!("{FILE}:5:12: sources.empty.uri_file: source \"empty\": the MongoDB URI is empty (hint: it must be a mongodb:// or mongodb+srv:// URI)")
    );
    let missing = config.sources["missing"]
        .resolve_uri_with(&env)
        .unwrap_err();
    assert_eq!((missing.line, missing.column), (8, 12));
    assert_eq!(missing.key_path, "sources.missing.uri_file");
    assert!(missing.message.starts_with(&format!(
        "source \"missing\": cannot read the URI from {}/nope: ",
        dir.path().display()
    )));
    assert_eq!(
        missing.hint.as_deref(),
        Some("create the file, make it readable by the daemon, or fix uri_file")
    );
    assert_eq!(
        config.sources["cred"]
            .resolve_uri_with(no_env)
            .unwrap_err()
            .message,
        "source \"cred\": uri_file uses ${CREDENTIALS_DIRECTORY}, which is not set"
    );
}

#[test]
fn variable_expansion() {
    let env = |var: &str| match var {
        "A" => Some(OsString::from("/run/a")),
        "EMPTY" => Some(OsString::new()),
        _ => None,
    };
    assert_eq!(expand_vars("${A}/x", env).unwrap(), "/run/a/x");
    assert_eq!(expand_vars("/p/${EMPTY}q", env).unwrap(), "/p/q");
    assert_eq!(expand_vars("/no/vars", env).unwrap(), "/no/vars");
    assert_eq!(expand_vars("/a$b/${A}", env).unwrap(), "/a$b//run/a");
    assert_eq!(expand_vars("${B}/x", env).unwrap_err(), "B");
}
