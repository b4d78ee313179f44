//! Bad values: each error kind with its exact message and position.

use super::{at, errors, full_job, job, the_error};

const FIVE: &str = "(hint: 5 fields: minute hour day-of-month month day-of-week)";
const SIX: &str = "(hint: 6 fields: second minute hour day-of-month month day-of-week)";

/// The error for `schedule = "<expr>"` on line 12 of a full job.
fn schedule_error(expr: &str) -> String {
    the_error(&job(&format!(
        "source = \"prod\"\nstorage = \"local\"\nkind = \"full\"\nschedule = \"{expr}\"\n"
    )))
}

fn cron(expr: &str, rest: &str) -> String {
    at(
        12,
        12,
        &format!("jobs.prod-full.schedule: invalid cron expression \"{expr}\": {rest}"),
    )
}

#[test]
fn cron_errors_name_the_field_and_range() {
    let cases = [
        ("0 25 * * *", format!("hour 25 is out of range 0-23 {FIVE}")),
        ("60 0 * * *", format!("minute 60 is out of range 0-59 {FIVE}")),
        ("0 0 0 * *", format!("day-of-month 0 is out of range 1-31 {FIVE}")),
        ("0 0 * 13 *", format!("month 13 is out of range 1-12 {FIVE}")),
        ("0 0 * * 8", format!("day-of-week 8 is out of range 0-7 {FIVE}")),
        ("61 0 0 * * *", format!("second 61 is out of range 0-59 {SIX}")),
        ("0 2 * *", format!("expected 5 fields (or 6 with seconds first), found 4 {FIVE}")),
        ("0 0 0 1 1 * 2030", format!("expected 5 fields (or 6 with seconds first), found 7 {FIVE}")),
        ("", format!("the expression is empty {FIVE}")),
        ("x 2 * * *", format!("minute \"x\" is not a number {FIVE}")),
        ("0 MON * * *", format!("hour \"MON\" is not a number {FIVE}")),
        ("0 0 * FOO *", format!("month \"FOO\" is neither a number nor JAN-DEC {FIVE}")),
        ("0 0 * * FUN", format!("day-of-week \"FUN\" is neither a number nor SUN-SAT {FIVE}")),
        ("1,,2 * * * *", format!("empty item in the minute list {FIVE}")),
        ("*/0 * * * *", format!("minute step must be at least 1 {FIVE}")),
        ("*/x * * * *", format!("minute step \"x\" is not a number {FIVE}")),
        ("0 0 * * 1#6", format!("day-of-week occurrence \"#6\" must be #1 to #5 or #L {FIVE}")),
        (
            "5/10 * * * *",
            "minute step \"5/10\" needs a range or \"*\" before the \"/\" (hint: write \"*/10\" or a range such as \"5-59/10\")".to_string(),
        ),
        (
            "0 22-2 * * *",
            "hour range 22-2 goes backwards (hint: ranges do not wrap around: write \"22-23,0-2\")".to_string(),
        ),
        (
            "0 0 1 * +MON",
            "the \"+\" prefix (day-of-month AND day-of-week) is not supported (hint: day-of-month and day-of-week combine with OR, as in crontab)".to_string(),
        ),
        (
            "@fortnightly",
            "unknown shortcut \"@fortnightly\" (hint: use @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually)".to_string(),
        ),
        (
            "0 0 30 2 *",
            "it never fires: none of its months has a day 30 (hint: February has 29 days at most; April, June, September and November have 30)".to_string(),
        ),
        (
            "0 0 31 4,6,9,11 *",
            "it never fires: none of its months has a day 31 (hint: February has 29 days at most; April, June, September and November have 30)".to_string(),
        ),
    ];
    for (expr, rest) in cases {
        assert_eq!(schedule_error(expr), cron(expr, &rest), "for {expr:?}");
    }
}

#[test]
fn valid_cron_forms_are_accepted() {
    for expr in [
        "0 2 * * *",
        "*/15 * * * *",
        "0 9-17/2 * * MON-FRI",
        "30 0 0 * * *",
        "0 0 1,15 * *",
        "0 0 L * *",
        "0 0 15W * *",
        "0 0 * * 5#L",
        "0 0 * * FRI#2",
        "0 0 * * 5L",
        "0 0 * * FRI-SUN",
        "0 0 * JAN-MAR,oct 1-5/2",
        "0 0 ? * sun",
        "0 0 29 2 *",
        "0 0 30 2 MON",
        "@hourly",
        "@DAILY",
        "@midnight",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
    ] {
        let text = full_job("").replace("0 2 * * *", expr);
        super::parse_ok(&text);
    }
}

