//! Alerts for on-call: the daemon reports events (a failed run, an oplog
//! gap, a rejected reload, a success) to one background task, which decides
//! what to mail ([`policy`]), writes the mail ([`render`]) and hands it to
//! the delivery queue ([`outbox`] over [`smtp`]). The same task runs the
//! staleness watchdog over [`stale::Health`], which the scheduler updates,
//! so a scheduler that stops starting jobs is noticed from outside it.
//!
//! Reporting never blocks the daemon: every call here only sends on an
//! unbounded channel that a dedicated task drains at once, and delivery
//! retries happen in their own task with their own bounded queue.

pub mod event;
mod outbox;
pub mod policy;
pub mod render;
pub mod runlog;
pub mod smtp;
pub mod stale;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use event::{Event, Failure, GapRestart, JobRef, Operation, Reseed};
pub use outbox::{DeliveryState, SharedDelivery};
use policy::{AlertState, Limits, Outgoing};
use stale::Health;

use crate::config::{AlertSettings, Config, Job};

/// The longest the watchdog waits between checks.
const MAX_CHECK: Duration = Duration::from_secs(30);

enum Input {
    Event(Event),
    Succeeded {
        job: JobRef,
        operation: Operation,
        backup_id: Option<String>,
    },
    Reloaded(Box<Settings>),
}

/// What the alert task takes from the configuration.
#[derive(Debug, Clone)]
struct Settings {
    alerts: AlertSettings,
    recipients: BTreeMap<String, Vec<String>>,
    config_path: PathBuf,
}

impl Settings {
    fn of(cfg: &Config) -> Settings {
        Settings {
            alerts: cfg.alerts.clone(),
            recipients: cfg
                .jobs
                .iter()
                .map(|(n, j)| (n.clone(), j.alert_to.clone()))
                .collect(),
            config_path: cfg.path.clone(),
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            reminder: self.alerts.reminder_interval,
            max_per_hour: self.alerts.max_per_hour,
        }
    }
}

/// The daemon's handle on alerting. Cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    tx: mpsc::UnboundedSender<Input>,
    health: Arc<Mutex<Health>>,
    delivery: SharedDelivery,
}

/// The running alert tasks; [`AlertTasks::finish`] flushes waiting mails.
pub struct AlertTasks {
    alerter: JoinHandle<()>,
    outbox: JoinHandle<()>,
}

/// How a job is named in alerts. The hosts come from the URI (never its
/// credentials); a URI that cannot be read yet is named by its source.
pub fn job_ref(cfg: &Config, job: &Job) -> JobRef {
    let hosts = cfg
        .sources
        .get(&job.source)
        .and_then(|s| s.resolve_uri().ok())
        .map(|uri| crate::source::hosts_of(&uri))
        .unwrap_or_else(|| format!("source {}", job.source));
    let storage = cfg
        .storage
        .get(&job.storage)
        .map(|s| match s.local_path() {
            Some(p) => format!("{} ({})", s.name, p.display()),
            None => s.name.clone(),
        })
        .unwrap_or_else(|| job.storage.clone());
    JobRef {
        job: job.name.clone(),
        kind: job.kind.as_str().to_string(),
        source: job.source.clone(),
        hosts,
        storage,
    }
}

impl Alerts {
    /// Starts the alert and delivery tasks for `cfg`; `state_dir` receives
    /// the delivery records.
    pub fn start(cfg: &Config) -> (Alerts, AlertTasks) {
        let now = Utc::now();
        let settings = Settings::of(cfg);
        let (tx, rx) = mpsc::unbounded_channel();
        let (mail_tx, mail_rx) = mpsc::unbounded_channel();
        let (email_tx, email_rx) = watch::channel(settings.alerts.email.clone());
        let health = Arc::new(Mutex::new(Health::new(now)));
        let delivery = SharedDelivery::default();
        let flush = settings
            .alerts
            .email
            .as_ref()
            .map_or(Duration::ZERO, |e| e.timeout.min(Duration::from_secs(30)));
        let outbox = tokio::spawn(outbox::run(
            mail_rx,
            email_rx,
            delivery.clone(),
            cfg.daemon.state_dir.clone(),
            flush,
        ));
        let alerter = tokio::spawn(alerter(rx, settings, health.clone(), mail_tx, email_tx));
        (
            Alerts {
                tx,
                health,
                delivery,
            },
            AlertTasks { alerter, outbox },
        )
    }

    pub fn event(&self, event: Event) {
        // Fails only once the alert task has ended, at shutdown.
        let _ = self.tx.send(Input::Event(event));
    }

    pub fn succeeded(&self, job: JobRef, operation: Operation, backup_id: Option<String>) {
        let _ = self.tx.send(Input::Succeeded {
            job,
            operation,
            backup_id,
        });
    }

