//! The commands that talk to the running daemon through its control
//! socket (`backup-now`, `status`, `pause`, `resume`), and how their
//! answers look to an operator. The files-only commands (`history`,
//! `list`, `prune`) stay in `commands` and work without a daemon.

use std::path::PathBuf;

use chrono::Utc;

use super::commands::{fail, load_config};
use super::{exit, BackupNowArgs, ConfigArg, ControlArgs, DEFAULT_CONFIG};
use crate::config::{self, DEFAULT_CONTROL_SOCKET};
use crate::control::{self, ClientError, ClientRequest};
use crate::daemon::api::{ErrorCode, JobStatus, RunInfo, RunState, Status};
use crate::history::format_size;
use crate::signal::interrupted;

mod view;
use view::{render_status, span, state, until};

/// `--socket`, else the configuration's `control_socket`. Only an
/// explicitly named configuration must be valid: the default one may be
/// missing or readable only by root, and the default socket is right then.
fn socket_path(control: &ControlArgs) -> Result<PathBuf, u8> {
    if let Some(socket) = &control.socket {
        return Ok(socket.clone());
    }
    if control.config.path.is_some() {
        return load_config(&control.config).map(|c| c.daemon.control_socket);
    }
    let path = PathBuf::from(DEFAULT_CONFIG);
    if std::fs::File::open(&path).is_err() {
        return Ok(PathBuf::from(DEFAULT_CONTROL_SOCKET));
    }
    match config::load(&path) {
        Ok(c) => Ok(c.daemon.control_socket),
        Err(_) => {
            eprintln!(
                "mongo-backupd: warning: {} is invalid (see `mongo-backupd check-config`); trying the control socket {DEFAULT_CONTROL_SOCKET}.",
                path.display()
            );
            Ok(PathBuf::from(DEFAULT_CONTROL_SOCKET))
        }
    }
}

/// The exit code of a failed request: sysexits, so scripts can tell "no
/// daemon" (69), "not allowed" (77), "no such job" (64) and "busy, try
/// later" (75) from other failures.
pub(super) fn exit_code(e: &ClientError) -> u8 {
    match e {
        _ if e.is_not_running() => exit::UNAVAILABLE,
        ClientError::PermissionDenied { .. } => exit::NOPERM,
        ClientError::Api(api) => match api.code {
            ErrorCode::UnknownJob => exit::USAGE,
            ErrorCode::JobRunning => exit::TEMPFAIL,
            _ => exit::FAILURE,
        },
        _ => exit::FAILURE,
    }
}

fn failed(e: &ClientError) -> u8 {
    fail(e, exit_code(e))
}

/// Pretty JSON on stdout; a closed pipe (`| head`) is not an error.
fn print_json<T: serde::Serialize>(value: &T) {
    use std::io::Write;
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
        Err(e) => eprintln!("mongo-backupd: cannot print the answer as JSON: {e}"),
    }
}

pub async fn backup_now(args: &BackupNowArgs) -> u8 {
    let socket = match socket_path(&args.control) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let req = ClientRequest::BackupNow {
        job: args.job.clone(),
        manual: args.kind.as_deref() == Some("manual"),
        note: args.note.clone(),
        wait: args.wait,
    };
    if !args.wait {
        return match control::request::<RunInfo>(&socket, &req).await {
            Ok(run) if args.json => {
                print_json(&run);
                0
            }
            Ok(run) => {
                println!("{}", run_line(&run));
                0
            }
            Err(e) => failed(&e),
        };
    }
    let quiet = args.json;
    let mut shown: Option<RunInfo> = None;
    let follow = control::request_streaming::<RunInfo>(&socket, &req, |run| {
        if !quiet {
            print_change(shown.as_ref(), run);
        }
        shown = Some(run.clone());
    });
    let result = tokio::select! {
        r = follow => r,
        _ = interrupted() => {
            return fail(
                format!(
                    "stopped waiting; the backup of job \"{}\" continues in the daemon (see `mongo-backupd status`)",
                    args.job
                ),
                exit::INTERRUPTED,
            );
        }
    };
    match result {
        Ok(run) if quiet => {
            print_json(&run);
            u8::from(run.state != RunState::Success)
        }
        Ok(run) => finished(&run),
        Err(e) => failed(&e),
    }
}

/// `Backup of job "x" started (run 7).`
fn run_line(run: &RunInfo) -> String {
    let (what, why) = match run.state {
        // Every run starts queued; it waits only when max_concurrent_jobs
        // runs are going, and then the next event says so.
        RunState::Queued => ("accepted", ""),
        RunState::Running => ("started", ""),
        RunState::Success => ("finished", ""),
        RunState::Failed => ("failed", ""),
        RunState::Cancelled => ("cancelled", ""),
    };
    format!(
        "Backup of job \"{}\" {what} (run {}){why}.",
        run.job, run.id
    )
}

