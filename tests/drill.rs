//! Restore drills through the real CLI (`mongo-backupd drill --job`):
//! a drill of good backups passes and is recorded in the backup's
//! manifest; it touches no database outside its prefix even on the
//! source's own server; a data file damaged after its checksum was
//! written (the manifest rewritten to match) fails the drill; an
//! unreachable target fails it with the cause. The daemon test at the
//! end shows the failure mail and `last_verified` in the status.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bson::{doc, Document};
use common::daemon::Daemon;
use common::smtp::{SmtpOptions, SmtpServer};
use common::{client, populate, run, snapshot, text, Snapshot};
use mongo_testserver::harness::Target;
use sha2::{Digest, Sha256};

/// The configuration: `prod` and `scratch` are the same server, so the
/// drill's databases sit next to the source's.
fn config(dir: &Path, uri: &str, db: &str, scratch: &str, drill_extra: &str) -> String {
    format!(
        r#"[daemon]
state_dir = "{state}"

[sources.prod]
uri = "{uri}"

[sources.scratch]
uri = "{scratch}"
connect_timeout = "2s"

[storage.local]
type = "local"
path = "{storage}"

[jobs.nightly]
source = "prod"
storage = "local"
kind = "full"
schedule = "0 0 1 1 *"
compression = "none"
include = ["{db}"]

[jobs.hourly]
source = "prod"
storage = "local"
kind = "incremental"
schedule = "0 0 1 1 *"
compression = "none"
include = ["{db}"]

[jobs.check]
kind = "drill"
from = "hourly"
target = "scratch"
schedule = "0 0 1 1 *"
sample = 1000
{drill_extra}
"#,
        state = dir.join("state").display(),
        storage = dir.join("backups").display(),
    )
}

