//! The command line: parsing, dispatch to the library, and the mapping of
//! failures to messages and sysexits-style exit codes.

mod alert_cmd;
mod commands;
mod control_cmd;
mod daemon_cmd;
mod drill_cmd;
mod export_cmd;
mod generate;
mod storage_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit codes from sysexits.h, which systemd and monitoring understand.
pub mod exit {
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 64;
    /// The backup's data is damaged (verify or restore found a problem).
    pub const DATAERR: u8 = 65;
    pub const UNAVAILABLE: u8 = 69;
    pub const SOFTWARE: u8 = 70;
    /// Try again later: the job is running already (EX_TEMPFAIL).
    pub const TEMPFAIL: u8 = 75;
    /// Writing the backup failed (a full disk, permissions).
    pub const IOERR: u8 = 74;
    /// Not allowed to talk to the daemon (EX_NOPERM).
    pub const NOPERM: u8 = 77;
    pub const CONFIG: u8 = 78;
    /// Interrupted by SIGINT/SIGTERM (128 + 2, as shells report it).
    pub const INTERRUPTED: u8 = 130;
}

/// Where the configuration is read from unless `--config` or
/// `MONGO_BACKUPD_CONFIG` says otherwise.
pub const DEFAULT_CONFIG: &str = "/etc/mongo-backupd/config.toml";

