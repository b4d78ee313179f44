//! The oplog files a snapshot applies, read in order as one stream of flat
//! operations: transactions and `applyOps` unwrapped into the operations
//! they hold, entries a previous file already had skipped, and everything
//! after the target time left out.
//!
//! Every operation gets a position (file, ordinal within the file) that is
//! the same on every read of the stream, so a first pass can record which
//! namespaces each file touches and where collections are created, dropped
//! and renamed, and later passes can read only the files a collection
//! needs and still agree on those positions.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Read;
use std::path::PathBuf;

use bson::{doc, Bson, Document, RawDocumentBuf, Timestamp};

use super::SnapshotError;
use crate::restore::pitr::Link;
use crate::storage::{self, BsonReader};

/// `applyOps` nested deeper than this is refused (a server nests one level).
const MAX_NESTING: usize = 8;

/// One oplog file to apply and what the first pass learnt about it.
#[derive(Debug, Clone)]
pub(crate) struct OplogFile {
    /// Index of the backup (in the snapshot's links) that holds it.
    pub link: usize,
    pub rel: String,
    /// Entries at or before this time were in an earlier file.
    pub after: Option<Timestamp>,
    /// Namespaces whose documents it changes.
    pub touched: HashSet<String>,
    /// A transaction split over several entries is still open at its end,
    /// so the next file cannot be read without this one.
    pub carries_txn: bool,
}

impl OplogFile {
    pub(crate) fn new(link: usize, rel: String) -> OplogFile {
        OplogFile {
            link,
            rel,
            after: None,
            touched: HashSet::new(),
            carries_txn: false,
        }
    }
}

/// Where an operation is in the stream; ordered like the oplog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Pos {
    pub file: usize,
    pub n: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Insert,
    Update,
    Delete,
    Command,
}

#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub o: Document,
    pub o2: Option<Document>,
}

#[derive(Debug, Clone)]
pub(crate) struct FlatOp {
    pub pos: Pos,
    pub ts: Timestamp,
    pub kind: Kind,
    /// `db.coll`, or `db.$cmd` for a command.
    pub ns: String,
    /// The entry's content; None when the filter did not ask for it.
    pub body: Option<Body>,
    /// It came out of an `applyOps` or a transaction.
    pub nested: bool,
}

/// What the stream reads: the snapshot's backups and oplog files (the
/// indexes in `order`, ascending), up to `until`.
pub(crate) struct OplogStream<'a, F> {
    links: &'a [Link],
    files: &'a [OplogFile],
    order: Vec<usize>,
    next_file: usize,
    until: Option<Timestamp>,
    /// Whether a CRUD entry on this namespace at this position is wanted.
    want: F,
    current: Option<Current>,
    queue: VecDeque<FlatOp>,
    /// Operations of transactions split over several entries, by session
    /// and transaction number, until the entry that commits them.
    open_txns: HashMap<Vec<u8>, Vec<(Kind, String, Body)>>,
    last_ts: Option<Timestamp>,
    done: bool,
    /// Filled for every file read when asked for (the first pass).
    pub summaries: Option<Vec<OplogFile>>,
}

struct Current {
    index: usize,
    reader: BsonReader<Box<dyn Read + Send>>,
    path: PathBuf,
    n: u64,
}

impl<'a, F: FnMut(&str, Pos) -> bool> OplogStream<'a, F> {
    pub(crate) fn new(
        links: &'a [Link],
        files: &'a [OplogFile],
        order: Vec<usize>,
        until: Option<Timestamp>,
        want: F,
    ) -> Self {
        OplogStream {
            links,
            files,
            order,
            next_file: 0,
            until,
            want,
            current: None,
            queue: VecDeque::new(),
            open_txns: HashMap::new(),
            last_ts: None,
            done: false,
            summaries: None,
        }
    }

    /// Also work out each file's [`OplogFile`] facts while reading.
    pub(crate) fn summarizing(mut self) -> Self {
        self.summaries = Some(self.files.to_vec());
        self
    }

    fn backup_of(&self, index: usize) -> String {
        self.links
            .get(self.files[index].link)
            .map(|l| l.manifest.id.clone())
            .unwrap_or_default()
    }

