//! The control socket's wire format (see [`crate::control`] for the
//! protocol as a whole): requests and answer lines, and their parsing.
//!
//! Kept apart from the socket code so both ends, the tests and the fuzzer
//! share one definition, and parsing is a pure function of the bytes.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::daemon::api::{ApiError, ErrorCode, RunInfo};

/// The protocol version this build speaks.
pub const VERSION: u64 = 1;

/// Request lines longer than this are refused (the longest legitimate
/// request is a `backup_now` with a note; 64 KiB is far beyond it).
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// Answers can be long (the history of every job); this only bounds the
/// client's memory if something that is not the daemon answers.
pub const MAX_ANSWER_LINE: usize = 64 * 1024 * 1024;

const EXAMPLE: &str = r#"{"v":1,"op":"status"}"#;

/// What a client asks, without the version (added on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Unknown fields are refused: a field this daemon does not understand
// (say, a newer client's option) must not be silently ignored.
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientRequest {
    Status,
    BackupNow {
        job: String,
        /// Take it as a manual backup instead of the job's own kind.
        #[serde(default)]
        manual: bool,
        #[serde(default)]
        note: Option<String>,
        /// Stream the run's progress until it ends.
        #[serde(default)]
        wait: bool,
    },
    Run {
        id: u64,
    },
    Pause {
        job: String,
    },
    Resume {
        job: String,
    },
    Backups {
        #[serde(default)]
        job: Option<String>,
    },
    History {
        #[serde(default)]
        job: Option<String>,
        #[serde(default)]
        limit: Option<usize>,
    },
    PrunePlan {
        #[serde(default)]
        job: Option<String>,
    },
}

impl ClientRequest {
    /// The request line, without its newline: `{"v":1,"op":...}`.
    pub fn encode(&self) -> String {
        let mut line = Map::new();
        line.insert("v".into(), json!(VERSION));
        // A derived Serialize of this enum always yields an object.
        if let Ok(Value::Object(fields)) = serde_json::to_value(self) {
            line.extend(fields);
        }
        Value::Object(line).to_string()
    }

    /// Requests that change what the daemon does; they are audit-logged.
    pub fn is_mutating(&self) -> bool {
        matches!(
            self,
            ClientRequest::BackupNow { .. }
                | ClientRequest::Pause { .. }
                | ClientRequest::Resume { .. }
        )
    }

