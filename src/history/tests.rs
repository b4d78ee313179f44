//! Tests of the run history: round trip, compatibility, torn and damaged
//! lines, filters, the size bound and the table.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::fs;
use std::path::Path;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::{
    append, append_with_limits, format_size, one_line, read, render_table, HistoryError,
    HistoryFilter, HistoryLimits, RunRecord, RunResult, HISTORY_FILE, MIN_RECORD_BYTES,
};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// A successful scheduled run of `job` started at `started`, 90 s long.
fn record(job: &str, started: DateTime<Utc>) -> RunRecord {
    RunRecord {
        job: job.to_string(),
        kind: "full".to_string(),
        scheduled: Some(started),
        started,
        finished: started + TimeDelta::seconds(90),
        result: RunResult::Success,
        error: None,
        backup_id: Some(format!("{job}-{}", started.format("%Y%m%dT%H%M%SZ"))),
        bytes: Some(1_572_864),
        documents: Some(12_000),
        note: None,
        requested_by: None,
    }
}

fn lines_of(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join(HISTORY_FILE))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn all(dir: &Path) -> Vec<RunRecord> {
    read(dir, HistoryFilter::default()).unwrap()
}

#[test]
fn append_then_read_round_trips_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let first = record("prod-full", utc(2025, 6, 1, 2, 0, 0));
    let mut second = record("prod-incremental", utc(2025, 6, 1, 3, 0, 0));
    second.kind = "incremental".to_string();
    second.result = RunResult::Failed;
    second.error = Some("connection refused".to_string());
    second.backup_id = None;
    second.bytes = None;
    let mut third = record("prod-manual", utc(2025, 6, 1, 4, 0, 0));
    third.scheduled = None;
    third.kind = "manual".to_string();
    third.note = Some("before the migration".to_string());
    third.requested_by = Some("alice".to_string());
    for r in [&first, &second, &third] {
        append(dir.path(), r).unwrap();
    }
    assert_eq!(all(dir.path()), vec![third, second, first]);

    // One compact line each, without the fields that are not set.
    let lines = lines_of(dir.path());
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[1],
        r#"{"job":"prod-incremental","kind":"incremental","scheduled":"2025-06-01T03:00:00Z","started":"2025-06-01T03:00:00Z","finished":"2025-06-01T03:01:30Z","result":"failed","error":"connection refused","documents":12000}"#
    );
}

#[test]
fn a_missing_history_is_empty_and_append_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(all(dir.path()), vec![]);
    let state = dir.path().join("state");
    assert_eq!(all(&state), vec![]);
    append(&state, &record("a", utc(2025, 6, 1, 2, 0, 0))).unwrap();
    assert_eq!(all(&state).len(), 1);
}

#[test]
fn old_and_newer_lines_both_read() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join(HISTORY_FILE),
        concat!(
            // Written before `note` and `requested_by` existed.
            r#"{"job":"a","kind":"full","scheduled":null,"started":"2025-06-01T02:00:00Z","finished":"2025-06-01T02:00:05Z","result":"success","error":null,"backup_id":"x","bytes":10,"documents":1}"#,
            "\n",
            // Written by a later version with fields this one does not know.
            r#"{"job":"a","kind":"differential","started":"2025-06-01T03:00:00+02:00","finished":"2025-06-01T03:00:05+02:00","result":"skipped","note":"overlap","retries":2,"host":{"name":"db1"}}"#,
            "\n",
        ),
    )
    .unwrap();
    let records = all(dir.path());
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].started, utc(2025, 6, 1, 2, 0, 0));
    assert_eq!(records[0].result, RunResult::Success);
    assert_eq!(records[0].note, None);
    assert_eq!(records[1].started, utc(2025, 6, 1, 1, 0, 0));
    assert_eq!(records[1].kind, "differential");
    assert_eq!(records[1].note.as_deref(), Some("overlap"));
}

