//! Alert mails end to end: the real daemon process (or `test-alert`), a
//! real SMTP server (Debian's aiosmtpd, started per test, capturing mails
//! to files) in plain, STARTTLS and implicit-TLS modes with a CA made at
//! test time, and the test server (or MONGODB_TEST_URI) as the source.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::time::Duration;

use common::daemon::Daemon;
use common::smtp::{Captured, SmtpOptions, SmtpServer, TestPki};
use mongo_testserver::harness::{skip_external, Target};

const WAIT: Duration = Duration::from_secs(60);
/// A source that refuses connections: nothing listens on port 1.
const DEAD_URI: &str = "mongodb://127.0.0.1:1/?directConnection=true";

/// `[alerts]` and `[alerts.email]` for a plain (no TLS) server.
fn alerts_plain(smtp: &SmtpServer, alerts_extra: &str) -> String {
    format!(
        r#"[alerts]
reminder_interval = "1h"
{alerts_extra}

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
    )
}

/// A configuration with `[daemon]`, two sources (`prod` at `uri`, `dead`
/// refusing connections), local storage, the given alert settings, and
/// `jobs` appended.
fn config(dir: &Path, uri: &str, alerts: &str, jobs: &str) -> String {
    std::fs::create_dir_all(dir.join("state")).unwrap();
    format!(
        r#"[daemon]
state_dir = "{state}"
shutdown_grace = "10s"

[sources.prod]
uri = "{uri}"
connect_timeout = "2s"

[sources.dead]
uri = "{DEAD_URI}"
connect_timeout = "1s"

[storage.local]
type = "local"
path = "{storage}"

{alerts}
{jobs}"#,
        state = dir.join("state").display(),
        storage = dir.join("backups").display(),
    )
}

fn job(name: &str, source: &str, schedule: &str, db: &str, extra: &str) -> String {
    format!(
        r#"
[jobs.{name}]
source = "{source}"
storage = "local"
kind = "full"
schedule = "{schedule}"
compression = "none"
include = ["{db}"]
{extra}
"#
    )
}

fn subjects(mails: &[Captured]) -> Vec<String> {
    mails.iter().map(|m| m.subject.clone()).collect()
}

