//! Structural errors: TOML syntax, unknown keys, wrong types, missing keys,
//! names, and the whole-file report (every error, in file order).

use std::path::Path;

use super::{at, errors, full_job, job, parse_ok, the_error, BASE, FILE};
use crate::config::{load, parse};

#[test]
fn toml_syntax_error_reports_toml_edits_position_and_message() {
    let text = "[daemon]\nlog_level = \n";
    assert_eq!(
        the_error(text),
        at(
            2,
            13,
            "invalid TOML: string values must be quoted, expected literal string"
        )
    );
    // The same line and column toml_edit itself reports.
    let toml_err = toml_edit::Document::parse(text).unwrap_err().to_string();
    assert!(toml_err.contains("line 2, column 13"), "{toml_err}");
}

#[test]
fn duplicate_keys_are_syntax_errors() {
    let text = format!("{BASE}[storage.local]\npath = \"/x\"\n");
    assert_eq!(the_error(&text), at(8, 10, "invalid TOML: duplicate key"));
}

#[test]
fn unknown_key_suggests_near_miss() {
    assert_eq!(
        the_error(&full_job("shedule = \"0 3 * * *\"\n")),
        at(
            13,
            1,
            "jobs.prod-full.shedule: unknown key \"shedule\" (hint: did you mean \"schedule\"?)"
        )
    );
}

#[test]
fn unknown_key_lists_valid_keys_when_nothing_is_close() {
    assert_eq!(
        the_error(&full_job("frobnicate = 1\n")),
        at(
            13,
            1,
            "jobs.prod-full.frobnicate: unknown key \"frobnicate\" (hint: valid keys here: \
             source, storage, copies, kind, schedule, timezone, retention, keep_daily, \
             keep_weekly, keep_monthly, min_keep, compression, compression_level, encrypt_to, \
             encrypt_to_file, include, exclude, include_users, full_on_gap, \
             parallel_collections, catch_up, enabled, alert_to, stale_after)"
        )
    );
}

#[test]
fn unknown_keys_in_every_table() {
    let text = "[alert]\nemail = \"ops@example.com\"\n\n[daemon]\nlog_levle = \"info\"\n\n\
                [sources.prod]\nuri = \"mongodb://x/\"\ntimeout = \"5s\"\n\n\
                [storage.local]\ntype = \"local\"\npath = \"/b\"\nsize = 3\n";
    assert_eq!(
        errors(text),
        vec![
            at(
                1,
                2,
                "alert: unknown key \"alert\" (hint: did you mean \"alerts\"?)"
            ),
            at(
                5,
                1,
                "daemon.log_levle: unknown key \"log_levle\" (hint: did you mean \"log_level\"?)"
            ),
            at(
                9,
                1,
                "sources.prod.timeout: unknown key \"timeout\" (hint: valid keys here: uri, uri_file, uri_env, connect_timeout)"
            ),
            at(
                14,
                1,
                "storage.local.size: unknown key \"size\" (hint: valid keys here: type, path, retention)"
            ),
        ]
    );
}

#[test]
fn inline_tables_are_checked_like_headers() {
    let text = "sources = { prod = { uri = \"mongodb://x/\", connect_timeot = \"5s\" } }\n\
                storage = { local = { type = \"local\" } }\n";
    assert_eq!(
        errors(text),
        vec![
            at(
                1,
                44,
                "sources.prod.connect_timeot: unknown key \"connect_timeot\" (hint: did you mean \"connect_timeout\"?)"
            ),
            at(
                2,
                21,
                "storage.local.path: missing required key \"path\" (hint: the directory backups go to, e.g. path = \"/var/backups/mongo-backupd\")"
            ),
        ]
    );
}