#[test]
fn a_torn_last_line_is_skipped_and_the_next_append_survives() {
    let dir = tempfile::tempdir().unwrap();
    let first = record("a", utc(2025, 6, 1, 2, 0, 0));
    append(dir.path(), &first).unwrap();
    // A crash in the middle of the next append.
    let path = dir.path().join(HISTORY_FILE);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(br#"{"job":"a","kind":"full","sched"#);
    fs::write(&path, &bytes).unwrap();
    assert_eq!(all(dir.path()), vec![first.clone()]);

    let next = record("a", utc(2025, 6, 1, 3, 0, 0));
    append(dir.path(), &next).unwrap();
    assert_eq!(all(dir.path()), vec![next, first]);
    assert_eq!(
        lines_of(dir.path())[1],
        r#"{"job":"a","kind":"full","sched"#
    );
}

#[test]
fn damaged_lines_do_not_hide_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(HISTORY_FILE);
    let good = record("a", utc(2025, 6, 1, 2, 0, 0));
    let mut bytes = serde_json::to_vec(&good).unwrap();
    bytes.extend_from_slice(b"\nnot json\n\n{\"job\":\"a\"}\n\xff\xfe garbage\n");
    bytes.extend_from_slice(br#"{"job":"b","kind":"full","started":"2025-06-01T03:00:00Z","finished":"2025-06-01T03:00:01Z","result":"exploded"}"#);
    bytes.push(b'\n');
    bytes.extend(serde_json::to_vec(&record("c", utc(2025, 6, 1, 4, 0, 0))).unwrap());
    bytes.push(b'\n');
    fs::write(&path, bytes).unwrap();
    let records = all(dir.path());
    let jobs: Vec<&str> = records.iter().map(|r| r.job.as_str()).collect();
    assert_eq!(jobs, vec!["c", "a"]);
}

#[test]
fn filters_by_job_since_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    for h in 0..6 {
        append(dir.path(), &record("full", utc(2025, 6, 1, h, 0, 0))).unwrap();
        append(dir.path(), &record("incr", utc(2025, 6, 1, h, 30, 0))).unwrap();
    }
    let started = |records: Vec<RunRecord>| -> Vec<(String, DateTime<Utc>)> {
        records.into_iter().map(|r| (r.job, r.started)).collect()
    };
    let filter = |job: Option<&str>, limit, since| HistoryFilter {
        job: job.map(String::from),
        limit,
        since,
    };

    let records = read(dir.path(), filter(Some("incr"), None, None)).unwrap();
    assert_eq!(records.len(), 6);
    assert!(records.iter().all(|r| r.job == "incr"));
    assert_eq!(records[0].started, utc(2025, 6, 1, 5, 30, 0));

    assert_eq!(
        started(read(dir.path(), filter(None, Some(3), None)).unwrap()),
        vec![
            ("incr".to_string(), utc(2025, 6, 1, 5, 30, 0)),
            ("full".to_string(), utc(2025, 6, 1, 5, 0, 0)),
            ("incr".to_string(), utc(2025, 6, 1, 4, 30, 0)),
        ]
    );
    // `since` is inclusive and applies before the limit.
    assert_eq!(
        started(
            read(
                dir.path(),
                filter(Some("full"), Some(10), Some(utc(2025, 6, 1, 4, 0, 0)))
            )
            .unwrap()
        ),
        vec![
            ("full".to_string(), utc(2025, 6, 1, 5, 0, 0)),
            ("full".to_string(), utc(2025, 6, 1, 4, 0, 0)),
        ]
    );
    assert_eq!(
        read(dir.path(), filter(Some("nope"), None, None)).unwrap(),
        vec![]
    );
    assert_eq!(
        read(dir.path(), filter(None, Some(0), None)).unwrap(),
        vec![]
    );
}

