//! Namespace and index changes: creating and dropping collections, views,
//! databases and indexes, each logged to the oplog as mongod logs it.

use bson::{doc, Bson, Document, Uuid};

use super::{id_index_spec, split_ns, validate_collection_name, Collection, Index, Store};
use crate::error::{codes, CmdResult, CommandError};
use crate::oplog::{Op, PendingEntry};

impl Store {
    /// Creates a collection or view with its options kept as given.
    pub fn create_collection(&mut self, db: &str, name: &str, options: Document) -> CmdResult<()> {
        validate_collection_name(db, name)?;
        if self.collection(db, name).is_some() || self.view(db, name).is_some() {
            return Err(CommandError::new(
                codes::NAMESPACE_EXISTS,
                format!("Collection {db}.{name} already exists."),
            ));
        }
        let replicated = Self::replicated(db);
        if let Ok(view_on) = options.get_str("viewOn") {
            let mut def = doc! { "_id": format!("{db}.{name}"), "viewOn": view_on };
            def.insert(
                "pipeline",
                options
                    .get("pipeline")
                    .cloned()
                    .unwrap_or(Bson::Array(vec![])),
            );
            if let Some(c) = options.get("collation") {
                def.insert("collation", c.clone());
            }
            self.put_internal(db, "system.views", def);
            if replicated {
                let mut o = doc! { "create": name };
                o.extend(options);
                self.log(PendingEntry::new(
                    Op::Command,
                    format!("{db}.$cmd"),
                    None,
                    o,
                ));
            }
            self.version += 1;
            return Ok(());
        }
        let coll = Collection::new(options.clone())?;
        let uuid = coll.uuid;
        self.coll_map(db).insert(name.to_string(), coll);
        if replicated {
            let mut o = doc! { "create": name };
            o.extend(options);
            o.insert("idIndex", id_index_spec());
            self.log(PendingEntry::new(
                Op::Command,
                format!("{db}.$cmd"),
                Some(uuid),
                o,
            ));
        }
        self.version += 1;
        Ok(())
    }

    /// Drops a collection or view. Returns the number of indexes it had, or
    /// None when there was nothing to drop.
    pub fn drop_collection(&mut self, db: &str, name: &str) -> CmdResult<Option<i32>> {
        if self.view(db, name).is_some() {
            let id = Bson::String(format!("{db}.{name}"));
            if let Ok(views) = self.coll_mut(db, "system.views") {
                if let Some(rid) = views.find_by_id(&id) {
                    if let Some(raw) = views.records.remove(&rid) {
                        views.data_bytes -= raw.as_bytes().len() as u64;
                        if let Ok(d) = Document::try_from(raw.as_ref().as_ref()) {
                            views.index_remove(&d, rid);
                        }
                    }
                }
            }
            if Self::replicated(db) {
                self.log(PendingEntry::new(
                    Op::Command,
                    format!("{db}.$cmd"),
                    None,
                    doc! { "drop": name },
                ));
            }
            self.version += 1;
            return Ok(Some(0));
        }
        let Some(coll) = self.dbs.get_mut(db).and_then(|m| m.remove(name)) else {
            return Ok(None);
        };
        self.version += 1;
        if Self::replicated(db) {
            self.log(
                PendingEntry::new(
                    Op::Command,
                    format!("{db}.$cmd"),
                    Some(coll.uuid),
                    doc! { "drop": name },
                )
                .with_o2(doc! { "numRecords": coll.len() as i64 }),
            );
        }
        Ok(Some(coll.indexes.len() as i32))
    }

    /// Drops every collection (each logged, as 7.0 does) and then the
    /// database itself.
    pub fn drop_database(&mut self, db: &str) -> CmdResult<()> {
        if db == "local" || db == "admin" || db == "config" {
            return Err(CommandError::new(
                codes::ILLEGAL_OPERATION,
                format!("Dropping the '{db}' database is prohibited."),
            ));
        }
        let names: Vec<String> = self.collections(db).map(|(n, _)| n.clone()).collect();
        if names.is_empty() {
            return Ok(());
        }
        for v in self.views(db) {
            if let Some((_, name)) = v.get_str("_id").ok().and_then(split_ns) {
                let name = name.to_string();
                self.drop_collection(db, &name)?;
            }
        }
        for n in names.iter().filter(|n| n.as_str() != "system.views") {
            self.drop_collection(db, n)?;
        }
        self.dbs.remove(db);
        self.log(PendingEntry::new(
            Op::Command,
            format!("{db}.$cmd"),
            None,
            doc! { "dropDatabase": 1 },
        ));
        Ok(())
    }

