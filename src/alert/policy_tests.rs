//! The noise rules over simulated time: nothing sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::alert::event::{Failure, GapRestart};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 3, 0, 0).unwrap()
}

fn mins(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

fn job(name: &str) -> JobRef {
    JobRef {
        job: name.into(),
        kind: "full".into(),
        source: "prod".into(),
        hosts: "db1:27017".into(),
        storage: "local".into(),
    }
}

fn failed(name: &str, at: DateTime<Utc>) -> Event {
    Event::Failed(Failure {
        job: job(name),
        operation: Operation::Backup,
        backup_id: Some("full-x".into()),
        started: at,
        duration: Duration::from_secs(30),
        error: "cannot reach MongoDB at db1:27017".into(),
        advice: None,
        log_lines: vec![],
        next_attempt: None,
    })
}

fn limits(max_per_hour: u32) -> Limits {
    Limits {
        reminder: Duration::from_secs(6 * 3600),
        max_per_hour,
    }
}

#[test]
fn a_failing_job_mails_once_then_reminds_then_recovers() {
    let mut s = AlertState::new(limits(20));
    let first = s.raise(failed("prod-full", t0()), t0()).unwrap();
    assert_eq!(first.mailing, Mailing::First);
    // Hourly retries fail the same way: no more mail...
    for h in 1..6 {
        let now = t0() + chrono::Duration::hours(h);
        assert!(s.raise(failed("prod-full", now), now).is_none());
        assert!(s.tick(now).is_empty());
    }
    // ...until the reminder interval has passed.
    let six = t0() + chrono::Duration::hours(6);
    let reminders = s.tick(six);
    assert_eq!(reminders.len(), 1);
    assert_eq!(
        reminders[0].mailing,
        Mailing::Reminder {
            since: t0(),
            repeats: 5,
            total: 6
        }
    );
    assert!(
        s.tick(six + mins(1)).is_empty(),
        "one reminder per interval"
    );
    let later = six + mins(90);
    let recovered = s
        .succeeded(
            &job("prod-full"),
            Operation::Backup,
            Some("full-y".into()),
            later,
        )
        .unwrap();
    match recovered.event {
        Event::Recovered(r) => {
            assert_eq!(r.broken_since, t0());
            assert_eq!(r.failures, 6);
            assert_eq!(r.backup_id.as_deref(), Some("full-y"));
        }
        other => panic!("expected a recovery, got {other:?}"),
    }
    // Healthy again: the next failure is news.
    assert!(s
        .succeeded(&job("prod-full"), Operation::Backup, None, later)
        .is_none());
    assert!(s.raise(failed("prod-full", later), later).is_some());
}

#[test]
fn the_hourly_limit_holds_mails_back_and_the_next_mail_counts_them() {
    let mut s = AlertState::new(limits(3));
    let now = t0();
    let sent: Vec<_> = (0..5)
        .filter_map(|i| s.raise(failed(&format!("job{i}"), now), now))
        .collect();
    assert_eq!(sent.len(), 3);
    assert_eq!(s.pending_suppressed(), 2);
    // Still within the hour: nothing more leaves.
    assert!(s.tick(now + mins(59)).is_empty());
    // An hour later the held-back first mails go out, the first one
    // listing what was held back.
    let later = s.tick(now + mins(60));
    assert_eq!(later.len(), 2);
    assert_eq!(
        later[0].suppressed,
        vec![
            ("FAILED full backup of job \"job3\" on db1".to_string(), 1),
            ("FAILED full backup of job \"job4\" on db1".to_string(), 1)
        ]
    );
    assert!(later[1].suppressed.is_empty());
    assert!(later.iter().all(|o| o.mailing == Mailing::First));
}

#[test]
fn one_off_events_are_grouped_within_the_reminder_interval() {
    let mut s = AlertState::new(limits(20));
    let gap = || {
        Event::Gap(GapRestart {
            job: job("prod-inc"),
            error: "oplog gap".into(),
            full_job: Some("prod-full".into()),
            reason: None,
        })
    };
    assert!(s.raise(gap(), t0()).is_some());
    assert!(s.raise(gap(), t0() + mins(30)).is_none());
    let next = s
        .raise(failed("other", t0() + mins(31)), t0() + mins(31))
        .unwrap();
    assert_eq!(
        next.suppressed,
        vec![(
            "OPLOG GAP in job \"prod-inc\" on db1: full backup \"prod-full\" started".to_string(),
            1
        )]
    );
    assert!(s.raise(gap(), t0() + chrono::Duration::hours(7)).is_some());
}

#[test]
fn a_rejected_reload_mails_once_per_distinct_list_of_errors() {
    let mut s = AlertState::new(limits(20));
    let rejected = |errors: &[&str]| Event::ReloadRejected {
        path: "/etc/mongo-backupd/config.toml".into(),
        errors: errors.iter().map(|e| e.to_string()).collect(),
    };
    assert!(s.raise(rejected(&["a:1:1: bad"]), t0()).is_some());
    assert!(s.raise(rejected(&["a:1:1: bad"]), t0() + mins(1)).is_none());
    assert!(s
        .raise(rejected(&["a:2:1: other"]), t0() + mins(2))
        .is_some());
    s.reload_accepted();
    assert!(s.raise(rejected(&["a:1:1: bad"]), t0() + mins(3)).is_some());
}

#[test]
fn stale_then_success_is_one_recovery_naming_both() {
    let mut s = AlertState::new(limits(20));
    let stale = Event::Stale(crate::alert::event::Stale {
        job: job("prod-full"),
        last_success: None,
        watched_since: t0(),
        threshold: Duration::from_secs(3600),
        skipped: 2,
        running_since: None,
        next_fire: None,
    });
    assert!(s.raise(stale.clone(), t0()).is_some());
    assert!(
        s.raise(stale, t0() + mins(1)).is_none(),
        "checked again: same condition"
    );
    assert!(s
        .raise(failed("prod-full", t0() + mins(5)), t0() + mins(5))
        .is_some());
    let r = s
        .succeeded(&job("prod-full"), Operation::Backup, None, t0() + mins(10))
        .unwrap();
    let Event::Recovered(r) = r.event else {
        panic!("expected a recovery")
    };
    assert!(r.was_stale);
    assert_eq!((r.failures, r.broken_since), (1, t0()));
    assert!(!s.is_active(&Key::Stale("prod-full".into())));
}

/// A small deterministic generator: the test needs variety, not quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn random_histories_respect_the_cap_and_lose_no_count() {
    for seed in 1..200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let max = 1 + rng.next(5) as u32;
        let mut s = AlertState::new(Limits {
            reminder: Duration::from_secs(60 * (1 + rng.next(180))),
            max_per_hour: max,
        });
        let mut now = t0();
        let mut sent: Vec<DateTime<Utc>> = Vec::new();
        let mut reported = 0u32;
        for _ in 0..300 {
            now += chrono::Duration::seconds(rng.next(900) as i64);
            let name = format!("job{}", rng.next(6));
            let out: Vec<Outgoing> = match rng.next(4) {
                0 | 1 => s.raise(failed(&name, now), now).into_iter().collect(),
                2 => s
                    .succeeded(&job(&name), Operation::Backup, None, now)
                    .into_iter()
                    .collect(),
                _ => s.tick(now),
            };
            for o in &out {
                sent.push(now);
                reported += o.suppressed.iter().map(|(_, n)| n).sum::<u32>();
            }
        }
        for (i, t) in sent.iter().enumerate() {
            let in_hour = sent[i..]
                .iter()
                .take_while(|u| **u - *t < chrono::Duration::hours(1))
                .count();
            assert!(
                in_hour <= max as usize,
                "seed {seed}: {in_hour} mails within an hour, max {max}"
            );
        }
        // Every mail held back is either reported in a later mail or
        // still pending: none is lost, none counted twice.
        assert_eq!(
            u64::from(reported + s.pending_suppressed()),
            s.suppressed_total(),
            "seed {seed}"
        );
    }
}
