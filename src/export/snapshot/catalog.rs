//! Which collections exist at the snapshot's instant and where each one's
//! documents come from, worked out from the backup's collection list and
//! the commands in the oplog (create, drop, dropDatabase, renameCollection,
//! index builds, collMod), without a server.
//!
//! A collection's history is a *lineage*: it starts from a collection file
//! of the full backup or from a `create` in the oplog, continues under a new
//! name after a rename, and ends with a drop. Its documents are the file's
//! (if any) with the CRUD entries of its segments applied; a drop followed
//! by a create of the same name starts a new lineage, so nothing from
//! before the drop leaks into the export.

use std::collections::HashMap;

use bson::{doc, Bson, Document};

use super::oplog::{FlatOp, Kind, Pos};

/// A stretch of the oplog during which a lineage had the name `ns`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Segment {
    pub ns: String,
    /// First position that belongs to it.
    pub from: Pos,
    /// First position that no longer does.
    pub to: Option<Pos>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lineage {
    pub db: String,
    pub name: String,
    /// `collection` or `view`.
    pub kind: String,
    pub options: Document,
    pub indexes: Vec<Document>,
    /// The full backup's data file it starts from.
    pub data_file: Option<String>,
    pub segments: Vec<Segment>,
    /// Why its documents cannot be known without a server.
    pub broken: Option<String>,
}

impl Lineage {
    /// Whether the CRUD entry at `pos` on `ns` changed this collection.
    pub(crate) fn wants(&self, ns: &str, pos: Pos) -> bool {
        self.segments
            .iter()
            .any(|s| s.ns == ns && pos >= s.from && s.to.is_none_or(|t| pos < t))
    }
}

/// The position before any oplog entry (files hold positions from 1).
pub(crate) const START: Pos = Pos { file: 0, n: 0 };

pub(crate) fn id_index() -> Document {
    doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }
}

#[derive(Debug, Default)]
pub(crate) struct Catalog {
    lineages: Vec<Lineage>,
    /// The lineage each existing namespace belongs to.
    alive: HashMap<String, usize>,
}

impl Catalog {
    /// A collection or view of the full backup.
    pub(crate) fn add_base(&mut self, lineage: Lineage) {
        let ns = format!("{}.{}", lineage.db, lineage.name);
        self.alive.insert(ns, self.lineages.len());
        self.lineages.push(lineage);
    }

    /// The lineages that exist at the end, by namespace.
    pub(crate) fn into_alive(self) -> Vec<Lineage> {
        let mut out: Vec<Lineage> = self
            .alive
            .values()
            .filter_map(|&i| self.lineages.get(i).cloned())
            .collect();
        out.sort_by(|a, b| (&a.db, &a.name).cmp(&(&b.db, &b.name)));
        out
    }

    fn create(&mut self, db: &str, name: &str, kind: &str, options: Document, pos: Pos) {
        let ns = format!("{db}.{name}");
        if self.alive.contains_key(&ns) {
            // Already there: the full backup listed it after it was made.
            return;
        }
        let indexes = if kind == "view" {
            Vec::new()
        } else {
            vec![id_index()]
        };
        self.add_base(Lineage {
            db: db.to_string(),
            name: name.to_string(),
            kind: kind.to_string(),
            options,
            indexes,
            data_file: None,
            segments: vec![Segment {
                ns,
                from: pos,
                to: None,
            }],
            broken: None,
        });
    }

    fn drop_ns(&mut self, ns: &str, pos: Pos) {
        if let Some(i) = self.alive.remove(ns) {
            if let Some(seg) = self.lineages[i].segments.last_mut() {
                seg.to = Some(pos);
            }
        }
    }

    fn lineage_mut(&mut self, db: &str, coll: &str) -> Option<&mut Lineage> {
        let i = *self.alive.get(&format!("{db}.{coll}"))?;
        self.lineages.get_mut(i)
    }

