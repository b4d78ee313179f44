//! `[alerts]`, `[alerts.email]` and the jobs' `alert_to` and `stale_after`:
//! every setting read, the defaults, and each error with its exact text.

use std::path::PathBuf;
use std::time::Duration;

use super::{at, errors, full_job, job, parse_ok, the_error};
use crate::config::{AlertSettings, EmailSettings, SecretSource, SmtpTls};

const MAILBOX_HINT: &str = "(hint: e.g. \"ops@example.com\" or \"On-call <oncall@example.com>\")";
const HOST_HINT: &str = "(hint: write only the host name, e.g. host = \"smtp.example.com\")";
const PASSWORD_SOURCES: &str = "set password_file (a file holding the password) or \
                                password_env (an environment variable holding it)";

/// A minimal valid `[alerts.email]` (lines 1-4) with `extra` from line 5.
fn email(extra: &str) -> String {
    format!(
        "[alerts.email]\nhost = \"smtp.example.com\"\nfrom = \"backups@example.com\"\n\
         to = [\"ops@example.com\"]\n{extra}"
    )
}

/// The email settings of a valid configuration.
fn email_settings(text: &str) -> EmailSettings {
    parse_ok(text).alerts.email.expect("[alerts.email] is set")
}

#[test]
fn every_alert_setting_is_read() {
    let config = parse_ok(
        "[alerts]\nreminder_interval = \"12h\"\nmax_per_hour = 5\nstale_factor = 2.5\n\n\
         [alerts.email]\nhost = \"smtp.example.com\"\nport = 2525\ntls = \"tls\"\n\
         ca_file = \"/etc/mongo-backupd/relay-ca.pem\"\nusername = \"backups\"\n\
         password_file = \"${CREDENTIALS_DIRECTORY}/smtp-password\"\n\
         from = \"mongo-backupd <backups@example.com>\"\n\
         to = [\"ops@example.com\", \"On-call <oncall@example.com>\"]\n\
         subject_prefix = \"[prod backups]\"\ntimeout = \"1m\"\nqueue_limit = 500\n\
         retry_max_interval = \"1h\"\n",
    );
    let expected = AlertSettings {
        email: Some(EmailSettings {
            host: "smtp.example.com".into(),
            port: 2525,
            tls: SmtpTls::Tls,
            ca_file: Some(PathBuf::from("/etc/mongo-backupd/relay-ca.pem")),
            username: Some("backups".into()),
            password: Some(SecretSource::File(PathBuf::from(
                "${CREDENTIALS_DIRECTORY}/smtp-password",
            ))),
            from: "mongo-backupd <backups@example.com>".into(),
            to: vec![
                "ops@example.com".into(),
                "On-call <oncall@example.com>".into(),
            ],
            subject_prefix: "[prod backups]".into(),
            timeout: Duration::from_secs(60),
            queue_limit: 500,
            retry_max_interval: Duration::from_secs(3600),
        }),
        reminder_interval: Duration::from_secs(12 * 3600),
        max_per_hour: 5,
        stale_factor: 2.5,
    };
    assert_eq!(config.alerts, expected);

    let env = email_settings(&email(
        "username = \"backups\"\npassword_env = \"SMTP_PASSWORD\"\n",
    ));
    assert_eq!(
        env.password,
        Some(SecretSource::Env("SMTP_PASSWORD".into()))
    );
    assert_eq!(env.username.as_deref(), Some("backups"));
}

