//! The shipped systemd unit: `systemd-analyze verify` accepts it, and it
//! keeps the properties the service relies on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::process::Command;

const UNIT: &str = include_str!("../systemd/mongo-backupd.service");

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mongo-backupd.service");
    // verify checks that the executables exist: point at the built binary.
    std::fs::write(
        &path,
        UNIT.replace(
            "/usr/bin/mongo-backupd",
            env!("CARGO_BIN_EXE_mongo-backupd"),
        ),
    )
    .unwrap();
    let out = match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            panic!("systemd-analyze is needed (Debian package systemd; .ci/run installs it): {e}")
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("mongo-backupd.service"),
        "warnings about the unit: {stderr}"
    );
}

#[test]
fn the_unit_notifies_validates_and_is_hardened() {
    for line in [
        "Type=notify",
        "ExecStartPre=/usr/bin/mongo-backupd check-config",
        "ExecReload=/usr/bin/mongo-backupd check-config",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "RestartPreventExitStatus=78",
        "WatchdogSec=",
        "User=mongo-backupd",
        "UMask=0077",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/backups/mongo-backupd",
        "StateDirectory=mongo-backupd",
        "LogsDirectory=mongo-backupd",
    ] {
        assert!(
            UNIT.lines().any(|l| l.starts_with(line)),
            "the unit lacks {line}"
        );
    }
    // The check must run before HUP is sent, so a broken file never reaches the daemon.
    let check = UNIT
        .find("ExecReload=/usr/bin/mongo-backupd check-config")
        .unwrap();
    let hup = UNIT.find("ExecReload=/bin/kill -HUP").unwrap();
    assert!(check < hup);
}