    /// Takes one operation of the oplog into account. CRUD entries on a
    /// namespace that does not exist create it, as MongoDB does; except
    /// inside a transaction, which logs its own creates and whose other
    /// operations may be on namespaces the backup left out.
    pub(crate) fn apply(&mut self, op: &FlatOp) {
        if op.kind != Kind::Command {
            if !op.nested && !self.alive.contains_key(&op.ns) {
                if let Some((db, coll)) = op.ns.split_once('.') {
                    self.create(db, coll, "collection", Document::new(), op.pos);
                }
            }
            return;
        }
        let Some(db) = op.ns.strip_suffix(".$cmd") else {
            return;
        };
        let Some(body) = &op.body else { return };
        let o = &body.o;
        let Some(name) = o.keys().next().cloned() else {
            return;
        };
        let target = o.get_str(&name).unwrap_or("").to_string();
        let at = crate::catalog::OpTime::from(op.ts);
        match name.as_str() {
            "create" => {
                let kind = if o.contains_key("viewOn") {
                    "view"
                } else {
                    "collection"
                };
                let options: Document = o
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "create" | "idIndex"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                self.create(db, &target, kind, options, op.pos);
                if let (Ok(spec), Some(l)) =
                    (o.get_document("idIndex"), self.lineage_mut(db, &target))
                {
                    if l.segments.len() == 1 && l.segments[0].from == op.pos {
                        l.indexes = vec![spec.clone()];
                    }
                }
            }
            "drop" => self.drop_ns(&format!("{db}.{target}"), op.pos),
            "dropDatabase" => {
                let prefix = format!("{db}.");
                let gone: Vec<String> = self
                    .alive
                    .keys()
                    .filter(|ns| ns.starts_with(&prefix))
                    .cloned()
                    .collect();
                for ns in gone {
                    self.drop_ns(&ns, op.pos);
                }
            }
            "renameCollection" => self.rename(o, &target, op.pos, at),
            "emptycapped" => {
                let ns = format!("{db}.{target}");
                if let Some(old) = self
                    .alive
                    .get(&ns)
                    .and_then(|&i| self.lineages.get(i))
                    .cloned()
                {
                    self.drop_ns(&ns, op.pos);
                    self.create(db, &target, &old.kind, old.options, op.pos);
                    if let Some(l) = self.lineage_mut(db, &target) {
                        l.indexes = old.indexes;
                    }
                }
            }
            "createIndexes" => {
                let spec: Document = o
                    .iter()
                    .skip(1)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if let Some(l) = self.lineage_mut(db, &target) {
                    add_index(&mut l.indexes, spec);
                }
            }
            "commitIndexBuild" => {
                if let (Ok(specs), Some(l)) =
                    (o.get_array("indexes"), self.lineage_mut(db, &target))
                {
                    for spec in specs.iter().filter_map(Bson::as_document) {
                        add_index(&mut l.indexes, spec.clone());
                    }
                }
            }
            "dropIndexes" | "deleteIndexes" => {
                if let Some(l) = self.lineage_mut(db, &target) {
                    match o.get("index") {
                        Some(Bson::String(n)) if n == "*" => {
                            l.indexes.retain(|i| i.get_str("name") == Ok("_id_"))
                        }
                        Some(Bson::String(n)) => l.indexes.retain(|i| i.get_str("name") != Ok(n)),
                        Some(Bson::Document(key)) => l
                            .indexes
                            .retain(|i| i.get_document("key").ok() != Some(key)),
                        _ => {}
                    }
                }
            }
            "collMod" => {
                if let Some(l) = self.lineage_mut(db, &target) {
                    coll_mod(l, o);
                }
            }
            // Neither data nor metadata: nothing to do.
            "startIndexBuild" | "abortIndexBuild" | "dbCheck" => {}
            other => {
                let why = format!(
                    "the oplog entry at {at} runs the command {other}, which changes data in a \
                     way the export cannot reproduce without a server"
                );
                let ns = format!("{db}.{target}");
                let hit: Vec<usize> = match self.alive.get(&ns) {
                    Some(&i) => vec![i],
                    None => {
                        let prefix = format!("{db}.");
                        self.alive
                            .iter()
                            .filter(|(n, _)| n.starts_with(&prefix))
                            .map(|(_, &i)| i)
                            .collect()
                    }
                };
                for i in hit {
                    self.lineages[i].broken.get_or_insert_with(|| why.clone());
                }
            }
        }
    }

    /// `{renameCollection: "db.a", to: "db.b", dropTarget: ...}`: the
    /// lineage of `db.a` continues as `db.b`; whatever was `db.b` ends.
    fn rename(&mut self, o: &Document, from: &str, pos: Pos, at: crate::catalog::OpTime) {
        let to = o.get_str("to").unwrap_or("").to_string();
        let Some((to_db, to_coll)) = to.split_once('.') else {
            return;
        };
        self.drop_ns(&to, pos);
        match self.alive.remove(from) {
            Some(i) => {
                let l = &mut self.lineages[i];
                if let Some(seg) = l.segments.last_mut() {
                    seg.to = Some(pos);
                }
                l.segments.push(Segment {
                    ns: to.clone(),
                    from: pos,
                    to: None,
                });
                l.db = to_db.to_string();
                l.name = to_coll.to_string();
                self.alive.insert(to, i);
            }
            None => {
                // The source is not in the backup (its selection left it
                // out), so what the target holds now is unknown.
                self.create(to_db, to_coll, "collection", Document::new(), pos);
                if let Some(l) = self.lineage_mut(to_db, to_coll) {
                    l.broken = Some(format!(
                        "at {at} it was replaced by renaming {from} onto it, and the backup \
                         does not hold {from}"
                    ));
                }
            }
        }
    }
}

fn add_index(indexes: &mut Vec<Document>, spec: Document) {
    let name = spec.get_str("name").ok().map(str::to_string);
    if name.is_some()
        && indexes
            .iter()
            .any(|i| i.get_str("name").ok() == name.as_deref())
    {
        return;
    }
    indexes.push(spec);
}

/// Options change in place; `index: {name | keyPattern, ...}` changes one
/// index's properties (TTL, hidden).
fn coll_mod(l: &mut Lineage, o: &Document) {
    for (k, v) in o.iter().skip(1) {
        if k != "index" {
            l.options.insert(k.clone(), v.clone());
            continue;
        }
        let Bson::Document(change) = v else { continue };
        let target = l.indexes.iter_mut().find(|i| {
            change
                .get_str("name")
                .is_ok_and(|n| i.get_str("name") == Ok(n))
                || change
                    .get_document("keyPattern")
                    .is_ok_and(|key| i.get_document("key").ok() == Some(key))
        });
        if let Some(spec) = target {
            for (ck, cv) in change {
                if ck != "name" && ck != "keyPattern" {
                    spec.insert(ck.clone(), cv.clone());
                }
            }
        }
    }
}
