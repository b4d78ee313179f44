//! Applying retention to storage: which backups of the configured jobs
//! the policies delete (`prune --dry-run` shows it), and deleting them.
//!
//! The decisions come from the pure [`super::apply_chain`] and
//! [`super::apply`] over what the storage holds right now (manifests), so
//! nothing depends on the daemon's state directory. A source's full and
//! incremental jobs in one storage location form one chain and are judged
//! together; manual jobs by their own policy; backups of jobs that are not
//! in the configuration are never touched.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::{apply, apply_chain, render, Action, ChainPolicy, Decision, Item, ItemKind, Policy};
use crate::catalog::{self, CatalogError};
use crate::config::{Config, Job, JobKind};

/// The decisions for one storage location.
pub struct PrunePlan {
    pub root: PathBuf,
    pub items: Vec<Item>,
    pub decisions: Vec<Decision>,
    /// Where each backup lives, by (job, id, status).
    paths: BTreeMap<(String, String, &'static str), PathBuf>,
}

impl PrunePlan {
    pub fn render(&self, now: DateTime<Utc>) -> String {
        format!(
            "{}:\n{}",
            self.root.display(),
            render(&self.decisions, &self.items, now)
        )
    }

    pub fn deletions(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| d.action == Action::Delete)
    }

    /// Deletes what the plan deletes; returns the directories removed.
    /// A failure to remove one is reported and the rest go on.
    pub fn execute(&self) -> (Vec<PathBuf>, Vec<String>) {
        let mut removed = Vec::new();
        let mut errors = Vec::new();
        for d in self.deletions() {
            let Some(path) = self
                .paths
                .get(&(d.job.clone(), d.id.clone(), d.status.as_str()))
            else {
                continue;
            };
            match std::fs::remove_dir_all(path) {
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

fn policy(jobs: &[&Job], kind: JobKind) -> Policy {
    match jobs.iter().find(|j| j.kind == kind) {
        Some(j) => Policy::from(&j.retention),
        None => Policy::max_age(kind.default_retention()),
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
    for (storage_name, location) in &cfg.storage {
        let jobs: Vec<&Job> = cfg
            .jobs
            .values()
            .filter(|j| &j.storage == storage_name)
            .collect();
        if jobs.is_empty() {
            continue;
        }
        let Some(root) = location.local_path() else {
            continue;
        };
        let listings = catalog::list_backups(root, None)?;
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
                    full: policy(&of_source, JobKind::Full),
                    incremental: policy(&of_source, JobKind::Incremental),
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
                    &policy(&of_source, JobKind::Manual),
                    &[ItemKind::Manual],
                    now,
                ));
            }
        }
        if let Some(job) = only {
            decisions.retain(|d| d.job == job);
        }
        let ids: std::collections::BTreeSet<(String, String)> = decisions
            .iter()
            .map(|d| (d.job.clone(), d.id.clone()))
            .collect();
        items.retain(|i| ids.contains(&(i.job.clone(), i.id.clone())));
        plans.push(PrunePlan {
            root: root.to_path_buf(),
            items,
            decisions,
            paths,
        });
    }
    Ok(plans)
}
