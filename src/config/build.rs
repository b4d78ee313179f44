//! From TOML text to [`Config`]: the top level, `[daemon]` and
//! `[sources.*]` (storage locations are in `build_storage`, jobs in
//! `build_job`, alerts in `build_alerts`, the HTTP API in `build_http`).
//! Every check runs even after a failure, so one `check-config` run lists
//! every mistake.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use toml_edit::Document;

use super::alerts::AlertSettings;
use super::build_alerts;
use super::build_drill;
use super::build_http;
use super::build_job::{self, Names};

// The `[storage.*]` tables, in a file of their own next to this one. A
// child of this module, declared here so `config.rs` need not change; it
// names everything by `crate::config::` paths, so the declaration can move
// there unchanged.
#[path = "build_storage.rs"]
pub(crate) mod build_storage;
use super::error::{ConfigErrors, Sink};
use super::model::{
    has_mongodb_scheme, Config, DaemonSettings, LogLevel, LogRotation, Source, UriSpec,
    DEFAULT_CONTROL_SOCKET,
};
use super::reader::{Section, Span};
use super::suggest::parse_time_zone;

const TOP_LEVEL: [&str; 6] = ["daemon", "sources", "storage", "jobs", "alerts", "http"];
const DAEMON_KEYS: [&str; 9] = [
    "state_dir",
    "timezone",
    "max_concurrent_jobs",
    "shutdown_grace",
    "log_level",
    "log_file",
    "log_rotation",
    "control_socket",
    "control_group",
];
const SOURCE_KEYS: [&str; 4] = ["uri", "uri_file", "uri_env", "connect_timeout"];
const URI_KEYS: [&str; 3] = ["uri", "uri_file", "uri_env"];
const MAX_NAME_LEN: usize = 64;
/// `sun_path` holds 108 bytes on Linux, the terminating NUL included.
const MAX_SOCKET_PATH: usize = 107;
/// The longest group name that is portable (shadow-utils' default limit).
const MAX_GROUP_NAME: usize = 32;
const GROUP_HINT: &str = "a group name starts with a letter or \"_\" and contains only letters, \
     digits, \"_\" and \"-\", e.g. control_group = \"mongo-backupd-admins\"";
const GID_HINT: &str =
    "use the group's name, not its GID, e.g. control_group = \"mongo-backupd-admins\"";

pub(crate) fn build(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
    let mut sink = Sink::new(path, text);
    let doc = match Document::parse(text) {
        Ok(doc) => doc,
        Err(err) => {
            // toml_edit stops at the first syntax error; its span and
            // message are the best information there is.
            sink.error(
                err.span(),
                "",
                format!("invalid TOML: {}", err.message()),
                None,
            );
            return Err(ConfigErrors(sink.finish()));
        }
    };
    let root = Section::new(doc.as_table(), String::new(), Some(0..0));
    root.reject_unknown(&mut sink, &TOP_LEVEL);

    let daemon = match root.table(&mut sink, "daemon", "a table ([daemon])") {
        Some(section) => daemon(&mut sink, &section),
        None => DaemonSettings::default(),
    };

    let alerts = match root.table(&mut sink, "alerts", "a table ([alerts])") {
        Some(section) => build_alerts::alerts(&mut sink, &section),
        None => AlertSettings::default(),
    };

    let http = root
        .table(&mut sink, "http", "a table ([http])")
        .and_then(|section| build_http::http(&mut sink, &section));

    let mut sources = BTreeMap::new();
    let source_tables = named_tables(&mut sink, &root, "sources", "source");
    for (name, section) in &source_tables {
        if let Some(source) = source(&mut sink, name, section) {
            sources.insert(name.clone(), source);
        }
    }

    let mut storage = BTreeMap::new();
    // The declared type of every location whose `type` is valid, even if
    // the rest of it is not, for the jobs' checks.
    let mut storage_types = BTreeMap::new();
    let storage_tables = named_tables(&mut sink, &root, "storage", "storage");
    for (name, section) in &storage_tables {
        let (kind, location) = build_storage::storage_location(&mut sink, name, section);
        if let Some(kind) = kind {
            storage_types.insert(name.clone(), kind);
        }
        if let Some(location) = location {
            storage.insert(name.clone(), location);
        }
    }

    // Jobs are checked against every defined name, including sources and
    // storage that had errors of their own: one mistake, one message.
    let names = Names {
        sources: source_tables.iter().map(|(n, _)| n.clone()).collect(),
        storage: storage_tables.iter().map(|(n, _)| n.clone()).collect(),
        storage_types,
    };
    let mut jobs = BTreeMap::new();
    let (readers, writers): (Vec<_>, Vec<_>) = named_tables(&mut sink, &root, "jobs", "job")
        .into_iter()
        .partition(|(_, section)| build_drill::is_reader(section));
    for (name, section) in writers {
        if let Some(job) = build_job::job(&mut sink, &name, &section, &names, daemon.timezone) {
            jobs.insert(name, job);
        }
    }
    // Drills and standbys take their source and storage from the backup
    // job they read, so they come second.
    for (name, section) in readers {
        let job = build_drill::job(&mut sink, &name, &section, &names, &jobs, daemon.timezone);
        if let Some(job) = job {
            jobs.insert(name, job);
        }
    }

    if sink.has_errors() {
        return Err(ConfigErrors(sink.finish()));
    }
    Ok(Config {
        path: path.to_path_buf(),
        daemon,
        sources,
        storage,
        jobs,
        alerts,
        http,
    })
}

