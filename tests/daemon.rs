//! The daemon as systemd runs it: the real binary with a seconds-level
//! schedule against the test server (or MONGODB_TEST_URI), real signals,
//! and a notification socket standing in for systemd.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::time::Duration;

use bson::{doc, Document};
use common::client;
use common::daemon::Daemon;
use mongo_testserver::harness::Target;

fn config_text(dir: &Path, uri: &str, db: &str, schedule: &str, grace: &str) -> String {
    format!(
        r#"[daemon]
state_dir = "{state}"
shutdown_grace = "{grace}"

[sources.prod]
uri = "{uri}"

[storage.local]
type = "local"
path = "{storage}"

[jobs.fast]
source = "prod"
storage = "local"
kind = "full"
schedule = "{schedule}"
compression = "none"
include = ["{db}"]
"#,
        state = dir.join("state").display(),
        storage = dir.join("backups").display(),
    )
}

async fn seed(target: &Target, db: &str, n: i32) {
    client(&target.uri())
        .await
        .database(db)
        .collection::<Document>("c")
        .insert_many((0..n).map(|i| doc! { "_id": i, "pad": "x".repeat(50) }))
        .await
        .unwrap();
}

/// Makes every getMore of mongo-backupd wait, so a backup takes a while.
async fn slow_backups(target: &Target, ms: i32) {
    client(&target.uri())
        .await
        .database("admin")
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": "alwaysOn",
            "data": { "failCommands": ["getMore"], "blockConnection": true, "blockTimeMS": ms, "appName": "mongo-backupd" } })
        .await
        .unwrap();
}

async fn fast_backups(target: &Target) {
    let _ = client(&target.uri())
        .await
        .database("admin")
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": "off" })
        .await;
}

#[tokio::test]
async fn backups_happen_on_schedule_and_sigterm_stops_cleanly() {
    let target = Target::new().unwrap();
    let db = target.unique_db("daemon_sched");
    seed(&target, &db, 10).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let cfg = config_text(dir.path(), &target.uri(), &db, "* * * * * *", "10s");
    let mut d = Daemon::start_in(dir, &cfg);
    d.wait_for("two scheduled backups", Duration::from_secs(30), |d| {
        d.backups().0 >= 2
    });
    // A setting that cannot change live is named, and the rest applies.
    d.write_config(&cfg.replace("/state\"", "/state2\""));
    d.signal("-HUP");
    d.expect_notify("RELOADING=1");
    d.expect_notify("READY=1");
    let status = d.stop();
    assert!(status.success(), "{status:?}\n{}", d.log());
    let log = d.log();
    assert!(
        log.contains("Backup completed") && log.contains("job=fast"),
        "{log}"
    );
    assert!(
        log.contains("These settings changed but only take effect after a restart"),
        "state_dir is not live: {log}"
    );
    d.write_config(&cfg); // the history lives in the first state_dir
    let history = common::run(&[
        "history",
        "--config",
        &d.path("config.toml").display().to_string(),
    ]);
    assert!(
        String::from_utf8_lossy(&history.stdout)
            .matches("success")
            .count()
            >= 2,
        "{}",
        common::text(&history)
    );
}

#[tokio::test]
async fn sighup_applies_a_new_schedule_and_keeps_the_old_one_on_errors() {
    let target = Target::new().unwrap();
    let db = target.unique_db("daemon_reload");
    seed(&target, &db, 10).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let every_second = config_text(dir.path(), &target.uri(), &db, "* * * * * *", "10s");
    let mut d = Daemon::start_in(dir, &every_second);
    d.wait_for("a first backup", Duration::from_secs(30), |d| {
        d.backups().0 >= 1
    });
    let broken = every_second
        .replace("* * * * * *", "0 25 * * *")
        .replace("compression", "compresion");
    d.write_config(&broken);
    d.signal("-HUP");
    d.expect_notify("RELOADING=1");
    d.expect_notify("READY=1");
    let log = d.log();
    assert!(
        log.contains("jobs.fast.schedule") && log.contains("hour 25"),
        "{log}"
    );
    assert!(log.contains("compresion"), "every error is logged: {log}");
    assert!(
        log.contains("still running the previous configuration"),
        "{log}"
    );
    let before = d.backups().0;
    d.wait_for(
        "the old schedule to keep running",
        Duration::from_secs(30),
        |d| d.backups().0 > before,
    );
    // A valid change applies: from now on the backups are gzip.
    d.write_config(&every_second.replace("compression = \"none\"", "compression = \"gzip\""));
    d.signal("-HUP");
    d.expect_notify("RELOADING=1");
    d.expect_notify("READY=1");
    assert!(d.log().contains("changed: fast"), "{}", d.log());
    let gzip = |d: &Daemon| {
        std::fs::read_dir(d.path("backups/fast")).unwrap().any(|e| {
            let p = e.unwrap().path();
            p.join(&db).join("c.bson.gz").is_file()
        })
    };
    d.wait_for(
        "a backup with the new settings",
        Duration::from_secs(30),
        gzip,
    );
    assert!(d.stop().success());
}

