//! The decision: the rules of the module documentation applied in passes
//! over the items in one canonical order, so the input order cannot change
//! the outcome.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};

use super::{Action, ChainBreak, Decision, Item, ItemKind, ItemStatus, Policy, Reason};

/// Newest first; equal times by id descending (as `list` orders them),
/// then by every other field so that even duplicates sort one way.
pub(super) fn canonical_order(a: &Item, b: &Item) -> Ordering {
    b.time
        .cmp(&a.time)
        .then_with(|| b.id.cmp(&a.id))
        .then_with(|| a.job.cmp(&b.job))
        .then_with(|| a.kind.cmp(&b.kind))
        .then_with(|| a.status.cmp(&b.status))
        .then_with(|| a.parent.cmp(&b.parent))
}

/// Where an incremental's chain stops being usable.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Break {
    at: String,
    problem: ChainBreak,
}

/// The state of the ancestors of an incremental: `Ok` when every one is
/// present and complete down to a self-contained backup.
type ChainState = Result<(), Break>;

/// Ages are only taken of backups not in the future; should one be,
/// zero is the answer that keeps it.
fn age(now: DateTime<Utc>, time: DateTime<Utc>) -> Duration {
    (now - time).to_std().unwrap_or(Duration::ZERO)
}

pub(super) fn decide<'p>(
    items: &[Item],
    policy_of: &dyn Fn(ItemKind) -> Option<&'p Policy>,
    now: DateTime<Utc>,
) -> Vec<Decision> {
    let mut sorted: Vec<&Item> = items.iter().collect();
    sorted.sort_by(|a, b| canonical_order(a, b));
    let items = sorted;
    let policies: Vec<Option<&Policy>> = items.iter().map(|it| policy_of(it.kind)).collect();
    let parents = resolve_parents(&items);
    let chains = chain_states(&items, &parents);
    let n = items.len();
    let mut keeps: Vec<Vec<Reason>> = vec![Vec::new(); n];
    let mut deletes: Vec<Vec<Reason>> = vec![Vec::new(); n];

    // Rules 1, 2 (age and broken chains), 4, 5 and 6: each item alone.
    for (i, item) in items.iter().enumerate() {
        let Some(policy) = policies[i] else {
            keeps[i].push(Reason::OtherPolicy);
            continue;
        };
        if item.time > now {
            let ahead = (item.time - now).to_std().unwrap_or(Duration::ZERO);
            keeps[i].push(Reason::InFuture { ahead });
            continue;
        }
        let age = age(now, item.time);
        if item.status != ItemStatus::Complete {
            let grace = policy.partial_grace;
            if age < grace {
                keeps[i].push(Reason::PartialWithinGrace { age, grace });
            } else {
                deletes[i].push(Reason::PartialPastGrace { age, grace });
            }
            continue;
        }
        if let Some(Err(broken)) = &chains[i] {
            deletes[i].push(Reason::BrokenChain {
                missing: broken.at.clone(),
                problem: broken.problem,
            });
            continue;
        }
        let max_age = policy.max_age;
        if age < max_age {
            keeps[i].push(Reason::WithinMaxAge { age, max_age });
        } else {
            deletes[i].push(Reason::Expired { age, max_age });
        }
    }

    // The candidates of the count-based rules: complete, governed, not in
    // the future (whose age means nothing), newest first.
    let candidate = |i: usize| {
        policies[i].is_some() && items[i].status == ItemStatus::Complete && items[i].time <= now
    };

    // Rule 1: calendar keeps, min_keep and the newest, per self-contained
    // kind, each kind by its own policy.
    for kind in [ItemKind::Full, ItemKind::Manual] {
        let Some(policy) = policy_of(kind) else {
            continue;
        };
        let own: Vec<usize> = (0..n)
            .filter(|&i| items[i].kind == kind && candidate(i))
            .collect();
        let periods = [
            ("daily", policy.keep_daily),
            ("weekly", policy.keep_weekly),
            ("monthly", policy.keep_monthly),
        ];
        for (period, count) in periods {
            let Some(count) = count else { continue };
            for (i, bucket) in calendar_keeps(&items, &own, period, count) {
                keeps[i].push(Reason::CalendarKeep { period, bucket });
            }
        }
        let min_keep = usize::try_from(policy.min_keep).unwrap_or(usize::MAX);
        for &i in own.iter().take(min_keep) {
            keeps[i].push(Reason::MinKeep {
                min_keep: policy.min_keep,
            });
        }
        // With min_keep >= 1 the newest is kept by it already; saying it
        // twice would only lengthen the dry run.
        if let Some(&newest) = own.first() {
            if policy.min_keep == 0 {
                keeps[newest].push(Reason::NewestComplete);
            }
        }
    }

    // Rule 2: the newest point the policy can restore to stays, even if it
    // is an incremental past its age (a job pair whose source went away).
    let restorable = (0..n).find(|&i| candidate(i) && chains[i].as_ref().is_none_or(Result::is_ok));
    if let Some(i) = restorable {
        if items[i].kind == ItemKind::Incremental {
            keeps[i].push(Reason::NewestRestorable);
        }
    }

    // Rule 3: the chain of every kept incremental. Newest first, so each
    // ancestor names its newest kept descendant, and a walk can stop at an
    // ancestor already protected: a newer walk protected everything below.
    let mut protected = vec![false; n];
    for i in 0..n {
        let restorable_chain = matches!(chains[i], Some(Ok(())));
        if keeps[i].is_empty() || !restorable_chain {
            continue;
        }
        let mut cur = parents[i];
        while let Some(p) = cur {
            if protected[p] {
                break;
            }
            protected[p] = true;
            let self_contained = items[p].kind.is_self_contained();
            if policies[p].is_some() {
                keeps[p].push(if self_contained {
                    Reason::BaseOfKeptIncremental {
                        incremental: items[i].id.clone(),
                    }
                } else {
                    Reason::ChainAncestor {
                        of: items[i].id.clone(),
                    }
                });
            }
            if self_contained {
                break;
            }
            cur = parents[p];
        }
    }

    items
        .iter()
        .zip(keeps.into_iter().zip(deletes))
        .map(|(item, (keep, delete))| {
            let (action, reasons) = if keep.is_empty() {
                (Action::Delete, delete)
            } else {
                (Action::Keep, keep)
            };
            Decision {
                id: item.id.clone(),
                job: item.job.clone(),
                kind: item.kind,
                status: item.status,
                action,
                reasons,
            }
        })
        .collect()
}

