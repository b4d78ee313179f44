//! The operator interface end to end: the real daemon process, the real
//! CLI over its control socket, and a real HTTP client against its API,
//! with the test server (or MONGODB_TEST_URI) as the source.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use bson::{doc, Document};
use common::daemon::Daemon;
use mongo_testserver::harness::Target;

const WAIT: Duration = Duration::from_secs(60);

async fn seed(target: &Target, db: &str) {
    let c = common::client(&target.uri()).await;
    c.database(db)
        .collection::<Document>("c")
        .insert_many((0..50).map(|i| doc! { "_id": i, "pad": "x".repeat(100) }))
        .await
        .unwrap();
    mongo_backupd::source::close(c).await;
}

/// Every getMore of mongo-backupd waits `ms`, so a backup takes a while.
async fn slow_backups(target: &Target, ms: i32) {
    let c = common::client(&target.uri()).await;
    c.database("admin")
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": "alwaysOn",
            "data": { "failCommands": ["getMore", "find"], "blockConnection": true, "blockTimeMS": ms, "appName": "mongo-backupd" } })
        .await
        .unwrap();
    mongo_backupd::source::close(c).await;
}

async fn fast_backups(target: &Target) {
    let c = common::client(&target.uri()).await;
    let _ = c
        .database("admin")
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": "off" })
        .await;
    mongo_backupd::source::close(c).await;
}

fn config(dir: &Path, uri: &str, db: &str, schedule: &str, extra: &str) -> String {
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

[jobs.nightly]
source = "prod"
storage = "local"
kind = "full"
schedule = "{schedule}"
retention = "30d"
compression = "none"
parallel_collections = 1
include = ["{db}"]
{extra}"#,
        state = dir.join("state").display(),
        storage = dir.join("backups").display(),
    )
}

/// A seeded database and a daemon whose job `nightly` backs it up on
/// `schedule` (plus `extra` configuration).
async fn daemon(target: &Target, prefix: &str, schedule: &str, extra: &str) -> (Daemon, String) {
    let db = target.unique_db(prefix);
    seed(target, &db).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &target.uri(), &db, schedule, extra);
    (Daemon::start_in(dir, &cfg), cfg)
}

/// `mongo-backupd ARGS --socket <the daemon's socket>`.
fn ctl(d: &Daemon, args: &[&str]) -> Output {
    let socket = d.socket().display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--socket", &socket]);
    common::run(&all)
}

