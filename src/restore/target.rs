//! The jobs that restore on their own (drills and standbys), resolved from
//! the configuration into what a run needs: where the backups are, how to
//! decrypt them, and the target's URI.
//!
//! The URI and the identity are read at each run, not when the
//! configuration is loaded, so a rotated credential or key is picked up
//! without a reload.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::NsMapper;
use crate::config::{Config, JobKind, RestoreTarget};
use crate::storage::crypt::{CryptError, Identities};
use crate::storage::Location;

/// A drill or standby job, ready to run.
#[derive(Debug, Clone)]
pub struct TargetJob {
    /// The drill or standby job.
    pub job: String,
    /// The backup job whose backups are read, and its source (chains are
    /// per source).
    pub from: String,
    pub source: String,
    /// Where the backups are (the primary storage of `from`).
    pub location: Location,
    pub identities: Option<Arc<Identities>>,
    /// The `[sources.NAME]` restored into, and its URI.
    pub target: String,
    pub target_uri: String,
    pub connect_timeout: Duration,
    /// The job's settings as configured.
    pub settings: RestoreTarget,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetJobError {
    #[error("{config}: job \"{job}\" is not a {kind} job")]
    WrongKind {
        config: PathBuf,
        job: String,
        kind: JobKind,
    },
    #[error("{config}: job \"{job}\": {source}")]
    Config {
        config: PathBuf,
        job: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the identity file of job \"{job}\" cannot be used: {source}")]
    Identity {
        job: String,
        #[source]
        source: Box<CryptError>,
    },
}

impl TargetJobError {
    pub fn advice(&self) -> &'static str {
        match self {
            TargetJobError::WrongKind { .. } | TargetJobError::Config { .. } => {
                "Fix the job's configuration (the error names the setting) and reload."
            }
            TargetJobError::Identity { .. } => {
                "Check identity_file: it must be readable by the daemon and hold a key the backups were encrypted to."
            }
        }
    }
}

impl TargetJob {
    /// Job `name` of `kind` (drill or standby) in `cfg`.
    pub fn resolve(cfg: &Config, name: &str, kind: JobKind) -> Result<TargetJob, TargetJobError> {
        let wrong_kind = || TargetJobError::WrongKind {
            config: cfg.path.clone(),
            job: name.to_string(),
            kind,
        };
        let job = cfg.jobs.get(name).ok_or_else(wrong_kind)?;
        let settings = match &job.restore_target {
            Some(t) if job.kind == kind => t,
            _ => return Err(wrong_kind()),
        };
        let config_error = |e: Box<dyn std::error::Error + Send + Sync>| TargetJobError::Config {
            config: cfg.path.clone(),
            job: name.to_string(),
            source: e,
        };
        // The configuration checked both names exist.
        let source = cfg
            .sources
            .get(&settings.target)
            .ok_or_else(|| config_error(format!("no source {:?}", settings.target).into()))?;
        let storage = cfg
            .storage
            .get(&job.storage)
            .ok_or_else(|| config_error(format!("no storage {:?}", job.storage).into()))?;
        let target_uri = source
            .resolve_uri()
            .map_err(|e| config_error(Box::new(e)))?;
        let location = Location::open(storage).map_err(|e| config_error(Box::new(e)))?;
        let identities = match &settings.identity_file {
            None => None,
            Some(path) => Some(Arc::new(Identities::from_file(path).map_err(|e| {
                TargetJobError::Identity {
                    job: name.to_string(),
                    source: Box::new(e),
                }
            })?)),
        };
        Ok(TargetJob {
            job: name.to_string(),
            from: settings.from.clone(),
            source: job.source.clone(),
            location,
            identities,
            target: settings.target.clone(),
            target_uri,
            connect_timeout: source.connect_timeout,
            settings: settings.clone(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.settings.prefix
    }

    /// Every namespace to `<prefix><db>` (none without a prefix), leaving
    /// out `excluded`.
    pub fn mapper(&self, excluded: &[&str]) -> NsMapper {
        let excluded: Vec<String> = excluded.iter().map(|s| s.to_string()).collect();
        let (from, to) = match self.prefix() {
            "" => (Vec::new(), Vec::new()),
            prefix => (vec!["*.*".to_string()], vec![format!("{prefix}*.*")]),
        };
        // The patterns are valid by construction: one `*` on each side.
        NsMapper::new(&[], &excluded, &from, &to).unwrap_or_default()
    }
}
