//! The standby's decision, from chains and marker alone: seed, follow, or
//! seed again with the reason an alert will quote.

use chrono::{TimeZone, Utc};

use super::{next_step, Position, StandbyError, Step};
use crate::catalog::{BackupKind, Manifest, OpTime, FORMAT_VERSION};
use crate::restore::pitr::{Chain, Link};
use crate::storage::{BackupFiles, CompressionKind};

fn link(id: &str, kind: BackupKind, start: u32, end: u32, parent: Option<&str>) -> Link {
    let at = Utc.timestamp_opt(i64::from(end), 0).unwrap();
    Link {
        dir: BackupFiles::local(format!("/backups/job/{id}")),
        manifest: Manifest {
            format_version: FORMAT_VERSION,
            id: id.into(),
            kind,
            job: "job".into(),
            source: "prod".into(),
            server_version: "7.0.14".into(),
            tool_version: "0.1.0".into(),
            started_at: at,
            finished_at: at,
            consistent: true,
            oplog_start: Some(OpTime { t: start, i: 1 }),
            oplog_end: Some(OpTime { t: end, i: 1 }),
            compression: CompressionKind::None,
            collections: Vec::new(),
            oplog: None,
            files: Vec::new(),
            parent: parent.map(str::to_string),
            note: None,
            requested_by: None,
            bridge: None,
            encryption: None,
            copies: Vec::new(),
            drills: Vec::new(),
        },
    }
}

fn chain(links: Vec<Link>, broken: Option<&str>) -> Chain {
    Chain {
        links,
        broken: broken.map(str::to_string),
    }
}

fn marker(backup: &str, t: u32) -> Position {
    Position {
        seeded_from: "f1".into(),
        backup_id: backup.into(),
        at: OpTime { t, i: 1 },
        updated: Utc.timestamp_opt(i64::from(t), 0).unwrap(),
    }
}

fn ids(links: &[Link]) -> Vec<&str> {
    links.iter().map(|l| l.manifest.id.as_str()).collect()
}

fn one_chain() -> Vec<Chain> {
    vec![chain(
        vec![
            link("f1", BackupKind::Full, 90, 100, None),
            link("i1", BackupKind::Incremental, 100, 200, Some("f1")),
            link("i2", BackupKind::Incremental, 200, 300, Some("i1")),
        ],
        None,
    )]
}

#[test]
fn a_new_standby_is_seeded_from_the_newest_full_then_follows_its_chain() {
    match next_step(&one_chain(), None, "prod").unwrap() {
        Step::Seed { full, then, why } => {
            assert_eq!(full.manifest.id, "f1");
            assert_eq!(ids(&then), ["i1", "i2"]);
            assert_eq!(why, None);
        }
        other => panic!("expected a seed, got {other:?}"),
    }
}

#[test]
fn a_standby_applies_only_what_follows_its_position() {
    match next_step(&one_chain(), Some(&marker("i1", 200)), "prod").unwrap() {
        Step::Follow(links) => assert_eq!(ids(&links), ["i2"]),
        other => panic!("expected to follow, got {other:?}"),
    }
    match next_step(&one_chain(), Some(&marker("i2", 300)), "prod").unwrap() {
        Step::Follow(links) => assert!(links.is_empty(), "up to date"),
        other => panic!("expected to follow, got {other:?}"),
    }
}

#[test]
fn a_new_full_that_does_not_continue_the_chain_reseeds_with_the_reason() {
    let mut chains = one_chain();
    chains[0].broken = Some("incremental i3 starts at 350 but its parent i2 ends at 300".into());
    chains.push(chain(
        vec![
            link("f2", BackupKind::Full, 390, 400, None),
            link("i4", BackupKind::Incremental, 400, 500, Some("f2")),
        ],
        None,
    ));
    match next_step(&chains, Some(&marker("i2", 300)), "prod").unwrap() {
        Step::Seed { full, then, why } => {
            assert_eq!(full.manifest.id, "f2");
            assert_eq!(ids(&then), ["i4"]);
            let why = why.expect("a reason");
            assert!(why.contains("incremental i3 starts at 350"), "{why}");
            assert!(why.contains("backup f2 starts a new one"), "{why}");
        }
        other => panic!("expected a re-seed, got {other:?}"),
    }
}

#[test]
fn a_full_that_bridges_the_chain_is_followed_without_reseeding() {
    // list_chains puts a bridging full into the older chain as well.
    let bridged = link("f2", BackupKind::Full, 390, 400, None);
    let mut chains = one_chain();
    chains[0].links.push(bridged.clone());
    chains.push(chain(vec![bridged], None));
    match next_step(&chains, Some(&marker("i2", 300)), "prod").unwrap() {
        Step::Follow(links) => assert_eq!(ids(&links), ["f2"]),
        other => panic!("expected to follow, got {other:?}"),
    }
}

#[test]
fn a_position_retention_removed_reseeds_and_no_full_is_an_error() {
    match next_step(&one_chain(), Some(&marker("gone", 50)), "prod").unwrap() {
        Step::Seed { why: Some(why), .. } => {
            assert!(
                why.contains("the backup it stood on (gone) is gone"),
                "{why}"
            )
        }
        other => panic!("expected a re-seed, got {other:?}"),
    }
    assert!(matches!(
        next_step(&[], None, "prod"),
        Err(StandbyError::NothingToSeed { .. })
    ));
}
