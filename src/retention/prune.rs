//! Applying retention to storage: which backups of the configured jobs
//! the policies delete (`prune --dry-run` shows it), and deleting them.
//!
//! The decisions come from the pure [`super::apply_chain`] and
//! [`super::apply`] over what the storage holds right now (manifests), so
//! nothing depends on the daemon's state directory. A source's full and
//! incremental jobs in one storage location form one chain and are judged
//! together; manual jobs by their own policy; backups of jobs that are not
//! in the configuration are never touched.
//!
//! Every location a job writes to or copies to is judged from its own
//! listing, with the location's `retention` age when it sets one, so remote
//! copies are pruned like local ones and an unreachable location never
//! stops the others from being pruned.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{apply, apply_chain, render, Action, ChainPolicy, Decision, Item, ItemKind, Policy};
use crate::catalog::{self, CatalogError};
use crate::config::{Config, Job, JobKind, RetentionPolicy};
use crate::storage::{self, Location};

/// The decisions for one storage location.
pub struct PrunePlan {
    /// The `[storage.NAME]` and its directory or URL.
    pub name: String,
    pub describe: String,
    /// `None` when the location could not be opened or listed (an object
    /// store that is down); nothing is decided for it then.
    location: Option<Location>,
    pub unreachable: Option<String>,
    pub items: Vec<Item>,
    pub decisions: Vec<Decision>,
    /// Where each backup lives, by (job, id, status).
    paths: BTreeMap<(String, String, &'static str), PathBuf>,
}

impl PrunePlan {
    pub fn render(&self, now: DateTime<Utc>) -> String {
        if let Some(why) = &self.unreachable {
            return format!(
                "{} ({}): cannot be listed, nothing decided: {why}\n",
                self.name, self.describe
            );
        }
        format!(
            "{} ({}):\n{}",
            self.name,
            self.describe,
            render(&self.decisions, &self.items, now)
        )
    }

    pub fn deletions(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| d.action == Action::Delete)
    }

    /// Deletes what the plan deletes; returns the backups removed
    /// (directories or URLs). A failure to remove one is reported and the
    /// rest go on. Blocking.
    pub fn execute(&self) -> (Vec<PathBuf>, Vec<String>) {
        let mut removed = Vec::new();
        let mut errors = Vec::new();
        if let Some(why) = &self.unreachable {
            errors.push(format!(
                "storage \"{}\" ({}) cannot be listed: {why}",
                self.name, self.describe
            ));
        }
        let Some(location) = &self.location else {
            return (removed, errors);
        };
        for d in self.deletions() {
            let Some(path) = self
                .paths
                .get(&(d.job.clone(), d.id.clone(), d.status.as_str()))
            else {
                continue;
            };
            let deleted = match location {
                Location::Local { .. } => std::fs::remove_dir_all(path).map_err(|e| e.to_string()),
                Location::Object(o) => storage::delete_object_backup(o, &d.job, &d.id)
                    .map_err(|e| crate::error_chain(&e)),
            };
            match deleted {
                Ok(()) => {
                    tracing::info!(job = %d.job, backup_id = %d.id, "Deleted {} ({}).", path.display(), d.reasons.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("; "));
                    removed.push(path.clone());
                }
                Err(e) => errors.push(format!("cannot delete {}: {e}", path.display())),
            }
        }
        (removed, errors)
    }
}

/// The policy for `kind` at a location whose own `retention` age, when
/// set, replaces the job's.
fn policy(jobs: &[&Job], kind: JobKind, age: Option<Duration>) -> Policy {
    match jobs.iter().find(|j| j.kind == kind) {
        Some(j) => match age {
            Some(max_age) => Policy::from(&RetentionPolicy {
                max_age,
                ..j.retention
            }),
            None => Policy::from(&j.retention),
        },
        None => Policy::max_age(age.unwrap_or(kind.default_retention())),
    }
}

