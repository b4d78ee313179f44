//! Searching a schedule's fires with bounded work, using nothing but
//! [`Schedule::next_after`].
//!
//! croner can also search backwards, but its backward walk has its own DST
//! rules; a "previous fire" that the forward walk would never produce (the
//! second pass of a repeated hour, say) would make the daemon fire a time
//! twice. So the one definition of "the fires of a schedule" is the chain of
//! `next_after` calls, and the backward questions are answered by bisecting
//! over it: `next_after(p)` never decreases as `p` grows, so "is there a fire
//! in (p, hi]?" flips once, and O(log range) calls find the latest fire.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::config::Schedule;

/// Fires are whole seconds (croner's resolution, and UTC offsets are whole
/// seconds too), so an interval this short holds at most one.
const ONE_SECOND: TimeDelta = TimeDelta::seconds(1);

/// The smallest step below an instant: `t - EPSILON` excludes `t` itself.
pub(super) const EPSILON: TimeDelta = TimeDelta::nanoseconds(1);

/// How far back [`previous_before`] looks: about 34 years (2^30 s). A
/// crontab schedule repeats within 8 years (29 February), so only a schedule
/// croner cannot evaluate gets no answer.
const MAX_LOOKBACK_SECONDS: i64 = 1 << 30;

/// How many fires [`fires_in`] lists, and how many it counts before it
/// stops and reports a lower bound. Counting is one `next_after` call per
/// fire (a few µs), so the limit keeps a year of downtime on a per-second
/// schedule in the milliseconds while a year of an hourly one (8,760 fires)
/// is still counted exactly.
pub(super) const MAX_LISTED: usize = 10;
pub(super) const COUNT_LIMIT: u64 = 10_000;

/// The latest fire in `(lo, hi]`, or `None` when there is none.
pub(super) fn latest_in(
    schedule: &Schedule,
    tz: Tz,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if hi <= lo {
        return None;
    }
    let first = schedule.next_after(lo, tz)?;
    if first > hi {
        return None;
    }
    Some(latest_from(schedule, tz, lo, first, hi))
}

/// The latest fire in `(lo, hi]`, given `first = next_after(lo) <= hi`.
pub(super) fn latest_from(
    schedule: &Schedule,
    tz: Tz,
    lo: DateTime<Utc>,
    first: DateTime<Utc>,
    hi: DateTime<Utc>,
) -> DateTime<Utc> {
    // The common case, one fire in the range, costs one more call.
    match schedule.next_after(first, tz) {
        Some(second) if second <= hi => {}
        _ => return first,
    }
    // Invariant: next_after(a) = found <= hi, and no fire lies in (b, hi].
    let (mut a, mut b, mut found) = (lo, hi, first);
    while b - a > ONE_SECOND {
        let mid = a + (b - a) / 2;
        match schedule.next_after(mid, tz) {
            Some(fire) if fire <= hi => {
                a = mid;
                found = fire;
            }
            _ => b = mid,
        }
    }
    // Every fire in (a, hi] lies in (a, b], at most one second long, so
    // `found` is the only one and the latest.
    found
}

/// The latest fire strictly before `t`, looking back up to ~34 years.
pub(super) fn previous_before(
    schedule: &Schedule,
    tz: Tz,
    t: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let hi = t.checked_sub_signed(EPSILON)?;
    // Gallop back (1 s, 2 s, 4 s, ...) until some fire lies in (t - span,
    // t): O(log gap) calls whatever the schedule.
    let mut seconds = 1_i64;
    while seconds <= MAX_LOOKBACK_SECONDS {
        let lo = t.checked_sub_signed(TimeDelta::try_seconds(seconds)?)?;
        if let Some(fire) = latest_in(schedule, tz, lo, hi) {
            return Some(fire);
        }
        seconds *= 2;
    }
    None
}

/// Fires in a range: the oldest few, and how many there are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct FireCount {
    /// The oldest [`MAX_LISTED`] fires, oldest first.
    pub first: Vec<DateTime<Utc>>,
    /// How many fires the range holds; a lower bound when `capped`.
    pub count: u64,
    /// Counting stopped at [`COUNT_LIMIT`].
    pub capped: bool,
}

/// The fires in `(lo, hi]`, counted up to [`COUNT_LIMIT`].
pub(super) fn fires_in(
    schedule: &Schedule,
    tz: Tz,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
) -> FireCount {
    let mut out = FireCount::default();
    let mut cursor = lo;
    while let Some(fire) = schedule.next_after(cursor, tz).filter(|f| *f <= hi) {
        if out.count == COUNT_LIMIT {
            out.capped = true;
            break;
        }
        if out.first.len() < MAX_LISTED {
            out.first.push(fire);
        }
        out.count += 1;
        cursor = fire;
    }
    out
}