#[derive(Parser, Debug)]
#[command(
    name = "mongo-backupd",
    version,
    about = "Scheduled, consistent, restorable MongoDB backups"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Connect to a MongoDB deployment and show what a backup would see:
    /// server version, replica set, and the oplog window that bounds
    /// point-in-time recovery.
    Ping {
        /// MongoDB connection string (mongodb:// or mongodb+srv://).
        #[arg(long, env = "MONGO_BACKUPD_URI", hide_env_values = true)]
        uri: String,
        /// Give up after this many seconds if no server answers.
        #[arg(long, default_value_t = 10)]
        timeout_secs: u64,
    },
    /// Run the daemon: back up the configured jobs on their schedules.
    /// SIGHUP reloads the configuration, SIGTERM/SIGINT stop gracefully.
    Run {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Validate the configuration and show each job's next 5 runs.
    CheckConfig {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Show the next runs of every scheduled job (from the configuration
    /// file the daemon reads).
    Next {
        #[command(flatten)]
        config: ConfigArg,
        /// How many runs per job.
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
    /// Show the run history the daemon recorded, newest first.
    History {
        #[command(flatten)]
        config: ConfigArg,
        /// Only this job's runs.
        #[arg(long)]
        job: Option<String>,
        /// At most this many runs.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Apply the retention policies: delete the backups they no longer
    /// keep (with --dry-run, only show every decision and its reason).
    Prune {
        #[command(flatten)]
        config: ConfigArg,
        /// Only this job's backups (its chain is still judged whole).
        #[arg(long)]
        job: Option<String>,
        /// Show the decisions, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Take one full backup now and exit 0 only if it is complete.
    Backup(BackupArgs),
    /// Restore a backup into a MongoDB deployment.
    Restore(RestoreArgs),
    /// Write a backup's collections (at its consistent point or at a point
    /// in time) as Extended JSON or CSV files, without a server; with
    /// --sample and --redact for sanitized test data.
    Export(export_cmd::ExportArgs),
    /// Run a drill job once now: restore its job's backups into the
    /// scratch target (databases prefixed), check them, drop them.
    Drill {
        /// The drill job.
        #[arg(long)]
        job: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Run a standby job once now: seed the standby if needed, then apply
    /// the backups that continue its chain.
    StandbySync {
        /// The standby job.
        #[arg(long)]
        job: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Check a backup: checksums, BSON, document counts against the manifest.
    Verify {
        /// The backup directory (the one holding manifest.json), or with
        /// --location its JOB/ID there.
        dir: PathBuf,
        /// The configured [storage.NAME] the backup is in (e.g. an object
        /// store).
        #[arg(long)]
        location: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
        /// Also decrypt an encrypted backup with this age identity file and
        /// check its documents (without it, only the checksums of the
        /// encrypted bytes are checked).
        #[arg(long, value_name = "IDENTITY_FILE", env = "MONGO_BACKUPD_IDENTITY")]
        decrypt: Option<PathBuf>,
    },
    /// Send a test alert mail with the configured [alerts.email] settings
    /// and show how the SMTP conversation went.
    TestAlert {
        #[command(flatten)]
        config: ConfigArg,
        /// Also send to this job's alert_to recipients.
        #[arg(long)]
        job: Option<String>,
    },
    /// List the backups in a storage location, newest first.
    List {
        /// A storage location's directory (instead of --config).
        #[arg(long, conflicts_with_all = ["config", "location"])]
        storage: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArg,
        /// Only this configured [storage.NAME] (default: every location).
        #[arg(long)]
        location: Option<String>,
        /// Only this job's backups.
        #[arg(long)]
        job: Option<String>,
    },
    /// Ask the running daemon to back up a job now; with --wait, follow
    /// the run until it ends.
    BackupNow(BackupNowArgs),
    /// Show what the running daemon is doing: its jobs, their last and
    /// next runs, and alert delivery.
    Status {
        #[command(flatten)]
        control: ControlArgs,
        /// Print the daemon's status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop the running daemon from scheduling a job (until `resume`;
    /// kept across restarts).
    Pause {
        /// The job.
        job: String,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Let the running daemon schedule a paused job again.
    Resume {
        /// The job.
        job: String,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// See it all work without MongoDB, in one command.
    ///
    /// The daemon backs up an embedded test server for a while (fulls and
    /// incrementals encrypted with age, retention, an alert mail to a local
    /// SMTP server), then a point-in-time restore, decrypted with the
    /// demo's identity, is checked against the source.
    #[cfg(feature = "demo")]
    Demo(crate::demo::DemoArgs),
    /// Write the man page or the shell completions (packaging does, at
    /// build time).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: generate::Generate,
    },
}

/// How to reach the running daemon.
#[derive(Args, Debug, Clone)]
pub struct ControlArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The daemon's control socket (default: `control_socket` of the
    /// configuration, else /run/mongo-backupd/control.sock).
    #[arg(long, env = "MONGO_BACKUPD_SOCKET")]
    pub socket: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct BackupNowArgs {
    /// The job to back up.
    pub job: String,
    /// Take it as a manual backup (kept by the manual retention) instead
    /// of the job's own kind.
    #[arg(long, value_parser = ["manual"])]
    pub kind: Option<String>,
    /// A note stored with the backup.
    #[arg(long)]
    pub note: Option<String>,
    /// Follow the run and exit when it ends (0 only if it succeeded).
    #[arg(long)]
    pub wait: bool,
    /// Print the run as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub control: ControlArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ConfigArg {
    /// The configuration file.
    #[arg(
        long = "config",
        env = "MONGO_BACKUPD_CONFIG",
        id = "config",
        value_name = "FILE"
    )]
    pub path: Option<PathBuf>,
}

impl ConfigArg {
    pub fn path(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
    }
}

#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The job to run (from the configuration), or the name to file an
    /// ad-hoc backup under (default "adhoc").
    #[arg(long)]
    pub job: Option<String>,
    /// Back up this deployment directly, without a configuration file.
    #[arg(
        long,
        env = "MONGO_BACKUPD_URI",
        hide_env_values = true,
        requires = "out"
    )]
    pub uri: Option<String>,
    /// Storage directory for an ad-hoc backup (with --uri).
    #[arg(long, requires = "uri")]
    pub out: Option<PathBuf>,
    /// Compression for an ad-hoc backup.
    #[arg(long, value_parser = ["none", "gzip", "zstd"], default_value = "zstd")]
    pub compression: String,
    /// Compression level (zstd 1-22, gzip 1-9).
    #[arg(long)]
    pub level: Option<i32>,
    /// Namespaces to include (`db` or `db.coll`, `*` wildcards).
    #[arg(long)]
    pub include: Vec<String>,
    /// Namespaces to exclude.
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Also save admin.system.users and admin.system.roles.
    #[arg(long)]
    pub include_users: bool,
    /// Collections copied at the same time.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// A note stored in the manifest.
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    /// The backup: its directory (the one holding manifest.json), or with
    /// --location its JOB/ID there.
    #[arg(long, required_unless_present = "at", conflicts_with = "at")]
    pub from: Option<PathBuf>,
    /// Read the backups from this configured [storage.NAME] (a copy, e.g.
    /// in an object store) instead of a directory or the job's own storage.
    #[arg(long)]
    pub location: Option<String>,
    /// The age identity file (private key) that decrypts encrypted
    /// backups; keep it off the backed-up server.
    #[arg(long, env = "MONGO_BACKUPD_IDENTITY")]
    pub identity: Option<PathBuf>,
    /// Restore to this instant (RFC 3339, e.g. 2026-11-21T10:15:00Z) or
    /// "latest", from the full and incremental backups of --job's source.
    #[arg(long, requires = "job")]
    pub at: Option<String>,
    /// The configured job whose source and storage hold the backups (with --at).
    #[arg(long)]
    pub job: Option<String>,
    #[command(flatten)]
    pub config: ConfigArg,
    /// The deployment to restore into.
    #[arg(long, env = "MONGO_BACKUPD_RESTORE_URI", hide_env_values = true)]
    pub to: String,
    /// Drop each collection before restoring it.
    #[arg(long)]
    pub drop: bool,
    /// Restore only these namespaces (`db` or `db.coll`, `*` wildcards).
    #[arg(long = "ns-include")]
    pub ns_include: Vec<String>,
    /// Leave these namespaces out.
    #[arg(long = "ns-exclude")]
    pub ns_exclude: Vec<String>,
    /// Rename: source pattern (pairs with --ns-to, in order).
    #[arg(long = "ns-from")]
    pub ns_from: Vec<String>,
    /// Rename: target pattern.
    #[arg(long = "ns-to")]
    pub ns_to: Vec<String>,
    /// Check the backup and print what would be restored, then stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not build the backup's indexes.
    #[arg(long)]
    pub no_indexes: bool,
    /// Do not replay the backup's oplog (the result is then not
    /// consistent to one instant).
    #[arg(long)]
    pub no_oplog_replay: bool,
    /// Give up after this many seconds if no server answers.
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // The daemon sets up its own logging from its configuration, the demo
    // its own too (it also writes a log file in its directory).
    let own_logging = matches!(cli.command, Command::Run { .. });
    #[cfg(feature = "demo")]
    let own_logging = own_logging || matches!(cli.command, Command::Demo(_));
    if !own_logging {
        init_logging();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mongo-backupd: cannot start the async runtime: {e}");
            return ExitCode::from(exit::SOFTWARE);
        }
    };
    let code = runtime.block_on(commands::run(cli.command));
    ExitCode::from(code)
}

/// Human-readable logs on stderr; `MONGO_BACKUPD_LOG` (or `RUST_LOG`)
/// overrides the level.
fn init_logging() {
    let filter = std::env::var("MONGO_BACKUPD_LOG")
        .ok()
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .or_else(|| tracing_subscriber::EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
