//! Job schedules: crontab expressions, checked with precise messages and
//! evaluated by `croner` in the job's time zone.
//!
//! Accepted: the standard 5 fields (minute first), 6 fields with a seconds
//! field first, and the shortcuts `@hourly @daily @midnight @weekly @monthly
//! @yearly @annually`. Day-of-month and day-of-week combine with OR when both
//! are restricted, as in crontab (`0 0 1 * MON` runs on the 1st and on every
//! Monday). croner's extras `L`, `W` and `#` are accepted; its `+` (AND)
//! prefix is not, so a schedule always means what crontab(5) says.
//!
//! croner's own errors are terse ("Number out of bounds."), so every field is
//! checked here first; croner then parses the same text, which keeps the
//! evaluation and the validation from ever disagreeing silently.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

use super::model::Job;

const FIVE_FIELDS: &str = "5 fields: minute hour day-of-month month day-of-week";
const SIX_FIELDS: &str = "6 fields: second minute hour day-of-month month day-of-week";
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const SHORTCUTS: [(&str, &str); 7] = [
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"),
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
];

/// Why a cron expression was rejected. `message` does not repeat the
/// expression; `hint` shows the expected shape or a corrected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ScheduleError {
    pub message: String,
    pub hint: Option<String>,
}

impl ScheduleError {
    fn new(message: impl Into<String>, hint: &str) -> Self {
        ScheduleError {
            message: message.into(),
            hint: Some(hint.to_string()),
        }
    }
}

/// A validated schedule: the text as written plus the parsed `croner::Cron`.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl Schedule {
    /// Parses and checks a cron expression or shortcut.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let trimmed = text.trim();
        let expanded = expand_shortcut(trimmed)?;
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let layout = match fields.len() {
            5 => FIVE_FIELDS,
            6 => SIX_FIELDS,
            0 => return Err(ScheduleError::new("the expression is empty", FIVE_FIELDS)),
            n => {
                return Err(ScheduleError::new(
                    format!("expected 5 fields (or 6 with seconds first), found {n}"),
                    FIVE_FIELDS,
                ))
            }
        };
        let specs = if fields.len() == 6 {
            &FIELDS[..]
        } else {
            &FIELDS[1..]
        };
        let mut parsed = Vec::with_capacity(fields.len());
        for (spec, field) in specs.iter().zip(&fields) {
            parsed.push(check_field(spec, field, layout)?);
        }
        // The last three are always day-of-month, month, day-of-week.
        if let [.., dom, month, dow] = parsed.as_slice() {
            check_day_exists(dom, month, dow)?;
        }
        // Seconds are optional (a 6th, leading field) and years are refused:
        // 7-field expressions are a Quartz habit that crontab readers would
        // misread. dom_and_dow stays false: that is crontab's OR.
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .dom_and_dow(false)
            .build();
        let cron = parser
            .parse(&expanded)
            .map_err(|err| ScheduleError::new(err.to_string(), layout))?;
        Ok(Schedule {
            text: trimmed.to_string(),
            cron,
        })
    }

    /// The expression as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed expression, for callers that need more than
    /// [`next_after`](Self::next_after).
    pub fn cron(&self) -> &Cron {
        &self.cron
    }

    /// The first fire strictly after `after`, with the expression read as
    /// wall-clock time in `tz`.
    ///
    /// Across DST changes this follows croner (and Vixie cron): a fixed time
    /// that falls in the spring-forward gap fires once at the first valid
    /// time after the gap; a fixed time in the repeated fall-back hour fires
    /// once, on its first pass; wildcard and step fields (`0 * * * *`) fire
    /// on each pass. Pure: `None` only when there is no fire before the
    /// year 5000 or croner gives up its search.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        // The zoned start carries its UTC offset, so on a repeated hour
        // croner knows which pass `after` is on.
        let start = after.with_timezone(&tz);
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(next.with_timezone(&Utc))
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Schedule {}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(s)
    }
}

/// The next `n` fires of `job` strictly after `from`, in its time zone (for
/// `check-config`). Empty for jobs without a schedule; `enabled` is not
/// looked at, so a disabled job shows when it would run.
pub fn next_fires(job: &Job, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    let Some(schedule) = &job.schedule else {
        return Vec::new();
    };
    let mut fires = Vec::new();
    let mut cursor = from;
    while fires.len() < n {
        match schedule.next_after(cursor, job.timezone) {
            Some(next) => {
                fires.push(next);
                cursor = next;
            }
            None => break,
        }
    }
    fires
}

