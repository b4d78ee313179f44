//! `[jobs.NAME]` tables: each setting checked on its own, then the checks
//! that need several (schedule vs kind, level vs codec, references to
//! sources and storage, copies vs the primary storage).
//!
//! `encrypt_to_file` is the one setting that reads another file when the
//! configuration is parsed: the recipients are public keys, and checking
//! them at start and on every reload beats finding a typo in one when the
//! first backup fails at night.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;

use super::build::build_storage::StorageType;
use super::build::{absolute_path, time_zone};
use super::build_alerts::{mailboxes, positive_duration};
use super::error::Sink;
use super::model::{CompressionSetting, Encryption, Job, JobKind, RetentionPolicy};
use super::reader::{Section, Spanned};
use super::schedule::Schedule;
use super::selection::{Pattern, Selection};
use super::suggest::{closest, quoted_list};

const JOB_KEYS: [&str; 24] = [
    "source",
    "storage",
    "copies",
    "kind",
    "schedule",
    "timezone",
    "retention",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "min_keep",
    "compression",
    "compression_level",
    "encrypt_to",
    "encrypt_to_file",
    "include",
    "exclude",
    "include_users",
    "full_on_gap",
    "parallel_collections",
    "catch_up",
    "enabled",
    "alert_to",
    "stale_after",
];
const COMPRESSIONS: [&str; 3] = ["none", "gzip", "zstd"];
/// Upper bound for counts of backups to keep: far above any real policy,
/// low enough to catch a mistyped number.
const MAX_KEEP: i64 = 100_000;

/// Said of a secret key wherever one turns up instead of a recipient.
const SECRET_KEY: &str = "this is a secret key (identity); the daemon needs only the public \
                          recipient: age-keygen -y FILE prints it";
const SECRET_KEY_HINT: &str =
    "keep the secret key off this server: anyone who can read it can decrypt every backup";
const RECIPIENT_HINT: &str = "an X25519 age recipient is \"age1\" and 58 more characters, as \
                              age-keygen prints it (age-keygen -y KEYFILE prints it again)";
const RECIPIENTS_FILE_HINT: &str = "one age recipient (age1...) per line; blank lines and \
                                    lines starting with # are ignored";

/// The names defined in the file, for reference checks.
pub(crate) struct Names {
    pub sources: Vec<String>,
    pub storage: Vec<String>,
    /// The declared type of every location whose `type` is valid.
    pub storage_types: BTreeMap<String, StorageType>,
}

pub(crate) fn job(
    sink: &mut Sink<'_>,
    name: &str,
    section: &Section<'_>,
    names: &Names,
    default_tz: Tz,
) -> Option<Job> {
    section.reject_unknown(sink, &JOB_KEYS);
    let source = reference(sink, section, "source", "sources", &names.sources);
    let storage = reference(sink, section, "storage", "storage", &names.storage)
        .and_then(|storage| primary_storage(sink, section, names, storage));
    let copies = copies(sink, section, names);
    let encryption = encryption(sink, section);
    let kind = if section.contains("kind") {
        section.choice(
            sink,
            "kind",
            "job kind",
            &JobKind::NAMES,
            JobKind::from_name,
        )
    } else {
        section.missing(
            sink,
            "kind",
            Some(
                "kind = \"full\", \"incremental\", \"manual\", \"drill\" or \"standby\""
                    .to_string(),
            ),
        );
        None
    };
    let schedule = schedule(sink, section, kind);
    let timezone = if section.contains("timezone") {
        time_zone(sink, section, "timezone")
    } else {
        Some(default_tz)
    };
    let retention = retention(sink, section, kind);
    let compression = compression(sink, section);
    let include_users = bool_or(sink, section, "include_users", false);
    let full_on_gap = bool_or(sink, section, "full_on_gap", true);
    let selection = selection(sink, section, include_users.unwrap_or(false));
    let parallel_collections = match section.contains("parallel_collections") {
        true => section
            .integer_in(sink, "parallel_collections", 1, 64)
            .and_then(|n| usize::try_from(n).ok()),
        false => Some(4),
    };
    // `Some(None)`: not set, one schedule interval.
    let catch_up = match section.contains("catch_up") {
        true => section
            .duration(sink, "catch_up", "wdhms")
            .map(|d| Some(d.value)),
        false => Some(None),
    };
    let enabled = bool_or(sink, section, "enabled", true);
    // Allowed without [alerts.email]: the alerts are then only logged, and
    // mail can be turned on later without touching every job.
    let alert_to = match section.contains("alert_to") {
        true => mailboxes(sink, section, "alert_to"),
        false => Some(Vec::new()),
    };
    let stale_after = stale_after(sink, section, kind, schedule.as_ref());

    Some(Job {
        name: name.to_string(),
        source: source?,
        storage: storage?,
        copies: copies?,
        encryption: encryption?,
        kind: kind?,
        schedule: schedule?,
        timezone: timezone?,
        retention: retention?,
        compression: compression?,
        selection: selection?,
        include_users: include_users?,
        full_on_gap: full_on_gap?,
        parallel_collections: parallel_collections?,
        catch_up: catch_up?,
        enabled: enabled?,
        alert_to: alert_to?,
        stale_after: stale_after?,
        restore_target: None,
    })
}

