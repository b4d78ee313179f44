//! Point-in-time restore: the newest full whose T1 is at or before the
//! target, then its incrementals replayed in order up to the target.
//!
//! Everything is checked before the target is touched: the chain's
//! continuity (each incremental names the previous backup as its parent
//! and starts exactly where it ended) and every file's checksum. A target
//! the chains do not cover is refused with the windows they do cover.

use std::sync::Arc;

use bson::Timestamp;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{replay, RestoreError, RestoreOptions, RestoreSummary};
use crate::catalog::{self, BackupKind, BackupListing, Manifest, OpTime};
use crate::source;
use crate::storage::{self, crypt::Identities, BackupFiles, Location};

/// The instant to restore to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The end of the newest chain.
    Latest,
    Time(DateTime<Utc>),
}

impl std::str::FromStr for At {
    type Err = String;
    fn from_str(s: &str) -> Result<At, String> {
        if s == "latest" {
            return Ok(At::Latest);
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| At::Time(t.with_timezone(&Utc)))
            .map_err(|e| {
                format!(
                    "--at takes an RFC 3339 time such as 2026-11-21T10:15:00Z, or \"latest\": {e}"
                )
            })
    }
}

/// One backup of a chain, where it lives and what it holds.
#[derive(Debug, Clone)]
pub struct Link {
    pub dir: BackupFiles,
    pub manifest: Manifest,
}

#[derive(Debug, Clone)]
pub struct PitrPlan {
    pub full: Link,
    /// The backups whose oplog is replayed after the full, in order (the
    /// last one only up to the target): incrementals, and fulls that
    /// bridge from one chain into the next.
    pub incrementals: Vec<Link>,
    /// Entries after this are not replayed; None for `latest`.
    pub until: Option<Timestamp>,
    /// The instant the restored data will reflect.
    pub restores_to: OpTime,
}

impl PitrPlan {
    pub fn render(&self) -> String {
        let mut out = format!(
            "Point-in-time restore to {} ({}):\n  full {} (consistent as of {})\n",
            self.restores_to.to_datetime().to_rfc3339(),
            self.restores_to,
            self.full.manifest.id,
            self.full
                .manifest
                .oplog_end
                .map(|t| t.to_datetime().to_rfc3339())
                .unwrap_or_default()
        );
        for inc in &self.incrementals {
            out.push_str(&format!(
                "  then incremental {} ({} oplog entries, {} to {})\n",
                inc.manifest.id,
                inc.manifest.oplog.as_ref().map(|o| o.entries).unwrap_or(0),
                inc.manifest
                    .oplog_start
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                inc.manifest
                    .oplog_end
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            ));
        }
        out
    }
}

/// A chain: a full and the incrementals continuing it without a break
/// (and fulls that bridge onward from its end).
#[derive(Debug, Clone)]
pub struct Chain {
    pub links: Vec<Link>,
    /// Why the chain stops where it does, if something follows it that
    /// does not continue it properly.
    pub broken: Option<String>,
}

/// The chains of `source`'s complete backups at `location`, oldest full
/// first. Blocking: it reads every manifest.
pub fn list_chains(
    location: &Location,
    identities: Option<Arc<Identities>>,
    source: &str,
) -> Result<Vec<Chain>, RestoreError> {
    let listings = catalog::list_location(location, None)?;
    Ok(chains(&listings, source, |l| {
        location
            .backup(&l.job, &l.id)
            .with_identities(identities.clone())
    }))
}

impl Chain {
    /// The first instant the chain restores to (its full's T1).
    pub fn start(&self) -> OpTime {
        self.links[0]
            .manifest
            .oplog_end
            .unwrap_or(OpTime { t: 0, i: 0 })
    }
    /// The last instant the chain restores to.
    pub fn end(&self) -> OpTime {
        self.links
            .last()
            .and_then(|l| l.manifest.oplog_end)
            .unwrap_or(OpTime { t: 0, i: 0 })
    }
}

