//! The canonical policy over 60 simulated days, rendered as `prune
//! --dry-run` shows it and compared with the checked-in text. To
//! regenerate it after a deliberate change, run the test with
//! `RETENTION_BLESS=1` and read the diff before committing it.

use chrono::TimeDelta;

use super::tests_gen::{at, id_at, secs};
use super::*;
use crate::config::JobKind;

const EXPECTED: &str = include_str!("tests/canonical_60_days.txt");

/// The product's default retention of a job kind.
fn default_policy(kind: JobKind) -> Policy {
    Policy::from(&RetentionPolicy::max_age(kind.default_retention()))
}

/// 60 days up to 2026-11-21 14:30 UTC: a full at 02:00 every day (its T1
/// three minutes later), an incremental every hour in between chained to
/// the previous backup (T1 two seconds after its start), and a manual
/// backup at noon every 10 days.
fn canonical_history() -> (Vec<Item>, DateTime<Utc>) {
    let first_day = at("2026-09-23T00:00:00Z");
    let now = at("2026-11-21T14:30:00Z");
    let mut items = Vec::new();
    let mut previous: Option<String> = None;
    for day in 0..60 {
        let midnight = first_day + TimeDelta::days(day);
        for hour in 2..26 {
            let start = midnight + TimeDelta::hours(hour);
            let kind = if hour == 2 {
                ItemKind::Full
            } else {
                ItemKind::Incremental
            };
            let (job, time) = match kind {
                ItemKind::Full => ("prod-full", start + secs(180)),
                _ => ("prod-incremental", start + secs(2)),
            };
            if time > now {
                break;
            }
            let item = Item {
                id: id_at(kind, start),
                job: job.to_string(),
                kind,
                status: ItemStatus::Complete,
                time,
                parent: match kind {
                    ItemKind::Full => None,
                    _ => previous.clone(),
                },
            };
            previous = Some(item.id.clone());
            items.push(item);
        }
        if day % 10 == 0 {
            let start = midnight + TimeDelta::hours(12);
            items.push(Item {
                id: id_at(ItemKind::Manual, start),
                job: "prod-manual".to_string(),
                kind: ItemKind::Manual,
                status: ItemStatus::Complete,
                time: start + secs(300),
                parent: None,
            });
        }
    }
    (items, now)
}

fn canonical_decisions(items: &[Item], now: DateTime<Utc>) -> Vec<Decision> {
    let chain = ChainPolicy {
        full: default_policy(JobKind::Full),
        incremental: default_policy(JobKind::Incremental),
    };
    let manual = default_policy(JobKind::Manual);
    // Each job's own policy decides for its backups; the other policy
    // leaves them alone.
    let pair = apply_chain(items, &chain, now);
    let manuals = apply(items, &manual, &[ItemKind::Manual], now);
    pair.into_iter()
        .filter(|d| d.kind != ItemKind::Manual)
        .chain(manuals.into_iter().filter(|d| d.kind == ItemKind::Manual))
        .collect()
}

#[test]
fn canonical_policy_over_60_days_matches_the_checked_in_dry_run() {
    let (items, now) = canonical_history();
    let text = render(&canonical_decisions(&items, now), &items, now);
    if std::env::var_os("RETENTION_BLESS").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/retention/tests/canonical_60_days.txt"
        );
        std::fs::write(path, &text).unwrap();
        return;
    }
    if text != EXPECTED {
        let first = text
            .lines()
            .zip(EXPECTED.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(text.lines().count().min(EXPECTED.lines().count()));
        panic!(
            "the dry run differs from tests/canonical_60_days.txt at line {}:\n  now:      {:?}\n  expected: {:?}\n(run with RETENTION_BLESS=1 to regenerate, then review the diff)",
            first + 1,
            text.lines().nth(first),
            EXPECTED.lines().nth(first)
        );
    }
}

/// The checks made by hand on the checked-in text, kept as code.
#[test]
fn canonical_decisions_are_the_expected_ones() {
    let (items, now) = canonical_history();
    let decisions = canonical_decisions(&items, now);
    assert_eq!(items.len(), 60 + 59 * 23 + 12 + 6);
    let time = |d: &Decision| items.iter().find(|it| it.id == d.id).unwrap().time;
    let week_ago = now - TimeDelta::days(7);
    let month_ago = now - TimeDelta::days(30);
    // The base full of the oldest incremental younger than 7 days.
    let oldest_young_base = at("2026-11-14T02:03:00Z");
    for d in &decisions {
        let t = time(d);
        let keep = d.action == Action::Keep;
        match d.kind {
            ItemKind::Full => assert_eq!(keep, t > month_ago, "{}", d.id),
            ItemKind::Incremental => assert_eq!(keep, t > oldest_young_base, "{}", d.id),
            ItemKind::Manual => assert!(keep, "{}", d.id),
        }
        let protected = d
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::ChainAncestor { .. }));
        let young = matches!(d.reasons[0], Reason::WithinMaxAge { .. });
        if d.kind == ItemKind::Incremental && keep {
            // Expired incrementals are kept only as ancestors of young ones.
            assert_eq!(young, t > week_ago, "{}", d.id);
            assert!(young || protected, "{}", d.id);
        }
    }
    let kept = decisions
        .iter()
        .filter(|d| d.action == Action::Keep)
        .count();
    // 30 fulls, 7 days of incrementals plus the morning of 2026-11-14
    // (12 before 14:30), 6 manuals.
    assert_eq!(kept, 30 + (7 * 23 + 12) + 6);
}