/// The items that name `period` buckets, restic's way: walking `own`
/// (newest first), the first item of each new bucket is kept until
/// `count` buckets have one.
fn calendar_keeps(
    items: &[&Item],
    own: &[usize],
    period: &'static str,
    count: u32,
) -> Vec<(usize, String)> {
    let mut kept = Vec::new();
    let mut last: Option<String> = None;
    let mut remaining = count;
    for &i in own {
        if remaining == 0 {
            break;
        }
        let bucket = bucket_of(period, items[i].time);
        if last.as_ref() != Some(&bucket) {
            last = Some(bucket.clone());
            kept.push((i, bucket));
            remaining -= 1;
        }
    }
    kept
}

/// The UTC day (`2026-11-21`), ISO week (`2026-W47`) or month (`2026-11`).
fn bucket_of(period: &str, time: DateTime<Utc>) -> String {
    match period {
        "daily" => time.format("%Y-%m-%d").to_string(),
        "weekly" => {
            let week = time.iso_week();
            format!("{}-W{:02}", week.year(), week.week())
        }
        _ => time.format("%Y-%m").to_string(),
    }
}

/// The index of each incremental's parent among `items`, if present. Ids
/// are unique within a job but two jobs can share one (the same second and
/// kind), so among several the same job wins, then a complete one, then
/// the first job name: any rule will do as long as it is fixed.
fn resolve_parents(items: &[&Item]) -> Vec<Option<usize>> {
    let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        by_id.entry(item.id.as_str()).or_default().push(i);
    }
    items
        .iter()
        .map(|child| {
            if child.kind.is_self_contained() {
                return None;
            }
            let found = by_id.get(child.parent.as_deref()?)?;
            found.iter().copied().min_by_key(|&p| {
                let parent = items[p];
                (
                    parent.job != child.job,
                    parent.status != ItemStatus::Complete,
                    parent.job.as_str(),
                    p,
                )
            })
        })
        .collect()
}

/// What the next link of an incremental's chain is.
enum Link {
    /// A complete self-contained parent: the chain is whole.
    Base,
    /// A complete incremental parent: look further.
    Next(usize),
    Broken(Break),
}

fn link(items: &[&Item], parents: &[Option<usize>], i: usize) -> Link {
    let Some(parent_id) = &items[i].parent else {
        return Link::Broken(Break {
            at: items[i].id.clone(),
            problem: ChainBreak::NoParent,
        });
    };
    let broken = |problem| {
        Link::Broken(Break {
            at: parent_id.clone(),
            problem,
        })
    };
    let Some(p) = parents[i] else {
        return broken(ChainBreak::Missing);
    };
    match items[p].status {
        ItemStatus::Partial => broken(ChainBreak::Partial),
        ItemStatus::Invalid => broken(ChainBreak::Invalid),
        ItemStatus::Complete if items[p].kind.is_self_contained() => Link::Base,
        ItemStatus::Complete => Link::Next(p),
    }
}

/// The chain state of every incremental (None for the others), whatever
/// its own status. Each walk stops at an item already judged, and marks
/// the items on its path on the way, so a loop in corrupt parents is found
/// and the whole pass is linear.
fn chain_states(items: &[&Item], parents: &[Option<usize>]) -> Vec<Option<ChainState>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let n = items.len();
    let mut states: Vec<Option<ChainState>> = vec![None; n];
    let mut marks = vec![Mark::New; n];
    for start in 0..n {
        if items[start].kind.is_self_contained() || marks[start] != Mark::New {
            continue;
        }
        let mut path = Vec::new();
        let mut cur = start;
        let state = loop {
            match marks[cur] {
                // Done items always have a state; were one missing, "whole"
                // is the answer that deletes nothing.
                Mark::Done => break states[cur].clone().unwrap_or(Ok(())),
                Mark::OnPath => {
                    break Err(Break {
                        at: items[cur].id.clone(),
                        problem: ChainBreak::Loop,
                    })
                }
                Mark::New => {}
            }
            marks[cur] = Mark::OnPath;
            path.push(cur);
            match link(items, parents, cur) {
                Link::Base => break Ok(()),
                Link::Broken(broken) => break Err(broken),
                Link::Next(p) => cur = p,
            }
        };
        for i in path {
            states[i] = Some(state.clone());
            marks[i] = Mark::Done;
        }
    }
    states
}