fn chains(
    listings: &[BackupListing],
    source: &str,
    files: impl Fn(&BackupListing) -> BackupFiles,
) -> Vec<Chain> {
    let ours: Vec<Link> = listings
        .iter()
        .filter(|l| l.is_complete())
        .filter_map(|l| {
            l.manifest.clone().map(|m| Link {
                dir: files(l),
                manifest: m,
            })
        })
        .filter(|l| l.manifest.source == source && l.manifest.consistent)
        .collect();
    let mut fulls: Vec<&Link> = ours
        .iter()
        .filter(|l| l.manifest.kind == BackupKind::Full)
        .collect();
    fulls.sort_by_key(|l| l.manifest.oplog_end);
    fulls
        .into_iter()
        .map(|full| {
            let mut links = vec![full.clone()];
            let mut broken = None;
            loop {
                let cur = &links[links.len() - 1].manifest;
                let next = ours.iter().find(|l| {
                    l.manifest.kind == BackupKind::Incremental
                        && l.manifest.parent.as_deref() == Some(cur.id.as_str())
                });
                // A full taken after this chain may bridge it onward.
                let next = next.or_else(|| {
                    ours.iter().find(|l| {
                        l.manifest.kind == BackupKind::Full
                            && l.manifest.bridge.as_ref().is_some_and(|b| {
                                b.parent == cur.id && Some(b.from) == cur.oplog_end
                            })
                    })
                });
                let Some(next) = next else { break };
                if next.manifest.kind == BackupKind::Full {
                    links.push(next.clone());
                    continue;
                }
                if next.manifest.oplog_start != cur.oplog_end {
                    broken = Some(format!(
                        "incremental {} starts at {} but its parent {} ends at {}",
                        next.manifest.id,
                        next.manifest
                            .oplog_start
                            .map(|t| t.to_string())
                            .unwrap_or_default(),
                        cur.id,
                        cur.oplog_end.map(|t| t.to_string()).unwrap_or_default()
                    ));
                    break;
                }
                links.push(next.clone());
            }
            Chain { links, broken }
        })
        .collect()
}