/// The `[key.NAME]` tables under `key`, with valid names, in file order.
fn named_tables<'d>(
    sink: &mut Sink<'_>,
    root: &Section<'d>,
    key: &str,
    what: &str,
) -> Vec<(String, Section<'d>)> {
    let expected = format!("a table of {what} definitions ([{key}.NAME])");
    let Some(parent) = root.table(sink, key, &expected) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, item) in parent.entries() {
        let path = parent.key_path(name);
        let name_ok = check_name(sink, what, name, parent.key_span(name), &path);
        match item.as_table_like() {
            Some(table) => {
                if name_ok {
                    let anchor = item.span().or_else(|| parent.key_span(name));
                    out.push((name.to_string(), Section::new(table, path, anchor)));
                }
            }
            None => sink.error(
                parent.value_span(name),
                &path,
                format!(
                    "expected a table ([{key}.{name}]), found {}",
                    super::reader::type_name(item)
                ),
                None,
            ),
        }
    }
    out
}

/// Names become directory names, metric labels and log fields, so they are
/// kept to a portable alphabet.
fn check_name(sink: &mut Sink<'_>, what: &str, name: &str, span: Span, path: &str) -> bool {
    let message = if name.is_empty() {
        format!("{what} name must not be empty")
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        format!("{what} name {name:?} must start with a letter or digit and contain only letters, digits, \"-\" and \"_\"")
    } else if name.len() > MAX_NAME_LEN {
        format!("{what} name {name:?} is longer than {MAX_NAME_LEN} characters")
    } else {
        return true;
    };
    sink.error(
        span,
        path,
        message,
        Some("names are used in directory names and logs, e.g. \"prod-full\"".to_string()),
    );
    false
}

fn daemon(sink: &mut Sink<'_>, section: &Section<'_>) -> DaemonSettings {
    section.reject_unknown(sink, &DAEMON_KEYS);
    let mut settings = DaemonSettings::default();
    if let Some(dir) = absolute_path(sink, section, "state_dir") {
        settings.state_dir = dir;
    }
    if let Some(tz) = time_zone(sink, section, "timezone") {
        settings.timezone = tz;
    }
    if let Some(n) = section.integer_in(sink, "max_concurrent_jobs", 1, 64) {
        settings.max_concurrent_jobs = usize::try_from(n).unwrap_or(1);
    }
    if let Some(grace) = section.duration(sink, "shutdown_grace", "wdhms") {
        settings.shutdown_grace = grace.value;
    }
    if let Some(level) = section.choice(
        sink,
        "log_level",
        "log level",
        &LogLevel::NAMES,
        LogLevel::from_name,
    ) {
        settings.log_level = level;
    }
    settings.log_file = absolute_path(sink, section, "log_file");
    if let Some(rotation) = section.choice(
        sink,
        "log_rotation",
        "log rotation",
        &LogRotation::NAMES,
        LogRotation::from_name,
    ) {
        settings.log_rotation = rotation;
    }
    if let Some(socket) = control_socket(sink, section) {
        settings.control_socket = socket;
    }
    settings.control_group = control_group(sink, section);
    settings
}

