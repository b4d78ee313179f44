//! `[jobs.NAME]` tables: each setting checked on its own, then the checks
//! that need several (schedule vs kind, level vs codec, references to
//! sources and storage).

use std::time::Duration;

use chrono_tz::Tz;

use super::build::time_zone;
use super::build_alerts::{mailboxes, positive_duration};
use super::error::Sink;
use super::model::{CompressionSetting, Job, JobKind, RetentionPolicy};
use super::reader::{Section, Spanned};
use super::schedule::Schedule;
use super::selection::{Pattern, Selection};
use super::suggest::{closest, quoted_list};

const JOB_KEYS: [&str; 21] = [
    "source",
    "storage",
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

/// The names defined in the file, for reference checks.
pub(crate) struct Names {
    pub sources: Vec<String>,
    pub storage: Vec<String>,
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
    let storage = reference(sink, section, "storage", "storage", &names.storage);
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
            Some("kind = \"full\", \"incremental\" or \"manual\"".to_string()),
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
        copies: Vec::new(),
        encryption: None,
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
    })
}

/// `Some(None)`: not set. Staleness is measured against the schedule, so a
/// job run only on request cannot be stale.
fn stale_after(
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
fn reference(
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

/// `Some(None)`: no schedule, and none needed.
fn schedule(
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

fn bool_or(sink: &mut Sink<'_>, section: &Section<'_>, key: &str, default: bool) -> Option<bool> {
    match section.contains(key) {
        true => section.boolean(sink, key),
        false => Some(default),
    }
}
