//! What each one-shot command does, and which exit code its failures get.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::{exit, BackupArgs, Command, ConfigArg, RestoreArgs};
use crate::backup::{self, BackupError, BackupRequest};
use crate::catalog::{self, BackupKind, BackupStatus};
use crate::config::{self, Config, Selection};
use crate::restore::{self, NsMapper, RestoreError, RestoreOptions};
use crate::source;
use crate::storage::{Compression, StorageError};

pub async fn run(command: Command) -> u8 {
    match command {
        Command::Ping { uri, timeout_secs } => ping(&uri, Duration::from_secs(timeout_secs)).await,
        Command::Run { config } => super::daemon_cmd::run(&config).await,
        Command::CheckConfig { config } => super::daemon_cmd::check_config(&config, 5, true),
        Command::Next { config, count } => super::daemon_cmd::check_config(&config, count, false),
        Command::History { config, job, limit } => {
            let config = super::control_cmd::running_config(config).await;
            super::daemon_cmd::history(&config, job, limit)
        }
        Command::Prune {
            config,
            job,
            dry_run,
        } => {
            let config = super::control_cmd::running_config(config).await;
            super::daemon_cmd::prune(&config, job.as_deref(), dry_run)
        }
        Command::Backup(args) => backup_cmd(args).await,
        Command::Restore(args) => restore_cmd(args).await,
        Command::Verify { dir } => verify_cmd(&dir),
        Command::TestAlert { config, job } => {
            super::alert_cmd::test_alert(&config, job.as_deref()).await
        }
        Command::List {
            storage,
            config,
            job,
        } => {
            let config = super::control_cmd::running_config(config).await;
            list_cmd(storage.as_deref(), &config, job.as_deref())
        }
        Command::BackupNow(args) => super::control_cmd::backup_now(&args).await,
        Command::Status { control, json } => super::control_cmd::status(&control, json).await,
        Command::Pause { job, control } => super::control_cmd::pause(&control, &job, true).await,
        Command::Resume { job, control } => super::control_cmd::pause(&control, &job, false).await,
        #[cfg(feature = "demo")]
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Generate { what } => super::generate::run(&what),
    }
}

pub(super) fn fail(msg: impl std::fmt::Display, code: u8) -> u8 {
    eprintln!("mongo-backupd: {msg}");
    code
}

/// SIGINT or SIGTERM cancel the operation; the caller cleans up.
fn cancel_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        crate::signal::interrupted().await;
        tracing::warn!("Interrupted: stopping and removing the unfinished work.");
        t.cancel();
    });
    token
}

pub(super) fn load_config(arg: &ConfigArg) -> Result<Config, u8> {
    let path = arg.path();
    config::load(&path).map_err(|errors| {
        eprintln!(
            "mongo-backupd: the configuration {} is invalid:",
            path.display()
        );
        eprintln!("{errors}");
        exit::CONFIG
    })
}

fn request_from_config(args: &BackupArgs) -> Result<BackupRequest, u8> {
    let cfg = load_config(&args.config)?;
    let Some(name) = &args.job else {
        return Err(fail(
            "name the job to run with --job (or give --uri and --out for an ad-hoc backup)",
            exit::USAGE,
        ));
    };
    BackupRequest::for_job(&cfg, name, args.note.clone()).map_err(|e| fail(e, exit::CONFIG))
}

fn request_ad_hoc(args: &BackupArgs, uri: &str, out: &Path) -> Result<BackupRequest, u8> {
    let compression = match args.compression.as_str() {
        "none" => Compression::none(),
        "gzip" => Compression {
            kind: crate::storage::CompressionKind::Gzip,
            level: args.level.unwrap_or(6),
        },
        _ => Compression::zstd(args.level.unwrap_or(3)),
    };
    let selection = Selection::from_patterns(&args.include, &args.exclude)
        .map_err(|e| fail(format!("bad --include/--exclude pattern: {e}"), exit::USAGE))?;
    Ok(BackupRequest {
        job: args.job.clone().unwrap_or_else(|| "adhoc".to_string()),
        source_name: source::hosts_of(uri),
        uri: uri.to_string(),
        storage_root: out.to_path_buf(),
        kind: BackupKind::Manual,
        compression,
        selection,
        include_users: args.include_users,
        parallel_collections: args.parallel.max(1),
        connect_timeout: Duration::from_secs(10),
        note: args.note.clone(),
        requested_by: None,
        progress: None,
    })
}

async fn backup_cmd(args: BackupArgs) -> u8 {
    let req = match (&args.uri, &args.out) {
        (Some(uri), Some(out)) => request_ad_hoc(&args, uri, out),
        _ => request_from_config(&args),
    };
    let req = match req {
        Ok(r) => r,
        Err(code) => return code,
    };
    let cancel = cancel_on_signals();
    match backup::run(&req, &cancel, Utc::now()).await {
        Ok(outcome) => {
            println!(
                "Backup {} complete: {} collections, {} documents, {} bytes, consistent as of {}.",
                outcome.path.display(),
                outcome.manifest.collections.len(),
                outcome.documents(),
                outcome.bytes(),
                outcome
                    .manifest
                    .oplog_end
                    .map(|t| t.to_datetime().to_rfc3339())
                    .unwrap_or_else(|| "no single instant (the source has no oplog)".to_string())
            );
            0
        }
        Err(BackupError::Cancelled) => fail(
            format!(
                "backup of job \"{}\" interrupted; nothing was kept",
                req.job
            ),
            exit::INTERRUPTED,
        ),
        Err(e) => {
            let code = match &e {
                _ if e.is_unreachable() => exit::UNAVAILABLE,
                BackupError::Storage(StorageError::DiskFull { .. }) | BackupError::Storage(_) => {
                    exit::IOERR
                }
                _ => exit::FAILURE,
            };
            fail(
                format!("backup of job \"{}\" failed: {}", req.job, error_chain(&e)),
                code,
            )
        }
    }
}

