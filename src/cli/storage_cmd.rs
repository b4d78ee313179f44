//! The commands that read stored backups (`restore`, `verify`, `list`),
//! at any configured location: a directory or an object store, with an
//! identity file for encrypted backups.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::commands::{cancel_on_signals, fail, load_config};
use super::{exit, ConfigArg, RestoreArgs};
use crate::catalog::{self, BackupListing, BackupStatus};
use crate::config::Config;
use crate::error_chain;
use crate::restore::{self, NsMapper, RestoreError, RestoreOptions};
use crate::storage::crypt::Identities;
use crate::storage::{BackupFiles, Location};

/// Opens configured location `name`, or says which exist.
pub(super) fn open_location(cfg: &Config, name: &str) -> Result<Location, u8> {
    let Some(loc) = cfg.storage.get(name) else {
        return Err(fail(
            format!(
                "there is no [storage.{name}] in {}; the locations are: {}",
                cfg.path.display(),
                cfg.storage.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            exit::USAGE,
        ));
    };
    Location::open(loc).map_err(|e| {
        fail(
            format!("cannot open storage \"{name}\": {}", error_chain(&e)),
            exit::UNAVAILABLE,
        )
    })
}

pub(super) fn load_identities(path: Option<&Path>) -> Result<Option<Arc<Identities>>, u8> {
    match path {
        None => Ok(None),
        Some(p) => Identities::from_file(p)
            .map(|ids| Some(Arc::new(ids)))
            .map_err(|e| fail(error_chain(&e), exit::USAGE)),
    }
}

/// The backup `from` names: a directory, or `JOB/ID` at `location`.
pub(super) fn backup_files(
    from: &Path,
    location: Option<&str>,
    config: &ConfigArg,
    identities: Option<Arc<Identities>>,
) -> Result<BackupFiles, u8> {
    let Some(name) = location else {
        return Ok(BackupFiles::local(from).with_identities(identities));
    };
    let cfg = load_config(config)?;
    let location = open_location(&cfg, name)?;
    let text = from.to_string_lossy();
    let Some((job, id)) = text
        .split_once('/')
        .filter(|(j, i)| !j.is_empty() && !i.is_empty() && !i.contains('/') && !j.starts_with('.'))
    else {
        return Err(fail(
            format!(
                "with --location, name the backup as JOB/ID (as `mongo-backupd list --location \
                 {name}` shows them), not {text:?}"
            ),
            exit::USAGE,
        ));
    };
    Ok(location.backup(job, id).with_identities(identities))
}

pub(super) async fn restore(args: RestoreArgs) -> u8 {
    let namespaces = match NsMapper::new(
        &args.ns_include,
        &args.ns_exclude,
        &args.ns_from,
        &args.ns_to,
    ) {
        Ok(m) => m,
        Err(e) => return fail(e, exit::USAGE),
    };
    let identities = match load_identities(args.identity.as_deref()) {
        Ok(ids) => ids,
        Err(code) => return code,
    };
    let from = match &args.from {
        Some(from) => match backup_files(
            from,
            args.location.as_deref(),
            &args.config,
            identities.clone(),
        ) {
            Ok(files) => files,
            Err(code) => return code,
        },
        // With --at the chain's backups are found below.
        None => BackupFiles::local("").with_identities(identities.clone()),
    };
    let opts = RestoreOptions {
        from,
        uri: args.to.clone(),
        drop: args.drop,
        namespaces,
        dry_run: args.dry_run,
        no_indexes: args.no_indexes,
        oplog_replay: !args.no_oplog_replay,
        connect_timeout: Duration::from_secs(args.timeout_secs),
    };
    let cancel = cancel_on_signals();
    let (rendered, result, what) = match &args.at {
        Some(at) => {
            let at: restore::pitr::At = match at.parse() {
                Ok(a) => a,
                Err(e) => return fail(e, exit::USAGE),
            };
            let cfg = match load_config(&args.config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let Some(job) = args.job.as_ref().and_then(|j| cfg.jobs.get(j)) else {
                return fail(
                    format!(
                        "--at needs --job naming a configured job; the jobs are: {}",
                        cfg.jobs.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                    exit::USAGE,
                );
            };
            let name = args.location.as_deref().unwrap_or(&job.storage);
            let location = match open_location(&cfg, name) {
                Ok(l) => l,
                Err(code) => return code,
            };
            let what = format!("point-in-time restore of source \"{}\"", job.source);
            // The checked plan is shown before anything is written.
            match restore::pitr::plan_blocking(&location, identities, &job.source, at).await {
                Ok(plan) => {
                    print!("{}", plan.render());
                    let result = if opts.dry_run {
                        Ok(restore::RestoreSummary::default())
                    } else {
                        restore::pitr::execute(&plan, &opts, &cancel).await
                    };
                    (String::new(), result, what)
                }
                Err(e) => (String::new(), Err(e), what),
            }
        }
        None => {
            let what = format!("restore from {}", opts.from.path().display());
            match restore::run(&opts, &cancel).await {
                Ok((plan, summary)) => (plan.render(), Ok(summary), what),
                Err(e) => (String::new(), Err(e), what),
            }
        }
    };
    match result {
        Ok(summary) => {
            print!("{rendered}");
            if opts.dry_run {
                println!("Dry run: nothing was written.");
            } else {
                println!(
                    "Restore complete: {} collections, {} documents inserted, {} already present, {} oplog operations replayed.",
                    summary.collections, summary.inserted, summary.already_present, summary.oplog_applied
                );
            }
            0
        }
        Err(RestoreError::Cancelled) => fail("restore interrupted", exit::INTERRUPTED),
        Err(e) => {
            let code = match &e {
                RestoreError::Damaged { .. } | RestoreError::Catalog(_) => exit::DATAERR,
                RestoreError::Source(s) if s.is_unreachable() => exit::UNAVAILABLE,
                _ => exit::FAILURE,
            };
            fail(format!("{what} failed: {}", error_chain(&e)), code)
        }
    }
}

pub(super) async fn verify(
    dir: &Path,
    location: Option<&str>,
    config: &ConfigArg,
    identity: Option<&Path>,
) -> u8 {
    let identities = match load_identities(identity) {
        Ok(ids) => ids,
        Err(code) => return code,
    };
    let files = match backup_files(dir, location, config, identities) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let shown = files.path();
    let checked = tokio::task::spawn_blocking(move || catalog::verify_backup(&files)).await;
    match checked {
        Ok(Ok(report)) => {
            print!("{}", report.render());
            if report.is_ok() {
                0
            } else {
                exit::DATAERR
            }
        }
        Ok(Err(e)) => fail(
            format!("cannot verify {}: {}", shown.display(), error_chain(&e)),
            exit::DATAERR,
        ),
        Err(e) => fail(
            format!("cannot verify {}: {e}", shown.display()),
            exit::SOFTWARE,
        ),
    }
}

pub(super) async fn list(
    storage: Option<&Path>,
    config: &ConfigArg,
    location: Option<&str>,
    job: Option<&str>,
) -> u8 {
    let locations: Vec<Location> = match storage {
        Some(p) => vec![Location::local_dir(p)],
        None => {
            let cfg = match load_config(config) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            let names: Vec<String> = match location {
                Some(name) => vec![name.to_string()],
                None => cfg.storage.keys().cloned().collect(),
            };
            let mut out = Vec::new();
            for name in names {
                match open_location(&cfg, &name) {
                    Ok(l) => out.push(l),
                    Err(code) => return code,
                }
            }
            out
        }
    };
    let show_location = locations.len() > 1;
    let job = job.map(str::to_string);
    let listed = tokio::task::spawn_blocking(move || {
        let mut all: Vec<(String, BackupListing)> = Vec::new();
        for loc in &locations {
            let listings = catalog::list_location(loc, job.as_deref())
                .map_err(|e| format!("cannot list {}: {}", loc.describe(), error_chain(&e)))?;
            all.extend(listings.into_iter().map(|l| (loc.name().to_string(), l)));
        }
        Ok::<_, String>(all)
    })
    .await;
    let mut all = match listed {
        Ok(Ok(all)) => all,
        Ok(Err(e)) => return fail(e, exit::IOERR),
        Err(e) => return fail(format!("cannot list: {e}"), exit::SOFTWARE),
    };
    all.sort_by(|(la, a), (lb, b)| {
        b.consistent_as_of()
            .cmp(&a.consistent_as_of())
            .then(b.id.cmp(&a.id))
            .then(la.cmp(lb))
    });
    let loc_header = if show_location { "LOCATION" } else { "" };
    println!(
        "{:<28} {:<16} {:<12} {:>12}  {:<25} {}{}STATUS",
        "ID",
        "JOB",
        "KIND",
        "SIZE",
        "CONSISTENT AS OF",
        loc_header,
        if show_location { " " } else { "" }
    );
    for (loc, b) in &all {
        let kind = b
            .manifest
            .as_ref()
            .and_then(|m| serde_json::to_value(m.kind).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "-".into());
        let as_of = b
            .consistent_as_of()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|| "-".into());
        let encrypted = match b.manifest.as_ref().and_then(|m| m.encryption.as_ref()) {
            Some(_) => ", encrypted",
            None => "",
        };
        // The newest drill that restored up to this backup.
        let drilled = b
            .manifest
            .as_ref()
            .and_then(|m| m.drills.last())
            .map(|d| format!(", drill passed {}", d.verified_at.format("%Y-%m-%d")))
            .unwrap_or_default();
        let status = match &b.status {
            BackupStatus::Complete => format!("complete{encrypted}{drilled}"),
            BackupStatus::Partial => "partial (interrupted or running)".to_string(),
            BackupStatus::Invalid(why) => format!("invalid: {why}"),
        };
        let loc = if show_location {
            format!("{loc:<12} ")
        } else {
            String::new()
        };
        println!(
            "{:<28} {:<16} {:<12} {:>12}  {:<25} {loc}{status}",
            b.id, b.job, kind, b.size, as_of
        );
    }
    0
}