#[test]
fn ordering_is_by_start_time_then_newest_written() {
    let dir = tempfile::tempdir().unwrap();
    // A long full backup finishes (and is written) after a later short one.
    let long = record("full", utc(2025, 6, 1, 2, 0, 0));
    let short = record("incr", utc(2025, 6, 1, 2, 30, 0));
    let mut twin = record("other", utc(2025, 6, 1, 2, 30, 0));
    twin.kind = "incremental".to_string();
    for r in [&short, &long, &twin] {
        append(dir.path(), r).unwrap();
    }
    assert_eq!(all(dir.path()), vec![twin, short, long]);
}

#[test]
fn the_record_bound_keeps_the_newest_half() {
    let dir = tempfile::tempdir().unwrap();
    let limits = HistoryLimits {
        max_records: 10,
        max_bytes: 1 << 20,
    };
    let at = |i: u32| utc(2025, 6, 1, 0, 0, 0) + TimeDelta::minutes(i64::from(i));
    for i in 0..10 {
        append_with_limits(dir.path(), &record("a", at(i)), limits).unwrap();
    }
    assert_eq!(lines_of(dir.path()).len(), 10);
    // The 11th record passes the bound: the newest 5 remain.
    append_with_limits(dir.path(), &record("a", at(10)), limits).unwrap();
    let records = all(dir.path());
    assert_eq!(
        records.iter().map(|r| r.started).collect::<Vec<_>>(),
        (6..=10).rev().map(at).collect::<Vec<_>>()
    );
    for i in 11..100 {
        append_with_limits(dir.path(), &record("a", at(i)), limits).unwrap();
        let lines = lines_of(dir.path()).len();
        assert!((5..=10).contains(&lines), "{lines} lines after {i}");
    }
    assert_eq!(all(dir.path())[0].started, at(99));
    // Compaction goes through a temporary file that does not stay.
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn the_byte_bound_keeps_the_newest_half() {
    let dir = tempfile::tempdir().unwrap();
    let limits = HistoryLimits {
        max_records: 1000,
        max_bytes: 2000,
    };
    let size = |dir: &Path| fs::metadata(dir.join(HISTORY_FILE)).unwrap().len();
    for i in 0..50 {
        let r = record("a", utc(2025, 6, 1, 0, 0, 0) + TimeDelta::minutes(i));
        append_with_limits(dir.path(), &r, limits).unwrap();
        assert!(size(dir.path()) <= 2000, "{} bytes", size(dir.path()));
        assert_eq!(all(dir.path())[0], r);
    }
    assert!(size(dir.path()) >= 500);
    // A single record over half the bound is still kept.
    let mut huge = record("a", utc(2025, 6, 2, 0, 0, 0));
    huge.error = Some("x".repeat(1500));
    append_with_limits(dir.path(), &huge, limits).unwrap();
    assert_eq!(all(dir.path()), vec![huge]);
}

#[test]
fn compaction_drops_bad_lines_and_keeps_unknown_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(HISTORY_FILE);
    let newer = r#"{"job":"a","kind":"full","started":"2025-06-01T00:00:00Z","finished":"2025-06-01T00:00:01Z","result":"success","retries":2}"#;
    fs::write(
        &path,
        format!("{newer}\nnot json\n{newer}\n{{\"job\":\"a\",\"ki"),
    )
    .unwrap();
    let limits = HistoryLimits {
        max_records: 4,
        max_bytes: 1 << 20,
    };
    let last = record("b", utc(2025, 6, 2, 0, 0, 0));
    append_with_limits(dir.path(), &last, limits).unwrap();
    // Five lines: the two newest records remain, the line this version
    // does not fully know byte for byte.
    assert_eq!(
        lines_of(dir.path()),
        vec![newer.to_string(), serde_json::to_string(&last).unwrap()]
    );
}

