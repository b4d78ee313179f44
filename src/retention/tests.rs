//! Unit tests of every rule and reason, on small hand-made histories.

use super::tests_gen::{at, days, full, hours, incr, manual, with_status};
use super::*;

const NOW: &str = "2026-11-21T14:30:00Z";
const CHAIN: [ItemKind; 2] = [ItemKind::Full, ItemKind::Incremental];

fn now() -> DateTime<Utc> {
    at(NOW)
}

fn decide(items: &[Item], policy: &Policy, kinds: &[ItemKind]) -> Vec<Decision> {
    apply(items, policy, kinds, now())
}

/// The decision for the backup with this id.
fn of<'d>(decisions: &'d [Decision], item: &Item) -> &'d Decision {
    decisions
        .iter()
        .find(|d| d.id == item.id && d.job == item.job && d.status == item.status)
        .unwrap()
}

fn kept(decisions: &[Decision], item: &Item) -> bool {
    of(decisions, item).action == Action::Keep
}

/// The reasons of one decision, as the sentences operators read.
fn why(decisions: &[Decision], item: &Item) -> Vec<String> {
    of(decisions, item)
        .reasons
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn fulls_younger_than_max_age_are_kept_older_ones_deleted() {
    let young = full("2026-10-23T02:00:00Z"); // 29d 12h
    let old = full("2026-10-10T02:00:00Z"); // 42d 12h
    let out = decide(
        &[old.clone(), young.clone()],
        &Policy::max_age(days(30)),
        &CHAIN,
    );
    assert_eq!(
        of(&out, &young).reasons,
        vec![
            Reason::WithinMaxAge {
                age: days(29) + hours(12) + Duration::from_secs(25 * 60),
                max_age: days(30)
            },
            Reason::MinKeep { min_keep: 1 },
        ]
    );
    assert_eq!(
        why(&out, &old),
        ["deleted: 42d 12h old, older than retention 30d"]
    );
    assert_eq!(of(&out, &old).action, Action::Delete);
}

#[test]
fn max_age_is_exclusive() {
    let exactly = full("2026-11-20T14:25:00Z"); // consistent as of NOW - 1d
    let younger = full("2026-11-20T14:25:01Z");
    let policy = Policy {
        min_keep: 0,
        ..Policy::max_age(days(1))
    };
    let newest = full("2026-11-21T00:00:00Z");
    let out = decide(&[exactly.clone(), younger.clone(), newest], &policy, &CHAIN);
    assert_eq!(
        of(&out, &exactly).reasons,
        [Reason::Expired {
            age: days(1),
            max_age: days(1)
        }]
    );
    assert_eq!(
        of(&out, &younger).reasons,
        [Reason::WithinMaxAge {
            age: days(1) - Duration::from_secs(1),
            max_age: days(1)
        }]
    );
}

#[test]
fn min_keep_keeps_the_newest_complete_fulls_whatever_their_age() {
    let fulls: Vec<Item> = (1..=5)
        .map(|d| full(&format!("2026-09-0{d}T02:00:00Z")))
        .collect();
    let mut items = fulls.clone();
    // A newer partial full does not count towards min_keep.
    items.push(with_status(
        full("2026-09-08T02:00:00Z"),
        ItemStatus::Partial,
    ));
    let policy = Policy {
        min_keep: 3,
        ..Policy::max_age(days(30))
    };
    let out = decide(&items, &policy, &CHAIN);
    let kept_fulls: Vec<bool> = fulls.iter().map(|f| kept(&out, f)).collect();
    assert_eq!(kept_fulls, [false, false, true, true, true]);
    assert_eq!(
        why(&out, &fulls[2]),
        ["kept: one of the 3 newest complete backups of its kind (min_keep 3)"]
    );
    assert_eq!(
        of(&out, &fulls[4]).reasons,
        [Reason::MinKeep { min_keep: 3 }]
    );
}

#[test]
fn the_newest_complete_full_is_kept_even_with_min_keep_zero() {
    let policy = Policy {
        min_keep: 0,
        ..Policy::max_age(Duration::ZERO)
    };
    let older = full("2026-01-01T02:00:00Z");
    let newest = full("2026-02-01T02:00:00Z");
    let broken = with_status(full("2026-03-01T02:00:00Z"), ItemStatus::Invalid);
    let out = decide(
        &[older.clone(), newest.clone(), broken.clone()],
        &policy,
        &CHAIN,
    );
    assert_eq!(of(&out, &newest).reasons, [Reason::NewestComplete]);
    assert!(!kept(&out, &older));
    assert!(matches!(
        of(&out, &broken).reasons[..],
        [Reason::PartialPastGrace { .. }]
    ));
}

#[test]
fn keep_daily_keeps_the_newest_of_each_of_the_last_n_days_that_have_one() {
    // Two fulls on the 10th, one on the 8th, none on the 9th, two on the
    // 7th: keep_daily 3 keeps the newest of the 10th, 8th and 7th.
    let items = [
        full("2026-11-10T14:00:00Z"),
        full("2026-11-10T02:00:00Z"),
        full("2026-11-08T02:00:00Z"),
        full("2026-11-07T20:00:00Z"),
        full("2026-11-07T02:00:00Z"),
        full("2026-11-06T02:00:00Z"),
    ];
    let policy = Policy {
        keep_daily: Some(3),
        min_keep: 0,
        ..Policy::max_age(days(1))
    };
    let out = decide(&items, &policy, &CHAIN);
    let kept_items: Vec<bool> = items.iter().map(|i| kept(&out, i)).collect();
    assert_eq!(kept_items, [true, false, true, true, false, false]);
    assert_eq!(
        why(&out, &items[2]),
        ["kept: newest backup of 2026-11-08 (keep_daily)"]
    );
    assert_eq!(
        of(&out, &items[0]).reasons,
        [
            Reason::CalendarKeep {
                period: "daily",
                bucket: "2026-11-10".to_string()
            },
            Reason::NewestComplete
        ]
    );
}

#[test]
fn keep_weekly_uses_iso_weeks_in_utc_and_keep_monthly_months() {
    let items = [
        full("2027-01-01T02:00:00Z"), // a Friday: ISO week 2026-W53
        full("2026-12-28T02:00:00Z"), // Monday of 2026-W53
        full("2026-12-27T23:00:00Z"), // Sunday of 2026-W52
        full("2026-11-30T02:00:00Z"),
        full("2026-11-01T02:00:00Z"),
    ];
    let policy = Policy {
        keep_weekly: Some(2),
        keep_monthly: Some(3),
        min_keep: 0,
        ..Policy::max_age(Duration::ZERO)
    };
    let out = apply(&items, &policy, &CHAIN, at("2027-02-01T00:00:00Z"));
    let reasons: Vec<Vec<String>> = items.iter().map(|i| why(&out, i)).collect();
    assert_eq!(
        reasons,
        [
            vec![
                "kept: newest backup of 2026-W53 (keep_weekly)",
                "kept: newest backup of 2027-01 (keep_monthly)",
                "kept: the newest complete backup of its kind, which is always kept",
            ],
            vec!["kept: newest backup of 2026-12 (keep_monthly)"],
            vec!["kept: newest backup of 2026-W52 (keep_weekly)"],
            vec!["kept: newest backup of 2026-11 (keep_monthly)"],
            vec!["deleted: 91d 21h old, older than retention 0m"],
        ]
    );
}

#[test]
fn keep_zero_keeps_nothing_more() {
    let items = [full("2026-11-01T02:00:00Z"), full("2026-11-02T02:00:00Z")];
    let policy = Policy {
        keep_daily: Some(0),
        keep_weekly: Some(0),
        keep_monthly: Some(0),
        ..Policy::max_age(days(1))
    };
    let out = decide(&items, &policy, &CHAIN);
    assert!(!kept(&out, &items[0]));
}

#[test]
fn incrementals_follow_max_age_and_keep_their_whole_chain() {
    let base = full("2026-11-10T02:00:00Z");
    let a = incr("2026-11-10T03:00:00Z", &base);
    let b = incr("2026-11-10T04:00:00Z", &a);
    let c = incr("2026-11-20T05:00:00Z", &b); // young
    let other_base = full("2026-11-01T02:00:00Z");
    let expired = incr("2026-11-01T03:00:00Z", &other_base);
    let items = [
        base.clone(),
        a.clone(),
        b.clone(),
        c.clone(),
        other_base,
        expired.clone(),
    ];
    let out = decide(&items, &Policy::max_age(days(2)), &CHAIN);
    assert!(matches!(
        of(&out, &c).reasons[..],
        [Reason::WithinMaxAge { .. }, Reason::NewestRestorable]
    ));
    assert_eq!(
        why(&out, &b),
        [format!(
            "kept: in the chain of kept incremental {}, which needs it",
            c.id
        )]
    );
    assert_eq!(
        of(&out, &a).reasons,
        [Reason::ChainAncestor { of: c.id.clone() }]
    );
    assert_eq!(
        of(&out, &base).reasons,
        [
            Reason::MinKeep { min_keep: 1 },
            Reason::BaseOfKeptIncremental {
                incremental: c.id.clone()
            }
        ]
    );
    assert!(matches!(
        of(&out, &expired).reasons[..],
        [Reason::Expired { .. }]
    ));
}

#[test]
fn a_broken_chain_deletes_its_incrementals_and_nothing_else() {
    let base = full("2026-11-20T02:00:00Z");
    let a = incr("2026-11-20T03:00:00Z", &base);
    let lost = incr("2026-11-20T04:00:00Z", &a); // not in the list
    let b = incr("2026-11-20T05:00:00Z", &lost);
    let c = incr("2026-11-20T06:00:00Z", &b);
    let items = [base.clone(), a.clone(), b.clone(), c.clone()];
    let out = decide(&items, &Policy::max_age(days(7)), &CHAIN);
    assert!(kept(&out, &base) && kept(&out, &a));
    for broken in [&b, &c] {
        assert_eq!(
            of(&out, broken).reasons,
            [Reason::BrokenChain {
                missing: lost.id.clone(),
                problem: ChainBreak::Missing
            }]
        );
    }
    assert_eq!(
        why(&out, &c),
        [format!(
            "deleted: cannot be restored: {} in its chain is missing",
            lost.id
        )]
    );
    // `a` is the newest restorable backup now.
    assert!(of(&out, &a).reasons.contains(&Reason::NewestRestorable));
}

#[test]
fn partial_invalid_looping_and_parentless_links_break_chains() {
    let base = full("2026-11-21T02:00:00Z");
    let partial = with_status(incr("2026-11-21T03:00:00Z", &base), ItemStatus::Partial);
    let on_partial = incr("2026-11-21T04:00:00Z", &partial);
    let invalid_base = with_status(full("2026-11-19T02:00:00Z"), ItemStatus::Invalid);
    let on_invalid = incr("2026-11-19T03:00:00Z", &invalid_base);
    let mut orphan = incr("2026-11-19T04:00:00Z", &base);
    orphan.parent = None;
    let mut x = incr("2026-11-19T05:00:00Z", &base);
    let y = incr("2026-11-19T06:00:00Z", &x);
    x.parent = Some(y.id.clone());
    let items = [
        base.clone(),
        partial.clone(),
        on_partial.clone(),
        invalid_base.clone(),
        on_invalid.clone(),
        orphan.clone(),
        x.clone(),
        y.clone(),
    ];
    let out = decide(&items, &Policy::max_age(days(7)), &CHAIN);
    let broken = |item: &Item, missing: &Item, problem| {
        assert_eq!(
            of(&out, item).reasons,
            [Reason::BrokenChain {
                missing: missing.id.clone(),
                problem
            }],
            "{}",
            item.id
        );
    };
    broken(&on_partial, &partial, ChainBreak::Partial);
    broken(&on_invalid, &invalid_base, ChainBreak::Invalid);
    broken(&orphan, &orphan, ChainBreak::NoParent);
    assert!(matches!(
        of(&out, &x).reasons[..],
        [Reason::BrokenChain {
            problem: ChainBreak::Loop,
            ..
        }]
    ));
    assert!(!kept(&out, &y));
    // The partial and invalid backups themselves are within their grace.
    assert!(kept(&out, &partial) && kept(&out, &base));
    assert!(matches!(
        of(&out, &invalid_base).reasons[..],
        [Reason::PartialPastGrace { .. }]
    ));
    assert_eq!(
        why(&out, &orphan),
        [format!(
            "deleted: cannot be restored: {} in its chain names no parent",
            orphan.id
        )]
    );
}

#[test]
fn partial_and_invalid_backups_get_a_grace_period() {
    let running = with_status(full("2026-11-21T11:00:00Z"), ItemStatus::Partial);
    let stale = with_status(full("2026-11-20T14:00:00Z"), ItemStatus::Partial);
    let damaged = with_status(incr("2026-11-21T13:00:00Z", &stale), ItemStatus::Invalid);
    let items = [running.clone(), stale.clone(), damaged.clone()];
    let out = decide(&items, &Policy::max_age(days(7)), &CHAIN);
    assert_eq!(
        why(&out, &running),
        ["kept: incomplete or invalid, but only 3h old: it may still be running (removed after 1d)"]
    );
    assert!(kept(&out, &damaged));
    assert_eq!(
        why(&out, &stale),
        ["deleted: incomplete or invalid for 1d, longer than the 1d grace period"]
    );
}

#[test]
fn backups_in_the_future_are_kept_and_do_not_count_as_newest() {
    let future = full("2026-11-22T02:00:00Z");
    let future_broken = incr("2026-11-22T03:00:00Z", &full("2026-11-22T01:00:00Z"));
    let newest_past = full("2026-10-01T02:00:00Z");
    let items = [future.clone(), future_broken.clone(), newest_past.clone()];
    let out = decide(&items, &Policy::max_age(days(7)), &CHAIN);
    assert_eq!(
        why(&out, &future),
        ["kept: dated 11h in the future (a wrong clock?), so its age is unknown"]
    );
    assert!(kept(&out, &future_broken));
    assert_eq!(
        of(&out, &newest_past).reasons,
        [Reason::MinKeep { min_keep: 1 }]
    );
}

#[test]
fn other_kinds_are_never_touched() {
    let ancient_manual = manual("2020-01-01T00:00:00Z");
    let partial_manual = with_status(manual("2026-01-01T00:00:00Z"), ItemStatus::Partial);
    let ancient_full = full("2020-01-02T00:00:00Z");
    let items = [
        ancient_manual.clone(),
        partial_manual.clone(),
        ancient_full.clone(),
    ];
    let out = decide(&items, &Policy::max_age(days(1)), &CHAIN);
    for item in [&ancient_manual, &partial_manual] {
        assert_eq!(
            why(&out, item),
            ["kept: governed by another job's retention, left alone"]
        );
    }
    let out = decide(&items, &Policy::max_age(days(1)), &[ItemKind::Manual]);
    assert_eq!(of(&out, &ancient_full).reasons, [Reason::OtherPolicy]);
    assert_eq!(
        of(&out, &ancient_manual).reasons,
        [Reason::MinKeep { min_keep: 1 }]
    );
    assert!(!kept(&out, &partial_manual));
}

#[test]
fn a_kept_incremental_of_another_policy_still_protects_its_base() {
    let base = full("2026-01-01T02:00:00Z");
    let newer = full("2026-01-02T02:00:00Z");
    let child = incr("2026-01-01T03:00:00Z", &base);
    let out = decide(
        &[base.clone(), newer, child.clone()],
        &Policy::max_age(days(1)),
        &[ItemKind::Full],
    );
    assert_eq!(of(&out, &child).reasons, [Reason::OtherPolicy]);
    assert_eq!(
        why(&out, &base),
        [format!("kept: the base of kept incremental {}", child.id)]
    );
}

#[test]
fn a_stopped_job_pair_keeps_its_newest_restore_point_and_its_chain() {
    let base = full("2026-10-01T02:00:00Z");
    let a = incr("2026-10-01T03:00:00Z", &base);
    let b = incr("2026-10-01T04:00:00Z", &a);
    let policy = ChainPolicy {
        full: Policy::max_age(days(30)),
        incremental: Policy::max_age(days(7)),
    };
    let out = apply_chain(&[base.clone(), a.clone(), b.clone()], &policy, now());
    assert_eq!(of(&out, &b).reasons, [Reason::NewestRestorable]);
    assert_eq!(
        why(&out, &b),
        ["kept: the newest backup that can be restored, which is always kept"]
    );
    assert_eq!(
        of(&out, &a).reasons,
        [Reason::ChainAncestor { of: b.id.clone() }]
    );
    assert!(kept(&out, &base));
}

#[test]
fn apply_chain_judges_each_kind_by_its_own_policy() {
    let base = full("2026-11-01T02:00:00Z"); // 20d: within the fulls' 30d
    let old = incr("2026-11-01T03:00:00Z", &base); // 20d: past the 7d
    let newer_base = full("2026-11-20T02:00:00Z");
    let young = incr("2026-11-20T03:00:00Z", &newer_base);
    let m = manual("2026-01-01T00:00:00Z");
    let policy = ChainPolicy {
        full: Policy::max_age(days(30)),
        incremental: Policy::max_age(days(7)),
    };
    let items = [
        base.clone(),
        old.clone(),
        newer_base,
        young.clone(),
        m.clone(),
    ];
    let out = apply_chain(&items, &policy, now());
    assert!(matches!(
        of(&out, &base).reasons[..],
        [Reason::WithinMaxAge { .. }]
    ));
    assert!(
        matches!(of(&out, &old).reasons[..], [Reason::Expired { max_age, .. }] if max_age == days(7))
    );
    assert!(kept(&out, &young));
    assert_eq!(of(&out, &m).reasons, [Reason::OtherPolicy]);
}

#[test]
fn parents_are_found_in_the_same_job_first() {
    // Two jobs' fulls started in the same second share an id; the
    // incremental's own job holds its real parent, which is partial.
    let mut ours = with_status(full("2026-11-20T02:00:00Z"), ItemStatus::Partial);
    ours.job = "db-incr".to_string();
    let theirs = full("2026-11-20T02:00:00Z");
    let child = incr("2026-11-20T03:00:00Z", &theirs);
    let out = decide(
        &[ours.clone(), theirs, child.clone()],
        &Policy::max_age(days(7)),
        &CHAIN,
    );
    assert_eq!(
        of(&out, &child).reasons,
        [Reason::BrokenChain {
            missing: ours.id.clone(),
            problem: ChainBreak::Partial
        }]
    );
}

#[test]
fn output_is_newest_first_with_ties_by_id_and_ignores_input_order() {
    let t = "2026-11-20T02:00:00Z";
    let items = [
        manual(t),
        full("2026-11-19T02:00:00Z"),
        full(t),
        full("2026-11-21T02:00:00Z"),
    ];
    let out = decide(&items, &Policy::max_age(days(7)), &CHAIN);
    let ids: Vec<&str> = out.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "20261121T020000Z-full",
            "20261120T020000Z-manual",
            "20261120T020000Z-full",
            "20261119T020000Z-full"
        ]
    );
    let mut reversed = items.to_vec();
    reversed.reverse();
    assert_eq!(decide(&reversed, &Policy::max_age(days(7)), &CHAIN), out);
}

#[test]
fn policy_from_the_configuration() {
    let mut config = crate::config::RetentionPolicy::max_age(days(30));
    config.keep_weekly = Some(4);
    config.min_keep = 2;
    let policy = Policy::from(&config);
    assert_eq!(
        policy,
        Policy {
            max_age: days(30),
            keep_daily: None,
            keep_weekly: Some(4),
            keep_monthly: None,
            min_keep: 2,
            partial_grace: hours(24),
        }
    );
}

#[test]
fn nothing_in_nothing_out() {
    assert!(decide(&[], &Policy::max_age(days(1)), &CHAIN).is_empty());
    assert_eq!(
        render(&[], &[], now()),
        "prune --dry-run at 2026-11-21T14:30:00Z\nBACKUP  KIND  AGE  ACTION  WHY\nkeeps 0 of 0 backups, deletes 0\n"
    );
}
