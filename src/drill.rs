//! Restore drills: a backup nobody has restored is a hope.
//!
//! A drill job restores the backups of another job into a scratch
//! database (every database renamed with the drill's prefix, so it can
//! share a server with real data), checks what arrived against what the
//! backups hold, and drops it again:
//!
//! - the instant is the newest the backups restore to, or one drawn at
//!   random inside the covered window (`point = "random"`), so over time
//!   drills also exercise old chains and long replays;
//! - what the backups hold is computed from the files themselves, without
//!   a server ([`expected`]): each data file must hold the number of
//!   documents its manifest recorded when it was written, and the chain's
//!   oplog is applied to get the counts at the chosen instant;
//! - on the target, every collection's count must equal that, sampled
//!   documents must be byte-for-byte the backup's, and the indexes and
//!   collection options of the backup must be there ([`check`]).
//!
//! The drill touches only databases whose names start with its prefix: it
//! drops those it is about to restore (leftovers of an interrupted drill),
//! restores, checks, and drops them again whatever the result.

mod check;
mod expected;

use chrono::{DateTime, Utc};
use mongodb::Client;
use tokio_util::sync::CancellationToken;

use crate::catalog::{self, DrillRecord, OpTime};
use crate::config::{Config, DrillPoint, JobKind};
use crate::restore::pitr::{self, At, PitrPlan};
use crate::restore::target::{TargetJob, TargetJobError};
use crate::restore::{NsMapper, RestoreError, RestoreOptions};
use crate::source::{self, SourceError};
use crate::storage::StorageError;

pub use check::Problem;
pub use expected::{Expected, ExpectedCollection};

/// Namespaces a drill leaves out: users and roles are restored into
/// `admin` by mongorestore, which a prefix cannot rename.
const EXCLUDED: [&str; 2] = ["admin.system.users", "admin.system.roles"];

/// One drill, resolved from the configuration (`settings.point` and
/// `settings.sample` are the drill's own).
pub type DrillRequest = TargetJob;

/// What a drill that passed checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillReport {
    /// The newest backup restored: the one the drill vouches for, and its
    /// directory when it is in a local storage (where the drill is
    /// recorded).
    pub backup_id: String,
    pub backup_dir: Option<std::path::PathBuf>,
    /// Every backup restored, full first.
    pub backups: Vec<String>,
    pub restored_to: OpTime,
    pub collections: u64,
    pub documents: u64,
    /// Documents compared byte for byte.
    pub sampled: u64,
    pub indexes: u64,
}

impl DrillReport {
    /// The record kept in the verified backup's manifest.
    pub fn record(&self, job: &str, target: &str, now: DateTime<Utc>) -> DrillRecord {
        DrillRecord {
            job: job.to_string(),
            verified_at: now,
            restored_to: self.restored_to,
            target: target.to_string(),
            collections: self.collections,
            documents: self.documents,
            sampled: self.sampled,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error(transparent)]
    Setup(#[from] TargetJobError),
    #[error("there is nothing to drill for job \"{from}\": {source}")]
    Plan {
        from: String,
        #[source]
        source: Box<RestoreError>,
    },
    #[error("backup {backup} cannot be read back: {source}")]
    Unreadable {
        backup: String,
        #[source]
        source: StorageError,
    },
    #[error("the drill target \"{target}\" cannot be used: {source}")]
    Target {
        target: String,
        #[source]
        source: Box<SourceError>,
    },
    #[error("restoring backup {backup} into the drill target failed: {source}")]
    Restore {
        backup: String,
        #[source]
        source: Box<RestoreError>,
    },
    #[error(
        "backup {backup} restored to {} does not match what it holds: {}",
        restored_to.to_datetime().to_rfc3339(),
        summarize(problems)
    )]
    Mismatch {
        backup: String,
        restored_to: OpTime,
        problems: Vec<Problem>,
    },
    #[error(
        "the drill's databases ({}) could not be dropped from target \"{target}\" afterwards: {source}",
        databases.join(", ")
    )]
    Cleanup {
        target: String,
        databases: Vec<String>,
        #[source]
        source: Box<SourceError>,
    },
    #[error("the drill was cancelled")]
    Cancelled,
}

/// The first problems, and how many more: an alert's subject line must
/// stay readable, and the log has every one.
fn summarize(problems: &[Problem]) -> String {
    const SHOWN: usize = 5;
    let mut out: Vec<String> = problems.iter().take(SHOWN).map(|p| p.to_string()).collect();
    if problems.len() > SHOWN {
        out.push(format!("and {} more", problems.len() - SHOWN));
    }
    out.join("; ")
}

