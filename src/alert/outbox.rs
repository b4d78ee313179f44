//! Delivery of alert mails in the background: a bounded queue in memory,
//! retries with exponential backoff, every outcome logged and recorded in
//! the run history. Nothing here ever waits on the scheduler or makes it
//! wait: the daemon hands a mail over and carries on.
//!
//! When the queue is full the oldest mail is dropped, counted, and named in
//! the next mail that gets through, so memory stays bounded however long
//! the mail server is away and on-call still learns what was lost.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};

use super::smtp::{self, Mail, SendError};
use crate::config::EmailSettings;
use crate::history::{self, RunRecord, RunResult};

/// A permanent refusal (5xx) is retried this many times in all, in case
/// the cause was a passing misconfiguration that a reload fixed.
const PERMANENT_ATTEMPTS: u32 = 3;
/// The first retry waits this long; each further one twice as long, up to
/// `retry_max_interval`.
const FIRST_RETRY: Duration = Duration::from_secs(2);
/// Subjects of dropped mails named in the next mail.
const DROPPED_NAMED: usize = 10;

/// A mail waiting for delivery.
#[derive(Debug, Clone)]
pub struct Queued {
    pub mail: Mail,
    /// The job it is about (for the history), if any.
    pub job: Option<String>,
    pub queued_at: DateTime<Utc>,
    attempts: u32,
}

impl Queued {
    pub fn new(mail: Mail, job: Option<String>, now: DateTime<Utc>) -> Queued {
        Queued {
            mail,
            job,
            queued_at: now,
            attempts: 0,
        }
    }
}

/// How delivery is going, for `status` and the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryState {
    pub queued: usize,
    pub delivered: u64,
    pub failed_attempts: u64,
    pub dropped: u64,
    pub last_delivered: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Set while deliveries fail.
    pub failing_since: Option<DateTime<Utc>>,
}

pub type SharedDelivery = Arc<Mutex<DeliveryState>>;

struct Outbox {
    queue: VecDeque<Queued>,
    limit: usize,
    dropped_subjects: Vec<String>,
    dropped_unreported: u64,
    backoff: Duration,
    state: SharedDelivery,
    state_dir: PathBuf,
}

fn record(state_dir: &std::path::Path, q: &Queued, result: RunResult, error: Option<String>) {
    let rec = RunRecord {
        job: q.job.clone().unwrap_or_else(|| "-".to_string()),
        kind: "alert".to_string(),
        scheduled: None,
        started: q.queued_at,
        finished: Utc::now(),
        result,
        error,
        backup_id: None,
        bytes: None,
        documents: None,
        note: Some(format!(
            "mail \"{}\" after {} attempt{}",
            q.mail.subject,
            q.attempts,
            if q.attempts == 1 { "" } else { "s" }
        )),
        requested_by: None,
    };
    if let Err(e) = history::append(state_dir, &rec) {
        tracing::error!("{e} The outcome of an alert mail is missing from the run history.");
    }
}

