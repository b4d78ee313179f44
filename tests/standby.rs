//! Standby sync: while a writer keeps changing the source, incrementals
//! are taken every few seconds and `standby-sync` applies each one; after
//! every sync the standby equals the source as of the position its marker
//! records (the source's state at that instant is rebuilt from the
//! server's own oplog, independently of the restore code). Then the
//! standby's chain is removed under it: the daemon, started by the next
//! backup, seeds it again from the new full, mails on-call, and shows the
//! standby's position and lag in its status.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bson::{doc, Document, Timestamp};
use common::daemon::Daemon;
use common::smtp::{SmtpOptions, SmtpServer};
use common::{client, run, snapshot, state_at, text};
use mongo_testserver::harness::Target;

/// Standby databases carry this prefix, so the standby can live on the
/// source's own server (the only one there is with MONGODB_TEST_URI).
const PREFIX: &str = "sb_";

fn config(dir: &Path, uri: &str, db: &str, smtp_port: u16) -> String {
    format!(
        r#"[daemon]
state_dir = "{state}"

[sources.prod]
uri = "{uri}"

[sources.standby]
uri = "{uri}"

[storage.local]
type = "local"
path = "{storage}"

[alerts.email]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "mongo-backupd <backups@example.com>"
to = ["oncall@example.com"]
timeout = "5s"
retry_max_interval = "2s"

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

[jobs.follow]
kind = "standby"
from = "hourly"
target = "standby"
prefix = "{PREFIX}"
schedule = "0 0 1 1 *"
"#,
        state = dir.join("state").display(),
        storage = dir.join("backups").display(),
    )
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    let said = text(&out);
    assert!(out.status.success(), "{args:?}:\n{said}");
    said
}

/// The position the standby's marker records.
async fn marker(uri: &str) -> Document {
    client(uri)
        .await
        .database(&format!("{PREFIX}mongo_backupd"))
        .collection::<Document>("standby")
        .find_one(doc! { "_id": "follow" })
        .await
        .unwrap()
        .expect("a marker document")
}

/// A writer that inserts, updates and deletes until stopped.
fn start_writer(uri: String, db: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let c = client(&uri).await;
        let orders = c.database(&db).collection::<Document>("orders");
        let mut i: i64 = 1_000;
        while !stop.load(Ordering::Relaxed) {
            orders
                .insert_one(doc! { "_id": i, "state": "new", "n": i })
                .await
                .unwrap();
            orders
                .update_one(
                    doc! { "_id": i - 3 },
                    doc! { "$set": { "state": "paid" }, "$inc": { "n": 1 } },
                )
                .await
                .unwrap();
            if i % 4 == 0 {
                orders.delete_one(doc! { "_id": i - 7 }).await.unwrap();
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        u64::try_from(i - 1_000).unwrap()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_standby_follows_each_incremental_and_is_reseeded_with_an_alert_when_its_chain_breaks()
{
    let source = Target::new().unwrap();
    let db = source.unique_db("sbsrc");
    let uri = source.uri();
    let c = client(&uri).await;
    c.database(&db)
        .collection::<Document>("orders")
        .insert_many((0..300).map(|i| doc! { "_id": i as i64, "state": "old", "n": i as i64 }))
        .await
        .unwrap();
    c.database(&db)
        .collection::<Document>("orders")
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! { "state": 1 })
                .build(),
        )
        .await
        .unwrap();
    let smtp = SmtpServer::start(SmtpOptions::plain());
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("state")).unwrap();
    let text_cfg = config(tmp.path(), &uri, &db, smtp.port());
    let cfg_path = tmp.path().join("config.toml");
    std::fs::write(
        &cfg_path,
        common::daemon::with_control_socket(&text_cfg, tmp.path()),
    )
    .unwrap();
    let cfg = cfg_path.display().to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = start_writer(uri.clone(), db.clone(), stop.clone());
    ok(&["backup", "--config", &cfg, "--job", "nightly"]);
    let said = ok(&["standby-sync", "--config", &cfg, "--job", "follow"]);
    assert!(said.contains("Standby \"follow\" is at backup"), "{said}");
    let mut positions: Vec<Timestamp> = Vec::new();
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        ok(&["backup", "--config", &cfg, "--job", "hourly"]);
        let said = ok(&["standby-sync", "--config", &cfg, "--job", "follow"]);
        assert!(said.contains("applied: "), "round {round}: {said}");
        let m = marker(&uri).await;
        let at = m.get_timestamp("position").unwrap();
        let backup_id = m.get_str("backup_id").unwrap().to_string();
        assert!(
            tmp.path().join("backups/hourly").join(&backup_id).is_dir(),
            "the marker names incremental {backup_id}"
        );
        let scratch = source.unique_db("sbexp");
        let expected = state_at(&c, &db, &scratch, at).await;
        c.database(&scratch).drop().await.unwrap();
        let standby = snapshot(&c.database(&format!("{PREFIX}{db}"))).await;
        assert_eq!(
            standby, expected,
            "round {round}: the standby differs from the source as of {at:?}"
        );
        positions.push(at);
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(written > 20, "the writer wrote {written} rounds");
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");

    // The chain the standby stands on disappears (as if retention or an
    // operator removed it); a new full is taken by the daemon, which then
    // syncs the standby on its own and must seed it again, with a mail.
    for job in ["nightly", "hourly"] {
        std::fs::remove_dir_all(tmp.path().join("backups").join(job)).unwrap();
    }
    let d = Daemon::start_in(tmp, &text_cfg);
    let socket = d.socket().display().to_string();
    let out = run(&["backup-now", "nightly", "--wait", "--socket", &socket]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), d.log());
    let mail = smtp.wait_for_mail(
        |m| m.subject.contains("STANDBY RE-SEEDED: job \"follow\""),
        Duration::from_secs(60),
        || d.log(),
    );
    assert!(mail.body.contains("is gone"), "{}", mail.body);
    assert!(
        mail.body.contains("seeded again from full backup"),
        "{}",
        mail.body
    );
    let new_full = std::fs::read_dir(d.path("backups/nightly"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| !n.starts_with('.'))
        .unwrap();
    assert!(mail.body.contains(&new_full), "{}", mail.body);
    let m = marker(&uri).await;
    assert_eq!(m.get_str("backup_id").unwrap(), new_full);
    assert_eq!(m.get_str("seeded_from").unwrap(), new_full);
    // The writer stopped: the standby now equals the source.
    let standby = snapshot(&c.database(&format!("{PREFIX}{db}"))).await;
    assert_eq!(standby, snapshot(&c.database(&db)).await);
    let out = run(&["status", "--json", "--socket", &socket]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let follow = status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "follow")
        .unwrap()
        .clone();
    assert_eq!(
        follow["standby"]["backup_id"],
        new_full.as_str(),
        "{follow}"
    );
    assert!(
        follow["standby"]["lag_secs"].as_f64().unwrap() >= 0.0,
        "{follow}"
    );

    if source.is_external() {
        for name in [
            db.clone(),
            format!("{PREFIX}{db}"),
            format!("{PREFIX}mongo_backupd"),
        ] {
            c.database(&name).drop().await.unwrap();
        }
    }
}