    /// For logs: `backup-now of job "x" (manual, note "...")`.
    pub fn describe(&self) -> String {
        match self {
            ClientRequest::Status => "status".into(),
            ClientRequest::BackupNow {
                job, manual, note, ..
            } => {
                let mut extra = Vec::new();
                if *manual {
                    extra.push("manual".to_string());
                }
                if let Some(n) = note {
                    extra.push(format!("note {n:?}"));
                }
                if extra.is_empty() {
                    format!("backup-now of job {job:?}")
                } else {
                    format!("backup-now of job {job:?} ({})", extra.join(", "))
                }
            }
            ClientRequest::Run { id } => format!("run {id}"),
            ClientRequest::Pause { job } => format!("pause of job {job:?}"),
            ClientRequest::Resume { job } => format!("resume of job {job:?}"),
            ClientRequest::Backups { .. } => "backups".into(),
            ClientRequest::History { .. } => "history".into(),
            ClientRequest::PrunePlan { .. } => "prune plan".into(),
        }
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

/// Parses one request line (without its newline; a trailing `\r` is
/// tolerated). Every failure is an `invalid_request` saying what is wrong.
pub fn parse_request(line: &[u8]) -> Result<ClientRequest, ApiError> {
    let text = std::str::from_utf8(line)
        .map_err(|_| invalid("the request is not UTF-8 text"))?
        .trim_end_matches('\r');
    let value: Value = serde_json::from_str(text).map_err(|e| {
        invalid(format!(
            "the request is not valid JSON ({e}); send one JSON object per line, like {EXAMPLE}"
        ))
    })?;
    let Value::Object(mut fields) = value else {
        return Err(invalid(format!(
            "the request must be a JSON object, like {EXAMPLE}"
        )));
    };
    match fields.remove("v") {
        None => {
            return Err(invalid(format!(
                "the request has no protocol version \"v\"; this daemon speaks version {VERSION}, like {EXAMPLE}"
            )))
        }
        Some(v) if v.as_u64() == Some(VERSION) => {}
        Some(v) => {
            return Err(invalid(format!(
                "protocol version {v} is not supported; this daemon speaks version {VERSION} (use the mongo-backupd command of the same release as the daemon)"
            )))
        }
    }
    let names: Vec<String> = fields.keys().cloned().collect();
    let request: ClientRequest = serde_json::from_value(Value::Object(fields))
        .map_err(|e| invalid(format!("invalid request: {e}")))?;
    // serde ignores extra fields of a unit variant (`status`) despite
    // `deny_unknown_fields`; the encoding names every field there is.
    if let Ok(Value::Object(known)) = serde_json::to_value(&request) {
        if let Some(extra) = names.iter().find(|n| !known.contains_key(n.as_str())) {
            return Err(invalid(format!(
                "invalid request: unknown field `{extra}` for this op"
            )));
        }
    }
    Ok(request)
}

/// One line from the server, as the client sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerLine {
    /// A `backup_now` with `wait`: the run changed.
    Event(RunInfo),
    /// The answer: the request's result.
    Ok(Value),
    /// The answer: refused.
    Err(ApiError),
}

/// `{"v":1,"ok":true,"result":...}`.
pub fn encode_result<T: Serialize>(result: &T) -> String {
    match serde_json::to_value(result) {
        Ok(value) => json!({"v": VERSION, "ok": true, "result": value}).to_string(),
        Err(e) => encode_error(&ApiError::new(
            ErrorCode::Internal,
            format!("the daemon could not encode its answer: {e}"),
        )),
    }
}

/// `{"v":1,"ok":false,"error":{"code":...,"message":...}}`.
pub fn encode_error(error: &ApiError) -> String {
    json!({"v": VERSION, "ok": false, "error": error}).to_string()
}

/// `{"v":1,"event":"run","run":{...}}`.
pub fn encode_event(run: &RunInfo) -> String {
    json!({"v": VERSION, "event": "run", "run": run}).to_string()
}

/// Parses one line from the server; the error says what is wrong with it.
pub fn parse_answer(line: &str) -> Result<ServerLine, String> {
    let value: Value = serde_json::from_str(line.trim_end_matches('\r'))
        .map_err(|e| format!("the daemon's answer is not valid JSON: {e}"))?;
    let Value::Object(mut fields) = value else {
        return Err("the daemon's answer is not a JSON object".into());
    };
    match fields.get("v").and_then(Value::as_u64) {
        Some(VERSION) => {}
        other => {
            return Err(format!(
                "the daemon answered with protocol version {}, this command speaks {VERSION}",
                other.map_or_else(|| "(none)".to_string(), |v| v.to_string())
            ))
        }
    }
    if let Some(event) = fields.get("event") {
        if event != "run" {
            return Err(format!("the daemon sent an unknown event {event}"));
        }
        let run = fields.remove("run").unwrap_or(Value::Null);
        return serde_json::from_value(run)
            .map(ServerLine::Event)
            .map_err(|e| format!("the daemon sent a run event this command cannot read: {e}"));
    }
    match fields.get("ok").and_then(Value::as_bool) {
        Some(true) => Ok(ServerLine::Ok(
            fields.remove("result").unwrap_or(Value::Null),
        )),
        Some(false) => {
            let error = fields.remove("error").unwrap_or(Value::Null);
            serde_json::from_value(error)
                .map(ServerLine::Err)
                .map_err(|e| format!("the daemon sent an error this command cannot read: {e}"))
        }
        None => Err("the daemon's answer has neither \"ok\" nor \"event\"".into()),
    }
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line, without its newline (the last one may lack it).
    Text(Vec<u8>),
    /// The peer closed the connection with nothing pending.
    Eof,
    /// More than the limit arrived without a newline.
    TooLong,
}

/// Reads up to the next `\n`, holding at most `max` bytes: a peer sending
/// an endless line costs the reader `max` bytes, not all its memory.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Line> {
    let mut line = Vec::new();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if line.is_empty() {
                Line::Eof
            } else {
                Line::Text(line)
            });
        }
        let (chunk, found) = match buf.iter().position(|&b| b == b'\n') {
            Some(at) => (buf.get(..at).unwrap_or(buf), true),
            None => (buf, false),
        };
        if line.len() + chunk.len() > max {
            return Ok(Line::TooLong);
        }
        line.extend_from_slice(chunk);
        let used = chunk.len() + usize::from(found);
        reader.consume(used);
        if found {
            return Ok(Line::Text(line));
        }
    }
}
