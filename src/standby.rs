//! Standby sync: a target MongoDB kept in step with the source from the
//! backups alone, so an application can switch to it when the source is
//! gone (or read from it while the source is down).
//!
//! The standby is seeded once from the newest full backup, then each run
//! applies the backups that continue its chain (incrementals, and fulls
//! that bridge onward) in order, recording after each one its position in
//! a marker document on the target: `mongo_backupd.standby`, one document
//! per standby job. Replaying is idempotent (inserts are upserts, as in a
//! point-in-time restore), so a run interrupted between a backup and its
//! marker update simply applies that backup again.
//!
//! When the chain the standby follows stops (an oplog gap made a new full
//! that does not bridge it, or retention removed the backup it stood on),
//! it is seeded again from the newest full and the report says why, so
//! the daemon alerts: for a while the standby was not following.

use std::time::Duration;

use bson::{doc, Document};
use chrono::{DateTime, Utc};
use mongodb::Client;
use tokio_util::sync::CancellationToken;

use crate::catalog::OpTime;
use crate::config::{Config, JobKind};
use crate::restore::pitr::{self, Chain, Link, PitrPlan};
use crate::restore::target::{TargetJob, TargetJobError};
use crate::restore::{NsMapper, RestoreError, RestoreOptions};
use crate::source::{self, SourceError};

/// The marker's database and collection on the target.
pub const MARKER_DB: &str = "mongo_backupd";
pub const MARKER_COLLECTION: &str = "standby";

/// One standby sync, resolved from the configuration.
pub type StandbyRequest = TargetJob;

/// Where a standby stands: the marker document's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The full it was seeded from.
    pub seeded_from: String,
    /// The last backup applied.
    pub backup_id: String,
    /// The instant of the source it reflects.
    pub at: OpTime,
    pub updated: DateTime<Utc>,
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandbyReport {
    /// Backups applied this run, in order (a seed's full first).
    pub applied: Vec<String>,
    pub position: Position,
    /// Set when the standby was seeded again because its chain stopped.
    pub reseeded: Option<String>,
    /// Whether this run seeded it (first run or re-seed).
    pub seeded: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StandbyError {
    #[error(transparent)]
    Setup(#[from] TargetJobError),
    #[error("the backups of job \"{from}\" cannot be read: {source}")]
    Backups {
        from: String,
        #[source]
        source: Box<RestoreError>,
    },
    #[error(
        "there is no complete full backup of source \"{source_name}\" to seed the standby from yet"
    )]
    NothingToSeed { source_name: String },
    #[error("the standby target \"{target}\" cannot be used: {source}")]
    Target {
        target: String,
        #[source]
        source: Box<SourceError>,
    },
    #[error("applying backup {backup} to the standby failed: {source}")]
    Apply {
        backup: String,
        #[source]
        source: Box<RestoreError>,
    },
    #[error("the standby sync was cancelled")]
    Cancelled,
}

impl StandbyError {
    pub fn advice(&self) -> Option<&'static str> {
        Some(match self {
            StandbyError::Setup(e) => e.advice(),
            StandbyError::Backups { .. } | StandbyError::Apply { .. } => {
                "Run mongo-backupd verify on the named backup; the standby stays at its last position until a run succeeds. Take a new full backup if the backup is damaged."
            }
            StandbyError::NothingToSeed { .. } => {
                "Wait for the first full backup of the source (or start one: mongo-backupd backup-now FULLJOB)."
            }
            StandbyError::Target { .. } => {
                "Check that the standby MongoDB is running and reachable, and that its user may write every database of the source."
            }
            StandbyError::Cancelled => return None,
        })
    }
}

/// The standby job `name` of `cfg`.
pub fn request(cfg: &Config, name: &str) -> Result<StandbyRequest, StandbyError> {
    Ok(TargetJob::resolve(cfg, name, JobKind::Standby)?)
}

/// The marker's database: beside the standby's, with its prefix.
fn marker_db(req: &StandbyRequest) -> String {
    format!("{}{MARKER_DB}", req.prefix())
}

/// What the next run must do, decided from the chains and the marker.
#[derive(Debug, Clone)]
enum Step {
    /// Seed from `full`, then apply `then`; `why` when it is a re-seed.
    Seed {
        full: Box<Link>,
        then: Vec<Link>,
        why: Option<String>,
    },
    /// Apply these, in order, after the marker's backup.
    Follow(Vec<Link>),
}

