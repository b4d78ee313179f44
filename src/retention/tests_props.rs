//! Property tests: thousands of random histories (see
//! [`history`](super::tests_gen::history)) under random policies, each
//! decision checked against the rules by an independent, deliberately
//! naive reading of them.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::TimeDelta;

use super::decide::canonical_order;
use super::tests_gen::{history, policy, Rng};
use super::*;

const HISTORIES: u64 = 2_500;

/// What judges a history: one policy over some kinds, or a job pair.
enum Scope {
    Kinds(Policy, Vec<ItemKind>),
    Chain(ChainPolicy),
}

impl Scope {
    fn random(rng: &mut Rng) -> Scope {
        let kinds = match rng.below(10) {
            0..=3 => {
                return Scope::Chain(ChainPolicy {
                    full: policy(rng),
                    incremental: policy(rng),
                })
            }
            4..=5 => vec![ItemKind::Full, ItemKind::Incremental],
            6 => vec![ItemKind::Manual],
            7 => vec![ItemKind::Full],
            8 => vec![ItemKind::Incremental],
            _ => vec![ItemKind::Manual, ItemKind::Incremental, ItemKind::Full],
        };
        Scope::Kinds(policy(rng), kinds)
    }

    fn policy_of(&self, kind: ItemKind) -> Option<&Policy> {
        match self {
            Scope::Kinds(policy, kinds) => kinds.contains(&kind).then_some(policy),
            Scope::Chain(chain) => match kind {
                ItemKind::Full => Some(&chain.full),
                ItemKind::Incremental => Some(&chain.incremental),
                ItemKind::Manual => None,
            },
        }
    }

    fn run(&self, items: &[Item], now: DateTime<Utc>) -> Vec<Decision> {
        match self {
            Scope::Kinds(policy, kinds) => apply(items, policy, kinds, now),
            Scope::Chain(chain) => apply_chain(items, chain, now),
        }
    }
}

/// The complete backups by id (the histories never give two complete
/// backups one id), and which of them can be restored.
struct Complete<'i> {
    by_id: HashMap<&'i str, &'i Item>,
    restorable: HashMap<&'i str, bool>,
}

impl<'i> Complete<'i> {
    fn new(items: &'i [Item]) -> Complete<'i> {
        let complete = items.iter().filter(|it| it.status == ItemStatus::Complete);
        let by_id: HashMap<&str, &Item> = complete.map(|it| (it.id.as_str(), it)).collect();
        let mut restorable = HashMap::new();
        for &item in by_id.values() {
            // Follow the parents until a known answer, a self-contained
            // backup, a missing link or (more steps than backups) a loop.
            let mut path = Vec::new();
            let mut cur = item;
            let answer = loop {
                if let Some(&known) = restorable.get(cur.id.as_str()) {
                    break known;
                }
                if cur.kind.is_self_contained() {
                    path.push(cur);
                    break true;
                }
                if path.len() > by_id.len() {
                    break false;
                }
                path.push(cur);
                match cur.parent.as_deref().and_then(|p| by_id.get(p)) {
                    Some(parent) => cur = parent,
                    None => break false,
                }
            };
            for it in path {
                restorable.insert(it.id.as_str(), answer);
            }
        }
        Complete { by_id, restorable }
    }

    /// The complete parent of an incremental.
    fn parent(&self, item: &Item) -> Option<&'i Item> {
        self.by_id.get(item.parent.as_deref()?).copied()
    }

    /// Whether every ancestor of `item` is there and complete, down to a
    /// self-contained backup (whatever `item`'s own status).
    fn chain_ok(&self, item: &Item) -> bool {
        item.kind.is_self_contained()
            || self
                .parent(item)
                .is_some_and(|p| self.restorable.get(p.id.as_str()) == Some(&true))
    }
}

fn age(now: DateTime<Utc>, item: &Item) -> Duration {
    (now - item.time).to_std().unwrap_or_default()
}

/// The variant of a reason (and of a chain break), to count which rules
/// the random histories reach.
fn name_of(reason: &Reason) -> &'static str {
    match reason {
        Reason::WithinMaxAge { .. } => "WithinMaxAge",
        Reason::CalendarKeep { .. } => "CalendarKeep",
        Reason::MinKeep { .. } => "MinKeep",
        Reason::NewestComplete => "NewestComplete",
        Reason::NewestRestorable => "NewestRestorable",
        Reason::BaseOfKeptIncremental { .. } => "BaseOfKeptIncremental",
        Reason::ChainAncestor { .. } => "ChainAncestor",
        Reason::InFuture { .. } => "InFuture",
        Reason::PartialWithinGrace { .. } => "PartialWithinGrace",
        Reason::OtherPolicy => "OtherPolicy",
        Reason::Expired { .. } => "Expired",
        Reason::PartialPastGrace { .. } => "PartialPastGrace",
        Reason::BrokenChain { problem, .. } => match problem {
            ChainBreak::Missing => "BrokenChain/Missing",
            ChainBreak::Partial => "BrokenChain/Partial",
            ChainBreak::Invalid => "BrokenChain/Invalid",
            ChainBreak::Loop => "BrokenChain/Loop",
            ChainBreak::NoParent => "BrokenChain/NoParent",
        },
    }
}