#[tokio::test]
async fn sigterm_mid_backup_cancels_after_the_grace_period_and_leaves_nothing() {
    let target = Target::new().unwrap();
    let db = target.unique_db("daemon_term");
    seed(&target, &db, 5000).await;
    slow_backups(&target, 400).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let cfg = config_text(dir.path(), &target.uri(), &db, "* * * * * *", "1s");
    let mut d = Daemon::start_in(dir, &cfg);
    d.wait_for("a backup in progress", Duration::from_secs(30), |d| {
        d.backups().1
    });
    let status = d.stop();
    fast_backups(&target).await;
    assert!(status.success(), "{status:?}\n{}", d.log());
    assert_eq!(
        d.backups(),
        (0, false),
        "no partial and no complete backup\n{}",
        d.log()
    );
    let log = d.log();
    assert!(log.contains("grace period is over"), "{log}");
    assert!(log.contains("was cancelled before it completed"), "{log}");
    assert!(
        log.contains("Backup ended without completing (cancelled)")
            && log.contains("result=\"cancelled\""),
        "every run logs its end and result: {log}"
    );
}

#[tokio::test]
async fn an_overlapping_fire_is_skipped_and_logged() {
    let target = Target::new().unwrap();
    let db = target.unique_db("daemon_overlap");
    seed(&target, &db, 3000).await;
    slow_backups(&target, 500).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let cfg = config_text(dir.path(), &target.uri(), &db, "* * * * * *", "30s");
    let mut d = Daemon::start_in(dir, &cfg);
    d.wait_for("a skipped fire", Duration::from_secs(30), |d| {
        d.log()
            .contains("was skipped: the previous run of this job is still going")
    });
    fast_backups(&target).await;
    assert!(d.stop().success());
    let history = common::run(&[
        "history",
        "--config",
        &d.path("config.toml").display().to_string(),
    ]);
    assert!(
        String::from_utf8_lossy(&history.stdout).contains("skipped"),
        "{}",
        common::text(&history)
    );
}

#[tokio::test]
async fn a_missed_fire_inside_the_catch_up_window_runs_once_after_a_restart() {
    let target = Target::new().unwrap();
    let db = target.unique_db("daemon_missed");
    seed(&target, &db, 10).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    // The daemon last fired its daily job two days ago: today's midnight
    // run was missed (inside the one-day window), yesterday's is too old.
    let two_days_ago = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    std::fs::write(
        dir.path().join("state/schedule-state.json"),
        format!(r#"{{"version":1,"jobs":{{"fast":{{"last_fire":"{two_days_ago}"}}}}}}"#),
    )
    .unwrap();
    let cfg = config_text(dir.path(), &target.uri(), &db, "0 0 * * *", "30s");
    let mut d = Daemon::start_in(dir, &cfg);
    d.wait_for("the catch-up backup", Duration::from_secs(30), |d| {
        d.backups().0 == 1
    });
    assert!(
        d.log()
            .contains("running it now (catching up); 1 older missed runs are not run"),
        "{}",
        d.log()
    );
    assert!(d.stop().success());
    // Started again, nothing is due: the missed run is not repeated.
    let dir = std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap());
    drop(d);
    let mut again = Daemon::start_in(dir, &cfg);
    assert!(again.stop().success());
    assert_eq!(again.backups(), (1, false), "{}", again.log());
    assert!(!again.log().contains("catching up"), "{}", again.log());
}

#[tokio::test]
async fn logs_go_to_the_configured_file_and_the_watchdog_is_fed() {
    let target = Target::new().unwrap();
    let db = target.unique_db("daemon_logs");
    seed(&target, &db, 10).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let log_file = dir.path().join("logs/mongo-backupd.log");
    let cfg = config_text(dir.path(), &target.uri(), &db, "* * * * * *", "10s").replace(
        "[daemon]\n",
        &format!(
            "[daemon]\nlog_file = \"{}\"\nlog_rotation = \"never\"\n",
            log_file.display()
        ),
    );
    let mut d = Daemon::start_with_env(dir, &cfg, &[("WATCHDOG_USEC", "200000")]);
    d.wait_for("a backup", Duration::from_secs(30), |d| d.backups().0 >= 1);
    d.signal("-TERM");
    let pings = d.expect_past_pings("STOPPING=1");
    assert!(pings >= 1, "the watchdog was pinged while running");
    let mut child = d.child.take().unwrap();
    assert!(child.wait().unwrap().success());
    let written = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        written.contains("started with") && written.contains("Backup completed"),
        "{written}"
    );
    assert!(
        written.contains("mongo-backupd stopped."),
        "flushed at exit: {written}"
    );
}

