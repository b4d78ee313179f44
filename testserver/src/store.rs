//! The in-memory database: namespaces, collections with their options and
//! indexes, documents in natural (insertion) order, and the oplog that every
//! replicated write appends to.
//!
//! Documents are kept as raw BSON behind `Arc`, so a scan hands out bytes
//! exactly as they were inserted (a backup is compared byte for byte with
//! its source) and cursors share them without copying.

use std::collections::BTreeMap;
use std::sync::Arc;

use bson::{doc, Bson, DateTime, Document, RawDocumentBuf, Timestamp};

use crate::error::{codes, CmdResult, CommandError};
use crate::oplog::{Op, OplogClock, PendingEntry, OPLOG_COLL, OPLOG_DB};

/// Documents and index keys may not exceed this (mongod's limit).
pub const MAX_DOC_SIZE: usize = 16 * 1024 * 1024;

mod collection;
mod ddl;

pub use collection::{get_dotted, Collection, Index, KeyTuple, RecordId, WriteFailure};

/// The `_id` index every collection has.
pub fn id_index_spec() -> Document {
    doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }
}

/// Settings fixed when the server starts.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Capacity of `local.oplog.rs` in bytes; small values make the oplog
    /// roll over quickly, for gap tests.
    pub oplog_max_bytes: u64,
    /// A standalone `mongod` (started without `--replSet`) instead of a
    /// replica set primary: no oplog, no replica set configuration, no
    /// cluster time. The one switch every standalone difference checks.
    pub standalone: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            oplog_max_bytes: 256 * 1024 * 1024,
            standalone: false,
        }
    }
}

#[derive(Debug)]
pub struct Store {
    dbs: BTreeMap<String, BTreeMap<String, Collection>>,
    clock: OplogClock,
    /// See [`StoreConfig::standalone`].
    standalone: bool,
    /// Bumped on every change; awaitData cursors wait for it to move.
    pub version: u64,
}

/// `db.coll` split at the first dot, as MongoDB namespaces are.
pub fn split_ns(ns: &str) -> Option<(&str, &str)> {
    ns.split_once('.')
}

pub fn validate_collection_name(db: &str, coll: &str) -> CmdResult<()> {
    if db.is_empty() || db.contains(['/', '\\', '.', ' ', '"', '$', '\0']) {
        return Err(CommandError::new(
            codes::INVALID_NAMESPACE,
            format!("Invalid database name: '{db}'"),
        ));
    }
    if coll.is_empty() || coll.contains('\0') || coll.contains('$') {
        return Err(CommandError::new(
            codes::INVALID_NAMESPACE,
            format!("Invalid collection name: {coll}"),
        ));
    }
    Ok(())
}

impl Store {
    pub fn new(config: &StoreConfig) -> Store {
        let mut store = Store {
            dbs: BTreeMap::new(),
            clock: OplogClock::default(),
            standalone: config.standalone,
            version: 0,
        };
        store.put_internal(
            "admin",
            "system.version",
            doc! { "_id": "featureCompatibilityVersion", "version": "7.0" },
        );
        if config.standalone {
            // A standalone mongod has no oplog and no replica set config.
            return store;
        }
        // What a freshly initiated single-node replica set holds.
        let size = config.oplog_max_bytes.max(4096);
        let oplog_opts = doc! { "capped": true, "size": size as i64, "autoIndexId": false };
        let mut oplog = Collection::with_limits(oplog_opts, Some((size, None)));
        oplog.indexes.clear(); // the oplog has no _id index
        store
            .coll_map(OPLOG_DB)
            .insert(OPLOG_COLL.to_string(), oplog);
        store.put_internal(
            "local",
            "system.replset",
            doc! { "_id": "rs0", "version": 1, "term": 1i64, "members": [ { "_id": 0, "host": "localhost" } ] },
        );
        store.log(PendingEntry::new(
            Op::Noop,
            "",
            None,
            doc! { "msg": "initiating set" },
        ));
        store
    }