/// Waits until a captured mail's subject contains `needle`; returns it.
fn wait_subject(smtp: &SmtpServer, needle: &str, daemon: &Daemon) -> Captured {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(m) = smtp
            .messages()
            .into_iter()
            .find(|m| m.subject.contains(needle))
        {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no mail with {needle:?}; got {:?}\n{}",
            subjects(&smtp.messages()),
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn seed(target: &Target, db: &str) {
    let c = common::client(&target.uri()).await;
    c.database(db)
        .collection::<bson::Document>("c")
        .insert_many((0..5).map(|i| bson::doc! { "_id": i }))
        .await
        .unwrap();
    mongo_backupd::source::close(c).await;
}

#[tokio::test]
async fn a_failing_job_mails_once_then_reminds_then_mails_its_recovery() {
    let target = Target::new().unwrap();
    let Some(server) = target.local() else {
        return skip_external("a_failing_job_mails_once_then_reminds_then_mails_its_recovery");
    };
    let db = target.unique_db("alert_fail");
    seed(&target, &db).await;
    server.stop();
    let smtp = SmtpServer::start(SmtpOptions::plain());
    let dir = tempfile::tempdir().unwrap();
    let alerts =
        alerts_plain(&smtp, "").replace("reminder_interval = \"1h\"", "reminder_interval = \"6s\"");
    let cfg = config(
        dir.path(),
        &target.uri(),
        &alerts,
        &job("fast", "prod", "*/2 * * * * *", &db, "stale_after = \"1h\""),
    );
    let mut d = Daemon::start_in(dir, &cfg);

    let first = wait_subject(&smtp, "FAILED", &d);
    assert_eq!(
        first.subject,
        "[mongo-backupd] FAILED full backup of job \"fast\" on 127.0.0.1"
    );
    assert_eq!(first.to, vec!["oncall@example.com".to_string()]);
    let hosts = mongo_backupd::source::hosts_of(&target.uri());
    for needle in [
        "The full backup of job \"fast\" failed.",
        "What broke:   cannot reach MongoDB at 127.0.0.1:",
        "Job:          fast (full)",
        &format!("Source:       prod ({hosts})"),
        "Backup id:    ",
        "Started:      ",
        "Duration:     ",
        "Next attempt: ",
        "What to do:\n  Check that MongoDB is running and reachable from this host",
        "Last log lines of this run:\n",
        "Backup started.",
        "Daemon host:  ",
        "You get a reminder every 6s while this lasts",
    ] {
        assert!(
            first.body.contains(needle),
            "missing {needle:?} in:\n{}",
            first.body
        );
    }

    // The job keeps failing every 2 s; the next mail is the reminder.
    let reminder = wait_subject(&smtp, "REMINDER", &d);
    assert!(
        reminder.subject.starts_with(
            "[mongo-backupd] REMINDER: FAILED full backup of job \"fast\" on 127.0.0.1 (since "
        ),
        "{}",
        reminder.subject
    );
    assert!(
        reminder.body.contains("failed runs in all"),
        "{}",
        reminder.body
    );
    let before_recovery = smtp.messages();
    assert_eq!(
        before_recovery
            .iter()
            .filter(|m| m.subject.contains("] FAILED"))
            .count(),
        1,
        "one failure mail, however many runs failed: {:?}",
        subjects(&before_recovery)
    );

    server.restart().unwrap();
    let recovered = wait_subject(&smtp, "RECOVERED", &d);
    assert!(
        recovered.subject.starts_with(
            "[mongo-backupd] RECOVERED full backup of job \"fast\" on 127.0.0.1 after "
        ),
        "{}",
        recovered.subject
    );
    assert!(
        recovered.body.contains("succeeded again"),
        "{}",
        recovered.body
    );
    assert!(
        recovered.body.contains("failed meanwhile"),
        "{}",
        recovered.body
    );
    assert!(d.stop().success());

    // Deliveries are in the run history.
    let history = std::fs::read_to_string(d.path("state/history.jsonl")).unwrap();
    assert!(
        history.lines().any(|l| l.contains("\"kind\":\"alert\"")
            && l.contains("\"result\":\"success\"")
            && l.contains("RECOVERED")),
        "{history}"
    );
}

#[tokio::test]
async fn a_job_whose_schedule_never_comes_is_reported_stale() {
    let smtp = SmtpServer::start(SmtpOptions::plain());
    let dir = tempfile::tempdir().unwrap();
    // Yearly at New Year: it will not run during the test, so the only way
    // to hear about it is the watchdog.
    let cfg = config(
        dir.path(),
        DEAD_URI,
        &alerts_plain(&smtp, ""),
        &job(
            "yearly",
            "prod",
            "0 0 1 1 *",
            "db",
            "stale_after = \"3s\"\nalert_to = [\"dba@example.com\"]",
        ),
    );
    let mut d = Daemon::start_in(dir, &cfg);
    let stale = wait_subject(&smtp, "STALE", &d);
    assert_eq!(
        stale.subject,
        "[mongo-backupd] STALE full backups of job \"yearly\" on 127.0.0.1"
    );
    assert!(
        stale
            .body
            .contains("has not completed any backup since the daemon started watching it"),
        "{}",
        stale.body
    );
    assert!(
        stale.body.contains("it is expected at least every 3s"),
        "{}",
        stale.body
    );
    assert!(stale.body.contains("Next run:     20"), "{}", stale.body);
    assert_eq!(
        stale.envelope_to,
        vec![
            "oncall@example.com".to_string(),
            "dba@example.com".to_string()
        ],
        "the job's alert_to are mailed too"
    );
    assert!(d.stop().success());
    assert_eq!(smtp.messages().len(), 1, "{:?}", subjects(&smtp.messages()));
}

#[tokio::test]
async fn a_rejected_reload_mails_every_error() {
    let smtp = SmtpServer::start(SmtpOptions::plain());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        DEAD_URI,
        &alerts_plain(&smtp, ""),
        &job("nightly", "prod", "0 2 * * *", "db", ""),
    );
    let mut d = Daemon::start_in(dir, &cfg);
    d.write_config(
        &cfg.replace("kind = \"full\"", "kind = \"fulll\"")
            .replace("schedule = ", "shedule = "),
    );
    d.signal("-HUP");
    d.expect_notify("RELOADING=1");
    d.expect_notify("READY=1");
    let mail = wait_subject(&smtp, "RELOAD REJECTED", &d);
    let path = d.path("config.toml").display().to_string();
    assert!(mail.subject.ends_with(": 2 errors"), "{}", mail.subject);
    assert!(mail.subject.contains(&path), "{}", mail.subject);
    assert!(
        mail.body
            .contains("jobs.nightly.kind: invalid job kind \"fulll\""),
        "{}",
        mail.body
    );
    assert!(
        mail.body
            .contains("jobs.nightly.shedule: unknown key \"shedule\""),
        "{}",
        mail.body
    );
    assert!(
        mail.body.contains(&format!("{path}:")),
        "errors carry file:line: {}",
        mail.body
    );
    assert!(mail
        .body
        .contains("still running the previous configuration"));
    assert!(d.stop().success());
}

#[tokio::test]
async fn with_the_mail_server_down_backups_go_on_and_mails_arrive_once_it_is_back() {
    let target = Target::new().unwrap();
    let db = target.unique_db("alert_down");
    seed(&target, &db).await;
    let mut smtp = SmtpServer::start(SmtpOptions::plain());
    smtp.stop();
    let dir = tempfile::tempdir().unwrap();
    // Three failing jobs but room for two mails: the oldest is dropped.
    let jobs = [
        job("good", "prod", "* * * * * *", &db, ""),
        job("bad1", "dead", "*/2 * * * * *", "db", ""),
        job("bad2", "dead", "*/2 * * * * *", "db", ""),
        job("bad3", "dead", "*/2 * * * * *", "db", ""),
    ]
    .concat();
    let alerts = alerts_plain(&smtp, "") + "queue_limit = 2\n";
    let cfg = config(dir.path(), &target.uri(), &alerts, &jobs);
    let mut d = Daemon::start_in(dir, &cfg);

    d.wait_for("a dropped mail", WAIT, |d| {
        d.log()
            .contains("The alert mail queue is full (2 mails, queue_limit): dropping the oldest")
    });
    d.wait_for("retried deliveries", WAIT, |d| {
        d.log().matches("Could not deliver alert mail").count() >= 3
    });
    let log = d.log();
    assert!(log.contains("ERROR"), "{log}");
    assert!(log.contains("Retrying in"), "{log}");
    // Backups of the healthy job went on meanwhile.
    let count = |d: &Daemon| {
        std::fs::read_dir(d.path("backups/good"))
            .map(|r| {
                r.filter_map(Result::ok)
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0)
    };
    let before = count(&d);
    d.wait_for("more backups while mail is down", WAIT, |d| {
        count(d) >= before + 2
    });

    smtp.restart();
    let mails = smtp.wait_for(2, WAIT);
    let failed: Vec<&Captured> = mails
        .iter()
        .filter(|m| m.subject.contains("FAILED"))
        .collect();
    assert_eq!(failed.len(), 2, "{:?}", subjects(&mails));
    assert!(
        failed[0]
            .body
            .contains("1 earlier alert mail could not be delivered and was dropped"),
        "{}",
        failed[0].body
    );
    d.wait_for("the log to say delivery works again", WAIT, |d| {
        d.log().contains("Alert mail delivery works again")
    });
    assert!(d.stop().success());
    let history = std::fs::read_to_string(d.path("state/history.jsonl")).unwrap();
    assert!(
        history
            .lines()
            .any(|l| l.contains("\"kind\":\"alert\"") && l.contains("dropped undelivered")),
        "{history}"
    );
}

/// `[alerts.email]` for `test-alert` against `smtp`, with `extra` keys.
fn email_only(dir: &Path, smtp: &SmtpServer, tls: &str, extra: &str) -> std::path::PathBuf {
    let text = format!(
        r#"[daemon]
state_dir = "{state}"

[alerts.email]
host = "localhost"
port = {port}
tls = "{tls}"
from = "backups@example.com"
to = ["oncall@example.com"]
timeout = "5s"
{extra}
"#,
        state = dir.join("state").display(),
        port = smtp.port()
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn test_alert(config: &Path) -> std::process::Output {
    common::run(&["test-alert", "--config", &config.display().to_string()])
}

#[test]
fn test_alert_works_in_every_tls_mode_with_login() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("smtp-password");
    std::fs::write(&password, "Tr0ub4dor&3\n").unwrap();
    let login = format!(
        "username = \"alerts\"\npassword_file = \"{}\"\nca_file = \"{}\"",
        password.display(),
        pki.ca_pem.display()
    );
    for (mode, options) in [
        ("starttls", SmtpOptions::starttls(&pki)),
        ("tls", SmtpOptions::tls(&pki)),
    ] {
        let smtp = SmtpServer::start(options.with_auth("alerts", "Tr0ub4dor&3"));
        let cfg = email_only(dir.path(), &smtp, mode, &login);
        let out = test_alert(&cfg);
        let text = common::text(&out);
        assert_eq!(out.status.code(), Some(0), "{mode}: {text}");
        if mode == "starttls" {
            assert!(
                text.contains("STARTTLS: TLS established, certificate verified"),
                "{text}"
            );
        } else {
            assert!(text.contains("with TLS (certificate verified)"), "{text}");
        }
        assert!(
            text.contains("AUTH: accepted for user \"alerts\""),
            "{text}"
        );
        assert!(
            text.contains("message accepted for 1 recipient: 250"),
            "{text}"
        );
        let mail = smtp.wait_for(1, WAIT).remove(0);
        assert!(mail.tls, "{mode}: the mail must have travelled encrypted");
        assert_eq!(mail.auth_user.as_deref(), Some("alerts"));
        assert!(mail
            .subject
            .starts_with("[mongo-backupd] TEST alert from mongo-backupd on "));
        assert!(
            !mail.raw.contains("Tr0ub4dor"),
            "{mode}: the password is in the mail"
        );
        assert!(
            !text.contains("Tr0ub4dor"),
            "{mode}: the password is printed"
        );
    }
    // Plain SMTP without login (a local relay).
    let smtp = SmtpServer::start(SmtpOptions::plain());
    let out = test_alert(&email_only(dir.path(), &smtp, "none", ""));
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    assert!(!smtp.wait_for(1, WAIT)[0].tls);
}

#[test]
fn wrong_tls_settings_fail_clearly_and_never_fall_back_to_plaintext() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let ca = format!("ca_file = \"{}\"", pki.ca_pem.display());
    let check = |smtp: &SmtpServer, tls: &str, extra: &str, expect: &[&str]| {
        let out = test_alert(&email_only(dir.path(), smtp, tls, extra));
        let text = common::text(&out);
        assert_eq!(out.status.code(), Some(69), "{tls} {extra}: {text}");
        for e in expect {
            assert!(text.contains(e), "{tls} {extra}: expected {e:?} in {text}");
        }
        assert!(
            smtp.messages().is_empty(),
            "{tls} {extra}: a mail got through: {text}"
        );
    };

    // STARTTLS required, but the server only speaks plain SMTP.
    let plain = SmtpServer::start(SmtpOptions::plain());
    check(
        &plain,
        "starttls",
        &ca,
        &[
            "failed at STARTTLS: the server does not offer STARTTLS",
            "never falls back to clear text",
        ],
    );
    // Implicit TLS against a server that does not speak TLS.
    check(&plain, "tls", &ca, &["failed at connecting", "TLS"]);
    // A certificate from a CA nobody told us to trust.
    let untrusted = TestPki::untrusted();
    let other = SmtpServer::start(SmtpOptions::starttls(&untrusted));
    check(
        &other,
        "starttls",
        &ca,
        &["failed at STARTTLS", "UnknownIssuer", "set ca_file"],
    );
    let other_tls = SmtpServer::start(SmtpOptions::tls(&untrusted));
    check(
        &other_tls,
        "tls",
        "",
        &["failed at connecting", "UnknownIssuer", "ca_file"],
    );
    // A trusted certificate for another name.
    let wrong = TestPki::wrong_host();
    let wrong_ca = format!("ca_file = \"{}\"", wrong.ca_pem.display());
    let misnamed = SmtpServer::start(SmtpOptions::starttls(&wrong));
    check(
        &misnamed,
        "starttls",
        &wrong_ca,
        &[
            "certificate not valid for name \"localhost\"",
            "host matches a name in the certificate",
        ],
    );
}

#[test]
fn a_wrong_password_is_reported_without_showing_it() {
    let pki = TestPki::new();
    let smtp = SmtpServer::start(SmtpOptions::starttls(&pki).with_auth("alerts", "right-one"));
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("pw");
    std::fs::write(&password, "wrong-Secret-42").unwrap();
    let extra = format!(
        "username = \"alerts\"\npassword_file = \"{}\"\nca_file = \"{}\"",
        password.display(),
        pki.ca_pem.display()
    );
    let out = test_alert(&email_only(dir.path(), &smtp, "starttls", &extra));
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(69), "{text}");
    assert!(text.contains("failed at authentication"), "{text}");
    assert!(text.contains("535"), "{text}");
    assert!(
        text.contains("Check username and the password in password_file"),
        "{text}"
    );
    assert!(!text.contains("wrong-Secret-42"), "{text}");
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn the_smtp_password_never_shows_in_ps_logs_history_or_mails() {
    let pki = TestPki::new();
    const SECRET: &str = "pa55-Zebra-Quartz-9";
    let smtp = SmtpServer::start(SmtpOptions::starttls(&pki).with_auth("alerts", SECRET));
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("smtp-password");
    std::fs::write(&password, SECRET).unwrap();
    let alerts = format!(
        r#"[alerts.email]
host = "localhost"
port = {port}
tls = "starttls"
ca_file = "{ca}"
username = "alerts"
password_file = "{pw}"
from = "backups@example.com"
to = ["oncall@example.com"]
"#,
        port = smtp.port(),
        ca = pki.ca_pem.display(),
        pw = password.display()
    );
    let cfg = config(
        dir.path(),
        DEAD_URI,
        &alerts,
        &job("doomed", "dead", "*/2 * * * * *", "db", ""),
    );
    let log_file = dir.path().join("logs/daemon.log");
    let cfg = cfg.replace(
        "[daemon]\n",
        &format!(
            "[daemon]\nlog_level = \"debug\"\nlog_file = \"{}\"\n",
            log_file.display()
        ),
    );
    let mut d = Daemon::start_in(dir, &cfg);
    let mail = wait_subject(&smtp, "FAILED", &d);
    assert!(mail.tls && mail.auth_user.as_deref() == Some("alerts"));

    let pid = d.child.as_ref().unwrap().id();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let ps = std::process::Command::new("ps")
        .args(["-ww", "-o", "args=", "-p", &pid.to_string()])
        .output();
    assert!(d.stop().success());

    let mut places: Vec<(String, String)> = vec![
        (
            "cmdline".into(),
            String::from_utf8_lossy(&cmdline).into_owned(),
        ),
        ("stderr log".into(), d.log()),
        (
            "history".into(),
            std::fs::read_to_string(d.path("state/history.jsonl")).unwrap(),
        ),
    ];
    if let Ok(ps) = ps {
        places.push((
            "ps".into(),
            String::from_utf8_lossy(&ps.stdout).into_owned(),
        ));
    }
    for entry in std::fs::read_dir(d.path("logs")).unwrap() {
        let path = entry.unwrap().path();
        places.push((
            path.display().to_string(),
            std::fs::read_to_string(&path).unwrap(),
        ));
    }
    for m in smtp.messages() {
        places.push((format!("mail {}", m.subject), m.raw.clone()));
    }
    assert!(
        places.iter().any(|(_, text)| text.contains("doomed")),
        "the checks look at real content"
    );
    for (place, text) in places {
        assert!(
            !text.contains(SECRET),
            "the SMTP password appears in {place}"
        );
    }
}
