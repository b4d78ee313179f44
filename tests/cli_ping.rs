//! The `ping` command as a user runs it: the real binary against the test
//! server (or MONGODB_TEST_URI), and against nothing at all.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::process::Command;

use mongo_testserver::harness::Target;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mongo-backupd"))
}

#[test]
fn ping_describes_a_replica_set_and_its_oplog_window() {
    let target = Target::new().unwrap();
    let out = bin()
        .args(["ping", "--uri", &target.uri()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("Connected to MongoDB "), "{stdout}");
    assert!(stdout.contains("replica set"), "{stdout}");
    assert!(stdout.contains("Oplog window: "), "{stdout}");
}

#[test]
fn ping_of_a_dead_server_says_so_with_exit_69() {
    // Bind and release a port so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("mongodb://user:hunter2@127.0.0.1:{port}/?directConnection=true");
    let out = bin()
        .args(["ping", "--timeout-secs", "1", "--uri", &uri])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach MongoDB at 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}

#[test]
fn bad_arguments_are_a_usage_error() {
    let out = bin().args(["ping"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
}