fn windows(chains: &[Chain]) -> String {
    if chains.is_empty() {
        return "none (no complete, consistent full backup of this source)".into();
    }
    chains
        .iter()
        .map(|c| {
            format!(
                "{} to {}",
                c.start().to_datetime().to_rfc3339(),
                c.end().to_datetime().to_rfc3339()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Works out and checks the chain for a point-in-time restore from the
/// backups at `location` (decrypted with `identities` when encrypted).
/// Blocking: it reads every file the restore will need.
pub fn plan(
    location: &Location,
    identities: Option<Arc<Identities>>,
    source: &str,
    at: At,
) -> Result<PitrPlan, RestoreError> {
    let chains = list_chains(location, identities, source)?;
    let chosen = match at {
        At::Latest => chains.iter().max_by_key(|c| c.end()),
        At::Time(t) => chains
            .iter()
            .filter(|c| c.start().to_datetime() <= t)
            .max_by_key(|c| c.start()),
    };
    let Some(chain) = chosen else {
        return Err(RestoreError::Invalid(format!(
            "no backup of source \"{source}\" in {} covers {}; the covered windows are: {}",
            location.describe(),
            describe(at),
            windows(&chains)
        )));
    };
    let until = match at {
        At::Latest => None,
        At::Time(t) => {
            // Oplog times have one-second resolution: restoring to `t`
            // means every operation of t's second, so the chain must reach
            // past that second.
            if t.timestamp() >= i64::from(chain.end().t) {
                let why = chain
                    .broken
                    .as_ref()
                    .map(|b| format!(" (the chain stops there: {b})"))
                    .unwrap_or_default();
                return Err(RestoreError::Invalid(format!(
                    "cannot restore source \"{source}\" to {}: its backups end at {} ({}; oplog times have one-second resolution, so the last whole second covered is the one before){why}; the covered windows are: {}",
                    describe(at),
                    chain.end().to_datetime().to_rfc3339(),
                    chain.end(),
                    windows(&chains)
                )));
            }
            u32::try_from(t.timestamp()).ok().map(|s| Timestamp {
                time: s,
                increment: u32::MAX,
            })
        }
    };
    let full = chain.links[0].clone();
    let incrementals: Vec<Link> = chain.links[1..]
        .iter()
        .filter(|l| {
            let start: Option<Timestamp> = match &l.manifest.bridge {
                Some(b) if l.manifest.kind == BackupKind::Full => Some(b.from.into()),
                _ => l.manifest.oplog_start.map(Into::into),
            };
            match (until, start) {
                (Some(u), Some(s)) => s < u,
                _ => true,
            }
        })
        .cloned()
        .collect();
    // Check every file the restore will read before anything is written.
    for link in std::iter::once(&full).chain(incrementals.iter()) {
        super::check_identity(&link.dir, &link.manifest)?;
        for file in &link.manifest.files {
            storage::verify_file(&link.dir, file).map_err(|source| RestoreError::Damaged {
                dir: link.dir.path(),
                source,
            })?;
        }
    }
    let last_end = incrementals
        .last()
        .unwrap_or(&full)
        .manifest
        .oplog_end
        .unwrap_or(OpTime { t: 0, i: 0 });
    let restores_to = match until {
        Some(u) => OpTime::from(u).min(last_end),
        None => last_end,
    };
    Ok(PitrPlan {
        full,
        incrementals,
        until,
        restores_to,
    })
}

fn describe(at: At) -> String {
    match at {
        At::Latest => "the latest time".into(),
        At::Time(t) => t.to_rfc3339(),
    }
}

/// Plans, then (unless `base.dry_run`) restores the full and replays the
/// incrementals up to the target.
pub async fn run(
    location: &Location,
    source_name: &str,
    at: At,
    base: &RestoreOptions,
    cancel: &CancellationToken,
) -> Result<(PitrPlan, RestoreSummary), RestoreError> {
    let plan = plan_blocking(location, base.from.identities_arc(), source_name, at).await?;
    if base.dry_run {
        return Ok((plan, RestoreSummary::default()));
    }
    let summary = execute(&plan, base, cancel).await?;
    Ok((plan, summary))
}

/// [`plan`] on a blocking thread.
pub async fn plan_blocking(
    location: &Location,
    identities: Option<Arc<Identities>>,
    source: &str,
    at: At,
) -> Result<PitrPlan, RestoreError> {
    let location = location.clone();
    let source = source.to_string();
    tokio::task::spawn_blocking(move || plan(&location, identities, &source, at))
        .await
        .map_err(|e| RestoreError::Invalid(format!("the restore plan could not be made: {e}")))?
}

/// Carries out a checked plan: the full, then the incrementals' oplog up to
/// the target.
pub async fn execute(
    plan: &PitrPlan,
    base: &RestoreOptions,
    cancel: &CancellationToken,
) -> Result<RestoreSummary, RestoreError> {
    let mut opts = base.clone();
    opts.from = plan.full.dir.clone();
    let (_, mut summary) = super::run(&opts, cancel).await?;
    let client = source::connect(&opts.uri, opts.connect_timeout).await?;
    let replayed = replay_links(&client, plan, &opts, cancel).await;
    source::close(client).await;
    summary.oplog_applied += replayed?;
    Ok(summary)
}

/// Replays the oplog of every link after the full, up to the target.
async fn replay_links(
    client: &mongodb::Client,
    plan: &PitrPlan,
    opts: &RestoreOptions,
    cancel: &CancellationToken,
) -> Result<u64, RestoreError> {
    let mut applied_total = 0;
    for link in &plan.incrementals {
        applied_total += replay_link(client, link, &opts.namespaces, plan.until, cancel).await?;
    }
    Ok(applied_total)
}

/// Replays one backup's oplog into the server behind `client`, up to
/// `until`: an incremental's slice, or a bridging full's bridge and then
/// its own slice. Returns the operations applied.
pub async fn replay_link(
    client: &mongodb::Client,
    link: &Link,
    namespaces: &super::NsMapper,
    until: Option<Timestamp>,
    cancel: &CancellationToken,
) -> Result<u64, RestoreError> {
    let mut applied_total = 0;
    let files = link
        .manifest
        .bridge
        .iter()
        .map(|b| b.file.clone())
        .chain(link.manifest.oplog.iter().map(|o| o.file.clone()));
    for file in files {
        let replay =
            replay::replay_oplog_file(client, namespaces, &link.dir, &link.manifest, &file, until);
        let applied = tokio::select! {
            r = replay => r?,
            _ = cancel.cancelled() => return Err(RestoreError::Cancelled),
        };
        applied_total += applied;
    }
    Ok(applied_total)
}