#[test]
fn time_zones_suggest_close_names() {
    let tz = |zone: &str| the_error(&full_job(&format!("timezone = \"{zone}\"\n")));
    let msg = |zone: &str, hint: &str| {
        at(
            13,
            12,
            &format!("jobs.prod-full.timezone: unknown time zone \"{zone}\" (hint: {hint})"),
        )
    };
    assert_eq!(
        tz("Europe/Berln"),
        msg("Europe/Berln", "did you mean \"Europe/Berlin\"?")
    );
    assert_eq!(
        tz("europe/berlin"),
        msg("europe/berlin", "did you mean \"Europe/Berlin\"?")
    );
    assert_eq!(
        tz("Berlin"),
        msg("Berlin", "did you mean \"Europe/Berlin\"?")
    );
    assert_eq!(
        tz("Mars/Olympus"),
        msg(
            "Mars/Olympus",
            "use an IANA time zone name such as \"UTC\", \"Europe/Berlin\" or \"America/New_York\""
        )
    );
}

#[test]
fn durations_explain_the_syntax() {
    let hint =
        "(hint: a whole number and a unit (s, m, h, d or w), e.g. \"90s\", \"5m\", \"1h30m\")";
    let text = "[daemon]\nshutdown_grace = \"5 minutes\"\n\n[sources.prod]\nuri = \"mongodb://x/\"\n\
                connect_timeout = \"10\"\n\n[sources.b]\nuri = \"mongodb://y/\"\nconnect_timeout = \"0s\"\n";
    assert_eq!(
        errors(text),
        vec![
            at(2, 18, &format!("daemon.shutdown_grace: invalid duration \"5 minutes\": unknown unit \" \" {hint}")),
            at(6, 19, &format!("sources.prod.connect_timeout: invalid duration \"10\": the unit is missing after the number {hint}")),
            at(10, 19, "sources.b.connect_timeout: connect_timeout must be longer than 0s (hint: e.g. connect_timeout = \"10s\")"),
        ]
    );
}

#[test]
fn impossible_retention() {
    let text = full_job(
        "retention = \"0d\"\nkeep_daily = 0\nkeep_weekly = -1\nkeep_monthly = 0\nmin_keep = 0\n",
    );
    assert_eq!(
        errors(&text),
        vec![
            at(13, 13, "jobs.prod-full.retention: retention must be longer than 0 (hint: a retention of 0 would delete every backup as soon as it is made)"),
            at(14, 14, "jobs.prod-full.keep_daily: keep_daily = 0 keeps no daily backups (hint: remove keep_daily to turn daily keeps off, or set it to 1 or more)"),
            at(15, 15, "jobs.prod-full.keep_weekly: keep_weekly = -1 is out of range 1-100000"),
            at(16, 16, "jobs.prod-full.keep_monthly: keep_monthly = 0 keeps no monthly backups (hint: remove keep_monthly to turn monthly keeps off, or set it to 1 or more)"),
            at(17, 12, "jobs.prod-full.min_keep: min_keep = 0 would let retention delete every backup (hint: set min_keep to 1 or more (the default is 1))"),
        ]
    );
    assert_eq!(
        the_error(&full_job("retention = \"36h30m\"\n")),
        at(13, 13, "jobs.prod-full.retention: retention does not take the unit \"m\" in \"36h30m\" (hint: use w, d or h)")
    );
}