use crate::error_chain;

async fn restore_cmd(args: RestoreArgs) -> u8 {
    let namespaces = match NsMapper::new(
        &args.ns_include,
        &args.ns_exclude,
        &args.ns_from,
        &args.ns_to,
    ) {
        Ok(m) => m,
        Err(e) => return fail(e, exit::USAGE),
    };
    let opts = RestoreOptions {
        from: args.from.clone().unwrap_or_default(),
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
            let Some(store) = cfg.storage.get(&job.storage) else {
                return fail(
                    format!(
                        "job \"{}\" names storage \"{}\", which is not configured",
                        job.name, job.storage
                    ),
                    exit::CONFIG,
                );
            };
            let what = format!("point-in-time restore of source \"{}\"", job.source);
            // The checked plan is shown before anything is written.
            match restore::pitr::plan(
                store.local_path().unwrap_or(std::path::Path::new("")),
                &job.source,
                at,
            ) {
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
            let what = format!("restore from {}", opts.from.display());
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

fn verify_cmd(dir: &Path) -> u8 {
    match catalog::verify_backup(dir) {
        Ok(report) => {
            print!("{}", report.render());
            if report.is_ok() {
                0
            } else {
                exit::DATAERR
            }
        }
        Err(e) => fail(
            format!("cannot verify {}: {}", dir.display(), error_chain(&e)),
            exit::DATAERR,
        ),
    }
}

fn list_cmd(storage: Option<&Path>, config: &ConfigArg, job: Option<&str>) -> u8 {
    let roots: Vec<std::path::PathBuf> = match storage {
        Some(p) => vec![p.to_path_buf()],
        None => match load_config(config) {
            Ok(cfg) => {
                let mut roots: Vec<_> = cfg
                    .storage
                    .values()
                    .filter_map(|s| s.local_path().map(|p| p.to_path_buf()))
                    .collect();
                roots.dedup();
                roots
            }
            Err(code) => return code,
        },
    };
    let mut all = Vec::new();
    for root in &roots {
        match catalog::list_backups(root, job) {
            Ok(mut l) => all.append(&mut l),
            Err(e) => {
                return fail(
                    format!("cannot list {}: {}", root.display(), error_chain(&e)),
                    exit::IOERR,
                )
            }
        }
    }
    all.sort_by(|a, b| {
        b.consistent_as_of()
            .cmp(&a.consistent_as_of())
            .then(b.id.cmp(&a.id))
    });
    println!(
        "{:<28} {:<16} {:<12} {:>12}  {:<25} STATUS",
        "ID", "JOB", "KIND", "SIZE", "CONSISTENT AS OF"
    );
    for b in &all {
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
        let status = match &b.status {
            BackupStatus::Complete => "complete".to_string(),
            BackupStatus::Partial => "partial (interrupted or running)".to_string(),
            BackupStatus::Invalid(why) => format!("invalid: {why}"),
        };
        println!(
            "{:<28} {:<16} {:<12} {:>12}  {:<25} {status}",
            b.id, b.job, kind, b.size, as_of
        );
    }
    0
}

async fn ping(uri: &str, timeout: Duration) -> u8 {
    let result = async {
        let client = source::connect(uri, timeout).await?;
        let info = source::describe(&client, uri).await;
        source::close(client).await;
        info
    }
    .await;
    match result {
        Ok(info) => {
            let topology = match &info.set_name {
                Some(set) if info.writable_primary => format!("replica set {set}, primary"),
                Some(set) => format!("replica set {set}, not primary"),
                None => "standalone".to_string(),
            };
            println!(
                "Connected to MongoDB {} at {} ({topology}).",
                info.version,
                source::hosts_of(uri)
            );
            match info.oplog {
                Some(w) => println!(
                    "Oplog window: {} to {} ({} s): point-in-time backups are possible.",
                    catalog::OpTime::from(w.first).to_datetime().to_rfc3339(),
                    catalog::OpTime::from(w.last).to_datetime().to_rfc3339(),
                    w.span().as_secs()
                ),
                None => println!(
                    "No oplog: this server is not a replica set member, so backups cannot be consistent to one instant. Run it as a (single-node) replica set."
                ),
            }
            0
        }
        Err(e) => {
            eprintln!("mongo-backupd: {e}");
            if e.is_unreachable() {
                eprintln!("Check that the server is running and reachable from this host, and the host and port in the URI.");
                exit::UNAVAILABLE
            } else {
                exit::SOFTWARE
            }
        }
    }
}
