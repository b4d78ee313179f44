//! `[alerts]` and `[alerts.email]`: how often alerts are sent, the SMTP
//! server and its login, and the recipients; also the mailbox checks that
//! jobs' `alert_to` shares.
//!
//! A broken alert setting is worse than a missing one: the daemon would
//! start, look healthy, and stay silent on the night a backup fails. So
//! everything that can be checked without the network is checked here,
//! including that a login never crosses the network in clear text.

use std::time::Duration;

use lettre::address::AddressError;
use lettre::message::Mailbox;

use super::alerts::{AlertSettings, EmailSettings, SecretSource, SmtpTls};
use super::build::{absolute_path, check_env_name, check_file_pattern};
use super::error::Sink;
use super::reader::{Section, Spanned};

const ALERT_KEYS: [&str; 4] = ["reminder_interval", "max_per_hour", "stale_factor", "email"];
/// `tls` before `to`: both are two edits from the typo "tsl", and the first
/// listed wins.
const EMAIL_KEYS: [&str; 13] = [
    "host",
    "port",
    "tls",
    "ca_file",
    "username",
    "password_file",
    "password_env",
    "from",
    "to",
    "subject_prefix",
    "timeout",
    "queue_limit",
    "retry_max_interval",
];
const PASSWORD_KEYS: [&str; 2] = ["password_file", "password_env"];
const PASSWORD_SOURCES: &str =
    "set password_file (a file holding the password) or password_env (an environment variable holding it)";
const HOST_HINT: &str = "write only the host name, e.g. host = \"smtp.example.com\"";
const MAILBOX_HINT: &str = "e.g. \"ops@example.com\" or \"On-call <oncall@example.com>\"";
const DEFAULT_SUBJECT_PREFIX: &str = "[mongo-backupd]";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_QUEUE_LIMIT: i64 = 100;
const DEFAULT_RETRY_MAX_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// A factor of 1 or less would call every job stale just before its next
/// run; above 100 staleness would never be noticed in practice.
const MAX_STALE_FACTOR: f64 = 100.0;

/// `[alerts]`. Settings with errors keep their defaults: the errors fail
/// the whole file, so the values are never used.
pub(crate) fn alerts(sink: &mut Sink<'_>, section: &Section<'_>) -> AlertSettings {
    section.reject_unknown(sink, &ALERT_KEYS);
    let mut settings = AlertSettings::default();
    if let Some(Some(interval)) = positive_duration(sink, section, "reminder_interval", "6h") {
        settings.reminder_interval = interval;
    }
    if let Some(Some(n)) = count(sink, section, "max_per_hour", 1, 1000) {
        settings.max_per_hour = u32::try_from(n).unwrap_or(settings.max_per_hour);
    }
    if let Some(factor) = stale_factor(sink, section) {
        settings.stale_factor = factor;
    }
    settings.email = section
        .table(sink, "email", "a table ([alerts.email])")
        .and_then(|email| email_settings(sink, &email));
    settings
}

