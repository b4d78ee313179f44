//! One collection's documents at the snapshot's instant: the oplog entries
//! that change it, folded per `_id`, applied to its collection file while
//! that is streamed, then the documents the file does not hold.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::path::PathBuf;

use bson::{doc, Bson, Document, RawDocumentBuf, Timestamp};

use super::oplog::{Body, FlatOp, Kind};
use super::update::{apply_update, is_replacement};
use super::{Snapshot, SnapshotCollection, SnapshotError};
use crate::storage::{self, BsonReader};

/// What the oplog says about one `_id`.
struct IdState {
    /// When it was first changed, to emit new documents in oplog order.
    seq: u64,
    id: Bson,
    /// Set once an insert, a replacement or a delete made the stored
    /// version irrelevant; `Some(None)` means deleted.
    reset: Option<Option<Document>>,
    /// Updates to apply to the stored version (only while `reset` is None).
    updates: Vec<PendingUpdate>,
}

struct PendingUpdate {
    o: Document,
    ts: Timestamp,
    file: usize,
}

/// The documents of one collection, in order; see
/// [`Snapshot::documents`].
pub struct Documents<'a> {
    snapshot: &'a Snapshot,
    ns: String,
    data: Option<BsonReader<Box<dyn Read + Send>>>,
    pending: HashMap<Vec<u8>, IdState>,
    leftovers: Option<std::vec::IntoIter<IdState>>,
    failed: bool,
    /// Documents read from the collection file so far.
    from_file: u64,
    /// For a capped collection: its limits, and once read, what it keeps.
    capped: Option<(Capped, Option<VecDeque<RawDocumentBuf>>)>,
}

/// A capped collection's limits, as the server applies them: the oldest
/// documents go once there are more than `max` or they take more than
/// `size` bytes. Inserts replayed from the oplog evict on a restore too.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Capped {
    max: Option<usize>,
    size: u64,
}

impl Capped {
    /// The limits in a collection's options, if it is capped. A `size` of
    /// 4096 bytes or less means 4096; a larger one is rounded up to a
    /// multiple of 256, as the server does.
    pub(crate) fn of(options: &Document) -> Option<Capped> {
        if options.get_bool("capped") != Ok(true) {
            return None;
        }
        let number = |key: &str| match options.get(key) {
            Some(Bson::Int32(n)) => u64::try_from(*n).ok(),
            Some(Bson::Int64(n)) => u64::try_from(*n).ok(),
            Some(Bson::Double(f)) if *f >= 1.0 => Some(*f as u64),
            _ => None,
        };
        let size = number("size").unwrap_or(0);
        let size = if size <= 4096 {
            4096
        } else {
            size.div_ceil(256).saturating_mul(256)
        };
        let max = number("max")
            .filter(|m| *m > 0)
            .and_then(|m| usize::try_from(m).ok());
        Some(Capped { max, size })
    }

    /// The documents kept of `docs`, in order.
    fn keep(
        self,
        docs: impl Iterator<Item = Result<RawDocumentBuf, SnapshotError>>,
    ) -> Result<VecDeque<RawDocumentBuf>, SnapshotError> {
        let mut kept = VecDeque::new();
        let mut bytes = 0u64;
        for doc in docs {
            let doc = doc?;
            bytes += doc.as_bytes().len() as u64;
            kept.push_back(doc);
            while kept.len() > 1 && (bytes > self.size || self.max.is_some_and(|m| kept.len() > m))
            {
                if let Some(old) = kept.pop_front() {
                    bytes -= old.as_bytes().len() as u64;
                }
            }
        }
        Ok(kept)
    }
}

impl<'a> Documents<'a> {
    /// How many documents the collection file held, once the iterator is
    /// exhausted: to compare with the count its manifest recorded.
    pub fn from_file(&self) -> u64 {
        self.from_file
    }

