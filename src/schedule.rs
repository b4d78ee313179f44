//! Scheduling decisions for the daemon, as pure functions of the time.
//!
//! Nothing here reads the clock or sleeps: `now` is always a parameter, so
//! every decision (what to run after downtime, what is due on a wake, what
//! to do when the previous run is still going) is tested with plain values.
//! The daemon loop owns the clock, the sleeping and the running.
//!
//! The fires of a job are exactly the chain of
//! [`Schedule::next_after`](crate::config::Schedule::next_after) calls in the
//! job's time zone, which settles every DST question in one place: a fixed
//! time in the spring-forward gap fires once right after the gap, a fixed
//! time in the repeated fall-back hour fires once on its first pass. Every
//! question below ("the latest fire before now", "the fire before this one")
//! is answered from that chain with bounded work (bisection and capped
//! counting, in `schedule/search.rs`).
//!
//! The rules:
//!
//! - **Startup** ([`on_startup`]): fires missed while the daemon was down
//!   run at most once, and only if the latest missed fire is within the
//!   job's catch-up window; the others are reported, never run. On the
//!   first start ever (no recorded fire) nothing is missed.
//! - **Wakes** ([`tick`], [`due`]): the daemon wakes at least every 30 s and
//!   runs the latest fire in `(last_fire, now]`, once. Recording that fire
//!   as the new `last_fire` is what makes a time impossible to fire twice.
//! - **Overlap** ([`JobState`]): a fire while the job's previous run is
//!   still going is skipped and counted, never queued.
//! - **Persistence** ([`load_state`], [`save_state`]): the last fire of each
//!   job, in `schedule-state.json` in the state directory.

mod persist;
mod search;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::{Job, Schedule};

pub(crate) use persist::write_atomic;
pub use persist::{load_state, save_state, STATE_FILE};

/// What the scheduler needs to know about a job: its schedule, in its zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTiming {
    pub name: String,
    pub schedule: Schedule,
    pub tz: Tz,
    /// How late a missed fire may still run after downtime; `None`: one
    /// schedule interval (see [`catch_up_window`]).
    pub catch_up: Option<Duration>,
    pub enabled: bool,
}

impl JobTiming {
    /// The timing of `job`, or `None` when it has no schedule (manual jobs
    /// without one): such a job only runs on request, never from here.
    pub fn from_job(job: &Job) -> Option<JobTiming> {
        Some(JobTiming {
            name: job.name.clone(),
            schedule: job.schedule.clone()?,
            tz: job.timezone,
            catch_up: job.catch_up,
            enabled: job.enabled,
        })
    }
}

/// The first fire of `job` strictly after `after`; `None` for a disabled
/// job, or when its schedule has no further fire.
pub fn next_fire(job: &JobTiming, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if !job.enabled {
        return None;
    }
    job.schedule.next_after(after, job.tz)
}

/// How late the fire `missed` may still run after downtime.
///
/// The job's `catch_up` when set (`0s`: only a fire that is due right now
/// runs). Otherwise one interval of the schedule: the time from the fire
/// before `missed` to `missed` itself. For regular schedules that is the
/// period (an hourly job catches up a fire up to 1 h old, a daily one up to
/// 24 h, a weekly one a week); for irregular ones it is the gap that led up
/// to the missed fire, so for `0 9 * * 1-5` a missed Monday 09:00 gets 72 h
/// (the weekend) and a missed Friday 09:00 gets 24 h: found on Sunday, it
/// is reported, not run. Around DST changes the gap is real elapsed time
/// (23 h or 25 h for a daily job).
///
/// The gap *before* the fire is used, not the one after it: the latest
/// missed fire is always less late than the gap after it (or the next fire
/// would be the latest), so a window of that gap would never refuse
/// anything.
///
/// Should no earlier fire exist within ~34 years, the gap to the next fire
/// is used instead, and zero when there is none either.
pub fn catch_up_window(job: &JobTiming, missed: DateTime<Utc>) -> Duration {
    if let Some(window) = job.catch_up {
        return window;
    }
    let gap = match search::previous_before(&job.schedule, job.tz, missed) {
        Some(previous) => missed - previous,
        None => match job.schedule.next_after(missed, job.tz) {
            Some(next) => next - missed,
            None => return Duration::ZERO,
        },
    };
    gap.to_std().unwrap_or(Duration::ZERO)
}