fn expand_shortcut(text: &str) -> Result<String, ScheduleError> {
    if !text.starts_with('@') {
        return Ok(text.to_string());
    }
    let lower = text.to_ascii_lowercase();
    SHORTCUTS
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|(_, expansion)| (*expansion).to_string())
        .ok_or_else(|| {
            ScheduleError::new(
                format!("unknown shortcut {text:?}"),
                "use @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually",
            )
        })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Plain,
    DayOfMonth,
    Month,
    DayOfWeek,
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    kind: FieldKind,
}

const FIELDS: [FieldSpec; 6] = [
    FieldSpec {
        name: "second",
        min: 0,
        max: 59,
        kind: FieldKind::Plain,
    },
    FieldSpec {
        name: "minute",
        min: 0,
        max: 59,
        kind: FieldKind::Plain,
    },
    FieldSpec {
        name: "hour",
        min: 0,
        max: 23,
        kind: FieldKind::Plain,
    },
    FieldSpec {
        name: "day-of-month",
        min: 1,
        max: 31,
        kind: FieldKind::DayOfMonth,
    },
    FieldSpec {
        name: "month",
        min: 1,
        max: 12,
        kind: FieldKind::Month,
    },
    FieldSpec {
        name: "day-of-week",
        min: 0,
        max: 7,
        kind: FieldKind::DayOfWeek,
    },
];

/// What one field selects, as far as the day-exists check needs it.
struct Field {
    /// `*` or `?`: crontab ignores such a day field in the OR.
    star: bool,
    /// Values selected plainly (bit n = value n).
    values: u64,
    /// `L`, `W` or `#` items, whose days depend on the month.
    modifiers: bool,
}

fn check_field(spec: &FieldSpec, field: &str, layout: &str) -> Result<Field, ScheduleError> {
    let day_field = matches!(spec.kind, FieldKind::DayOfMonth | FieldKind::DayOfWeek);
    let mut out = Field {
        star: field == "*" || (day_field && field == "?"),
        values: 0,
        modifiers: false,
    };
    if out.star {
        out.values = range_bits(spec.min, spec.max);
        return Ok(out);
    }
    for item in field.split(',') {
        check_item(spec, item, layout, &mut out)?;
    }
    Ok(out)
}

fn check_item(
    spec: &FieldSpec,
    item: &str,
    layout: &str,
    out: &mut Field,
) -> Result<(), ScheduleError> {
    let name = spec.name;
    if item.is_empty() {
        return Err(ScheduleError::new(
            format!("empty item in the {name} list"),
            layout,
        ));
    }
    if spec.kind == FieldKind::DayOfWeek && item.starts_with('+') {
        return Err(ScheduleError::new(
            "the \"+\" prefix (day-of-month AND day-of-week) is not supported",
            "day-of-month and day-of-week combine with OR, as in crontab",
        ));
    }
    if let Some((base, step)) = item.split_once('/') {
        let step: u32 = step.parse().map_err(|_| {
            ScheduleError::new(format!("{name} step {step:?} is not a number"), layout)
        })?;
        if step == 0 {
            return Err(ScheduleError::new(
                format!("{name} step must be at least 1"),
                layout,
            ));
        }
        let (start, end) = if base == "*" {
            (spec.min, spec.max)
        } else if base.contains('-') {
            check_range(spec, base, layout)?
        } else {
            let example = format!(
                "{}-{}/{step}",
                if base.is_empty() { "0" } else { base },
                spec.max
            );
            return Err(ScheduleError {
                message: format!("{name} step {item:?} needs a range or \"*\" before the \"/\""),
                hint: Some(format!("write \"*/{step}\" or a range such as {example:?}")),
            });
        };
        // `step_by` cannot overflow, whatever the step.
        for value in (start..=end).step_by(usize::try_from(step).unwrap_or(usize::MAX)) {
            out.values |= 1 << value;
        }
        return Ok(());
    }
    if spec.kind == FieldKind::DayOfMonth && (item == "L" || item == "LW" || item.ends_with('W')) {
        if let Some(day) = item.strip_suffix('W').filter(|d| *d != "L") {
            check_value(spec, day, layout)?;
        }
        out.modifiers = true;
        return Ok(());
    }
    if spec.kind == FieldKind::DayOfWeek {
        if let Some((days, nth)) = item.split_once('#') {
            if !matches!(nth, "1" | "2" | "3" | "4" | "5" | "L") {
                return Err(ScheduleError::new(
                    format!("day-of-week occurrence \"#{nth}\" must be #1 to #5 or #L"),
                    layout,
                ));
            }
            check_range_or_value(spec, days, layout)?;
            out.modifiers = true;
            return Ok(());
        }
        if let Some(day) = item.strip_suffix('L') {
            check_value(spec, day, layout)?;
            out.modifiers = true;
            return Ok(());
        }
    }
    let (start, end) = check_range_or_value(spec, item, layout)?;
    out.values |= range_bits(start, end);
    Ok(())
}

