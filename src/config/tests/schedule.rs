//! Schedules: crontab semantics and DST-correct next fires, all pure (the
//! "now" is an input; nothing sleeps).

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::{full_job, parse_ok};
use crate::config::{next_fires, Schedule};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// The next `n` fires of `expr` in `tz` strictly after `from`.
fn fires(expr: &str, tz: Tz, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    let schedule = Schedule::parse(expr).unwrap();
    let mut out = Vec::new();
    let mut cursor = from;
    for _ in 0..n {
        cursor = schedule.next_after(cursor, tz).unwrap();
        out.push(cursor);
    }
    out
}

#[test]
fn next_after_is_exclusive() {
    let s = Schedule::parse("0 2 * * *").unwrap();
    assert_eq!(
        s.next_after(utc(2025, 6, 1, 1, 59, 59), Tz::UTC),
        Some(utc(2025, 6, 1, 2, 0, 0))
    );
    assert_eq!(
        s.next_after(utc(2025, 6, 1, 2, 0, 0), Tz::UTC),
        Some(utc(2025, 6, 2, 2, 0, 0))
    );
    // Sub-second starts: never a fire at or before `after`.
    let just_before = utc(2025, 6, 1, 1, 59, 59) + chrono::Duration::milliseconds(500);
    assert_eq!(
        s.next_after(just_before, Tz::UTC),
        Some(utc(2025, 6, 1, 2, 0, 0))
    );
    let just_after = utc(2025, 6, 1, 2, 0, 0) + chrono::Duration::milliseconds(500);
    assert_eq!(
        s.next_after(just_after, Tz::UTC),
        Some(utc(2025, 6, 2, 2, 0, 0))
    );
}

/// crontab(5): when both day fields are restricted, a day matching either
/// one fires. June 2025 starts on a Sunday.
#[test]
fn day_of_month_and_day_of_week_combine_with_or() {
    let from = utc(2025, 5, 31, 12, 0, 0);
    assert_eq!(
        fires("0 0 1 * MON", Tz::UTC, from, 4),
        vec![
            utc(2025, 6, 1, 0, 0, 0), // the 1st, a Sunday
            utc(2025, 6, 2, 0, 0, 0), // a Monday
            utc(2025, 6, 9, 0, 0, 0),
            utc(2025, 6, 16, 0, 0, 0),
        ]
    );
    // With one day field `*`, only the other one counts.
    assert_eq!(
        fires("0 0 1 * *", Tz::UTC, from, 2),
        vec![utc(2025, 6, 1, 0, 0, 0), utc(2025, 7, 1, 0, 0, 0)]
    );
    assert_eq!(
        fires("0 0 * * MON", Tz::UTC, from, 2),
        vec![utc(2025, 6, 2, 0, 0, 0), utc(2025, 6, 9, 0, 0, 0)]
    );
    // `?` is the same as `*`.
    assert_eq!(
        fires("0 0 1 * ?", Tz::UTC, from, 1),
        vec![utc(2025, 6, 1, 0, 0, 0)]
    );
    let s = Schedule::parse("0 0 1 * MON").unwrap();
    assert!(!s.cron().pattern.matches_dom_and_dow());
}

#[test]
fn six_fields_put_seconds_first() {
    assert_eq!(
        fires("30 0 2 * * *", Tz::UTC, utc(2025, 6, 1, 0, 0, 0), 2),
        vec![utc(2025, 6, 1, 2, 0, 30), utc(2025, 6, 2, 2, 0, 30)]
    );
    assert_eq!(
        fires("*/20 * * * * *", Tz::UTC, utc(2025, 6, 1, 0, 0, 0), 3),
        vec![
            utc(2025, 6, 1, 0, 0, 20),
            utc(2025, 6, 1, 0, 0, 40),
            utc(2025, 6, 1, 0, 1, 0)
        ]
    );
}

