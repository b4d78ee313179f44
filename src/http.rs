//! The HTTP API and the Prometheus metrics of the running daemon.
//!
//! Everything it answers comes from the scheduler loop through a
//! [`DaemonHandle`], exactly as the control socket does, so both front ends
//! show the same state. This module owns the listener (plain HTTP or
//! HTTPS with rustls on the `ring` provider) and the connections; the
//! submodules hold the pieces that can be tested on their own: bearer
//! tokens ([`auth`]), the per-token limit on mutations ([`rate`]), the
//! metrics text ([`metrics`]) and the endpoints ([`routes`]).
//!
//! Restores are deliberately not offered over HTTP: they overwrite
//! databases and belong on the host, with `mongo-backupd restore`.

pub mod auth;
mod errors;
#[cfg(test)]
mod fixtures;
pub mod metrics;
pub mod rate;
pub mod routes;
#[cfg(test)]
mod tests;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::HttpSettings;
use crate::daemon::api::DaemonHandle;

pub use errors::status_of;

/// Connections served at once; further clients wait in the listen backlog
/// instead of exhausting file descriptors.
const MAX_CONNECTIONS: usize = 256;
/// A client gets this long to finish the TLS handshake and to send each
/// request's headers, so idle or stalled sockets cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long requests in progress get to finish once the daemon stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the HTTP API cannot start. Each message says what is wrong and
/// what to change.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot bind the HTTP API to {addr}: {source}; {hint}")]
    Bind {
        addr: SocketAddr,
        hint: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the HTTP token file {}: {source}; create it with one `NAME TOKEN` line per client and make it readable by the daemon's user", path.display())]
    TokenFileRead {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the HTTP token file {} holds no tokens; add a line `NAME TOKEN` with a token of at least {} characters (`openssl rand -hex 32` makes one)", path.display(), auth::MIN_TOKEN_LEN)]
    TokenFileEmpty { path: PathBuf },
    #[error("the HTTP token file {} line {line}: {problem}", path.display())]
    TokenFileLine {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error(
        "[http] tls_cert and tls_key go together: set both for HTTPS or neither for plain HTTP"
    )]
    TlsIncomplete,
    #[error("cannot use the TLS certificate file {}: {reason}; it must hold the PEM certificate chain, server certificate first", path.display())]
    TlsCert { path: PathBuf, reason: String },
    #[error("cannot use the TLS key file {}: {reason}; it must hold the server's PEM private key (PKCS#8, PKCS#1 or SEC1)", path.display())]
    TlsKey { path: PathBuf, reason: String },
    #[error("the TLS certificate {} and key {} cannot be used together: {reason}; check that the key belongs to the certificate", cert.display(), key.display())]
    TlsPair {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

impl HttpError {
    fn bind(addr: SocketAddr, source: io::Error) -> HttpError {
        let hint = match source.kind() {
            io::ErrorKind::AddrInUse => {
                "another process listens there; stop it or set [http] listen to a free port"
            }
            io::ErrorKind::PermissionDenied => {
                "ports below 1024 need privileges the daemon does not have; choose a port above 1024"
            }
            io::ErrorKind::AddrNotAvailable => {
                "no network interface of this host has that address; use one it has, or 127.0.0.1"
            }
            _ => "check [http] listen",
        };
        HttpError::Bind { addr, hint, source }
    }
}

/// Starts the HTTP API on `settings.listen` and serves it until
/// `shutdown` is cancelled. Fails before serving when the port, the token
/// file or the TLS files cannot be used.
pub async fn serve(
    handle: DaemonHandle,
    settings: HttpSettings,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    Server::bind(handle, settings).await?.run(shutdown).await;
    Ok(())
}

/// A bound, ready HTTP API: [`Server::bind`] (or
/// [`Server::with_listener`]) checks everything that can fail, so the
/// caller reports those errors before [`Server::run`] serves.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
}

impl Server {
    /// Reads the tokens and TLS files, then binds `settings.listen`.
    pub async fn bind(handle: DaemonHandle, settings: HttpSettings) -> Result<Server, HttpError> {
        // The files are checked first: a broken token file is the likelier
        // mistake and should not hide behind a bind error.
        let (router, tls) = prepare(handle, &settings)?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| HttpError::bind(settings.listen, e))?;
        Server::assemble(listener, router, tls, settings.listen)
    }

    /// Serves on a listener bound by the caller (tests bind port 0;
    /// `settings.listen` is then not used).
    pub fn with_listener(
        handle: DaemonHandle,
        settings: HttpSettings,
        listener: TcpListener,
    ) -> Result<Server, HttpError> {
        let (router, tls) = prepare(handle, &settings)?;
        Server::assemble(listener, router, tls, settings.listen)
    }

    fn assemble(
        listener: TcpListener,
        router: Router,
        tls: Option<TlsAcceptor>,
        wanted: SocketAddr,
    ) -> Result<Server, HttpError> {
        let addr = listener
            .local_addr()
            .map_err(|e| HttpError::bind(wanted, e))?;
        Ok(Server {
            listener,
            addr,
            tls,
            router,
        })
    }

    /// The address actually listened on (with the real port when bound to
    /// port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https` when TLS is configured, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Serves until `shutdown` is cancelled, then gives requests in
    /// progress a few seconds to finish.
    pub async fn run(self, shutdown: CancellationToken) {
        let Server {
            listener,
            addr,
            tls,
            router,
        } = self;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!("HTTP API listening on {scheme}://{addr}.");
        if tls.is_none() && !addr.ip().is_loopback() {
            tracing::warn!(
                "The HTTP API listens on {addr}, which is not a loopback address, without TLS: \
                 bearer tokens will cross the network in clear text. Set [http] tls_cert and \
                 tls_key, or listen on 127.0.0.1 behind a TLS-terminating proxy."
            );
        }

        let graceful = GracefulShutdown::new();
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = Arc::clone(&slots).acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Mostly EMFILE or a connection reset before accept:
                        // transient, so pause instead of spinning or exiting.
                        tracing::warn!("The HTTP API could not accept a connection: {e}. Retrying in 100 ms.");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let watcher = graceful.watcher();
            let router = router.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                connection(stream, peer, tls, router, watcher).await;
                drop(permit);
            });
        }
        // Free the port at once so a restarted daemon can bind it.
        drop(listener);
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
                tracing::warn!(
                    "HTTP requests still in progress after {} s were cut off at shutdown.",
                    SHUTDOWN_GRACE.as_secs()
                );
            }
        }
        tracing::info!("The HTTP API on {scheme}://{addr} has stopped.");
    }
}