fn stale_factor(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<f64> {
    let factor = section.number(sink, "stale_factor")?;
    // Written so that NaN fails too.
    if factor.value > 1.0 && factor.value <= MAX_STALE_FACTOR {
        return Some(factor.value);
    }
    sink.error(
        factor.span,
        &section.key_path("stale_factor"),
        format!(
            "stale_factor = {} must be more than 1 and at most {MAX_STALE_FACTOR}",
            factor.value
        ),
        Some(
            "a job is stale when its last success is older than its schedule's interval \
             times this factor, e.g. stale_factor = 1.5"
                .to_string(),
        ),
    );
    None
}

/// `[alerts.email]`; `None` if any of it is wrong.
fn email_settings(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<EmailSettings> {
    section.reject_unknown_except(sink, &EMAIL_KEYS, &["password"]);
    let literal_password = reject_literal_password(sink, section);
    let host = host(sink, section);
    let tls = match section.contains("tls") {
        true => section.choice(sink, "tls", "TLS mode", &SmtpTls::NAMES, SmtpTls::from_name),
        false => Some(SmtpTls::StartTls),
    };
    let port = match section.contains("port") {
        true => section
            .integer_in(sink, "port", 1, 65_535)
            .and_then(|n| u16::try_from(n).ok()),
        false => tls.map(SmtpTls::default_port),
    };
    let ca_file = match section.contains("ca_file") {
        true => absolute_path(sink, section, "ca_file").map(Some),
        false => Some(None),
    };
    let login = login(sink, section, tls, literal_password);
    let from = from(sink, section);
    let to = to(sink, section);
    let subject_prefix = subject_prefix(sink, section);
    let timeout = positive_duration(sink, section, "timeout", "30s");
    let queue_limit = count(sink, section, "queue_limit", 1, 100_000);
    let retry_max_interval = positive_duration(sink, section, "retry_max_interval", "5m");

    let (username, password) = login?;
    Some(EmailSettings {
        host: host?,
        port: port?,
        tls: tls?,
        ca_file: ca_file?,
        username,
        password,
        from: from?,
        to: to?,
        subject_prefix: subject_prefix?,
        timeout: timeout?.unwrap_or(DEFAULT_TIMEOUT),
        queue_limit: usize::try_from(queue_limit?.unwrap_or(DEFAULT_QUEUE_LIMIT)).ok()?,
        retry_max_interval: retry_max_interval?.unwrap_or(DEFAULT_RETRY_MAX_INTERVAL),
    })
}

/// A password in the file would end up in backups of /etc, in version
/// control and in `check-config` output pasted into tickets. Returns
/// whether one was there, so the missing password source is not reported
/// twice. The value is never read, let alone shown.
fn reject_literal_password(sink: &mut Sink<'_>, section: &Section<'_>) -> bool {
    if !section.contains("password") {
        return false;
    }
    sink.error(
        section.key_span("password"),
        &section.key_path("password"),
        "passwords are not written in the configuration file",
        Some(
            "put it in a file readable only by the daemon and set password_file, \
             or set password_env"
                .to_string(),
        ),
    );
    true
}

fn host(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<String> {
    let value = section.required_string(
        sink,
        "host",
        Some("the SMTP server, e.g. host = \"smtp.example.com\"".to_string()),
    )?;
    let text = value.value;
    let (message, hint) = if text.is_empty() {
        ("host is empty".to_string(), HOST_HINT.to_string())
    } else if text.contains("://") {
        (
            format!("host must be a host name, not a URL: {text:?}"),
            HOST_HINT.to_string(),
        )
    } else if text.chars().any(char::is_whitespace) {
        (
            format!("host {text:?} contains whitespace"),
            HOST_HINT.to_string(),
        )
    } else if let Some((name, port)) = host_and_port(text) {
        (
            format!("host {text:?} includes a port"),
            format!("set the port on its own: host = {name:?} and port = {port}"),
        )
    } else {
        return Some(text.to_string());
    };
    sink.error(value.span, &section.key_path("host"), message, Some(hint));
    None
}

/// `name:port`, but not an IPv6 address, whose colons are not a port.
fn host_and_port(text: &str) -> Option<(&str, u16)> {
    let (name, port) = text.rsplit_once(':')?;
    let port = port.parse().ok()?;
    (!name.contains(':')).then_some((name, port))
}

/// `username` and where its password is read from: `(None, None)` for a
/// server without login.
fn login(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    tls: Option<SmtpTls>,
    literal_password: bool,
) -> Option<(Option<String>, Option<SecretSource>)> {
    let username = username(sink, section);
    let password = password_source(sink, section);
    match (&username, &password) {
        // A literal password has been reported already, with a hint
        // naming the same two keys.
        (Some(Some(_)), Some(None)) if literal_password => return None,
        (Some(Some(_)), Some(None)) => {
            sink.error(
                section.key_span("username"),
                &section.key_path("username"),
                "username is set but no password_file or password_env",
                Some(format!(
                    "{PASSWORD_SOURCES}, or remove username if the server needs no login"
                )),
            );
            return None;
        }
        (Some(None), Some(Some((_, key)))) => {
            sink.error(
                section.key_span(key),
                &section.key_path(key),
                format!("{key} is set but no username"),
                Some(format!(
                    "set username too, or remove {key} if the server needs no login"
                )),
            );
            return None;
        }
        _ => {}
    }
    if tls == Some(SmtpTls::None) && matches!(username, Some(Some(_))) {
        sink.error(
            section.value_span("tls"),
            &section.key_path("tls"),
            "tls = \"none\" would send the username and password in clear text",
            Some("use tls = \"starttls\" or \"tls\"".to_string()),
        );
        return None;
    }
    Some((username?, password?.map(|(source, _)| source)))
}

/// `Some(None)`: not set.
fn username(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<Option<String>> {
    if !section.contains("username") {
        return Some(None);
    }
    let value = section.string(sink, "username")?;
    if value.value.is_empty() {
        sink.error(
            value.span,
            &section.key_path("username"),
            "username is empty",
            Some("remove username if the server needs no login".to_string()),
        );
        return None;
    }
    Some(Some(value.value.to_string()))
}

/// At most one of `password_file` and `password_env`, with the key it came
/// from; `Some(None)`: neither is set.
fn password_source(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
) -> Option<Option<(SecretSource, &'static str)>> {
    let mut present: Vec<&'static str> = PASSWORD_KEYS
        .into_iter()
        .filter(|k| section.contains(k))
        .collect();
    present.sort_by_key(|k| section.key_span(k).map_or(0, |s| s.start));
    match present.as_slice() {
        [] => Some(None),
        [key] => secret_source(sink, section, key).map(|source| Some((source, *key))),
        // At the second key, as for a source's URI keys: the first one was
        // fine on its own.
        [first, second, ..] => {
            sink.error(
                section.key_span(second),
                &section.key_path(second),
                format!("{first} and {second} are both set"),
                Some(format!("{PASSWORD_SOURCES}, not both")),
            );
            None
        }
    }
}

fn secret_source(sink: &mut Sink<'_>, section: &Section<'_>, key: &str) -> Option<SecretSource> {
    let value = section.string(sink, key)?;
    let text = value.value;
    let problem = if key == "password_file" {
        check_file_pattern(
            key,
            text,
            "the password",
            "e.g. \"/etc/mongo-backupd/smtp-password\" or \"${CREDENTIALS_DIRECTORY}/smtp-password\"",
        )
    } else {
        check_env_name(key, text, "SMTP_PASSWORD")
    };
    if let Some((message, hint)) = problem {
        sink.error(value.span, &section.key_path(key), message, Some(hint));
        return None;
    }
    Some(if key == "password_file" {
        SecretSource::File(text.into())
    } else {
        SecretSource::Env(text.to_string())
    })
}

fn from(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<String> {
    let value = section.required_string(
        sink,
        "from",
        Some("the sender, e.g. from = \"mongo-backupd <backups@example.com>\"".to_string()),
    )?;
    check_mailbox(sink, &section.key_path("from"), &value).then(|| value.value.to_string())
}

fn to(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<Vec<String>> {
    let hint = "the recipients, e.g. to = [\"ops@example.com\"]";
    if !section.contains("to") {
        section.missing(sink, "to", Some(hint.to_string()));
        return None;
    }
    let to = mailboxes(sink, section, "to")?;
    if to.is_empty() {
        sink.error(
            section.value_span("to"),
            &section.key_path("to"),
            "to is empty",
            Some(hint.to_string()),
        );
        return None;
    }
    Some(to)
}

/// An array of mailboxes, as written; every bad one is reported, at the
/// element. Also used for jobs' `alert_to`.
pub(crate) fn mailboxes(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    key: &str,
) -> Option<Vec<String>> {
    let (values, mut ok) = section.strings(sink, key)?;
    let path = section.key_path(key);
    for value in &values {
        ok &= check_mailbox(sink, &path, value);
    }
    ok.then(|| values.iter().map(|v| v.value.to_string()).collect())
}

/// Parsed the way the mailer will parse it, so an address accepted here is
/// one mail can be sent to.
fn check_mailbox(sink: &mut Sink<'_>, path: &str, value: &Spanned<&str>) -> bool {
    let text = value.value;
    let Err(err) = text.parse::<Mailbox>() else {
        return true;
    };
    let message = match mailbox_problem(text, err) {
        Some(reason) => format!("invalid email address {text:?}: {reason}"),
        None => format!("invalid email address {text:?}"),
    };
    sink.error(
        value.span.clone(),
        path,
        message,
        Some(MAILBOX_HINT.to_string()),
    );
    false
}

/// Why `text` is not a mailbox, when that can be told: lettre's parser
/// says "invalid input" for most mistakes, which adds nothing to the
/// address itself, so the common ones are recognised here.
fn mailbox_problem(text: &str, err: AddressError) -> Option<&'static str> {
    let address = match text.rsplit_once('<') {
        Some((_, angled)) => angled.trim_end().trim_end_matches('>'),
        None => text.trim(),
    };
    if text.trim().is_empty() {
        Some("it is empty")
    } else if text.matches('<').count() != text.matches('>').count() {
        Some("unbalanced angle brackets")
    } else if !address.contains('@') {
        Some("it has no \"@\"")
    } else if address.starts_with('@') {
        Some("the name before \"@\" is missing")
    } else if address.ends_with('@') {
        Some("the domain after \"@\" is missing")
    } else {
        match err {
            AddressError::InvalidUser => Some("the name before \"@\" is invalid"),
            AddressError::InvalidDomain => Some("the domain is invalid"),
            _ => None,
        }
    }
}

fn subject_prefix(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<String> {
    if !section.contains("subject_prefix") {
        return Some(DEFAULT_SUBJECT_PREFIX.to_string());
    }
    let value = section.string(sink, "subject_prefix")?;
    // A line break would end the Subject header and start another one.
    if value.value.contains(['\r', '\n']) {
        sink.error(
            value.span,
            &section.key_path("subject_prefix"),
            "subject_prefix must not contain line breaks",
            Some("the subject is a single line, e.g. subject_prefix = \"[backups]\"".to_string()),
        );
        return None;
    }
    Some(value.value.to_string())
}

/// An optional duration longer than zero: zero would mean "no timeout" to
/// some readers and "give up at once" to others. `Some(None)`: not set.
/// `example` goes into the hint.
pub(crate) fn positive_duration(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    key: &str,
    example: &str,
) -> Option<Option<Duration>> {
    if !section.contains(key) {
        return Some(None);
    }
    let duration = section.duration(sink, key, "wdhms")?;
    if duration.value.is_zero() {
        sink.error(
            duration.span,
            &section.key_path(key),
            format!("{key} must be longer than 0s"),
            Some(format!("e.g. {key} = {example:?}")),
        );
        return None;
    }
    Some(Some(duration.value))
}

/// An optional integer in `min..=max`; `Some(None)`: not set.
fn count(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    key: &str,
    min: i64,
    max: i64,
) -> Option<Option<i64>> {
    if !section.contains(key) {
        return Some(None);
    }
    section.integer_in(sink, key, min, max).map(Some)
}