impl DrillError {
    /// What the operator should do, for the alert.
    pub fn advice(&self) -> Option<&'static str> {
        Some(match self {
            DrillError::Setup(e) => e.advice(),
            DrillError::Plan { .. } => {
                "Check that the job's backups complete (mongo-backupd list); a drill needs a complete full backup."
            }
            DrillError::Unreadable { .. } | DrillError::Mismatch { .. } => {
                "The backup cannot be trusted: run mongo-backupd verify on it, take a new full backup now (mongo-backupd backup-now JOB), and find out what damaged the storage."
            }
            DrillError::Target { .. } => {
                "Check that the drill's target MongoDB is running and reachable, and that its user may create and drop databases."
            }
            DrillError::Restore { .. } => {
                "Read the error: a damaged backup needs a new full backup; a target that refused the data needs space or permissions."
            }
            DrillError::Cleanup { .. } => {
                "Drop the listed databases on the drill target by hand, and check the target's permissions."
            }
            DrillError::Cancelled => return None,
        })
    }
}

/// The drill job `name` of `cfg`.
pub fn request(cfg: &Config, name: &str) -> Result<DrillRequest, DrillError> {
    Ok(TargetJob::resolve(cfg, name, JobKind::Drill)?)
}

/// Runs one drill: plan, compute what the backups hold, restore into the
/// target, compare, drop. `seed` draws the random instant and the sampled
/// documents (the caller passes something that changes between runs).
pub async fn run(
    req: &DrillRequest,
    seed: u64,
    cancel: &CancellationToken,
) -> Result<DrillReport, DrillError> {
    let plan = plan(req, seed).await?;
    let newest = plan
        .incrementals
        .last()
        .unwrap_or(&plan.full)
        .manifest
        .id
        .clone();
    let mapper = req.mapper(&EXCLUDED);
    tracing::info!(
        job = %req.job,
        "Drill \"{}\": restoring job \"{}\" to {} ({} backups, newest {newest}) into \"{}\" with prefix \"{}\".",
        req.job,
        req.from,
        plan.restores_to.to_datetime().to_rfc3339(),
        1 + plan.incrementals.len(),
        req.target,
        req.prefix()
    );
    let expected = {
        let (plan, mapper, sample) = (plan.clone(), mapper.clone(), req.settings.sample);
        tokio::task::spawn_blocking(move || expected::compute(&plan, &mapper, sample, seed))
            .await
            .map_err(|e| DrillError::Unreadable {
                backup: newest.clone(),
                source: StorageError::io(
                    std::path::Path::new(&newest),
                    "read",
                    std::io::Error::other(e),
                ),
            })?
            .map_err(|(backup, source)| DrillError::Unreadable { backup, source })?
    };
    let target_error = |source| DrillError::Target {
        target: req.target.clone(),
        source: Box::new(source),
    };
    let client = source::connect(&req.target_uri, req.connect_timeout)
        .await
        .map_err(target_error)?;
    let databases = expected.target_databases();
    let outcome = restore_and_check(req, &client, &plan, &mapper, &expected, &newest, cancel).await;
    // Whatever happened, leave nothing behind but what was there.
    let cleanup = drop_databases(&client, &databases).await;
    source::close(client).await;
    let report = outcome?;
    cleanup.map_err(|source| DrillError::Cleanup {
        target: req.target.clone(),
        databases,
        source: Box::new(source),
    })?;
    Ok(report)
}

/// The chain to restore, up to the newest or a random instant.
async fn plan(req: &DrillRequest, seed: u64) -> Result<PitrPlan, DrillError> {
    let plan_error = |source| DrillError::Plan {
        from: req.from.clone(),
        source: Box::new(source),
    };
    let at = match req.settings.point {
        DrillPoint::Newest => At::Latest,
        DrillPoint::Random => {
            let (location, ids, source) = (
                req.location.clone(),
                req.identities.clone(),
                req.source.clone(),
            );
            let chains =
                tokio::task::spawn_blocking(move || pitr::list_chains(&location, ids, &source))
                    .await
                    .map_err(|e| plan_error(RestoreError::Invalid(e.to_string())))?
                    .map_err(plan_error)?;
            let windows: Vec<(OpTime, OpTime)> =
                chains.iter().map(|c| (c.start(), c.end())).collect();
            match random_instant(&windows, seed) {
                Some(t) => At::Time(t),
                // Nothing to choose from (one-second windows): the newest.
                None => At::Latest,
            }
        }
    };
    pitr::plan_blocking(&req.location, req.identities.clone(), &req.source, at)
        .await
        .map_err(plan_error)
}

