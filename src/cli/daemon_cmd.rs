//! The daemon's commands: `run` itself, and the read-only views of what it
//! will do (`check-config`, `next`) and did (`history`).

use chrono::Utc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use super::commands::{fail, load_config};
use super::{exit, ConfigArg};
use crate::config;
use crate::daemon::{Control, Daemon, Notifier};
use crate::history::{self, HistoryFilter};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

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
    let config = match config::load(&path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!(
                "mongo-backupd: the configuration {} is invalid:",
                path.display()
            );
            eprintln!("{errors}");
            return exit::CONFIG;
        }
    };
    // Held until exit: dropping it flushes the file log.
    let _log = match init_logging(&config.daemon) {
        Ok(g) => g,
        Err(e) => return fail(e, exit::CONFIG),
    };
    let daemon = Daemon::new(config.clone(), Notifier::from_env());
    let stop_front_ends = tokio_util::sync::CancellationToken::new();
    let mut front_ends = Vec::new();
    // The control socket first: it is also how a second daemon on the same
    // configuration is noticed, and two would run every job twice.
    match crate::control::server::bind(
        &config.daemon.control_socket,
        config.daemon.control_group.as_deref(),
    )
    .await
    {
        Ok(bound) => front_ends.push(tokio::spawn(bound.run(
            daemon.handle(),
            stop_front_ends.clone(),
            crate::control::server::Limits::default(),
        ))),
        Err(e @ crate::control::ControlError::AlreadyRunning { .. }) => {
            return fail(
                format!("{e}; stop it first (systemctl stop mongo-backupd), or give this one another state_dir and control_socket"),
                exit::FAILURE,
            )
        }
        // Backups matter more than the control interface: run without it.
        Err(e) => tracing::error!(
            "{e}. `mongo-backupd status`, `backup-now`, `pause` and `resume` cannot reach this daemon until this is fixed and it is restarted; the schedule runs regardless."
        ),
    }
    if let Some(http) = config.http.clone() {
        match crate::http::Server::bind(daemon.handle(), http).await {
            Ok(server) => front_ends.push(tokio::spawn(server.run(stop_front_ends.clone()))),
            Err(e) => tracing::error!(
                "The HTTP API is not available: {e}. Fix [http] and restart the daemon; backups run regardless."
            ),
        }
    }
    daemon.run(control).await;
    stop_front_ends.cancel();
    for task in front_ends {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
    }
    0
}

/// The daemon's logs: stderr (the journal under systemd) and, when
/// `log_file` is set, that file rotated as configured. The file writer is
/// non-lossy: when the disk is slow, logging waits rather than dropping
/// lines an operator may need. `MONGO_BACKUPD_LOG` overrides the level.
fn init_logging(settings: &config::DaemonSettings) -> Result<Option<WorkerGuard>, String> {
    let level: tracing::Level = settings.log_level.into();
    let filter = || {
        std::env::var("MONGO_BACKUPD_LOG")
            .ok()
            .and_then(|v| EnvFilter::try_new(v).ok())
            .unwrap_or_else(|| EnvFilter::new(level.as_str().to_lowercase()))
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(filter());
    let (file, guard) = match &settings.log_file {
        None => (None, None),
        Some(path) => {
            let (dir, name) = match (path.parent(), path.file_name()) {
                (Some(d), Some(n)) => (d.to_path_buf(), n.to_os_string()),
                _ => return Err(format!("daemon.log_file {} names no file", path.display())),
            };
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create the log directory {}: {e}", dir.display()))?;
            let rotation = match settings.log_rotation {
                config::LogRotation::Daily => tracing_appender::rolling::Rotation::DAILY,
                config::LogRotation::Hourly => tracing_appender::rolling::Rotation::HOURLY,
                config::LogRotation::Never => tracing_appender::rolling::Rotation::NEVER,
            };
            let appender = tracing_appender::rolling::RollingFileAppender::builder()
                .rotation(rotation)
                .filename_prefix(name.to_string_lossy())
                .build(&dir)
                .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(appender);
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_target(false)
                .with_filter(filter());
            (Some(layer), Some(guard))
        }
    };
    // A subscriber set by an earlier call (tests, embedding) stays.
    let run_lines = crate::alert::runlog::layer();
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .with(run_lines)
        .try_init();
    Ok(guard)
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
        let kind = job.kind.as_str();
        let schedule = job.schedule.as_ref().map(|s| s.as_str().to_string());
        let reads = match &job.restore_target {
            Some(t) if t.prefix.is_empty() => {
                format!("restores job {} into source {}", t.from, t.target)
            }
            Some(t) => format!(
                "restores job {} into source {} (databases prefixed {:?})",
                t.from, t.target, t.prefix
            ),
            None => format!("source {}, storage {}", job.source, job.storage),
        };
        println!(
            "\njob {name}: {kind}, {reads}, schedule {} ({}){}",
            schedule.as_deref().unwrap_or("none (on request only)"),
            job.timezone,
            if job.enabled { "" } else { ", disabled" }
        );
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

pub fn prune(arg: &ConfigArg, job: Option<&str>, dry_run: bool) -> u8 {
    let cfg = match load_config(arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(j) = job {
        if !cfg.jobs.contains_key(j) {
            return fail(
                format!("there is no job \"{j}\" in {}", cfg.path.display()),
                exit::CONFIG,
            );
        }
    }
    let now = Utc::now();
    let plans = match crate::retention::prune::plan(&cfg, job, now) {
        Ok(p) => p,
        Err(e) => {
            return fail(
                format!("cannot list the backups: {}", crate::error_chain(&e)),
                exit::IOERR,
            )
        }
    };
    let mut failed = false;
    for plan in &plans {
        print!("{}", plan.render(now));
        if dry_run {
            continue;
        }
        let (removed, errors) = plan.execute();
        println!(
            "Deleted {} backups from {} ({}).",
            removed.len(),
            plan.name,
            plan.describe
        );
        for e in &errors {
            eprintln!("mongo-backupd: {e}");
        }
        failed |= !errors.is_empty();
    }
    if dry_run {
        println!("Dry run: nothing was deleted.");
    }
    if failed {
        exit::IOERR
    } else {
        0
    }
}
