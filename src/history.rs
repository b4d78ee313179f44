//! The run history: one JSON line per finished (or skipped) run in
//! `history.jsonl` in the state directory, for `mongo-backupd history` and
//! for alerting on failures and staleness.
//!
//! Append-only so a crash can at worst tear the last line: [`append`]
//! writes a whole line with one `write` and fsyncs it, and [`read`] skips a
//! line it cannot parse with a warning instead of failing, so one torn or
//! damaged line never hides the rest. The file is bounded: once it passes
//! [`HistoryLimits`] (10,000 records or 10 MiB by default) it is rewritten
//! atomically with the newest half.
//!
//! Records are forward compatible: new fields are added with
//! `#[serde(default)]`, unknown fields are ignored, so old files stay
//! readable and a downgrade does not lose the file. One writer (the daemon)
//! is assumed; readers may run at any time.

#[cfg(test)]
mod tests;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::config::format_duration;

/// The file name in the state directory.
pub const HISTORY_FILE: &str = "history.jsonl";

/// One run of a job, as recorded when it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub job: String,
    /// The job's kind (`full`, `incremental`, `manual`), as a string so a
    /// kind added later still reads.
    pub kind: String,
    /// The fire this run was for; `None` for runs on request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<DateTime<Utc>>,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub result: RunResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documents: Option<u64>,
    /// Why a run was skipped or cancelled, or anything else worth a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Who asked for a run on request (a user, `api`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

impl RunRecord {
    /// Whether the record is a backup run (or a skipped one), rather than
    /// an alert delivery or an operator's action recorded for the audit.
    pub fn is_backup(&self) -> bool {
        matches!(self.kind.as_str(), "full" | "incremental" | "manual")
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunResult {
    Success,
    Failed,
    Cancelled,
    /// Not run at all (e.g. the previous run was still going).
    Skipped,
}

impl RunResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Success => "success",
            RunResult::Failed => "failed",
            RunResult::Cancelled => "cancelled",
            RunResult::Skipped => "skipped",
        }
    }
}

/// Which records [`read`] returns. The default: all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    /// Only this job's runs.
    pub job: Option<String>,
    /// At most this many (the newest).
    pub limit: Option<usize>,
    /// Only runs started at or after this time.
    pub since: Option<DateTime<Utc>>,
}

/// When the file is compacted: as soon as it holds more than `max_records`
/// lines or more than `max_bytes` bytes, it is rewritten with the newest
/// records that fit in half of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    pub max_records: usize,
    pub max_bytes: u64,
}

impl Default for HistoryLimits {
    /// 10,000 records or 10 MiB: years of hourly runs of a few jobs, and
    /// quick to read whole.
    fn default() -> Self {
        HistoryLimits {
            max_records: 10_000,
            max_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Why the history could not be written or read. Each message names the
/// file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "cannot {op} the run history {}: {source}; check the free space and permissions \
         of the state directory (the run itself is not affected, only its record)",
        path.display()
    )]
    Write {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },

    #[error(
        "cannot read the run history {}: {source}; check that it is a file the daemon's \
         user can read",
        path.display()
    )]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Appends `record` to the history in `dir` (created if missing), with the
/// default [`HistoryLimits`].
pub fn append(dir: &Path, record: &RunRecord) -> Result<(), HistoryError> {
    append_with_limits(dir, record, HistoryLimits::default())
}

/// [`append`] with explicit limits.
pub fn append_with_limits(
    dir: &Path,
    record: &RunRecord,
    limits: HistoryLimits,
) -> Result<(), HistoryError> {
    let path = dir.join(HISTORY_FILE);
    let fail = |op: &'static str| {
        let path = path.clone();
        move |source: io::Error| HistoryError::Write { path, op, source }
    };
    let mut line = serde_json::to_vec(record)
        .map_err(|err| fail("encode a record for")(io::Error::other(err)))?;
    line.push(b'\n');
    fs::create_dir_all(dir).map_err(fail("create the directory of"))?;
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&path)
        .map_err(fail("open"))?;
    let size = file.metadata().map_err(fail("inspect"))?.len();
    if size > 0 && !ends_with_newline(&mut file).map_err(fail("read"))? {
        // A crash tore the last line. Start ours on a fresh line, or the
        // good record would be glued to the torn one and lost with it.
        line.insert(0, b'\n');
    }
    // One write of a whole line: O_APPEND keeps it in one piece.
    file.write_all(&line).map_err(fail("append to"))?;
    file.sync_data().map_err(fail("fsync"))?;
    let size = size + line.len() as u64;
    drop(file);
    if needs_compaction(&path, size, limits).map_err(fail("read"))? {
        compact(&path, limits)?;
    }
    Ok(())
}

