//! `mongo-backupd demo`, run as a newcomer runs it: the real binary with
//! its shortest useful duration, checked for its final verdict, the files
//! it leaves behind (backups of both kinds, the alert mail), and a clean
//! stop on Ctrl-C.

#![cfg(feature = "demo")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Complete backups (directories holding a manifest) of one job.
fn complete_backups(dir: &Path, job: &str) -> Vec<String> {
    std::fs::read_dir(dir.join("backups").join(job))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.join("manifest.json").is_file())
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_demo_backs_up_alerts_and_verifies_a_point_in_time_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let started = Instant::now();
    let out = common::bin()
        .args(["demo", "--duration", "35s", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Demo complete: point-in-time restore to ")
            && last.contains(" verified (")
            && last.contains(" documents in 3 collections ")
            && last.ends_with("match the source at that instant)."),
        "{text}"
    );
    // The instant is a whole second in UTC: 2026-11-21T12:00:05Z.
    let at = last
        .trim_start_matches("Demo complete: point-in-time restore to ")
        .split(' ')
        .next()
        .unwrap();
    assert!(
        at.len() == 20 && at.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(at).is_ok(),
        "{at}"
    );
    // About 40 s on an idle machine; the bound only catches a demo that hangs.
    assert!(
        elapsed < Duration::from_secs(110),
        "took {elapsed:?}\n{text}"
    );

    let fulls = complete_backups(&dir, "shop-full");
    let incrementals = complete_backups(&dir, "shop-incremental");
    assert!(!fulls.is_empty(), "no full backup\n{text}");
    assert!(incrementals.len() >= 2, "{incrementals:?}\n{text}");
    let mail = std::fs::read_to_string(dir.join("mail.txt")).unwrap();
    assert!(
        mail.contains("Subject: [mongo-backupd demo] FAILED full backup of job \"unreachable\""),
        "{mail}"
    );
    assert!(
        stdout.contains("Subject: [mongo-backupd demo] FAILED"),
        "{text}"
    );
    for file in ["config.toml", "mongo-backupd.log", "state/history.jsonl"] {
        assert!(dir.join(file).is_file(), "{file} is missing\n{text}");
    }
    // The configuration it leaves works with the other commands.
    let list = common::run(&[
        "list",
        "--config",
        dir.join("config.toml").to_str().unwrap(),
    ]);
    assert!(list.status.success(), "{}", common::text(&list));
    assert!(
        String::from_utf8_lossy(&list.stdout).contains(&fulls[0]),
        "{}",
        common::text(&list)
    );
}

#[test]
fn ctrl_c_stops_the_demo_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let mut child = common::bin()
        .args(["demo", "--dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("First full backup") {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
    }
    let pid = child.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let all = format!("{seen}{rest}");
    assert_eq!(status.code(), Some(130), "{all}");
    assert!(rest.contains("Interrupted: stopping the daemon"), "{all}");
    assert!(
        rest.contains(&format!(
            "The demo's files are in {}",
            dir.canonicalize().unwrap().display()
        )),
        "{all}"
    );
    assert!(!all.contains("Demo complete"), "{all}");
    assert!(
        !dir.join("control.sock").exists(),
        "the control socket was left behind"
    );
}
