//! The server and the client over real Unix sockets in temporary
//! directories, with the stand-in daemon: answers, streaming, errors an
//! operator sees, the socket's life cycle and the limits on clients.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::*;
use crate::control::client::{request, request_streaming, ClientError};
use crate::control::protocol::{read_line, Line};
use crate::control::server::ControlError;
use crate::daemon::api::BackupSummary;

const QUICK: StandIn = StandIn {
    step: Duration::from_millis(30),
};

/// Sends raw bytes, returns the answer lines until `count` answers (not
/// events) or the close.
async fn raw(socket: &std::path::Path, bytes: &[u8], count: usize) -> Vec<ServerLine> {
    let stream = UnixStream::connect(socket).await.unwrap();
    let (read, mut write) = stream.into_split();
    let _ = write.write_all(bytes).await;
    let mut reader = BufReader::new(read);
    let mut got = Vec::new();
    let mut answers = 0;
    while answers < count {
        let next = tokio::time::timeout(Duration::from_secs(5), read_line(&mut reader, 1 << 24));
        // A reset after the answer (the server closed with our bytes
        // unread) is a close like any other.
        match next.await.expect("no answer within 5 s") {
            Ok(Line::Text(t)) => {
                let line = parse_answer(std::str::from_utf8(&t).unwrap()).unwrap();
                answers += usize::from(!matches!(line, ServerLine::Event(_)));
                got.push(line);
            }
            Ok(Line::Eof) | Err(_) => break,
            Ok(Line::TooLong) => panic!("answer too long"),
        }
    }
    got
}

fn code(line: &ServerLine) -> ErrorCode {
    match line {
        ServerLine::Err(e) => e.code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn control_status_round_trips() {
    let server = start(fast_limits(), QUICK).await;
    let status: Status = request(&server.socket, &ClientRequest::Status)
        .await
        .unwrap();
    assert_eq!(status, sample_status());
    let backups: Vec<BackupSummary> =
        request(&server.socket, &ClientRequest::Backups { job: None })
            .await
            .unwrap();
    assert!(backups.is_empty());
    let plan: String = request(&server.socket, &ClientRequest::PrunePlan { job: None })
        .await
        .unwrap();
    assert_eq!(plan, "Nothing to delete.\n");
    // The socket is for the daemon's user and group only.
    let mode = std::fs::metadata(&server.socket).unwrap().mode();
    assert_eq!(mode & 0o777, 0o660);
}

#[tokio::test]
async fn control_backup_now_wait_streams_the_run_to_its_end() {
    let server = start(fast_limits(), QUICK).await;
    let req = ClientRequest::BackupNow {
        job: "x".into(),
        manual: true,
        note: Some("before the migration".into()),
        wait: true,
    };
    let mut events = Vec::new();
    let done: RunInfo = request_streaming(&server.socket, &req, |run| events.push(run.clone()))
        .await
        .unwrap();
    assert_eq!(done.state, RunState::Success);
    assert_eq!(done.backup_id.as_deref(), Some("20260921T000000Z-full"));
    assert_eq!(done.progress.collections_done, 4);
    assert_eq!(events.first().map(|r| r.state), Some(RunState::Queued));
    assert!(
        events
            .iter()
            .any(|r| r.state == RunState::Running && r.progress.collections_done > 0),
        "{events:?}"
    );
    assert!(events.iter().all(|r| !r.state.is_finished()), "{events:?}");
    assert!(
        events.len() <= 3,
        "one event per change at most: {events:?}"
    );

    // Who asked is the peer's user, as the kernel reports it.
    let callers = server.callers.lock().unwrap().clone();
    let uid = nix::unistd::getuid().as_raw();
    assert_eq!(callers.len(), 1);
    assert_eq!(callers[0].via, "socket");
    assert!(
        callers[0].name.ends_with(&format!("(uid {uid})"))
            || callers[0].name == format!("uid {uid}")
    );
    if uid == 0 {
        assert_eq!(callers[0].name, "root (uid 0)");
    }
}

#[tokio::test]
async fn control_backup_now_without_wait_answers_the_queued_run() {
    let server = start(fast_limits(), QUICK).await;
    let req = ClientRequest::BackupNow {
        job: "prod-full".into(),
        manual: false,
        note: None,
        wait: false,
    };
    let run: RunInfo = request(&server.socket, &req).await.unwrap();
    assert_eq!((run.id, run.state), (7, RunState::Queued));
}

#[tokio::test]
async fn control_refusals_carry_the_daemons_code() {
    let server = start(fast_limits(), QUICK).await;
    let busy = ClientRequest::BackupNow {
        job: "busy".into(),
        manual: false,
        note: None,
        wait: true,
    };
    let e = request::<RunInfo>(&server.socket, &busy).await.unwrap_err();
    let ClientError::Api(api) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(api.code, ErrorCode::JobRunning);
    assert!(e.to_string().contains("running already"), "{e}");

    let e = request::<JobStatus>(&server.socket, &ClientRequest::Pause { job: "nope".into() })
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Api(a) if a.code == ErrorCode::UnknownJob),
        "{e:?}"
    );

    let paused: JobStatus = request(&server.socket, &ClientRequest::Pause { job: "x".into() })
        .await
        .unwrap();
    assert_eq!(paused.activity, JobActivity::Paused);

    let answers = raw(&server.socket, b"{\"v\":9,\"op\":\"status\"}\n", 1).await;
    let ServerLine::Err(e) = &answers[0] else {
        panic!("{answers:?}")
    };
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    assert!(e.message.contains("version 1"), "{e}");
}

