//! Everything the demo starts, and stopping it again in the right order
//! whatever happened (success, failure, Ctrl-C): the writer first, then
//! the daemon (so its last alert mails still reach the SMTP server), the
//! SMTP server, and the test server last.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mongo_testserver::TestServer;
use mongodb::Client;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::dataset::{self, Rng};
use super::keys::DemoKey;
use super::mail;
use super::setup;
use super::smtp_sink::{Received, SmtpSink};
use super::writer::Writer;
use super::{say, DemoError};
use crate::config::Config;
use crate::daemon::api::DaemonHandle;
use crate::daemon::{Control, Daemon, Notifier};

/// The seed of the shop's data: the same shop every time.
const SEED: u64 = 0x5eed_5409;
/// How many body lines of each alert mail are printed.
const MAIL_LINES: usize = 8;

/// The daemon running in this process, and its control socket.
struct Running {
    control: mpsc::Sender<Control>,
    handle: DaemonHandle,
    task: JoinHandle<()>,
    stop_socket: CancellationToken,
    socket: JoinHandle<()>,
}

/// What a successful demo verified.
pub struct Verified {
    pub at: DateTime<Utc>,
    pub documents: usize,
    pub collections: usize,
}

pub struct Session {
    pub(super) dir: PathBuf,
    /// What the backups are encrypted to and restored with.
    pub(super) key: DemoKey,
    server: Option<TestServer>,
    pub(super) client: Option<Client>,
    pub(super) writer: Option<Writer>,
    sink: Option<SmtpSink>,
    printer: Option<JoinHandle<()>>,
    daemon: Option<Running>,
    pub(super) config: Option<Config>,
    /// When the daemon started: the schedules are laid out from it.
    pub(super) started: Option<DateTime<Utc>>,
    /// The application's writes: in all, and before the recorded instant.
    pub(super) writes: u64,
    pub(super) writes_at_record: u64,
}

impl Session {
    pub fn new(dir: PathBuf, key: DemoKey) -> Session {
        Session {
            dir,
            key,
            server: None,
            client: None,
            writer: None,
            sink: None,
            printer: None,
            daemon: None,
            config: None,
            started: None,
            writes: 0,
            writes_at_record: 0,
        }
    }

    /// The whole story: start everything, let the daemon work, restore,
    /// compare.
    pub async fn main(&mut self, duration: Duration) -> Result<Verified, DemoError> {
        self.start_source().await?;
        self.start_daemon().await?;
        self.first_full().await?;
        let end = self.started.unwrap_or_else(Utc::now)
            + chrono::Duration::from_std(duration).unwrap_or_default();
        let (at, snapshot) = self.record(end).await?;
        self.finish(end, at).await?;
        self.stop_daemon().await;
        self.restore_and_compare(at, snapshot).await
    }

    /// The test server, the shop's data, and the writer.
    async fn start_source(&mut self) -> Result<(), DemoError> {
        let server = tokio::task::spawn_blocking(|| TestServer::builder().start())
            .await
            .map_err(|e| DemoError::TestServer(std::io::Error::other(e)))?
            .map_err(DemoError::TestServer)?;
        let uri = server.uri();
        self.server = Some(server);
        say(format!(
            "Started the embedded MongoDB-compatible test server (a single-node replica set) at {uri}."
        ));
        let client = crate::source::connect(&uri, Duration::from_secs(10))
            .await
            .map_err(|e| DemoError::Daemon(format!("cannot connect to the test server: {e}")))?;
        let mut rng = Rng::new(SEED);
        let orders = dataset::seed(&client, &mut rng)
            .await
            .map_err(|source| DemoError::Mongo {
                what: "loading the sample data".into(),
                source,
            })?;
        say(format!(
            "Loaded the sample database \"{}\": {} customers, {} products, {} orders (nested documents, arrays, dates, decimals) and 4 secondary indexes.",
            dataset::DB,
            dataset::CUSTOMERS,
            dataset::PRODUCTS,
            dataset::ORDERS
        ));
        self.writer = Some(Writer::start(client.clone(), orders, rng));
        self.client = Some(client);
        say("An application keeps writing to it from now on: new orders, status changes, loyalty points, prices, cancellations (about 3 writes a second).");
        Ok(())
    }

