//! `mongo-backupd demo`, run as a newcomer runs it: the real binary with
//! its shortest useful duration, checked for its final verdict, the files
//! it leaves behind (encrypted backups of both kinds, the identity that
//! reads them, the alert mail), and a clean stop on Ctrl-C (with the
//! user's own identity file).

#![cfg(feature = "demo")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
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

/// Every file of a backup except its manifest.
fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(data_files(&path));
        } else if path.file_name().unwrap() != "manifest.json" {
            out.push(path);
        }
    }
    out
}

/// The manifest's `encryption` record; checks that every data file of the
/// backup is an age file.
fn encryption_of(backup: &Path) -> serde_json::Value {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    for file in data_files(backup) {
        assert!(
            file.to_string_lossy().ends_with(".age"),
            "{} is not encrypted",
            file.display()
        );
        let head = std::fs::read(&file).unwrap();
        assert!(
            head.starts_with(b"age-encryption.org/v1\n"),
            "{}",
            file.display()
        );
    }
    manifest["encryption"].clone()
}

/// `sha256:` and 32 hex digits of the public key: how manifests name a
/// recipient.
fn fingerprint(public: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "sha256:{}",
        hex::encode(&Sha256::digest(public.as_bytes())[..16])
    )
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

    // Encrypted to the key pair it generated; the identity is private.
    let key = dir.canonicalize().unwrap().join("backup-key.txt");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", key.display());
    let public = std::fs::read_to_string(&key)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_string))
        .unwrap();
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert_eq!(
        config
            .matches(&format!("encrypt_to = [\"{public}\"]"))
            .count(),
        2,
        "{config}"
    );
    let expected = serde_json::json!({
        "scheme": "age-x25519",
        "recipients": [fingerprint(&public)],
    });
    for (job, ids) in [("shop-full", &fulls), ("shop-incremental", &incrementals)] {
        for id in ids.iter() {
            let backup = dir.join("backups").join(job).join(id);
            // A full holds the collections; an incremental at least the oplog.
            assert!(!data_files(&backup).is_empty(), "{}", backup.display());
            assert_eq!(encryption_of(&backup), expected, "{}", backup.display());
        }
    }
    // The closing text shows where the key is and how to use it, and the
    // commands it shows work as shown.
    let newest = fulls.iter().max().unwrap();
    let full_dir = dir
        .canonicalize()
        .unwrap()
        .join("backups/shop-full")
        .join(newest);
    for shown in [
        format!("Only {} can read the backups.", key.display()),
        format!(
            "verify --decrypt {} {}\n",
            key.display(),
            full_dir.display()
        ),
        format!(
            "--identity {} --to mongodb://127.0.0.1:27017 --dry-run\n",
            key.display()
        ),
    ] {
        assert!(stdout.contains(&shown), "{shown:?} not shown\n{text}");
    }
    let key_arg = key.to_str().unwrap();
    let verify = common::run(&["verify", "--decrypt", key_arg, full_dir.to_str().unwrap()]);
    assert!(verify.status.success(), "{}", common::text(&verify));
    let plan = common::run(&[
        "restore",
        "--config",
        dir.join("config.toml").to_str().unwrap(),
        "--job",
        "shop-incremental",
        "--at",
        "latest",
        "--identity",
        key_arg,
        "--to",
        "mongodb://127.0.0.1:27017",
        "--dry-run",
    ]);
    assert!(plan.status.success(), "{}", common::text(&plan));
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
    // The user's own identity file: the backups are encrypted to its key.
    let (secret, public) = mongo_backupd::storage::crypt::generate();
    let key = tmp.path().join("my-key.txt");
    std::fs::write(&key, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut child = common::bin()
        .args(["demo", "--identity"])
        .arg(&key)
        .arg("--dir")
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
    assert!(!dir.join("backup-key.txt").exists(), "{all}");
    let fulls = complete_backups(&dir, "shop-full");
    assert!(!fulls.is_empty(), "{all}");
    let encryption = encryption_of(&dir.join("backups/shop-full").join(&fulls[0]));
    assert_eq!(
        encryption["recipients"],
        serde_json::json!([fingerprint(&public)]),
        "{all}"
    );
}

#[test]
fn an_unusable_identity_file_stops_the_demo_before_it_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-key.txt");
    let out = common::bin()
        .args(["demo", "--identity"])
        .arg(&missing)
        .arg("--dir")
        .arg(tmp.path().join("demo"))
        .output()
        .unwrap();
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Demo FAILED: ") && last.contains("no-such-key.txt"),
        "{text}"
    );
    assert!(!stdout.contains("Started the embedded"), "{text}");
}