    /// Adds an index. Returns false when an identical index already exists.
    pub fn create_index(&mut self, db: &str, name: &str, spec: Document) -> CmdResult<bool> {
        let ns = format!("{db}.{name}");
        let replicated = Self::replicated(db);
        let coll = self.coll_mut(db, name)?;
        let mut index = Index::from_spec(spec.clone())?;
        let key = spec.get_document("key").cloned().unwrap_or_default();
        for existing in &coll.indexes {
            let same_key = existing
                .spec
                .get_document("key")
                .map(|k| k == &key)
                .unwrap_or(false);
            if existing.name == index.name {
                if same_key && same_options(&existing.spec, &spec) {
                    return Ok(false);
                }
                let code = if same_key {
                    codes::INDEX_OPTIONS_CONFLICT
                } else {
                    codes::INDEX_KEY_SPECS_CONFLICT
                };
                return Err(CommandError::new(
                    code,
                    format!(
                        "An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested index: {spec}, existing index: {}",
                        existing.spec
                    ),
                ));
            }
            if same_key {
                if same_options(&existing.spec, &spec) {
                    return Ok(false);
                }
                return Err(CommandError::new(
                    codes::INDEX_OPTIONS_CONFLICT,
                    format!(
                        "An equivalent index already exists with a different name and options. Requested index: {spec}, existing index: {}",
                        existing.spec
                    ),
                ));
            }
        }
        if index.unique {
            for (rid, raw) in &coll.records {
                let Ok(doc) = Document::try_from(raw.as_ref().as_ref()) else {
                    continue;
                };
                for k in index.keys_of(&doc).unwrap_or_default() {
                    if index.entries.contains_key(&k) {
                        return Err(index.duplicate_error(&ns, &k).error);
                    }
                    index.entries.insert(k, *rid);
                }
            }
        }
        let was_empty = coll.is_empty();
        coll.indexes.push(index);
        let uuid = coll.uuid;
        self.version += 1;
        if !replicated {
            return Ok(true);
        }
        let cmd_ns = format!("{db}.$cmd");
        if was_empty {
            // mongod builds indexes on empty collections in one step.
            let mut o = doc! { "createIndexes": name };
            o.extend(spec);
            self.log(PendingEntry::new(Op::Command, cmd_ns, Some(uuid), o));
        } else {
            // Otherwise 4.4+ logs a two-phase build: start, then commit.
            let build = Bson::from(Uuid::new());
            for phase in ["startIndexBuild", "commitIndexBuild"] {
                let o = doc! { phase: name, "indexBuildUUID": build.clone(), "indexes": [spec.clone()] };
                self.log(PendingEntry::new(
                    Op::Command,
                    cmd_ns.clone(),
                    Some(uuid),
                    o,
                ));
            }
        }
        Ok(true)
    }

    /// Removes one index by name, logging the spec in `o2` as mongod does.
    pub fn drop_index(&mut self, db: &str, name: &str, index: &str) -> CmdResult<()> {
        let replicated = Self::replicated(db);
        let coll = self.coll_mut(db, name)?;
        if index == "_id_" {
            return Err(CommandError::new(
                codes::INVALID_OPTIONS,
                "cannot drop _id index",
            ));
        }
        let pos = coll
            .indexes
            .iter()
            .position(|i| i.name == index)
            .ok_or_else(|| {
                CommandError::new(
                    codes::INDEX_NOT_FOUND,
                    format!("index not found with name [{index}]"),
                )
            })?;
        let removed = coll.indexes.remove(pos);
        let uuid = coll.uuid;
        self.version += 1;
        if replicated {
            self.log(
                PendingEntry::new(
                    Op::Command,
                    format!("{db}.$cmd"),
                    Some(uuid),
                    doc! { "dropIndexes": name, "index": index },
                )
                .with_o2(removed.spec),
            );
        }
        Ok(())
    }
}

/// Two index specs equal but for their name and version: the "index
/// already exists" case.
fn same_options(a: &Document, b: &Document) -> bool {
    let strip = |d: &Document| -> Document {
        d.iter()
            .filter(|(k, _)| !matches!(k.as_str(), "name" | "v" | "ns" | "background"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    strip(a) == strip(b)
}