#[test]
fn shortcuts() {
    let from = utc(2025, 6, 4, 12, 30, 0); // a Wednesday
    let first = |expr: &str| fires(expr, Tz::UTC, from, 1)[0];
    assert_eq!(first("@hourly"), utc(2025, 6, 4, 13, 0, 0));
    assert_eq!(first("@daily"), utc(2025, 6, 5, 0, 0, 0));
    assert_eq!(first("@midnight"), utc(2025, 6, 5, 0, 0, 0));
    assert_eq!(first("@weekly"), utc(2025, 6, 8, 0, 0, 0)); // Sunday
    assert_eq!(first("@monthly"), utc(2025, 7, 1, 0, 0, 0));
    assert_eq!(first("@yearly"), utc(2026, 1, 1, 0, 0, 0));
    assert_eq!(first("@annually"), utc(2026, 1, 1, 0, 0, 0));
    assert_eq!(first("@Daily"), utc(2025, 6, 5, 0, 0, 0));
}

/// Europe/Berlin springs forward on 2025-03-30 at 02:00 CET to 03:00 CEST:
/// 02:30 does not exist that day, so the job runs once, at 03:00 CEST.
#[test]
fn berlin_spring_forward_runs_once_after_the_gap() {
    assert_eq!(
        fires(
            "30 2 * * *",
            Tz::Europe__Berlin,
            utc(2025, 3, 29, 12, 0, 0),
            3
        ),
        vec![
            utc(2025, 3, 30, 1, 0, 0),  // 03:00 CEST
            utc(2025, 3, 31, 0, 30, 0), // 02:30 CEST
            utc(2025, 4, 1, 0, 30, 0),
        ]
    );
}

/// Europe/Berlin falls back on 2025-10-26 at 03:00 CEST to 02:00 CET:
/// 02:30 happens twice, the job runs once, on the first pass.
#[test]
fn berlin_fall_back_runs_once() {
    assert_eq!(
        fires(
            "30 2 * * *",
            Tz::Europe__Berlin,
            utc(2025, 10, 25, 12, 0, 0),
            2
        ),
        vec![
            utc(2025, 10, 26, 0, 30, 0), // 02:30 CEST
            utc(2025, 10, 27, 1, 30, 0), // 02:30 CET, the next day
        ]
    );
    // Starting inside the repeated hour (02:45 CEST) does not pick up the
    // second 02:30 either.
    let s = Schedule::parse("30 2 * * *").unwrap();
    assert_eq!(
        s.next_after(utc(2025, 10, 26, 0, 45, 0), Tz::Europe__Berlin),
        Some(utc(2025, 10, 27, 1, 30, 0))
    );
}

/// Wildcard hours keep firing every real hour through both changes.
#[test]
fn hourly_jobs_follow_real_hours_through_dst() {
    let berlin = Tz::Europe__Berlin;
    assert_eq!(
        fires("0 * * * *", berlin, utc(2025, 10, 25, 23, 30, 0), 3),
        vec![
            utc(2025, 10, 26, 0, 0, 0),
            utc(2025, 10, 26, 1, 0, 0),
            utc(2025, 10, 26, 2, 0, 0)
        ]
    );
    assert_eq!(
        fires("0 * * * *", berlin, utc(2025, 3, 29, 23, 30, 0), 3),
        vec![
            utc(2025, 3, 30, 0, 0, 0),
            utc(2025, 3, 30, 1, 0, 0),
            utc(2025, 3, 30, 2, 0, 0)
        ]
    );
}

/// America/New_York: 2025-03-09 02:00 EST -> 03:00 EDT, 2025-11-02
/// 02:00 EDT -> 01:00 EST (01:30 happens twice).
#[test]
fn new_york_dst() {
    let ny = Tz::America__New_York;
    assert_eq!(
        fires("30 2 * * *", ny, utc(2025, 3, 8, 12, 0, 0), 3),
        vec![
            utc(2025, 3, 9, 7, 0, 0),   // 03:00 EDT, after the gap
            utc(2025, 3, 10, 6, 30, 0), // 02:30 EDT
            utc(2025, 3, 11, 6, 30, 0),
        ]
    );
    assert_eq!(
        fires("30 1 * * *", ny, utc(2025, 11, 1, 12, 0, 0), 3),
        vec![
            utc(2025, 11, 2, 5, 30, 0), // 01:30 EDT, first pass only
            utc(2025, 11, 3, 6, 30, 0), // 01:30 EST
            utc(2025, 11, 4, 6, 30, 0),
        ]
    );
}