#[test]
fn no_record_line_is_shorter_than_the_counting_threshold() {
    let minimal = RunRecord {
        job: String::new(),
        kind: String::new(),
        scheduled: None,
        started: utc(2025, 6, 1, 0, 0, 0),
        finished: utc(2025, 6, 1, 0, 0, 0),
        result: RunResult::Failed,
        error: None,
        backup_id: None,
        bytes: None,
        documents: None,
        note: None,
        requested_by: None,
    };
    let len = serde_json::to_vec(&minimal).unwrap().len() as u64;
    assert!(len >= MIN_RECORD_BYTES, "{len}");
}

#[test]
fn unusable_files_are_errors_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join(HISTORY_FILE)).unwrap();
    let err = read(dir.path(), HistoryFilter::default()).unwrap_err();
    assert!(matches!(err, HistoryError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains(HISTORY_FILE), "{err}");
    let err = append(dir.path(), &record("a", utc(2025, 6, 1, 0, 0, 0))).unwrap_err();
    assert!(
        matches!(err, HistoryError::Write { op: "open", .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("cannot open the run history "),
        "{err}"
    );
}

#[test]
fn table_snapshot() {
    let ok = record(
        "prod-full",
        utc(2025, 6, 1, 2, 0, 0) + TimeDelta::milliseconds(400),
    );
    let mut failed = record("prod-incremental", utc(2025, 6, 1, 3, 0, 0));
    failed.kind = "incremental".to_string();
    failed.result = RunResult::Failed;
    failed.finished = failed.started + TimeDelta::seconds(3725);
    failed.backup_id = None;
    failed.bytes = None;
    failed.error = Some(
        "cannot reach mongodb://db1:27017:   connection refused\nretried 3 times\ncaused by: x"
            .to_string(),
    );
    let mut skipped = record("prod-full", utc(2025, 6, 1, 4, 0, 0));
    skipped.result = RunResult::Skipped;
    skipped.finished = skipped.started;
    skipped.backup_id = None;
    skipped.bytes = None;
    skipped.note = Some("previous run still going".to_string());
    let mut cancelled = record("nightly", utc(2025, 6, 1, 5, 0, 0));
    cancelled.kind = "manual".to_string();
    cancelled.result = RunResult::Cancelled;
    cancelled.finished = cancelled.started - TimeDelta::seconds(5); // clock stepped back
    cancelled.bytes = Some(5 * 1024 * 1024 * 1024 + 300 * 1024 * 1024);
    cancelled.error = Some("x".repeat(100));
    let table = render_table(&[cancelled, skipped, failed, ok]);
    let expected = "\
STARTED               JOB               KIND         RESULT     DURATION  SIZE     BACKUP ID                   DETAIL
2025-06-01T05:00:00Z  nightly           manual       cancelled  -         5.3 GiB  nightly-20250601T050000Z    xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…
2025-06-01T04:00:00Z  prod-full         full         skipped    0s        -        -                           previous run still going
2025-06-01T03:00:00Z  prod-incremental  incremental  failed     1h2m5s    -        -                           cannot reach mongodb://db1:27017: connection refused…
2025-06-01T02:00:00Z  prod-full         full         success    1m30s     1.5 MiB  prod-full-20250601T020000Z  -
";
    assert_eq!(table, expected, "\n{table}");
    assert_eq!(render_table(&[]), "no runs recorded\n");
}

#[test]
fn sizes_and_error_lines() {
    assert_eq!(format_size(0), "0 B");
    assert_eq!(format_size(1023), "1023 B");
    assert_eq!(format_size(1024), "1.0 KiB");
    assert_eq!(format_size(1536), "1.5 KiB");
    assert_eq!(format_size(10 * 1024 * 1024), "10.0 MiB");
    assert_eq!(format_size(u64::MAX), "16.0 EiB");

    assert_eq!(one_line("plain"), "plain");
    assert_eq!(one_line("  spaced\tout  "), "spaced out");
    assert_eq!(one_line("\n\nfirst\nsecond"), "first…");
    assert_eq!(one_line(""), "-");
    let long = "é".repeat(200);
    let cut = one_line(&long);
    assert_eq!(cut.chars().count(), 80);
    assert!(cut.ends_with('…'));
}
