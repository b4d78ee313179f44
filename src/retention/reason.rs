//! Why a backup is kept or deleted, as sentences an operator reads in
//! `prune --dry-run` and in the log of every deletion.

use std::fmt;
use std::time::Duration;

use super::Action;

/// What is wrong with the link of a chain that [`Reason::BrokenChain`]
/// names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainBreak {
    /// No backup with that id is there.
    Missing,
    /// It never completed.
    Partial,
    /// Its manifest is missing or damaged.
    Invalid,
    /// The parents lead back to that backup: a corrupt manifest.
    Loop,
    /// That incremental names no parent at all.
    NoParent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Younger than the policy's `max_age`.
    WithinMaxAge { age: Duration, max_age: Duration },
    /// The newest backup of a day, ISO week or month that a `keep_*` asks
    /// for; `period` is `daily`, `weekly` or `monthly`, `bucket` e.g.
    /// `2026-11-21`, `2026-W47`, `2026-11`.
    CalendarKeep {
        period: &'static str,
        bucket: String,
    },
    /// One of the `min_keep` newest complete backups of its kind.
    MinKeep { min_keep: u32 },
    /// The newest complete backup of its kind.
    NewestComplete,
    /// The newest backup the policy can restore to, here an incremental.
    NewestRestorable,
    /// The full (or manual) backup a kept incremental is built on.
    BaseOfKeptIncremental { incremental: String },
    /// An incremental between a kept incremental and its base.
    ChainAncestor { of: String },
    /// Dated after `now`.
    InFuture { ahead: Duration },
    /// Partial or invalid, but recent: it may still be running.
    PartialWithinGrace { age: Duration, grace: Duration },
    /// A kind of backup this policy does not govern.
    OtherPolicy,
    /// Older than `max_age`, and no other rule keeps it.
    Expired { age: Duration, max_age: Duration },
    /// An incremental that cannot be restored: `missing` is the first
    /// backup of its chain that is not there or not usable.
    BrokenChain {
        missing: String,
        problem: ChainBreak,
    },
    /// Partial or invalid for longer than the grace period.
    PartialPastGrace { age: Duration, grace: Duration },
}

impl Reason {
    /// Whether this reason keeps or deletes.
    pub fn action(&self) -> Action {
        match self {
            Reason::Expired { .. }
            | Reason::BrokenChain { .. }
            | Reason::PartialPastGrace { .. } => Action::Delete,
            _ => Action::Keep,
        }
    }

    /// The sentence without its "kept: "/"deleted: " lead, for lists
    /// where the action is shown once.
    pub fn describe(&self) -> String {
        match self {
            Reason::WithinMaxAge { age, max_age } => format!(
                "{} old, younger than retention {}",
                days_hours(*age),
                days_hours(*max_age)
            ),
            Reason::CalendarKeep { period, bucket } => {
                format!("newest backup of {bucket} (keep_{period})")
            }
            Reason::MinKeep { min_keep: 1 } => {
                "the newest complete backup of its kind (min_keep 1)".to_string()
            }
            Reason::MinKeep { min_keep } => format!(
                "one of the {min_keep} newest complete backups of its kind (min_keep {min_keep})"
            ),
            Reason::NewestComplete => {
                "the newest complete backup of its kind, which is always kept".to_string()
            }
            Reason::NewestRestorable => {
                "the newest backup that can be restored, which is always kept".to_string()
            }
            Reason::BaseOfKeptIncremental { incremental } => {
                format!("the base of kept incremental {incremental}")
            }
            Reason::ChainAncestor { of } => {
                format!("in the chain of kept incremental {of}, which needs it")
            }
            Reason::InFuture { ahead } => format!(
                "dated {} in the future (a wrong clock?), so its age is unknown",
                days_hours(*ahead)
            ),
            Reason::PartialWithinGrace { age, grace } => format!(
                "incomplete or invalid, but only {} old: it may still be running \
                 (removed after {})",
                days_hours(*age),
                days_hours(*grace)
            ),
            Reason::OtherPolicy => "governed by another job's retention, left alone".to_string(),
            Reason::Expired { age, max_age } => format!(
                "{} old, older than retention {}",
                days_hours(*age),
                days_hours(*max_age)
            ),
            Reason::BrokenChain { missing, problem } => {
                let what = match problem {
                    ChainBreak::Missing => "is missing",
                    ChainBreak::Partial => "never completed",
                    ChainBreak::Invalid => "is invalid",
                    ChainBreak::Loop => "is its own ancestor (corrupt parents)",
                    ChainBreak::NoParent => "names no parent",
                };
                format!("cannot be restored: {missing} in its chain {what}")
            }
            Reason::PartialPastGrace { age, grace } => format!(
                "incomplete or invalid for {}, longer than the {} grace period",
                days_hours(*age),
                days_hours(*grace)
            ),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lead = match self.action() {
            Action::Keep => "kept",
            Action::Delete => "deleted",
        };
        write!(f, "{lead}: {}", self.describe())
    }
}

/// An age as days and hours ("41d 3h", "41d", "6h"), minutes under an
/// hour ("45m"): retention works in days, and seconds are noise there.
pub fn days_hours(d: Duration) -> String {
    let secs = d.as_secs();
    let days = secs / 86_400;
    let hours = secs % 86_400 / 3_600;
    match (days, hours) {
        (0, 0) => format!("{}m", secs / 60),
        (0, h) => format!("{h}h"),
        (d, 0) => format!("{d}d"),
        (d, h) => format!("{d}d {h}h"),
    }
}