fn write_config(dir: &Path, text: &str) -> String {
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn backup(cfg: &str, job: &str) {
    let out = run(&["backup", "--config", cfg, "--job", job]);
    assert!(out.status.success(), "{}", text(&out));
}

/// Every database of the server with its full contents, except the
/// drill's (prefixed) ones, which are returned by name only.
async fn server_state(uri: &str, ours: &[&str]) -> (BTreeMap<String, Snapshot>, Vec<String>) {
    let c = client(uri).await;
    let names = c.list_database_names().await.unwrap();
    let mut state = BTreeMap::new();
    let mut drill_dbs = Vec::new();
    for name in names {
        if name.starts_with("drill_") {
            drill_dbs.push(name);
        } else if ours.contains(&name.as_str()) {
            state.insert(name.clone(), snapshot(&c.database(&name)).await);
        }
    }
    (state, drill_dbs)
}

/// The backup directories of `job`, oldest first.
fn backups_of(dir: &Path, job: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir.join("backups").join(job))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn manifest(backup: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap()
}

/// Drops the last document of `rel` in `backup` and rewrites the
/// manifest's size and checksum to match: damage that checksums alone can
/// no longer see.
fn drop_last_document(backup: &Path, rel: &str) {
    let path = backup.join(rel);
    let bytes = std::fs::read(&path).unwrap();
    let mut offsets = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        offsets.push(at);
        at += u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    }
    let cut = *offsets.last().unwrap();
    std::fs::write(&path, &bytes[..cut]).unwrap();
    let mut m = manifest(backup);
    for f in m["files"].as_array_mut().unwrap() {
        if f["path"] == rel {
            f["size"] = (cut as u64).into();
            f["sha256"] = hex::encode(Sha256::digest(&bytes[..cut])).into();
        }
    }
    std::fs::write(
        backup.join("manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
}

async fn next_second() {
    let s = chrono::Utc::now().timestamp();
    while chrono::Utc::now().timestamp() == s {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drill_passes_on_good_backups_stays_in_its_prefix_and_fails_on_damage() {
    let source = Target::new().unwrap();
    let db = source.unique_db("drilled");
    let keep = source.unique_db("keep");
    let c = client(&source.uri()).await;
    populate(&c, &db).await;
    // A database the drill must not touch, with a collection named like
    // one of the drilled ones.
    c.database(&keep)
        .collection::<Document>("items")
        .insert_one(doc! { "_id": 1, "mine": true })
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(
        tmp.path(),
        &config(tmp.path(), &source.uri(), &db, &source.uri(), ""),
    );
    backup(&cfg, "nightly");
    // Changes after the full: the drill's instant is the incremental's end.
    next_second().await;
    let items = c.database(&db).collection::<Document>("items");
    items
        .update_many(doc! {}, doc! { "$set": { "drilled": true } })
        .await
        .unwrap();
    items.delete_one(doc! {}).await.unwrap();
    items
        .insert_one(doc! { "_id": "late", "v": 1 })
        .await
        .unwrap();
    next_second().await;
    backup(&cfg, "hourly");
    let ours = [db.as_str(), keep.as_str()];
    let (before, leftovers) = server_state(&source.uri(), &ours).await;
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let out = run(&["drill", "--config", &cfg, "--job", "check"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("Drill \"check\" passed"), "{said}");
    assert!(
        said.contains("sampled documents identical to the backup: "),
        "{said}"
    );
    let (after, leftovers) = server_state(&source.uri(), &ours).await;
    assert_eq!(after, before, "databases outside the prefix changed");
    assert!(leftovers.is_empty(), "the drill left {leftovers:?}");
    // The incremental it restored to records the drill.
    let newest = backups_of(tmp.path(), "hourly").pop().unwrap();
    let record = &manifest(&newest)["drills"][0];
    assert_eq!(record["job"], "check", "{record}");
    assert_eq!(record["target"], "scratch");
    let documents = record["documents"].as_u64().unwrap();
    // Every document of the source (which has not changed since the
    // incremental) was counted on the drill's side.
    let in_source: u64 = before[&db]
        .values()
        .map(|(_, _, docs)| docs.len() as u64)
        .sum();
    assert_eq!(documents, in_source, "{record}");
    assert!(record["sampled"].as_u64().unwrap() > 0, "{record}");
    let listed = text(&run(&["list", "--config", &cfg, "--job", "hourly"]));
    assert!(listed.contains("complete, drill passed 20"), "{listed}");

    // A random instant inside the covered window passes too.
    let cfg = write_config(
        tmp.path(),
        &config(
            tmp.path(),
            &source.uri(),
            &db,
            &source.uri(),
            "point = \"random\"\nprefix = \"drill_r_\"",
        ),
    );
    let out = run(&["drill", "--config", &cfg, "--job", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Damage after the checksum was written: the last document of a data
    // file is cut off and the manifest made to match.
    let full = backups_of(tmp.path(), "nightly").pop().unwrap();
    let rel = format!("{db}/items.bson");
    drop_last_document(&full, &rel);
    let out = run(&["drill", "--config", &cfg, "--job", "check"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(65), "{said}");
    assert!(said.contains("does not match what it holds"), "{said}");
    assert!(said.contains(&format!("{rel} of backup")), "{said}");
    assert!(said.contains("but its manifest recorded"), "{said}");
    assert!(said.contains("take a new full backup"), "{said}");
    let (after, leftovers) = server_state(&source.uri(), &ours).await;
    assert_eq!(after, before, "a failed drill changed other databases");
    assert!(leftovers.is_empty(), "a failed drill left {leftovers:?}");

    // An unreachable target: the cause, and "try again later".
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let cfg = write_config(
        tmp.path(),
        &config(
            tmp.path(),
            &source.uri(),
            &db,
            &format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
            "",
        ),
    );
    std::fs::remove_dir_all(&full).unwrap();
    let out = run(&["drill", "--config", &cfg, "--job", "check"]);
    let said = text(&out);
    // With the full gone there is nothing to restore: say so first.
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("there is nothing to drill for job \"hourly\""),
        "{said}"
    );
    backup(&cfg, "nightly");
    let out = run(&["drill", "--config", &cfg, "--job", "check"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(75), "{said}");
    assert!(
        said.contains("the drill target \"scratch\" cannot be used"),
        "{said}"
    );
    assert!(said.contains(&format!("127.0.0.1:{port}")), "{said}");

    if source.is_external() {
        c.database(&db).drop().await.unwrap();
        c.database(&keep).drop().await.unwrap();
    }
}

/// The daemon runs the drill: a pass shows as `last_verified` of the
/// drilled job in the status and metrics-ready JSON; a failure is mailed
/// to on-call with what broke and what to do, and both are in the history.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_records_drills_and_mails_a_failed_one() {
    let source = Target::new().unwrap();
    let db = source.unique_db("drilld");
    let c = client(&source.uri()).await;
    c.database(&db)
        .collection::<Document>("orders")
        .insert_many((0..200).map(|i| doc! { "_id": i, "total": i * 3 }))
        .await
        .unwrap();
    let smtp = SmtpServer::start(SmtpOptions::plain());
    let tmp = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let unreachable = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    let mail_cfg = format!(
        r#"
[alerts.email]
host = "127.0.0.1"
port = {port}
tls = "none"
from = "mongo-backupd <backups@example.com>"
to = ["oncall@example.com"]
timeout = "5s"
retry_max_interval = "2s"
"#,
        port = smtp.port()
    );
    let down_cfg = config(tmp.path(), &source.uri(), &db, &unreachable, "") + &mail_cfg;
    let text_cfg = config(tmp.path(), &source.uri(), &db, &source.uri(), "") + &mail_cfg;
    std::fs::create_dir_all(tmp.path().join("state")).unwrap();
    let d = Daemon::start_in(tmp, &down_cfg);
    let ctl = |args: &[&str]| {
        let socket = d.socket().display().to_string();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--socket", &socket]);
        run(&all)
    };
    let mail_with = |subject: &str| {
        smtp.wait_for_mail(
            |m| m.subject.contains(subject),
            Duration::from_secs(60),
            || d.log(),
        )
    };
    let out = ctl(&["backup-now", "nightly", "--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), d.log());

    // The scratch server is down: the drill fails and on-call hears why.
    let out = ctl(&["backup-now", "check", "--wait"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let mail = mail_with("FAILED restore drill of job \"check\"");
    assert!(
        mail.body
            .contains("the drill target \"scratch\" cannot be used"),
        "{}",
        mail.body
    );
    assert!(
        mail.body.contains(&format!("127.0.0.1:{port}")),
        "{}",
        mail.body
    );
    assert!(
        mail.body
            .contains("Check that the drill's target MongoDB is running"),
        "{}",
        mail.body
    );

    // Pointed at a server that answers (reload), the drill passes and the
    // failure is over.
    d.write_config(&text_cfg);
    d.signal("-HUP");
    d.expect_notify("RELOADING=1");
    d.expect_notify("READY=1");
    let out = ctl(&["backup-now", "check", "--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), d.log());
    mail_with("RECOVERED restore drill of job \"check\"");
    let out = ctl(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let job = |name: &str| {
        status["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .unwrap()
            .clone()
    };
    assert!(job("hourly")["last_verified"].is_string(), "{status}");
    assert_eq!(job("check")["kind"], "drill");
    assert_eq!(job("check")["last_result"], "success");

    let full = {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(d.path("backups/nightly"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        dirs.pop().unwrap()
    };
    drop_last_document(&full, &format!("{db}/orders.bson"));
    let out = ctl(&["backup-now", "check", "--wait"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let mail = smtp.wait_for_mail(
        |m| {
            m.subject.contains("FAILED restore drill of job \"check\"")
                && m.body.contains("does not match what it holds")
        },
        Duration::from_secs(60),
        || d.log(),
    );
    assert!(
        mail.body
            .contains("holds 199 documents, but its manifest recorded 200"),
        "{}",
        mail.body
    );
    assert!(
        mail.body
            .contains("the backup the drill restored: do not count on it"),
        "{}",
        mail.body
    );
    assert!(
        mail.body.contains("take a new full backup now"),
        "{}",
        mail.body
    );
    let config_path = d.path("config.toml").display().to_string();
    let history = run(&["history", "--config", &config_path, "--job", "check"]);
    let said = text(&history);
    assert!(said.contains("drill"), "{said}");
    assert!(
        said.contains("failed") && said.contains("success"),
        "{said}"
    );
    // Nothing of the drill is left on the target.
    let names = c.list_database_names().await.unwrap();
    assert!(!names.iter().any(|n| n.starts_with("drill_")), "{names:?}");
    if source.is_external() {
        c.database(&db).drop().await.unwrap();
    }
}
