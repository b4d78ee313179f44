//! The control socket: how `mongo-backupd status`, `backup-now`, `pause`
//! and `resume` reach the running daemon on the same machine.
//!
//! A Unix stream socket (default `/run/mongo-backupd/control.sock`, mode
//! 0660, owned by `[daemon] control_group` when set) rather than a TCP port:
//! the kernel tells the daemon who connected (peer credentials), so every
//! request is attributed to a real user without passwords or tokens, and
//! file permissions decide who may connect at all.
//!
//! # Protocol (version 1)
//!
//! Newline-delimited JSON. The client sends one request per line; every
//! request carries the protocol version `"v"`:
//!
//! ```text
//! {"v":1,"op":"status"}
//! {"v":1,"op":"backup_now","job":"prod-full","manual":true,"note":"before the migration","wait":true}
//! {"v":1,"op":"run","id":7}
//! {"v":1,"op":"pause","job":"prod-full"}
//! {"v":1,"op":"resume","job":"prod-full"}
//! {"v":1,"op":"backups","job":null}
//! {"v":1,"op":"history","job":null,"limit":20}
//! {"v":1,"op":"prune_plan","job":null}
//! ```
//!
//! The server answers each request with one line, in order:
//!
//! ```text
//! {"v":1,"ok":true,"result":...}
//! {"v":1,"ok":false,"error":{"code":"job_running","message":"..."}}
//! ```
//!
//! `result` is the serialized reply of [`crate::daemon::api`]: `Status`,
//! `RunInfo` (backup_now, run), `JobStatus` (pause, resume),
//! `[BackupSummary]`, `[RunRecord]` (history) or a string (prune_plan).
//! Error codes are the stable [`crate::daemon::api::ErrorCode`]s.
//!
//! `backup_now` with `"wait":true` streams: first the run as queued or
//! started, `{"v":1,"event":"run","run":{...}}`, then more `event` lines as
//! the run changes (at most one every 500 ms), and finally
//! `{"v":1,"ok":true,"result":{...}}` with the finished run.
//!
//! Limits that keep a misbehaving client from hurting the daemon: a request
//! line longer than 64 KiB is refused and the connection closed; a request
//! must arrive within 10 s of the connection (or of the previous answer),
//! otherwise the connection is closed; at most 32 connections are served
//! at once. An unknown `"v"` or a malformed line gets `invalid_request`.
//! A connection may carry several requests one after another.

pub mod client;
pub mod protocol;
pub mod server;
mod session;

#[cfg(test)]
mod tests;

pub use client::{classify_connect_error, request, request_streaming, ClientError};
pub use protocol::{ClientRequest, ServerLine, MAX_REQUEST_LINE, VERSION};
pub use server::{serve, ControlError};
