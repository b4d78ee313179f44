//! `[http]`: the HTTP API and the Prometheus metrics.
//!
//! The table's presence turns the API on and `enabled = false` turns it off
//! again; either way every key is checked, so switching it on later cannot
//! reveal old mistakes. The API can start backups and pause jobs, so every
//! request needs a token and the only opening, a `/metrics` without one, is
//! confined to loopback addresses. Listening elsewhere without TLS is
//! allowed (a TLS-terminating proxy in front is common); the daemon logs a
//! warning about it.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use super::build::{absolute_path, check_file_pattern};
use super::error::Sink;
use super::model::HttpSettings;
use super::reader::Section;

const HTTP_KEYS: [&str; 8] = [
    "enabled",
    "listen",
    "token_file",
    "tls_cert",
    "tls_key",
    "metrics_public",
    "mutations_per_minute",
    "max_body_bytes",
];
const DEFAULT_MUTATIONS_PER_MINUTE: u32 = 5;
const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: i64 = 10 * 1024 * 1024;
const LISTEN_HINT: &str = "write IP:PORT, e.g. \"127.0.0.1:9187\" or \"[::1]:9187\"";
const TOKEN_FILE_EXAMPLES: &str =
    "e.g. \"/etc/mongo-backupd/api-tokens\" or \"${CREDENTIALS_DIRECTORY}/api-tokens\"";

