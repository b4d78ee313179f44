//! The replication oplog's clock and entry format.
//!
//! Entries are built in the shape MongoDB 5.0+ writes to `local.oplog.rs`
//! (`op`, `ns`, `ui`, `o`, `o2`, `ts`, `t`, `v`, `wall`), because the backup
//! tool reads, stores and replays them exactly as it would from a real
//! replica set.

use bson::{doc, Bson, DateTime, Document, Timestamp, Uuid};

/// Namespace of the oplog.
pub const OPLOG_DB: &str = "local";
pub const OPLOG_COLL: &str = "oplog.rs";
/// The election term: a single node that never steps down stays in term 1.
pub const TERM: i64 = 1;

/// Hands out strictly increasing timestamps: seconds of wall-clock time and
/// an increment within that second, as a primary does. If the wall clock
/// steps back, the increment keeps counting on the last second so order
/// is never broken.
#[derive(Debug, Clone)]
pub struct OplogClock {
    last: Timestamp,
}

impl Default for OplogClock {
    fn default() -> Self {
        OplogClock {
            last: Timestamp {
                time: 0,
                increment: 0,
            },
        }
    }
}

impl OplogClock {
    pub fn next(&mut self, now: DateTime) -> Timestamp {
        let secs = u32::try_from(now.timestamp_millis().max(0) / 1000).unwrap_or(u32::MAX);
        self.last = if secs > self.last.time {
            Timestamp {
                time: secs,
                increment: 1,
            }
        } else if self.last.increment == u32::MAX {
            Timestamp {
                time: self.last.time.saturating_add(1),
                increment: 1,
            }
        } else {
            Timestamp {
                time: self.last.time,
                increment: self.last.increment + 1,
            }
        };
        self.last
    }

    /// The newest timestamp handed out (the cluster time).
    pub fn last(&self) -> Timestamp {
        self.last
    }
}

/// What kind of operation an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Delete,
    Command,
    Noop,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Op::Insert => "i",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Command => "c",
            Op::Noop => "n",
        }
    }
}

/// An oplog entry before it is stamped with its time.
#[derive(Debug, Clone)]
pub struct PendingEntry {
    pub op: Op,
    pub ns: String,
    pub ui: Option<Uuid>,
    pub o: Document,
    pub o2: Option<Document>,
}

impl PendingEntry {
    pub fn new(op: Op, ns: impl Into<String>, ui: Option<Uuid>, o: Document) -> Self {
        PendingEntry {
            op,
            ns: ns.into(),
            ui,
            o,
            o2: None,
        }
    }

    pub fn with_o2(mut self, o2: Document) -> Self {
        self.o2 = Some(o2);
        self
    }

    /// The document as stored, with fields in the order mongod writes them.
    pub fn stamp(self, ts: Timestamp, wall: DateTime) -> Document {
        let mut d = doc! { "op": self.op.code(), "ns": self.ns };
        if let Some(ui) = self.ui {
            d.insert("ui", Bson::from(ui));
        }
        d.insert("o", self.o);
        if let Some(o2) = self.o2 {
            d.insert("o2", o2);
        }
        d.insert("ts", ts);
        d.insert("t", TERM);
        d.insert("v", 2i64);
        d.insert("wall", wall);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_strictly_increasing_even_when_time_goes_back() {
        let mut c = OplogClock::default();
        let t1 = c.next(DateTime::from_millis(10_000));
        let t2 = c.next(DateTime::from_millis(10_500));
        let t3 = c.next(DateTime::from_millis(5_000));
        let t4 = c.next(DateTime::from_millis(11_000));
        assert_eq!((t1.time, t1.increment), (10, 1));
        assert_eq!((t2.time, t2.increment), (10, 2));
        assert_eq!((t3.time, t3.increment), (10, 3));
        assert_eq!((t4.time, t4.increment), (11, 1));
        assert_eq!(c.last(), t4);
    }

    #[test]
    fn entry_field_order_matches_mongod() {
        let e = PendingEntry::new(Op::Update, "db.c", Some(Uuid::new()), doc! {"$v": 2})
            .with_o2(doc! {"_id": 1})
            .stamp(
                Timestamp {
                    time: 1,
                    increment: 1,
                },
                DateTime::from_millis(1000),
            );
        let keys: Vec<&str> = e.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["op", "ns", "ui", "o", "o2", "ts", "t", "v", "wall"]);
        assert_eq!(e.get_i64("v").unwrap(), 2);
    }
}