fn ends_with_newline(file: &mut File) -> io::Result<bool> {
    let mut last = [0u8; 1];
    file.seek(SeekFrom::End(-1))?;
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// No record's line is shorter: the shortest possible one (the five
/// required fields, empty names) takes 105 bytes, checked by a test.
const MIN_RECORD_BYTES: u64 = 90;

/// Whether the file passed a limit. Counting lines means reading the file,
/// so it is only done once the size says there could be too many records.
fn needs_compaction(path: &Path, size: u64, limits: HistoryLimits) -> io::Result<bool> {
    if size > limits.max_bytes {
        return Ok(true);
    }
    let max_records = u64::try_from(limits.max_records).unwrap_or(u64::MAX);
    if size <= max_records.saturating_mul(MIN_RECORD_BYTES) {
        return Ok(false);
    }
    let bytes = fs::read(path)?;
    let lines = bytes.iter().filter(|b| **b == b'\n').count();
    Ok(lines > limits.max_records)
}

/// Rewrites the file with the newest records that fit in half the limits.
/// Lines that do not parse are dropped (they are torn or damaged, and
/// [`read`] would skip them anyway); the others are kept byte for byte, so
/// fields this version does not know survive.
fn compact(path: &Path, limits: HistoryLimits) -> Result<(), HistoryError> {
    let text = read_text(path)?;
    let keep_records = limits.max_records / 2;
    let keep_bytes = limits.max_bytes / 2;
    let mut kept: Vec<&str> = Vec::new();
    let mut bytes = 0u64;
    for line in text.lines().rev() {
        if kept.len() >= keep_records {
            break;
        }
        if serde_json::from_str::<RunRecord>(line).is_err() {
            continue;
        }
        bytes += line.len() as u64 + 1;
        // Always keep the newest record, however large.
        if bytes > keep_bytes && !kept.is_empty() {
            break;
        }
        kept.push(line);
    }
    let mut out = String::with_capacity(usize::try_from(bytes).unwrap_or(0));
    for line in kept.iter().rev() {
        out.push_str(line);
        out.push('\n');
    }
    crate::schedule::write_atomic(path, out.as_bytes()).map_err(|(op, source)| {
        HistoryError::Write {
            path: path.to_path_buf(),
            op,
            source,
        }
    })
}

/// The file as text; a missing file is empty. Bytes that are not UTF-8
/// (damage) become U+FFFD, which spoils only their own line.
fn read_text(path: &Path) -> Result<String, HistoryError> {
    match fs::read(path) {
        Ok(bytes) => Ok(match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
        }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(HistoryError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The records in `dir` that pass `filter`, newest first (by start time;
/// records that started at the same time, newest written first). No file
/// yet: no records. A line that does not parse (a torn last line after a
/// crash, damage) is skipped with a warning.
pub fn read(dir: &Path, filter: HistoryFilter) -> Result<Vec<RunRecord>, HistoryError> {
    let path = dir.join(HISTORY_FILE);
    let text = read_text(&path)?;
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<RunRecord>(line) {
            Ok(record) => records.push(record),
            Err(err) => tracing::warn!(
                file = %path.display(),
                line = index + 1,
                "skipping a run history line that cannot be read ({err}); \
                 a crash while writing leaves a torn last line, which is harmless"
            ),
        }
    }
    records.retain(|r| {
        filter.job.as_ref().is_none_or(|job| &r.job == job)
            && filter.since.is_none_or(|since| r.started >= since)
    });
    // Written order is finish order; reversed first, the stable sort keeps
    // the newest written first among equal start times.
    records.reverse();
    records.sort_by_key(|r| std::cmp::Reverse(r.started));
    if let Some(limit) = filter.limit {
        records.truncate(limit);
    }
    Ok(records)
}

/// Longest error shown in the table; the full text is in the file and the
/// logs.
const MAX_ERROR_CHARS: usize = 80;

/// The records as a plain-text table for `mongo-backupd history`: started
/// (UTC, RFC 3339 to the second), job, kind, result, duration, size, backup
/// id and the detail on one line (the error, or else the note: why a run
/// was skipped, which alert mail was sent), `-` where there is nothing.
pub fn render_table(records: &[RunRecord]) -> String {
    if records.is_empty() {
        return "no runs recorded\n".to_string();
    }
    let header = [
        "STARTED",
        "JOB",
        "KIND",
        "RESULT",
        "DURATION",
        "SIZE",
        "BACKUP ID",
        "DETAIL",
    ]
    .map(String::from);
    let rows: Vec<[String; 8]> = records
        .iter()
        .map(|r| {
            [
                r.started.to_rfc3339_opts(SecondsFormat::Secs, true),
                r.job.clone(),
                r.kind.clone(),
                r.result.as_str().to_string(),
                duration_cell(r),
                r.bytes.map_or_else(|| "-".to_string(), format_size),
                r.backup_id.clone().unwrap_or_else(|| "-".to_string()),
                r.error
                    .as_deref()
                    .or(r.note.as_deref())
                    .map_or_else(|| "-".to_string(), one_line),
            ]
        })
        .collect();
    let mut widths = [0usize; 8];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = width - cell.chars().count();
            line.extend(std::iter::repeat_n(' ', pad));
        }
        // The last column is padded like the others; trim it so lines do
        // not end in spaces.
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn duration_cell(record: &RunRecord) -> String {
    match (record.finished - record.started).to_std() {
        Ok(duration) => format_duration(duration),
        // A wall clock stepped back during the run.
        Err(_) => "-".to_string(),
    }
}

/// Bytes in binary units with one decimal: `512 B`, `1.5 KiB`, `2.0 GiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // f64 is exact enough for one decimal of any u64.
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS.get(unit).copied().unwrap_or("EiB"))
}

/// The first line of an error, whitespace collapsed, cut to
/// [`MAX_ERROR_CHARS`] with `…` when anything was left out.
fn one_line(error: &str) -> String {
    let mut lines = error.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    let mut text: String = first.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut = lines.next().is_some();
    if text.chars().count() > MAX_ERROR_CHARS {
        text = text.chars().take(MAX_ERROR_CHARS - 1).collect();
        cut = true;
    }
    if cut {
        text = text.trim_end().to_string();
        text.push('…');
    }
    if text.is_empty() {
        text.push('-');
    }
    text
}