    fn coll_map(&mut self, db: &str) -> &mut BTreeMap<String, Collection> {
        self.dbs.entry(db.to_string()).or_default()
    }

    /// Inserts a document that is not replicated (writes to `local` and
    /// server-internal bookkeeping are not in the oplog).
    fn put_internal(&mut self, db: &str, coll: &str, doc: Document) {
        let map = self.coll_map(db);
        let c = map
            .entry(coll.to_string())
            .or_insert_with(|| Collection::with_limits(Document::new(), None));
        if let Ok(raw) = RawDocumentBuf::from_document(&doc) {
            let rid = c.push(raw);
            c.index_add(&doc, rid);
        }
    }

    pub fn now() -> DateTime {
        DateTime::now()
    }

    /// Whether this is a standalone server (see [`StoreConfig::standalone`]).
    pub fn is_standalone(&self) -> bool {
        self.standalone
    }

    /// The newest optime (hello's `lastWrite`, replSetGetStatus' optimes).
    pub fn last_optime(&self) -> Timestamp {
        self.clock.last()
    }

    /// The `operationTime` and `$clusterTime` replies carry: None on a
    /// standalone, which has no cluster time and sends neither field.
    pub fn cluster_time(&self) -> Option<Timestamp> {
        (!self.standalone).then(|| self.clock.last())
    }

    /// Appends to the oplog, stamping a fresh timestamp. A standalone has
    /// no oplog: nothing is logged and the clock does not move, so every
    /// write path can call this without knowing the topology.
    pub fn log(&mut self, entry: PendingEntry) -> Timestamp {
        if self.standalone {
            return self.clock.last();
        }
        let now = Self::now();
        let ts = self.clock.next(now);
        let doc = entry.stamp(ts, now);
        self.version += 1;
        if let Some(oplog) = self
            .dbs
            .get_mut(OPLOG_DB)
            .and_then(|m| m.get_mut(OPLOG_COLL))
        {
            if let Ok(raw) = RawDocumentBuf::from_document(&doc) {
                oplog.push(raw);
                oplog.enforce_cap();
            }
        }
        ts
    }