#[tokio::test]
async fn a_reload_during_a_backup_does_not_interrupt_it() {
    let target = Target::new().unwrap();
    let db = target.unique_db("daemon_reload_busy");
    seed(&target, &db, 3000).await;
    slow_backups(&target, 300).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let cfg = config_text(dir.path(), &target.uri(), &db, "* * * * * *", "30s");
    let mut d = Daemon::start_in(dir, &cfg);
    d.wait_for("a backup in progress", Duration::from_secs(30), |d| {
        d.backups().1
    });
    // A new schedule that will not fire again soon.
    d.write_config(&config_text(
        d.dir.path(),
        &target.uri(),
        &db,
        "0 0 1 1 *",
        "30s",
    ));
    d.signal("-HUP");
    d.expect_notify("RELOADING=1");
    d.expect_notify("READY=1");
    fast_backups(&target).await;
    d.wait_for(
        "the running backup to complete",
        Duration::from_secs(30),
        |d| d.backups() == (1, false),
    );
    let log = d.log();
    assert!(
        log.contains("changed: fast") && log.contains("Running backups were not interrupted"),
        "{log}"
    );
    assert!(!log.contains("cancelled"), "{log}");
    assert!(d.stop().success());
    assert_eq!(
        d.backups(),
        (1, false),
        "no run on the old schedule after the reload"
    );
}

#[tokio::test]
async fn max_concurrent_jobs_queues_the_rest() {
    let target = Target::new().unwrap();
    let db = target.unique_db("daemon_queue");
    seed(&target, &db, 3000).await;
    slow_backups(&target, 300).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let mut cfg = config_text(dir.path(), &target.uri(), &db, "* * * * * *", "30s")
        .replace("[daemon]\n", "[daemon]\nmax_concurrent_jobs = 1\n");
    cfg.push_str(&cfg[cfg.find("[jobs.fast]").unwrap()..].replace("[jobs.fast]", "[jobs.other]"));
    let mut d = Daemon::start_in(dir, &cfg);
    d.wait_for("a queued job", Duration::from_secs(30), |d| {
        d.log().contains(
            "is due but waits: the maximum number of jobs (max_concurrent_jobs) is running",
        )
    });
    fast_backups(&target).await;
    assert!(d.stop().success());
}

#[tokio::test]
async fn an_oplog_gap_starts_a_full_backup_and_a_new_chain() {
    oplog_gap_scenario(true).await;
}

#[tokio::test]
async fn with_full_on_gap_off_a_gap_is_reported_and_no_full_started() {
    oplog_gap_scenario(false).await;
}

