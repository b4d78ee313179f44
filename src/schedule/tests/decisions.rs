//! Timing from the configuration, catch-up windows, startup and wake
//! decisions, clock jumps and the overlap rule (in UTC; DST has its own
//! module). June 2025 starts on a Sunday.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use chrono_tz::Tz;

use super::{hours, simulate, timing, utc};
use crate::schedule::{
    catch_up_window, due, next_fire, on_startup, tick, FireOutcome, JobState, JobTiming,
    StartupDecision, TickDecision,
};

const CONFIG: &str = r#"[daemon]
timezone = "Europe/Berlin"

[sources.prod]
uri = "mongodb://localhost:27017/"

[storage.local]
type = "local"
path = "/var/backups/mongo-backupd"

[jobs.nightly]
source = "prod"
storage = "local"
kind = "full"
schedule = "30 2 * * *"
catch_up = "2h"
enabled = false

[jobs.hourly]
source = "prod"
storage = "local"
kind = "incremental"
schedule = "0 * * * *"
timezone = "UTC"

[jobs.on-request]
source = "prod"
storage = "local"
kind = "manual"

[jobs.manual-weekly]
source = "prod"
storage = "local"
kind = "manual"
schedule = "@weekly"
"#;

#[test]
fn timing_comes_from_the_job_and_needs_a_schedule() {
    let config = crate::config::parse(CONFIG, Path::new("/etc/mongo-backupd/config.toml"))
        .unwrap_or_else(|errors| panic!("{errors}"));
    let nightly = JobTiming::from_job(&config.jobs["nightly"]).unwrap();
    assert_eq!(nightly.name, "nightly");
    assert_eq!(nightly.schedule.as_str(), "30 2 * * *");
    assert_eq!(nightly.tz, Tz::Europe__Berlin);
    assert_eq!(nightly.catch_up, Some(hours(2)));
    assert!(!nightly.enabled);

    let hourly = JobTiming::from_job(&config.jobs["hourly"]).unwrap();
    assert_eq!(hourly.tz, Tz::UTC);
    assert_eq!(hourly.catch_up, None);
    assert!(hourly.enabled);

    // A manual job runs only on request, unless it was given a schedule.
    assert_eq!(JobTiming::from_job(&config.jobs["on-request"]), None);
    let weekly = JobTiming::from_job(&config.jobs["manual-weekly"]).unwrap();
    assert_eq!(
        next_fire(&weekly, utc(2025, 6, 4, 12, 0, 0)),
        Some(utc(2025, 6, 7, 22, 0, 0)) // Sunday 00:00 CEST
    );
}

#[test]
fn next_fire_is_exclusive_and_never_for_disabled_jobs() {
    let mut job = timing("0 2 * * *", Tz::UTC);
    assert_eq!(
        next_fire(&job, utc(2025, 6, 1, 1, 0, 0)),
        Some(utc(2025, 6, 1, 2, 0, 0))
    );
    assert_eq!(
        next_fire(&job, utc(2025, 6, 1, 2, 0, 0)),
        Some(utc(2025, 6, 2, 2, 0, 0))
    );
    job.enabled = false;
    assert_eq!(next_fire(&job, utc(2025, 6, 1, 1, 0, 0)), None);
}

#[test]
fn catch_up_window_is_one_interval_of_regular_schedules() {
    let at = |expr: &str, missed| catch_up_window(&timing(expr, Tz::UTC), missed);
    assert_eq!(
        at("* * * * * *", utc(2025, 6, 4, 13, 0, 7)),
        Duration::from_secs(1)
    );
    assert_eq!(
        at("*/15 * * * *", utc(2025, 6, 4, 13, 0, 0)),
        Duration::from_secs(900)
    );
    assert_eq!(at("0 * * * *", utc(2025, 6, 4, 13, 0, 0)), hours(1));
    assert_eq!(at("@hourly", utc(2025, 6, 4, 0, 0, 0)), hours(1));
    assert_eq!(at("0 2 * * *", utc(2025, 6, 4, 2, 0, 0)), hours(24));
    assert_eq!(at("@weekly", utc(2025, 6, 8, 0, 0, 0)), hours(7 * 24));
    assert_eq!(at("@monthly", utc(2025, 3, 1, 0, 0, 0)), hours(28 * 24));
    assert_eq!(at("@monthly", utc(2024, 3, 1, 0, 0, 0)), hours(29 * 24));
    assert_eq!(at("@yearly", utc(2025, 1, 1, 0, 0, 0)), hours(366 * 24));
}