#[tokio::test]
async fn control_one_connection_carries_several_requests() {
    let server = start(fast_limits(), QUICK).await;
    let mut bytes = Vec::new();
    for line in [
        ClientRequest::Status.encode().as_str(),
        "junk",
        r#"{"v":1,"op":"run","id":7}"#,
    ] {
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    let answers = raw(&server.socket, &bytes, 3).await;
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert!(matches!(answers[0], ServerLine::Ok(_)));
    assert_eq!(code(&answers[1]), ErrorCode::InvalidRequest);
    assert!(matches!(answers[2], ServerLine::Ok(_)));
}

#[tokio::test]
async fn control_no_daemon_means_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let e = request::<Status>(&socket, &ClientRequest::Status)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::NotRunning { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains(&socket.display().to_string()), "{text}");
    assert!(text.contains("systemctl start mongo-backupd"), "{text}");

    // A socket file nobody listens on (a daemon that was killed).
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let e = request::<Status>(&socket, &ClientRequest::Status)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Refused { .. }), "{e:?}");
    assert!(e.is_not_running());
}

#[test]
fn control_connect_errors_are_classified() {
    use std::io::{Error, ErrorKind};
    let socket = std::path::Path::new("/run/mongo-backupd/control.sock");
    let e =
        crate::control::classify_connect_error(socket, Error::from(ErrorKind::PermissionDenied));
    assert_eq!(
        e.to_string(),
        "permission denied on /run/mongo-backupd/control.sock: run as root, as the mongo-backupd user, or as a member of its control_group"
    );
    let e = crate::control::classify_connect_error(socket, Error::from(ErrorKind::NotFound));
    assert!(matches!(e, ClientError::NotRunning { .. }));
    let e =
        crate::control::classify_connect_error(socket, Error::from(ErrorKind::ConnectionRefused));
    assert!(matches!(e, ClientError::Refused { .. }));
    let e = crate::control::classify_connect_error(socket, Error::from(ErrorKind::InvalidInput));
    assert!(matches!(e, ClientError::Connect { .. }));
}

/// Run as the child of `control_permission_denied_over_a_real_socket`
/// (as nobody); does nothing in a normal test run.
#[test]
fn eacces_probe() {
    let Ok(socket) = std::env::var("MONGO_BACKUPD_TEST_EACCES_SOCKET") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let e = rt
        .block_on(request::<Status>(
            std::path::Path::new(&socket),
            &ClientRequest::Status,
        ))
        .unwrap_err();
    assert!(matches!(e, ClientError::PermissionDenied { .. }), "{e:?}");
}

#[tokio::test]
async fn control_permission_denied_over_a_real_socket() {
    let server = start(fast_limits(), QUICK).await;
    if !nix::unistd::getuid().is_root() {
        // The owner without write permission is refused like anyone.
        std::fs::set_permissions(&server.socket, std::fs::Permissions::from_mode(0o000)).unwrap();
        let e = request::<Status>(&server.socket, &ClientRequest::Status)
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::PermissionDenied { .. }), "{e:?}");
        return;
    }
    // Root passes any permission check: ask as nobody (uid 65534), who is
    // neither the socket's owner nor in its group, from a child process
    // (this test binary, running only `eacces_probe`).
    std::fs::set_permissions(server.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    use std::os::unix::process::CommandExt;
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "control::tests::socket::eacces_probe",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("MONGO_BACKUPD_TEST_EACCES_SOCKET", &server.socket)
        .uid(65534)
        .gid(65534)
        .output();
    match child {
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "the probe as nobody failed: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The test binary is not executable by nobody here: the
        // classification is covered by `control_connect_errors_are_classified`.
        Err(e) => eprintln!("note: cannot run the probe as nobody ({e}); skipped"),
    }
}