#[test]
fn alert_defaults() {
    let defaults = AlertSettings::default();
    assert_eq!(parse_ok("").alerts, defaults);
    assert_eq!(parse_ok("[alerts]\n").alerts, defaults);
    assert_eq!(defaults.email, None);
    assert_eq!(defaults.reminder_interval, Duration::from_secs(6 * 3600));
    assert_eq!(defaults.max_per_hour, 20);
    assert!((defaults.stale_factor - 1.5).abs() < f64::EPSILON);

    let config = parse_ok(&email(""));
    assert_eq!(config.alerts.reminder_interval, defaults.reminder_interval);
    assert_eq!(config.alerts.max_per_hour, defaults.max_per_hour);
    let e = config.alerts.email.unwrap();
    assert_eq!(e.host, "smtp.example.com");
    assert_eq!(e.tls, SmtpTls::StartTls);
    assert_eq!(e.port, 587);
    assert_eq!(e.ca_file, None);
    assert_eq!(e.username, None);
    assert_eq!(e.password, None);
    assert_eq!(e.from, "backups@example.com");
    assert_eq!(e.to, vec!["ops@example.com".to_string()]);
    assert_eq!(e.subject_prefix, "[mongo-backupd]");
    assert_eq!(e.timeout, Duration::from_secs(30));
    assert_eq!(e.queue_limit, 100);
    assert_eq!(e.retry_max_interval, Duration::from_secs(300));
    assert_eq!(e.server_label(), "smtp.example.com:587 (STARTTLS)");

    // The port follows the TLS mode unless set.
    for (tls, port) in [("starttls", 587), ("tls", 465), ("none", 25)] {
        let e = email_settings(&email(&format!("tls = \"{tls}\"\n")));
        assert_eq!(e.port, port, "tls = {tls:?}");
    }
    // An empty prefix is allowed: some mail filters want the bare subject.
    assert_eq!(
        email_settings(&email("subject_prefix = \"\"\n")).subject_prefix,
        ""
    );
}

#[test]
fn stale_factor_accepts_integers_and_floats() {
    for (written, value) in [("2", 2.0), ("1.25", 1.25), ("100", 100.0)] {
        let config = parse_ok(&format!("[alerts]\nstale_factor = {written}\n"));
        assert!(
            (config.alerts.stale_factor - value).abs() < f64::EPSILON,
            "{written}"
        );
    }
}