#[test]
fn catch_up_window_of_irregular_schedules_is_the_gap_before_the_fire() {
    let weekdays = timing("0 9 * * 1-5", Tz::UTC);
    assert_eq!(
        catch_up_window(&weekdays, utc(2025, 6, 9, 9, 0, 0)),
        hours(72)
    ); // Monday
    assert_eq!(
        catch_up_window(&weekdays, utc(2025, 6, 10, 9, 0, 0)),
        hours(24)
    ); // Tuesday
    assert_eq!(
        catch_up_window(&weekdays, utc(2025, 6, 6, 9, 0, 0)),
        hours(24)
    ); // Friday

    let twice_a_month = timing("0 0 1,15 * *", Tz::UTC);
    assert_eq!(
        catch_up_window(&twice_a_month, utc(2025, 7, 1, 0, 0, 0)),
        hours(16 * 24)
    );
    assert_eq!(
        catch_up_window(&twice_a_month, utc(2025, 7, 15, 0, 0, 0)),
        hours(14 * 24)
    );

    // Real elapsed time: Berlin's Friday 09:00 CET to Monday 09:00 CEST,
    // across the spring-forward night, is 71 h.
    let berlin = timing("0 9 * * 1-5", Tz::Europe__Berlin);
    assert_eq!(
        catch_up_window(&berlin, utc(2025, 3, 31, 7, 0, 0)),
        hours(71)
    );
}

#[test]
fn an_explicit_catch_up_wins() {
    let mut job = timing("0 2 * * *", Tz::UTC);
    job.catch_up = Some(Duration::from_secs(1800));
    assert_eq!(
        catch_up_window(&job, utc(2025, 6, 4, 2, 0, 0)),
        Duration::from_secs(1800)
    );
    job.catch_up = Some(Duration::ZERO);
    assert_eq!(
        catch_up_window(&job, utc(2025, 6, 4, 2, 0, 0)),
        Duration::ZERO
    );
}

#[test]
fn startup_without_a_missed_fire() {
    let job = timing("0 * * * *", Tz::UTC);
    let now = utc(2025, 6, 4, 14, 20, 0);
    // First start ever: nothing counts as missed.
    assert_eq!(on_startup(&job, None, now), StartupDecision::NothingMissed);
    // The last fire is the latest one.
    assert_eq!(
        on_startup(&job, Some(utc(2025, 6, 4, 14, 0, 0)), now),
        StartupDecision::NothingMissed
    );
    // The wall clock is behind the last fire (it went back while down).
    assert_eq!(
        on_startup(&job, Some(utc(2025, 6, 4, 16, 0, 0)), now),
        StartupDecision::NothingMissed
    );
    // Disabled jobs miss nothing.
    let mut disabled = job.clone();
    disabled.enabled = false;
    assert_eq!(
        on_startup(&disabled, Some(utc(2025, 6, 1, 0, 0, 0)), now),
        StartupDecision::NothingMissed
    );
}

#[test]
fn startup_runs_the_latest_missed_fire_once() {
    let job = timing("0 * * * *", Tz::UTC);
    let now = utc(2025, 6, 4, 14, 20, 0);
    assert_eq!(
        on_startup(&job, Some(utc(2025, 6, 4, 13, 0, 0)), now),
        StartupDecision::RunNow {
            missed: utc(2025, 6, 4, 14, 0, 0),
            older: vec![],
            skipped_count: 0,
            count_is_lower_bound: false,
        }
    );
    // Five missed: the latest runs, the other four are only reported.
    assert_eq!(
        on_startup(&job, Some(utc(2025, 6, 4, 9, 0, 0)), now),
        StartupDecision::RunNow {
            missed: utc(2025, 6, 4, 14, 0, 0),
            older: (10..14).map(|h| utc(2025, 6, 4, h, 0, 0)).collect(),
            skipped_count: 4,
            count_is_lower_bound: false,
        }
    );
    // A fire due exactly now is in time (the range is (last, now]).
    assert_eq!(
        on_startup(
            &job,
            Some(utc(2025, 6, 4, 13, 0, 0)),
            utc(2025, 6, 4, 14, 0, 0)
        ),
        StartupDecision::RunNow {
            missed: utc(2025, 6, 4, 14, 0, 0),
            older: vec![],
            skipped_count: 0,
            count_is_lower_bound: false,
        }
    );
}

