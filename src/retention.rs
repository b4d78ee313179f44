//! Retention: which backups to keep and which to delete, decided by a pure
//! function of the backups, the policy and the current time. Nothing here
//! reads the disk, the clock or the configuration, so every rule can be
//! tested exhaustively and `prune --dry-run` shows exactly what `prune`
//! would do.
//!
//! # The rules
//!
//! A policy governs some kinds of backup (a full/incremental job pair
//! governs fulls and incrementals, a manual job its manual backups). Fulls
//! and manuals are *self-contained*; an incremental is an oplog slice that
//! can only be restored on top of its `parent`, that parent's parent, ...,
//! down to a complete self-contained backup (its *chain*).
//!
//! 1. A complete self-contained backup is kept while younger than
//!    `max_age` ([`Reason::WithinMaxAge`]). Calendar keeps add to that,
//!    with restic's semantics computed in UTC: for `keep_daily = N`, walk
//!    the backups of that kind newest first and keep the newest backup of
//!    each of the last N distinct days that have one; the same for ISO weeks
//!    and months ([`Reason::CalendarKeep`]). The `min_keep` newest complete
//!    ones are kept whatever their age ([`Reason::MinKeep`]), and the newest
//!    complete one always is (by `min_keep`, or [`Reason::NewestComplete`]
//!    when it is 0), so a source that stopped working never ages out its
//!    last backup.
//! 2. A complete incremental is kept while younger than `max_age` if its
//!    chain is complete: every parent present and complete. One whose chain
//!    is broken (a parent missing, partial or invalid, or a loop) cannot be
//!    restored and is deleted ([`Reason::BrokenChain`]); nothing else is
//!    ever deleted because of a broken chain. Calendar keeps and `min_keep`
//!    count self-contained backups only (they are the long-term restore
//!    points); the newest restorable backup of the policy is always kept,
//!    even when it is an incremental ([`Reason::NewestRestorable`]), which
//!    also protects the parent of an incremental that is being written.
//! 3. Every ancestor of a kept incremental is kept, expired or not
//!    ([`Reason::BaseOfKeptIncremental`], [`Reason::ChainAncestor`]), so a
//!    kept incremental is always restorable.
//! 4. A partial or invalid backup is kept for `partial_grace` (it may still
//!    be running, or be repaired: [`Reason::PartialWithinGrace`]) and
//!    deleted after it ([`Reason::PartialPastGrace`]).
//! 5. A backup dated after `now` is kept ([`Reason::InFuture`]): the clock
//!    of the machine that wrote it, or ours, is wrong, and age-based rules
//!    mean nothing for it. Such backups do not count for rules 1 and 2.
//! 6. A backup of a kind the policy does not govern is never touched
//!    ([`Reason::OtherPolicy`]): a full job's retention never deletes a
//!    manual backup.
//!
//! A backup is kept when any rule keeps it. The result does not depend on
//! the order of the input, and is monotone in `now`: a backup kept at some
//! `now` is kept at every earlier `now`, so a clock that jumps back never
//! deletes more.
//!
//! Parents are looked up by id among the given items, so the items must be
//! one job's backups or one job pair's (fulls and the incrementals built on
//! them): an incremental whose parent was left out looks broken and is
//! deleted.

mod decide;
mod item;
pub mod prune;
mod reason;
mod render;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_gen;
#[cfg(test)]
mod tests_props;
#[cfg(test)]
mod tests_snapshot;
#[cfg(test)]
mod tests_text;

use std::time::Duration;

use chrono::{DateTime, Utc};

pub use reason::{days_hours, ChainBreak, Reason};
pub use render::render;

use crate::catalog::BackupKind;
use crate::config::RetentionPolicy;

/// What kind of backup an [`Item`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemKind {
    Full,
    /// An oplog slice on top of its parent.
    Incremental,
    /// A full backup taken on request.
    Manual,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Full => "full",
            ItemKind::Incremental => "incremental",
            ItemKind::Manual => "manual",
        }
    }

    /// Whether a backup of this kind restores on its own (ends a chain).
    pub fn is_self_contained(self) -> bool {
        !matches!(self, ItemKind::Incremental)
    }
}

