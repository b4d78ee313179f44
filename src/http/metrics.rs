//! `GET /metrics`: the Prometheus text format (version 0.0.4), rendered
//! from the daemon's status and its backup listing by a pure function.
//!
//! Every family gets `HELP` and `TYPE` lines even when it has no samples
//! yet, so dashboards and alert rules see the names from the first scrape.
//! Series that have no value yet (a job that never succeeded has no last
//! success time) are left out rather than reported as 0, which an alert
//! rule would read as "1970".

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::daemon::api::{BackupSummary, JobActivity, Status};

/// The `Content-Type` of the rendering.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value as the format wants it: backslash, double quote and
/// newline escaped.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: integers exactly, floats in Go's spelling of the
/// special values.
#[derive(Debug, Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) if v.is_nan() => f.write_str("NaN"),
            Value::Float(v) if v.is_infinite() && v > 0.0 => f.write_str("+Inf"),
            Value::Float(v) if v.is_infinite() => f.write_str("-Inf"),
            Value::Float(v) => write!(f, "{v}"),
        }
    }
}

fn seconds(t: DateTime<Utc>) -> Value {
    // Milliseconds keep the fraction without float noise from nanos.
    Value::Float(t.timestamp_millis() as f64 / 1000.0)
}

/// One metric family being written.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

fn family<'a>(out: &'a mut String, name: &'static str, kind: &str, help: &str) -> Family<'a> {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
    Family { out, name }
}

impl Family<'_> {
    fn sample(&mut self, labels: &[(&str, &str)], value: Value) -> &mut Self {
        let _ = write!(self.out, "{}", self.name);
        if !labels.is_empty() {
            let rendered: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = write!(self.out, "{{{}}}", rendered.join(","));
        }
        let _ = writeln!(self.out, " {value}");
        self
    }
}

/// Complete backups per job (and their bytes), from the listing; jobs in
/// the status without backups count 0, jobs no longer configured whose
/// backups are still stored are included.
fn stored(status: &Status, backups: &[BackupSummary]) -> BTreeMap<String, (u64, u64)> {
    let mut per_job: BTreeMap<String, (u64, u64)> = status
        .jobs
        .iter()
        .map(|j| (j.name.clone(), (0, 0)))
        .collect();
    for b in backups
        .iter()
        .filter(|b| b.status.eq_ignore_ascii_case("complete"))
    {
        let entry = per_job.entry(b.job.clone()).or_default();
        entry.0 += 1;
        entry.1 += b.bytes;
    }
    per_job
}

/// The whole exposition.
pub fn render(status: &Status, backups: &[BackupSummary]) -> String {
    let mut out = String::new();
    let jobs = &status.jobs;

    family(
        &mut out,
        "mongo_backupd_build_info",
        "gauge",
        "The daemon's version; always 1.",
    )
    .sample(&[("version", &status.version)], Value::Int(1));
    family(
        &mut out,
        "mongo_backupd_up",
        "gauge",
        "1 while the daemon answers.",
    )
    .sample(&[], Value::Int(1));
    family(
        &mut out,
        "mongo_backupd_start_time_seconds",
        "gauge",
        "When the daemon started, in seconds since the Unix epoch.",
    )
    .sample(&[], seconds(status.started_at));

    let mut f = family(
        &mut out,
        "mongo_backupd_last_success_timestamp_seconds",
        "gauge",
        "When the job's last successful backup finished, in seconds since the Unix epoch.",
    );
    for j in jobs {
        if let Some(t) = j.last_success_at {
            f.sample(&[("job", &j.name), ("kind", &j.kind)], seconds(t));
        }
    }
    let mut f = family(
        &mut out,
        "mongo_backupd_last_run_duration_seconds",
        "gauge",
        "How long the job's last run took.",
    );
    for j in jobs {
        if let Some(d) = j.last_duration_secs {
            f.sample(&[("job", &j.name), ("kind", &j.kind)], Value::Float(d));
        }
    }
    let mut f = family(
        &mut out,
        "mongo_backupd_last_backup_size_bytes",
        "gauge",
        "The size of the job's last backup.",
    );
    for j in jobs {
        if let Some(b) = j.last_backup_bytes {
            f.sample(&[("job", &j.name), ("kind", &j.kind)], Value::Int(b));
        }
    }
    let mut f = family(
        &mut out,
        "mongo_backupd_runs_total",
        "counter",
        "Runs of the job since the daemon started, by result.",
    );
    for j in jobs {
        f.sample(
            &[("job", &j.name), ("result", "success")],
            Value::Int(j.runs_succeeded),
        )
        .sample(
            &[("job", &j.name), ("result", "failed")],
            Value::Int(j.runs_failed),
        );
    }

    let per_job = stored(status, backups);
    let mut f = family(
        &mut out,
        "mongo_backupd_backups_stored",
        "gauge",
        "Complete backups of the job in its storage.",
    );
    for (job, (count, _)) in &per_job {
        f.sample(&[("job", job)], Value::Int(*count));
    }
    let mut f = family(
        &mut out,
        "mongo_backupd_backup_bytes_stored",
        "gauge",
        "Total size of the job's complete backups in its storage.",
    );
    for (job, (_, bytes)) in &per_job {
        f.sample(&[("job", job)], Value::Int(*bytes));
    }
    let mut f = family(
        &mut out,
        "mongo_backupd_oplog_lag_seconds",
        "gauge",
        "For incremental jobs: how far the newest incremental's end is behind now.",
    );
    for j in jobs {
        if let Some(lag) = j.oplog_lag_secs {
            f.sample(&[("job", &j.name)], Value::Float(lag));
        }
    }
    let mut f = family(
        &mut out,
        "mongo_backupd_last_verified_timestamp_seconds",
        "gauge",
        "When a restore drill last passed on the job's backups (for drill jobs: when the drill last passed).",
    );
    for j in jobs {
        if let Some(t) = j.last_verified {
            f.sample(
                &[("job", &j.name)],
                Value::Int(u64::try_from(t.timestamp()).unwrap_or(0)),
            );
        }
    }
    let mut f = family(
        &mut out,
        "mongo_backupd_standby_lag_seconds",
        "gauge",
        "For standby jobs: how far the instant the standby reflects is behind now.",
    );
    for j in jobs {
        if let Some(s) = &j.standby {
            f.sample(&[("job", &j.name)], Value::Float(s.lag_secs));
        }
    }
    let mut f = family(
        &mut out,
        "mongo_backupd_job_running",
        "gauge",
        "1 while a backup of the job runs.",
    );
    for j in jobs {
        let running = j.activity == JobActivity::Running;
        f.sample(&[("job", &j.name)], Value::Int(u64::from(running)));
    }
    let mut f = family(
        &mut out,
        "mongo_backupd_job_paused",
        "gauge",
        "1 while the job's schedule is paused.",
    );
    for j in jobs {
        f.sample(&[("job", &j.name)], Value::Int(u64::from(j.paused)));
    }

    family(
        &mut out,
        "mongo_backupd_alert_deliveries_failed_total",
        "counter",
        "Failed attempts to deliver alert mail since the daemon started.",
    )
    .sample(&[], Value::Int(status.alerts.failed_attempts));
    family(
        &mut out,
        "mongo_backupd_alert_queue_length",
        "gauge",
        "Alert mails waiting to be delivered.",
    )
    .sample(
        &[],
        Value::Int(u64::try_from(status.alerts.queued).unwrap_or(u64::MAX)),
    );
    out
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