async fn restore_and_check(
    req: &DrillRequest,
    client: &Client,
    plan: &PitrPlan,
    mapper: &NsMapper,
    expected: &Expected,
    newest: &str,
    cancel: &CancellationToken,
) -> Result<DrillReport, DrillError> {
    let target_error = |source| DrillError::Target {
        target: req.target.clone(),
        source: Box::new(source),
    };
    // Leftovers of an interrupted drill would be counted as restored.
    drop_databases(client, &expected.target_databases())
        .await
        .map_err(target_error)?;
    let opts = RestoreOptions {
        from: plan.full.dir.clone(),
        uri: req.target_uri.clone(),
        drop: true,
        namespaces: mapper.clone(),
        dry_run: false,
        no_indexes: false,
        oplog_replay: true,
        connect_timeout: req.connect_timeout,
    };
    match pitr::execute(plan, &opts, cancel).await {
        Ok(_) => {}
        Err(RestoreError::Cancelled) => return Err(DrillError::Cancelled),
        Err(source) => {
            return Err(DrillError::Restore {
                backup: newest.to_string(),
                source: Box::new(source),
            })
        }
    }
    let checked = tokio::select! {
        r = check::compare(client, expected) => r.map_err(target_error)?,
        _ = cancel.cancelled() => return Err(DrillError::Cancelled),
    };
    if !checked.problems.is_empty() {
        for p in &checked.problems {
            tracing::error!(job = %req.job, "Drill \"{}\" found a difference in backup {newest}: {p}.", req.job);
        }
        return Err(DrillError::Mismatch {
            backup: newest.to_string(),
            restored_to: plan.restores_to,
            problems: checked.problems,
        });
    }
    let newest_link = plan.incrementals.last().unwrap_or(&plan.full);
    Ok(DrillReport {
        backup_id: newest.to_string(),
        backup_dir: newest_link
            .dir
            .local_dir()
            .map(std::path::Path::to_path_buf),
        backups: std::iter::once(&plan.full)
            .chain(plan.incrementals.iter())
            .map(|l| l.manifest.id.clone())
            .collect(),
        restored_to: plan.restores_to,
        collections: checked.collections,
        documents: checked.documents,
        sampled: checked.sampled,
        indexes: checked.indexes,
    })
}

/// Drops each of `databases` (all carry the drill's prefix).
async fn drop_databases(client: &Client, databases: &[String]) -> Result<(), SourceError> {
    for db in databases {
        client
            .database(db)
            .drop()
            .await
            .map_err(|source| SourceError::Command {
                command: "dropDatabase",
                source,
            })?;
    }
    Ok(())
}

/// An instant drawn uniformly from the covered windows (each `[start,
/// end)` in whole seconds, since a point-in-time restore must end before
/// its chain's last second); `None` when no window is a second long.
pub fn random_instant(windows: &[(OpTime, OpTime)], seed: u64) -> Option<DateTime<Utc>> {
    let seconds: Vec<(u32, u64)> = windows
        .iter()
        .filter(|(start, end)| end.t > start.t)
        .map(|(start, end)| (start.t, u64::from(end.t - start.t)))
        .collect();
    let total: u64 = seconds.iter().map(|(_, len)| len).sum();
    if total == 0 {
        return None;
    }
    let mut pick = SplitMix(seed).next() % total;
    for (start, len) in seconds {
        if pick < len {
            let t = i64::from(start) + i64::try_from(pick).ok()?;
            return DateTime::from_timestamp(t, 0);
        }
        pick -= len;
    }
    None
}

/// A small deterministic generator: drills need spread, not secrecy, and
/// a seed makes a drill's choices reproducible from its log.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(pub u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Records a passed drill in the verified backup's manifest (the primary
/// storage's; copies keep the manifest they were uploaded with).
pub async fn record(req: &DrillRequest, report: &DrillReport, now: DateTime<Utc>) {
    let Some(dir) = &report.backup_dir else {
        return;
    };
    let record = report.record(&req.job, &req.target, now);
    let result = catalog::update_manifest_blocking(dir, move |m| {
        m.drills.push(record);
        let excess = m.drills.len().saturating_sub(catalog::DRILLS_KEPT);
        m.drills.drain(..excess);
    })
    .await;
    if let Err(e) = result {
        tracing::warn!(job = %req.job, "The drill passed but could not be recorded in backup {}: {e}.", report.backup_id);
    }
}

#[cfg(test)]
mod tests;