#[test]
fn startup_reports_fires_outside_the_window() {
    // Down from Thursday: Friday 09:00 is found on Sunday, 51 h late with a
    // 24 h window. Reported, not run.
    let weekdays = timing("0 9 * * 1-5", Tz::UTC);
    assert_eq!(
        on_startup(
            &weekdays,
            Some(utc(2025, 6, 5, 9, 0, 0)),
            utc(2025, 6, 8, 12, 0, 0)
        ),
        StartupDecision::Missed {
            missed: vec![utc(2025, 6, 6, 9, 0, 0)],
            skipped_count: 1,
            count_is_lower_bound: false,
            latest: utc(2025, 6, 6, 9, 0, 0),
        }
    );
    // Found on Monday morning instead, Monday's fire (72 h window) runs and
    // Friday's is reported.
    assert_eq!(
        on_startup(
            &weekdays,
            Some(utc(2025, 6, 5, 9, 0, 0)),
            utc(2025, 6, 9, 11, 0, 0)
        ),
        StartupDecision::RunNow {
            missed: utc(2025, 6, 9, 9, 0, 0),
            older: vec![utc(2025, 6, 6, 9, 0, 0)],
            skipped_count: 1,
            count_is_lower_bound: false,
        }
    );
}

#[test]
fn explicit_catch_up_bounds_are_inclusive() {
    let mut job = timing("0 * * * *", Tz::UTC);
    job.catch_up = Some(Duration::from_secs(1800));
    let last = Some(utc(2025, 6, 4, 13, 0, 0));
    assert!(matches!(
        on_startup(&job, last, utc(2025, 6, 4, 14, 30, 0)),
        StartupDecision::RunNow { .. }
    ));
    assert_eq!(
        on_startup(&job, last, utc(2025, 6, 4, 14, 30, 1)),
        StartupDecision::Missed {
            missed: vec![utc(2025, 6, 4, 14, 0, 0)],
            skipped_count: 1,
            count_is_lower_bound: false,
            latest: utc(2025, 6, 4, 14, 0, 0),
        }
    );
    // "0s": never catch up, but a fire due this very second is on time.
    job.catch_up = Some(Duration::ZERO);
    assert!(matches!(
        on_startup(&job, last, utc(2025, 6, 4, 14, 0, 0)),
        StartupDecision::RunNow { .. }
    ));
    assert!(matches!(
        on_startup(&job, last, utc(2025, 6, 4, 14, 0, 1)),
        StartupDecision::Missed { .. }
    ));
}

#[test]
fn many_missed_fires_are_listed_up_to_ten() {
    let mut job = timing("0 * * * *", Tz::UTC);
    job.catch_up = Some(Duration::from_secs(600));
    let decision = on_startup(
        &job,
        Some(utc(2025, 6, 1, 0, 0, 0)),
        utc(2025, 6, 1, 23, 30, 0),
    );
    assert_eq!(
        decision,
        StartupDecision::Missed {
            missed: (1..=10).map(|h| utc(2025, 6, 1, h, 0, 0)).collect(),
            skipped_count: 23,
            count_is_lower_bound: false,
            latest: utc(2025, 6, 1, 23, 0, 0),
        }
    );
    assert_eq!(
        decision.last_fire(Some(utc(2025, 6, 1, 0, 0, 0)), utc(2025, 6, 1, 23, 30, 0)),
        utc(2025, 6, 1, 23, 0, 0)
    );
}

#[test]
fn a_year_down_on_an_hourly_schedule_is_counted_exactly() {
    let job = timing("0 * * * *", Tz::UTC);
    let decision = on_startup(
        &job,
        Some(utc(2024, 1, 1, 0, 0, 0)),
        utc(2025, 1, 1, 0, 30, 0),
    );
    let StartupDecision::RunNow {
        missed,
        older,
        skipped_count,
        count_is_lower_bound,
    } = decision
    else {
        panic!("expected RunNow, got {decision:?}");
    };
    assert_eq!(missed, utc(2025, 1, 1, 0, 0, 0));
    assert_eq!(older.first(), Some(&utc(2024, 1, 1, 1, 0, 0)));
    assert_eq!(older.len(), 10);
    // 2024 has 366 days; the last of its 8,784 fires is the one run.
    assert_eq!(skipped_count, 366 * 24 - 1);
    assert!(!count_is_lower_bound);
}

