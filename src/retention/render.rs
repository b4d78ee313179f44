//! The `prune --dry-run` report: one line per backup, then a summary.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};

use super::{days_hours, Action, Decision, Item, ItemStatus};

/// The report of `decisions` (from one or several policies). Lines are
/// ordered newest first whatever the order given, so the decisions of a
/// job pair and of a manual job can simply be concatenated; the job column
/// is shown when more than one job is involved.
pub fn render(decisions: &[Decision], items: &[Item], now: DateTime<Utc>) -> String {
    let times: HashMap<(&str, &str, ItemStatus), DateTime<Utc>> = items
        .iter()
        .map(|it| ((it.job.as_str(), it.id.as_str(), it.status), it.time))
        .collect();
    let time_of = |d: &Decision| {
        times
            .get(&(d.job.as_str(), d.id.as_str(), d.status))
            .copied()
    };
    let mut ordered: Vec<&Decision> = decisions.iter().collect();
    ordered.sort_by_key(|d| (Reverse(time_of(d)), Reverse(d.id.as_str()), d.job.as_str()));

    let jobs: BTreeSet<&str> = decisions.iter().map(|d| d.job.as_str()).collect();
    let rows: Vec<[String; 6]> = ordered
        .iter()
        .map(|d| {
            let kind = match d.status {
                ItemStatus::Complete => d.kind.as_str().to_string(),
                other => format!("{} ({})", d.kind.as_str(), other.as_str()),
            };
            let age = match time_of(d) {
                Some(t) if t > now => {
                    format!("in {}", days_hours((t - now).to_std().unwrap_or_default()))
                }
                Some(t) => days_hours((now - t).to_std().unwrap_or_default()),
                None => "?".to_string(),
            };
            let action = match d.action {
                Action::Keep => "KEEP",
                Action::Delete => "DELETE",
            };
            let why: Vec<String> = d.reasons.iter().map(|r| r.describe()).collect();
            [
                d.job.clone(),
                d.id.clone(),
                kind,
                age,
                action.to_string(),
                why.join("; "),
            ]
        })
        .collect();
    let header = ["JOB", "BACKUP", "KIND", "AGE", "ACTION", "WHY"].map(String::from);
    let first_column = if jobs.len() > 1 { 0 } else { 1 };
    let mut widths = [0usize; 6];
    for row in rows.iter().chain([&header]) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }

    let mut out = format!(
        "prune --dry-run at {}\n",
        now.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    for row in [&header].into_iter().chain(&rows) {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate().skip(first_column) {
            if column > first_column {
                line.push_str("  ");
            }
            // The age is right-aligned so the units line up.
            if column == 3 {
                line.push_str(&format!("{cell:>w$}", w = widths[column]));
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[column]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let kept = decisions
        .iter()
        .filter(|d| d.action == Action::Keep)
        .count();
    let total = decisions.len();
    let noun = if total == 1 { "backup" } else { "backups" };
    out.push_str(&format!(
        "keeps {kept} of {total} {noun}, deletes {}\n",
        total - kept
    ));
    out
}