    fn open(&mut self, index: usize) -> Result<Current, SnapshotError> {
        let file = &self.files[index];
        let link = self.links.get(file.link).ok_or_else(|| {
            SnapshotError::Invalid(format!("oplog file {} has no backup", file.rel))
        })?;
        let entry = link.manifest.file(&file.rel).ok_or_else(|| {
            SnapshotError::Invalid(format!(
                "the manifest of backup {} does not list its oplog file {}",
                link.manifest.id, file.rel
            ))
        })?;
        let path = link.dir.path().join(&file.rel);
        let reader = storage::open_verified(&link.dir, entry)
            .map_err(|e| SnapshotError::damaged(link, e))?;
        if let Some(s) = self.summaries.as_mut() {
            s[index].after = self.last_ts;
        }
        Ok(Current {
            index,
            reader: BsonReader::new(reader, path.clone()),
            path,
            n: 0,
        })
    }

    fn unapplicable(&self, cur: &Current, ts: Timestamp, detail: String) -> SnapshotError {
        SnapshotError::Unapplicable {
            backup: self.backup_of(cur.index),
            file: cur.path.clone(),
            at: ts.into(),
            detail,
        }
    }

    /// Reads entries until something is queued or the stream ends.
    fn fill(&mut self) -> Result<(), SnapshotError> {
        while self.queue.is_empty() && !self.done {
            let Some(mut cur) = self.current.take() else {
                let Some(&index) = self.order.get(self.next_file) else {
                    self.done = true;
                    break;
                };
                self.next_file += 1;
                self.current = Some(self.open(index)?);
                continue;
            };
            let raw = match cur.reader.next() {
                None => {
                    if let Some(s) = self.summaries.as_mut() {
                        s[cur.index].carries_txn = !self.open_txns.is_empty();
                    }
                    continue;
                }
                Some(Err(source)) => {
                    let link = &self.links[self.files[cur.index].link];
                    return Err(SnapshotError::damaged(link, source));
                }
                Some(Ok(raw)) => raw,
            };
            let result = self.entry(&mut cur, &raw);
            if !self.done {
                self.current = Some(cur);
            }
            result?;
        }
        Ok(())
    }

    fn entry(&mut self, cur: &mut Current, raw: &RawDocumentBuf) -> Result<(), SnapshotError> {
        let Ok(ts) = raw.get_timestamp("ts") else {
            return Err(SnapshotError::Unapplicable {
                backup: self.backup_of(cur.index),
                file: cur.path.clone(),
                at: crate::catalog::OpTime { t: 0, i: 0 },
                detail: format!(
                    "entry #{} has no timestamp (ts)",
                    cur.reader.documents_read()
                ),
            });
        };
        if self.until.is_some_and(|u| ts > u) {
            // Later files are later still: nothing more to read, and the
            // parts of a transaction not committed by then never happened.
            self.done = true;
            return Ok(());
        }
        let bound = self.last_ts.max(self.files[cur.index].after);
        if bound.is_some_and(|b| ts <= b) {
            return Ok(());
        }
        self.last_ts = Some(ts);
        let op = raw.get_str("op").unwrap_or("");
        let ns = raw.get_str("ns").unwrap_or("");
        let kind = match op {
            "n" => return Ok(()),
            "i" => Kind::Insert,
            "u" => Kind::Update,
            "d" => Kind::Delete,
            "c" => Kind::Command,
            other => {
                return Err(self.unapplicable(cur, ts, format!("unknown operation type {other:?}")))
            }
        };
        if kind != Kind::Command {
            cur.n += 1;
            let pos = Pos {
                file: cur.index,
                n: cur.n,
            };
            if let Some(s) = self.summaries.as_mut() {
                if !s[cur.index].touched.contains(ns) {
                    s[cur.index].touched.insert(ns.to_string());
                }
            }
            let body = if (self.want)(ns, pos) {
                let entry = raw.to_document().map_err(|e| {
                    self.unapplicable(cur, ts, format!("the entry cannot be decoded: {e}"))
                })?;
                Some(body_of(&entry))
            } else {
                None
            };
            self.queue.push_back(FlatOp {
                pos,
                ts,
                kind,
                ns: ns.to_string(),
                body,
                nested: false,
            });
            return Ok(());
        }
        let entry = raw
            .to_document()
            .map_err(|e| self.unapplicable(cur, ts, format!("the entry cannot be decoded: {e}")))?;
        let body = body_of(&entry);
        let name = body.o.keys().next().cloned().unwrap_or_default();
        match name.as_str() {
            "applyOps" => self.apply_ops(cur, ts, &entry, &body.o),
            "commitTransaction" | "abortTransaction" => Err(self.unapplicable(
                cur,
                ts,
                format!(
                    "{name} ends a prepared transaction, which only sharded clusters write; \
                     mongo-backupd backs up replica sets"
                ),
            )),
            _ => {
                cur.n += 1;
                self.queue.push_back(FlatOp {
                    pos: Pos {
                        file: cur.index,
                        n: cur.n,
                    },
                    ts,
                    kind,
                    ns: ns.to_string(),
                    body: Some(body),
                    nested: false,
                });
                Ok(())
            }
        }
    }