/// Checks one run against the rules; returns the decisions paired with
/// their items.
fn check<'i>(
    items: &'i [Item],
    decisions: &[Decision],
    scope: &Scope,
    now: DateTime<Utc>,
    seen: &mut BTreeMap<&'static str, usize>,
) -> Vec<(&'i Item, Action)> {
    assert_eq!(decisions.len(), items.len());
    let mut sorted: Vec<&Item> = items.iter().collect();
    sorted.sort_by(|a, b| canonical_order(a, b));
    let mut pairs = Vec::new();
    for (item, d) in sorted.iter().zip(decisions) {
        assert_eq!(
            (&d.id, &d.job, d.kind, d.status),
            (&item.id, &item.job, item.kind, item.status)
        );
        pairs.push((*item, d.action));
    }
    for pair in sorted.windows(2) {
        assert!(pair[0].time >= pair[1].time, "not newest first");
    }
    let kept: HashSet<(&str, &str, ItemStatus)> = decisions
        .iter()
        .filter(|d| d.action == Action::Keep)
        .map(|d| (d.job.as_str(), d.id.as_str(), d.status))
        .collect();
    let complete = Complete::new(items);
    let is_kept = |it: &Item| kept.contains(&(it.job.as_str(), it.id.as_str(), it.status));

    for (item, d) in sorted.iter().zip(decisions) {
        let item: &Item = item;
        assert!(!d.reasons.is_empty(), "{} has no reason", d.id);
        for reason in &d.reasons {
            assert_eq!(reason.action(), d.action, "{}: {reason}", d.id);
            *seen.entry(name_of(reason)).or_default() += 1;
        }
        let Some(policy) = scope.policy_of(item.kind) else {
            // (f) and rule 6: other kinds are never touched.
            assert_eq!(d.reasons, [Reason::OtherPolicy], "{}", d.id);
            continue;
        };
        assert!(!d.reasons.contains(&Reason::OtherPolicy));
        if item.time > now {
            assert_eq!(d.action, Action::Keep, "{} is in the future", d.id);
            continue;
        }
        let age = age(now, item);
        if item.status != ItemStatus::Complete {
            let within = age < policy.partial_grace;
            assert_eq!(d.action == Action::Keep, within, "grace of {}", d.id);
            continue;
        }
        let broken = !complete.chain_ok(item);
        let broken_reason = matches!(d.reasons[..], [Reason::BrokenChain { .. }]);
        assert_eq!(broken, broken_reason, "{}: {:?}", d.id, d.reasons);
        if !broken && age < policy.max_age {
            assert_eq!(d.action, Action::Keep, "{} is young", d.id);
        }
        if let [Reason::Expired {
            age: reported,
            max_age,
        }] = d.reasons[..]
        {
            assert!(reported >= max_age && reported == age);
        }
    }

    // (a) a kept incremental has every ancestor, complete and kept (its
    // parent is, and is checked in turn); one kept by this policy for its
    // own sake has a complete chain.
    for (item, d) in sorted.iter().zip(decisions) {
        if item.kind != ItemKind::Incremental || d.action != Action::Keep {
            continue;
        }
        let governed = scope.policy_of(item.kind).is_some();
        match complete.parent(item) {
            Some(parent) if complete.chain_ok(item) => {
                assert!(is_kept(parent), "{} needs {}", item.id, parent.id);
            }
            _ => assert!(
                !governed || item.status != ItemStatus::Complete || item.time > now,
                "kept {} cannot be restored: {:?}",
                item.id,
                d.reasons
            ),
        }
    }

    // (b) and (c), per self-contained kind the scope governs.
    for kind in [ItemKind::Full, ItemKind::Manual] {
        let Some(policy) = scope.policy_of(kind) else {
            continue;
        };
        let own: Vec<&Item> = items
            .iter()
            .filter(|it| it.kind == kind && it.status == ItemStatus::Complete)
            .collect();
        if let Some(newest) = own.iter().map(|it| it.time).max() {
            assert!(own.iter().any(|it| it.time == newest && is_kept(it)));
        }
        if let Some(newest_past) = own
            .iter()
            .filter(|it| it.time <= now)
            .map(|it| it.time)
            .max()
        {
            assert!(own.iter().any(|it| it.time == newest_past && is_kept(it)));
        }
        let kept_own = own.iter().filter(|it| is_kept(it)).count();
        let min_keep = usize::try_from(policy.min_keep).unwrap_or(usize::MAX);
        assert!(
            kept_own >= min_keep.min(own.len()),
            "min_keep {min_keep}: {kept_own}"
        );
    }

    // The newest backup the scope can restore to is kept.
    let restorable = sorted.iter().find(|it| {
        scope.policy_of(it.kind).is_some()
            && it.status == ItemStatus::Complete
            && it.time <= now
            && complete.chain_ok(it)
    });
    if let Some(newest) = restorable {
        assert!(is_kept(newest), "newest restorable {} deleted", newest.id);
    }
    pairs
}