/// Decides the next step. Pure: the chains as listed and the marker as
/// read.
fn next_step(
    chains: &[Chain],
    marker: Option<&Position>,
    source: &str,
) -> Result<Step, StandbyError> {
    // The newest full of the source, and its chain onward.
    let newest =
        chains
            .iter()
            .max_by_key(|c| c.start())
            .ok_or_else(|| StandbyError::NothingToSeed {
                source_name: source.to_string(),
            })?;
    let seed = |why: Option<String>| Step::Seed {
        full: Box::new(newest.links[0].clone()),
        then: newest.links[1..].to_vec(),
        why,
    };
    let Some(marker) = marker else {
        return Ok(seed(None));
    };
    // The chain holding the marker's backup, as long as it goes on.
    let followed = chains
        .iter()
        .filter_map(|c| {
            c.links
                .iter()
                .position(|l| l.manifest.id == marker.backup_id)
                .map(|i| (c, i))
        })
        .max_by_key(|(c, _)| c.end());
    match followed {
        Some((chain, i)) if chain.end() >= newest.end() => {
            Ok(Step::Follow(chain.links[i + 1..].to_vec()))
        }
        Some((chain, _)) => Ok(seed(Some(format!(
            "the chain it followed stops at {} ({}) and backup {} starts a new one that does not \
             continue it",
            chain.end().to_datetime().to_rfc3339(),
            chain
                .broken
                .clone()
                .unwrap_or_else(|| "no backup continues it".to_string()),
            newest.links[0].manifest.id
        )))),
        None => Ok(seed(Some(format!(
            "the backup it stood on ({}) is gone (removed by retention, or its chain is damaged)",
            marker.backup_id
        )))),
    }
}

/// One sync: seed if needed, then apply what continues the chain.
pub async fn run(
    req: &StandbyRequest,
    cancel: &CancellationToken,
) -> Result<StandbyReport, StandbyError> {
    let target_error = |source| StandbyError::Target {
        target: req.target.clone(),
        source: Box::new(source),
    };
    let client = source::connect(&req.target_uri, req.connect_timeout)
        .await
        .map_err(target_error)?;
    let result = sync(req, &client, cancel).await;
    source::close(client).await;
    result
}

async fn sync(
    req: &StandbyRequest,
    client: &Client,
    cancel: &CancellationToken,
) -> Result<StandbyReport, StandbyError> {
    let marker = read_marker(client, req).await?;
    let chains = {
        let (location, ids, source) = (
            req.location.clone(),
            req.identities.clone(),
            req.source.clone(),
        );
        tokio::task::spawn_blocking(move || pitr::list_chains(&location, ids, &source))
            .await
            .map_err(|e| StandbyError::Backups {
                from: req.from.clone(),
                source: Box::new(RestoreError::Invalid(e.to_string())),
            })?
            .map_err(|source| StandbyError::Backups {
                from: req.from.clone(),
                source: Box::new(source),
            })?
    };
    let step = next_step(&chains, marker.as_ref(), &req.source)?;
    let mapper = req.mapper(&[]);
    let mut applied = Vec::new();
    let (mut position, links, reseeded, seeded) = match step {
        Step::Follow(links) => match marker {
            Some(m) => (m, links, None, false),
            None => {
                return Err(StandbyError::NothingToSeed {
                    source_name: req.source.clone(),
                })
            }
        },
        Step::Seed { full, then, why } => {
            if let Some(why) = &why {
                tracing::warn!(job = %req.job, "Standby \"{}\" is seeded again from backup {}: {why}.", req.job, full.manifest.id);
            }
            let position = seed(req, client, &full, &mapper, cancel).await?;
            applied.push(full.manifest.id.clone());
            (position, then, why, true)
        }
    };
    for link in links {
        let ops = pitr::replay_link(client, &link, &mapper, None, cancel)
            .await
            .map_err(|source| match source {
                RestoreError::Cancelled => StandbyError::Cancelled,
                source => StandbyError::Apply {
                    backup: link.manifest.id.clone(),
                    source: Box::new(source),
                },
            })?;
        position = Position {
            seeded_from: position.seeded_from.clone(),
            backup_id: link.manifest.id.clone(),
            at: link.manifest.oplog_end.unwrap_or(position.at),
            updated: Utc::now(),
        };
        write_marker(client, req, &position).await?;
        tracing::info!(job = %req.job, "Standby \"{}\" applied backup {} ({ops} operations); it now reflects the source as of {}.", req.job, link.manifest.id, position.at.to_datetime().to_rfc3339());
        applied.push(link.manifest.id.clone());
    }
    Ok(StandbyReport {
        applied,
        position,
        reseeded,
        seeded,
    })
}