/// `control_socket`: an absolute path short enough for a Unix socket
/// address, naming the socket file itself.
fn control_socket(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<PathBuf> {
    let key = "control_socket";
    let path = absolute_path(sink, section, key)?;
    let len = path.as_os_str().len();
    let (message, hint) = if len > MAX_SOCKET_PATH {
        (
            format!(
                "control_socket is {len} bytes long; Unix socket paths are limited to {MAX_SOCKET_PATH} bytes"
            ),
            format!("choose a shorter path, e.g. the default {DEFAULT_CONTROL_SOCKET:?}"),
        )
    } else if path.as_os_str().as_encoded_bytes().ends_with(b"/") {
        (
            format!("control_socket must name the socket file, not a directory: {path:?}"),
            format!("e.g. control_socket = {DEFAULT_CONTROL_SOCKET:?}"),
        )
    } else {
        return Some(path);
    };
    sink.error(
        section.value_span(key),
        &section.key_path(key),
        message,
        Some(hint),
    );
    None
}

/// `control_group`: only the name's shape is checked. Whether the group
/// exists is the daemon's business when it creates the socket: parsing
/// reads nothing but the text.
fn control_group(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<String> {
    let key = "control_group";
    let path = section.key_path(key);
    // A GID would otherwise get "write it in quotes", then fail as a name.
    let gid = section
        .entries()
        .find(|(k, _)| *k == key)
        .and_then(|(_, item)| item.as_integer());
    if let Some(gid) = gid {
        sink.error(
            section.value_span(key),
            &path,
            format!("expected a group name, found the number {gid}"),
            Some(GID_HINT.to_string()),
        );
        return None;
    }
    let value = section.string(sink, key)?;
    let name = value.value;
    let (message, hint) = if name.is_empty() {
        (
            "control_group is empty".to_string(),
            "name a group, or remove control_group to leave the socket to the daemon's user"
                .to_string(),
        )
    } else if name.bytes().all(|b| b.is_ascii_digit()) {
        (
            format!("{name:?} is not a valid group name"),
            GID_HINT.to_string(),
        )
    } else if !is_group_name(name) {
        (
            format!("{name:?} is not a valid group name"),
            GROUP_HINT.to_string(),
        )
    } else if name.len() > MAX_GROUP_NAME {
        (
            format!("group name {name:?} is longer than {MAX_GROUP_NAME} characters"),
            GROUP_HINT.to_string(),
        )
    } else {
        return Some(name.to_string());
    };
    sink.error(value.span, &path, message, Some(hint));
    None
}

/// The POSIX portable form: a letter or `_`, then letters, digits, `_`
/// and `-`.
fn is_group_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn source(sink: &mut Sink<'_>, name: &str, section: &Section<'_>) -> Option<Source> {
    section.reject_unknown(sink, &SOURCE_KEYS);
    let timeout = match section.duration(sink, "connect_timeout", "wdhms") {
        Some(t) if t.value.is_zero() => {
            sink.error(
                t.span,
                &section.key_path("connect_timeout"),
                "connect_timeout must be longer than 0s",
                Some("e.g. connect_timeout = \"10s\"".to_string()),
            );
            None
        }
        Some(t) => Some(t.value),
        None if section.contains("connect_timeout") => None,
        None => Some(std::time::Duration::from_secs(10)),
    };

    // Exactly one of the three URI keys; they are reported in file order.
    let mut present: Vec<&str> = URI_KEYS
        .iter()
        .copied()
        .filter(|k| section.contains(k))
        .collect();
    present.sort_by_key(|k| section.key_span(k).map_or(0, |s| s.start));
    let hint = "set exactly one of uri, uri_file (a file holding the URI) or uri_env (an environment variable holding it)";
    let uri = match present.as_slice() {
        [] => {
            section.missing(sink, "uri", Some(hint.to_string()));
            None
        }
        [key] => uri_spec(sink, section, key),
        // Reported at the second key: the first one was fine on its own.
        [first, second, more @ ..] => {
            let listed = if more.is_empty() {
                format!("{first} and {second} are both set")
            } else {
                format!("{} are all set", present.join(", "))
            };
            sink.error(
                section.key_span(second),
                &section.key_path(second),
                listed,
                Some(hint.to_string()),
            );
            None
        }
    };
    let (uri, key) = uri?;
    Some(Source {
        name: name.to_string(),
        uri,
        connect_timeout: timeout?,
        origin: sink.origin(section.value_span(key), &section.key_path(key)),
    })
}

fn uri_spec<'k>(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    key: &'k str,
) -> Option<(UriSpec, &'k str)> {
    let value = section.string(sink, key)?;
    let text = value.value;
    let path = section.key_path(key);
    // Messages about `uri` never quote it: it may contain a password.
    let problem: Option<(String, String)> = match key {
        "uri" if text.is_empty() => Some((
            "the URI is empty".into(),
            "e.g. uri = \"mongodb://localhost:27017/\"".into(),
        )),
        "uri" if !has_mongodb_scheme(text) => Some((
            "the URI must start with mongodb:// or mongodb+srv://".into(),
            if text.starts_with('/') || text.starts_with("${") {
                "to read the URI from a file, use uri_file".into()
            } else if is_env_name(text.trim_start_matches('$')) {
                "to read the URI from an environment variable, use uri_env".into()
            } else {
                "e.g. uri = \"mongodb://db1:27017/?replicaSet=rs0\"".into()
            },
        )),
        "uri_file" => check_file_pattern(
            key,
            text,
            "the URI",
            "e.g. \"/etc/mongo-backupd/prod.uri\" or \"${CREDENTIALS_DIRECTORY}/prod-uri\"",
        ),
        "uri_env" => check_env_name(key, text, "PROD_MONGODB_URI"),
        _ => None,
    };
    if let Some((message, hint)) = problem {
        sink.error(value.span, &path, message, Some(hint));
        return None;
    }
    let spec = match key {
        "uri" => UriSpec::Inline(text.to_string()),
        "uri_file" => UriSpec::File(PathBuf::from(text)),
        _ => UriSpec::Env(text.to_string()),
    };
    Some((spec, key))
}

/// The value of `key`, a file holding a secret (`uri_file`,
/// `password_file`): a message and a hint if it is malformed. The path is
/// expanded at use time, so only its shape is checked here: absolute (after
/// expansion) and well-formed `${VAR}` references. `holding` says what the
/// file holds ("the URI") and `examples` is the hint for a relative path.
pub(crate) fn check_file_pattern(
    key: &str,
    text: &str,
    holding: &str,
    examples: &str,
) -> Option<(String, String)> {
    if text.is_empty() {
        return Some((
            format!("{key} is empty"),
            format!("give the path of a file holding {holding}"),
        ));
    }
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Some((
                "\"${\" is not closed with \"}\"".into(),
                "write ${VARIABLE}/file".into(),
            ));
        };
        if !is_env_name(&after[..end]) {
            return Some((
                format!(
                    "{:?} is not a valid variable reference",
                    &rest[start..start + end + 3]
                ),
                "write ${VARIABLE} with letters, digits and \"_\"".into(),
            ));
        }
        rest = &after[end + 1..];
    }
    if !(text.starts_with('/') || text.starts_with("${")) {
        return Some((
            format!("{key} must be an absolute path, found {text:?}"),
            examples.to_string(),
        ));
    }
    None
}