/// Runs every check on the histories of `seeds`; returns how often each
/// reason was given.
fn run_histories(seeds: std::ops::Range<u64>) -> BTreeMap<&'static str, usize> {
    let mut seen = BTreeMap::new();
    let mut totals = (0usize, 0usize);
    for seed in seeds {
        let mut rng = Rng::new(seed);
        let (items, now) = history(&mut rng);
        let scope = Scope::random(&mut rng);
        let decisions = scope.run(&items, now);
        let pairs = check(&items, &decisions, &scope, now, &mut seen);
        totals.0 += pairs.len();
        totals.1 += pairs.iter().filter(|(_, a)| *a == Action::Delete).count();

        // (d) the input order does not matter.
        let mut shuffled = items.clone();
        rng.shuffle(&mut shuffled);
        assert_eq!(
            scope.run(&shuffled, now),
            decisions,
            "seed {seed}: order matters"
        );

        // (e) monotone in now: what is kept now was kept at any earlier
        // now, a second ago or weeks ago. Every other history also gets
        // all the checks at those times.
        for earlier in [1, 1 + rng.below(3 * 86_400), 1 + rng.below(60 * 86_400)] {
            let then = now - TimeDelta::seconds(earlier as i64);
            let before = scope.run(&items, then);
            if seed % 2 == 0 {
                check(&items, &before, &scope, then, &mut seen);
            }
            for (d_now, d_then) in decisions.iter().zip(&before) {
                assert!(
                    d_now.action == Action::Delete || d_then.action == Action::Keep,
                    "seed {seed}: {} kept at {now} but deleted at {then}: {:?}",
                    d_now.id,
                    d_then.reasons
                );
            }
        }

        // Rendering is slow in debug builds and its format is tested
        // elsewhere: a sample shows it copes with anything.
        if seed % 8 == 0 {
            let text = render(&decisions, &items, now);
            assert_eq!(text.lines().count(), items.len() + 3);
        }
    }
    assert!(totals.1 > totals.0 / 10, "too few deletions: {totals:?}");
    seen
}

/// The generator reaches every rule, so the checks are not vacuous.
fn assert_every_rule_reached(seen: &BTreeMap<&'static str, usize>) {
    for name in [
        "WithinMaxAge",
        "CalendarKeep",
        "MinKeep",
        "NewestComplete",
        "NewestRestorable",
        "BaseOfKeptIncremental",
        "ChainAncestor",
        "InFuture",
        "PartialWithinGrace",
        "OtherPolicy",
        "Expired",
        "PartialPastGrace",
        "BrokenChain/Missing",
        "BrokenChain/Partial",
        "BrokenChain/Invalid",
        "BrokenChain/Loop",
        "BrokenChain/NoParent",
    ] {
        assert!(
            seen.get(name).copied().unwrap_or(0) >= 5,
            "{name} rarely seen: {seen:?}"
        );
    }
}

// Two halves, so that the test harness runs them in parallel.
#[test]
fn random_histories_obey_every_rule_1() {
    assert_every_rule_reached(&run_histories(0..HISTORIES / 2));
}

#[test]
fn random_histories_obey_every_rule_2() {
    assert_every_rule_reached(&run_histories(HISTORIES / 2..HISTORIES));
}

#[test]
fn manual_backups_survive_every_full_or_incremental_policy() {
    for seed in 0..500 {
        let mut rng = Rng::new(1_000_000 + seed);
        let (items, now) = history(&mut rng);
        let chain = ChainPolicy {
            full: policy(&mut rng),
            incremental: policy(&mut rng),
        };
        let pair = [ItemKind::Full, ItemKind::Incremental];
        for decisions in [
            apply_chain(&items, &chain, now),
            apply(&items, &chain.full, &pair, now),
        ] {
            for d in decisions.iter().filter(|d| d.kind == ItemKind::Manual) {
                assert_eq!(d.action, Action::Keep, "seed {seed}: {}", d.id);
            }
        }
    }
}