/// The longest wait between two consecutive fires among the next
/// `fires` fires after `from`: how long a healthy job may go without a
/// run (a weekdays-only schedule waits over the weekend), which the
/// staleness watchdog scales into its threshold. `None` without fires.
pub fn longest_gap(job: &JobTiming, from: DateTime<Utc>, fires: usize) -> Option<Duration> {
    let mut previous = search::previous_before(&job.schedule, job.tz, from)
        .or_else(|| job.schedule.next_after(from, job.tz))?;
    let mut longest = chrono::Duration::zero();
    for _ in 0..fires {
        let Some(next) = job.schedule.next_after(previous, job.tz) else {
            break;
        };
        longest = longest.max(next - previous);
        previous = next;
    }
    longest.to_std().ok().filter(|d| !d.is_zero())
}

/// What to do about a job when the daemon starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupDecision {
    /// Run the job once now, for the latest missed fire `missed`, which is
    /// inside the catch-up window. Fires missed before it are not run: the
    /// oldest of them (at most 10, oldest first) are in `older`, and
    /// `skipped_count` says how many there are in all (0 when `missed` was
    /// the only one).
    RunNow {
        missed: DateTime<Utc>,
        older: Vec<DateTime<Utc>>,
        skipped_count: u64,
        /// `skipped_count` is "at least": counting stopped at 10,000.
        count_is_lower_bound: bool,
    },
    /// Fires were missed, and even the latest one is outside the catch-up
    /// window: none runs. `missed` holds the oldest (at most 10, oldest
    /// first), `skipped_count` how many there are in all, and `latest` the
    /// latest, which the daemon records as the job's last fire so they are
    /// reported only once.
    Missed {
        missed: Vec<DateTime<Utc>>,
        skipped_count: u64,
        /// `skipped_count` is "at least": counting stopped at 10,000.
        count_is_lower_bound: bool,
        latest: DateTime<Utc>,
    },
    /// Nothing to run or report: no fire since the last one, no recorded
    /// fire at all (first start), a disabled job, or a wall clock that is
    /// behind the recorded fire.
    NothingMissed,
}

impl StartupDecision {
    /// The fire to record as the job's last one once this decision is
    /// acted on: the fire run or the latest one missed; otherwise the
    /// recorded one, or `now` on a first start (so that fires count from
    /// the daemon's first start, not from the epoch).
    pub fn last_fire(&self, recorded: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            StartupDecision::RunNow { missed, .. } => *missed,
            StartupDecision::Missed { latest, .. } => *latest,
            StartupDecision::NothingMissed => recorded.unwrap_or(now),
        }
    }
}

/// The startup decision for `job`, whose last fire (run or skipped) was
/// `last_fire`, at `now`. See [`StartupDecision`] and [`catch_up_window`].
///
/// Work is bounded whatever the downtime: the latest missed fire is found by
/// bisection and the missed fires are counted up to 10,000 (a year down on
/// a per-second schedule costs milliseconds, not 31 million steps).
///
/// A recorded fire later than `now` means the wall clock went back while
/// the daemon was down: nothing is missed, and nothing already fired will
/// fire again (the daemon keeps the recorded fire, see [`tick`]).
pub fn on_startup(
    job: &JobTiming,
    last_fire: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> StartupDecision {
    let Some(last_fire) = last_fire.filter(|_| job.enabled) else {
        return StartupDecision::NothingMissed;
    };
    let Some(latest) = search::latest_in(&job.schedule, job.tz, last_fire, now) else {
        return StartupDecision::NothingMissed;
    };
    let lateness = (now - latest).to_std().unwrap_or(Duration::ZERO);
    if lateness <= catch_up_window(job, latest) {
        let older = match latest.checked_sub_signed(search::EPSILON) {
            Some(before) => search::fires_in(&job.schedule, job.tz, last_fire, before),
            None => search::FireCount::default(),
        };
        StartupDecision::RunNow {
            missed: latest,
            older: older.first,
            skipped_count: older.count,
            count_is_lower_bound: older.capped,
        }
    } else {
        let all = search::fires_in(&job.schedule, job.tz, last_fire, latest);
        StartupDecision::Missed {
            missed: all.first,
            skipped_count: all.count,
            count_is_lower_bound: all.capped,
            latest,
        }
    }
}

/// What a wake of the daemon means for one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickDecision {
    /// Run the job for `scheduled`, the latest fire in `(last_fire, now]`.
    /// `skipped_count` fires before it in that range are not run: normally
    /// 0; more when the wall clock jumped forward (suspend, an NTP step) or
    /// the daemon stalled past a whole interval.
    Fire {
        scheduled: DateTime<Utc>,
        skipped_count: u64,
        /// `skipped_count` is "at least": counting stopped at 10,000.
        count_is_lower_bound: bool,
    },
    /// Nothing is due; `next` is the next fire (`None`: never, or a
    /// disabled job).
    Wait { next: Option<DateTime<Utc>> },
    /// The wall clock is `behind_by` earlier than the last fire: it went
    /// back (NTP step, manual change). Nothing runs until it has passed the
    /// last fire again; `next` is the first fire after the last one.
    ClockBehind {
        behind_by: Duration,
        next: Option<DateTime<Utc>>,
    },
}

