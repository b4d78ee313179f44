//! What on-call reads: subjects and bodies of each kind of mail.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::alert::event::{Failure, Recovery};

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, h, m, 0).unwrap()
}

fn job() -> JobRef {
    JobRef {
        job: "prod-full".into(),
        kind: "full".into(),
        source: "prod".into(),
        hosts: "db1:27017,db2:27017".into(),
        storage: "local (/var/backups/mongo)".into(),
    }
}

fn ctx(now: DateTime<Utc>) -> Context<'static> {
    Context {
        prefix: "[mongo-backupd]",
        hostname: "backup1",
        config_path: "/etc/mongo-backupd/config.toml",
        reminder: Duration::from_secs(6 * 3600),
        now,
    }
}

fn failure() -> Event {
    Event::Failed(Failure {
        job: job(),
        operation: Operation::Backup,
        backup_id: Some("full-20261121T020000Z".into()),
        started: at(2, 0),
        duration: Duration::from_secs(31),
        error: "cannot reach MongoDB at db1:27017,db2:27017: Server selection timeout".into(),
        advice: Some("Check that MongoDB is running and reachable from this host.".into()),
        log_lines: vec![
            "02:00:00.001  INFO Backup started. backup_id=full-20261121T020000Z".into(),
        ],
        next_attempt: Some(at(2, 0) + chrono::Duration::days(1)),
    })
}

fn first(event: Event) -> Outgoing {
    Outgoing {
        event,
        mailing: Mailing::First,
        suppressed: vec![],
    }
}

#[test]
fn a_failure_mail_says_what_where_when_and_what_to_do() {
    let mail = render(&first(failure()), &ctx(at(2, 1)));
    assert_eq!(
        mail.subject,
        "[mongo-backupd] FAILED full backup of job \"prod-full\" on db1"
    );
    for needle in [
        "The full backup of job \"prod-full\" failed.",
        "What broke:   cannot reach MongoDB at db1:27017,db2:27017: Server selection timeout",
        "Job:          prod-full (full)",
        "Source:       prod (db1:27017,db2:27017)",
        "Storage:      local (/var/backups/mongo)",
        "Backup id:    full-20261121T020000Z (incomplete: nothing was kept)",
        "Started:      2026-11-21 02:00:00 UTC",
        "Duration:     31s",
        "Next attempt: 2026-11-22 02:00:00 UTC (in 23h59m, on the job's schedule)",
        "What to do:\n  Check that MongoDB is running and reachable from this host.",
        "Last log lines of this run:\n  02:00:00.001  INFO Backup started.",
        "Daemon host:  backup1",
        "You get a reminder every 6h while this lasts",
    ] {
        assert!(
            mail.body.contains(needle),
            "missing {needle:?} in:\n{}",
            mail.body
        );
    }
}

#[test]
fn reminders_and_recoveries_say_since_when() {
    let reminder = Outgoing {
        event: failure(),
        mailing: Mailing::Reminder {
            since: at(2, 0),
            repeats: 5,
            total: 6,
        },
        suppressed: vec![("STALE full backups of job \"x\" on db9".into(), 2)],
    };
    let mail = render(&reminder, &ctx(at(8, 0)));
    assert_eq!(
        mail.subject,
        "[mongo-backupd] REMINDER: FAILED full backup of job \"prod-full\" on db1 (since 6h)"
    );
    assert!(mail.body.starts_with(
        "REMINDER: this has been going on since 2026-11-21 02:00:00 UTC (6h ago).\n6 failed runs in all, 5 since the last mail."
    ));
    assert!(mail.body.contains(
        "2 other alerts were held back by the hourly limit (max_per_hour) since the previous mail:\n  2 x STALE full backups of job \"x\" on db9"
    ));
    assert!(!mail.body.contains("You get a reminder"));

    let recovered = Event::Recovered(Recovery {
        job: job(),
        operation: Operation::Backup,
        broken_since: at(2, 0),
        recovered_at: at(5, 12),
        failures: 4,
        was_stale: false,
        backup_id: Some("full-20261121T051200Z".into()),
    });
    let mail = render(&first(recovered), &ctx(at(5, 12)));
    assert_eq!(
        mail.subject,
        "[mongo-backupd] RECOVERED full backup of job \"prod-full\" on db1 after 3h12m"
    );
    assert!(mail
        .body
        .contains("it was broken for 3h12m (since 2026-11-21 02:00:00 UTC)"));
    assert!(mail.body.contains("4 runs failed meanwhile."));
}

#[test]
fn a_rejected_reload_lists_every_error() {
    let event = Event::ReloadRejected {
        path: "/etc/mongo-backupd/config.toml".into(),
        errors: vec![
            "/etc/mongo-backupd/config.toml:3:1: jobs.a.shedule: unknown key \"shedule\"".into(),
            "/etc/mongo-backupd/config.toml:9:8: jobs.b.kind: invalid job kind".into(),
        ],
    };
    let mail = render(&first(event), &ctx(at(9, 0)));
    assert_eq!(
        mail.subject,
        "[mongo-backupd] RELOAD REJECTED for /etc/mongo-backupd/config.toml: 2 errors"
    );
    assert!(mail
        .body
        .contains("still running the previous configuration"));
    assert!(mail
        .body
        .contains("  /etc/mongo-backupd/config.toml:3:1: jobs.a.shedule"));
    assert!(mail
        .body
        .contains("  /etc/mongo-backupd/config.toml:9:8: jobs.b.kind"));
    assert!(mail
        .body
        .contains("mongo-backupd check-config --config /etc/mongo-backupd/config.toml"));
}