#[test]
fn a_year_down_on_a_per_second_schedule_is_fast_and_bounded() {
    let mut job = timing("* * * * * *", Tz::Europe__Berlin);
    let last = Some(utc(2024, 6, 1, 0, 0, 0));
    let now = utc(2025, 6, 1, 0, 0, 0) + TimeDelta::milliseconds(250);
    let started = Instant::now();
    let decision = on_startup(&job, last, now);
    assert_eq!(
        decision,
        StartupDecision::RunNow {
            missed: utc(2025, 6, 1, 0, 0, 0),
            older: (1..=10).map(|s| utc(2024, 6, 1, 0, 0, s)).collect(),
            skipped_count: 10_000,
            count_is_lower_bound: true,
        }
    );
    job.catch_up = Some(Duration::ZERO);
    let decision = on_startup(&job, last, now);
    assert_eq!(
        decision,
        StartupDecision::Missed {
            missed: (1..=10).map(|s| utc(2024, 6, 1, 0, 0, s)).collect(),
            skipped_count: 10_000,
            count_is_lower_bound: true,
            latest: utc(2025, 6, 1, 0, 0, 0),
        }
    );
    // A wall clock that jumps a year forward under a running daemon.
    job.catch_up = None;
    assert_eq!(
        tick(&job, utc(2024, 6, 1, 0, 0, 0), now),
        TickDecision::Fire {
            scheduled: utc(2025, 6, 1, 0, 0, 0),
            skipped_count: 10_000,
            count_is_lower_bound: true,
        }
    );
    // Milliseconds in release builds; generous for unoptimised test builds.
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[test]
fn tick_fires_the_latest_due_time_once() {
    let job = timing("0 * * * *", Tz::UTC);
    let last = utc(2025, 6, 4, 13, 0, 0);
    assert_eq!(
        tick(&job, last, utc(2025, 6, 4, 13, 59, 59)),
        TickDecision::Wait {
            next: Some(utc(2025, 6, 4, 14, 0, 0))
        }
    );
    for now in [utc(2025, 6, 4, 14, 0, 0), utc(2025, 6, 4, 14, 0, 29)] {
        assert_eq!(
            tick(&job, last, now),
            TickDecision::Fire {
                scheduled: utc(2025, 6, 4, 14, 0, 0),
                skipped_count: 0,
                count_is_lower_bound: false,
            }
        );
        assert_eq!(due(&job, last, now), Some(utc(2025, 6, 4, 14, 0, 0)));
    }
    // Once recorded, the same time is never due again.
    let last = utc(2025, 6, 4, 14, 0, 0);
    assert_eq!(due(&job, last, utc(2025, 6, 4, 14, 0, 29)), None);
    assert_eq!(due(&job, last, last), None);
}

#[test]
fn a_clock_jump_forward_fires_once_and_counts_the_rest() {
    let job = timing("0 * * * *", Tz::UTC);
    assert_eq!(
        tick(&job, utc(2025, 6, 4, 13, 0, 0), utc(2025, 6, 4, 18, 10, 0)),
        TickDecision::Fire {
            scheduled: utc(2025, 6, 4, 18, 0, 0),
            skipped_count: 4,
            count_is_lower_bound: false,
        }
    );
    let mut state = JobState::new(Some(utc(2025, 6, 4, 13, 0, 0)));
    assert_eq!(
        state.apply_tick(&job, utc(2025, 6, 4, 18, 10, 0)),
        Some(FireOutcome::Fired {
            scheduled: utc(2025, 6, 4, 18, 0, 0)
        })
    );
    assert_eq!(state.missed_fires, 4);
}

#[test]
fn a_clock_stepped_back_never_refires() {
    let job = timing("0 * * * *", Tz::UTC);
    let last = utc(2025, 6, 4, 14, 0, 0);
    assert_eq!(
        tick(&job, last, utc(2025, 6, 4, 13, 10, 0)),
        TickDecision::ClockBehind {
            behind_by: Duration::from_secs(50 * 60),
            next: Some(utc(2025, 6, 4, 15, 0, 0)),
        }
    );
    assert_eq!(due(&job, last, utc(2025, 6, 4, 13, 10, 0)), None);

    // A daemon whose clock is stepped back an hour right after firing
    // 14:00: it passes 14:00 again without firing, then fires 15:00.
    let mut state = JobState::new(Some(utc(2025, 6, 4, 13, 0, 0)));
    let mut wakes = vec![utc(2025, 6, 4, 13, 59, 40), utc(2025, 6, 4, 14, 0, 10)];
    let mut now = utc(2025, 6, 4, 13, 0, 30); // the step back
    while now <= utc(2025, 6, 4, 15, 0, 30) {
        wakes.push(now);
        now += TimeDelta::seconds(30);
    }
    let mut fired = Vec::new();
    for now in wakes {
        if let Some(FireOutcome::Fired { scheduled }) = state.apply_tick(&job, now) {
            fired.push(scheduled);
            state.finish();
        }
    }
    assert_eq!(
        fired,
        vec![utc(2025, 6, 4, 14, 0, 0), utc(2025, 6, 4, 15, 0, 0)]
    );
}

/// A wall clock wandering back and forth (steps of -2 h to +3 h between
/// wakes, from a fixed pseudo-random sequence): every fire is a real fire of
/// the schedule, fired once, in order.
#[test]
fn a_wandering_clock_never_fires_a_time_twice() {
    let job = timing("*/7 * * * *", Tz::Europe__Berlin);
    let mut state = JobState::new(Some(utc(2025, 10, 25, 0, 0, 0)));
    let mut now = utc(2025, 10, 25, 0, 0, 0);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut fired = Vec::new();
    for _ in 0..3000 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let step = match (seed >> 33) % 10 {
            0 => -7200 + i64::try_from((seed >> 40) % 3600).unwrap(),
            1 => 3 * 3600,
            _ => 1 + i64::try_from((seed >> 40) % 30).unwrap(),
        };
        now += TimeDelta::seconds(step);
        let before = state.last_fire;
        match state.apply_tick(&job, now) {
            Some(FireOutcome::Fired { scheduled }) => {
                assert!(before.is_none_or(|b| scheduled > b));
                assert!(scheduled <= now);
                let just_before = scheduled - TimeDelta::nanoseconds(1);
                assert_eq!(
                    job.schedule.next_after(just_before, job.tz),
                    Some(scheduled)
                );
                fired.push(scheduled);
                state.finish();
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => {}
        }
    }
    assert!(fired.len() > 100, "only {} fires", fired.len());
    assert!(fired.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn disabled_jobs_never_tick() {
    let mut job = timing("* * * * *", Tz::UTC);
    job.enabled = false;
    assert_eq!(
        tick(&job, utc(2025, 6, 4, 13, 0, 0), utc(2025, 6, 4, 14, 0, 0)),
        TickDecision::Wait { next: None }
    );
}

#[test]
fn a_fire_during_a_run_is_skipped_and_counted() {
    let mut state = JobState::new(Some(utc(2025, 6, 4, 13, 0, 0)));
    assert_eq!(
        state.apply_fire(utc(2025, 6, 4, 14, 0, 0)),
        FireOutcome::Fired {
            scheduled: utc(2025, 6, 4, 14, 0, 0)
        }
    );
    assert!(state.running);
    for h in [15, 16] {
        assert_eq!(
            state.apply_fire(utc(2025, 6, 4, h, 0, 0)),
            FireOutcome::SkippedOverlap {
                scheduled: utc(2025, 6, 4, h, 0, 0)
            }
        );
    }
    assert_eq!(state.skipped_overlaps, 2);
    // Skipped fires are handled: they never run once the job is free.
    assert_eq!(state.last_fire, Some(utc(2025, 6, 4, 16, 0, 0)));
    state.finish();
    assert_eq!(
        state.apply_fire(utc(2025, 6, 4, 16, 0, 0)),
        FireOutcome::AlreadyHandled {
            scheduled: utc(2025, 6, 4, 16, 0, 0)
        }
    );
    assert_eq!(
        state.apply_fire(utc(2025, 6, 4, 15, 0, 0)),
        FireOutcome::AlreadyHandled {
            scheduled: utc(2025, 6, 4, 15, 0, 0)
        }
    );
    assert!(!state.running);
    assert_eq!(
        state.apply_fire(utc(2025, 6, 4, 17, 0, 0)),
        FireOutcome::Fired {
            scheduled: utc(2025, 6, 4, 17, 0, 0)
        }
    );
    assert_eq!(state.skipped_overlaps, 2);
}

#[test]
fn a_slow_run_skips_the_wakes_it_overlaps() {
    let job = timing("*/10 * * * *", Tz::UTC);
    let mut state = JobState::new(Some(utc(2025, 6, 4, 13, 0, 0)));
    let mut outcomes = Vec::new();
    let mut now = utc(2025, 6, 4, 13, 0, 30);
    while now <= utc(2025, 6, 4, 14, 0, 0) {
        if let Some(outcome) = state.apply_tick(&job, now) {
            outcomes.push(outcome);
        }
        // The run started at 13:10 takes until 13:35; the others are quick.
        let slow_run = state.last_fire < Some(utc(2025, 6, 4, 13, 35, 0));
        if !slow_run || now == utc(2025, 6, 4, 13, 35, 0) {
            state.finish();
        }
        now += TimeDelta::seconds(30);
    }
    let at = |m| utc(2025, 6, 4, 13, m, 0);
    assert_eq!(
        outcomes,
        vec![
            FireOutcome::Fired { scheduled: at(10) },
            FireOutcome::SkippedOverlap { scheduled: at(20) },
            FireOutcome::SkippedOverlap { scheduled: at(30) },
            FireOutcome::Fired { scheduled: at(40) },
            FireOutcome::Fired { scheduled: at(50) },
            FireOutcome::Fired {
                scheduled: utc(2025, 6, 4, 14, 0, 0)
            },
        ]
    );
    assert_eq!(state.skipped_overlaps, 2);
}

#[test]
fn startup_decisions_apply_to_the_state() {
    let job = timing("0 * * * *", Tz::UTC);
    let now = utc(2025, 6, 4, 14, 20, 0);

    let last = Some(utc(2025, 6, 4, 11, 0, 0));
    let mut state = JobState::new(last);
    let decision = on_startup(&job, last, now);
    assert_eq!(
        state.apply_startup(&decision, now),
        Some(FireOutcome::Fired {
            scheduled: utc(2025, 6, 4, 14, 0, 0)
        })
    );
    assert_eq!(state.missed_fires, 2);
    assert!(state.running);
    state.finish();
    assert_eq!(state.apply_tick(&job, utc(2025, 6, 4, 14, 20, 30)), None);

    let mut reported = job.clone();
    reported.catch_up = Some(Duration::from_secs(60));
    let mut state = JobState::new(last);
    let decision = on_startup(&reported, last, now);
    assert_eq!(state.apply_startup(&decision, now), None);
    assert_eq!(state.last_fire, Some(utc(2025, 6, 4, 14, 0, 0)));
    assert_eq!(state.missed_fires, 3);
    assert!(!state.running);

    // First start: fires count from now.
    let mut state = JobState::new(None);
    let decision = on_startup(&job, None, now);
    assert_eq!(state.apply_startup(&decision, now), None);
    assert_eq!(state.last_fire, Some(now));
    assert_eq!(
        simulate(&job, now, utc(2025, 6, 4, 16, 0, 0), TimeDelta::seconds(30)),
        vec![utc(2025, 6, 4, 15, 0, 0), utc(2025, 6, 4, 16, 0, 0)]
    );

    // A clock behind the recorded fire keeps the recorded fire.
    let ahead = Some(utc(2025, 6, 4, 18, 0, 0));
    let mut state = JobState::new(ahead);
    let decision = on_startup(&job, ahead, now);
    assert_eq!(state.apply_startup(&decision, now), None);
    assert_eq!(state.last_fire, ahead);
}

#[test]
fn a_job_without_a_last_fire_starts_counting_at_the_first_wake() {
    let job = timing("* * * * *", Tz::UTC);
    let mut state = JobState::new(None);
    assert_eq!(state.apply_tick(&job, utc(2025, 6, 4, 14, 0, 0)), None);
    assert_eq!(state.last_fire, Some(utc(2025, 6, 4, 14, 0, 0)));
    assert_eq!(
        state.apply_tick(&job, utc(2025, 6, 4, 14, 1, 5)),
        Some(FireOutcome::Fired {
            scheduled: utc(2025, 6, 4, 14, 1, 0)
        })
    );
}