/// `Some(None)`: not set. Staleness is measured against the schedule, so a
/// job run only on request cannot be stale.
pub(super) fn stale_after(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    kind: Option<JobKind>,
    schedule: Option<&Option<Schedule>>,
) -> Option<Option<Duration>> {
    let stale_after = positive_duration(sink, section, "stale_after", "26h")?;
    // Only when the job is otherwise sound: a missing kind or a broken
    // schedule has its own error.
    if stale_after.is_some() && kind.is_some() && matches!(schedule, Some(None)) {
        sink.error(
            section.value_span("stale_after"),
            &section.key_path("stale_after"),
            "stale_after needs a schedule",
            Some(
                "a job run only on request is never late: add a schedule or remove stale_after"
                    .to_string(),
            ),
        );
        return None;
    }
    Some(stale_after)
}

/// A required name of a `[sources.*]` / `[storage.*]` table that exists.
pub(super) fn reference(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    key: &str,
    table: &str,
    defined: &[String],
) -> Option<String> {
    let listed = || {
        if defined.is_empty() {
            format!("there are no [{table}.*] tables")
        } else {
            format!(
                "defined: {}",
                quoted_list(defined.iter().map(String::as_str))
            )
        }
    };
    let value = section.required_string(sink, key, Some(listed()))?;
    if defined.iter().any(|d| d == value.value) {
        return Some(value.value.to_string());
    }
    let hint = match closest(value.value, defined.iter().map(String::as_str)) {
        Some(near) => format!("did you mean {near:?}?"),
        None if defined.is_empty() => format!("add a [{table}.{}] table", value.value),
        None => format!(
            "use one of the defined names or add a [{table}.{}] table",
            value.value
        ),
    };
    sink.error(
        value.span,
        &section.key_path(key),
        format!("{key} {:?} is not defined ({})", value.value, listed()),
        Some(hint),
    );
    None
}

/// Backups are written and committed in the primary storage before they
/// are copied anywhere, which takes a directory: object stores can only
/// receive copies.
fn primary_storage(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    names: &Names,
    storage: String,
) -> Option<String> {
    match names.storage_types.get(&storage) {
        Some(kind) if *kind != StorageType::Local => {
            sink.error(
                section.value_span("storage"),
                &section.key_path("storage"),
                format!(
                    "storage {storage:?} is {}; the primary storage of a job must be a local \
                     directory (its backups are written and committed there first)",
                    kind.a_location()
                ),
                Some(format!(
                    "object stores can receive copies: copies = [{storage:?}]"
                )),
            );
            None
        }
        _ => Some(storage),
    }
}

/// `copies`: other defined locations, each once; empty when not set.
fn copies(sink: &mut Sink<'_>, section: &Section<'_>, names: &Names) -> Option<Vec<String>> {
    let key = "copies";
    if !section.contains(key) {
        return Some(Vec::new());
    }
    // As written, even if `storage` itself has an error: a copy to the
    // same place is a mistake of its own.
    let primary = section
        .entries()
        .find(|(k, _)| *k == "storage")
        .and_then(|(_, item)| item.as_str());
    let (values, mut ok) = section.strings(sink, key)?;
    let path = section.key_path(key);
    let mut seen: Vec<&str> = Vec::new();
    for value in values {
        let name = value.value;
        let problem = if seen.contains(&name) {
            Some((
                format!("{name:?} is listed twice in copies"),
                "remove the second one".to_string(),
            ))
        } else if !names.storage.iter().any(|n| n == name) {
            Some(undefined("storage", name, &names.storage))
        } else if primary == Some(name) {
            Some((
                format!("{name:?} is this job's storage already"),
                "copies are further locations each backup is copied to once it is complete \
                 in storage; list only other ones"
                    .to_string(),
            ))
        } else {
            None
        };
        seen.push(name);
        if let Some((message, hint)) = problem {
            ok = false;
            sink.error(value.span, &path, message, Some(hint));
        }
    }
    ok.then(|| seen.into_iter().map(str::to_string).collect())
}

