//! One collection: its documents in natural order, its options, and its
//! indexes, of which the unique ones (always `_id`) are enforced.

use std::collections::BTreeMap;
use std::sync::Arc;

use bson::{doc, Bson, Document, RawDocumentBuf, Uuid};

use super::id_index_spec;
use crate::compare::{cmp_bson, render_document};
use crate::error::{codes, CmdResult, CommandError};

/// Where a document lives in its collection; increases with insertion, which
/// is what natural order and capped eviction follow.
pub type RecordId = u64;

/// Values of one document under an index's key pattern, ordered the way
/// MongoDB compares them, so a unique index can find equal keys even across
/// numeric types (`1` and `1.0` collide, as in MongoDB).
#[derive(Debug, Clone)]
pub struct KeyTuple(pub Vec<Bson>);

impl PartialEq for KeyTuple {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for KeyTuple {}
impl PartialOrd for KeyTuple {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for KeyTuple {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            let o = cmp_bson(a, b);
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        self.0.len().cmp(&other.0.len())
    }
}

#[derive(Debug, Clone)]
pub struct Index {
    /// The spec as listIndexes returns it (`v`, `key`, `name`, options).
    pub spec: Document,
    pub name: String,
    pub fields: Vec<String>,
    pub unique: bool,
    pub sparse: bool,
    /// Only unique indexes keep entries: nothing else needs to look them up.
    pub(super) entries: BTreeMap<KeyTuple, RecordId>,
}

impl Index {
    fn id_index() -> Index {
        Index {
            spec: id_index_spec(),
            name: "_id_".to_string(),
            fields: vec!["_id".to_string()],
            unique: true,
            sparse: false,
            entries: BTreeMap::new(),
        }
    }

    pub(super) fn from_spec(spec: Document) -> CmdResult<Index> {
        let name = spec
            .get_str("name")
            .map_err(|_| {
                CommandError::failed_to_parse(
                    "The 'name' field is a required property of an index specification",
                )
            })?
            .to_string();
        let key = spec.get_document("key").map_err(|_| {
            CommandError::failed_to_parse(
                "The 'key' field is a required property of an index specification",
            )
        })?;
        if key.is_empty() {
            return Err(CommandError::new(
                codes::CANNOT_CREATE_INDEX,
                "Index keys cannot be empty.",
            ));
        }
        let fields = key.keys().cloned().collect();
        let unique = name == "_id_" || spec.get_bool("unique").unwrap_or(false);
        let sparse = spec.get_bool("sparse").unwrap_or(false);
        Ok(Index {
            spec,
            name,
            fields,
            unique,
            sparse,
            entries: BTreeMap::new(),
        })
    }

    /// Every key this document contributes (several for an array field: a
    /// multikey index holds one key per element). None when a sparse index
    /// skips the document.
    pub(super) fn keys_of(&self, doc: &Document) -> Option<Vec<KeyTuple>> {
        let mut tuples: Vec<Vec<Bson>> = vec![Vec::new()];
        let mut any_present = false;
        for field in &self.fields {
            let values: Vec<Bson> = match get_dotted(doc, field) {
                Some(Bson::Array(items)) if !items.is_empty() => {
                    any_present = true;
                    let mut uniq: Vec<Bson> = Vec::new();
                    for v in items {
                        if !uniq.iter().any(|u| cmp_bson(u, v).is_eq()) {
                            uniq.push(v.clone());
                        }
                    }
                    uniq
                }
                Some(Bson::Array(_)) => {
                    any_present = true;
                    vec![Bson::Undefined]
                }
                Some(v) => {
                    any_present = true;
                    vec![v.clone()]
                }
                None => vec![Bson::Null],
            };
            tuples = tuples
                .into_iter()
                .flat_map(|t| {
                    values.iter().map(move |v| {
                        let mut t = t.clone();
                        t.push(v.clone());
                        t
                    })
                })
                .collect();
        }
        if self.sparse && !any_present {
            return None;
        }
        Some(tuples.into_iter().map(KeyTuple).collect())
    }

