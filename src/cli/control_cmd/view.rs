//! How the daemon's answers look in a terminal: `status` as a header and
//! a table of jobs, durations and instants short enough to read at a
//! glance (`--json` has the exact values).

use chrono::{DateTime, Utc};

use crate::daemon::api::{JobActivity, JobStatus, Status};
use crate::history::format_size;

/// `45s`, `12m`, `3h 5m`, `2d 4h`: precise enough to read at a glance.
pub(super) fn span(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 if s % 3600 < 60 => format!("{}h", s / 3600),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ if s % 86400 < 3600 => format!("{}d", s / 86400),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    t.map_or_else(
        || "-".into(),
        |t| format!("{} ago", span((now - t).num_seconds())),
    )
}

pub(super) fn until(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        None => "-".into(),
        Some(t) if t <= now => "due now".into(),
        Some(t) => format!("in {}", span((t - now).num_seconds())),
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `idle`, `running 45% 1.2 GiB`, `queued`, `paused`, `disabled`.
pub(super) fn state(j: &JobStatus) -> String {
    match j.activity {
        JobActivity::Idle => "idle".into(),
        JobActivity::Queued => "queued".into(),
        JobActivity::Paused => "paused".into(),
        JobActivity::Disabled => "disabled".into(),
        JobActivity::Running => {
            let mut text = "running".to_string();
            if let Some(p) = j.run.as_ref().map(|r| r.progress) {
                if let Some(pct) = (p.collections_done * 100).checked_div(p.collections_total) {
                    text.push_str(&format!(" {pct}%"));
                }
                if p.bytes > 0 {
                    text.push_str(&format!(" {}", format_size(p.bytes)));
                }
            }
            text
        }
    }
}

fn alerts_line(s: &Status, now: DateTime<Utc>) -> String {
    let a = &s.alerts;
    if !a.email_configured {
        return "Alerts: no email configured.".into();
    }
    let mut line = match a.failing_since {
        Some(since) => format!(
            "Alerts: delivery FAILING since {} ({}), {} queued",
            when(since),
            ago(Some(since), now),
            a.queued
        ),
        None => format!("Alerts: email, {} queued", a.queued),
    };
    if let Some(t) = a.last_delivered {
        line.push_str(&format!(", last delivered {}", ago(Some(t), now)));
    }
    if a.failing_since.is_some() {
        if let Some(e) = &a.last_error {
            line.push_str(&format!("; last error: {e}"));
        }
    }
    line.push('.');
    line
}

fn job_row(j: &JobStatus, now: DateTime<Utc>) -> Vec<String> {
    let last = match &j.last_result {
        Some(r) => format!("{r} {}", ago(j.last_run_at, now)),
        None => "-".into(),
    };
    let success = match j.last_success_at {
        Some(_) => ago(j.last_success_at, now),
        None => "never".into(),
    };
    let next = if j.paused || !j.enabled {
        "-".into()
    } else {
        until(j.next_fire, now)
    };
    // Drills and standbys keep no backups: what they hold is more useful.
    let held = match (j.kind.as_str(), &j.standby) {
        ("standby", Some(s)) => format!("{} behind, at {}", span(s.lag_secs as i64), s.backup_id),
        ("standby", None) => "position not known yet".into(),
        ("drill", _) => "-".into(),
        _ => {
            let verified = j
                .last_verified
                .map(|t| format!(", drill passed {}", ago(Some(t), now)))
                .unwrap_or_default();
            format!(
                "{}, {}{verified}",
                j.backup_count,
                format_size(j.total_bytes)
            )
        }
    };
    vec![
        j.name.clone(),
        j.kind.clone(),
        state(j),
        last,
        success,
        next,
        held,
    ]
}

/// The human `status`: the daemon, alert delivery, one row per job.
pub(super) fn render_status(s: &Status, now: DateTime<Utc>) -> String {
    let mut out = format!(
        "mongo-backupd {} (pid {}), up {} since {}.\nConfiguration {}, loaded {} ({}).\n{}\n\n",
        s.version,
        s.pid,
        span(i64::try_from(s.uptime_secs).unwrap_or(i64::MAX)),
        when(s.started_at),
        s.config_file,
        when(s.config_loaded_at),
        ago(Some(s.config_loaded_at), now),
        alerts_line(s, now)
    );
    if s.jobs.is_empty() {
        out.push_str("No jobs are configured.\n");
        return out;
    }
    let header = [
        "NAME",
        "KIND",
        "STATE",
        "LAST RESULT",
        "LAST SUCCESS",
        "NEXT RUN",
        "BACKUPS",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    rows.extend(s.jobs.iter().map(|j| job_row(j, now)));
    let mut widths = vec![0; header.len()];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<w$}  "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

    use chrono::TimeZone;

    use super::*;
    use crate::daemon::api::{AlertStatus, Progress, RunInfo, RunState};

    #[test]
    fn control_spans_read_at_a_glance() {
        assert_eq!(span(-5), "0s");
        assert_eq!(span(45), "45s");
        assert_eq!(span(12 * 60 + 5), "12m");
        assert_eq!(span(3 * 3600 + 5 * 60), "3h 5m");
        assert_eq!(span(2 * 86400 + 4 * 3600 + 59), "2d 4h");
        assert_eq!(span(8 * 3600 + 30), "8h");
        assert_eq!(span(86400 + 59), "1d");
    }

    fn job(name: &str, activity: JobActivity, now: DateTime<Utc>) -> JobStatus {
        JobStatus {
            name: name.into(),
            kind: "full".into(),
            source: "prod".into(),
            storage: "local".into(),
            activity,
            run: None,
            paused: activity == JobActivity::Paused,
            enabled: activity != JobActivity::Disabled,
            last_result: Some("success".into()),
            last_run_at: Some(now - chrono::Duration::hours(8)),
            last_success_at: Some(now - chrono::Duration::hours(8)),
            last_duration_secs: Some(312.0),
            last_backup_bytes: Some(4 << 30),
            next_fire: Some(now + chrono::Duration::minutes(15 * 60 + 30)),
            backup_count: 14,
            total_bytes: 52 << 30,
            oplog_lag_secs: None,
            last_verified: None,
            standby: None,
            runs_succeeded: 3,
            runs_failed: 0,
        }
    }

    #[test]
    fn control_status_renders_as_a_table() {
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 10, 30, 0).unwrap();
        let mut running = job("prod-incr", JobActivity::Running, now);
        running.kind = "incremental".into();
        running.run = Some(RunInfo {
            id: 7,
            job: "prod-incr".into(),
            kind: "incremental".into(),
            state: RunState::Running,
            requested_by: None,
            note: None,
            queued_at: now,
            started_at: Some(now),
            finished_at: None,
            backup_id: None,
            error: None,
            progress: Progress {
                collections_done: 9,
                collections_total: 20,
                documents: 1000,
                bytes: 1288490189,
            },
            stored_bytes: None,
            documents: None,
        });
        let mut paused = job("archive", JobActivity::Paused, now);
        paused.last_result = Some("failed".into());
        paused.last_success_at = None;
        let status = Status {
            version: "0.1.0".into(),
            pid: 4242,
            started_at: now - chrono::Duration::hours(76),
            uptime_secs: 76 * 3600,
            config_file: "/etc/mongo-backupd/config.toml".into(),
            config_loaded_at: now - chrono::Duration::minutes(72),
            jobs: vec![job("prod-full", JobActivity::Idle, now), running, paused],
            alerts: AlertStatus {
                email_configured: true,
                queued: 2,
                failing_since: Some(now - chrono::Duration::minutes(30)),
                last_error: Some("connection refused".into()),
                ..AlertStatus::default()
            },
        };
        let want = "\
mongo-backupd 0.1.0 (pid 4242), up 3d 4h since 2026-11-18 06:30 UTC.
Configuration /etc/mongo-backupd/config.toml, loaded 2026-11-21 09:18 UTC (1h 12m ago).
Alerts: delivery FAILING since 2026-11-21 10:00 UTC (30m ago), 2 queued; last error: connection refused.

NAME       KIND         STATE                LAST RESULT     LAST SUCCESS  NEXT RUN    BACKUPS
prod-full  full         idle                 success 8h ago  8h ago        in 15h 30m  14, 52.0 GiB
prod-incr  incremental  running 45% 1.2 GiB  success 8h ago  8h ago        in 15h 30m  14, 52.0 GiB
archive    full         paused               failed 8h ago   never         -           14, 52.0 GiB
";
        assert_eq!(render_status(&status, now), want);
    }
}
