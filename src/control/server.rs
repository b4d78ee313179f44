//! The daemon's end of the control socket: binds it safely (never stealing
//! it from a running daemon), serves each connection against a
//! [`DaemonHandle`], and removes the socket on shutdown.
//!
//! Every connection is bounded (request size, idle time, number of
//! connections) because anyone in the control group can connect, and a
//! stuck or hostile client must not wedge the daemon.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::protocol::encode_error;
use super::session::connection;
use crate::config::DaemonSettings;
use crate::daemon::api::{ApiError, DaemonHandle, ErrorCode};

/// Why the control socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot create the control socket's directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another mongo-backupd is running (it answers on {})", path.display())]
    AlreadyRunning { path: PathBuf },
    #[error("{} exists and is not a socket; remove it or set [daemon] control_socket to another path", path.display())]
    NotASocket { path: PathBuf },
    #[error("cannot tell whether another mongo-backupd answers on {}: {source}; remove the file if no daemon is running", path.display())]
    Probe {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot remove the stale control socket {}: {source}", path.display())]
    RemoveStale {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on the control socket {}: {source}", path.display())]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot restrict the control socket {} to mode 0660: {source}", path.display())]
    Permissions {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("[daemon] control_group \"{group}\" is not a group on this system (check `getent group {group}`)")]
    UnknownGroup { group: String },
    #[error("cannot look up the group \"{group}\" of [daemon] control_group: {source}")]
    GroupLookup { group: String, source: nix::Error },
    #[error("cannot give the control socket {} to group \"{group}\": {source}", path.display())]
    Chown {
        path: PathBuf,
        group: String,
        source: std::io::Error,
    },
}

/// The bounds on clients; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// A request must arrive within this long of the connection or of the
    /// previous answer.
    pub read_timeout: Duration,
    /// A client that does not read its answer is dropped after this long.
    pub write_timeout: Duration,
    pub max_connections: usize,
    /// `backup_now --wait` sends at most one event per interval.
    pub event_interval: Duration,
    /// On shutdown, how long a `--wait` client may still get its run's end.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_connections: 32,
            event_interval: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Serves the control socket of `settings` until `shutdown`, then removes
/// it. Fails only while setting the socket up.
pub async fn serve(
    handle: DaemonHandle,
    settings: &DaemonSettings,
    shutdown: CancellationToken,
) -> Result<(), ControlError> {
    let bound = bind(&settings.control_socket, settings.control_group.as_deref()).await?;
    bound.run(handle, shutdown, Limits::default()).await;
    Ok(())
}

/// A socket bound and restricted, not yet accepting.
pub(crate) struct Bound {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of our socket file: removed on shutdown only if the
    /// file there is still ours.
    identity: Option<(u64, u64)>,
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

pub(crate) async fn bind(path: &Path, group: Option<&str>) -> Result<Bound, ControlError> {
    // Looked up first, so a typo leaves no socket behind.
    let gid = group.map(lookup_group).transpose()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ControlError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    clear_stale(path).await?;
    let listener = UnixListener::bind(path).map_err(|source| ControlError::Bind {
        path: path.to_path_buf(),
        source,
    })?;
    let bound = Bound {
        listener,
        path: path.to_path_buf(),
        identity: identity(path),
    };
    if let Err(e) = restrict(path, group.zip(gid)) {
        bound.remove_socket();
        return Err(e);
    }
    Ok(bound)
}

fn lookup_group(group: &str) -> Result<u32, ControlError> {
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(ControlError::UnknownGroup {
            group: group.to_string(),
        }),
        Err(source) => Err(ControlError::GroupLookup {
            group: group.to_string(),
            source,
        }),
    }
}

/// Mode 0660 and, with a control group, that group: the daemon's user and
/// the group's members may connect, nobody else.
fn restrict(path: &Path, group: Option<(&str, u32)>) -> Result<(), ControlError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(|source| {
        ControlError::Permissions {
            path: path.to_path_buf(),
            source,
        }
    })?;
    if let Some((name, gid)) = group {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(|source| ControlError::Chown {
            path: path.to_path_buf(),
            group: name.to_string(),
            source,
        })?;
    }
    Ok(())
}

/// A socket file left by a daemon that died is removed; one a live daemon
/// answers on is not (two daemons would run the same jobs twice).
async fn clear_stale(path: &Path) -> Result<(), ControlError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ControlError::Probe {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(ControlError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    let probe = tokio::time::timeout(Duration::from_secs(2), UnixStream::connect(path)).await;
    match probe {
        Ok(Ok(_)) | Err(_) => Err(ControlError::AlreadyRunning {
            path: path.to_path_buf(),
        }),
        Ok(Err(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            ) =>
        {
            match std::fs::remove_file(path) {
                Ok(()) => {
                    tracing::info!(
                        "Removed the stale control socket {} (nothing answered on it).",
                        path.display()
                    );
                    Ok(())
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(ControlError::RemoveStale {
                    path: path.to_path_buf(),
                    source,
                }),
            }
        }
        Ok(Err(source)) => Err(ControlError::Probe {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl Bound {
    fn remove_socket(&self) {
        if self.identity.is_some() && identity(&self.path) == self.identity {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(
                    "Could not remove the control socket {}: {e}.",
                    self.path.display()
                );
            }
        }
    }

    /// Accepts connections until `shutdown`, removes the socket, and gives
    /// the answers in flight a moment to finish.
    pub(crate) async fn run(
        self,
        handle: DaemonHandle,
        shutdown: CancellationToken,
        limits: Limits,
    ) {
        tracing::info!("Listening for control requests on {}.", self.path.display());
        let permits = Arc::new(Semaphore::new(limits.max_connections));
        let mut tasks = JoinSet::new();
        loop {
            while tasks.try_join_next().is_some() {}
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = self.listener.accept() => a,
            };
            let stream = match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of file descriptors, usually: wait rather than spin.
                    tracing::warn!("Could not accept a control connection: {e}.");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                let busy = ApiError::new(
                    ErrorCode::Internal,
                    format!("the daemon is serving {} control connections already; try again in a moment", limits.max_connections),
                );
                // A fresh socket's buffer takes one short line without
                // blocking; if not, the client just sees the close.
                let _ = stream.try_write(format!("{}\n", encode_error(&busy)).as_bytes());
                tracing::debug!("Refused a control connection: too many open.");
                continue;
            };
            let handle = handle.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                let _permit = permit;
                connection(stream, handle, shutdown, limits).await;
            });
        }
        // New clients must see "not running" from here on.
        self.remove_socket();
        drop(self.listener);
        let drain = async { while tasks.join_next().await.is_some() {} };
        let within = limits.shutdown_grace + Duration::from_secs(1);
        if tokio::time::timeout(within, drain).await.is_err() {
            tasks.shutdown().await;
        }
        tracing::info!("Stopped serving control requests.");
    }
}
