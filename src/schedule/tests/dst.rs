//! DST: a daily 02:30 job in Europe/Berlin and America/New_York across
//! spring-forward and fall-back never fires twice and never skips a day,
//! whether the daemon runs through the change (wakes every 30 s) or starts
//! around it.
//!
//! Europe/Berlin 2025: 30 March 02:00 CET -> 03:00 CEST (02:30 does not
//! exist), 26 October 03:00 CEST -> 02:00 CET (02:30 happens twice).
//! America/New_York 2025: 9 March 02:00 EST -> 03:00 EDT, 2 November
//! 02:00 EDT -> 01:00 EST (01:00-02:00 happens twice).

use chrono::TimeDelta;
use chrono_tz::Tz;

use super::{hours, simulate, timing, utc};
use crate::schedule::{catch_up_window, due, on_startup, StartupDecision};

const WAKE: TimeDelta = TimeDelta::seconds(30);

#[test]
fn berlin_spring_forward_fires_once_after_the_gap() {
    let job = timing("30 2 * * *", Tz::Europe__Berlin);
    assert_eq!(
        simulate(
            &job,
            utc(2025, 3, 28, 0, 0, 0),
            utc(2025, 4, 1, 0, 0, 0),
            WAKE
        ),
        vec![
            utc(2025, 3, 28, 1, 30, 0), // 02:30 CET
            utc(2025, 3, 29, 1, 30, 0),
            utc(2025, 3, 30, 1, 0, 0),  // 03:00 CEST, right after the gap
            utc(2025, 3, 31, 0, 30, 0), // 02:30 CEST
        ]
    );
}

#[test]
fn berlin_fall_back_fires_once_on_the_first_pass() {
    let job = timing("30 2 * * *", Tz::Europe__Berlin);
    assert_eq!(
        simulate(
            &job,
            utc(2025, 10, 24, 0, 0, 0),
            utc(2025, 10, 29, 0, 0, 0),
            WAKE
        ),
        vec![
            utc(2025, 10, 24, 0, 30, 0),
            utc(2025, 10, 25, 0, 30, 0),
            utc(2025, 10, 26, 0, 30, 0), // 02:30 CEST; not again at 02:30 CET
            utc(2025, 10, 27, 1, 30, 0), // 02:30 CET
            utc(2025, 10, 28, 1, 30, 0),
        ]
    );
    // The second 02:30 (01:30 UTC) is never due after the first fired.
    let fired = utc(2025, 10, 26, 0, 30, 0);
    for minute in [29, 30, 31, 59] {
        assert_eq!(due(&job, fired, utc(2025, 10, 26, 1, minute, 0)), None);
    }
}

#[test]
fn berlin_startup_around_the_changes() {
    let job = timing("30 2 * * *", Tz::Europe__Berlin);
    // Down across the gap: the day's run (03:00 CEST) happens at start.
    assert_eq!(
        on_startup(
            &job,
            Some(utc(2025, 3, 29, 1, 30, 0)),
            utc(2025, 3, 30, 2, 0, 0)
        ),
        StartupDecision::RunNow {
            missed: utc(2025, 3, 30, 1, 0, 0),
            older: vec![],
            skipped_count: 0,
            count_is_lower_bound: false,
        }
    );
    // Restarted during the second 02:30 after the first one ran: nothing.
    assert_eq!(
        on_startup(
            &job,
            Some(utc(2025, 10, 26, 0, 30, 0)),
            utc(2025, 10, 26, 1, 40, 0)
        ),
        StartupDecision::NothingMissed
    );
    // Down over the first 02:30, started during the second: one run, for
    // the first pass, and the second pass is not due afterwards.
    assert_eq!(
        on_startup(
            &job,
            Some(utc(2025, 10, 25, 0, 30, 0)),
            utc(2025, 10, 26, 1, 40, 0)
        ),
        StartupDecision::RunNow {
            missed: utc(2025, 10, 26, 0, 30, 0),
            older: vec![],
            skipped_count: 0,
            count_is_lower_bound: false,
        }
    );
    assert_eq!(
        due(
            &job,
            utc(2025, 10, 26, 0, 30, 0),
            utc(2025, 10, 27, 1, 29, 59)
        ),
        None
    );
    assert_eq!(
        due(
            &job,
            utc(2025, 10, 26, 0, 30, 0),
            utc(2025, 10, 27, 1, 30, 0)
        ),
        Some(utc(2025, 10, 27, 1, 30, 0))
    );
    // With a 1 h catch-up, a start 90 min after the post-gap fire reports it.
    let mut strict = job.clone();
    strict.catch_up = Some(hours(1));
    assert_eq!(
        on_startup(
            &strict,
            Some(utc(2025, 3, 29, 1, 30, 0)),
            utc(2025, 3, 30, 2, 30, 0)
        ),
        StartupDecision::Missed {
            missed: vec![utc(2025, 3, 30, 1, 0, 0)],
            skipped_count: 1,
            count_is_lower_bound: false,
            latest: utc(2025, 3, 30, 1, 0, 0),
        }
    );
}