impl Outbox {
    fn publish(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.queued = self.queue.len();
        }
    }

    /// Queues `q`, dropping the oldest mail beyond the limit (but never
    /// the one being delivered, `busy_head`).
    fn push(&mut self, q: Queued, busy_head: bool) {
        if self.queue.len() >= self.limit {
            let oldest = if busy_head && self.queue.len() > 1 {
                self.queue.remove(1)
            } else if busy_head {
                None
            } else {
                self.queue.pop_front()
            };
            if let Some(old) = oldest {
                tracing::error!(
                    "The alert mail queue is full ({} mails, queue_limit): dropping the oldest, \"{}\", undelivered.",
                    self.limit,
                    old.mail.subject
                );
                if self.dropped_subjects.len() < DROPPED_NAMED {
                    self.dropped_subjects.push(old.mail.subject.clone());
                }
                self.dropped_unreported += 1;
                if let Ok(mut s) = self.state.lock() {
                    s.dropped += 1;
                }
                record(
                    &self.state_dir,
                    &old,
                    RunResult::Failed,
                    Some("dropped undelivered: the alert queue was full".into()),
                );
            }
        }
        self.queue.push_back(q);
        self.publish();
    }

    /// The head mail, with the list of dropped mails added so the first
    /// mail that gets through reports them.
    fn head(&self) -> Option<(Mail, u64)> {
        let q = self.queue.front()?;
        let mut mail = q.mail.clone();
        if self.dropped_unreported > 0 {
            mail.body.push_str(&format!(
                "\n{} earlier alert mail{} could not be delivered and {} dropped (queue_limit reached while the mail server was unreachable):\n",
                self.dropped_unreported,
                if self.dropped_unreported == 1 { "" } else { "s" },
                if self.dropped_unreported == 1 { "was" } else { "were" },
            ));
            for s in &self.dropped_subjects {
                mail.body.push_str(&format!("  {s}\n"));
            }
            let unnamed =
                (self.dropped_unreported as usize).saturating_sub(self.dropped_subjects.len());
            if unnamed > 0 {
                mail.body.push_str(&format!("  ... and {unnamed} more\n"));
            }
        }
        Some((mail, self.dropped_unreported))
    }

    /// The head mail was delivered, reporting `reported` dropped mails.
    fn delivered(&mut self, transcript: &[String], reported: u64) {
        let Some(mut q) = self.queue.pop_front() else {
            return;
        };
        q.attempts += 1;
        let named = self.dropped_subjects.len().min(reported as usize);
        self.dropped_subjects.drain(..named);
        self.dropped_unreported -= reported.min(self.dropped_unreported);
        self.backoff = FIRST_RETRY;
        let now = Utc::now();
        let late = {
            let Ok(mut s) = self.state.lock() else { return };
            s.delivered += 1;
            s.last_delivered = Some(now);
            s.queued = self.queue.len();
            s.failing_since.take()
        };
        match late {
            Some(since) => tracing::info!(
                "Alert mail delivery works again (it failed since {}): delivered \"{}\"; {} more waiting.",
                since.to_rfc3339(),
                q.mail.subject,
                self.queue.len()
            ),
            None => tracing::info!(
                "Alert mail \"{}\" delivered ({}).",
                q.mail.subject,
                transcript.last().map(String::as_str).unwrap_or("accepted")
            ),
        }
        record(&self.state_dir, &q, RunResult::Success, None);
    }

    /// Returns how long to wait before the next attempt.
    fn failed(&mut self, e: &SendError) -> Duration {
        let now = Utc::now();
        let wait = self.backoff;
        let waiting = self.queue.len();
        let Some(q) = self.queue.front_mut() else {
            return wait;
        };
        q.attempts += 1;
        let give_up = e.permanent && q.attempts >= PERMANENT_ATTEMPTS;
        if let Ok(mut s) = self.state.lock() {
            s.failed_attempts += 1;
            s.last_error = Some(e.to_string());
            s.failing_since.get_or_insert(now);
        }
        if give_up {
            tracing::error!(
                "Alert mail \"{}\" was refused {} times and is dropped: {e}",
                q.mail.subject,
                q.attempts
            );
            if let Some(q) = self.queue.pop_front() {
                record(&self.state_dir, &q, RunResult::Failed, Some(e.to_string()));
            }
            self.publish();
            return Duration::ZERO;
        }
        tracing::error!(
            "Could not deliver alert mail \"{}\" (attempt {}): {e}. Retrying in {}; {} mail{} waiting.",
            q.mail.subject,
            q.attempts,
            crate::config::format_duration(wait),
            waiting,
            if waiting == 1 { "" } else { "s" }
        );
        wait
    }
}

type Delivery = Pin<Box<dyn Future<Output = Result<smtp::Transcript, SendError>> + Send>>;