#[test]
fn wrong_types_name_expected_and_found() {
    let text = job("source = \"prod\"\nstorage = \"local\"\nkind = 1\nschedule = \"0 2 * * *\"\n\
                    min_keep = \"2\"\nenabled = \"yes\"\ninclude = \"app\"\nretention = 2024-01-01\n\
                    catch_up = 90\nexclude = [\"a\", 2]\n");
    assert_eq!(
        errors(&text),
        vec![
            at(11, 8, "jobs.prod-full.kind: expected string, found integer (hint: write it in quotes: kind = \"1\")"),
            at(13, 12, "jobs.prod-full.min_keep: expected integer, found string (hint: remove the quotes: min_keep = 2)"),
            at(14, 11, "jobs.prod-full.enabled: expected boolean, found string (hint: write enabled = true or enabled = false, without quotes)"),
            at(15, 11, "jobs.prod-full.include: expected array of strings, found string (hint: write a list: include = [\"app\"])"),
            at(16, 13, "jobs.prod-full.retention: expected string, found datetime (hint: a whole number and a unit (s, m, h, d or w), e.g. \"90s\", \"5m\", \"1h30m\")"),
            at(17, 12, "jobs.prod-full.catch_up: expected string, found integer (hint: durations are quoted, with a unit: catch_up = \"90s\")"),
            at(18, 17, "jobs.prod-full.exclude: expected string, found integer"),
        ]
    );
}

#[test]
fn tables_where_values_belong_and_values_where_tables_belong() {
    let text =
        "daemon = \"fast\"\n[sources]\nprod = \"mongodb://x/\"\n[[jobs]]\nsource = \"prod\"\n";
    assert_eq!(
        errors(text),
        vec![
            at(1, 10, "daemon: expected a table ([daemon]), found string"),
            at(3, 8, "sources.prod: expected a table ([sources.prod]), found string"),
            at(
                4,
                1,
                "jobs: expected a table of job definitions ([jobs.NAME]), found array of tables (hint: write [jobs.NAME] headers, not [[jobs]])"
            ),
        ]
    );
    let sub_table = full_job("[jobs.prod-full.retention]\ndays = 3\n");
    assert_eq!(
        the_error(&sub_table),
        at(
            13,
            1,
            "jobs.prod-full.retention: expected string, found table"
        )
    );
}

#[test]
fn missing_required_keys_point_at_the_table_header() {
    let text = format!(
        "{BASE}[jobs.prod-full]\n\n[sources.backup]\nconnect_timeout = \"5s\"\n\n[storage.nas]\n"
    );
    assert_eq!(
        errors(&text),
        vec![
            at(8, 1, "jobs.prod-full.source: missing required key \"source\" (hint: defined: \"prod\", \"backup\")"),
            at(8, 1, "jobs.prod-full.storage: missing required key \"storage\" (hint: defined: \"local\", \"nas\")"),
            at(8, 1, "jobs.prod-full.kind: missing required key \"kind\" (hint: kind = \"full\", \"incremental\", \"manual\", \"drill\" or \"standby\")"),
            at(10, 1, "sources.backup.uri: missing required key \"uri\" (hint: set exactly one of uri, uri_file (a file holding the URI) or uri_env (an environment variable holding it))"),
            at(13, 1, "storage.nas.type: missing required key \"type\" (hint: type = \"local\")"),
            at(13, 1, "storage.nas.path: missing required key \"path\" (hint: the directory backups go to, e.g. path = \"/var/backups/mongo-backupd\")"),
        ]
    );
}

#[test]
fn schedule_is_required_for_full_and_incremental_jobs() {
    for kind in ["full", "incremental"] {
        let text = job(&format!(
            "source = \"prod\"\nstorage = \"local\"\nkind = \"{kind}\"\n"
        ));
        assert_eq!(
            the_error(&text),
            at(
                8,
                1,
                &format!(
                    "jobs.prod-full.schedule: missing required key \"schedule\" (hint: {kind} jobs run on a \
                     schedule, e.g. schedule = \"0 2 * * *\" (daily at 02:00); use kind = \"manual\" for \
                     backups run only on request)"
                )
            )
        );
    }
    let manual = job("source = \"prod\"\nstorage = \"local\"\nkind = \"manual\"\n");
    assert!(parse_ok(&manual).jobs["prod-full"].schedule.is_none());
}

