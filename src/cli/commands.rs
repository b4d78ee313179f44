//! What each one-shot command does, and which exit code its failures get.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::{exit, BackupArgs, Command, ConfigArg};
use crate::backup::{self, BackupError, BackupRequest};
use crate::catalog::{self, BackupKind};
use crate::config::{self, Config, Selection};
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
        Command::Restore(args) => super::storage_cmd::restore(args).await,
        Command::Export(args) => super::export_cmd::run(args).await,
        Command::Drill { job, config } => super::drill_cmd::drill(&config, &job).await,
        Command::StandbySync { job, config } => super::drill_cmd::standby_sync(&config, &job).await,
        Command::Verify {
            dir,
            location,
            config,
            decrypt,
        } => {
            super::storage_cmd::verify(&dir, location.as_deref(), &config, decrypt.as_deref()).await
        }
        Command::TestAlert { config, job } => {
            super::alert_cmd::test_alert(&config, job.as_deref()).await
        }
        Command::List {
            storage,
            config,
            location,
            job,
        } => {
            let config = super::control_cmd::running_config(config).await;
            super::storage_cmd::list(
                storage.as_deref(),
                &config,
                location.as_deref(),
                job.as_deref(),
            )
            .await
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
pub(super) fn cancel_on_signals() -> CancellationToken {
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
        encryption: None,
    })
}

/// After a configured job's backup: brings its `copies` up to date, as
/// the daemon does after every run. The backup itself is complete either
/// way; a failed copy exits 75 (try again later).
async fn copy_for_job(args: &BackupArgs) -> u8 {
    let (Some(name), None) = (&args.job, &args.uri) else {
        return 0;
    };
    let Ok(cfg) = load_config(&args.config) else {
        return 0;
    };
    let Some(job) = cfg.jobs.get(name) else {
        return 0;
    };
    let mut code = 0;
    for r in backup::copies::sync_copies(&cfg, job, Utc::now()).await {
        match &r.error {
            None => println!(
                "Storage \"{}\" ({}): {} backups copied, the location holds every backup it keeps.",
                r.location,
                r.url,
                r.copied.len()
            ),
            Some(e) => {
                code = exit::TEMPFAIL;
                eprintln!(
                    "mongo-backupd: the copy to storage \"{}\" ({}) failed: {e}; {} backups are not there yet. The backup itself is complete in storage \"{}\"; run the backup again (or let the daemon's next run) to catch up.",
                    r.location, r.url, r.missing, job.storage
                );
            }
        }
    }
    code
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
            copy_for_job(&args).await
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