#[tokio::test]
async fn control_socket_life_cycle() {
    let server = start(fast_limits(), QUICK).await;
    // A second daemon must not take the socket of a running one.
    let e = server::bind(&server.socket, None).await.err().unwrap();
    assert!(matches!(e, ControlError::AlreadyRunning { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "another mongo-backupd is running (it answers on {})",
            server.socket.display()
        )
    );
    // Shutdown removes it.
    server.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .unwrap()
        .unwrap();
    assert!(!server.socket.exists());

    // A stale socket is replaced; a missing directory is created.
    let socket = server.dir.path().join("sub/dir/control.sock");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let bound = server::bind(&socket, None).await.unwrap();
    drop(bound);
    let fresh = server.dir.path().join("new/control.sock");
    drop(server::bind(&fresh, None).await.unwrap());
    assert!(fresh.exists());

    // Anything else at the path is left alone.
    let file = server.dir.path().join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    let e = server::bind(&file, None).await.err().unwrap();
    assert!(matches!(e, ControlError::NotASocket { .. }), "{e:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[tokio::test]
async fn control_group_is_applied_or_named_when_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let e = server::bind(&socket, Some("no-such-group-mbd"))
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("\"no-such-group-mbd\""), "{e}");
    assert!(!socket.exists(), "a failed setup leaves no socket");

    // Only root may give a file to any group.
    let group = nix::unistd::Group::from_name("nogroup").ok().flatten();
    if let (true, Some(group)) = (nix::unistd::getuid().is_root(), group) {
        drop(server::bind(&socket, Some("nogroup")).await.unwrap());
        let meta = std::fs::metadata(&socket).unwrap();
        assert_eq!(meta.gid(), group.gid.as_raw());
        assert_eq!(meta.mode() & 0o777, 0o660);
    }
}

#[tokio::test]
async fn control_limits_protect_the_daemon() {
    let limits = Limits {
        read_timeout: Duration::from_millis(200),
        max_connections: 2,
        ..fast_limits()
    };
    let server = start(limits, QUICK).await;

    // An idle client is told and dropped.
    let started = std::time::Instant::now();
    let answers = raw(&server.socket, b"", 2).await;
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(code(&answers[0]), ErrorCode::InvalidRequest);
    assert!(started.elapsed() < Duration::from_secs(3));

    // An endless line is refused and the connection closed.
    let mut long = vec![b'{'; crate::control::MAX_REQUEST_LINE + 10];
    long.push(b'\n');
    let answers = raw(&server.socket, &long, 2).await;
    assert_eq!(answers.len(), 1, "{answers:?}");
    let ServerLine::Err(e) = &answers[0] else {
        panic!()
    };
    assert!(e.message.contains("longer than 65536 bytes"), "{e}");

    // Two connections at most: a third is turned away.
    let mut held = Vec::new();
    for _ in 0..2 {
        let stream = UnixStream::connect(&server.socket).await.unwrap();
        let (read, mut write) = stream.into_split();
        write
            .write_all(b"{\"v\":1,\"op\":\"status\"}\n")
            .await
            .unwrap();
        let mut reader = BufReader::new(read);
        assert!(matches!(
            read_line(&mut reader, 1 << 20).await.unwrap(),
            Line::Text(_)
        ));
        held.push((reader, write));
    }
    let answers = raw(&server.socket, b"{\"v\":1,\"op\":\"status\"}\n", 1).await;
    let ServerLine::Err(e) = &answers[0] else {
        panic!("{answers:?}")
    };
    assert!(e.message.contains("2 control connections"), "{e}");
}

#[tokio::test]
async fn control_waiting_client_is_told_when_the_daemon_stops() {
    let server = start(fast_limits(), QUICK).await;
    let req = ClientRequest::BackupNow {
        job: "slow".into(),
        manual: false,
        note: None,
        wait: true,
    };
    let socket = server.socket.clone();
    let (seen, mut first) = tokio::sync::mpsc::unbounded_channel();
    let waiting = tokio::spawn(async move {
        request_streaming::<RunInfo>(&socket, &req, |run| {
            let _ = seen.send(run.id);
        })
        .await
    });
    // Stop only once the run is being streamed.
    assert_eq!(first.recv().await, Some(8));
    server.shutdown.cancel();
    let e = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Api(a) if a.code == ErrorCode::ShuttingDown),
        "{e:?}"
    );
    assert!(!server.socket.exists());
}