async fn oplog_gap_scenario(full_on_gap: bool) {
    let target = Target::new().unwrap();
    if target.is_external() {
        return mongo_testserver::harness::skip_external(
            "an_oplog_gap_starts_a_full_backup_and_a_new_chain",
        );
    }
    let server = mongo_testserver::TestServer::builder()
        .oplog_max_bytes(64 * 1024)
        .start()
        .unwrap();
    let db = "gapdb";
    let coll = client(&server.uri())
        .await
        .database(db)
        .collection::<Document>("c");
    coll.insert_one(doc! { "_id": -1 }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let base = config_text(dir.path(), &server.uri(), db, "0 0 1 1 *", "30s")
        .replace("[jobs.fast]", "[jobs.full]");
    let smtp = common::smtp::SmtpServer::start(common::smtp::SmtpOptions::plain());
    let cfg = format!(
        "{base}\n[jobs.incr]\nsource = \"prod\"\nstorage = \"local\"\nkind = \"incremental\"\nschedule = \"* * * * * *\"\ninclude = [\"{db}\"]\nfull_on_gap = {full_on_gap}\n\n[alerts.email]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"b@example.com\"\nto = [\"oncall@example.com\"]\n",
        smtp.port()
    );
    std::fs::write(dir.path().join("config.toml"), &cfg).unwrap();
    let first_full = common::run(&[
        "backup",
        "--config",
        &dir.path().join("config.toml").display().to_string(),
        "--job",
        "full",
    ]);
    assert!(first_full.status.success(), "{}", common::text(&first_full));
    let mut d = Daemon::start_in(dir, &cfg);
    let count = |d: &Daemon, job: &str| {
        std::fs::read_dir(d.path(&format!("backups/{job}")))
            .map(|r| {
                r.filter(|e| {
                    !e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with('.')
                })
                .count()
            })
            .unwrap_or(0)
    };
    d.wait_for("a first incremental", Duration::from_secs(30), |d| {
        count(d, "incr") >= 1
    });
    // Writes far beyond the oplog's capacity between two incrementals.
    let pad = "z".repeat(1000);
    coll.insert_many((0..2000).map(|i| doc! { "_id": i, "pad": pad.clone() }))
        .await
        .unwrap();
    let gap_mail = || {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mails = smtp.messages();
            if let Some(m) = mails.iter().find(|m| m.subject.contains("OPLOG GAP")) {
                return m.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no gap mail: {:?}\n{}",
                mails.iter().map(|m| &m.subject).collect::<Vec<_>>(),
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    if !full_on_gap {
        d.wait_for("the gap to be reported", Duration::from_secs(30), |d| {
            d.log()
                .contains("full_on_gap = false, so no full backup is started")
        });
        let mail = gap_mail();
        assert!(
            mail.subject.ends_with(
                "OPLOG GAP in job \"incr\" on 127.0.0.1: chain broken, no full backup started"
            ),
            "{}",
            mail.subject
        );
        assert!(mail.body.contains("full_on_gap = false"), "{}", mail.body);
        assert_eq!(count(&d, "full"), 1, "no full was started");
        assert!(d.stop().success());
        return;
    }
    d.wait_for("the gap to start a full", Duration::from_secs(30), |d| {
        d.log()
            .contains("found an oplog gap: the new full starts a new chain")
    });
    d.wait_for("the new full", Duration::from_secs(30), |d| {
        count(d, "full") >= 2
    });
    let mail = gap_mail();
    assert!(
        mail.subject
            .ends_with("OPLOG GAP in job \"incr\" on 127.0.0.1: full backup \"full\" started"),
        "{}",
        mail.subject
    );
    assert!(
        mail.body
            .contains("What broke:   oplog gap: the oplog no longer holds the entries from"),
        "{}",
        mail.body
    );
    let incrementals = count(&d, "incr");
    d.wait_for(
        "an incremental continuing the new chain",
        Duration::from_secs(30),
        |d| count(d, "incr") > incrementals,
    );
    assert!(d.stop().success());
    let log = d.log();
    assert!(
        log.contains("oplog gap: the oplog no longer holds the entries from"),
        "{log}"
    );
}

#[tokio::test]
async fn retention_runs_after_each_successful_backup() {
    let target = Target::new().unwrap();
    let db = target.unique_db("daemon_retention");
    seed(&target, &db, 10).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let cfg = config_text(dir.path(), &target.uri(), &db, "* * * * * *", "10s");
    let mut d = Daemon::start_in(dir, &cfg);
    d.wait_for("a scheduled backup", Duration::from_secs(30), |d| {
        d.backups().0 >= 1
    });
    // Aged after start, so only the retention that follows a backup can
    // delete it (the all-jobs run happens at start, then hourly).
    let real = std::fs::read_dir(d.path("backups/fast"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .unwrap();
    let old = common::aged_copy(&real, 40);
    d.wait_for(
        "retention to delete the 40-day-old backup",
        Duration::from_secs(30),
        |d| !d.path("backups/fast").join(&old).exists(),
    );
    // The summary line follows the deletion; the log may lag it a moment.
    d.wait_for(
        "retention's summary in the log",
        Duration::from_secs(30),
        |d| {
            d.log()
                .contains("Retention deleted 1 backups of job \"fast\"")
        },
    );
    assert!(d.stop().success());
}

#[tokio::test]
async fn retention_also_runs_on_its_own_when_no_backup_is_due() {
    let target = Target::new().unwrap();
    let db = target.unique_db("daemon_retention_idle");
    seed(&target, &db, 10).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let cfg = config_text(dir.path(), &target.uri(), &db, "0 0 1 1 *", "10s");
    std::fs::write(dir.path().join("config.toml"), &cfg).unwrap();
    let first = common::run(&[
        "backup",
        "--config",
        &dir.path().join("config.toml").display().to_string(),
        "--job",
        "fast",
    ]);
    assert!(first.status.success(), "{}", common::text(&first));
    let real = std::fs::read_dir(dir.path().join("backups/fast"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let old = common::aged_copy(&real, 40);
    let mut d = Daemon::start_in(dir, &cfg);
    d.wait_for("retention at start", Duration::from_secs(30), |d| {
        !d.path("backups/fast").join(&old).exists()
    });
    assert!(real.is_dir());
    d.wait_for(
        "retention's summary in the log",
        Duration::from_secs(30),
        |d| {
            d.log()
                .contains("Retention deleted 1 backups of job \"fast\"")
        },
    );
    assert!(d.stop().success());
}