#[test]
fn berlin_catch_up_windows_are_real_elapsed_time() {
    let job = timing("30 2 * * *", Tz::Europe__Berlin);
    let minutes = |m: u64| std::time::Duration::from_secs(m * 60);
    // 02:30 CET -> 03:00 CEST and 03:00 CEST -> 02:30 CEST: 23 h 30 min.
    assert_eq!(
        catch_up_window(&job, utc(2025, 3, 30, 1, 0, 0)),
        minutes(23 * 60 + 30)
    );
    assert_eq!(
        catch_up_window(&job, utc(2025, 3, 31, 0, 30, 0)),
        minutes(23 * 60 + 30)
    );
    assert_eq!(
        catch_up_window(&job, utc(2025, 10, 26, 0, 30, 0)),
        hours(24)
    );
    assert_eq!(
        catch_up_window(&job, utc(2025, 10, 27, 1, 30, 0)),
        hours(25)
    );
    // Hourly jobs fire on both passes of the repeated hour: 1 h apart.
    let hourly = timing("0 * * * *", Tz::Europe__Berlin);
    assert_eq!(
        catch_up_window(&hourly, utc(2025, 10, 26, 1, 0, 0)),
        hours(1)
    );
}

#[test]
fn new_york_daily_0230_across_both_changes() {
    let job = timing("30 2 * * *", Tz::America__New_York);
    assert_eq!(
        simulate(
            &job,
            utc(2025, 3, 7, 12, 0, 0),
            utc(2025, 3, 11, 12, 0, 0),
            WAKE
        ),
        vec![
            utc(2025, 3, 8, 7, 30, 0),  // 02:30 EST
            utc(2025, 3, 9, 7, 0, 0),   // 03:00 EDT, right after the gap
            utc(2025, 3, 10, 6, 30, 0), // 02:30 EDT
            utc(2025, 3, 11, 6, 30, 0),
        ]
    );
    // 02:30 is after New York's repeated hour: it happens once, in EST.
    assert_eq!(
        simulate(
            &job,
            utc(2025, 10, 31, 12, 0, 0),
            utc(2025, 11, 4, 12, 0, 0),
            WAKE
        ),
        vec![
            utc(2025, 11, 1, 6, 30, 0), // 02:30 EDT
            utc(2025, 11, 2, 7, 30, 0), // 02:30 EST
            utc(2025, 11, 3, 7, 30, 0),
            utc(2025, 11, 4, 7, 30, 0),
        ]
    );
    assert_eq!(
        on_startup(
            &job,
            Some(utc(2025, 3, 8, 7, 30, 0)),
            utc(2025, 3, 9, 12, 0, 0)
        ),
        StartupDecision::RunNow {
            missed: utc(2025, 3, 9, 7, 0, 0),
            older: vec![],
            skipped_count: 0,
            count_is_lower_bound: false,
        }
    );
    assert_eq!(catch_up_window(&job, utc(2025, 11, 2, 7, 30, 0)), hours(25));
}

#[test]
fn new_york_repeated_hour() {
    // 01:30 happens twice on 2 November; the job runs on the first pass.
    let job = timing("30 1 * * *", Tz::America__New_York);
    assert_eq!(
        simulate(
            &job,
            utc(2025, 11, 1, 12, 0, 0),
            utc(2025, 11, 3, 12, 0, 0),
            WAKE
        ),
        vec![
            utc(2025, 11, 2, 5, 30, 0), // 01:30 EDT
            utc(2025, 11, 3, 6, 30, 0), // 01:30 EST
        ]
    );
    // Restarted between the passes after the first ran: nothing missed.
    assert_eq!(
        on_startup(
            &job,
            Some(utc(2025, 11, 2, 5, 30, 0)),
            utc(2025, 11, 2, 6, 45, 0)
        ),
        StartupDecision::NothingMissed
    );
    // An hourly job runs every real hour: 25 on the long local day.
    let hourly = timing("0 * * * *", Tz::America__New_York);
    let fires = simulate(
        &hourly,
        utc(2025, 11, 2, 4, 0, 0),
        utc(2025, 11, 3, 5, 0, 0),
        WAKE,
    );
    assert_eq!(fires.len(), 25);
    assert!(fires.windows(2).all(|w| w[1] - w[0] == TimeDelta::hours(1)));
}

/// The bisection that finds the latest fire agrees with walking the chain
/// of `next_after` calls, for random ranges across both Berlin changes.
#[test]
fn bisection_agrees_with_walking_the_chain() {
    use crate::schedule::search::{fires_in, latest_in};

    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut random = |below: i64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        i64::try_from(seed % u64::try_from(below).unwrap()).unwrap()
    };
    for (expr, max_span) in [
        ("*/7 * * * *", 6 * 3600),
        ("0 * * * *", 24 * 3600),
        ("30 2 * * *", 3 * 86_400),
        ("15,45 1-3 * * *", 86_400),
        ("*/13 * * * * *", 600),
    ] {
        let job = timing(expr, Tz::Europe__Berlin);
        for base in [utc(2025, 3, 29, 0, 0, 0), utc(2025, 10, 25, 0, 0, 0)] {
            for _ in 0..40 {
                let lo = base
                    + TimeDelta::seconds(random(2 * 86_400))
                    + TimeDelta::milliseconds(random(1000));
                let hi = lo + TimeDelta::seconds(random(max_span));
                let mut walked = Vec::new();
                let mut cursor = lo;
                while let Some(fire) = job.schedule.next_after(cursor, job.tz) {
                    if fire > hi {
                        break;
                    }
                    walked.push(fire);
                    cursor = fire;
                }
                let range = format!("{expr} in ({lo}, {hi}]");
                assert_eq!(
                    latest_in(&job.schedule, job.tz, lo, hi),
                    walked.last().copied(),
                    "{range}"
                );
                let counted = fires_in(&job.schedule, job.tz, lo, hi);
                assert_eq!(counted.count, walked.len() as u64, "{range}");
                assert_eq!(
                    counted.first,
                    walked.iter().take(10).copied().collect::<Vec<_>>()
                );
            }
        }
    }
}
