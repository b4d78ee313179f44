//! The network side: the listener, one task per connection, shutdown and
//! restart, and the harness-only faults that act on connections.
//!
//! The server runs on its own runtime in its own thread, so a test may
//! block (waiting for a child process, say) without starving the server,
//! and it can be started from synchronous and asynchronous tests alike.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::commands::{self, Outcome};
use crate::cursor::CursorTable;
use crate::faults::Faults;
use crate::store::{Store, StoreConfig};
use crate::wire::{self, Request, WireError, FLAG_MORE_TO_COME};

/// Everything the connections share.
pub struct Shared {
    store: Mutex<Store>,
    pub cursors: Mutex<CursorTable>,
    pub faults: Mutex<Faults>,
    /// Carries the store's version; awaitData cursors wait for it to move.
    pub changes: watch::Sender<u64>,
    /// Bumped to make every open connection close.
    pub drop_generation: watch::Sender<u64>,
    /// True while the server should run; false stops listener and connections.
    pub running: watch::Sender<bool>,
    pub started: Instant,
    pub connections_total: AtomicU64,
    pub connections_current: AtomicU64,
    pub protocol_errors: AtomicU64,
    request_id: AtomicU64,
    /// `host:port` as clients must name this server (hello's `me`/`hosts`).
    pub advertised: Mutex<String>,
}

impl Shared {
    pub fn new(config: &StoreConfig) -> Shared {
        Shared {
            store: Mutex::new(Store::new(config)),
            cursors: Mutex::new(CursorTable::default()),
            faults: Mutex::new(Faults::default()),
            changes: watch::channel(0).0,
            drop_generation: watch::channel(0).0,
            running: watch::channel(true).0,
            started: Instant::now(),
            connections_total: AtomicU64::new(0),
            connections_current: AtomicU64::new(0),
            protocol_errors: AtomicU64::new(0),
            request_id: AtomicU64::new(1),
            advertised: Mutex::new(String::new()),
        }
    }

    /// Runs `f` on the store and wakes awaitData cursors if it changed
    /// anything. A poisoned lock only means another command panicked
    /// mid-way; the data is still the best we have, so keep serving.
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let mut guard = lock(&self.store);
        let before = guard.version;
        let out = f(&mut guard);
        let after = guard.version;
        drop(guard);
        if after != before {
            self.changes.send_replace(after);
        }
        out
    }

    pub fn next_request_id(&self) -> i32 {
        (self.request_id.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff) as i32
    }

    pub fn advertised(&self) -> String {
        lock(&self.advertised).clone()
    }
}

/// Resolves once the server is told to stop (the `Ref` that `wait_for`
/// returns is not `Send`, so it must not live across an await).
pub async fn stopped(running: &mut watch::Receiver<bool>) {
    let _ = running.wait_for(|r| !*r).await;
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Per-connection facts some commands report or filter on.
pub struct ConnInfo {
    pub id: u64,
    pub peer: SocketAddr,
    pub app_name: Mutex<Option<String>>,
}

/// Accepts connections until `running` turns false.
pub async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut running = shared.running.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("Accepting a connection failed: {e}.");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                if lock(&shared.faults).refuse_connections {
                    // Closing at once is what a client sees from a server
                    // that is overloaded or going away.
                    drop(stream);
                    continue;
                }
                let id = shared.connections_total.fetch_add(1, Ordering::Relaxed) + 1;
                let shared = shared.clone();
                tokio::spawn(async move {
                    shared.connections_current.fetch_add(1, Ordering::Relaxed);
                    serve_connection(stream, peer, id, &shared).await;
                    shared.connections_current.fetch_sub(1, Ordering::Relaxed);
                });
            }
            _ = stopped(&mut running) => break,
        }
    }
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, id: u64, shared: &Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut dropper = shared.drop_generation.subscribe();
    dropper.borrow_and_update();
    let mut running = shared.running.subscribe();
    let conn = ConnInfo {
        id,
        peer,
        app_name: Mutex::new(None),
    };
    loop {
        let message = tokio::select! {
            m = wire::read_message(&mut reader) => m,
            _ = dropper.changed() => return,
            _ = stopped(&mut running) => return,
        };
        // A stopped server answers nothing, even a request that was already
        // on its way (select! may pick the read over the stop when both
        // are ready).
        if !*running.borrow() {
            return;
        }
        let (header, request) = match message {
            Ok(m) => m,
            Err(WireError::Closed) => return,
            Err(e) => {
                shared.protocol_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("Closing connection {id} from {peer}: {e}.");
                return;
            }
        };
        let (db, body, legacy, more_to_come) = match request {
            Request::Msg { flags, mut body } => {
                let db = match body.remove("$db") {
                    Some(bson::Bson::String(db)) => Some(db),
                    _ => None,
                };
                (db, body, false, flags & FLAG_MORE_TO_COME != 0)
            }
            Request::Query {
                collection, query, ..
            } => {
                let db = collection.strip_suffix(".$cmd").map(str::to_string);
                // Legacy wrapping: {$query: {...}, $readPreference: ...}.
                let body = match query.get_document("$query") {
                    Ok(inner) => inner.clone(),
                    Err(_) => query,
                };
                (db, body, true, false)
            }
        };
        let outcome = tokio::select! {
            o = commands::execute(shared, &conn, db.as_deref(), body, legacy) => o,
            _ = stopped(&mut running) => return,
        };
        let reply = match outcome {
            Outcome::Reply(reply) => reply,
            Outcome::CloseConnection => return,
            Outcome::Shutdown => {
                shared.running.send_replace(false);
                return;
            }
        };
        if more_to_come {
            continue;
        }
        let request_id = shared.next_request_id();
        let bytes = if legacy {
            wire::encode_op_reply(request_id, header.request_id, reply.as_bytes())
        } else {
            wire::encode_op_msg(request_id, header.request_id, 0, reply.as_bytes())
        };
        if writer.write_all(&bytes).await.is_err() {
            return;
        }
    }
}
