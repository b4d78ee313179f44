//! Copies to object storage in the running daemon: a copy location that
//! goes down does not fail the backup, is logged at ERROR and mailed to
//! on-call as a copy failure naming the job, the location, the cause and
//! what to do; once the location is back, the next run copies what was
//! missed and a recovery mail follows. Runs are started with
//! `backup-now --wait` through the control socket, so nothing depends on
//! the clock; the source is the test server (or MONGODB_TEST_URI).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::objstore::{Azurite, ObjectServer, S3Server};
use common::smtp::{Captured, SmtpOptions, SmtpServer};
use mongo_testserver::harness::Target;

/// Copies to a stopped server give up within the location's request
/// timeout (10 s here), and the retention run after them lists it once
/// more: 90 s covers both on a loaded machine.
const WAIT: Duration = Duration::from_secs(90);

fn config(dir: &Path, uri: &str, db: &str, server: &dyn ObjectServer, smtp: &SmtpServer) -> String {
    std::fs::create_dir_all(dir.join("state")).unwrap();
    format!(
        r#"[daemon]
state_dir = "{state}"
shutdown_grace = "20s"

[sources.prod]
uri = "{uri}"

[storage.local]
type = "local"
path = "{storage}"

{offsite}timeout = "10s"

[alerts]
reminder_interval = "1h"

[alerts.email]
host = "127.0.0.1"
port = {port}
tls = "none"
from = "mongo-backupd <backups@example.com>"
to = ["oncall@example.com"]
timeout = "5s"
retry_max_interval = "2s"

[jobs.nightly]
source = "prod"
storage = "local"
copies = ["offsite"]
kind = "full"
# Never fires during the test: every run is started with backup-now.
schedule = "0 0 1 1 *"
compression = "none"
include = ["{db}"]
"#,
        state = dir.join("state").display(),
        storage = dir.join("backups").display(),
        offsite = server.toml_section("offsite"),
        port = smtp.port(),
    )
}

/// `mongo-backupd ARGS --socket <the daemon's socket>`.
fn ctl(d: &Daemon, args: &[&str]) -> Output {
    let socket = d.socket().display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--socket", &socket]);
    common::run(&all)
}