    /// The SMTP server, the configuration, the daemon and its control socket.
    async fn start_daemon(&mut self) -> Result<(), DemoError> {
        let uri = self
            .server
            .as_ref()
            .map(TestServer::uri)
            .unwrap_or_default();
        let (tx, rx) = mpsc::unbounded_channel();
        let mailbox = self.dir.join(setup::MAIL_FILE);
        let sink = SmtpSink::start(mailbox.clone(), tx)
            .await
            .map_err(DemoError::Smtp)?;
        let port = sink.addr().port();
        self.sink = Some(sink);
        self.printer = Some(tokio::spawn(print_mails(rx, mailbox)));
        let started = Utc::now();
        let text = setup::config_text(
            &self.dir,
            &uri,
            port,
            started,
            &self.key.recipients,
            &self.key.file,
        );
        let config = setup::write_config(&self.dir, &text)?;
        say(format!(
            "Wrote {}: job \"{}\" (a full backup every minute), \"{}\" (the oplog every 10 s), both encrypted, \"{}\" (a source nobody answers for: it fails every 30 s), alerts by mail to the demo's SMTP server on 127.0.0.1:{port}. The shop's retention is shortened to {} s, so old backups go while you watch.",
            self.dir.join(setup::CONFIG_FILE).display(),
            setup::FULL_JOB,
            setup::INCREMENTAL_JOB,
            setup::FAILING_JOB,
            setup::RETENTION.as_secs()
        ));
        let daemon = Daemon::new(config.clone(), Notifier::from_env());
        let handle = daemon.handle();
        let (control, control_rx) = mpsc::channel(8);
        let task = tokio::spawn(daemon.run(control_rx));
        let stop_socket = CancellationToken::new();
        let settings = config.daemon.clone();
        let socket = tokio::spawn({
            let (handle, stop) = (handle.clone(), stop_socket.clone());
            async move {
                if let Err(e) = crate::control::server::serve(handle, &settings, stop).await {
                    tracing::warn!("The demo's daemon has no control socket ({e}); `mongo-backupd status` cannot reach it, the demo goes on.");
                }
            }
        });
        self.daemon = Some(Running {
            control,
            handle,
            task,
            stop_socket,
            socket,
        });
        self.config = Some(config);
        self.started = Some(started);
        say(format!(
            "The daemon is running. In another terminal: {} status --config {}",
            super::me(),
            self.dir.join(setup::CONFIG_FILE).display()
        ));
        Ok(())
    }

    pub(super) fn source_uri(&self) -> String {
        self.server
            .as_ref()
            .map(TestServer::uri)
            .unwrap_or_default()
    }

    pub(super) fn handle(&self) -> Option<DaemonHandle> {
        self.daemon.as_ref().map(|d| d.handle.clone())
    }

    pub(super) fn storage_root(&self) -> PathBuf {
        self.config
            .as_ref()
            .and_then(|c| {
                c.storage
                    .values()
                    .find_map(|s| s.local_path().map(|p| p.to_path_buf()))
            })
            .unwrap_or_else(|| self.dir.join("backups"))
    }

    /// The newest complete full backup's directory, for the commands the
    /// demo suggests at the end.
    pub fn newest_full(&self) -> Option<PathBuf> {
        crate::catalog::list_backups(&self.storage_root(), Some(setup::FULL_JOB))
            .ok()?
            .into_iter()
            .filter(|l| l.is_complete())
            .max_by(|a, b| a.id.cmp(&b.id))
            .map(|l| l.path)
    }

    /// Stops the writer and then the daemon, gracefully.
    async fn stop_daemon(&mut self) {
        if let Some(w) = self.writer.take() {
            self.writes = w.writes();
            w.stop().await;
            say(format!(
                "Stopped the application's writes ({} in all).",
                self.writes
            ));
        }
        if let Some(d) = self.daemon.take() {
            say("Stopping the daemon as systemctl stop would (running backups may finish).");
            let _ = d.control.send(Control::Shutdown).await;
            let _ = d.task.await;
            d.stop_socket.cancel();
            let _ = d.socket.await;
        }
    }

    /// Stops whatever still runs; returns what is in storage, as words.
    pub async fn close(&mut self) -> String {
        self.stop_daemon().await;
        if let Some(sink) = self.sink.take() {
            sink.stop().await;
        }
        if let Some(p) = self.printer.take() {
            // The last mails are printed before the closing lines.
            let _ = tokio::time::timeout(Duration::from_secs(2), p).await;
        }
        if let Some(c) = self.client.take() {
            crate::source::close(c).await;
        }
        if let Some(server) = self.server.take() {
            // Stopping joins the server's thread: not on a runtime worker.
            let _ = tokio::task::spawn_blocking(move || drop(server)).await;
        }
        stored(&self.storage_root())
    }
}

/// "3 full and 11 incremental backups, all encrypted", from the storage
/// directory (the manifests say whether they are).
fn stored(root: &Path) -> String {
    let Ok(listings) = crate::catalog::list_backups(root, None) else {
        return "no backups".into();
    };
    let count = |kind: crate::catalog::BackupKind| {
        listings
            .iter()
            .filter(|l| l.is_complete())
            .filter(|l| l.manifest.as_ref().is_some_and(|m| m.kind == kind))
            .count()
    };
    let complete: Vec<_> = listings
        .iter()
        .filter(|l| l.is_complete())
        .filter_map(|l| l.manifest.as_ref())
        .collect();
    let encrypted = complete.iter().filter(|m| m.encryption.is_some()).count();
    let how = match encrypted {
        0 => "",
        n if n == complete.len() => ", all encrypted",
        _ => ", some encrypted",
    };
    format!(
        "{} full and {} incremental backups{how}",
        count(crate::catalog::BackupKind::Full),
        count(crate::catalog::BackupKind::Incremental)
    )
}

/// Prints each mail the SMTP server receives, as it arrives.
async fn print_mails(mut rx: mpsc::UnboundedReceiver<Received>, mailbox: PathBuf) {
    while let Some(m) = rx.recv().await {
        let shown = mail::show(&m.data);
        let mut text = format!(
            "Mail #{} arrived for {} (appended to {}):\n      Subject: {}",
            m.number,
            m.to.join(", "),
            mailbox.display(),
            shown.subject
        );
        for line in shown
            .body
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(MAIL_LINES)
        {
            text.push_str("\n      | ");
            text.push_str(line);
        }
        say(text);
    }
}