/// A real oplog gap: the source's oplog rolls past the standby's chain,
/// the incremental fails with the gap, the daemon starts a full (a new
/// chain that cannot continue the old one), and the standby, synced after
/// that full, is seeded again from it with a mail naming the broken chain.
#[tokio::test(flavor = "multi_thread")]
async fn an_oplog_gap_reseeds_the_standby_from_the_new_full_and_alerts() {
    let target = Target::new().unwrap();
    if target.is_external() {
        // A real server's oplog cannot be made to roll over in a test.
        return mongo_testserver::harness::skip_external(
            "an_oplog_gap_reseeds_the_standby_from_the_new_full_and_alerts",
        );
    }
    let server = mongo_testserver::TestServer::builder()
        .oplog_max_bytes(64 * 1024)
        .start()
        .unwrap();
    let uri = server.uri();
    let db = "gapped";
    let c = client(&uri).await;
    let coll = c.database(db).collection::<Document>("c");
    coll.insert_many((0..50).map(|i| doc! { "_id": i, "v": 0 }))
        .await
        .unwrap();
    let smtp = SmtpServer::start(SmtpOptions::plain());
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("state")).unwrap();
    let text_cfg = config(tmp.path(), &uri, db, smtp.port());
    let cfg_path = tmp.path().join("config.toml");
    std::fs::write(
        &cfg_path,
        common::daemon::with_control_socket(&text_cfg, tmp.path()),
    )
    .unwrap();
    let cfg = cfg_path.display().to_string();
    ok(&["backup", "--config", &cfg, "--job", "nightly"]);
    ok(&["standby-sync", "--config", &cfg, "--job", "follow"]);
    let first = marker(&uri).await;

    // More writes than the whole oplog holds.
    let pad = "z".repeat(1000);
    for i in 100..300 {
        coll.insert_one(doc! { "_id": i, "pad": pad.clone() })
            .await
            .unwrap();
    }
    let d = Daemon::start_in(tmp, &text_cfg);
    let socket = d.socket().display().to_string();
    let out = run(&["backup-now", "hourly", "--wait", "--socket", &socket]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "the incremental must find the gap"
    );
    let mail = smtp.wait_for_mail(
        |m| m.subject.contains("STANDBY RE-SEEDED: job \"follow\""),
        Duration::from_secs(90),
        || d.log(),
    );
    assert!(mail.body.contains("does not continue it"), "{}", mail.body);
    let m = marker(&uri).await;
    assert_ne!(
        m.get_str("seeded_from").unwrap(),
        first.get_str("seeded_from").unwrap()
    );
    let standby = snapshot(&c.database(&format!("{PREFIX}{db}"))).await;
    assert_eq!(
        standby,
        snapshot(&c.database(db)).await,
        "the standby holds the new full"
    );
}
