//! Server-side cursors: what `find`, `aggregate` and the listing commands
//! leave open for `getMore`.
//!
//! A natural-order scan does not snapshot its collection: like a mongod
//! collection scan it remembers the last record it returned and resumes
//! after it, so a tailable cursor on a capped collection sees new documents,
//! and loses its place (`CappedPositionLost`) when capping removes that
//! record. Sorted and computed results are buffered once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bson::{Document, RawDocumentBuf, Uuid};

use crate::error::{codes, CmdResult, CommandError};
use crate::matcher::matches;
use crate::query::project;
use crate::store::{RecordId, Store};

/// Documents per batch when the client names none: 101 for the first batch
/// (mongod's default), unbounded for `getMore` (bytes limit instead).
pub const DEFAULT_FIRST_BATCH: usize = 101;
/// A batch stops before it would pass mongod's 16 MiB user object limit.
pub const BATCH_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug)]
pub enum Source {
    Buffered(VecDeque<Arc<RawDocumentBuf>>),
    Scan(Box<Scan>),
}

#[derive(Debug)]
pub struct Scan {
    pub db: String,
    pub coll: String,
    pub uuid: Uuid,
    /// Last record returned (or skipped); the scan resumes after it.
    pub after: Option<RecordId>,
    pub reverse: bool,
    pub filter: Document,
    pub projection: Option<Document>,
    pub skip: u64,
}

#[derive(Debug)]
pub struct Cursor {
    pub ns: String,
    pub source: Source,
    pub tailable: bool,
    pub await_data: bool,
    /// Documents still allowed by the query's `limit`.
    pub remaining: Option<u64>,
    /// The `batchSize` of the originating command, reused by `getMore`
    /// unless it names its own.
    pub batch_size: Option<usize>,
}

/// One batch taken from a cursor, and whether the cursor can yield more.
pub struct Batch {
    pub docs: Vec<Arc<RawDocumentBuf>>,
    pub exhausted: bool,
}

impl Cursor {
    /// Takes up to `max_docs` documents (and at most [`BATCH_BYTES`]).
    pub fn next_batch(&mut self, store: &Store, max_docs: usize) -> CmdResult<Batch> {
        let mut want = max_docs.max(1);
        if let Some(r) = self.remaining {
            want = want.min(r as usize);
        }
        let mut docs = Vec::new();
        let mut bytes = 0usize;
        let exhausted = match &mut self.source {
            Source::Buffered(queue) => {
                while docs.len() < want {
                    let Some(front) = queue.front() else { break };
                    let len = front.as_bytes().len();
                    if !docs.is_empty() && bytes + len > BATCH_BYTES {
                        break;
                    }
                    bytes += len;
                    if let Some(d) = queue.pop_front() {
                        docs.push(d);
                    }
                }
                queue.is_empty()
            }
            Source::Scan(scan) => scan_batch(scan, store, want, &mut docs, self.tailable)?,
        };
        if let Some(r) = self.remaining.as_mut() {
            *r -= docs.len() as u64;
        }
        let limit_reached = self.remaining == Some(0);
        Ok(Batch {
            exhausted: limit_reached || (exhausted && !self.tailable),
            docs,
        })
    }
}

fn scan_batch(
    scan: &mut Scan,
    store: &Store,
    want: usize,
    out: &mut Vec<Arc<RawDocumentBuf>>,
    tailable: bool,
) -> CmdResult<bool> {
    let Some(coll) = store
        .collection(&scan.db, &scan.coll)
        .filter(|c| c.uuid == scan.uuid)
    else {
        // The collection was dropped (or dropped and recreated) under us.
        if scan.after.is_none() && !tailable {
            return Ok(true);
        }
        return Err(CommandError::new(
            codes::QUERY_PLAN_KILLED,
            format!("collection dropped. UUID {}", scan.uuid),
        ));
    };
    if let Some(after) = scan.after {
        if coll.is_capped() && after <= coll.evicted_upto && !scan.reverse {
            return Err(CommandError::new(
                codes::CAPPED_POSITION_LOST,
                format!(
                    "CollectionScan died due to position in capped collection being deleted. Last seen record id: RecordId({after})"
                ),
            ));
        }
    }
    let mut bytes = 0usize;
    let range: Box<dyn Iterator<Item = (&RecordId, &Arc<RawDocumentBuf>)>> =
        match (scan.reverse, scan.after) {
            (false, None) => Box::new(coll.records.iter()),
            (false, Some(a)) => Box::new(coll.records.range(a + 1..)),
            (true, None) => Box::new(coll.records.iter().rev()),
            (true, Some(a)) => Box::new(coll.records.range(..a).rev()),
        };
    let mut reached_end = true;
    for (rid, raw) in range {
        if out.len() >= want {
            reached_end = false;
            break;
        }
        let selected = if scan.filter.is_empty() {
            true
        } else {
            let doc = Document::try_from(raw.as_ref().as_ref())
                .map_err(|e| CommandError::new(codes::INTERNAL_ERROR, e.to_string()))?;
            matches(&doc, &scan.filter)?
        };
        if !selected {
            scan.after = Some(*rid);
            continue;
        }
        if scan.skip > 0 {
            scan.skip -= 1;
            scan.after = Some(*rid);
            continue;
        }
        let item = match &scan.projection {
            Some(p) => {
                let doc = Document::try_from(raw.as_ref().as_ref())
                    .map_err(|e| CommandError::new(codes::INTERNAL_ERROR, e.to_string()))?;
                let projected = project(&doc, p)?;
                Arc::new(
                    RawDocumentBuf::from_document(&projected)
                        .map_err(|e| CommandError::new(codes::INTERNAL_ERROR, e.to_string()))?,
                )
            }
            None => raw.clone(),
        };
        let len = item.as_bytes().len();
        if !out.is_empty() && bytes + len > BATCH_BYTES {
            reached_end = false;
            break;
        }
        bytes += len;
        scan.after = Some(*rid);
        out.push(item);
    }
    Ok(reached_end)
}

/// Open cursors, by id.
#[derive(Debug, Default)]
pub struct CursorTable {
    next_id: i64,
    open: HashMap<i64, Cursor>,
}

impl CursorTable {
    /// Registers a cursor and returns its id (never 0: 0 means "closed").
    pub fn insert(&mut self, cursor: Cursor) -> i64 {
        // Ids look random to clients, as mongod's do, but stay unique.
        self.next_id = self.next_id.wrapping_add(1);
        let id = (self.next_id.wrapping_mul(0x5DEECE66D) & 0x3FFF_FFFF_FFFF) + 1;
        self.open.insert(id, cursor);
        id
    }

    /// Takes a cursor out for one getMore; it is put back with `restore`.
    pub fn take(&mut self, id: i64) -> Option<Cursor> {
        self.open.remove(&id)
    }

    pub fn restore(&mut self, id: i64, cursor: Cursor) {
        self.open.insert(id, cursor);
    }

    pub fn kill(&mut self, id: i64) -> bool {
        self.open.remove(&id).is_some()
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}
