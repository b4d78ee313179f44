//! Noise control, as a pure state machine over events and `now`: the same
//! condition mails once and is then reminded of every `reminder_interval`
//! until it clears; no more than `max_per_hour` mails leave in any rolling
//! hour; whatever the limit holds back is counted and listed in the next
//! mail, so on-call never loses sight of it.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::event::{Event, JobRef, Key, Operation, Recovery};
use super::render;

/// The limits, from `[alerts]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub reminder: Duration,
    pub max_per_hour: u32,
}

/// Whether a mail is the first about its condition or a reminder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mailing {
    First,
    Reminder {
        since: DateTime<Utc>,
        /// How often the condition was seen again since the last mail.
        repeats: u32,
        /// How often it was seen in all.
        total: u32,
    },
}

/// A mail the policy lets out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub event: Event,
    pub mailing: Mailing,
    /// Mails held back by the hourly limit since the previous mail, by
    /// headline, with how many of each.
    pub suppressed: Vec<(String, u32)>,
}

#[derive(Debug, Clone)]
struct Condition {
    first_seen: DateTime<Utc>,
    /// `None` while its first mail is held back by the hourly limit.
    last_mailed: Option<DateTime<Utc>>,
    total: u32,
    since_mail: u32,
    latest: Event,
}

#[derive(Debug, Clone)]
pub struct AlertState {
    limits: Limits,
    conditions: BTreeMap<Key, Condition>,
    /// When each kind of one-off event was last mailed.
    once: BTreeMap<Key, DateTime<Utc>>,
    /// Send times within the last hour.
    sent: VecDeque<DateTime<Utc>>,
    suppressed: BTreeMap<String, u32>,
    /// Every mail ever held back (for metrics, and to check the counts).
    suppressed_total: u64,
}

const HOUR: chrono::Duration = chrono::Duration::hours(1);

impl AlertState {
    pub fn new(limits: Limits) -> AlertState {
        AlertState {
            limits,
            conditions: BTreeMap::new(),
            once: BTreeMap::new(),
            sent: VecDeque::new(),
            suppressed: BTreeMap::new(),
            suppressed_total: 0,
        }
    }

