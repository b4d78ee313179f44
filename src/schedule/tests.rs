//! Tests of the scheduling decisions, all pure: times are values, nothing
//! sleeps. Helpers shared by the test modules live here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod decisions;
mod dst;
mod state;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::{JobState, JobTiming};
use crate::config::Schedule;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn timing(expr: &str, tz: Tz) -> JobTiming {
    JobTiming {
        name: "job".to_string(),
        schedule: Schedule::parse(expr).unwrap(),
        tz,
        catch_up: None,
        enabled: true,
    }
}

fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3600)
}

/// A daemon that wakes every `step` (plus a varying sub-second lag, as real
/// wakes have) from `start` to `end`, whose runs end at once: the fires it
/// starts, in order.
fn simulate(
    job: &JobTiming,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: chrono::TimeDelta,
) -> Vec<DateTime<Utc>> {
    let mut state = JobState::new(Some(start));
    let mut fires = Vec::new();
    let mut now = start;
    let mut wake = 0_i64;
    while now <= end {
        let lag = chrono::TimeDelta::milliseconds((wake * 137) % 1000);
        if let Some(super::FireOutcome::Fired { scheduled }) = state.apply_tick(job, now + lag) {
            fires.push(scheduled);
            state.finish();
        }
        now += step;
        wake += 1;
    }
    fires
}

#[test]
fn longest_gap_is_what_a_healthy_job_may_wait() {
    let now = utc(2026, 11, 18, 12, 0, 0); // a Wednesday
    let daily = timing("0 2 * * *", Tz::UTC);
    assert_eq!(super::longest_gap(&daily, now, 20), Some(hours(24)));
    // Weekdays only: the weekend is the longest wait.
    let weekdays = timing("0 2 * * 1-5", Tz::UTC);
    assert_eq!(super::longest_gap(&weekdays, now, 20), Some(hours(72)));
    let every_10s = timing("*/10 * * * * *", Tz::UTC);
    assert_eq!(
        super::longest_gap(&every_10s, now, 20),
        Some(Duration::from_secs(10))
    );
}