/// `[http]`: `None` when it is disabled or has errors (which fail the
/// whole file anyway).
pub(crate) fn http(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<HttpSettings> {
    section.reject_unknown(sink, &HTTP_KEYS);
    let enabled = match section.contains("enabled") {
        true => section.boolean(sink, "enabled"),
        false => Some(true),
    };
    let listen = match section.contains("listen") {
        true => listen(sink, section),
        false => HttpSettings::DEFAULT_LISTEN.parse().ok(),
    };
    // Required only while the API is on; an `enabled` that is not a
    // boolean has been reported already, so it is not asked for then.
    let token_file = match section.contains("token_file") {
        true => token_file(sink, section).map(Some),
        false if enabled == Some(true) => {
            section.missing(
                sink,
                "token_file",
                Some(
                    "the API needs a file of tokens, one \"NAME TOKEN\" per line, \
                     e.g. token_file = \"/etc/mongo-backupd/api-tokens\""
                        .to_string(),
                ),
            );
            None
        }
        false => Some(None),
    };
    let tls = tls(sink, section);
    let metrics_public = metrics_public(sink, section, listen);
    let mutations_per_minute = match section.contains("mutations_per_minute") {
        true => section
            .integer_in(sink, "mutations_per_minute", 1, 1000)
            .and_then(|n| u32::try_from(n).ok()),
        false => Some(DEFAULT_MUTATIONS_PER_MINUTE),
    };
    let max_body_bytes = match section.contains("max_body_bytes") {
        true => section
            .integer_in(sink, "max_body_bytes", 1024, MAX_BODY_BYTES)
            .and_then(|n| usize::try_from(n).ok()),
        false => Some(DEFAULT_MAX_BODY_BYTES),
    };

    if !enabled? {
        return None;
    }
    let (tls_cert, tls_key) = tls?;
    Some(HttpSettings {
        listen: listen?,
        token_file: token_file??,
        tls_cert,
        tls_key,
        metrics_public: metrics_public?,
        mutations_per_minute: mutations_per_minute?,
        max_body_bytes: max_body_bytes?,
    })
}

/// `listen`, with the usual near misses recognised: a host name, a missing
/// port, a URL.
fn listen(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<SocketAddr> {
    let value = section.string(sink, "listen")?;
    let text = value.value;
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let (message, hint) = listen_problem(text);
    sink.error(value.span, &section.key_path("listen"), message, Some(hint));
    None
}

/// Why `text` is not an `IP:PORT`: a message and a hint.
fn listen_problem(text: &str) -> (String, String) {
    let generic = || {
        (
            format!("invalid listen address {text:?}"),
            LISTEN_HINT.to_string(),
        )
    };
    if text.is_empty() {
        return ("listen is empty".to_string(), LISTEN_HINT.to_string());
    }
    if text.contains("://") || text.contains('/') {
        return (
            format!("listen must be an IP address and port, not a URL: {text:?}"),
            "e.g. listen = \"127.0.0.1:9187\"".to_string(),
        );
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        let hint = match ip {
            IpAddr::V4(_) => format!("add the port, e.g. \"{ip}:9187\""),
            IpAddr::V6(_) => {
                format!("add the port; IPv6 addresses go in brackets, e.g. \"[{ip}]:9187\"")
            }
        };
        return (format!("listen address {text:?} has no port"), hint);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        // No colon at all: a bare host name such as "localhost".
        return if is_host_name(text) {
            (
                format!("listen must be an IP address and port, found the host name {text:?}"),
                "use an IP address and add the port, e.g. 127.0.0.1:9187".to_string(),
            )
        } else {
            generic()
        };
    };
    let host_is_ip = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse::<IpAddr>()
        .is_ok();
    match port.parse::<u64>() {
        // An IP and a number, so the number is what is wrong.
        Ok(port) if host_is_ip => (
            format!("listen address {text:?}: port {port} is out of range 0-65535"),
            LISTEN_HINT.to_string(),
        ),
        Ok(port) if host.is_empty() && port <= u64::from(u16::MAX) => (
            format!("listen address {text:?} has no IP address"),
            format!(
                "use 127.0.0.1:{port} for this machine only, or 0.0.0.0:{port} for every address"
            ),
        ),
        Ok(port) if is_host_name(host) && port <= u64::from(u16::MAX) => (
            format!("listen must be an IP address and port, found the host name {host:?}"),
            format!("use an IP address, e.g. 127.0.0.1:{port}"),
        ),
        _ if host_is_ip && port.is_empty() => (
            format!("listen address {text:?} has no port"),
            format!("add the port, e.g. \"{text}9187\""),
        ),
        _ => generic(),
    }
}

/// Looks like a DNS name (letters, digits, `-` and `.`, with a letter
/// somewhere), as opposed to a mistyped IP address.
fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.chars().any(|c| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// `token_file`: absolute, or starting with `${VAR}` (a systemd credential),
/// expanded when the daemon reads it.
fn token_file(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<PathBuf> {
    let value = section.string(sink, "token_file")?;
    if let Some((message, hint)) = check_file_pattern(
        "token_file",
        value.value,
        "the API tokens",
        TOKEN_FILE_EXAMPLES,
    ) {
        sink.error(
            value.span,
            &section.key_path("token_file"),
            message,
            Some(hint),
        );
        return None;
    }
    Some(PathBuf::from(value.value))
}

/// `tls_cert` and `tls_key`: both or neither. A lone one is reported at
/// itself, naming its missing partner.
fn tls(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<(Option<PathBuf>, Option<PathBuf>)> {
    let cert = optional_path(sink, section, "tls_cert");
    let key = optional_path(sink, section, "tls_key");
    let lone = match (section.contains("tls_cert"), section.contains("tls_key")) {
        (true, false) => Some(("tls_cert", "tls_key")),
        (false, true) => Some(("tls_key", "tls_cert")),
        _ => None,
    };
    if let Some((set, missing)) = lone {
        sink.error(
            section.key_span(set),
            &section.key_path(set),
            format!("{set} is set but no {missing}"),
            Some(format!(
                "HTTPS needs both the certificate chain (tls_cert) and its private key \
                 (tls_key), PEM files; remove {set} to serve plain HTTP"
            )),
        );
        return None;
    }
    Some((cert?, key?))
}

/// An optional absolute path; `Some(None)`: not set.
fn optional_path(sink: &mut Sink<'_>, section: &Section<'_>, key: &str) -> Option<Option<PathBuf>> {
    match section.contains(key) {
        true => absolute_path(sink, section, key).map(Some),
        false => Some(None),
    }
}

/// `metrics_public`: refused unless the API listens on loopback, where only
/// this machine can reach it. Not checked against a `listen` with errors.
fn metrics_public(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    listen: Option<SocketAddr>,
) -> Option<bool> {
    if !section.contains("metrics_public") {
        return Some(false);
    }
    let public = section.boolean(sink, "metrics_public")?;
    let Some(listen) = listen else {
        return Some(public);
    };
    if !public || listen.ip().to_canonical().is_loopback() {
        return Some(public);
    }
    sink.error(
        section.value_span("metrics_public"),
        &section.key_path("metrics_public"),
        "metrics_public is only allowed on a loopback address",
        Some(format!(
            "listen = \"{}\" is reachable from other machines: keep metrics_public = false \
             and give Prometheus a token in its scrape config (authorization \
             credentials_file, or bearer_token_file), or listen on 127.0.0.1",
            listen
        )),
    );
    None
}