/// The decision for `job` on a wake at `now`, its last fire (run or
/// skipped) having been `last_fire`.
///
/// Only fires in `(last_fire, now]` count, and at most the latest of them
/// runs, so with `last_fire` updated to each fired time:
///
/// - a job fires at most once per wake, and never for a time at or before
///   a time it already fired;
/// - a wall clock stepped **back** (even across fires already run) fires
///   nothing until it passes `last_fire` again, then the schedule resumes
///   normally: the repeated stretch of wall-clock time is not replayed;
/// - a wall clock stepped far **forward** fires once, for the latest fire,
///   and reports the fires it jumped over in `skipped_count`. No catch-up
///   window applies here: the daemon was running, the clock moved.
pub fn tick(job: &JobTiming, last_fire: DateTime<Utc>, now: DateTime<Utc>) -> TickDecision {
    if !job.enabled {
        return TickDecision::Wait { next: None };
    }
    if now < last_fire {
        return TickDecision::ClockBehind {
            behind_by: (last_fire - now).to_std().unwrap_or(Duration::ZERO),
            next: job.schedule.next_after(last_fire, job.tz),
        };
    }
    // Nothing due is the common case: one call answers it, and its answer
    // is also the next fire (none lies in (last_fire, now]).
    let first = match job.schedule.next_after(last_fire, job.tz) {
        Some(first) if first <= now => first,
        next => return TickDecision::Wait { next },
    };
    let scheduled = search::latest_from(&job.schedule, job.tz, last_fire, first, now);
    let skipped = match scheduled.checked_sub_signed(search::EPSILON) {
        Some(before) => search::fires_in(&job.schedule, job.tz, last_fire, before),
        None => search::FireCount::default(),
    };
    TickDecision::Fire {
        scheduled,
        skipped_count: skipped.count,
        count_is_lower_bound: skipped.capped,
    }
}

/// The scheduled time that is due at `now`: the latest fire in
/// `(last_fire, now]`, if any. [`tick`] without the details.
pub fn due(job: &JobTiming, last_fire: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match tick(job, last_fire, now) {
        TickDecision::Fire { scheduled, .. } => Some(scheduled),
        TickDecision::Wait { .. } | TickDecision::ClockBehind { .. } => None,
    }
}

/// What happened to a fire applied to a [`JobState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireOutcome {
    /// Start a run for `scheduled`; the job is now running.
    Fired { scheduled: DateTime<Utc> },
    /// The previous run is still going: this fire is skipped (and counted),
    /// not queued, so a slow backup never causes a pile of runs behind it.
    SkippedOverlap { scheduled: DateTime<Utc> },
    /// `scheduled` is not after the last fire: it was already fired or
    /// skipped, and nothing happens.
    AlreadyHandled { scheduled: DateTime<Utc> },
}