/// The value of `key`, the name of an environment variable (`uri_env`,
/// `password_env`): a message and a hint if it is not a plain name.
/// `example` is a name to suggest when no fix can be guessed.
pub(crate) fn check_env_name(key: &str, text: &str, example: &str) -> Option<(String, String)> {
    if is_env_name(text) {
        return None;
    }
    // `$VAR` and `${VAR}` are shell habits; the name inside is what we need.
    let bare = text
        .trim_start_matches('$')
        .trim_start_matches('{')
        .trim_end_matches('}');
    let hint = if is_env_name(bare) {
        format!("write the name without $ or braces: {key} = {bare:?}")
    } else {
        format!("use letters, digits and \"_\", e.g. {key} = {example:?}")
    };
    Some((
        format!("{text:?} is not an environment variable name"),
        hint,
    ))
}

fn is_env_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An optional absolute path: the daemon runs from `/`, where a relative
/// path would work by accident at best.
pub(crate) fn absolute_path(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    key: &str,
) -> Option<PathBuf> {
    let value = section.string(sink, key)?;
    if value.value.starts_with('/') {
        return Some(PathBuf::from(value.value));
    }
    let message = if value.value.is_empty() {
        format!("{key} is empty")
    } else {
        format!("{key} must be an absolute path, found {:?}", value.value)
    };
    sink.error(
        value.span,
        &section.key_path(key),
        message,
        Some("start it with \"/\"".to_string()),
    );
    None
}

/// An optional IANA time zone name, with close names suggested.
pub(crate) fn time_zone(sink: &mut Sink<'_>, section: &Section<'_>, key: &str) -> Option<Tz> {
    let value = section.string(sink, key)?;
    match parse_time_zone(value.value) {
        Ok(tz) => Some(tz),
        Err(hint) => {
            sink.error(
                value.span,
                &section.key_path(key),
                format!("unknown time zone {:?}", value.value),
                Some(hint),
            );
            None
        }
    }
}