    /// A new configuration is in force (recipients, limits, SMTP).
    pub fn reloaded(&self, cfg: &Config) {
        let _ = self.tx.send(Input::Reloaded(Box::new(Settings::of(cfg))));
    }

    /// Updates what the watchdog knows; never held across an await.
    pub fn with_health<T>(&self, f: impl FnOnce(&mut Health) -> T) -> Option<T> {
        self.health.lock().ok().map(|mut h| f(&mut h))
    }

    pub fn delivery(&self) -> DeliveryState {
        self.delivery.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

impl AlertTasks {
    /// Waits for the tasks to end after every [`Alerts`] handle is gone:
    /// waiting mails get one last attempt within the SMTP timeout.
    pub async fn finish(self) {
        let _ = self.alerter.await;
        let _ = self.outbox.await;
    }
}

/// How often the watchdog looks: often enough to notice the shortest
/// threshold within a quarter of it, at least every [`MAX_CHECK`].
fn check_every(health: &Health, settings: &Settings) -> Duration {
    let shortest = health
        .jobs
        .values()
        .filter_map(|j| j.threshold)
        .chain(std::iter::once(settings.alerts.reminder_interval))
        .min()
        .unwrap_or(MAX_CHECK);
    (shortest / 4).clamp(Duration::from_secs(1), MAX_CHECK)
}

async fn alerter(
    mut rx: mpsc::UnboundedReceiver<Input>,
    mut settings: Settings,
    health: Arc<Mutex<Health>>,
    mail_tx: mpsc::UnboundedSender<outbox::Queued>,
    email_tx: watch::Sender<Option<crate::config::EmailSettings>>,
) {
    let mut state = AlertState::new(settings.limits());
    let hostname = smtp::hostname();
    loop {
        let snapshot = health.lock().map(|h| h.clone()).ok();
        let wait = snapshot
            .as_ref()
            .map_or(MAX_CHECK, |h| check_every(h, &settings));
        let mut out: Vec<Outgoing> = Vec::new();
        tokio::select! {
            msg = rx.recv() => {
                let now = Utc::now();
                match msg {
                    None => break,
                    Some(Input::Event(e)) => {
                        if let Event::ReloadRejected { .. } = e {
                            // A rejection replaces any earlier one.
                            state.reload_accepted();
                        }
                        out.extend(state.raise(e, now));
                    }
                    Some(Input::Succeeded { job, operation, backup_id }) => {
                        out.extend(state.succeeded(&job, operation, backup_id, now));
                    }
                    Some(Input::Reloaded(new)) => {
                        settings = *new;
                        state.set_limits(settings.limits());
                        state.reload_accepted();
                        email_tx.send_replace(settings.alerts.email.clone());
                    }
                }
            }
            _ = tokio::time::sleep(wait) => {
                let now = Utc::now();
                if let Some(h) = &snapshot {
                    for s in stale::stale_jobs(h, now) {
                        out.extend(state.raise(Event::Stale(s), now));
                    }
                    match stale::scheduler_stuck(h, now) {
                        Some(last_tick) => out.extend(state.raise(Event::SchedulerStuck { last_tick }, now)),
                        None => out.extend(state.scheduler_ok(now)),
                    }
                    let gone: Vec<String> = settings
                        .recipients
                        .keys()
                        .filter(|j| !h.jobs.contains_key(*j))
                        .cloned()
                        .collect();
                    for job in gone {
                        state.forget_job(&job);
                    }
                }
                out.extend(state.tick(now));
            }
        }
        for o in out {
            dispatch(&o, &settings, &hostname, &mail_tx);
        }
    }
}

fn dispatch(
    out: &Outgoing,
    settings: &Settings,
    hostname: &str,
    mail_tx: &mpsc::UnboundedSender<outbox::Queued>,
) {
    let now = Utc::now();
    let prefix = settings
        .alerts
        .email
        .as_ref()
        .map_or("[mongo-backupd]", |e| e.subject_prefix.as_str());
    let config_path = settings.config_path.display().to_string();
    let ctx = render::Context {
        prefix,
        hostname,
        config_path: &config_path,
        reminder: settings.alerts.reminder_interval,
        now,
    };
    let rendered = render::render(out, &ctx);
    let job = out.event.job().map(str::to_string);
    let extra_to = job
        .as_ref()
        .and_then(|j| settings.recipients.get(j))
        .cloned()
        .unwrap_or_default();
    if settings.alerts.email.is_none() {
        tracing::warn!(
            "Alert (not mailed: no [alerts.email] is configured): {}",
            rendered.subject
        );
        return;
    }
    tracing::info!("Alert queued for mailing: {}", rendered.subject);
    let mail = smtp::Mail {
        subject: rendered.subject,
        body: rendered.body,
        extra_to,
    };
    let _ = mail_tx.send(outbox::Queued::new(mail, job, now));
}