    pub(super) fn empty(snapshot: &'a Snapshot) -> Documents<'a> {
        Documents {
            snapshot,
            ns: String::new(),
            data: None,
            pending: HashMap::new(),
            leftovers: Some(Vec::new().into_iter()),
            failed: false,
            from_file: 0,
            capped: None,
        }
    }

    fn unapplicable(&self, file: usize, ts: Timestamp, detail: String) -> SnapshotError {
        let (backup, path) = self.snapshot.file_names(file);
        SnapshotError::Unapplicable {
            backup,
            file: path,
            at: ts.into(),
            detail: format!("an entry of {}: {detail}", self.ns),
        }
    }

    fn unreadable(&self, detail: String) -> SnapshotError {
        SnapshotError::Unreadable {
            ns: self.ns.clone(),
            detail,
        }
    }

    /// Folds one oplog operation on this collection into `pending`.
    fn fold_op(&mut self, op: FlatOp, seq: u64) -> Result<(), SnapshotError> {
        let FlatOp {
            pos,
            ts,
            kind,
            body,
            ..
        } = op;
        let Some(Body { o, o2 }) = body else {
            return Ok(());
        };
        let id = match kind {
            Kind::Update => o2.as_ref().and_then(|d| d.get("_id")),
            _ => o.get("_id"),
        };
        let Some(id) = id.cloned() else {
            return Err(self.unapplicable(pos.file, ts, "it names no _id".into()));
        };
        let state = self.pending.entry(id_key(&id)).or_insert_with(|| IdState {
            seq,
            id: id.clone(),
            reset: None,
            updates: Vec::new(),
        });
        match kind {
            Kind::Insert => {
                state.reset = Some(Some(o));
                state.updates.clear();
            }
            Kind::Delete => {
                state.reset = Some(None);
                state.updates.clear();
            }
            Kind::Update => {
                let base = match &state.reset {
                    Some(Some(d)) => Some(d.clone()),
                    // Updating what is not there creates it (applyOps'
                    // upsert), which is what a restore ends up with.
                    Some(None) => Some(doc! { "_id": id.clone() }),
                    None if is_replacement(&o) => Some(doc! { "_id": id.clone() }),
                    None => None,
                };
                match base {
                    Some(base) => {
                        let new = apply_update(&base, &o);
                        let new = new.map_err(|d| self.unapplicable(pos.file, ts, d))?;
                        let state = self.pending.get_mut(&id_key(&id));
                        if let Some(state) = state {
                            state.reset = Some(Some(new));
                            state.updates.clear();
                        }
                    }
                    None => state.updates.push(PendingUpdate {
                        o,
                        ts,
                        file: pos.file,
                    }),
                }
            }
            Kind::Command => {}
        }
        Ok(())
    }

    /// The document `state` leaves, starting from the stored `stored`
    /// (None when the file does not hold it).
    fn resolve(
        &self,
        state: IdState,
        stored: Option<&RawDocumentBuf>,
    ) -> Result<Option<RawDocumentBuf>, SnapshotError> {
        let doc = match state.reset {
            Some(None) => return Ok(None),
            Some(Some(d)) => d,
            None => {
                let mut d = match stored {
                    Some(raw) => raw.to_document().map_err(|e| {
                        self.unreadable(format!("a stored document cannot be decoded: {e}"))
                    })?,
                    None => doc! { "_id": state.id.clone() },
                };
                for u in &state.updates {
                    d = apply_update(&d, &u.o)
                        .map_err(|detail| self.unapplicable(u.file, u.ts, detail))?;
                }
                d
            }
        };
        RawDocumentBuf::from_document(&doc)
            .map(Some)
            .map_err(|e| self.unreadable(format!("a document cannot be encoded: {e}")))
    }

    fn next_document(&mut self) -> Result<Option<RawDocumentBuf>, SnapshotError> {
        while let Some(reader) = self.data.as_mut() {
            let Some(raw) = reader.next() else {
                self.data = None;
                break;
            };
            let raw = raw.map_err(|source| self.snapshot.damaged(0, source))?;
            self.from_file += 1;
            if self.pending.is_empty() {
                return Ok(Some(raw));
            }
            let key = match raw.get("_id") {
                Ok(Some(id)) => id_key_raw(id),
                _ => None,
            };
            match key.and_then(|k| self.pending.remove(&k)) {
                None => return Ok(Some(raw)),
                Some(state) => {
                    if let Some(doc) = self.resolve(state, Some(&raw))? {
                        return Ok(Some(doc));
                    }
                }
            }
        }
        if self.leftovers.is_none() {
            let mut rest: Vec<IdState> = self.pending.drain().map(|(_, s)| s).collect();
            rest.sort_by_key(|s| s.seq);
            self.leftovers = Some(rest.into_iter());
        }
        while let Some(state) = self.leftovers.as_mut().and_then(Iterator::next) {
            if let Some(doc) = self.resolve(state, None)? {
                return Ok(Some(doc));
            }
        }
        Ok(None)
    }
}

impl Iterator for Documents<'_> {
    type Item = Result<RawDocumentBuf, SnapshotError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if let Some((limits, None)) = self.capped {
            // Bounded by the collection's own size limit.
            let all = std::iter::from_fn(|| self.next_document().transpose());
            match limits.keep(all) {
                Ok(kept) => self.capped = Some((limits, Some(kept))),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        if let Some((_, Some(kept))) = self.capped.as_mut() {
            return kept.pop_front().map(Ok);
        }
        match self.next_document() {
            Ok(d) => d.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Loads the oplog entries that change `coll`, then opens its file.
pub(super) fn open<'a>(
    snapshot: &'a Snapshot,
    coll: &SnapshotCollection,
) -> Result<Documents<'a>, SnapshotError> {
    let lineage = &coll.lineage;
    let mut docs = Documents {
        snapshot,
        ns: coll.namespace(),
        data: None,
        pending: HashMap::new(),
        leftovers: None,
        failed: false,
        from_file: 0,
        capped: Capped::of(&coll.options).map(|c| (c, None)),
    };
    let mut seq = 0u64;
    for op in snapshot.stream(lineage) {
        let op = op?;
        if op.kind == Kind::Command || !lineage.wants(&op.ns, op.pos) {
            continue;
        }
        seq += 1;
        docs.fold_op(op, seq)?;
    }
    if let (Some(rel), Some(link)) = (&lineage.data_file, snapshot.links.first()) {
        let entry = link.manifest.file(rel).ok_or_else(|| {
            SnapshotError::Invalid(format!(
                "the manifest of backup {} does not list {rel}",
                link.manifest.id
            ))
        })?;
        let reader = storage::open_verified(&link.dir, entry)
            .map_err(|source| snapshot.damaged(0, source))?;
        docs.data = Some(BsonReader::new(reader, link.dir.path().join(rel)));
    }
    Ok(docs)
}

impl Snapshot {
    fn damaged(&self, link: usize, source: storage::StorageError) -> SnapshotError {
        match self.links.get(link) {
            Some(l) => SnapshotError::damaged(l, source),
            None => SnapshotError::Invalid(crate::error_chain(&source)),
        }
    }

    /// The backup id and path of oplog file `file`, for messages.
    fn file_names(&self, file: usize) -> (String, PathBuf) {
        match self
            .files
            .get(file)
            .and_then(|f| Some((f, self.links.get(f.link)?)))
        {
            Some((f, link)) => (link.manifest.id.clone(), link.dir.path().join(&f.rel)),
            None => (String::new(), PathBuf::new()),
        }
    }
}

/// The identity of an `_id` value: its BSON bytes, with numbers of equal
/// value made equal (1, 1.0 and 1L are the same `_id` to MongoDB).
pub(crate) fn id_key(id: &Bson) -> Vec<u8> {
    let normal = match id {
        Bson::Int32(n) => Bson::Int64(i64::from(*n)),
        Bson::Double(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Bson::Int64(*f as i64),
        other => other.clone(),
    };
    bson::to_vec(&doc! { "": normal }).unwrap_or_default()
}

fn id_key_raw(id: bson::RawBsonRef<'_>) -> Option<Vec<u8>> {
    let id = Bson::try_from(id.to_raw_bson()).ok()?;
    Some(id_key(&id))
}
