//! One control connection: reads requests within the limits, answers
//! each through the [`DaemonHandle`] (streaming the run of a
//! `backup_now` with `wait`), and audit-logs what changes the daemon.
//!
//! Apart from the listener in `server` because a connection's life (who
//! the peer is, timeouts, streaming) is its own concern.

use serde::Serialize;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::protocol::{
    encode_error, encode_event, encode_result, parse_request, read_line, ClientRequest, Line,
    MAX_REQUEST_LINE,
};
use super::server::Limits;
use crate::daemon::api::{ApiError, BackupNow, Caller, DaemonHandle, ErrorCode, RunInfo};

/// Who is on the other end: the peer's uid, named lazily (a user lookup
/// may ask LDAP; `status` polling should not).
struct Peer {
    uid: Option<u32>,
    caller: Option<Caller>,
}

impl Peer {
    async fn caller(&mut self) -> Caller {
        if let Some(c) = &self.caller {
            return c.clone();
        }
        let name = match self.uid {
            Some(uid) => tokio::task::spawn_blocking(move || caller_name(uid))
                .await
                .unwrap_or_else(|_| format!("uid {uid}")),
            None => "an unidentified local process".to_string(),
        };
        let caller = Caller {
            name,
            via: "socket".into(),
        };
        self.caller = Some(caller.clone());
        caller
    }
}

/// `alice (uid 1000)`, or `uid 1000` for a uid without a user.
pub(crate) fn caller_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => format!("{} (uid {uid})", user.name),
        _ => format!("uid {uid}"),
    }
}

async fn send(write: &mut OwnedWriteHalf, line: &str, limits: Limits) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    match tokio::time::timeout(limits.write_timeout, write.write_all(&bytes)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client did not read its answer",
        )),
    }
}

pub(super) async fn connection(
    stream: UnixStream,
    handle: DaemonHandle,
    shutdown: CancellationToken,
    limits: Limits,
) {
    let mut peer = Peer {
        uid: stream.peer_cred().ok().map(|c| c.uid()),
        caller: None,
    };
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let read = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = tokio::time::timeout(limits.read_timeout, read_line(&mut reader, MAX_REQUEST_LINE)) => r,
        };
        let line = match read {
            Ok(Ok(Line::Text(line))) => line,
            Ok(Ok(Line::Eof)) => return,
            Ok(Err(e)) => {
                tracing::debug!("A control connection failed: {e}.");
                return;
            }
            Ok(Ok(Line::TooLong)) => {
                let e = ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("the request line is longer than {MAX_REQUEST_LINE} bytes; closing the connection"),
                );
                let _ = send(&mut write, &encode_error(&e), limits).await;
                return;
            }
            Err(_) => {
                let e = ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "no complete request within {} s; closing the connection",
                        limits.read_timeout.as_secs_f64()
                    ),
                );
                let _ = send(&mut write, &encode_error(&e), limits).await;
                return;
            }
        };
        let answered = match parse_request(&line) {
            Ok(request) => answer(request, &mut peer, &handle, &mut write, &shutdown, limits).await,
            Err(e) => send(&mut write, &encode_error(&e), limits).await,
        };
        if answered.is_err() {
            return;
        }
    }
}

fn reply<T: Serialize>(result: &Result<T, ApiError>) -> String {
    match result {
        Ok(value) => encode_result(value),
        Err(e) => encode_error(e),
    }
}

/// `Queued` as `queued`, for log lines.
fn lower(v: impl std::fmt::Debug) -> String {
    format!("{v:?}").to_lowercase()
}

/// One audit line per mutating request, with what came of it.
fn audit<T>(caller: &Caller, what: &str, result: &Result<T, ApiError>, ok: impl Fn(&T) -> String) {
    match result {
        Ok(v) => tracing::info!("{} asked for {what}: {}.", caller.describe(), ok(v)),
        Err(e) => tracing::info!(
            "{} asked for {what}: refused ({}: {}).",
            caller.describe(),
            e.code.as_str(),
            e.message
        ),
    }
}