#[test]
fn names_must_be_non_empty_and_portable() {
    let body = "source = \"prod\"\nstorage = \"local\"\nkind = \"manual\"\n";
    let text = format!(
        "{BASE}[jobs.\"\"]\n{body}\n[jobs.\"prod full\"]\n{body}\n[jobs.-x]\n{body}\n[jobs.{}]\n{body}",
        "a".repeat(65)
    );
    let hint = "(hint: names are used in directory names and logs, e.g. \"prod-full\")";
    let rule =
        "must start with a letter or digit and contain only letters, digits, \"-\" and \"_\"";
    assert_eq!(
        errors(&text),
        vec![
            at(
                8,
                7,
                &format!("jobs.\"\": job name must not be empty {hint}")
            ),
            at(
                13,
                7,
                &format!("jobs.\"prod full\": job name \"prod full\" {rule} {hint}")
            ),
            at(18, 7, &format!("jobs.-x: job name \"-x\" {rule} {hint}")),
            at(
                23,
                7,
                &format!(
                    "jobs.{a}: job name \"{a}\" is longer than 64 characters {hint}",
                    a = "a".repeat(65)
                )
            ),
        ]
    );
    let empty_source = "[sources.\"\"]\nuri = \"mongodb://x/\"\n";
    assert_eq!(
        the_error(empty_source),
        at(
            1,
            10,
            &format!("sources.\"\": source name must not be empty {hint}")
        )
    );
}

/// One file with many mistakes: all of them, top to bottom, although the
/// checks run table by table and references are checked last.
#[test]
fn every_error_in_file_order() {
    let text = r#"[jobs.nightly]
source = "prd"
storage = "local"
kind = "full"
schedule = "0 25 * * *"
retention = "0d"

[daemon]
timezone = "Europe/Berln"
max_concurrent_jobs = 0

[sources.prod]
uri = "mongodb://localhost/"
uri_env = "PROD_URI"

[storage.local]
type = "local"
path = "backups"
colour = "blue"
"#;
    assert_eq!(
        errors(text),
        vec![
            at(2, 10, "jobs.nightly.source: source \"prd\" is not defined (defined: \"prod\") (hint: did you mean \"prod\"?)"),
            at(5, 12, "jobs.nightly.schedule: invalid cron expression \"0 25 * * *\": hour 25 is out of range 0-23 (hint: 5 fields: minute hour day-of-month month day-of-week)"),
            at(6, 13, "jobs.nightly.retention: retention must be longer than 0 (hint: a retention of 0 would delete every backup as soon as it is made)"),
            at(9, 12, "daemon.timezone: unknown time zone \"Europe/Berln\" (hint: did you mean \"Europe/Berlin\"?)"),
            at(10, 23, "daemon.max_concurrent_jobs: max_concurrent_jobs = 0 is out of range 1-64"),
            at(14, 1, "sources.prod.uri_env: uri and uri_env are both set (hint: set exactly one of uri, uri_file (a file holding the URI) or uri_env (an environment variable holding it))"),
            at(18, 8, "storage.local.path: path must be an absolute path, found \"backups\" (hint: start it with \"/\")"),
            at(19, 1, "storage.local.colour: unknown key \"colour\" (hint: valid keys here: type, path, retention)"),
        ]
    );
    // Display: one line per error.
    let all = parse(text, Path::new(FILE)).unwrap_err();
    assert_eq!(all.to_string().lines().count(), 8);
    assert_eq!(all.to_string(), errors(text).join("\n"));
}

#[test]
fn an_empty_file_is_a_valid_idle_daemon() {
    let config = parse_ok("");
    assert!(config.jobs.is_empty() && config.sources.is_empty() && config.storage.is_empty());
    assert_eq!(config.daemon, crate::config::DaemonSettings::default());
    assert_eq!(config.path, Path::new(FILE));
}

#[test]
fn load_reports_non_utf8_at_the_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, b"[daemon]\nlog_level = \"inf\xff\"\n").unwrap();
    let errors = load(&path).unwrap_err();
    assert_eq!(
        errors.to_string(),
        format!(
            "{}:2:17: the file is not valid UTF-8 (hint: TOML files must be UTF-8; re-save it as UTF-8)",
            path.display()
        )
    );
}

#[test]
fn load_reads_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, full_job("")).unwrap();
    let config = load(&path).unwrap();
    assert_eq!(config.path, path);
    assert_eq!(config.jobs.len(), 1);
}