#[test]
fn alert_value_errors() {
    let hint = "(hint: a job is stale when its last success is older than its schedule's \
                interval times this factor, e.g. stale_factor = 1.5)";
    let cases = [
        (
            "stale_factor = \"1.5\"",
            at(2, 16, "alerts.stale_factor: expected number, found string (hint: remove the quotes: stale_factor = 1.5)"),
        ),
        (
            "stale_factor = 0.5",
            at(2, 16, &format!("alerts.stale_factor: stale_factor = 0.5 must be more than 1 and at most 100 {hint}")),
        ),
        (
            "stale_factor = 1",
            at(2, 16, &format!("alerts.stale_factor: stale_factor = 1 must be more than 1 and at most 100 {hint}")),
        ),
        (
            "stale_factor = nan",
            at(2, 16, &format!("alerts.stale_factor: stale_factor = NaN must be more than 1 and at most 100 {hint}")),
        ),
        (
            "stale_factor = true",
            at(2, 16, "alerts.stale_factor: expected number, found boolean"),
        ),
        (
            "max_per_hour = 0",
            at(2, 16, "alerts.max_per_hour: max_per_hour = 0 is out of range 1-1000"),
        ),
        (
            "max_per_hour = 1001",
            at(2, 16, "alerts.max_per_hour: max_per_hour = 1001 is out of range 1-1000"),
        ),
        (
            "reminder_interval = \"0s\"",
            at(2, 21, "alerts.reminder_interval: reminder_interval must be longer than 0s (hint: e.g. reminder_interval = \"6h\")"),
        ),
        (
            "reminder_interval = 6",
            at(2, 21, "alerts.reminder_interval: expected string, found integer (hint: durations are quoted, with a unit: reminder_interval = \"6s\")"),
        ),
        (
            "max_per_hr = 5",
            at(2, 1, "alerts.max_per_hr: unknown key \"max_per_hr\" (hint: did you mean \"max_per_hour\"?)"),
        ),
        (
            "reminders = \"1h\"",
            at(2, 1, "alerts.reminders: unknown key \"reminders\" (hint: valid keys here: reminder_interval, max_per_hour, stale_factor, email)"),
        ),
        (
            "email = \"ops@example.com\"",
            at(2, 9, "alerts.email: expected a table ([alerts.email]), found string"),
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(
            the_error(&format!("[alerts]\n{line}\n")),
            expected,
            "{line}"
        );
    }
}

#[test]
fn literal_password_is_rejected_without_showing_it() {
    let message = "alerts.email.password: passwords are not written in the configuration file \
                   (hint: put it in a file readable only by the daemon and set password_file, \
                   or set password_env)";
    // With a username, the missing password source is not reported again.
    let text = email("username = \"backups\"\npassword = \"hunter2-s3cret\"\n");
    let error = the_error(&text);
    assert_eq!(error, at(6, 1, message));
    assert!(!error.contains("hunter2"), "{error}");

    // Whatever its type, and never offered as a valid key elsewhere.
    assert_eq!(
        the_error(&email("password = 12345678\n")),
        at(5, 1, message)
    );
    let unknown = the_error(&email("recipients = [\"a@example.com\"]\n"));
    assert!(!unknown.contains("password,"), "{unknown}");
}

#[test]
fn login_errors() {
    let cases = [
        (
            "tls = \"none\"\nusername = \"backups\"\npassword_env = \"SMTP_PASSWORD\"\n",
            at(5, 7, "alerts.email.tls: tls = \"none\" would send the username and password in clear text (hint: use tls = \"starttls\" or \"tls\")"),
        ),
        (
            "username = \"backups\"\n",
            at(5, 1, &format!("alerts.email.username: username is set but no password_file or password_env (hint: {PASSWORD_SOURCES}, or remove username if the server needs no login)")),
        ),
        (
            "password_env = \"SMTP_PASSWORD\"\n",
            at(5, 1, "alerts.email.password_env: password_env is set but no username (hint: set username too, or remove password_env if the server needs no login)"),
        ),
        (
            "password_file = \"/etc/mongo-backupd/smtp-password\"\n",
            at(5, 1, "alerts.email.password_file: password_file is set but no username (hint: set username too, or remove password_file if the server needs no login)"),
        ),
        (
            "username = \"backups\"\npassword_env = \"SMTP_PASSWORD\"\npassword_file = \"/etc/pw\"\n",
            at(7, 1, &format!("alerts.email.password_file: password_env and password_file are both set (hint: {PASSWORD_SOURCES}, not both)")),
        ),
        (
            "username = \"\"\n",
            at(5, 12, "alerts.email.username: username is empty (hint: remove username if the server needs no login)"),
        ),
        (
            "username = \"backups\"\npassword_file = \"smtp-password\"\n",
            at(6, 17, "alerts.email.password_file: password_file must be an absolute path, found \"smtp-password\" (hint: e.g. \"/etc/mongo-backupd/smtp-password\" or \"${CREDENTIALS_DIRECTORY}/smtp-password\")"),
        ),
        (
            "username = \"backups\"\npassword_file = \"\"\n",
            at(6, 17, "alerts.email.password_file: password_file is empty (hint: give the path of a file holding the password)"),
        ),
        (
            "username = \"backups\"\npassword_file = \"${CREDENTIALS DIRECTORY}/pw\"\n",
            at(6, 17, "alerts.email.password_file: \"${CREDENTIALS DIRECTORY}\" is not a valid variable reference (hint: write ${VARIABLE} with letters, digits and \"_\")"),
        ),
        (
            "username = \"backups\"\npassword_env = \"$SMTP_PASSWORD\"\n",
            at(6, 16, "alerts.email.password_env: \"$SMTP_PASSWORD\" is not an environment variable name (hint: write the name without $ or braces: password_env = \"SMTP_PASSWORD\")"),
        ),
        (
            "username = \"backups\"\npassword_env = \"smtp-password\"\n",
            at(6, 16, "alerts.email.password_env: \"smtp-password\" is not an environment variable name (hint: use letters, digits and \"_\", e.g. password_env = \"SMTP_PASSWORD\")"),
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(the_error(&email(extra)), expected, "{extra}");
    }
    // A relay without login may be plain text.
    let e = email_settings(&email("tls = \"none\"\nport = 25\n"));
    assert_eq!((e.tls, e.username, e.password), (SmtpTls::None, None, None));
}

#[test]
fn server_errors() {
    let cases = [
        (
            "tls = \"startls\"",
            at(5, 7, "alerts.email.tls: invalid TLS mode \"startls\" (expected starttls, tls or none) (hint: did you mean \"starttls\"?)"),
        ),
        (
            "tsl = \"tls\"",
            at(5, 1, "alerts.email.tsl: unknown key \"tsl\" (hint: did you mean \"tls\"?)"),
        ),
        (
            "recipients = [\"a@example.com\"]",
            at(5, 1, "alerts.email.recipients: unknown key \"recipients\" (hint: valid keys here: host, port, tls, ca_file, username, password_file, password_env, from, to, subject_prefix, timeout, queue_limit, retry_max_interval)"),
        ),
        (
            "port = 0",
            at(5, 8, "alerts.email.port: port = 0 is out of range 1-65535"),
        ),
        (
            "port = 65536",
            at(5, 8, "alerts.email.port: port = 65536 is out of range 1-65535"),
        ),
        (
            "port = \"587\"",
            at(5, 8, "alerts.email.port: expected integer, found string (hint: remove the quotes: port = 587)"),
        ),
        (
            "ca_file = \"ca.pem\"",
            at(5, 11, "alerts.email.ca_file: ca_file must be an absolute path, found \"ca.pem\" (hint: start it with \"/\")"),
        ),
        (
            "subject_prefix = \"[backups]\\nBcc: everyone@example.com\"",
            at(5, 18, "alerts.email.subject_prefix: subject_prefix must not contain line breaks (hint: the subject is a single line, e.g. subject_prefix = \"[backups]\")"),
        ),
        (
            "subject_prefix = \"a\\rb\"",
            at(5, 18, "alerts.email.subject_prefix: subject_prefix must not contain line breaks (hint: the subject is a single line, e.g. subject_prefix = \"[backups]\")"),
        ),
        (
            "timeout = \"0s\"",
            at(5, 11, "alerts.email.timeout: timeout must be longer than 0s (hint: e.g. timeout = \"30s\")"),
        ),
        (
            "retry_max_interval = \"0m\"",
            at(5, 22, "alerts.email.retry_max_interval: retry_max_interval must be longer than 0s (hint: e.g. retry_max_interval = \"5m\")"),
        ),
        (
            "queue_limit = 0",
            at(5, 15, "alerts.email.queue_limit: queue_limit = 0 is out of range 1-100000"),
        ),
        (
            "queue_limit = 100001",
            at(5, 15, "alerts.email.queue_limit: queue_limit = 100001 is out of range 1-100000"),
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(
            the_error(&email(&format!("{extra}\n"))),
            expected,
            "{extra}"
        );
    }
}

#[test]
fn host_errors() {
    let host = |value: &str| {
        the_error(&format!(
            "[alerts.email]\nhost = \"{value}\"\nfrom = \"b@example.com\"\nto = [\"o@example.com\"]\n"
        ))
    };
    assert_eq!(
        host("smtp://smtp.example.com"),
        at(2, 8, &format!("alerts.email.host: host must be a host name, not a URL: \"smtp://smtp.example.com\" {HOST_HINT}"))
    );
    assert_eq!(
        host("smtp.example.com:587"),
        at(2, 8, "alerts.email.host: host \"smtp.example.com:587\" includes a port (hint: set the port on its own: host = \"smtp.example.com\" and port = 587)")
    );
    assert_eq!(
        host("smtp example.com"),
        at(
            2,
            8,
            &format!(
                "alerts.email.host: host \"smtp example.com\" contains whitespace {HOST_HINT}"
            )
        )
    );
    assert_eq!(
        host(""),
        at(
            2,
            8,
            &format!("alerts.email.host: host is empty {HOST_HINT}")
        )
    );
    // IPv6 addresses have colons but no port.
    let ipv6 =
        "[alerts.email]\nhost = \"::1\"\nfrom = \"b@example.com\"\nto = [\"o@example.com\"]\n";
    assert_eq!(email_settings(ipv6).host, "::1");
}

#[test]
fn required_email_keys_are_reported_at_the_header() {
    assert_eq!(
        errors("[alerts]\nmax_per_hour = 10\n\n[alerts.email]\nport = 25\n"),
        vec![
            at(4, 1, "alerts.email.host: missing required key \"host\" (hint: the SMTP server, e.g. host = \"smtp.example.com\")"),
            at(4, 1, "alerts.email.from: missing required key \"from\" (hint: the sender, e.g. from = \"mongo-backupd <backups@example.com>\")"),
            at(4, 1, "alerts.email.to: missing required key \"to\" (hint: the recipients, e.g. to = [\"ops@example.com\"])"),
        ]
    );
}

#[test]
fn mailbox_errors_point_at_the_address() {
    let text = "[alerts.email]\nhost = \"smtp.example.com\"\nfrom = \"backups\"\n\
                to = [\"ops@example.com\", \"ops@\", 3]\n";
    assert_eq!(
        errors(text),
        vec![
            at(3, 8, &format!("alerts.email.from: invalid email address \"backups\": it has no \"@\" {MAILBOX_HINT}")),
            at(4, 26, &format!("alerts.email.to: invalid email address \"ops@\": the domain after \"@\" is missing {MAILBOX_HINT}")),
            at(4, 34, "alerts.email.to: expected string, found integer"),
        ]
    );

    let to = |value: &str| {
        the_error(&format!(
            "[alerts.email]\nhost = \"smtp.example.com\"\nfrom = \"b@example.com\"\nto = {value}\n"
        ))
    };
    assert_eq!(
        to("[]"),
        at(
            4,
            6,
            "alerts.email.to: to is empty (hint: the recipients, e.g. to = [\"ops@example.com\"])"
        )
    );
    assert_eq!(
        to("[\"Ops <@example.com>\"]"),
        at(4, 7, &format!("alerts.email.to: invalid email address \"Ops <@example.com>\": the name before \"@\" is missing {MAILBOX_HINT}"))
    );
    assert_eq!(
        to("[\"ops@exa mple.com\"]"),
        at(
            4,
            7,
            &format!("alerts.email.to: invalid email address \"ops@exa mple.com\" {MAILBOX_HINT}")
        )
    );
    assert_eq!(
        to("\"ops@example.com\""),
        at(4, 6, "alerts.email.to: expected array of strings, found string (hint: write a list: to = [\"ops@example.com\"])")
    );
    assert_eq!(
        to("[\"On-call <oncall@example.com\"]"),
        at(4, 7, &format!("alerts.email.to: invalid email address \"On-call <oncall@example.com\": unbalanced angle brackets {MAILBOX_HINT}"))
    );
}

#[test]
fn job_alert_settings() {
    // alert_to needs no [alerts.email]: without it alerts are only logged.
    let config = parse_ok(&full_job(
        "stale_after = \"26h\"\nalert_to = [\"dba@example.com\", \"App team <app@example.com>\"]\n",
    ));
    let prod = &config.jobs["prod-full"];
    assert_eq!(prod.stale_after, Some(Duration::from_secs(26 * 3600)));
    assert_eq!(
        prod.alert_to,
        vec![
            "dba@example.com".to_string(),
            "App team <app@example.com>".to_string()
        ]
    );
    assert_eq!(config.alerts.email, None);

    let defaults = parse_ok(&full_job(""));
    assert_eq!(defaults.jobs["prod-full"].stale_after, None);
    assert!(defaults.jobs["prod-full"].alert_to.is_empty());

    // A manual job with a schedule can be stale like any other.
    let manual = parse_ok(&job(
        "source = \"prod\"\nstorage = \"local\"\nkind = \"manual\"\nschedule = \"@weekly\"\n\
         stale_after = \"8d\"\n",
    ));
    assert_eq!(
        manual.jobs["prod-full"].stale_after,
        Some(Duration::from_secs(8 * 86_400))
    );
}

#[test]
fn job_alert_errors() {
    assert_eq!(
        the_error(&job(
            "source = \"prod\"\nstorage = \"local\"\nkind = \"manual\"\nstale_after = \"2d\"\n"
        )),
        at(12, 15, "jobs.prod-full.stale_after: stale_after needs a schedule (hint: a job run only on request is never late: add a schedule or remove stale_after)")
    );
    assert_eq!(
        the_error(&full_job("stale_after = \"0s\"\n")),
        at(13, 15, "jobs.prod-full.stale_after: stale_after must be longer than 0s (hint: e.g. stale_after = \"26h\")")
    );
    assert_eq!(
        errors(&full_job(
            "alert_to = [\"dba at example.com\", \"ok@example.com\", \"<x@example.com\"]\n"
        )),
        vec![
            at(13, 13, &format!("jobs.prod-full.alert_to: invalid email address \"dba at example.com\": it has no \"@\" {MAILBOX_HINT}")),
            at(13, 53, &format!("jobs.prod-full.alert_to: invalid email address \"<x@example.com\": unbalanced angle brackets {MAILBOX_HINT}")),
        ]
    );
    assert_eq!(
        the_error(&full_job("alert_to = \"dba@example.com\"\n")),
        at(13, 12, "jobs.prod-full.alert_to: expected array of strings, found string (hint: write a list: alert_to = [\"dba@example.com\"])")
    );
}
