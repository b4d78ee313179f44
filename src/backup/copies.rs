//! Copies of a job's backups to the locations in its `copies` (a second
//! directory, or an object store off-site).
//!
//! After every run of the job, each copy location is brought up to date on
//! its own: every complete backup of the job in its primary storage that
//! the location's retention would keep and that the location does not
//! hold completely yet is copied, oldest first (so a chain arrives in
//! order). A location that is down or refuses writes fails alone, is
//! reported, and catches up on the next run; the primary backup is never
//! affected. When a copy completes, the primary's manifest records it.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::catalog::{self, CopyRecord};
use crate::config::{Config, Job};
use crate::storage::{self, Location, StorageError};

/// What happened at one copy location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// The `[storage.NAME]` and its directory or URL.
    pub location: String,
    pub url: String,
    /// Backups copied this time, oldest first.
    pub copied: Vec<String>,
    /// Backups the location still lacks (including the failed one).
    pub missing: usize,
    /// Why the location could not be brought up to date.
    pub error: Option<String>,
}

/// Brings every copy location of `job` up to date (see the module header).
pub async fn sync_copies(cfg: &Config, job: &Job, now: DateTime<Utc>) -> Vec<CopyReport> {
    let mut reports = Vec::new();
    let Some(root) = cfg.storage.get(&job.storage).and_then(|s| s.local_path()) else {
        return reports;
    };
    let root = root.to_path_buf();
    // Listed once for every copy location: every job's backups, because
    // retention judges a chain whole (an incremental job's backups hang
    // off another job's full).
    let primary = {
        let root = root.clone();
        tokio::task::spawn_blocking(move || catalog::list_backups(&root, None))
            .await
            .map_err(|e| e.to_string())
            .and_then(|listed| {
                listed.map_err(|e| {
                    format!(
                        "cannot list the primary storage: {}",
                        crate::error_chain(&e)
                    )
                })
            })
    };
    for name in &job.copies {
        let Some(config_location) = cfg.storage.get(name) else {
            continue;
        };
        let mut report = CopyReport {
            location: name.clone(),
            url: name.clone(),
            copied: Vec::new(),
            missing: 0,
            error: None,
        };
        let synced = match &primary {
            Ok(primary) => sync_one(cfg, job, primary, config_location, now, &mut report).await,
            Err(e) => Err(e.clone()),
        };
        if let Err(e) = synced {
            report.error = Some(e);
        }
        reports.push(report);
    }
    reports
}

async fn sync_one(
    cfg: &Config,
    job: &Job,
    primary: &[catalog::BackupListing],
    config_location: &crate::config::StorageLocation,
    now: DateTime<Utc>,
    report: &mut CopyReport,
) -> Result<(), String> {
    let keep = crate::retention::prune::kept_at(cfg, &config_location.name, primary, now);
    let wanted: Vec<&catalog::BackupListing> = primary
        .iter()
        .filter(|l| l.job == job.name && l.is_complete() && keep.contains(&l.id))
        .collect();
    // Counted before the location is reached, from what the primary's
    // manifests record as copied there: a location that cannot even be
    // listed must not be reported as missing nothing.
    report.missing = wanted
        .iter()
        .filter(|l| {
            !l.manifest
                .as_ref()
                .is_some_and(|m| m.copies.iter().any(|c| c.location == config_location.name))
        })
        .count();
    let target = Location::open(config_location).map_err(|e| crate::error_chain(&e))?;
    report.url = target.describe();
    let present: BTreeSet<String> = {
        let (target, job_name) = (target.clone(), job.name.clone());
        tokio::task::spawn_blocking(move || catalog::list_location(&target, Some(&job_name)))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| crate::error_chain(&e))?
            .into_iter()
            .filter(|l| l.is_complete())
            .map(|l| l.id)
            .collect()
    };
    let mut todo: Vec<&catalog::BackupListing> = wanted
        .into_iter()
        .filter(|l| !present.contains(&l.id))
        .collect();
    // Oldest first: a chain's full before its incrementals.
    todo.reverse();
    report.missing = todo.len();
    for listing in todo {
        let Some(manifest) = &listing.manifest else {
            continue;
        };
        let bytes = manifest.to_json();
        storage::copy_backup(
            &listing.path,
            &manifest.files,
            &bytes,
            &target,
            &job.name,
            &listing.id,
        )
        .await
        .map_err(|e| {
            format!(
                "copying backup {} failed: {}",
                listing.id,
                crate::error_chain(&e)
            )
        })?;
        tracing::info!(job = %job.name, backup_id = %listing.id, "Copied backup {} of job \"{}\" to storage \"{}\" ({}).", listing.id, job.name, report.location, report.url);
        report.copied.push(listing.id.clone());
        report.missing -= 1;
        let record = CopyRecord {
            location: report.location.clone(),
            url: report.url.clone(),
            completed_at: Utc::now(),
        };
        if let Err(e) = record_copy(&listing.path, record).await {
            // The copy is complete where it went (its manifest is there);
            // only the primary's record of it is missing.
            tracing::warn!(job = %job.name, backup_id = %listing.id, "The copy of backup {} is complete, but its manifest could not record it: {}.", listing.id, crate::error_chain(&e));
        }
    }
    Ok(())
}

/// Adds `record` to the manifest in `dir` (replacing an older record of
/// the same location).
async fn record_copy(dir: &Path, record: CopyRecord) -> Result<(), StorageError> {
    crate::catalog::update_manifest_blocking(dir, move |manifest| {
        manifest.copies.retain(|c| c.location != record.location);
        manifest.copies.push(record);
    })
    .await
    .map(drop)
}