async fn answer(
    request: ClientRequest,
    peer: &mut Peer,
    handle: &DaemonHandle,
    write: &mut OwnedWriteHalf,
    shutdown: &CancellationToken,
    limits: Limits,
) -> std::io::Result<()> {
    let what = request.describe();
    let line = match request {
        ClientRequest::Status => reply(&handle.status().await),
        ClientRequest::Run { id } => reply(&handle.run(id).await),
        ClientRequest::Backups { job } => reply(&handle.backups(job.as_deref()).await),
        ClientRequest::History { job, limit } => {
            reply(&handle.history(job.as_deref(), limit).await)
        }
        ClientRequest::PrunePlan { job } => reply(&handle.prune_plan(job.as_deref()).await),
        ClientRequest::Pause { job } => {
            let caller = peer.caller().await;
            let result = handle.pause(&job, caller.clone()).await;
            audit(&caller, &what, &result, |j| {
                format!("job {:?} is now {}", j.name, lower(j.activity))
            });
            reply(&result)
        }
        ClientRequest::Resume { job } => {
            let caller = peer.caller().await;
            let result = handle.resume(&job, caller.clone()).await;
            audit(&caller, &what, &result, |j| {
                format!("job {:?} is now {}", j.name, lower(j.activity))
            });
            reply(&result)
        }
        ClientRequest::BackupNow {
            job,
            manual,
            note,
            wait,
        } => {
            let caller = peer.caller().await;
            let options = BackupNow { manual, note };
            let result = handle.backup_now(&job, options, caller.clone()).await;
            audit(&caller, &what, &result, |r| {
                format!("run {} is {}", r.id, lower(r.state))
            });
            match result {
                Ok(run) if wait => return stream_run(run, handle, write, shutdown, limits).await,
                other => reply(&other),
            }
        }
    };
    send(write, &line, limits).await
}

/// `backup_now` with `wait`: the run as it stands, its changes (at most
/// one per `event_interval`), then the finished run as the answer.
async fn stream_run(
    first: RunInfo,
    handle: &DaemonHandle,
    write: &mut OwnedWriteHalf,
    shutdown: &CancellationToken,
    limits: Limits,
) -> std::io::Result<()> {
    send(write, &encode_event(&first), limits).await?;
    if first.state.is_finished() {
        return send(write, &encode_result(&first), limits).await;
    }
    let mut updates: watch::Receiver<RunInfo> = match handle.watch_run(first.id).await {
        Ok(rx) => rx,
        Err(e) => return send(write, &encode_error(&e), limits).await,
    };
    // On shutdown the daemon ends its runs; a waiting client gets the end
    // if it comes within the grace period, an explanation otherwise.
    let stop = async {
        shutdown.cancelled().await;
        tokio::time::sleep(limits.shutdown_grace).await;
    };
    tokio::pin!(stop);
    let mut last = first;
    loop {
        let current = updates.borrow_and_update().clone();
        if current.state.is_finished() {
            return send(write, &encode_result(&current), limits).await;
        }
        if current != last {
            send(write, &encode_event(&current), limits).await?;
            last = current;
            // Changes meanwhile accumulate in the watch: the next look
            // sends the newest state only.
            tokio::time::sleep(limits.event_interval).await;
            continue;
        }
        tokio::select! {
            changed = updates.changed() => if changed.is_err() {
                let end = updates.borrow().clone();
                let line = if end.state.is_finished() {
                    encode_result(&end)
                } else {
                    encode_error(&ApiError::new(
                        ErrorCode::Internal,
                        format!("the daemon stopped reporting on run {} before it finished; see `mongo-backupd history`", end.id),
                    ))
                };
                return send(write, &line, limits).await;
            },
            _ = &mut stop => {
                let e = ApiError::new(
                    ErrorCode::ShuttingDown,
                    format!("the daemon is stopping and run {} had not finished; see `mongo-backupd history` after it restarts", last.id),
                );
                return send(write, &encode_error(&e), limits).await;
            }
        }
    }
}
