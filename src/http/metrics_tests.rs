//! Tests of the metrics rendering: parsed back with a Prometheus parser,
//! plus the escaping and number spelling the format requires.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use super::*;
use crate::http::fixtures;

fn scrape(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).unwrap()
}

fn value(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{metric}: {other:?}"),
        })
        .collect();
    assert_eq!(found.len(), 1, "{metric}{labels:?}: {found:?}");
    found[0]
}

#[test]
fn renders_every_family_with_the_status_values() {
    let status = fixtures::status();
    let text = render(&status, &fixtures::backups());
    let s = scrape(&text);

    assert_eq!(value(&s, "mongo_backupd_up", &[]), 1.0);
    assert_eq!(
        value(&s, "mongo_backupd_build_info", &[("version", "9.9.9")]),
        1.0
    );
    assert_eq!(
        value(&s, "mongo_backupd_start_time_seconds", &[]),
        status.started_at.timestamp() as f64
    );
    let nightly = [("job", "nightly"), ("kind", "full")];
    assert_eq!(
        value(&s, "mongo_backupd_last_success_timestamp_seconds", &nightly),
        fixtures::T_SUCCESS as f64
    );
    assert_eq!(
        value(&s, "mongo_backupd_last_run_duration_seconds", &nightly),
        12.5
    );
    assert_eq!(
        value(&s, "mongo_backupd_last_backup_size_bytes", &nightly),
        4096.0
    );
    let runs = "mongo_backupd_runs_total";
    assert_eq!(
        value(&s, runs, &[("job", "nightly"), ("result", "success")]),
        7.0
    );
    assert_eq!(
        value(&s, runs, &[("job", "nightly"), ("result", "failed")]),
        2.0
    );
    assert_eq!(
        value(&s, "mongo_backupd_backups_stored", &[("job", "nightly")]),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "mongo_backupd_backup_bytes_stored",
            &[("job", "nightly")]
        ),
        3000.0
    );
    assert_eq!(
        value(&s, "mongo_backupd_backups_stored", &[("job", "oplog")]),
        0.0
    );
    assert_eq!(
        value(&s, "mongo_backupd_oplog_lag_seconds", &[("job", "oplog")]),
        42.0
    );
    assert_eq!(
        value(&s, "mongo_backupd_job_running", &[("job", "oplog")]),
        1.0
    );
    assert_eq!(
        value(&s, "mongo_backupd_job_running", &[("job", "nightly")]),
        0.0
    );
    assert_eq!(
        value(&s, "mongo_backupd_job_paused", &[("job", "nightly")]),
        1.0
    );
    assert_eq!(
        value(&s, "mongo_backupd_alert_deliveries_failed_total", &[]),
        3.0
    );
    assert_eq!(value(&s, "mongo_backupd_alert_queue_length", &[]), 1.0);

    assert_eq!(
        value(
            &s,
            "mongo_backupd_last_verified_timestamp_seconds",
            &[("job", "nightly")]
        ),
        (fixtures::T_SUCCESS + 600) as f64
    );
    assert_eq!(
        value(
            &s,
            "mongo_backupd_standby_lag_seconds",
            &[("job", "standby")]
        ),
        90.5
    );
    assert!(!text.contains("mongo_backupd_standby_lag_seconds{job=\"nightly\""));

    // No value yet: no series (not a misleading 0).
    assert!(!text.contains("mongo_backupd_last_success_timestamp_seconds{job=\"oplog\""));
    assert!(!text.contains("mongo_backupd_oplog_lag_seconds{job=\"nightly\""));

    // HELP and TYPE for every family, once, before its samples.
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(families.len(), 16, "{families:?}");
    for name in &families {
        assert_eq!(
            text.matches(&format!("# HELP {name} ")).count(),
            1,
            "{name}"
        );
        let type_at = text.find(&format!("# TYPE {name} ")).unwrap();
        if let Some(sample_at) = text.find(&format!("\n{name}")) {
            assert!(type_at < sample_at, "{name}");
        }
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        assert!(families.contains(&name), "{line}");
    }
}

#[test]
fn escapes_label_values() {
    assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
    assert_eq!(escape_label("two\nlines"), "two\\nlines");
    let mut status = fixtures::status();
    status.jobs[0].name = "we\"ird\\job\nname".to_string();
    let text = render(&status, &[]);
    assert!(
        text.contains(r#"mongo_backupd_job_paused{job="we\"ird\\job\nname"} 1"#),
        "{text}"
    );
    // Still one sample per line.
    assert!(text
        .lines()
        .all(|l| l.starts_with('#') || l.starts_with("mongo_backupd_")));
}

#[test]
fn special_floats_use_the_format_spelling() {
    assert_eq!(Value::Float(f64::NAN).to_string(), "NaN");
    assert_eq!(Value::Float(f64::INFINITY).to_string(), "+Inf");
    assert_eq!(Value::Float(f64::NEG_INFINITY).to_string(), "-Inf");
    assert_eq!(Value::Float(1.5).to_string(), "1.5");
    assert_eq!(Value::Int(u64::MAX).to_string(), "18446744073709551615");
}
