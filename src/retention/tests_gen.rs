//! Test helpers: a seeded xorshift generator (no proptest in the tree),
//! item builders, and random histories and policies for the property
//! tests.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Item, ItemKind, ItemStatus, Policy};

/// xorshift64*: tiny, fast, good enough to explore histories, and the same
/// sequence on every machine.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        // Zero is the one state xorshift never leaves; mix the seed so that
        // neighbouring seeds start far apart.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(super) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`; the bias is irrelevant here).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `per_mille / 1000`.
    pub(super) fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    pub(super) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

pub(super) fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

pub(super) fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

pub(super) fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3600)
}

pub(super) fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

/// The id a backup started at `start` gets.
pub(super) fn id_at(kind: ItemKind, start: DateTime<Utc>) -> String {
    format!("{}-{}", start.format("%Y%m%dT%H%M%SZ"), kind.as_str())
}

/// A complete backup started at `start`, consistent as of `start + 5 min`.
pub(super) fn backup(job: &str, kind: ItemKind, start: &str, parent: Option<&Item>) -> Item {
    let start = at(start);
    Item {
        id: id_at(kind, start),
        job: job.to_string(),
        kind,
        status: ItemStatus::Complete,
        time: start + secs(300),
        parent: parent.map(|p| p.id.clone()),
    }
}

pub(super) fn full(start: &str) -> Item {
    backup("db-full", ItemKind::Full, start, None)
}

pub(super) fn incr(start: &str, parent: &Item) -> Item {
    backup("db-incr", ItemKind::Incremental, start, Some(parent))
}

pub(super) fn manual(start: &str) -> Item {
    backup("db-manual", ItemKind::Manual, start, None)
}

/// The same backup, partial or invalid: those are dated by their id.
pub(super) fn with_status(mut item: Item, status: ItemStatus) -> Item {
    item.status = status;
    item.time -= secs(300);
    item
}

fn random_status(rng: &mut Rng, bad_per_mille: u64) -> ItemStatus {
    if !rng.chance(bad_per_mille) {
        ItemStatus::Complete
    } else if rng.chance(500) {
        ItemStatus::Partial
    } else {
        ItemStatus::Invalid
    }
}

/// A random history of one job pair (fulls daily-ish, incrementals
/// hourly-ish chained to the previous complete backup) plus a manual job,
/// with random partial and invalid backups, lost backups (missing
/// parents), corrupt parents, duplicates, and a `now` anywhere from inside
/// the history to long after it. Fulls and incrementals share one job in
/// some histories, as they may on disk.
pub(super) fn history(rng: &mut Rng) -> (Vec<Item>, DateTime<Utc>) {
    let origin = at("2026-01-01T00:00:00Z")
        + TimeDelta::days(rng.below(700) as i64)
        + secs(rng.below(86_400) as i64);
    let span_days = 1 + rng.below(21) as i64;
    let full_rate = 500 + rng.below(501);
    let incr_rate = rng.below(1001);
    let bad = rng.below(120);
    let (full_job, incr_job) = if rng.chance(300) {
        ("pair", "pair")
    } else {
        ("f", "i")
    };
    let mut items: Vec<Item> = Vec::new();
    // An idle database: an incremental with nothing to copy ends where
    // its parent ended, so equal times are common.
    let idle = rng.below(400);
    let mut head: Option<(String, DateTime<Utc>)> = None;
    for day in 0..span_days {
        let day_start = origin + TimeDelta::days(day);
        if rng.chance(full_rate) {
            let start = day_start + secs(2 * 3600 + rng.below(1200) as i64);
            let status = random_status(rng, bad);
            let item = Item {
                id: id_at(ItemKind::Full, start),
                job: full_job.to_string(),
                kind: ItemKind::Full,
                status,
                time: start + secs(60 + rng.below(900) as i64),
                parent: None,
            };
            if status == ItemStatus::Complete {
                head = Some((item.id.clone(), item.time));
            }
            items.push(item);
        }
        for hour in 3..26 {
            if !rng.chance(incr_rate) {
                continue;
            }
            let start = day_start + secs(hour * 3600 + rng.below(120) as i64);
            let mut parent = head.as_ref().map(|(id, _)| id.clone());
            let mut time = start + secs(1 + rng.below(30) as i64);
            if let Some((_, end)) = &head {
                if rng.chance(idle) {
                    time = *end;
                }
            }
            if rng.chance(10) && !items.is_empty() {
                // A corrupt or hand-edited manifest: any id at all.
                let other = rng.below(items.len() as u64) as usize;
                parent = Some(items[other].id.clone());
            } else if rng.chance(2) {
                parent = None;
            } else if rng.chance(3) {
                parent = Some("20250101T000000Z-full".to_string());
            }
            let status = random_status(rng, bad);
            let item = Item {
                id: id_at(ItemKind::Incremental, start),
                job: incr_job.to_string(),
                kind: ItemKind::Incremental,
                status,
                time,
                parent,
            };
            if status == ItemStatus::Complete {
                head = Some((item.id.clone(), item.time));
            }
            items.push(item);
        }
    }
    for _ in 0..rng.below(6) {
        let start = origin + secs(rng.below(span_days as u64 * 86_400) as i64);
        let status = random_status(rng, bad);
        items.push(Item {
            id: id_at(ItemKind::Manual, start),
            job: "m".to_string(),
            kind: ItemKind::Manual,
            status,
            time: start + secs(600),
            parent: None,
        });
    }
    // Lost backups (deleted by hand, a disk error): their children's
    // parents are missing.
    let lose = rng.below(40);
    items.retain(|_| !rng.chance(lose));
    // A `.partial-` directory left next to the committed backup of the
    // same id.
    if rng.chance(100) && !items.is_empty() {
        let mut twin = items[rng.below(items.len() as u64) as usize].clone();
        twin.status = ItemStatus::Partial;
        items.push(twin);
    }
    // A loop in corrupt parents.
    if rng.chance(30) && items.len() >= 2 {
        let a = rng.below(items.len() as u64) as usize;
        let b = rng.below(items.len() as u64) as usize;
        if items[a].kind == ItemKind::Incremental {
            items[a].parent = Some(items[b].id.clone());
        }
    }
    let end = origin + TimeDelta::days(span_days);
    let now = match rng.below(4) {
        // Inside the history: some backups are in the future.
        0 => origin + secs(rng.below(span_days as u64 * 86_400 + 1) as i64),
        // Just after it, as in normal operation.
        1 | 2 => end + secs(rng.below(6 * 3600) as i64),
        // Long after: the source went away and everything ages out.
        _ => end + TimeDelta::days(rng.below(120) as i64),
    };
    (items, now)
}

/// A random policy; any value the type allows, biased towards the
/// interesting ranges.
pub(super) fn policy(rng: &mut Rng) -> Policy {
    let mut maybe = |none_per_mille: u64, max: u64| {
        if rng.chance(none_per_mille) {
            None
        } else {
            Some(rng.below(max + 1) as u32)
        }
    };
    let keep_daily = maybe(500, 10);
    let keep_weekly = maybe(600, 5);
    let keep_monthly = maybe(700, 3);
    Policy {
        max_age: Duration::from_secs(rng.below(40 * 86_400)),
        keep_daily,
        keep_weekly,
        keep_monthly,
        min_keep: rng.below(6) as u32,
        partial_grace: Duration::from_secs(rng.below(48 * 3600)),
    }
}