#[test]
fn compression_levels_depend_on_the_codec() {
    let level = |codec: &str, level: i64| {
        the_error(&full_job(&format!(
            "compression = \"{codec}\"\ncompression_level = {level}\n"
        )))
    };
    assert_eq!(
        level("zstd", 23),
        at(14, 21, "jobs.prod-full.compression_level: compression_level = 23 is out of range for zstd (1-22) (hint: the default for zstd is 3)")
    );
    assert_eq!(
        level("zstd", 0),
        at(14, 21, "jobs.prod-full.compression_level: compression_level = 0 is out of range for zstd (1-22) (hint: the default for zstd is 3)")
    );
    assert_eq!(
        level("gzip", 10),
        at(14, 21, "jobs.prod-full.compression_level: compression_level = 10 is out of range for gzip (1-9) (hint: the default for gzip is 6)")
    );
    assert_eq!(
        level("none", 1),
        at(14, 21, "jobs.prod-full.compression_level: compression_level is set but compression is \"none\" (hint: remove compression_level, or choose compression = \"gzip\" or \"zstd\")")
    );
    assert_eq!(
        the_error(&full_job("compression = \"gz\"\n")),
        at(13, 15, "jobs.prod-full.compression: invalid compression \"gz\" (expected none, gzip or zstd) (hint: did you mean \"gzip\"?)")
    );
}

#[test]
fn uri_settings() {
    let text = "[sources.a]\nuri = \"mongodb://x/\"\nuri_file = \"/f\"\nuri_env = \"E\"\n\n\
                [sources.b]\nuri = \"db1:27017\"\n\n\
                [sources.c]\nuri = \"PROD_URI\"\n\n\
                [sources.d]\nuri_file = \"secrets/prod.uri\"\n\n\
                [sources.e]\nuri_file = \"${CREDENTIALS_DIRECTORY/prod-uri\"\n\n\
                [sources.f]\nuri_env = \"${PROD_URI}\"\n\n\
                [sources.g]\nuri = \"/etc/mongo-backupd/prod.uri\"\n";
    assert_eq!(
        errors(text),
        vec![
            at(3, 1, "sources.a.uri_file: uri, uri_file, uri_env are all set (hint: set exactly one of uri, uri_file (a file holding the URI) or uri_env (an environment variable holding it))"),
            at(7, 7, "sources.b.uri: the URI must start with mongodb:// or mongodb+srv:// (hint: e.g. uri = \"mongodb://db1:27017/?replicaSet=rs0\")"),
            at(10, 7, "sources.c.uri: the URI must start with mongodb:// or mongodb+srv:// (hint: to read the URI from an environment variable, use uri_env)"),
            at(13, 12, "sources.d.uri_file: uri_file must be an absolute path, found \"secrets/prod.uri\" (hint: e.g. \"/etc/mongo-backupd/prod.uri\" or \"${CREDENTIALS_DIRECTORY}/prod-uri\")"),
            at(16, 12, "sources.e.uri_file: \"${\" is not closed with \"}\" (hint: write ${VARIABLE}/file)"),
            at(19, 11, "sources.f.uri_env: \"${PROD_URI}\" is not an environment variable name (hint: write the name without $ or braces: uri_env = \"PROD_URI\")"),
            at(22, 7, "sources.g.uri: the URI must start with mongodb:// or mongodb+srv:// (hint: to read the URI from a file, use uri_file)"),
        ]
    );
}

#[test]
fn uri_errors_never_show_the_uri() {
    let secret = "admin:hunter2@db1:27017";
    let text = format!("[sources.a]\nuri = \"{secret}\"\n");
    let error = the_error(&text);
    assert!(!error.contains("hunter2"), "{error}");
}

#[test]
fn storage_types() {
    let text = "[storage.cloud]\ntype = \"s3\"\nbucket = \"backups\"\n\n\
                [storage.disk]\ntype = \"locl\"\npath = \"/b\"\n\n\
                [storage.nfs]\ntype = \"nfs\"\npath = \"relative\"\n";
    assert_eq!(
        errors(text),
        vec![
            at(6, 8, "storage.disk.type: invalid storage type \"locl\" (expected local, s3, azure or gcs) (hint: did you mean \"local\"?)"),
            at(10, 8, "storage.nfs.type: invalid storage type \"nfs\" (expected local, s3, azure or gcs) (hint: did you mean \"local\"? a network share is mounted and used as a local directory)"),
            at(11, 8, "storage.nfs.path: path must be an absolute path, found \"relative\" (hint: start it with \"/\")"),
        ]
    );
}

