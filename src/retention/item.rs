//! Turning a catalog listing into the [`Item`] retention judges.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::{Item, ItemKind, ItemStatus};
use crate::catalog::{BackupListing, BackupStatus};

/// The time format of backup ids (`20261121T020000Z-full`), as
/// `catalog::new_backup_id` writes it.
const ID_TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

impl Item {
    /// The item for a listed backup. A complete backup is judged by its
    /// manifest (kind, restore point, parent); a partial or invalid one has
    /// no trustworthy manifest, so its kind and time come from its id.
    ///
    /// None when neither says when or what the backup is (a directory not
    /// named like a backup): retention cannot judge it and must leave it
    /// alone.
    pub fn from_listing(listing: &BackupListing) -> Option<Item> {
        let manifest = listing.manifest.as_ref();
        let status = match listing.status {
            BackupStatus::Complete => ItemStatus::Complete,
            BackupStatus::Partial => ItemStatus::Partial,
            BackupStatus::Invalid(_) => ItemStatus::Invalid,
        };
        let from_manifest = manifest.map(|m| (ItemKind::from(m.kind), m.consistent_as_of()));
        let (kind, time) = match (status, from_manifest) {
            (ItemStatus::Complete, Some(judged)) => judged,
            // An invalid backup's manifest may belong to another backup
            // (a copied file): the id is the better witness, the manifest
            // only a fallback.
            (_, fallback) => (
                kind_of_id(&listing.id).or(fallback.map(|(kind, _)| kind))?,
                time_of_id(&listing.id).or(fallback.map(|(_, time)| time))?,
            ),
        };
        Some(Item {
            id: listing.id.clone(),
            job: listing.job.clone(),
            kind,
            status,
            time,
            parent: manifest.and_then(|m| m.parent.clone()),
        })
    }
}

/// When the backup with this id was started.
pub(super) fn time_of_id(id: &str) -> Option<DateTime<Utc>> {
    let stamp = id.get(..16)?;
    NaiveDateTime::parse_from_str(stamp, ID_TIME_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

/// The kind an id names after its time (`...Z-full`).
pub(super) fn kind_of_id(id: &str) -> Option<ItemKind> {
    let word = id.get(16..)?.strip_prefix('-')?.split('-').next()?;
    match word {
        "full" => Some(ItemKind::Full),
        "incremental" => Some(ItemKind::Incremental),
        "manual" => Some(ItemKind::Manual),
        _ => None,
    }
}
