//! Tests of what people read (every reason's sentence, ages, the dry-run
//! table) and of turning catalog listings into items.

use std::path::PathBuf;

use super::tests_gen::{at, days, full, hours, incr, manual, with_status};
use super::*;
use crate::catalog::{BackupListing, BackupStatus, Manifest};

#[test]
fn ages_are_days_and_hours() {
    let cases = [
        (Duration::ZERO, "0m"),
        (Duration::from_secs(59), "0m"),
        (Duration::from_secs(45 * 60), "45m"),
        (hours(1), "1h"),
        (hours(6) + Duration::from_secs(59 * 60), "6h"),
        (days(1), "1d"),
        (days(41) + hours(3) + Duration::from_secs(1), "41d 3h"),
        (Duration::MAX, "213503982334601d 7h"),
    ];
    for (age, text) in cases {
        assert_eq!(days_hours(age), text);
    }
}

#[test]
fn every_reason_reads_as_a_sentence() {
    let id = "20261121T020000Z-incremental".to_string();
    let broken = |problem| Reason::BrokenChain {
        missing: "20261120T020000Z-full".to_string(),
        problem,
    };
    let cases = [
        (
            Reason::WithinMaxAge {
                age: days(3) + hours(4),
                max_age: days(30),
            },
            "kept: 3d 4h old, younger than retention 30d",
        ),
        (
            Reason::CalendarKeep {
                period: "weekly",
                bucket: "2026-W47".to_string(),
            },
            "kept: newest backup of 2026-W47 (keep_weekly)",
        ),
        (
            Reason::MinKeep { min_keep: 3 },
            "kept: one of the 3 newest complete backups of its kind (min_keep 3)",
        ),
        (
            Reason::MinKeep { min_keep: 1 },
            "kept: the newest complete backup of its kind (min_keep 1)",
        ),
        (
            Reason::NewestComplete,
            "kept: the newest complete backup of its kind, which is always kept",
        ),
        (
            Reason::NewestRestorable,
            "kept: the newest backup that can be restored, which is always kept",
        ),
        (
            Reason::BaseOfKeptIncremental {
                incremental: id.clone(),
            },
            "kept: the base of kept incremental 20261121T020000Z-incremental",
        ),
        (
            Reason::ChainAncestor { of: id },
            "kept: in the chain of kept incremental 20261121T020000Z-incremental, which needs it",
        ),
        (
            Reason::InFuture { ahead: hours(2) },
            "kept: dated 2h in the future (a wrong clock?), so its age is unknown",
        ),
        (
            Reason::PartialWithinGrace {
                age: hours(3),
                grace: hours(24),
            },
            "kept: incomplete or invalid, but only 3h old: it may still be running (removed after 1d)",
        ),
        (
            Reason::OtherPolicy,
            "kept: governed by another job's retention, left alone",
        ),
        (
            Reason::Expired {
                age: days(41),
                max_age: days(30),
            },
            "deleted: 41d old, older than retention 30d",
        ),
        (
            broken(ChainBreak::Missing),
            "deleted: cannot be restored: 20261120T020000Z-full in its chain is missing",
        ),
        (
            broken(ChainBreak::Partial),
            "deleted: cannot be restored: 20261120T020000Z-full in its chain never completed",
        ),
        (
            broken(ChainBreak::Invalid),
            "deleted: cannot be restored: 20261120T020000Z-full in its chain is invalid",
        ),
        (
            broken(ChainBreak::Loop),
            "deleted: cannot be restored: 20261120T020000Z-full in its chain is its own ancestor (corrupt parents)",
        ),
        (
            broken(ChainBreak::NoParent),
            "deleted: cannot be restored: 20261120T020000Z-full in its chain names no parent",
        ),
        (
            Reason::PartialPastGrace {
                age: days(2) + hours(1),
                grace: hours(24),
            },
            "deleted: incomplete or invalid for 2d 1h, longer than the 1d grace period",
        ),
    ];
    for (reason, text) in cases {
        assert_eq!(reason.to_string(), text);
    }
}

#[test]
fn the_dry_run_lists_every_backup_newest_first_then_sums_up() {
    let now = at("2026-11-21T14:30:00Z");
    let base = full("2026-11-20T02:00:00Z");
    let items = [
        with_status(full("2026-11-21T12:00:00Z"), ItemStatus::Partial),
        incr("2026-11-21T03:00:00Z", &full("2026-11-21T02:00:00Z")),
        incr("2026-11-20T03:00:00Z", &base),
        base.clone(),
        full("2026-11-22T02:00:00Z"),
        full("2026-10-01T02:00:00Z"),
        manual("2026-10-02T12:00:00Z"),
    ];
    let policy = ChainPolicy {
        full: Policy::max_age(days(30)),
        incremental: Policy::max_age(days(7)),
    };
    // Decisions of several policies can be given in any order.
    let mut decisions = apply_chain(&items, &policy, now);
    decisions.reverse();
    let expected = "\
prune --dry-run at 2026-11-21T14:30:00Z
JOB        BACKUP                        KIND                AGE  ACTION  WHY
db-full    20261122T020000Z-full         full             in 11h  KEEP    dated 11h in the future (a wrong clock?), so its age is unknown
db-full    20261121T120000Z-full         full (partial)       2h  KEEP    incomplete or invalid, but only 2h old: it may still be running (removed after 1d)
db-incr    20261121T030000Z-incremental  incremental         11h  DELETE  cannot be restored: 20261121T020000Z-full in its chain is missing
db-incr    20261120T030000Z-incremental  incremental      1d 11h  KEEP    1d 11h old, younger than retention 7d; the newest backup that can be restored, which is always kept
db-full    20261120T020000Z-full         full             1d 12h  KEEP    1d 12h old, younger than retention 30d; the newest complete backup of its kind (min_keep 1); the base of kept incremental 20261120T030000Z-incremental
db-manual  20261002T120000Z-manual       manual           50d 2h  KEEP    governed by another job's retention, left alone
db-full    20261001T020000Z-full         full            51d 12h  DELETE  51d 12h old, older than retention 30d
keeps 5 of 7 backups, deletes 2
";
    assert_eq!(render(&decisions, &items, now), expected);
}

