//! The daemon's commands: `run` itself, and the read-only views of what it
//! will do (`check-config`, `next`) and did (`history`).

use chrono::Utc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use super::commands::{fail, load_config};
use super::{exit, ConfigArg};
use crate::config::{self, JobKind};
use crate::daemon::{Control, Daemon, DaemonError, Notifier};
use crate::history::{self, HistoryFilter};

/// Turns SIGHUP into Reload and SIGTERM/SIGINT into Shutdown. Registered
/// before anything else, so a signal during start-up is never fatal.
fn control_from_signals() -> Result<mpsc::Receiver<Control>, std::io::Error> {
    let (tx, rx) = mpsc::channel(8);
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = hup.recv() => Control::Reload,
                _ = term.recv() => Control::Shutdown,
                _ = int.recv() => Control::Shutdown,
            };
            if tx.send(msg).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

pub async fn run(arg: &ConfigArg) -> u8 {
    let control = match control_from_signals() {
        Ok(c) => c,
        Err(e) => {
            return fail(
                format!("cannot install signal handlers: {e}"),
                exit::SOFTWARE,
            )
        }
    };
    let path = arg.path();
    let daemon = match Daemon::load(&path, Notifier::from_env()) {
        Ok(d) => d,
        Err(DaemonError::Config(errors)) => {
            eprintln!(
                "mongo-backupd: the configuration {} is invalid:",
                path.display()
            );
            eprintln!("{errors}");
            return exit::CONFIG;
        }
    };
    daemon.run(control).await;
    0
}

/// `check-config` (with `details`) and `next`.
pub fn check_config(arg: &ConfigArg, count: usize, details: bool) -> u8 {
    let cfg = match load_config(arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let now = Utc::now();
    if details {
        println!("{}: valid, {} jobs.", cfg.path.display(), cfg.jobs.len());
    }
    for (name, job) in &cfg.jobs {
        let kind = match job.kind {
            JobKind::Full => "full",
            JobKind::Incremental => "incremental",
            JobKind::Manual => "manual",
        };
        let schedule = job.schedule.as_ref().map(|s| s.as_str().to_string());
        println!(
            "\njob {name}: {kind}, source {}, storage {}, schedule {} ({}){}",
            job.source,
            job.storage,
            schedule.as_deref().unwrap_or("none (on request only)"),
            job.timezone,
            if job.enabled { "" } else { ", disabled" }
        );
        if job.kind == JobKind::Incremental {
            println!("  not scheduled: incremental backups are not supported yet");
            continue;
        }
        if !job.enabled || job.schedule.is_none() {
            continue;
        }
        for at in config::next_fires(job, now, count) {
            println!(
                "  {}   {}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                at.with_timezone(&job.timezone)
                    .format("%Y-%m-%d %H:%M:%S %Z")
            );
        }
    }
    0
}

pub fn history(arg: &ConfigArg, job: Option<String>, limit: usize) -> u8 {
    let cfg = match load_config(arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let filter = HistoryFilter {
        job,
        limit: Some(limit),
        ..HistoryFilter::default()
    };
    match history::read(&cfg.daemon.state_dir, filter) {
        Ok(records) => {
            print!("{}", history::render_table(&records));
            0
        }
        Err(e) => fail(e, exit::IOERR),
    }
}