/// Restores `full` (dropping what the standby holds of its databases) and
/// records it as the position.
async fn seed(
    req: &StandbyRequest,
    client: &Client,
    full: &Link,
    mapper: &NsMapper,
    cancel: &CancellationToken,
) -> Result<Position, StandbyError> {
    let target_error = |source| StandbyError::Target {
        target: req.target.clone(),
        source: Box::new(source),
    };
    // Collections the source dropped since the last seed must not linger.
    let mut databases: Vec<String> = full
        .manifest
        .collections
        .iter()
        .filter_map(|c| mapper.map(&c.db, &c.name).map(|(db, _)| db))
        .collect();
    databases.sort();
    databases.dedup();
    for db in &databases {
        client.database(db).drop().await.map_err(|source| {
            target_error(SourceError::Command {
                command: "dropDatabase",
                source,
            })
        })?;
    }
    let opts = RestoreOptions {
        from: full.dir.clone(),
        uri: req.target_uri.clone(),
        drop: true,
        namespaces: mapper.clone(),
        dry_run: false,
        no_indexes: false,
        oplog_replay: true,
        connect_timeout: req.connect_timeout,
    };
    let at = full.manifest.oplog_end.unwrap_or(OpTime { t: 0, i: 0 });
    let plan = PitrPlan {
        full: full.clone(),
        incrementals: Vec::new(),
        until: None,
        restores_to: at,
    };
    pitr::execute(&plan, &opts, cancel)
        .await
        .map_err(|source| match source {
            RestoreError::Cancelled => StandbyError::Cancelled,
            source => StandbyError::Apply {
                backup: full.manifest.id.clone(),
                source: Box::new(source),
            },
        })?;
    let position = Position {
        seeded_from: full.manifest.id.clone(),
        backup_id: full.manifest.id.clone(),
        at,
        updated: Utc::now(),
    };
    write_marker(client, req, &position).await?;
    tracing::info!(job = %req.job, "Standby \"{}\" was seeded from full backup {}; it reflects the source as of {}.", req.job, full.manifest.id, at.to_datetime().to_rfc3339());
    Ok(position)
}

async fn read_marker(
    client: &Client,
    req: &StandbyRequest,
) -> Result<Option<Position>, StandbyError> {
    let found = client
        .database(&marker_db(req))
        .collection::<Document>(MARKER_COLLECTION)
        .find_one(doc! { "_id": &req.job })
        .await
        .map_err(|source| StandbyError::Target {
            target: req.target.clone(),
            source: Box::new(SourceError::Command {
                command: "find",
                source,
            }),
        })?;
    Ok(found.and_then(|d| position_of(&d)))
}

/// A marker this build cannot read is treated as absent: the standby is
/// seeded again, which is always safe.
fn position_of(d: &Document) -> Option<Position> {
    let ts = d.get_timestamp("position").ok()?;
    Some(Position {
        seeded_from: d.get_str("seeded_from").ok()?.to_string(),
        backup_id: d.get_str("backup_id").ok()?.to_string(),
        at: ts.into(),
        updated: d.get_datetime("updated").ok()?.to_chrono(),
    })
}

async fn write_marker(
    client: &Client,
    req: &StandbyRequest,
    p: &Position,
) -> Result<(), StandbyError> {
    let at: bson::Timestamp = p.at.into();
    let marker = doc! {
        "_id": &req.job,
        "source": &req.source,
        "from_job": &req.from,
        "seeded_from": &p.seeded_from,
        "backup_id": &p.backup_id,
        "position": at,
        "position_time": bson::DateTime::from_chrono(p.at.to_datetime()),
        "updated": bson::DateTime::from_chrono(p.updated),
    };
    client
        .database(&marker_db(req))
        .collection::<Document>(MARKER_COLLECTION)
        .replace_one(doc! { "_id": &req.job }, marker)
        .upsert(true)
        .await
        .map_err(|source| StandbyError::Target {
            target: req.target.clone(),
            source: Box::new(SourceError::Command {
                command: "update",
                source,
            }),
        })?;
    Ok(())
}

/// How far behind the source a standby at `position` is at `now`.
pub fn lag(position: &Position, now: DateTime<Utc>) -> Duration {
    (now - position.at.to_datetime())
        .to_std()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
