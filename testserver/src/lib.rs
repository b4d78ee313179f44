//! An in-memory, MongoDB-compatible server for mongo-backupd's tests.
//!
//! It speaks the real wire protocol to the real drivers and presents itself
//! as a MongoDB 7.0 single-node replica set primary with an oplog, so the
//! backup, incremental and restore code paths run against it exactly as they
//! would against `mongod`. [`Builder::standalone`] makes it a standalone
//! `mongod` instead (no replica set, no oplog, no cluster time), for the
//! code paths that must cope with one. It is a test tool: data lives in
//! memory and there is no authentication.
//!
//! ```no_run
//! let server = mongo_testserver::TestServer::start().unwrap();
//! let uri = server.uri(); // mongodb://127.0.0.1:PORT/?replicaSet=rs0
//! let standalone = mongo_testserver::TestServer::builder().standalone().start().unwrap();
//! let uri = standalone.uri(); // mongodb://127.0.0.1:PORT/?directConnection=true
//! # drop(uri);
//! ```

pub mod aggregate;
mod commands;
pub mod compare;
pub mod cursor;
pub mod error;
pub mod faults;
pub mod harness;
pub mod matcher;
pub mod oplog;
pub mod query;
mod server;
pub mod store;
pub mod update;
pub mod wire;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

pub use faults::{FailPoint, Mode};
use server::{lock, Shared};
pub use store::StoreConfig;

/// Settings for a server; `TestServer::start()` uses the defaults.
#[derive(Debug, Clone)]
pub struct Builder {
    bind: String,
    port: u16,
    advertise_host: Option<String>,
    store: StoreConfig,
    noop_interval: Option<Duration>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            bind: "127.0.0.1".to_string(),
            port: 0,
            advertise_host: None,
            store: StoreConfig::default(),
            noop_interval: Some(Duration::from_secs(10)),
        }
    }
}

impl Builder {
    /// The address to listen on (default loopback only).
    pub fn bind(mut self, host: impl Into<String>) -> Self {
        self.bind = host.into();
        self
    }

    /// The port; 0 (the default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The host name clients must use (in `hello`'s `hosts` and `me`);
    /// defaults to the bind address, or 127.0.0.1 when binding to all.
    pub fn advertise_host(mut self, host: impl Into<String>) -> Self {
        self.advertise_host = Some(host.into());
        self
    }

    /// Capacity of `local.oplog.rs` in bytes (default 256 MiB). Small values
    /// make the oplog roll over, for gap-detection tests.
    pub fn oplog_max_bytes(mut self, bytes: u64) -> Self {
        self.store.oplog_max_bytes = bytes;
        self
    }

    /// How often an idle primary writes a "periodic noop" oplog entry
    /// (MongoDB: every 10 s); None turns it off. A standalone never does.
    pub fn noop_interval(mut self, interval: Option<Duration>) -> Self {
        self.noop_interval = interval;
        self
    }

    /// Runs as a standalone `mongod` (as started without `--replSet`)
    /// instead of a replica set primary: `hello` names no replica set,
    /// replies carry no `$clusterTime`/`operationTime`, there is no
    /// `local.oplog.rs`, `replSetGetStatus` fails with NoReplicationEnabled
    /// (76), and [`TestServer::uri`] asks for a direct connection.
    pub fn standalone(mut self) -> Self {
        self.store.standalone = true;
        self
    }

    pub fn start(self) -> std::io::Result<TestServer> {
        TestServer::start_with(self)
    }
}