impl From<BackupKind> for ItemKind {
    fn from(kind: BackupKind) -> ItemKind {
        match kind {
            BackupKind::Full => ItemKind::Full,
            BackupKind::Incremental => ItemKind::Incremental,
            BackupKind::Manual => ItemKind::Manual,
        }
    }
}

/// Whether a backup can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemStatus {
    Complete,
    /// Still being written, or interrupted.
    Partial,
    /// Committed but unusable (no or a damaged manifest).
    Invalid,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Complete => "complete",
            ItemStatus::Partial => "partial",
            ItemStatus::Invalid => "invalid",
        }
    }
}

/// One backup as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    pub job: String,
    pub kind: ItemKind,
    pub status: ItemStatus,
    /// The instant a complete backup restores to (T1, or the end of an
    /// incremental's slice); for partial and invalid backups, the time in
    /// the id.
    pub time: DateTime<Utc>,
    /// The id of the backup an incremental is applied on top of.
    pub parent: Option<String>,
}

/// How long backups of one kind are kept (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub max_age: Duration,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub min_keep: u32,
    /// How long a partial or invalid backup is left alone.
    pub partial_grace: Duration,
}

impl Policy {
    /// Long enough for any backup to finish, short enough that an
    /// interrupted one does not hold its disk space for long.
    pub const DEFAULT_PARTIAL_GRACE: Duration = Duration::from_secs(24 * 3600);

    /// Only an age limit, with `min_keep = 1` and the default grace.
    pub fn max_age(max_age: Duration) -> Policy {
        Policy {
            max_age,
            keep_daily: None,
            keep_weekly: None,
            keep_monthly: None,
            min_keep: 1,
            partial_grace: Policy::DEFAULT_PARTIAL_GRACE,
        }
    }
}

impl From<&RetentionPolicy> for Policy {
    fn from(p: &RetentionPolicy) -> Policy {
        Policy {
            max_age: p.max_age,
            keep_daily: p.keep_daily,
            keep_weekly: p.keep_weekly,
            keep_monthly: p.keep_monthly,
            min_keep: p.min_keep,
            partial_grace: Policy::DEFAULT_PARTIAL_GRACE,
        }
    }
}

/// The policies of a job pair whose fulls and incrementals form chains:
/// they are judged together (an incremental's base full must outlive it)
/// but each kind by its own policy. Only `max_age` and `partial_grace` of
/// `incremental` apply: calendar keeps and `min_keep` count fulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainPolicy {
    pub full: Policy,
    pub incremental: Policy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Keep,
    Delete,
}

/// What retention does with one backup, and every reason why. A kept
/// backup lists all the rules that keep it; a deleted one why it may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub id: String,
    pub job: String,
    pub kind: ItemKind,
    /// With `job` and `id`, tells a `.partial-` directory apart from a
    /// committed backup of the same id.
    pub status: ItemStatus,
    pub action: Action,
    /// Never empty.
    pub reasons: Vec<Reason>,
}

/// Decides for every item: those of `kinds` by `policy`, the others are
/// kept untouched ([`Reason::OtherPolicy`]). Newest first, ties by id
/// (descending, as `list` shows them).
pub fn apply(
    items: &[Item],
    policy: &Policy,
    kinds: &[ItemKind],
    now: DateTime<Utc>,
) -> Vec<Decision> {
    let policy_of = |kind: ItemKind| kinds.contains(&kind).then_some(policy);
    decide::decide(items, &policy_of, now)
}

/// Decides for a job pair's fulls and incrementals together, each kind by
/// its own policy; manual backups are kept untouched.
pub fn apply_chain(items: &[Item], policy: &ChainPolicy, now: DateTime<Utc>) -> Vec<Decision> {
    let policy_of = |kind: ItemKind| match kind {
        ItemKind::Full => Some(&policy.full),
        ItemKind::Incremental => Some(&policy.incremental),
        ItemKind::Manual => None,
    };
    decide::decide(items, &policy_of, now)
}
