//! The command line's end of the control socket: one request, its answer
//! (or the events of a `backup-now --wait`), and errors that tell the
//! operator what to do (start the daemon, use the right group) rather
//! than an errno.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::protocol::{parse_answer, read_line, ClientRequest, Line, ServerLine, MAX_ANSWER_LINE};
use crate::daemon::api::{ApiError, RunInfo};

/// Connecting to a local socket is immediate unless the daemon is wedged.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);
/// The daemon bounds its own answers to 30 s; this is that plus slack.
const ANSWER_WITHIN: Duration = Duration::from_secs(45);

/// Why a request got no answer from the daemon, or what the daemon refused.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the daemon is not running (no control socket at {}); start it with `systemctl start mongo-backupd`", socket.display())]
    NotRunning { socket: PathBuf },
    /// The socket file exists but nothing listens: a daemon that died.
    #[error("the daemon is not running (nothing answers on the control socket {}); start it with `systemctl start mongo-backupd`", socket.display())]
    Refused { socket: PathBuf },
    #[error("permission denied on {}: run as root, as the mongo-backupd user, or as a member of its control_group", socket.display())]
    PermissionDenied { socket: PathBuf },
    #[error("cannot connect to the control socket {}: {source}", socket.display())]
    Connect {
        socket: PathBuf,
        source: std::io::Error,
    },
    #[error("the connection to the daemon failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the daemon did not answer within {} s; see its log", .0.as_secs())]
    Timeout(Duration),
    #[error("the daemon closed the connection before answering (is it stopping?)")]
    Closed,
    #[error("{0}")]
    Protocol(String),
    /// The daemon answered and refused: its code and message.
    #[error("{0}")]
    Api(ApiError),
}

impl ClientError {
    /// Both ways of "no daemon there".
    pub fn is_not_running(&self) -> bool {
        matches!(
            self,
            ClientError::NotRunning { .. } | ClientError::Refused { .. }
        )
    }
}

/// What a failed `connect` means to an operator.
pub fn classify_connect_error(socket: &Path, err: std::io::Error) -> ClientError {
    let socket = socket.to_path_buf();
    match err.kind() {
        ErrorKind::NotFound => ClientError::NotRunning { socket },
        ErrorKind::ConnectionRefused => ClientError::Refused { socket },
        ErrorKind::PermissionDenied => ClientError::PermissionDenied { socket },
        _ => ClientError::Connect {
            socket,
            source: err,
        },
    }
}

async fn connect(socket: &Path) -> Result<UnixStream, ClientError> {
    match tokio::time::timeout(CONNECT_WITHIN, UnixStream::connect(socket)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(classify_connect_error(socket, e)),
        Err(_) => Err(ClientError::Timeout(CONNECT_WITHIN)),
    }
}

/// Sends `req` and returns its result, read as `T`: `Status` for status,
/// `RunInfo` for backup_now and run, `JobStatus` for pause and resume,
/// `Vec<BackupSummary>`, `Vec<RunRecord>`, `String` for prune_plan.
/// Events (of a `wait`) are skipped; use [`request_streaming`] for them.
pub async fn request<T: DeserializeOwned>(
    socket: &Path,
    req: &ClientRequest,
) -> Result<T, ClientError> {
    match tokio::time::timeout(ANSWER_WITHIN, exchange(socket, req, |_| {})).await {
        Ok(r) => r,
        Err(_) => Err(ClientError::Timeout(ANSWER_WITHIN)),
    }
}

/// Like [`request`], calling `on_event` for each run event before the
/// answer, and without a time limit (a queued backup may wait for hours).
pub async fn request_streaming<T: DeserializeOwned>(
    socket: &Path,
    req: &ClientRequest,
    on_event: impl FnMut(&RunInfo),
) -> Result<T, ClientError> {
    exchange(socket, req, on_event).await
}

async fn exchange<T: DeserializeOwned>(
    socket: &Path,
    req: &ClientRequest,
    mut on_event: impl FnMut(&RunInfo),
) -> Result<T, ClientError> {
    let stream = connect(socket).await?;
    let (read, mut write) = stream.into_split();
    let mut line = req.encode();
    line.push('\n');
    write.write_all(line.as_bytes()).await?;
    let mut reader = BufReader::new(read);
    loop {
        let text = match read_line(&mut reader, MAX_ANSWER_LINE).await? {
            Line::Text(t) => t,
            Line::Eof => return Err(ClientError::Closed),
            Line::TooLong => {
                return Err(ClientError::Protocol(format!(
                    "the daemon's answer is longer than {MAX_ANSWER_LINE} bytes"
                )))
            }
        };
        let text = String::from_utf8(text)
            .map_err(|_| ClientError::Protocol("the daemon's answer is not UTF-8".into()))?;
        match parse_answer(&text).map_err(ClientError::Protocol)? {
            ServerLine::Event(run) => on_event(&run),
            ServerLine::Ok(value) => {
                return serde_json::from_value(value).map_err(|e| {
                    ClientError::Protocol(format!(
                        "the daemon's answer is not what this command expected: {e}"
                    ))
                })
            }
            ServerLine::Err(e) => return Err(ClientError::Api(e)),
        }
    }
}