fn status_json(d: &Daemon) -> serde_json::Value {
    let out = ctl(d, &["status", "--json"]);
    assert!(out.status.success(), "{}", common::text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn job<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap()
}

fn complete_backups(d: &Daemon) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(d.path("backups/nightly"))
        .map(|r| {
            r.map(|e| e.unwrap().path())
                .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[tokio::test]
async fn backup_now_wait_takes_a_manual_backup_that_manual_retention_keeps() {
    let target = Target::new().unwrap();
    // Never fires during the test: everything here is on request.
    let (mut d, _) = daemon(&target, "op_manual", "0 0 1 1 *", "").await;

    let out = ctl(
        &d,
        &[
            "backup-now",
            "nightly",
            "--kind",
            "manual",
            "--note",
            "before schema migration",
            "--wait",
        ],
    );
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", d.log());
    assert!(text.contains("Backup of job \"nightly\""), "{text}");
    assert!(text.contains("complete"), "{text}");

    let backups = complete_backups(&d);
    assert_eq!(backups.len(), 1, "{backups:?}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backups[0].join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["kind"], "manual");
    assert_eq!(manifest["note"], "before schema migration");
    let who = manifest["requested_by"].as_str().unwrap();
    assert!(
        who.contains("(uid ") && who.ends_with("via socket"),
        "{who}"
    );

    let config_path = d.path("config.toml").display().to_string();
    let list = common::run(&["list", "--config", &config_path]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains("manual"), "{listed}");

    // With no --config, `history` asks the running daemon which file it
    // uses (here through MONGO_BACKUPD_SOCKET).
    let history = common::bin()
        .args(["history"])
        .env_remove("MONGO_BACKUPD_CONFIG")
        .env("MONGO_BACKUPD_SOCKET", d.socket())
        .output()
        .unwrap();
    let history = common::text(&history);
    assert!(history.contains("nightly  manual  success"), "{history}");

    // Retention: a 40-day-old manual backup of a job whose fulls are kept
    // 30 days is kept (manual backups: 90 days); a 40-day-old full is not.
    let full = common::run(&["backup", "--config", &config_path, "--job", "nightly"]);
    assert!(full.status.success(), "{}", common::text(&full));
    let newest_full = complete_backups(&d)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with("-full"))
        .unwrap();
    let old_manual = common::aged_copy(&backups[0], 40);
    let old_full = common::aged_copy(&newest_full, 41);
    let plan = common::run(&["prune", "--dry-run", "--config", &config_path]);
    let plan = String::from_utf8_lossy(&plan.stdout).into_owned();
    let line = |id: &str| {
        plan.lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id} not in {plan}"))
            .to_string()
    };
    assert!(line(&old_manual).contains("KEEP"), "{plan}");
    assert!(line(&old_manual).contains("retention 90d"), "{plan}");
    assert!(line(&old_full).contains("DELETE"), "{plan}");
    assert!(d.stop().success());
}

#[tokio::test]
async fn backup_now_on_a_running_job_reports_that_it_runs() {
    let target = Target::new().unwrap();
    let (mut d, _) = daemon(&target, "op_busy", "0 0 1 1 *", "").await;
    slow_backups(&target, 1500).await;

    let first = ctl(&d, &["backup-now", "nightly"]);
    assert_eq!(first.status.code(), Some(0), "{}", common::text(&first));
    let second = ctl(&d, &["backup-now", "nightly"]);
    let text = common::text(&second);
    assert_eq!(second.status.code(), Some(75), "{text}");
    assert!(
        text.contains("job \"nightly\" is already running (run 1"),
        "{text}"
    );

    let running = status_json(&d);
    let j = job(&running, "nightly");
    assert!(
        matches!(j["activity"].as_str(), Some("running" | "queued")),
        "{j}"
    );
    assert_eq!(j["run"]["id"], 1);

    fast_backups(&target).await;
    d.wait_for("the backup to finish", WAIT, |d| {
        job(&status_json(d), "nightly")["activity"] == "idle"
    });
    assert!(d.stop().success());
}

#[tokio::test]
async fn status_json_matches_what_is_on_disk() {
    let target = Target::new().unwrap();
    let (mut d, _) = daemon(&target, "op_status", "0 0 1 1 *", "").await;
    for _ in 0..2 {
        let out = ctl(&d, &["backup-now", "nightly", "--wait"]);
        assert!(out.status.success(), "{}", common::text(&out));
    }
    let status = status_json(&d);
    assert_eq!(status["pid"], d.child.as_ref().unwrap().id());
    assert_eq!(
        status["config_file"],
        d.path("config.toml").display().to_string()
    );
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    let j = job(&status, "nightly");
    let on_disk = complete_backups(&d);
    assert_eq!(j["backup_count"], on_disk.len() as u64);
    let bytes: u64 = on_disk
        .iter()
        .map(|p| {
            let m: serde_json::Value =
                serde_json::from_slice(&std::fs::read(p.join("manifest.json")).unwrap()).unwrap();
            m["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["size"].as_u64().unwrap())
                .sum::<u64>()
        })
        .sum();
    assert_eq!(j["total_bytes"], bytes);
    assert_eq!(j["last_result"], "success");
    assert_eq!(j["runs_succeeded"], 2);
    assert_eq!(j["activity"], "idle");
    assert_eq!(j["paused"], false);
    assert!(
        j["next_fire"].as_str().unwrap().contains("-01-01T00:00:00"),
        "{j}"
    );
    assert!(j["last_success_at"].is_string());
    assert!(d.stop().success());
}

#[tokio::test]
async fn a_paused_job_stays_paused_across_a_restart() {
    let target = Target::new().unwrap();
    let (mut d, cfg) = daemon(&target, "op_pause", "* * * * * *", "").await;
    d.wait_for("a scheduled backup", WAIT, |d| {
        !complete_backups(d).is_empty()
    });

    let out = ctl(&d, &["pause", "nightly"]);
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Job \"nightly\" is now paused."));
    d.wait_for("the running backup to end", WAIT, |d| {
        job(&status_json(d), "nightly")["activity"] == "paused"
    });
    assert!(d.stop().success());
    let before = complete_backups(&d).len();

    let dir = std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap());
    drop(d);
    let mut again = Daemon::start_in(dir, &cfg);
    let status = status_json(&again);
    let j = job(&status, "nightly");
    assert_eq!(j["paused"], true, "{j}");
    assert_eq!(j["activity"], "paused");
    assert!(j["next_fire"].is_null(), "{j}");
    assert!(
        again.log().contains("Job \"nightly\" is paused"),
        "{}",
        again.log()
    );
    // Still paused after several scheduled seconds: the log shows the
    // loop ran (the status answers come from it), and nothing started.
    for _ in 0..3 {
        let s = status_json(&again);
        assert_eq!(job(&s, "nightly")["activity"], "paused");
    }
    assert_eq!(complete_backups(&again).len(), before);

    let out = ctl(&again, &["resume", "nightly"]);
    assert!(out.status.success(), "{}", common::text(&out));
    again.wait_for("backups again after resume", WAIT, |d| {
        complete_backups(d).len() > before
    });
    assert!(again.stop().success());
    let log = again.log();
    assert!(log.contains("was resumed by"), "{log}");
    let history = std::fs::read_to_string(again.path("state/history.jsonl")).unwrap();
    assert!(
        history.contains("\"kind\":\"pause\"") && history.contains("scheduling paused by"),
        "the pause is in the audit trail: {history}"
    );
    assert!(history.contains("\"kind\":\"resume\""), "{history}");
}