/// The retention decisions for every storage location of the configuration
/// (only the jobs named `only`, when given).
pub fn plan(
    cfg: &Config,
    only: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<PrunePlan>, CatalogError> {
    let mut plans = Vec::new();
    for (storage_name, config_location) in &cfg.storage {
        let jobs: Vec<&Job> = cfg
            .jobs
            .values()
            .filter(|j| &j.storage == storage_name || j.copies.contains(storage_name))
            .collect();
        if jobs.is_empty() {
            continue;
        }
        let age = config_location.retention;
        let opened = Location::open(config_location).map_err(CatalogError::from);
        let describe = match &opened {
            Ok(loc) => loc.describe(),
            Err(_) => storage_name.clone(),
        };
        let listed = opened.and_then(|loc| {
            let listings = catalog::list_location(&loc, None);
            Ok((loc, listings?))
        });
        let (location, listings) = match listed {
            Ok(found) => found,
            // A local location that cannot be listed is an error as
            // before; an object store that is down is reported in its plan
            // so the other locations are still pruned.
            Err(e) if config_location.local_path().is_some() => return Err(e),
            Err(e) => {
                plans.push(PrunePlan {
                    name: storage_name.clone(),
                    describe,
                    location: None,
                    unreachable: Some(crate::error_chain(&e)),
                    items: Vec::new(),
                    decisions: Vec::new(),
                    paths: BTreeMap::new(),
                });
                continue;
            }
        };
        let mut items = Vec::new();
        let mut paths = BTreeMap::new();
        for l in &listings {
            if let Some(item) = Item::from_listing(l) {
                paths.insert(
                    (item.job.clone(), item.id.clone(), item.status.as_str()),
                    l.path.clone(),
                );
                items.push(item);
            }
        }
        let mut decisions = decide(&jobs, &items, age, now);
        if let Some(job) = only {
            decisions.retain(|d| d.job == job);
        }
        let ids: std::collections::BTreeSet<(String, String)> = decisions
            .iter()
            .map(|d| (d.job.clone(), d.id.clone()))
            .collect();
        items.retain(|i| ids.contains(&(i.job.clone(), i.id.clone())));
        plans.push(PrunePlan {
            name: storage_name.clone(),
            describe,
            location: Some(location),
            unreachable: None,
            items,
            decisions,
            paths,
        });
    }
    Ok(plans)
}

/// The decisions for `items` (backups at one location) of `jobs` (the
/// configured jobs that write or copy there), with the location's own
/// retention age when it has one.
fn decide(
    jobs: &[&Job],
    items: &[Item],
    age: Option<Duration>,
    now: DateTime<Utc>,
) -> Vec<Decision> {
    let mut decisions = Vec::new();
    let mut sources: Vec<&str> = jobs.iter().map(|j| j.source.as_str()).collect();
    sources.sort();
    sources.dedup();
    for source in sources {
        let of_source: Vec<&Job> = jobs
            .iter()
            .copied()
            .filter(|j| j.source == source)
            .collect();
        let names = |kinds: &[JobKind]| -> Vec<&str> {
            of_source
                .iter()
                .filter(|j| kinds.contains(&j.kind))
                .map(|j| j.name.as_str())
                .collect()
        };
        let chain_jobs = names(&[JobKind::Full, JobKind::Incremental]);
        // A manual backup taken of a full or incremental job (backup-now
        // --kind manual) is filed under that job but is no part of its
        // chain: it follows the manual policy with the manual jobs'.
        let chain_items: Vec<Item> = items
            .iter()
            .filter(|i| chain_jobs.contains(&i.job.as_str()) && i.kind != ItemKind::Manual)
            .cloned()
            .collect();
        if !chain_items.is_empty() {
            let cp = ChainPolicy {
                full: policy(&of_source, JobKind::Full, age),
                incremental: policy(&of_source, JobKind::Incremental, age),
            };
            decisions.extend(apply_chain(&chain_items, &cp, now));
        }
        let manual_jobs = names(&[JobKind::Manual]);
        let manual_items: Vec<Item> = items
            .iter()
            .filter(|i| {
                manual_jobs.contains(&i.job.as_str())
                    || (chain_jobs.contains(&i.job.as_str()) && i.kind == ItemKind::Manual)
            })
            .cloned()
            .collect();
        if !manual_items.is_empty() {
            decisions.extend(apply(
                &manual_items,
                &policy(&of_source, JobKind::Manual, age),
                &[ItemKind::Manual],
                now,
            ));
        }
    }
    decisions
}

/// The ids of `listings` (backups of one job in its primary storage) that
/// retention at copy location `location` would keep: what a copy there
/// should hold, so nothing is uploaded only to be deleted.
pub fn kept_at(
    cfg: &Config,
    location: &str,
    listings: &[catalog::BackupListing],
    now: DateTime<Utc>,
) -> std::collections::BTreeSet<String> {
    let jobs: Vec<&Job> = cfg
        .jobs
        .values()
        .filter(|j| j.storage == location || j.copies.iter().any(|c| c == location))
        .collect();
    let age = cfg.storage.get(location).and_then(|l| l.retention);
    let items: Vec<Item> = listings.iter().filter_map(Item::from_listing).collect();
    decide(&jobs, &items, age, now)
        .into_iter()
        .filter(|d| d.action != Action::Delete)
        .map(|d| d.id)
        .collect()
}