/// Runs the outbox until `incoming` closes, then tries what is left once
/// more within `flush` and returns.
pub async fn run(
    mut incoming: mpsc::UnboundedReceiver<Queued>,
    mut settings: watch::Receiver<Option<EmailSettings>>,
    state: SharedDelivery,
    state_dir: PathBuf,
    flush: Duration,
) {
    let limit_of = |s: &Option<EmailSettings>| s.as_ref().map_or(100, |e| e.queue_limit.max(1));
    let mut outbox = Outbox {
        queue: VecDeque::new(),
        limit: limit_of(&settings.borrow()),
        dropped_subjects: Vec::new(),
        dropped_unreported: 0,
        backoff: FIRST_RETRY,
        state,
        state_dir,
    };
    let mut next_try = tokio::time::Instant::now();
    // The attempt in progress and how many dropped mails its text reports.
    // It is kept across turns of the loop, so mails arriving meanwhile
    // never interrupt a delivery halfway.
    let mut inflight: Option<(Delivery, u64)> = None;
    loop {
        let email = settings.borrow().clone();
        if inflight.is_none() && tokio::time::Instant::now() >= next_try {
            if let (Some(email), Some((mail, reported))) = (email.clone(), outbox.head()) {
                // Its own task, so that a panic deep in the SMTP or TLS
                // code fails this attempt instead of ending alerting.
                let server = email.server_label();
                let task = tokio::spawn(async move { smtp::deliver(&email, &mail).await });
                let attempt: Delivery = Box::pin(async move {
                    task.await.unwrap_or_else(|e| {
                        Err(SendError {
                            server,
                            step: smtp::Step::Send,
                            detail: format!("the delivery attempt failed unexpectedly: {e}"),
                            advice: None,
                            permanent: false,
                        })
                    })
                });
                inflight = Some((attempt, reported));
            }
        }
        let waiting = inflight.is_none() && email.is_some() && !outbox.queue.is_empty();
        let attempt = async {
            match inflight.as_mut() {
                Some((f, _)) => f.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = attempt => {
                let reported = inflight.take().map_or(0, |(_, r)| r);
                match result {
                    Ok(t) => outbox.delivered(&t, reported),
                    Err(e) => {
                        let wait = outbox.failed(&e);
                        next_try = tokio::time::Instant::now() + wait;
                        if !wait.is_zero() {
                            let max = email.as_ref().map_or(FIRST_RETRY, |e| e.retry_max_interval);
                            outbox.backoff = (outbox.backoff * 2).min(max.max(FIRST_RETRY));
                        }
                    }
                }
            }
            msg = incoming.recv() => match msg {
                Some(q) => outbox.push(q, inflight.is_some()),
                None => break,
            },
            _ = tokio::time::sleep_until(next_try), if waiting => {}
            changed = settings.changed() => {
                if changed.is_err() {
                    break;
                }
                // New settings may well fix the failures: retry now.
                outbox.limit = limit_of(&settings.borrow());
                next_try = tokio::time::Instant::now();
                outbox.backoff = FIRST_RETRY;
            }
        }
    }
    if let Some((attempt, reported)) = inflight.take() {
        match tokio::time::timeout(flush, attempt).await {
            Ok(Ok(t)) => outbox.delivered(&t, reported),
            Ok(Err(e)) => {
                outbox.failed(&e);
            }
            Err(_) => {}
        }
    }
    let email = settings.borrow().clone();
    drain(&mut outbox, &email, flush).await;
}

/// At shutdown: one last attempt for each waiting mail within `flush`.
async fn drain(outbox: &mut Outbox, email: &Option<EmailSettings>, flush: Duration) {
    let Some(email) = email else {
        return;
    };
    let deadline = tokio::time::Instant::now() + flush;
    while let Some((mail, reported)) = outbox.head() {
        match tokio::time::timeout_at(deadline, smtp::deliver(email, &mail)).await {
            Ok(Ok(t)) => outbox.delivered(&t, reported),
            Ok(Err(e)) => {
                outbox.failed(&e);
                break;
            }
            Err(_) => break,
        }
    }
    for q in outbox.queue.drain(..) {
        tracing::error!(
            "Alert mail \"{}\" could not be delivered before the daemon stopped.",
            q.mail.subject
        );
        record(
            &outbox.state_dir,
            &q,
            RunResult::Failed,
            Some("undelivered when the daemon stopped".into()),
        );
    }
}