/// `encrypt_to` and `encrypt_to_file`: `Some(None)` when neither is set,
/// else the recipients of both, each once, in the order written.
fn encryption(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<Option<Encryption>> {
    let has_inline = section.contains("encrypt_to");
    let has_file = section.contains("encrypt_to_file");
    if !has_inline && !has_file {
        return Some(None);
    }
    let inline = match has_inline {
        true => inline_recipients(sink, section),
        false => Some(Vec::new()),
    };
    let file = match has_file {
        true => file_recipients(sink, section),
        false => Some((PathBuf::new(), Vec::new())),
    };
    let (inline, (file_path, from_file)) = (inline?, file?);
    let mut recipients: Vec<String> = Vec::new();
    for recipient in inline.into_iter().chain(from_file) {
        if !recipients.contains(&recipient) {
            recipients.push(recipient);
        }
    }
    if !recipients.is_empty() {
        return Some(Some(Encryption { recipients }));
    }
    // Encryption asked for but to nobody: refuse rather than store the
    // backups in the clear.
    let (key, message, hint) = if has_file {
        (
            "encrypt_to_file",
            format!("{} has no recipients", file_path.display()),
            RECIPIENTS_FILE_HINT.to_string(),
        )
    } else {
        (
            "encrypt_to",
            "encrypt_to is empty".to_string(),
            "list the age recipients, e.g. encrypt_to = [\"age1...\"], or remove encrypt_to \
             to store backups unencrypted"
                .to_string(),
        )
    };
    sink.error(
        section.value_span(key),
        &section.key_path(key),
        message,
        Some(hint),
    );
    None
}

/// `encrypt_to`: every element checked, each bad one reported at itself.
fn inline_recipients(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<Vec<String>> {
    let (values, mut ok) = section.strings(sink, "encrypt_to")?;
    let path = section.key_path("encrypt_to");
    let mut out = Vec::new();
    for value in values {
        match recipient(value.value) {
            Ok(recipient) => out.push(recipient),
            Err((message, hint)) => {
                ok = false;
                sink.error(value.span, &path, message, Some(hint));
            }
        }
    }
    ok.then_some(out)
}

/// `encrypt_to_file`, read now, in the format of age's recipients files.
/// Its errors point at the key's value and name the file's line.
fn file_recipients(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<(PathBuf, Vec<String>)> {
    let key = "encrypt_to_file";
    let file = absolute_path(sink, section, key)?;
    let span = section.value_span(key);
    let path = section.key_path(key);
    let shown = file.display().to_string();
    let text = match std::fs::read(&file).map(String::from_utf8) {
        Ok(Ok(text)) => text,
        Ok(Err(_)) => {
            sink.error(
                span,
                &path,
                format!("{shown} is not valid UTF-8"),
                Some(RECIPIENTS_FILE_HINT.to_string()),
            );
            return None;
        }
        Err(err) => {
            sink.error(
                span,
                &path,
                format!("cannot read {shown}: {err}"),
                Some(
                    "create it with one age recipient (age1...) per line, readable by the \
                     daemon's user; it is read at start and on every reload"
                        .to_string(),
                ),
            );
            return None;
        }
    };
    let mut ok = true;
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_start_matches('\u{feff}').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match recipient(line) {
            Ok(recipient) => out.push(recipient),
            Err((message, hint)) => {
                ok = false;
                sink.error(
                    span.clone(),
                    &path,
                    format!("{shown} line {}: {message}", index + 1),
                    Some(hint),
                );
            }
        }
    }
    ok.then_some((file, out))
}

/// An X25519 recipient, as age writes it, or a message and a hint. Only
/// public keys are quoted back: anything that looks like a secret key is
/// reported without its text.
fn recipient(text: &str) -> Result<String, (String, String)> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("age-secret-key-") || lower.contains("secret-key") {
        return Err((SECRET_KEY.to_string(), SECRET_KEY_HINT.to_string()));
    }
    if text.is_empty() {
        return Err((
            "the recipient is empty".to_string(),
            RECIPIENT_HINT.to_string(),
        ));
    }
    if text.starts_with("ssh-") {
        let kind = text.split_whitespace().next().unwrap_or(text);
        return Err((
            format!("{kind} keys are not supported as recipients"),
            "use an X25519 age key: create one with age-keygen -o key.txt away from this \
             server and give its recipient (age1...)"
                .to_string(),
        ));
    }
    // "age1NAME1..." is a plugin's recipient (a YubiKey, a TPM), which
    // would need the plugin at every backup. Told by its shape, before
    // the checksum: X25519 recipients never have a "1" after "age1".
    if lower.starts_with("age1") && lower[4..].contains('1') {
        return Err((
            format!("{text:?} is an age plugin recipient, which is not supported"),
            RECIPIENT_HINT.to_string(),
        ));
    }
    match age::x25519::Recipient::from_str(text) {
        Ok(recipient) => Ok(recipient.to_string()),
        Err(reason) => Err((
            format!("invalid age recipient {text:?}: {reason}"),
            RECIPIENT_HINT.to_string(),
        )),
    }
}

/// The message and hint for a name not defined in `[table.*]`.
pub(super) fn undefined(table: &str, name: &str, defined: &[String]) -> (String, String) {
    let listed = if defined.is_empty() {
        format!("there are no [{table}.*] tables")
    } else {
        format!(
            "defined: {}",
            quoted_list(defined.iter().map(String::as_str))
        )
    };
    let hint = match closest(name, defined.iter().map(String::as_str)) {
        Some(near) => format!("did you mean {near:?}?"),
        None => format!("use one of the defined names or add a [{table}.{name}] table"),
    };
    (format!("{table} {name:?} is not defined ({listed})"), hint)
}

/// `Some(None)`: no schedule, and none needed.
pub(super) fn schedule(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    kind: Option<JobKind>,
) -> Option<Option<Schedule>> {
    if !section.contains("schedule") {
        return match kind {
            Some(kind) if kind.needs_schedule() => {
                section.missing(
                    sink,
                    "schedule",
                    Some(format!(
                        "{kind} jobs run on a schedule, e.g. schedule = \"0 2 * * *\" (daily at 02:00); \
                         use kind = \"manual\" for backups run only on request"
                    )),
                );
                None
            }
            _ => Some(None),
        };
    }
    let text = section.string(sink, "schedule")?;
    match Schedule::parse(text.value) {
        Ok(schedule) => Some(Some(schedule)),
        Err(err) => {
            sink.error(
                text.span,
                &section.key_path("schedule"),
                format!("invalid cron expression {:?}: {}", text.value, err.message),
                err.hint,
            );
            None
        }
    }
}

fn retention(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    kind: Option<JobKind>,
) -> Option<RetentionPolicy> {
    let max_age = match section.contains("retention") {
        true => {
            let age = section.duration(sink, "retention", "wdh");
            match age {
                Some(Spanned { value, span }) if value.is_zero() => {
                    sink.error(
                        span,
                        &section.key_path("retention"),
                        "retention must be longer than 0",
                        Some(
                            "a retention of 0 would delete every backup as soon as it is made"
                                .to_string(),
                        ),
                    );
                    None
                }
                other => other.map(|a| a.value),
            }
        }
        false => kind.map(JobKind::default_retention),
    };
    let keep_daily = keep(sink, section, "keep_daily", "daily");
    let keep_weekly = keep(sink, section, "keep_weekly", "weekly");
    let keep_monthly = keep(sink, section, "keep_monthly", "monthly");
    let min_keep = match section.integer(sink, "min_keep") {
        Some(n) if n.value == 0 => {
            sink.error(
                n.span,
                &section.key_path("min_keep"),
                "min_keep = 0 would let retention delete every backup",
                Some("set min_keep to 1 or more (the default is 1)".to_string()),
            );
            None
        }
        Some(n) => in_range(sink, section, "min_keep", n, 1, MAX_KEEP),
        None if section.contains("min_keep") => None,
        None => Some(1),
    };
    Some(RetentionPolicy {
        max_age: max_age?,
        keep_daily: keep_daily?,
        keep_weekly: keep_weekly?,
        keep_monthly: keep_monthly?,
        min_keep: min_keep?,
    })
}

/// An optional `keep_*` count: `Some(None)` when absent.
fn keep(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    key: &str,
    period: &str,
) -> Option<Option<u32>> {
    if !section.contains(key) {
        return Some(None);
    }
    let n = section.integer(sink, key)?;
    if n.value == 0 {
        sink.error(
            n.span,
            &section.key_path(key),
            format!("{key} = 0 keeps no {period} backups"),
            Some(format!(
                "remove {key} to turn {period} keeps off, or set it to 1 or more"
            )),
        );
        return None;
    }
    in_range(sink, section, key, n, 1, MAX_KEEP).map(Some)
}

fn in_range(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    key: &str,
    n: Spanned<i64>,
    min: i64,
    max: i64,
) -> Option<u32> {
    let value = u32::try_from(n.value)
        .ok()
        .filter(|v| (min..=max).contains(&i64::from(*v)));
    if value.is_none() {
        sink.error(
            n.span,
            &section.key_path(key),
            format!("{key} = {} is out of range {min}-{max}", n.value),
            None,
        );
    }
    value
}

fn compression(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<CompressionSetting> {
    let name = match section.contains("compression") {
        true => section.choice(sink, "compression", "compression", &COMPRESSIONS, |n| {
            COMPRESSIONS.contains(&n).then(|| n.to_string())
        })?,
        false => "zstd".to_string(),
    };
    let level = match section.contains("compression_level") {
        true => Some(section.integer(sink, "compression_level")?),
        false => None,
    };
    let path = section.key_path("compression_level");
    let (default, min, max) = match name.as_str() {
        "gzip" => (6, 1, 9),
        "zstd" => (3, 1, 22),
        _ => {
            if let Some(level) = level {
                sink.error(
                    level.span,
                    &path,
                    "compression_level is set but compression is \"none\"",
                    Some(
                        "remove compression_level, or choose compression = \"gzip\" or \"zstd\""
                            .to_string(),
                    ),
                );
                return None;
            }
            return Some(CompressionSetting::None);
        }
    };
    let level = match level {
        Some(level) if !(min..=max).contains(&level.value) => {
            sink.error(
                level.span,
                &path,
                format!(
                    "compression_level = {} is out of range for {name} ({min}-{max})",
                    level.value
                ),
                Some(format!("the default for {name} is {default}")),
            );
            return None;
        }
        Some(level) => level.value,
        None => default,
    };
    // In range by the check above, so the conversions cannot fail.
    Some(if name == "gzip" {
        CompressionSetting::Gzip {
            level: u32::try_from(level).ok()?,
        }
    } else {
        CompressionSetting::Zstd {
            level: i32::try_from(level).ok()?,
        }
    })
}

fn selection(sink: &mut Sink<'_>, section: &Section<'_>, include_users: bool) -> Option<Selection> {
    let include = patterns(sink, section, "include", true);
    let exclude = patterns(sink, section, "exclude", false);
    Some(Selection {
        include: include?,
        exclude: exclude?,
        include_users,
    })
}

fn patterns(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    key: &str,
    is_include: bool,
) -> Option<Vec<Pattern>> {
    if !section.contains(key) {
        return Some(Vec::new());
    }
    let path = section.key_path(key);
    let mut out = Vec::new();
    let (texts, mut ok) = section.strings(sink, key)?;
    for text in texts {
        match Pattern::parse(text.value) {
            // Including a database that is never backed up would silently
            // do nothing; say so instead.
            Ok(pattern) if is_include && pattern.database() == "admin" => {
                ok = false;
                sink.error(
                    text.span,
                    &path,
                    format!(
                        "pattern {:?}: the admin database is backed up only through include_users",
                        text.value
                    ),
                    Some("set include_users = true to back up users and roles".to_string()),
                );
            }
            Ok(pattern) if is_include && matches!(pattern.database(), "local" | "config") => {
                ok = false;
                sink.error(
                    text.span,
                    &path,
                    format!("pattern {:?}: the {} database is never backed up", text.value, pattern.database()),
                    Some("local holds one node's oplog and replica-set state, config the cluster's metadata; neither can be restored elsewhere".to_string()),
                );
            }
            Ok(pattern) => out.push(pattern),
            Err(reason) => {
                ok = false;
                sink.error(
                    text.span,
                    &path,
                    format!("invalid pattern {:?}: {reason}", text.value),
                    Some("\"db\" for a whole database or \"db.collection\"; * matches any run of characters".to_string()),
                );
            }
        }
    }
    ok.then_some(out)
}

pub(super) fn bool_or(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    key: &str,
    default: bool,
) -> Option<bool> {
    match section.contains(key) {
        true => section.boolean(sink, key),
        false => Some(default),
    }
}