/// A manifest as the backup code writes it, read back through serde so
/// that fields added later with defaults do not break this test.
fn manifest(id: &str, kind: &str, parent: Option<&str>, consistent: bool) -> Manifest {
    let mut value = serde_json::json!({
        "format_version": 1,
        "id": id,
        "kind": kind,
        "job": "prod",
        "source": "rs0",
        "server_version": "7.0.14",
        "tool_version": "0.1.0",
        "started_at": "2026-11-21T02:00:00Z",
        "finished_at": "2026-11-21T02:09:00Z",
        "consistent": consistent,
        "oplog_start": {"t": 1_795_226_400u32, "i": 1},
        "oplog_end": {"t": 1_795_226_880u32, "i": 7},
        "compression": "zstd",
        "collections": [],
        "oplog": null,
        "files": [],
    });
    if let Some(parent) = parent {
        value["parent"] = parent.into();
    }
    serde_json::from_value(value).unwrap()
}

fn listing(id: &str, status: BackupStatus, manifest: Option<Manifest>) -> BackupListing {
    BackupListing {
        id: id.to_string(),
        job: "prod".to_string(),
        path: PathBuf::from("/var/backups/mongo/prod").join(id),
        status,
        manifest,
        size: 0,
    }
}

#[test]
fn items_from_listings() {
    let id = "20261121T020000Z-incremental";
    let m = manifest(
        id,
        "incremental",
        Some("20261121T010000Z-incremental"),
        true,
    );
    let item = Item::from_listing(&listing(id, BackupStatus::Complete, Some(m))).unwrap();
    assert_eq!(
        item,
        Item {
            id: id.to_string(),
            job: "prod".to_string(),
            kind: ItemKind::Incremental,
            status: ItemStatus::Complete,
            // T1, not the start in the id.
            time: at("2026-11-21T02:08:00Z"),
            parent: Some("20261121T010000Z-incremental".to_string()),
        }
    );

    // A backup of a standalone server restores to the end of its copy.
    let id = "20261121T020000Z-manual";
    let m = manifest(id, "manual", None, false);
    let item = Item::from_listing(&listing(id, BackupStatus::Complete, Some(m))).unwrap();
    assert_eq!(
        (item.kind, item.time),
        (ItemKind::Manual, at("2026-11-21T02:09:00Z"))
    );

    // Without a manifest, the id says what and when.
    let id = "20261120T020000Z-full";
    let item = Item::from_listing(&listing(id, BackupStatus::Partial, None)).unwrap();
    assert_eq!(
        (item.kind, item.status, item.time, item.parent),
        (
            ItemKind::Full,
            ItemStatus::Partial,
            at("2026-11-20T02:00:00Z"),
            None
        )
    );
    // The second backup of a job within one second gets a suffix.
    let item = Item::from_listing(&listing(
        "20261120T020000Z-manual-2",
        BackupStatus::Partial,
        None,
    ))
    .unwrap();
    assert_eq!(item.kind, ItemKind::Manual);
    let invalid = BackupStatus::Invalid("no manifest.json".to_string());
    let item = Item::from_listing(&listing(id, invalid.clone(), None)).unwrap();
    assert_eq!(item.status, ItemStatus::Invalid);

    // A manifest copied from another backup: the id is believed first.
    let m = manifest("20261121T020000Z-manual", "manual", None, true);
    let item = Item::from_listing(&listing(id, invalid.clone(), Some(m.clone()))).unwrap();
    assert_eq!(
        (item.kind, item.time),
        (ItemKind::Full, at("2026-11-20T02:00:00Z"))
    );
    // ... and the manifest only when the id says nothing.
    let item = Item::from_listing(&listing("restored-copy", invalid.clone(), Some(m))).unwrap();
    assert_eq!(
        (item.kind, item.time),
        (ItemKind::Manual, at("2026-11-21T02:08:00Z"))
    );

    // Nothing to go by: not for retention to judge.
    for id in ["restored-copy", "20261120T020000Z-other", "2026-11-20-full"] {
        assert_eq!(
            Item::from_listing(&listing(id, invalid.clone(), None)),
            None
        );
    }
}