    /// A transaction or an `applyOps` command: its operations, each at its
    /// own position; the parts of a split transaction wait for the entry
    /// that commits it (so a target time before the commit sees none).
    fn apply_ops(
        &mut self,
        cur: &mut Current,
        ts: Timestamp,
        entry: &Document,
        o: &Document,
    ) -> Result<(), SnapshotError> {
        if o.get_bool("prepare") == Ok(true) {
            return Err(self.unapplicable(
                cur,
                ts,
                "a prepared transaction, which only sharded clusters write; mongo-backupd \
                 backs up replica sets"
                    .into(),
            ));
        }
        let mut ops = Vec::new();
        flatten(o, 0, &mut ops).map_err(|detail| self.unapplicable(cur, ts, detail))?;
        let key = txn_key(entry);
        if o.get_bool("partialTxn") == Ok(true) {
            self.open_txns.entry(key).or_default().extend(ops);
            return Ok(());
        }
        let mut all = self.open_txns.remove(&key).unwrap_or_default();
        all.extend(ops);
        for (kind, ns, body) in all {
            cur.n += 1;
            let pos = Pos {
                file: cur.index,
                n: cur.n,
            };
            if kind != Kind::Command {
                if let Some(s) = self.summaries.as_mut() {
                    s[cur.index].touched.insert(ns.clone());
                }
            }
            self.queue.push_back(FlatOp {
                pos,
                ts,
                kind,
                ns,
                body: Some(body),
                nested: true,
            });
        }
        Ok(())
    }
}

impl<F: FnMut(&str, Pos) -> bool> Iterator for OplogStream<'_, F> {
    type Item = Result<FlatOp, SnapshotError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Err(e) = self.fill() {
            self.done = true;
            self.queue.clear();
            return Some(Err(e));
        }
        self.queue.pop_front().map(Ok)
    }
}

fn body_of(entry: &Document) -> Body {
    Body {
        o: entry.get_document("o").cloned().unwrap_or_default(),
        o2: entry.get_document("o2").ok().cloned(),
    }
}

/// The session and transaction number that tie a split transaction's
/// entries together (empty for a plain `applyOps`).
fn txn_key(entry: &Document) -> Vec<u8> {
    match (entry.get("lsid"), entry.get("txnNumber")) {
        (Some(lsid), Some(n)) => {
            bson::to_vec(&doc! { "l": lsid.clone(), "n": n.clone() }).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// The operations inside an `applyOps`, nested ones unwrapped.
fn flatten(o: &Document, depth: usize, out: &mut Vec<(Kind, String, Body)>) -> Result<(), String> {
    if depth > MAX_NESTING {
        return Err(format!("applyOps nested deeper than {MAX_NESTING} levels"));
    }
    let Ok(inner) = o.get_array("applyOps") else {
        return Err("an applyOps command without its array of operations".into());
    };
    for op in inner {
        let Bson::Document(op) = op else {
            return Err("applyOps holds something that is not an operation".into());
        };
        let ns = op.get_str("ns").unwrap_or("").to_string();
        let body = body_of(op);
        let kind = match op.get_str("op").unwrap_or("") {
            "n" => continue,
            "i" => Kind::Insert,
            "u" => Kind::Update,
            "d" => Kind::Delete,
            "c" if body.o.keys().next().map(String::as_str) == Some("applyOps") => {
                flatten(&body.o, depth + 1, out)?;
                continue;
            }
            "c" => Kind::Command,
            other => {
                return Err(format!(
                    "applyOps holds the unknown operation type {other:?}"
                ))
            }
        };
        out.push((kind, ns, body));
    }
    Ok(())
}