fn check_range_or_value(
    spec: &FieldSpec,
    text: &str,
    layout: &str,
) -> Result<(u32, u32), ScheduleError> {
    if text.contains('-') {
        check_range(spec, text, layout)
    } else {
        let value = check_value(spec, text, layout)?;
        Ok((value, value))
    }
}

fn check_range(spec: &FieldSpec, text: &str, layout: &str) -> Result<(u32, u32), ScheduleError> {
    let name = spec.name;
    let (start, end) = text.split_once('-').unwrap_or((text, ""));
    let start_value = check_value(spec, start, layout)?;
    let mut end_value = check_value(spec, end, layout)?;
    // "FRI-SUN": a range may end on Sunday counted as 7 (croner agrees).
    if spec.kind == FieldKind::DayOfWeek && end_value == 0 && end.eq_ignore_ascii_case("SUN") {
        end_value = 7;
    }
    if start_value > end_value {
        return Err(ScheduleError {
            message: format!("{name} range {text} goes backwards"),
            hint: Some(format!(
                "ranges do not wrap around: write \"{start}-{},{}-{end}\"",
                spec.max, spec.min
            )),
        });
    }
    Ok((start_value, end_value))
}

fn check_value(spec: &FieldSpec, text: &str, layout: &str) -> Result<u32, ScheduleError> {
    let name = spec.name;
    let names: &[&str] = match spec.kind {
        FieldKind::Month => &MONTHS,
        FieldKind::DayOfWeek => &WEEKDAYS,
        _ => &[],
    };
    if let Some(index) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        // Months count from 1 (JAN), weekdays from 0 (SUN).
        let offset = u32::from(spec.kind == FieldKind::Month);
        return u32::try_from(index)
            .map(|i| i + offset)
            .map_err(|_| ScheduleError::new(format!("{name} {text:?} is not valid"), layout));
    }
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
        let message = match spec.kind {
            FieldKind::Month => format!("month {text:?} is neither a number nor JAN-DEC"),
            FieldKind::DayOfWeek => {
                format!("day-of-week {text:?} is neither a number nor SUN-SAT")
            }
            _ => format!("{name} {text:?} is not a number"),
        };
        return Err(ScheduleError::new(message, layout));
    }
    match text.parse::<u32>() {
        Ok(value) if (spec.min..=spec.max).contains(&value) => Ok(value),
        Ok(value) => Err(out_of_range(spec, &value.to_string(), layout)),
        Err(_) => Err(out_of_range(spec, text, layout)),
    }
}

fn out_of_range(spec: &FieldSpec, value: &str, layout: &str) -> ScheduleError {
    ScheduleError::new(
        format!(
            "{} {value} is out of range {}-{}",
            spec.name, spec.min, spec.max
        ),
        layout,
    )
}

fn range_bits(start: u32, end: u32) -> u64 {
    (start..=end).fold(0, |bits, v| bits | (1 << v))
}

/// Rejects expressions like `0 0 30 2 *` that can never fire: croner would
/// accept them and then search for years before giving up at run time.
/// Only the plain case is decidable cheaply: day-of-week `*` (otherwise the
/// OR lets weekdays fire) and no `L`/`W` days.
fn check_day_exists(dom: &Field, month: &Field, dow: &Field) -> Result<(), ScheduleError> {
    if dom.star || !dow.star || dom.modifiers {
        return Ok(());
    }
    // February counts 29 days: leap years do come.
    const DAYS_IN_MONTH: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let longest = (1..=12u32)
        .filter(|m| month.values & (1 << m) != 0)
        .filter_map(|m| DAYS_IN_MONTH.get(m as usize - 1).copied())
        .max()
        .unwrap_or(0);
    let first_day = (1..=31u32).find(|d| dom.values & (1 << d) != 0);
    match first_day {
        Some(day) if day > longest => Err(ScheduleError::new(
            format!("it never fires: none of its months has a day {day}"),
            "February has 29 days at most; April, June, September and November have 30",
        )),
        _ => Ok(()),
    }
}
