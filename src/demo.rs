//! `mongo-backupd demo`: the real daemon, in one command, without MongoDB.
//!
//! The embedded test server (the `mongo-testserver` crate, compiled in
//! only with the `demo` feature) plays a MongoDB replica set holding a
//! small shop that an application keeps writing to; a tiny SMTP server
//! plays the on-call mailbox. Between them runs the unmodified daemon
//! ([`crate::daemon::Daemon`]) with a fast configuration: full backups,
//! incrementals, retention, and a job that fails on purpose so an alert
//! goes out. The shop's backups are encrypted with age, to a key pair the
//! demo generates (or the user's `--identity`). At the end the demo
//! restores the shop to a past second with the real point-in-time restore
//! ([`crate::restore::pitr`]), decrypting with that identity, and checks
//! the result document by document against the state it recorded at that
//! second. Everything stays in the demo's directory for a closer look.

mod dataset;
mod keys;
mod mail;
mod session;
mod setup;
mod smtp_sink;
mod story;
mod verify;
mod writer;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::exit;
use session::Session;

/// The shortest run that still shows a full, incrementals and an alert,
/// and leaves an incremental after the instant restored to.
pub const MIN_DURATION: Duration = Duration::from_secs(30);

/// `mongo-backupd demo` options.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// How long the daemon runs before the restore: e.g. "90s", "2m"
    /// (at least 30s).
    #[arg(long, default_value = "2m", value_parser = parse_demo_duration)]
    pub duration: Duration,
    /// Where to keep the demo's files (created if missing, must be empty);
    /// default: a new directory under the system's temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Encrypt the backups to the public keys of this age identity file
    /// (`age-keygen -o FILE`) and restore with it; default: a new key pair
    /// in the demo's directory.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

fn parse_demo_duration(text: &str) -> Result<Duration, String> {
    let d = crate::config::parse_duration(text)?;
    if d < MIN_DURATION {
        return Err(format!(
            "the demo needs at least {}s to show a full backup, incrementals and an alert",
            MIN_DURATION.as_secs()
        ));
    }
    Ok(d)
}

/// Why the demo could not complete.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot use the directory {path}: {why}")]
    Dir { path: PathBuf, why: String },
    #[error("the demo's configuration is invalid (a bug in the demo): {0}")]
    Config(String),
    #[error(transparent)]
    Key(#[from] crate::storage::crypt::CryptError),
    #[error("the embedded test server did not start: {0}")]
    TestServer(#[source] std::io::Error),
    #[error("the demo's SMTP server did not start: {0}")]
    Smtp(#[source] std::io::Error),
    #[error("{what} failed: {source}")]
    Mongo {
        what: String,
        #[source]
        source: mongodb::error::Error,
    },
    #[error("{0}")]
    Daemon(String),
    #[error(transparent)]
    Restore(#[from] crate::restore::RestoreError),
    #[error(
        "the restored data differs from the source at {at} (the differences are listed above)"
    )]
    Mismatch { at: String },
}

/// Prints one line of the demo's own story (the daemon's logs go to
/// stderr around it).
fn say(text: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "==> {text}");
    let _ = out.flush();
}

/// How the user ran this program (`target/release/mongo-backupd` under
/// `cargo run`), so the commands the demo suggests can be pasted as they are.
fn me() -> String {
    std::env::args()
        .next()
        .unwrap_or_else(|| "mongo-backupd".into())
}

/// The commands that read the encrypted backups with the identity: a
/// `verify --decrypt` of the newest full and a restore plan (`--dry-run`
/// writes nothing and needs no server, so it works after the demo).
fn decrypt_hint(config: &Path, key: &Path, newest_full: Option<&Path>) -> String {
    let (me, config, key) = (me(), config.display(), key.display());
    let verify = match newest_full {
        Some(full) => format!(
            "\n  To decrypt the newest full backup and check every document:\n    {me} verify --decrypt {key} {}",
            full.display()
        ),
        None => String::new(),
    };
    format!(
        "Only {key} can read the backups.{verify}\n  To plan a restore with it (--dry-run checks the chain and the key, writes nothing):\n    {me} restore --config {config} --job {} --at latest --identity {key} --to mongodb://127.0.0.1:27017 --dry-run",
        setup::INCREMENTAL_JOB
    )
}

/// Runs the demo; the exit code: 0 verified, 1 failed, 130 interrupted.
pub async fn run(args: DemoArgs) -> u8 {
    let dir = match setup::create_dir(args.dir.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            println!("Demo FAILED: {e}");
            return exit::FAILURE;
        }
    };
    // Held until the end: dropping it flushes the log file.
    let _log = match setup::init_logging(&dir) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("mongo-backupd: {e}; logging to stderr only.");
            None
        }
    };
    say(format!(
        "mongo-backupd demo: {} of the real daemon against an embedded MongoDB-compatible test server. Files go to {}.",
        crate::config::format_duration(args.duration),
        dir.display()
    ));
    let key = match keys::prepare(&dir, args.identity.as_deref()) {
        Ok(k) => k,
        Err(e) => {
            println!("Demo FAILED: {}", crate::error_chain(&e));
            return exit::FAILURE;
        }
    };
    if key.generated {
        say(format!(
            "Generated an age key pair: the backups are encrypted to its public key, and only its identity, {} (mode 0600), decrypts them. A real deployment keeps the identity off the database server.",
            key.file.display()
        ));
    } else {
        say(format!(
            "The backups are encrypted to the public key of {} ({}).",
            key.file.display(),
            key.recipients.join(", ")
        ));
    }
    let key_file = key.file.clone();
    let key_generated = key.generated;
    let mut session = Session::new(dir.clone(), key);
    let result = tokio::select! {
        r = session.main(args.duration) => Some(r),
        _ = crate::signal::interrupted() => None,
    };
    if result.is_none() {
        say("Interrupted: stopping the daemon (running backups get its shutdown grace) and the test server.");
    }
    // A second Ctrl-C while stopping means "now".
    let hurry = tokio::spawn(async {
        crate::signal::interrupted().await;
        eprintln!("mongo-backupd: interrupted again; exiting without waiting.");
        std::process::exit(i32::from(exit::INTERRUPTED));
    });
    let backups = session.close().await;
    let newest_full = session.newest_full();
    hurry.abort();
    let key_entry = if key_generated {
        format!(
            ", {} (the identity that decrypts the backups)",
            keys::KEY_FILE
        )
    } else {
        String::new()
    };
    let files = format!(
        "The demo's files are in {}: {} (the configuration){key_entry}, state/ (run history), backups/ ({backups}), {} (the daemon's log), {} (the alert mails).",
        dir.display(),
        setup::CONFIG_FILE,
        setup::LOG_FILE,
        setup::MAIL_FILE
    );
    match result {
        None => {
            say(files);
            exit::INTERRUPTED
        }
        Some(Ok(done)) => {
            say(files);
            let config = dir.join(setup::CONFIG_FILE);
            say(format!(
                "Look around: {1} list --config {0}; {1} history --config {0}; {1} prune --dry-run --config {0}",
                config.display(),
                me()
            ));
            say(decrypt_hint(&config, &key_file, newest_full.as_deref()));
            println!(
                "Demo complete: point-in-time restore to {} verified ({} documents in {} collections match the source at that instant).",
                done.at.format("%Y-%m-%dT%H:%M:%SZ"),
                done.documents,
                done.collections
            );
            0
        }
        Some(Err(e)) => {
            say(files);
            println!("Demo FAILED: {}", crate::error_chain(&e));
            exit::FAILURE
        }
    }
}