/// The scheduler's view of one job between wakes. Pure bookkeeping: the
/// daemon starts the run a [`FireOutcome::Fired`] asks for and calls
/// [`finish`](Self::finish) when it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobState {
    /// The last fire run or skipped, persisted with [`save_state`].
    pub last_fire: Option<DateTime<Utc>>,
    /// A run (scheduled or manual) is going on.
    pub running: bool,
    /// Fires skipped because the previous run was still going.
    pub skipped_overlaps: u64,
    /// Fires skipped because the daemon was down or the clock jumped
    /// (at least this many: large gaps are counted up to a limit).
    pub missed_fires: u64,
}

impl JobState {
    /// A job not running, whose last fire was `last_fire` (from
    /// [`load_state`]; `None` if never).
    pub fn new(last_fire: Option<DateTime<Utc>>) -> JobState {
        JobState {
            last_fire,
            ..JobState::default()
        }
    }

    /// Applies a fire for `scheduled`: runs it unless the job is running.
    /// Either way the fire is recorded as handled, so it never runs later.
    pub fn apply_fire(&mut self, scheduled: DateTime<Utc>) -> FireOutcome {
        if self.last_fire.is_some_and(|last| scheduled <= last) {
            return FireOutcome::AlreadyHandled { scheduled };
        }
        self.last_fire = Some(scheduled);
        if self.running {
            self.skipped_overlaps += 1;
            FireOutcome::SkippedOverlap { scheduled }
        } else {
            self.running = true;
            FireOutcome::Fired { scheduled }
        }
    }

    /// Applies the startup decision: records the missed fires and the new
    /// last fire, and fires the catch-up run for [`StartupDecision::RunNow`].
    pub fn apply_startup(
        &mut self,
        decision: &StartupDecision,
        now: DateTime<Utc>,
    ) -> Option<FireOutcome> {
        match decision {
            StartupDecision::RunNow {
                missed,
                skipped_count,
                ..
            } => {
                self.missed_fires = self.missed_fires.saturating_add(*skipped_count);
                Some(self.apply_fire(*missed))
            }
            StartupDecision::Missed {
                skipped_count,
                latest,
                ..
            } => {
                self.missed_fires = self.missed_fires.saturating_add(*skipped_count);
                self.last_fire = Some(self.last_fire.map_or(*latest, |last| last.max(*latest)));
                None
            }
            StartupDecision::NothingMissed => {
                self.last_fire = Some(decision.last_fire(self.last_fire, now));
                None
            }
        }
    }

    /// One wake at `now`: [`tick`] and, if a fire is due, [`apply_fire`](
    /// Self::apply_fire). A job that has no last fire yet starts counting
    /// from `now` (nothing is due on that wake).
    pub fn apply_tick(&mut self, job: &JobTiming, now: DateTime<Utc>) -> Option<FireOutcome> {
        let Some(last_fire) = self.last_fire else {
            self.last_fire = Some(now);
            return None;
        };
        match tick(job, last_fire, now) {
            TickDecision::Fire {
                scheduled,
                skipped_count,
                ..
            } => {
                self.missed_fires = self.missed_fires.saturating_add(skipped_count);
                Some(self.apply_fire(scheduled))
            }
            TickDecision::Wait { .. } | TickDecision::ClockBehind { .. } => None,
        }
    }

    /// The run started by the last [`FireOutcome::Fired`] (or a manual
    /// run) has ended, however it ended.
    pub fn finish(&mut self) {
        self.running = false;
    }
}

/// Why the schedule state could not be loaded or saved. The daemon logs it
/// and carries on (a load failure means starting fresh), so each message
/// names the file and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "cannot read the schedule state {}: {source}; check that the daemon's user can \
         read it (until then missed runs after downtime are not detected)",
        path.display()
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the schedule state {} is not usable: {reason}; move it aside or delete it (the \
         scheduler then starts fresh, and runs missed during the last downtime are \
         neither run nor reported)",
        path.display()
    )]
    Corrupt { path: PathBuf, reason: String },

    #[error(
        "cannot {op} the schedule state {}: {source}; check the free space and \
         permissions of the state directory (after a restart, missed runs may be \
         misjudged until a save succeeds)",
        path.display()
    )]
    Write {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}