    /// New limits after a reload; conditions and counts carry over.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    fn reminder(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.limits.reminder).unwrap_or(chrono::Duration::MAX)
    }

    /// Takes a slot in the hourly budget. Refused mails are counted under
    /// `headline` when `count` (a retry of a held-back mail is not counted
    /// twice).
    fn admit(
        &mut self,
        now: DateTime<Utc>,
        headline: String,
        count: bool,
    ) -> Option<Vec<(String, u32)>> {
        while self.sent.front().is_some_and(|t| now - *t >= HOUR) {
            self.sent.pop_front();
        }
        if self.sent.len() < self.limits.max_per_hour as usize {
            self.sent.push_back(now);
            return Some(std::mem::take(&mut self.suppressed).into_iter().collect());
        }
        if count {
            *self.suppressed.entry(headline).or_default() += 1;
            self.suppressed_total += 1;
        }
        None
    }

    /// An event happened. Returns the mail to send now, if any.
    pub fn raise(&mut self, event: Event, now: DateTime<Utc>) -> Option<Outgoing> {
        let key = event.key();
        if !event.persists() {
            let recent = self
                .once
                .get(&key)
                .is_some_and(|t| now - *t < self.reminder());
            let headline = render::headline(&event);
            if recent {
                *self.suppressed.entry(headline).or_default() += 1;
                self.suppressed_total += 1;
                return None;
            }
            let suppressed = self.admit(now, headline, true)?;
            self.once.insert(key, now);
            return Some(Outgoing {
                event,
                mailing: Mailing::First,
                suppressed,
            });
        }
        if let Key::Stale(job) = &key {
            // A job whose runs fail is stale too; the failure mails already
            // say so, and more precisely.
            if self
                .conditions
                .contains_key(&Key::Failed(job.clone(), Operation::Backup))
            {
                return None;
            }
        }
        match self.conditions.get_mut(&key) {
            Some(c) => {
                c.total += 1;
                c.since_mail += 1;
                c.latest = event;
                if c.last_mailed.is_some() {
                    return None;
                }
                // Its first mail was held back: try again, uncounted.
                let headline = render::headline(&c.latest);
                let suppressed = self.admit(now, headline, false)?;
                let c = self.conditions.get_mut(&key)?;
                c.last_mailed = Some(now);
                c.since_mail = 0;
                Some(Outgoing {
                    event: c.latest.clone(),
                    mailing: Mailing::First,
                    suppressed,
                })
            }
            None => {
                let headline = render::headline(&event);
                let suppressed = self.admit(now, headline, true);
                self.conditions.insert(
                    key,
                    Condition {
                        first_seen: now,
                        last_mailed: suppressed.as_ref().map(|_| now),
                        total: 1,
                        since_mail: 0,
                        latest: event.clone(),
                    },
                );
                Some(Outgoing {
                    event,
                    mailing: Mailing::First,
                    suppressed: suppressed?,
                })
            }
        }
    }

    /// Reminders that are due, and first mails the hourly limit held back
    /// that now fit.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Outgoing> {
        let reminder = self.reminder();
        let due: Vec<Key> = self
            .conditions
            .iter()
            .filter(|(_, c)| c.last_mailed.is_none_or(|t| now - t >= reminder))
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for key in due {
            let Some(c) = self.conditions.get(&key) else {
                continue;
            };
            let (headline, first) = (render::headline(&c.latest), c.last_mailed.is_none());
            // A held-back first mail was counted when it was refused; a
            // reminder is counted each time it is refused.
            let admitted = self.admit(now, headline, !first);
            let Some(c) = self.conditions.get_mut(&key) else {
                continue;
            };
            let Some(suppressed) = admitted else {
                if !first {
                    // Try again one interval later rather than every tick.
                    c.last_mailed = Some(now);
                }
                continue;
            };
            let mailing = if first {
                Mailing::First
            } else {
                Mailing::Reminder {
                    since: c.first_seen,
                    repeats: c.since_mail,
                    total: c.total,
                }
            };
            c.last_mailed = Some(now);
            c.since_mail = 0;
            out.push(Outgoing {
                event: c.latest.clone(),
                mailing,
                suppressed,
            });
        }
        out
    }

    /// A run of `job` succeeded: its failure (and, for a backup, its
    /// staleness) is over. Returns the recovery mail if there was trouble.
    pub fn succeeded(
        &mut self,
        job: &JobRef,
        operation: Operation,
        backup_id: Option<String>,
        now: DateTime<Utc>,
    ) -> Option<Outgoing> {
        let failed = self
            .conditions
            .remove(&Key::Failed(job.job.clone(), operation));
        let stale = match operation {
            Operation::Backup => self.conditions.remove(&Key::Stale(job.job.clone())),
            Operation::Retention | Operation::Copy => None,
        };
        let broken_since = [&failed, &stale]
            .into_iter()
            .flatten()
            .map(|c| c.first_seen)
            .min()?;
        let event = Event::Recovered(Recovery {
            job: job.clone(),
            operation,
            broken_since,
            recovered_at: now,
            failures: failed.as_ref().map_or(0, |c| c.total),
            was_stale: stale.is_some(),
            backup_id,
        });
        let suppressed = self.admit(now, render::headline(&event), true)?;
        Some(Outgoing {
            event,
            mailing: Mailing::First,
            suppressed,
        })
    }

    /// A reload succeeded: earlier rejections are moot.
    pub fn reload_accepted(&mut self) {
        self.conditions.retain(|k, _| !matches!(k, Key::Reload(_)));
    }

    /// The scheduler is running again; mails that it resumed if it was
    /// reported stuck.
    pub fn scheduler_ok(&mut self, now: DateTime<Utc>) -> Option<Outgoing> {
        let stuck = self.conditions.remove(&Key::Scheduler)?;
        let event = Event::SchedulerResumed {
            stuck_since: stuck.first_seen,
        };
        let suppressed = self.admit(now, render::headline(&event), true)?;
        Some(Outgoing {
            event,
            mailing: Mailing::First,
            suppressed,
        })
    }

    /// A job was removed from the configuration: its conditions go too.
    pub fn forget_job(&mut self, job: &str) {
        self.conditions.retain(|k, _| match k {
            Key::Failed(j, _) | Key::Stale(j) => j != job,
            _ => true,
        });
    }

    /// Whether `key` is an active condition (for status and tests).
    pub fn is_active(&self, key: &Key) -> bool {
        self.conditions.contains_key(key)
    }

    /// Mails held back so far and not yet reported.
    pub fn pending_suppressed(&self) -> u32 {
        self.suppressed.values().sum()
    }

    /// Mails held back since the start.
    pub fn suppressed_total(&self) -> u64 {
        self.suppressed_total
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