#[test]
fn dangling_references_list_what_exists() {
    let text = job("source = \"prd\"\nstorage = \"s3\"\nkind = \"manual\"\n");
    assert_eq!(
        errors(&text),
        vec![
            at(9, 10, "jobs.prod-full.source: source \"prd\" is not defined (defined: \"prod\") (hint: did you mean \"prod\"?)"),
            at(10, 11, "jobs.prod-full.storage: storage \"s3\" is not defined (defined: \"local\") (hint: use one of the defined names or add a [storage.s3] table)"),
        ]
    );
    let no_sources = "[jobs.x]\nsource = \"prod\"\nstorage = \"local\"\nkind = \"manual\"\n\n[storage.local]\ntype = \"local\"\npath = \"/b\"\n";
    assert_eq!(
        the_error(no_sources),
        at(2, 10, "jobs.x.source: source \"prod\" is not defined (there are no [sources.*] tables) (hint: add a [sources.prod] table)")
    );
}

#[test]
fn job_kinds() {
    let kind = |k: &str| {
        the_error(&job(&format!(
            "source = \"prod\"\nstorage = \"local\"\nkind = \"{k}\"\n"
        )))
    };
    assert_eq!(
        kind("differential"),
        at(11, 8, "jobs.prod-full.kind: invalid job kind \"differential\" (expected full, incremental, manual, drill or standby)")
    );
    assert_eq!(
        kind("Full"),
        at(11, 8, "jobs.prod-full.kind: invalid job kind \"Full\" (expected full, incremental, manual, drill or standby) (hint: did you mean \"full\"?)")
    );
}

#[test]
fn selection_patterns() {
    let text = full_job("include = [\"app.\", \".users\", \"admin\", \"local.oplog.rs\", \"a$b\"]\nexclude = [\"\", \"local\"]\n");
    let hint =
        "(hint: \"db\" for a whole database or \"db.collection\"; * matches any run of characters)";
    assert_eq!(
        errors(&text),
        vec![
            at(13, 12, &format!("jobs.prod-full.include: invalid pattern \"app.\": the collection part (after the \".\") is empty: write \"app\" for the whole database or \"app.*\" {hint}")),
            at(13, 20, &format!("jobs.prod-full.include: invalid pattern \".users\": the database part (before the first \".\") is empty {hint}")),
            at(13, 30, "jobs.prod-full.include: pattern \"admin\": the admin database is backed up only through include_users (hint: set include_users = true to back up users and roles)"),
            at(13, 39, "jobs.prod-full.include: pattern \"local.oplog.rs\": the local database is never backed up (hint: local holds one node's oplog and replica-set state, config the cluster's metadata; neither can be restored elsewhere)"),
            at(13, 57, &format!("jobs.prod-full.include: invalid pattern \"a$b\": database names cannot contain \"$\" {hint}")),
            at(14, 12, &format!("jobs.prod-full.exclude: invalid pattern \"\": the pattern is empty {hint}")),
        ]
    );
}

#[test]
fn daemon_settings() {
    let text = "[daemon]\nstate_dir = \"\"\ntimezone = 1\nmax_concurrent_jobs = 65\nlog_level = \"INFO\"\n\
                log_file = \"mongo-backupd.log\"\nlog_rotation = \"weekly\"\n";
    assert_eq!(
        errors(text),
        vec![
            at(2, 13, "daemon.state_dir: state_dir is empty (hint: start it with \"/\")"),
            at(3, 12, "daemon.timezone: expected string, found integer (hint: write it in quotes: timezone = \"1\")"),
            at(4, 23, "daemon.max_concurrent_jobs: max_concurrent_jobs = 65 is out of range 1-64"),
            at(5, 13, "daemon.log_level: invalid log level \"INFO\" (expected error, warn, info, debug or trace) (hint: did you mean \"info\"?)"),
            at(6, 12, "daemon.log_file: log_file must be an absolute path, found \"mongo-backupd.log\" (hint: start it with \"/\")"),
            at(7, 16, "daemon.log_rotation: invalid log rotation \"weekly\" (expected daily, hourly or never)"),
        ]
    );
}

#[test]
fn error_positions_count_characters_not_bytes() {
    // "ü" is two bytes; columns are what an editor shows.
    let text = "daemon = { state_dir = \"/üü\", log_level = \"x\" }\n";
    assert_eq!(
        the_error(text),
        at(1, 43, "daemon.log_level: invalid log level \"x\" (expected error, warn, info, debug or trace)")
    );
}