    pub fn database_names(&self) -> Vec<String> {
        self.dbs
            .iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub fn collections(&self, db: &str) -> impl Iterator<Item = (&String, &Collection)> {
        self.dbs.get(db).into_iter().flat_map(|m| m.iter())
    }

    pub fn collection(&self, db: &str, coll: &str) -> Option<&Collection> {
        self.dbs.get(db)?.get(coll)
    }

    /// View definitions of a database: `system.views` documents.
    pub fn view(&self, db: &str, name: &str) -> Option<Document> {
        let views = self.collection(db, "system.views")?;
        let id = Bson::String(format!("{db}.{name}"));
        let rid = views.find_by_id(&id)?;
        Document::try_from(views.get(rid)?.as_ref().as_ref()).ok()
    }

    pub fn views(&self, db: &str) -> Vec<Document> {
        self.collection(db, "system.views")
            .map(|c| {
                c.records
                    .values()
                    .filter_map(|r| Document::try_from(r.as_ref().as_ref()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn replicated(db: &str) -> bool {
        db != "local"
    }

    /// The collection, created with default options if it does not exist
    /// (as an insert or upsert does implicitly). Returns whether it was
    /// created.
    pub fn ensure_collection(&mut self, db: &str, name: &str) -> CmdResult<bool> {
        if self.view(db, name).is_some() {
            return Err(CommandError::new(
                codes::COMMAND_NOT_SUPPORTED_ON_VIEW,
                format!("Namespace {db}.{name} is a view, not a collection"),
            ));
        }
        if self.collection(db, name).is_some() {
            return Ok(false);
        }
        self.create_collection(db, name, Document::new())?;
        Ok(true)
    }

    /// Inserts one document: `_id` generated when absent and moved first,
    /// unique indexes enforced, the oplog appended.
    pub fn insert(
        &mut self,
        db: &str,
        name: &str,
        mut doc: Document,
    ) -> Result<Timestamp, WriteFailure> {
        self.ensure_collection(db, name)?;
        doc = with_id_first(doc)?;
        let raw = RawDocumentBuf::from_document(&doc)
            .map_err(|e| CommandError::bad_value(format!("cannot encode document: {e}")))?;
        if raw.as_bytes().len() > MAX_DOC_SIZE {
            return Err(CommandError::new(
                10334,
                format!(
                    "object to insert too large. size in bytes: {}, max size: {MAX_DOC_SIZE}",
                    raw.as_bytes().len()
                ),
            )
            .into());
        }
        let ns = format!("{db}.{name}");
        let replicated = Self::replicated(db);
        let coll = self.coll_mut(db, name)?;
        coll.check_unique(&ns, &doc, None)?;
        let rid = coll.push(raw);
        coll.index_add(&doc, rid);
        coll.enforce_cap();
        let uuid = coll.uuid;
        self.version += 1;
        if replicated {
            Ok(self.log(PendingEntry::new(Op::Insert, ns, Some(uuid), doc)))
        } else {
            Ok(self.last_optime())
        }
    }

    fn coll_mut(&mut self, db: &str, name: &str) -> CmdResult<&mut Collection> {
        self.dbs
            .get_mut(db)
            .and_then(|m| m.get_mut(name))
            .ok_or_else(|| ns_not_found(db, name))
    }

    /// Replaces the document at `rid` with `new`, logging `oplog_o`/`o2` as
    /// the update entry.
    pub fn update_record(
        &mut self,
        db: &str,
        name: &str,
        rid: RecordId,
        new: Document,
        oplog_o: Document,
        oplog_o2: Option<Document>,
    ) -> Result<Timestamp, WriteFailure> {
        let ns = format!("{db}.{name}");
        let replicated = Self::replicated(db);
        let raw = RawDocumentBuf::from_document(&new)
            .map_err(|e| CommandError::bad_value(format!("cannot encode document: {e}")))?;
        if raw.as_bytes().len() > MAX_DOC_SIZE {
            return Err(CommandError::new(
                17419,
                format!("Resulting document after update is larger than {MAX_DOC_SIZE}"),
            )
            .into());
        }
        let coll = self.coll_mut(db, name)?;
        let old_raw = coll.records.get(&rid).cloned().ok_or_else(|| {
            CommandError::new(codes::INTERNAL_ERROR, "the document to update vanished")
        })?;
        let old = Document::try_from(old_raw.as_ref().as_ref())
            .map_err(|e| CommandError::new(codes::INTERNAL_ERROR, e.to_string()))?;
        coll.check_unique(&ns, &new, Some(rid))?;
        coll.index_remove(&old, rid);
        coll.data_bytes =
            coll.data_bytes + raw.as_bytes().len() as u64 - old_raw.as_bytes().len() as u64;
        coll.records.insert(rid, Arc::new(raw));
        coll.index_add(&new, rid);
        let uuid = coll.uuid;
        self.version += 1;
        if !replicated {
            return Ok(self.last_optime());
        }
        let mut entry = PendingEntry::new(Op::Update, ns, Some(uuid), oplog_o);
        if let Some(o2) = oplog_o2 {
            entry = entry.with_o2(o2);
        }
        Ok(self.log(entry))
    }

    pub fn delete_record(&mut self, db: &str, name: &str, rid: RecordId) -> CmdResult<Timestamp> {
        let ns = format!("{db}.{name}");
        let replicated = Self::replicated(db);
        let coll = self.coll_mut(db, name)?;
        if coll.is_capped() && name != OPLOG_COLL {
            return Err(CommandError::new(
                codes::ILLEGAL_OPERATION,
                format!("cannot remove from a capped collection: {ns}"),
            ));
        }
        let Some(raw) = coll.records.remove(&rid) else {
            return Ok(self.last_optime());
        };
        coll.data_bytes -= raw.as_bytes().len() as u64;
        let old = Document::try_from(raw.as_ref().as_ref())
            .map_err(|e| CommandError::new(codes::INTERNAL_ERROR, e.to_string()))?;
        coll.index_remove(&old, rid);
        let uuid = coll.uuid;
        self.version += 1;
        if !replicated {
            return Ok(self.last_optime());
        }
        let id = old.get("_id").cloned().unwrap_or(Bson::Null);
        Ok(self.log(PendingEntry::new(
            Op::Delete,
            ns,
            Some(uuid),
            doc! { "_id": id },
        )))
    }

    /// Writes a no-op entry, as a primary does periodically when idle so the
    /// oplog keeps advancing.
    pub fn noop(&mut self, msg: &str) -> Timestamp {
        self.log(PendingEntry::new(Op::Noop, "", None, doc! { "msg": msg }))
    }
}

pub fn ns_not_found(db: &str, coll: &str) -> CommandError {
    CommandError::new(
        codes::NAMESPACE_NOT_FOUND,
        format!("ns does not exist: {db}.{coll}"),
    )
}

/// Gives a document an `_id` (an ObjectId when absent) in first position,
/// as mongod stores it, and rejects `_id` types MongoDB refuses.
pub fn with_id_first(doc: Document) -> CmdResult<Document> {
    match doc.get("_id") {
        Some(Bson::Array(_)) => Err(CommandError::new(
            53,
            "The '_id' value cannot be of type array",
        )),
        Some(Bson::RegularExpression(_)) => Err(CommandError::new(
            53,
            "The '_id' value cannot be of type regex",
        )),
        Some(Bson::Undefined) => Err(CommandError::new(53, "can't use a undefined for _id")),
        Some(_) if doc.keys().next().map(String::as_str) == Some("_id") => Ok(doc),
        Some(id) => {
            let mut out = doc! { "_id": id.clone() };
            out.extend(doc.into_iter().filter(|(k, _)| k != "_id"));
            Ok(out)
        }
        None => {
            let mut out = doc! { "_id": bson::oid::ObjectId::new() };
            out.extend(doc);
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::new(&StoreConfig {
            oplog_max_bytes: 64 * 1024,
            ..StoreConfig::default()
        })
    }

    fn standalone() -> Store {
        Store::new(&StoreConfig {
            standalone: true,
            ..StoreConfig::default()
        })
    }

    fn oplog(s: &Store) -> Vec<Document> {
        s.collection("local", "oplog.rs")
            .unwrap()
            .records
            .values()
            .map(|r| Document::try_from(r.as_ref().as_ref()).unwrap())
            .collect()
    }

    #[test]
    fn insert_logs_create_then_insert_and_moves_id_first() {
        let mut s = store();
        s.insert("app", "users", doc! {"name": "a", "_id": 7})
            .unwrap();
        let log = oplog(&s);
        let create = &log[log.len() - 2];
        assert_eq!(create.get_str("op").unwrap(), "c");
        assert_eq!(create.get_str("ns").unwrap(), "app.$cmd");
        assert_eq!(
            create.get_document("o").unwrap().get_str("create").unwrap(),
            "users"
        );
        let ins = log.last().unwrap();
        assert_eq!(ins.get_str("op").unwrap(), "i");
        assert_eq!(
            ins.get_document("o").unwrap(),
            &doc! {"_id": 7, "name": "a"}
        );
    }

    #[test]
    fn unique_id_across_numeric_types() {
        let mut s = store();
        s.insert("app", "c", doc! {"_id": 1}).unwrap();
        let err = s.insert("app", "c", doc! {"_id": 1.0}).unwrap_err();
        assert_eq!(err.error.code, 11000);
        assert_eq!(
            err.error.errmsg,
            "E11000 duplicate key error collection: app.c index: _id_ dup key: { _id: 1.0 }"
        );
        assert_eq!(
            err.extra.get_document("keyValue").unwrap(),
            &doc! {"_id": 1.0}
        );
    }

    #[test]
    fn unique_secondary_index_rejects_existing_duplicates() {
        let mut s = store();
        s.insert("app", "c", doc! {"_id": 1, "e": "x"}).unwrap();
        s.insert("app", "c", doc! {"_id": 2, "e": "x"}).unwrap();
        let err = s
            .create_index(
                "app",
                "c",
                doc! {"v": 2, "key": {"e": 1}, "name": "e_1", "unique": true},
            )
            .unwrap_err();
        assert_eq!(err.code, 11000);
        assert_eq!(s.collection("app", "c").unwrap().indexes.len(), 1);
    }

    #[test]
    fn capped_oplog_evicts_oldest_and_records_position() {
        let mut s = store();
        let big = "x".repeat(1000);
        for i in 0..200 {
            s.insert("app", "c", doc! {"_id": i, "pad": big.clone()})
                .unwrap();
        }
        let log = s.collection("local", "oplog.rs").unwrap();
        assert!(log.data_bytes <= 64 * 1024);
        assert!(log.evicted_upto > 0);
        assert_eq!(*log.records.keys().next().unwrap(), log.evicted_upto + 1);
    }

    #[test]
    fn views_live_in_system_views() {
        let mut s = store();
        s.create_collection("app", "c", Document::new()).unwrap();
        s.create_collection(
            "app",
            "v",
            doc! {"viewOn": "c", "pipeline": [{"$match": {"a": 1}}]},
        )
        .unwrap();
        assert_eq!(s.view("app", "v").unwrap().get_str("viewOn").unwrap(), "c");
        let err = s
            .create_collection("app", "v", Document::new())
            .unwrap_err();
        assert_eq!(err.code, codes::NAMESPACE_EXISTS);
        s.drop_collection("app", "v").unwrap();
        assert!(s.view("app", "v").is_none());
    }

    #[test]
    fn drop_database_logs_each_drop() {
        let mut s = store();
        s.insert("app", "a", doc! {}).unwrap();
        s.insert("app", "b", doc! {}).unwrap();
        s.drop_database("app").unwrap();
        let ops: Vec<String> = oplog(&s)
            .iter()
            .rev()
            .take(3)
            .map(|e| e.get_document("o").unwrap().keys().next().unwrap().clone())
            .collect();
        assert_eq!(ops, ["dropDatabase", "drop", "drop"]);
        assert!(!s.database_names().contains(&"app".to_string()));
    }

    #[test]
    fn standalone_has_no_oplog_and_no_replica_set_config() {
        let s = standalone();
        assert!(s.is_standalone());
        assert!(s.collection("local", "oplog.rs").is_none());
        assert!(s.collection("local", "system.replset").is_none());
        assert!(!s.database_names().contains(&"local".to_string()));
        assert!(
            s.collection("admin", "system.version").is_some(),
            "the FCV document exists on every mongod"
        );
        assert_eq!(s.cluster_time(), None);
    }

    #[test]
    fn standalone_writes_apply_but_log_nothing() {
        let mut s = standalone();
        s.insert("app", "c", doc! {"_id": 1, "a": 1}).unwrap();
        s.create_index("app", "c", doc! {"v": 2, "key": {"a": 1}, "name": "a_1"})
            .unwrap();
        s.insert("app", "c", doc! {"_id": 2}).unwrap();
        s.drop_collection("app", "c").unwrap();
        s.insert("app", "d", doc! {"_id": 1}).unwrap();
        assert_eq!(s.collection("app", "d").unwrap().len(), 1);
        s.drop_database("app").unwrap();
        s.noop("periodic noop");
        assert!(s.collection("local", "oplog.rs").is_none());
        assert_eq!(
            s.last_optime(),
            Timestamp {
                time: 0,
                increment: 0
            }
        );
        assert_eq!(s.cluster_time(), None);
    }

    #[test]
    fn replica_set_replies_carry_the_newest_optime() {
        let mut s = store();
        let ts = s.insert("app", "c", doc! {"_id": 1}).unwrap();
        assert_eq!(s.cluster_time(), Some(ts));
        assert!(!s.is_standalone());
    }
}