/// A running server. Dropping it stops the server and frees its port.
pub struct TestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    runtime: tokio::runtime::Handle,
    stop_runtime: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with default settings on a free loopback port.
    pub fn start() -> std::io::Result<TestServer> {
        Builder::default().start()
    }

    pub fn builder() -> Builder {
        Builder::default()
    }

    fn start_with(b: Builder) -> std::io::Result<TestServer> {
        let listener = StdListener::bind((b.bind.as_str(), b.port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let host = b.advertise_host.clone().unwrap_or_else(|| {
            if addr.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                addr.ip().to_string()
            }
        });
        let shared = Arc::new(Shared::new(&b.store));
        *lock(&shared.advertised) = format!("{host}:{}", addr.port());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread_shared = shared.clone();
        // A standalone has no oplog to keep advancing.
        let noop = b.noop_interval.filter(|_| !b.store.standalone);
        let thread = std::thread::Builder::new()
            .name(format!("mongo-testserver-{}", addr.port()))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let started = runtime.block_on(async {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    tokio::spawn(server::accept_loop(listener, thread_shared.clone()));
                    if let Some(every) = noop {
                        tokio::spawn(periodic_noop(thread_shared.clone(), every));
                    }
                    Ok::<_, std::io::Error>(tokio::runtime::Handle::current())
                });
                let ok = started.is_ok();
                let _ = ready_tx.send(started);
                if ok {
                    let _ = runtime.block_on(stop_rx);
                }
                runtime.shutdown_timeout(Duration::from_secs(2));
            })?;
        let runtime = ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("the server thread exited during start-up"))??;
        tracing::info!("mongo-testserver listening on {addr}.");
        Ok(TestServer {
            shared,
            addr,
            runtime,
            stop_runtime: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port` as the server advertises itself.
    pub fn host_port(&self) -> String {
        self.shared.advertised()
    }

    /// A connection string for any MongoDB driver: naming the replica set,
    /// or for a standalone a direct connection (there is no set to name).
    pub fn uri(&self) -> String {
        if self.is_standalone() {
            format!("mongodb://{}/?directConnection=true", self.host_port())
        } else {
            format!(
                "mongodb://{}/?replicaSet={}",
                self.host_port(),
                commands::SET_NAME
            )
        }
    }

    /// Whether it was started with [`Builder::standalone`].
    pub fn is_standalone(&self) -> bool {
        self.shared.with_store(|s| s.is_standalone())
    }

    // ---- faults (see `faults` for their semantics) ----

    /// Makes the next `times` commands named `command` fail with `code`.
    pub fn fail_command(&self, command: &str, times: u64, code: i32) {
        let mut p = FailPoint::new(Mode::Times(times), &[command]);
        p.error_code = Some(code);
        self.add_fault(p);
    }

    /// Closes the connection, without a reply, on the next `times` commands
    /// named `command`.
    pub fn close_connection_on(&self, command: &str, times: u64) {
        let mut p = FailPoint::new(Mode::Times(times), &[command]);
        p.close_connection = true;
        self.add_fault(p);
    }

    /// Delays the replies to the next `times` commands named `command`.
    pub fn delay_command(&self, command: &str, times: u64, delay: Duration) {
        let mut p = FailPoint::new(Mode::Times(times), &[command]);
        p.block = Some(delay);
        self.add_fault(p);
    }

    /// Stops the whole server when a command named `command` arrives, after
    /// letting `skip` of them through: a server dying mid-operation.
    pub fn stop_on(&self, command: &str, skip: u64) {
        let mut p = FailPoint::new(Mode::Skip(skip), &[command]);
        p.shutdown_server = true;
        self.add_fault(p);
    }

    pub fn add_fault(&self, point: FailPoint) {
        lock(&self.shared.faults).add(point);
    }

    /// Removes every fault and accepts connections again.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Closes every open connection now (clients see a network error).
    pub fn drop_connections(&self) {
        self.shared.drop_generation.send_modify(|g| *g += 1);
    }

    /// While true, new connections are accepted and closed at once.
    pub fn refuse_connections(&self, refuse: bool) {
        lock(&self.shared.faults).refuse_connections = refuse;
    }

    /// Stops listening and closes every connection; the data is kept, so
    /// [`TestServer::restart`] brings the same server back on the same port.
    pub fn stop(&self) {
        self.shared.running.send_replace(false);
    }

    pub fn is_running(&self) -> bool {
        *self.shared.running.borrow()
    }

    /// Listens again on the same port after [`TestServer::stop`] (or a
    /// `stop_on` fault), with the data it had.
    pub fn restart(&self) -> std::io::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        // The old listener may still be closing; retry briefly.
        let mut last_err = None;
        for _ in 0..50 {
            match StdListener::bind(self.addr) {
                Ok(l) => {
                    l.set_nonblocking(true)?;
                    self.shared.running.send_replace(true);
                    let shared = self.shared.clone();
                    let _guard = self.runtime.enter();
                    let listener = tokio::net::TcpListener::from_std(l)?;
                    self.runtime.spawn(server::accept_loop(listener, shared));
                    return Ok(());
                }
                Err(e) => {
                    last_err = Some(e);
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        Err(last_err.unwrap_or_else(|| std::io::Error::other("could not rebind")))
    }

    // ---- inspection ----

    /// Connections closed because they sent something malformed.
    pub fn protocol_errors(&self) -> u64 {
        self.shared.protocol_errors.load(Ordering::Relaxed)
    }

    pub fn open_connections(&self) -> u64 {
        self.shared.connections_current.load(Ordering::Relaxed)
    }

    pub fn open_cursors(&self) -> usize {
        lock(&self.shared.cursors).len()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.running.send_replace(false);
        if let Some(tx) = self.stop_runtime.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes a no-op oplog entry whenever the oplog has been idle for
/// `every`, as a replica set primary does, so readers of the oplog see time
/// advance.
async fn periodic_noop(shared: Arc<Shared>, every: Duration) {
    let mut running = shared.running.subscribe();
    let mut last_seen = shared.with_store(|s| s.version);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = server::stopped(&mut running) => {
                // Stopped: wait to be restarted (or for the runtime to end).
                let restarted = running.wait_for(|r| *r).await.is_ok();
                if !restarted {
                    return;
                }
                continue;
            }
        }
        let version = shared.with_store(|s| {
            if s.version == last_seen {
                s.noop("periodic noop");
            }
            s.version
        });
        last_seen = version;
    }
}