#[tokio::test]
async fn a_stopped_daemon_and_a_forbidden_socket_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.sock").display().to_string();
    let out = common::run(&["status", "--socket", &missing]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(69), "{text}");
    assert!(text.contains("the daemon is not running"), "{text}");

    let target = Target::new().unwrap();
    let cfg = config(dir.path(), &target.uri(), "db", "0 0 1 1 *", "");
    let mut d = Daemon::start_in(dir, &cfg);
    // As an unprivileged user the 0660 root-owned socket is off limits.
    if nix::unistd::Uid::effective().is_root() {
        let socket = d.socket().display().to_string();
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_mongo-backupd"))
            .args(["status", "--socket", &socket])
            .output();
        match out {
            Ok(out) if out.status.code() != Some(126) && out.status.code() != Some(127) => {
                let text = common::text(&out);
                assert_eq!(out.status.code(), Some(77), "{text}");
                assert!(text.contains("permission denied on"), "{text}");
                assert!(text.contains("control_group"), "{text}");
            }
            other => eprintln!("setpriv cannot run the binary as nobody here ({other:?}); the permission case is covered by the control module's tests"),
        }
    } else {
        eprintln!("not root: the permission case is covered by the control module's tests");
    }
    assert!(d.stop().success());
}

async fn http_daemon(target: &Target, db: &str) -> (Daemon, String, reqwest::Client) {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tokens = dir.path().join("api-tokens");
    std::fs::write(&tokens, "ops 0123456789abcdef0123456789abcdef\n").unwrap();
    let extra = format!(
        "\n[http]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"{}\"\nmutations_per_minute = 3\n",
        tokens.display()
    );
    let cfg = config(dir.path(), &target.uri(), db, "0 0 1 1 *", &extra);
    let d = Daemon::start_in(dir, &cfg);
    (
        d,
        format!("http://127.0.0.1:{port}"),
        reqwest::Client::new(),
    )
}

const TOKEN: &str = "Bearer 0123456789abcdef0123456789abcdef";

fn metric(text: &str, name: &str, job: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(&format!("job=\"{job}\"")))
        .filter(|l| !l.contains("result=\"failed\""))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn a_manual_backup_over_http_completes_is_audited_and_moves_the_metrics() {
    let target = Target::new().unwrap();
    let db = target.unique_db("op_http");
    seed(&target, &db).await;
    let (mut d, base, http) = http_daemon(&target, &db).await;

    let unauthorized = http
        .get(format!("{base}/api/v1/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let before = http
        .get(format!("{base}/metrics"))
        .header("Authorization", TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&before, "mongo_backupd_backups_stored", "nightly").unwrap_or(0.0),
        0.0,
        "{before}"
    );

    let started = http
        .post(format!("{base}/api/v1/jobs/nightly/backup"))
        .header("Authorization", TOKEN)
        .json(&serde_json::json!({ "manual": true, "note": "via the API" }))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let body: serde_json::Value = started.json().await.unwrap();
    let id = body["run_id"].as_u64().unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let run = loop {
        let r: serde_json::Value = http
            .get(format!("{base}/api/v1/runs/{id}"))
            .header("Authorization", TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["state"] != "queued" && r["state"] != "running" {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "{r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run["state"], "success", "{run}\n{}", d.log());
    assert_eq!(run["requested_by"], "token \"ops\" via http");
    assert_eq!(run["note"], "via the API");

    let after = http
        .get(format!("{base}/metrics"))
        .header("Authorization", TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&after, "mongo_backupd_backups_stored", "nightly"),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        metric(&after, "mongo_backupd_runs_total", "nightly"),
        Some(1.0),
        "{after}"
    );
    assert!(
        metric(
            &after,
            "mongo_backupd_last_success_timestamp_seconds",
            "nightly"
        )
        .is_some(),
        "{after}"
    );
    assert!(
        !before.contains("mongo_backupd_last_success_timestamp_seconds{job=\"nightly\""),
        "{before}"
    );

    // Audited: in the log with the token's name, and in the history.
    assert!(d.log().contains("Token \"ops\""), "{}", d.log());
    let history = std::fs::read_to_string(d.path("state/history.jsonl")).unwrap();
    assert!(history.contains("token \\\"ops\\\" via http"), "{history}");

    // The rate limit: three mutations a minute, then 429.
    let mut codes = Vec::new();
    for _ in 0..3 {
        let r = http
            .post(format!("{base}/api/v1/jobs/nightly/pause"))
            .header("Authorization", TOKEN)
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(
        codes,
        vec![200, 200, 429],
        "the backup was the first of three"
    );
    assert!(d.stop().success());
}