/// What changed since the last event: the state, or the progress.
fn print_change(before: Option<&RunInfo>, run: &RunInfo) {
    if before.map(|b| b.state) != Some(run.state) && !run.state.is_finished() {
        println!("{}", run_line(run));
    }
    let p = &run.progress;
    let moved = before.is_none_or(|b| b.progress != *p);
    if run.state == RunState::Running && moved && *p != Default::default() {
        println!(
            "  {}/{} collections, {} documents, {}",
            p.collections_done,
            p.collections_total,
            p.documents,
            format_size(p.bytes)
        );
    }
}

/// The end of a `--wait`: exit 0 only for a complete backup.
fn finished(run: &RunInfo) -> u8 {
    let took = match (run.started_at, run.finished_at) {
        (Some(s), Some(f)) => span((f - s).num_seconds()),
        _ => "-".into(),
    };
    match run.state {
        RunState::Success => {
            println!(
                "Backup {} of job \"{}\" complete: {} stored, {} collections, {} documents in {took}.",
                run.backup_id.as_deref().unwrap_or("(unnamed)"),
                run.job,
                format_size(run.stored_bytes.unwrap_or(run.progress.bytes)),
                run.progress.collections_total,
                run.documents.unwrap_or(run.progress.documents),
            );
            0
        }
        state => fail(
            format!(
                "the backup of job \"{}\" {} (run {}): {}",
                run.job,
                if state == RunState::Cancelled {
                    "was cancelled"
                } else {
                    "failed"
                },
                run.id,
                run.error
                    .as_deref()
                    .unwrap_or("no reason given; see the daemon's log")
            ),
            exit::FAILURE,
        ),
    }
}

pub async fn status(control: &ControlArgs, json: bool) -> u8 {
    let socket = match socket_path(control) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match control::request::<Status>(&socket, &ClientRequest::Status).await {
        Ok(s) if json => {
            print_json(&s);
            0
        }
        Ok(s) => {
            print!("{}", render_status(&s, Utc::now()));
            0
        }
        Err(e) => failed(&e),
    }
}

/// `pause` (or, with `pause` false, `resume`) one job.
pub async fn pause(control: &ControlArgs, job: &str, pause: bool) -> u8 {
    let socket = match socket_path(control) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let job = job.to_string();
    let req = if pause {
        ClientRequest::Pause { job }
    } else {
        ClientRequest::Resume { job }
    };
    match control::request::<JobStatus>(&socket, &req).await {
        Ok(j) => {
            println!("Job \"{}\" is now {}.", j.name, state(&j));
            if j.paused {
                println!(
                    "It is not scheduled until `mongo-backupd resume {}` (a running backup finishes).",
                    j.name
                );
            } else if let Some(next) = j.next_fire {
                println!("Its next run is {}.", until(Some(next), Utc::now()));
            }
            0
        }
        Err(e) => failed(&e),
    }
}

/// The configuration the running daemon uses, when the command names none:
/// `history`, `list` and `prune` then describe what the service does even
/// if it was started with another file. Without a daemon answering on its
/// socket (`MONGO_BACKUPD_SOCKET`, else the default), the default file.
pub async fn running_config(arg: ConfigArg) -> ConfigArg {
    if arg.path.is_some() {
        return arg;
    }
    let socket = std::env::var_os("MONGO_BACKUPD_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET));
    let socket = socket.as_path();
    if !socket.exists() {
        return arg;
    }
    let asked = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        control::request::<Status>(socket, &ClientRequest::Status),
    )
    .await;
    match asked {
        Ok(Ok(status)) => ConfigArg {
            path: Some(PathBuf::from(status.config_file)),
        },
        _ => arg,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

    use super::*;

    #[test]
    fn control_exit_codes_follow_sysexits() {
        use crate::daemon::api::ApiError;
        let api = |code| ClientError::Api(ApiError::new(code, "x"));
        assert_eq!(exit_code(&api(ErrorCode::UnknownJob)), 64);
        assert_eq!(exit_code(&api(ErrorCode::JobRunning)), 75);
        assert_eq!(exit_code(&api(ErrorCode::Internal)), 1);
        let socket = PathBuf::from("/nonexistent/control.sock");
        assert_eq!(
            exit_code(&ClientError::NotRunning {
                socket: socket.clone()
            }),
            69
        );
        assert_eq!(
            exit_code(&ClientError::Refused {
                socket: socket.clone()
            }),
            69
        );
        assert_eq!(exit_code(&ClientError::PermissionDenied { socket }), 77);
        assert_eq!(exit_code(&ClientError::Closed), 1);
    }
}
