//! Mails as on-call reads them at 3 AM: a subject that sorts and filters
//! (`[prefix] STATUS what "job" on host`), then a plain-text body that says
//! what broke, where, since when, what was tried and what to do.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::event::{Event, Failure, GapRestart, JobRef, Operation, Recovery, Reseed, Stale};
use super::policy::{Mailing, Outgoing};
use crate::config::format_duration;

/// What every mail needs besides its event.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub prefix: &'a str,
    /// This machine's name: where the daemon runs.
    pub hostname: &'a str,
    pub config_path: &'a str,
    pub reminder: Duration,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// A timestamp as mails show it: UTC, to the second, unambiguous.
pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A span rounded to what a reader cares about (seconds under ten
/// minutes, minutes after that).
pub fn span(d: Duration) -> String {
    let secs = d.as_secs();
    let rounded = if secs >= 600 { secs / 60 * 60 } else { secs };
    format_duration(Duration::from_secs(rounded))
}

fn since(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    span((to - from).to_std().unwrap_or_default())
}

fn operation_of(job: &JobRef, op: Operation) -> String {
    match op {
        // Drills and standbys have no operation of their own: their run is
        // what fails or recovers.
        Operation::Backup => match job.kind.as_str() {
            "drill" => "restore drill".to_string(),
            "standby" => "standby sync".to_string(),
            kind => format!("{kind} backup"),
        },
        Operation::Retention => "retention".to_string(),
        Operation::Copy => "copy to other storage".to_string(),
    }
}

/// The subject without prefix or reminder marks: also the label under
/// which held-back mails are counted.
pub fn headline(event: &Event) -> String {
    match event {
        Event::Failed(f) => format!(
            "FAILED {} of job \"{}\" on {}",
            operation_of(&f.job, f.operation),
            f.job.job,
            f.job.first_host()
        ),
        Event::Gap(g) => match &g.full_job {
            Some(full) => format!(
                "OPLOG GAP in job \"{}\" on {}: full backup \"{full}\" started",
                g.job.job,
                g.job.first_host()
            ),
            None => format!(
                "OPLOG GAP in job \"{}\" on {}: chain broken, no full backup started",
                g.job.job,
                g.job.first_host()
            ),
        },
        Event::ReloadRejected { path, errors } => format!(
            "RELOAD REJECTED for {}: {} error{}",
            path.display(),
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        ),
        Event::Reseeded(r) => format!(
            "STANDBY RE-SEEDED: job \"{}\" on {} lost its chain",
            r.job.job,
            r.job.first_host()
        ),
        Event::Stale(s) => format!(
            "STALE {} of job \"{}\" on {}",
            match s.job.kind.as_str() {
                "drill" => "restore drills".to_string(),
                "standby" => "standby syncs".to_string(),
                kind => format!("{kind} backups"),
            },
            s.job.job,
            s.job.first_host()
        ),
        Event::SchedulerStuck { .. } => "SCHEDULER STUCK: no job is being started".to_string(),
        Event::SchedulerResumed { .. } => "RECOVERED scheduler running again".to_string(),
        Event::Recovered(r) => format!(
            "RECOVERED {} of job \"{}\" on {}",
            operation_of(&r.job, r.operation),
            r.job.job,
            r.job.first_host()
        ),
        Event::Test => "TEST alert".to_string(),
    }
}

pub fn render(out: &Outgoing, ctx: &Context<'_>) -> Rendered {
    let mut subject = match ctx.prefix {
        "" => String::new(),
        prefix => format!("{prefix} "),
    };
    if let Mailing::Reminder { since: from, .. } = &out.mailing {
        subject.push_str("REMINDER: ");
        subject.push_str(&headline(&out.event));
        let _ = write!(subject, " (since {})", since(*from, ctx.now));
    } else {
        subject.push_str(&headline(&out.event));
    }
    if let Event::Recovered(r) = &out.event {
        let _ = write!(subject, " after {}", since(r.broken_since, r.recovered_at));
    }
    if matches!(out.event, Event::Test) {
        let _ = write!(subject, " from mongo-backupd on {}", ctx.hostname);
    }

    let mut body = String::new();
    if let Mailing::Reminder {
        since: from,
        repeats,
        total,
    } = &out.mailing
    {
        let _ = writeln!(
            body,
            "REMINDER: this has been going on since {} ({} ago).",
            when(*from),
            since(*from, ctx.now)
        );
        if matches!(out.event, Event::Failed(_)) {
            let _ = writeln!(
                body,
                "{total} failed runs in all, {repeats} since the last mail. The details below are from the latest one."
            );
        }
        body.push('\n');
    }
    match &out.event {
        Event::Failed(f) => failure(&mut body, f, ctx),
        Event::Gap(g) => gap(&mut body, g),
        Event::Reseeded(r) => reseed(&mut body, r),
        Event::ReloadRejected { path, errors } => {
            let _ = writeln!(
                body,
                "The configuration {} was reloaded but has {} error{}, so the daemon is still running the previous configuration: nothing changed.\n",
                path.display(),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            body.push_str("Errors:\n");
            for e in errors {
                let _ = writeln!(body, "  {e}");
            }
            let _ = writeln!(
                body,
                "\nWhat to do:\n  Fix the file, check it with `mongo-backupd check-config --config {}`, then reload again (systemctl reload mongo-backupd).",
                path.display()
            );
        }
        Event::Stale(s) => stale(&mut body, s, ctx),
        Event::SchedulerStuck { last_tick } => {
            let _ = writeln!(
                body,
                "The daemon's scheduler last ran at {} ({} ago) although it wakes at least every 30 seconds, so no backup job is being started.\n\nWhat to do:\n  Look at the daemon's log (journalctl -u mongo-backupd) and restart it (systemctl restart mongo-backupd); running backups are cancelled cleanly after the shutdown grace period.",
                when(*last_tick),
                since(*last_tick, ctx.now)
            );
        }
        Event::SchedulerResumed { stuck_since } => {
            let _ = writeln!(
                body,
                "The daemon's scheduler is running again; it was stuck from {} for {}.",
                when(*stuck_since),
                since(*stuck_since, ctx.now)
            );
        }
        Event::Recovered(r) => recovered(&mut body, r),
        Event::Test => {
            let _ = writeln!(
                body,
                "This is a test alert sent with `mongo-backupd test-alert`: alert mails from this host reach you."
            );
        }
    }
    let _ = writeln!(body, "\nDaemon host:  {}", ctx.hostname);
    let _ = writeln!(body, "Config file:  {}", ctx.config_path);
    if out.event.persists() && matches!(out.mailing, Mailing::First) {
        let _ = writeln!(
            body,
            "\nYou get a reminder every {} while this lasts (reminder_interval), and a mail when it recovers.",
            span(ctx.reminder)
        );
    }
    if !out.suppressed.is_empty() {
        let count: u32 = out.suppressed.iter().map(|(_, n)| n).sum();
        let _ = writeln!(
            body,
            "\n{count} other alert{} held back by the hourly limit (max_per_hour) since the previous mail:",
            if count == 1 { " was" } else { "s were" }
        );
        for (headline, n) in &out.suppressed {
            let _ = writeln!(body, "  {n} x {headline}");
        }
    }
    Rendered { subject, body }
}

fn job_lines(body: &mut String, j: &JobRef) {
    let _ = writeln!(body, "Job:          {} ({})", j.job, j.kind);
    let _ = writeln!(body, "Source:       {} ({})", j.source, j.hosts);
    let _ = writeln!(body, "Storage:      {}", j.storage);
}

fn failure(body: &mut String, f: &Failure, ctx: &Context<'_>) {
    let what = operation_of(&f.job, f.operation);
    let _ = writeln!(body, "The {what} of job \"{}\" failed.\n", f.job.job);
    let _ = writeln!(body, "What broke:   {}", f.error);
    job_lines(body, &f.job);
    if let Some(id) = &f.backup_id {
        let note = match f.job.kind.as_str() {
            "drill" => "the backup the drill restored: do not count on it",
            "standby" => "the backup that could not be applied",
            _ => "incomplete: nothing was kept",
        };
        let _ = writeln!(body, "Backup id:    {id} ({note})");
    }
    let _ = writeln!(body, "Started:      {}", when(f.started));
    let _ = writeln!(body, "Duration:     {}", span(f.duration));
    match f.next_attempt {
        Some(next) => {
            let _ = writeln!(
                body,
                "Next attempt: {} (in {}, on the job's schedule)",
                when(next),
                since(ctx.now, next)
            );
        }
        None => {
            let _ = writeln!(
                body,
                "Next attempt: none scheduled (the job has no schedule)"
            );
        }
    }
    body.push_str("\nWhat to do:\n  ");
    match &f.advice {
        Some(a) => body.push_str(a),
        None => {
            let _ = write!(
                body,
                "Read the error above and the log lines below; fix the cause, then run the job by hand to check: mongo-backupd backup --job {}",
                f.job.job
            );
        }
    }
    body.push('\n');
    if !f.log_lines.is_empty() {
        body.push_str("\nLast log lines of this run:\n");
        for line in &f.log_lines {
            let _ = writeln!(body, "  {line}");
        }
    }
    let _ = writeln!(
        body,
        "\nRun history: mongo-backupd history --job {}",
        f.job.job
    );
}

fn gap(body: &mut String, g: &GapRestart) {
    let _ = writeln!(
        body,
        "Job \"{}\" found an oplog gap: its chain of incrementals cannot continue, and point-in-time restores are not possible across the gap.\n",
        g.job.job
    );
    let _ = writeln!(body, "What broke:   {}", g.error);
    job_lines(body, &g.job);
    match (&g.full_job, &g.reason) {
        (Some(full), _) => {
            let _ = writeln!(
                body,
                "\nWhat was done:\n  Full backup job \"{full}\" was started at once to begin a new chain; you get a separate mail if it fails."
            );
        }
        (None, reason) => {
            let _ = writeln!(
                body,
                "\nWhat to do:\n  {}",
                reason
                    .as_deref()
                    .unwrap_or("Run a full backup of this source now.")
            );
        }
    }
    body.push_str("\nTo avoid gaps: enlarge the oplog (replSetResizeOplog) or take incrementals more often.\n");
}

fn reseed(body: &mut String, r: &Reseed) {
    let _ = writeln!(
        body,
        "Standby job \"{}\" could not continue from where it stood, so it was seeded again from full backup {}. Until then it was not following the source.\n",
        r.job.job, r.full_id
    );
    let _ = writeln!(body, "What broke:   {}", r.reason);
    job_lines(body, &r.job);
    let _ = writeln!(
        body,
        "Now at:       {} (the source as of then)",
        when(r.position)
    );
    let _ = writeln!(
        body,
        "\nWhat to do:\n  Nothing for the standby itself: it follows the new chain from now on. Find out why the chain broke (an oplog gap mail, failed incrementals, or retention set shorter than the standby's schedule) so it does not happen again."
    );
}

fn stale(body: &mut String, s: &Stale, ctx: &Context<'_>) {
    match s.last_success {
        Some(t) => {
            let _ = writeln!(
                body,
                "Job \"{}\" has not completed a backup for {} (last success: {}); it is expected at least every {}.\n",
                s.job.job,
                since(t.max(s.watched_since), ctx.now),
                when(t),
                span(s.threshold)
            );
        }
        None => {
            let _ = writeln!(
                body,
                "Job \"{}\" has not completed any backup since the daemon started watching it at {} ({} ago); it is expected at least every {}.\n",
                s.job.job,
                when(s.watched_since),
                since(s.watched_since, ctx.now),
                span(s.threshold)
            );
        }
    }
    job_lines(body, &s.job);
    if let Some(t) = s.running_since {
        let _ = writeln!(
            body,
            "Running:      a run has been going since {} ({})",
            when(t),
            since(t, ctx.now)
        );
    }
    if s.skipped > 0 {
        let _ = writeln!(
            body,
            "Skipped:      {} scheduled runs, because the previous run was still going",
            s.skipped
        );
    }
    match s.next_fire {
        Some(t) => {
            let _ = writeln!(body, "Next run:     {}", when(t));
        }
        None => {
            let _ = writeln!(body, "Next run:     none scheduled");
        }
    }
    let _ = writeln!(
        body,
        "\nWhat to do:\n  Check `mongo-backupd history --job {job}` and the daemon's log: runs may be failing, hanging or skipped. If the job is paused or its schedule changed on purpose, adjust stale_after for it.",
        job = s.job.job
    );
}

fn recovered(body: &mut String, r: &Recovery) {
    let what = operation_of(&r.job, r.operation);
    let broken = since(r.broken_since, r.recovered_at);
    let _ = writeln!(
        body,
        "The {what} of job \"{}\" succeeded again at {}; it was broken for {broken} (since {}).",
        r.job.job,
        when(r.recovered_at),
        when(r.broken_since)
    );
    if r.failures > 0 {
        let _ = writeln!(
            body,
            "{} run{} failed meanwhile.",
            r.failures,
            if r.failures == 1 { "" } else { "s" }
        );
    }
    if r.was_stale {
        body.push_str("The job had been reported stale.\n");
    }
    body.push('\n');
    job_lines(body, &r.job);
    if let Some(id) = &r.backup_id {
        let _ = writeln!(body, "Backup id:    {id}");
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