    pub(super) fn duplicate_error(&self, ns: &str, key: &KeyTuple) -> WriteFailure {
        let mut key_value = Document::new();
        for (f, v) in self.fields.iter().zip(key.0.iter()) {
            key_value.insert(f.clone(), v.clone());
        }
        let errmsg = format!(
            "E11000 duplicate key error collection: {ns} index: {} dup key: {}",
            self.name,
            render_document(&key_value)
        );
        WriteFailure {
            error: CommandError::new(codes::DUPLICATE_KEY, errmsg),
            extra: Box::new(doc! {
                "keyPattern": self.spec.get_document("key").cloned().unwrap_or_default(),
                "keyValue": key_value,
            }),
        }
    }
}

/// A write error with the extra fields MongoDB attaches (`keyPattern`,
/// `keyValue` for duplicate keys).
#[derive(Debug, Clone)]
pub struct WriteFailure {
    pub error: CommandError,
    /// Boxed: write results are returned on every insert, failures rarely.
    pub extra: Box<Document>,
}

impl From<CommandError> for WriteFailure {
    fn from(error: CommandError) -> Self {
        WriteFailure {
            error,
            extra: Box::default(),
        }
    }
}

/// A dotted path without array traversal: what an index key or `_id`
/// lookup sees.
pub fn get_dotted<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut cur = doc.get(first)?;
    for p in parts {
        cur = match cur {
            Bson::Document(d) => d.get(p)?,
            Bson::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

#[derive(Debug, Clone)]
pub struct Collection {
    pub uuid: Uuid,
    /// The options given at creation, returned as given by listCollections.
    pub options: Document,
    pub records: BTreeMap<RecordId, Arc<RawDocumentBuf>>,
    next_rid: RecordId,
    pub data_bytes: u64,
    pub indexes: Vec<Index>,
    /// The highest record id removed by capping. A cursor positioned at or
    /// before it has lost its place (CappedPositionLost).
    pub evicted_upto: RecordId,
    capped: Option<(u64, Option<u64>)>,
}

impl Collection {
    pub(super) fn new(options: Document) -> CmdResult<Collection> {
        let capped = if options.get_bool("capped").unwrap_or(false) {
            let size = options.get("size").and_then(number_as_u64).ok_or_else(|| {
                CommandError::bad_value("the 'size' field is required when 'capped' is true")
            })?;
            let max = options
                .get("max")
                .and_then(number_as_u64)
                .filter(|m| *m > 0);
            Some((size.max(4096), max))
        } else {
            None
        };
        Ok(Collection::with_limits(options, capped))
    }

    /// A collection with an `_id` index and the given capped limits.
    pub(super) fn with_limits(options: Document, capped: Option<(u64, Option<u64>)>) -> Collection {
        Collection {
            uuid: Uuid::new(),
            options,
            records: BTreeMap::new(),
            next_rid: 1,
            data_bytes: 0,
            indexes: vec![Index::id_index()],
            evicted_upto: 0,
            capped,
        }
    }

    pub fn is_capped(&self) -> bool {
        self.capped.is_some()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn get(&self, rid: RecordId) -> Option<&Arc<RawDocumentBuf>> {
        self.records.get(&rid)
    }

    /// The record holding `_id`, found through the `_id` index.
    pub fn find_by_id(&self, id: &Bson) -> Option<RecordId> {
        self.indexes
            .iter()
            .find(|i| i.name == "_id_")
            .and_then(|i| i.entries.get(&KeyTuple(vec![id.clone()])).copied())
    }

    pub(super) fn check_unique(
        &self,
        ns: &str,
        doc: &Document,
        own: Option<RecordId>,
    ) -> Result<(), WriteFailure> {
        for index in self.indexes.iter().filter(|i| i.unique) {
            for key in index.keys_of(doc).unwrap_or_default() {
                if let Some(rid) = index.entries.get(&key) {
                    if Some(*rid) != own {
                        return Err(index.duplicate_error(ns, &key));
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) fn index_add(&mut self, doc: &Document, rid: RecordId) {
        for index in self.indexes.iter_mut().filter(|i| i.unique) {
            for key in index.keys_of(doc).unwrap_or_default() {
                index.entries.insert(key, rid);
            }
        }
    }

    pub(super) fn index_remove(&mut self, doc: &Document, rid: RecordId) {
        for index in self.indexes.iter_mut().filter(|i| i.unique) {
            for key in index.keys_of(doc).unwrap_or_default() {
                if index.entries.get(&key) == Some(&rid) {
                    index.entries.remove(&key);
                }
            }
        }
    }

    pub(super) fn push(&mut self, raw: RawDocumentBuf) -> RecordId {
        let rid = self.next_rid;
        self.next_rid += 1;
        self.data_bytes += raw.as_bytes().len() as u64;
        self.records.insert(rid, Arc::new(raw));
        rid
    }

    /// Drops the oldest documents while the collection is over its limits,
    /// as a capped collection does on insert.
    pub(super) fn enforce_cap(&mut self) {
        let Some((size, max)) = self.capped else {
            return;
        };
        while self.records.len() > 1
            && (self.data_bytes > size || max.is_some_and(|m| self.records.len() as u64 > m))
        {
            let Some((rid, raw)) = self.records.pop_first() else {
                break;
            };
            self.data_bytes -= raw.as_bytes().len() as u64;
            self.evicted_upto = rid;
            // The oplog has no indexes: don't decode what it evicts.
            if self.indexes.iter().any(|i| i.unique) {
                if let Ok(doc) = Document::try_from(raw.as_ref().as_ref()) {
                    self.index_remove(&doc, rid);
                }
            }
        }
    }
}

fn number_as_u64(v: &Bson) -> Option<u64> {
    match v {
        Bson::Int32(i) if *i >= 0 => Some(*i as u64),
        Bson::Int64(i) if *i >= 0 => Some(*i as u64),
        Bson::Double(d) if *d >= 0.0 && d.is_finite() => Some(d.ceil() as u64),
        _ => None,
    }
}
