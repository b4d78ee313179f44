//! The command line: parsing, dispatch to the library, and the mapping of
//! failures to messages and sysexits-style exit codes.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::source;

/// Exit codes from sysexits.h, which systemd and monitoring understand.
pub mod exit {
    pub const USAGE: u8 = 64;
    pub const UNAVAILABLE: u8 = 69;
    pub const SOFTWARE: u8 = 70;
    pub const CONFIG: u8 = 78;
}

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
    match cli.command {
        Command::Ping { uri, timeout_secs } => {
            runtime.block_on(ping(&uri, Duration::from_secs(timeout_secs)))
        }
    }
}

async fn ping(uri: &str, timeout: Duration) -> ExitCode {
    let result = async {
        let client = source::connect(uri, timeout).await?;
        source::describe(&client, uri).await
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
                    format_ts(w.first),
                    format_ts(w.last),
                    w.span().as_secs()
                ),
                None => println!(
                    "No oplog: this server is not a replica set member, so backups cannot be consistent to one instant. Run it as a (single-node) replica set."
                ),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mongo-backupd: {e}");
            if e.is_unreachable() {
                eprintln!("Check that the server is running and reachable from this host, and the host and port in the URI.");
                ExitCode::from(exit::UNAVAILABLE)
            } else {
                ExitCode::from(exit::SOFTWARE)
            }
        }
    }
}

fn format_ts(ts: bson::Timestamp) -> String {
    let dt = bson::DateTime::from_millis(i64::from(ts.time) * 1000);
    dt.try_to_rfc3339_string()
        .unwrap_or_else(|_| ts.time.to_string())
}