#[test]
fn leap_day() {
    assert_eq!(
        fires("0 0 29 2 *", Tz::UTC, utc(2025, 1, 1, 0, 0, 0), 2),
        vec![utc(2028, 2, 29, 0, 0, 0), utc(2032, 2, 29, 0, 0, 0)]
    );
    assert_eq!(
        fires("0 0 29 2 *", Tz::UTC, utc(2024, 2, 29, 0, 0, 0), 1),
        vec![utc(2028, 2, 29, 0, 0, 0)]
    );
    // 2100 is not a leap year: eight years between leap days.
    assert_eq!(
        fires("0 0 29 2 *", Tz::UTC, utc(2097, 1, 1, 0, 0, 0), 1),
        vec![utc(2104, 2, 29, 0, 0, 0)]
    );
    // The last day of February, leap year or not.
    assert_eq!(
        fires("0 0 L 2 *", Tz::UTC, utc(2027, 1, 1, 0, 0, 0), 2),
        vec![utc(2027, 2, 28, 0, 0, 0), utc(2028, 2, 29, 0, 0, 0)]
    );
}

#[test]
fn year_boundary() {
    assert_eq!(
        fires("0 0 1 1 *", Tz::UTC, utc(2025, 12, 31, 23, 59, 59), 1),
        vec![utc(2026, 1, 1, 0, 0, 0)]
    );
    assert_eq!(
        fires("59 23 31 12 *", Tz::UTC, utc(2025, 12, 31, 23, 59, 0), 1),
        vec![utc(2026, 12, 31, 23, 59, 0)]
    );
    assert_eq!(
        fires("*/30 * * * *", Tz::UTC, utc(2025, 12, 31, 23, 45, 0), 2),
        vec![utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 1, 0, 30, 0)]
    );
    // New Year in Berlin is 23:00 UTC the day before.
    assert_eq!(
        fires("@yearly", Tz::Europe__Berlin, utc(2025, 6, 1, 0, 0, 0), 1),
        vec![utc(2025, 12, 31, 23, 0, 0)]
    );
}

#[test]
fn next_fires_uses_the_jobs_zone() {
    let config = parse_ok(&full_job("timezone = \"Europe/Berlin\"\n"));
    let job = &config.jobs["prod-full"];
    let from = utc(2025, 7, 1, 0, 0, 0);
    assert_eq!(
        next_fires(job, from, 2),
        vec![utc(2025, 7, 2, 0, 0, 0), utc(2025, 7, 3, 0, 0, 0)]
    );
    assert!(next_fires(job, from, 0).is_empty());

    // Without a zone of its own, a job uses the daemon's.
    let text = format!(
        "[daemon]\ntimezone = \"America/New_York\"\n\n{}",
        full_job("")
    );
    let config = parse_ok(&text);
    let job = &config.jobs["prod-full"];
    assert_eq!(job.timezone, Tz::America__New_York);
    assert_eq!(next_fires(job, from, 1), vec![utc(2025, 7, 1, 6, 0, 0)]);
}

#[test]
fn schedule_keeps_its_text() {
    let s: Schedule = " 0 2 * * * ".parse().unwrap();
    assert_eq!(s.as_str(), "0 2 * * *");
    assert_eq!(s.to_string(), "0 2 * * *");
    assert_eq!(s, Schedule::parse("0 2 * * *").unwrap());
    assert_ne!(s, Schedule::parse("@daily").unwrap());
}
