//! The last log lines of each run, so a failure mail can quote what the
//! run itself logged (the journal may be on another machine, or rotated).
//!
//! A tracing layer keeps, per run span, a short ring of formatted lines;
//! the run takes them when it ends. It captures INFO and above from this
//! crate whatever the configured log level, because a mail at WARN level
//! still wants the run's INFO story.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Lines a failure mail quotes.
pub const LINES_PER_RUN: usize = 20;
const SPAN_NAME: &str = "backup_run";
/// Runs whose lines are kept at once; a run's lines are taken when it ends,
/// so this only bounds a leak should a run never end.
const MAX_RUNS: usize = 256;

type Store = Mutex<HashMap<u64, VecDeque<String>>>;

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A new run id, unique in this process.
pub fn next_run() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The span a run executes in; events inside it (and inside spans within
/// it) are captured under `run`.
pub fn span(job: &str, run: u64) -> tracing::Span {
    tracing::info_span!("backup_run", job = %job, run = run)
}

/// The run's captured lines, oldest first; forgets them.
pub fn take(run: u64) -> Vec<String> {
    match store().lock() {
        Ok(mut s) => s.remove(&run).map(Vec::from).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

struct RunId(u64);

/// The layer to install next to the log writers.
pub struct RunLogLayer;

/// [`RunLogLayer`] with its own filter: INFO and above from this crate,
/// whatever level the log writers are set to, because a failure mail
/// quotes the run's INFO lines even when the log shows warnings only.
pub fn layer<S>(
) -> tracing_subscriber::filter::Filtered<RunLogLayer, tracing_subscriber::filter::Targets, S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    RunLogLayer.with_filter(
        tracing_subscriber::filter::Targets::new()
            .with_target("mongo_backupd", tracing::Level::INFO),
    )
}

struct RunField(Option<u64>);

impl Visit for RunField {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "run" {
            self.0 = Some(value);
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// `message key=value ...`, as the log shows it.
struct Line(String, String);

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.1, " {}={value}", field.name());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.1, " {}={value:?}", field.name());
        }
    }
}

impl<S> Layer<S> for RunLogLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != SPAN_NAME {
            return;
        }
        let mut run = RunField(None);
        attrs.record(&mut run);
        if let (Some(n), Some(span)) = (run.0, ctx.span(id)) {
            span.extensions_mut().insert(RunId(n));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some(run) = scope
            .into_iter()
            .find_map(|span| span.extensions().get::<RunId>().map(|r| r.0))
        else {
            return;
        };
        let mut line = Line(String::new(), String::new());
        event.record(&mut line);
        let text = format!(
            "{} {:>5} {}{}",
            chrono::Utc::now().format("%H:%M:%S%.3f"),
            event.metadata().level(),
            line.0,
            line.1
        );
        let Ok(mut s) = store().lock() else {
            return;
        };
        if !s.contains_key(&run) && s.len() >= MAX_RUNS {
            return;
        }
        let lines = s.entry(run).or_default();
        if lines.len() == LINES_PER_RUN {
            lines.pop_front();
        }
        lines.push_back(text);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tracing::Instrument;
    use tracing_subscriber::layer::SubscriberExt;

    #[tokio::test]
    async fn a_run_keeps_its_own_last_lines_only() {
        let subscriber = tracing_subscriber::registry().with(RunLogLayer);
        let _guard = tracing::subscriber::set_default(subscriber);
        let (a, b) = (next_run(), next_run());
        async {
            for i in 0..(LINES_PER_RUN + 5) {
                tracing::info!(backup_id = "full-1", "Line {i} of run a.");
            }
        }
        .instrument(span("job-a", a))
        .await;
        async {
            tracing::warn!("Only line of run b.");
        }
        .instrument(span("job-b", b))
        .await;
        tracing::info!("Outside any run.");

        let lines_a = take(a);
        assert_eq!(lines_a.len(), LINES_PER_RUN);
        assert!(lines_a[0].contains("Line 5 of run a."), "{lines_a:?}");
        assert!(
            lines_a[0].contains("backup_id=\"full-1\"") || lines_a[0].contains("backup_id=full-1")
        );
        assert!(lines_a.last().unwrap().contains("Line 24 of run a."));
        let lines_b = take(b);
        assert_eq!(lines_b.len(), 1);
        assert!(
            lines_b[0].contains(" WARN Only line of run b."),
            "{lines_b:?}"
        );
        assert!(take(a).is_empty(), "taking forgets the lines");
    }
}