/// The router and TLS acceptor for `settings`, or why they cannot be made.
fn prepare(
    handle: DaemonHandle,
    settings: &HttpSettings,
) -> Result<(Router, Option<TlsAcceptor>), HttpError> {
    let tokens = auth::TokenStore::load(&settings.token_file)?;
    let tls = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        (None, None) => None,
        _ => return Err(HttpError::TlsIncomplete),
    };
    let router = routes::router(routes::AppState::new(handle, settings, tokens));
    Ok((router, tls))
}

/// The client's address, for the audit log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub SocketAddr);

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
    watcher: Watcher,
) {
    // Small request/response pairs: do not wait to coalesce packets.
    let _ = stream.set_nodelay(true);
    match tls {
        None => http1(stream, peer, router, watcher).await,
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls_stream)) => http1(tls_stream, peer, router, watcher).await,
                // Scanners and clients that distrust the certificate end
                // here; worth a note, not a warning.
                Ok(Err(e)) => tracing::debug!("TLS handshake with {peer} failed: {e}."),
                Err(_) => tracing::debug!("TLS handshake with {peer} timed out."),
            }
        }
    }
}

async fn http1<S>(io: S, peer: SocketAddr, router: Router, watcher: Watcher)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(Peer(peer));
        router.clone().oneshot(request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!("HTTP connection from {peer} ended with an error: {e}.");
    }
}