/// A backup of `nightly` on the daemon; it must succeed whatever the
/// copy location does.
fn backup_now(d: &Daemon) {
    let out = ctl(d, &["backup-now", "nightly", "--wait"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        common::text(&out),
        d.log()
    );
}

fn local_ids(d: &Daemon) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(d.path("backups/nightly"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    ids.sort();
    ids
}

/// The ids `list --location offsite` shows complete, sorted.
fn offsite_ids(d: &Daemon) -> Vec<String> {
    let config = d.path("config.toml").display().to_string();
    let out = common::run(&["list", "--config", &config, "--location", "offsite"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.ends_with("complete"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn subjects(smtp: &SmtpServer) -> Vec<String> {
    smtp.messages().into_iter().map(|m| m.subject).collect()
}

/// Polls until `cond` holds; fails with the daemon's log after [`WAIT`].
fn wait_until(d: &Daemon, smtp: &SmtpServer, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; mails: {:?}\n{}",
            subjects(smtp),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_mail(d: &Daemon, smtp: &SmtpServer, subject_start: &str) -> Captured {
    let mut found = None;
    wait_until(d, smtp, subject_start, || {
        found = smtp
            .messages()
            .into_iter()
            .find(|m| m.subject.starts_with(subject_start));
        found.is_some()
    });
    found.unwrap()
}

fn assert_contains(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

async fn copy_fails_alerts_and_catches_up(server: &mut dyn ObjectServer) {
    let target = Target::new().unwrap();
    let db = target.unique_db("copies_daemon");
    let c = common::client(&target.uri()).await;
    c.database(&db)
        .collection::<bson::Document>("c")
        .insert_many((0..20).map(|i| bson::doc! { "_id": i }))
        .await
        .unwrap();
    mongo_backupd::source::close(c).await;
    let smtp = SmtpServer::start(SmtpOptions::plain());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &target.uri(), &db, server, &smtp);
    let mut d = Daemon::start_in(dir, &cfg);
    let hosts = mongo_backupd::source::hosts_of(&target.uri());
    let first_host = hosts.split(',').next().unwrap();
    let host = first_host.rsplit_once(':').map_or(first_host, |(h, _)| h);

    // A healthy location: the backup is copied, and nobody is mailed.
    backup_now(&d);
    let first = local_ids(&d);
    assert_eq!(first.len(), 1);
    wait_until(&d, &smtp, "the first backup at offsite", || {
        offsite_ids(&d) == first
    });

    // The location goes down. The backup itself still succeeds.
    server.stop();
    backup_now(&d);
    let now_local = local_ids(&d);
    assert_eq!(now_local.len(), 2, "the primary backup completed");
    let missed = now_local
        .into_iter()
        .find(|id| !first.contains(id))
        .unwrap();
    let failed = wait_mail(
        &d,
        &smtp,
        "[mongo-backupd] FAILED copy to other storage of job",
    );
    assert_eq!(
        failed.subject,
        format!("[mongo-backupd] FAILED copy to other storage of job \"nightly\" on {host}")
    );
    assert_eq!(failed.to, vec!["oncall@example.com".to_string()]);
    assert_contains(
        &failed.body,
        &[
            "The copy to other storage of job \"nightly\" failed.",
            // The location by name and by URL, and how much is missing.
            "What broke:   storage \"offsite\" (",
            server.bucket(),
            "(1 backups not copied yet)",
            "Job:          nightly (full)",
            "Storage:      local",
            "What to do:\n  The backups are complete in the job's primary storage; only the copies are missing.",
            "Check that the location is reachable from this host",
            "`mongo-backupd list --location NAME`",
            "Run history: mongo-backupd history --job nightly",
            "a mail when it recovers",
        ],
    );
    // The cause, as the object store client saw it: nothing listens at
    // the configured endpoint.
    let cause = failed
        .body
        .lines()
        .find(|l| l.starts_with("What broke:"))
        .unwrap();
    assert!(
        cause.contains(&format!("no answer from {}", server.endpoint())),
        "the endpoint is not named: {cause}"
    );
    assert!(
        cause.to_lowercase().contains("connect") || cause.to_lowercase().contains("refused"),
        "the cause is not named: {cause}"
    );
    let log = d.log();
    let logged = log
        .lines()
        .find(|l| l.contains("The copy of job \"nightly\"'s backups to storage \"offsite\""))
        .unwrap_or_else(|| panic!("no log line about the failed copy:\n{log}"));
    assert!(logged.contains("ERROR"), "{logged}");
    assert!(
        !log.contains("FAILED full backup"),
        "a failed copy is not a failed backup:\n{log}"
    );

    // Retention after that run meets the same outage: it is the copy
    // failure already mailed, not a second failure to mail about. Waited
    // for, so the server comes back only once retention has seen it down.
    wait_until(&d, &smtp, "retention to pass over the location", || {
        d.log()
            .lines()
            .any(|l| l.contains("Retention") && l.contains("\"offsite\"") && !l.contains(" INFO "))
    });
    let log = d.log();
    let skipped = log
        .lines()
        .find(|l| l.contains("Retention") && l.contains("\"offsite\""))
        .unwrap();
    assert!(
        skipped.contains(" WARN ") && skipped.contains("cannot be reached"),
        "{skipped}"
    );

    // Back up: the location shows only the backup it really holds.
    server.restart();
    assert_eq!(offsite_ids(&d), first);
    // The next run copies the new backup and the one missed.
    backup_now(&d);
    let recovered = wait_mail(
        &d,
        &smtp,
        "[mongo-backupd] RECOVERED copy to other storage of job",
    );
    assert!(
        recovered.subject.starts_with(&format!(
            "[mongo-backupd] RECOVERED copy to other storage of job \"nightly\" on {host} after "
        )),
        "{}",
        recovered.subject
    );
    assert_contains(
        &recovered.body,
        &[
            "The copy to other storage of job \"nightly\" succeeded again at",
            "1 run failed meanwhile.",
            "Job:          nightly (full)",
        ],
    );
    let all = local_ids(&d);
    assert_eq!(all.len(), 3);
    assert_eq!(offsite_ids(&d), all, "the missed backup was caught up");
    assert!(all.contains(&missed));
    // One mail for the outage and one for its end: the retention run
    // that met the same outage mailed nothing of its own.
    let mails: Vec<String> = subjects(&smtp)
        .into_iter()
        .map(|s| s.split(" of job").next().unwrap().to_string())
        .collect();
    assert_eq!(
        mails,
        [
            "[mongo-backupd] FAILED copy to other storage",
            "[mongo-backupd] RECOVERED copy to other storage"
        ],
        "{}",
        d.log()
    );
    assert!(d.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_copy_failure_is_mailed_and_caught_up() {
    let mut server = S3Server::start();
    copy_fails_alerts_and_catches_up(&mut server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_copy_failure_is_mailed_and_caught_up() {
    let mut server = Azurite::start();
    copy_fails_alerts_and_catches_up(&mut server).await;
}
