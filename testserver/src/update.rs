//! Update semantics of the test server: applying `update` commands' update
//! documents (operators or replacements) and replaying update oplog entries.
//!
//! mongo-backupd captures the oplog and restores to a point in time by
//! replaying it, so this module has to produce the oplog entries a real
//! MongoDB 7.0 primary writes and to apply the ones real servers wrote:
//! `$v: 2` delta entries (5.0+), legacy `$v: 1` / unversioned `$set`/`$unset`
//! entries (what 4.4 writes) and full-document replacements. The behaviour
//! follows the server sources under `src/mongo/db/update/` (each submodule
//! names the files it ports) and is pinned by a round-trip property:
//! replaying `apply_update(D, U).oplog_o` on `D` gives `apply_update(D, U).doc`.
//!
//! Submodules: `spec` parses operator updates (application order, path
//! conflicts), `args` checks each operator's argument, `engine` applies the
//! operations while building the diff, `arrays` holds `$push`/`$pull`
//! element logic, `diff` builds, serializes and applies `$v: 2` diffs, and
//! `value` holds BSON ordering, arithmetic and message formatting.

mod args;
mod arrays;
mod diff;
mod engine;
mod spec;
mod value;

#[cfg(test)]
mod tests;

use bson::{doc, Bson, Document};

use crate::error::{codes, CmdResult};
use value::err;

/// Whether `update` is an operator update (`{$set: ...}`) rather than a
/// replacement document. Mixed documents fail the way the server fails them:
/// a `$`-first document with a plain field is an unknown modifier, a
/// replacement with a `$`-prefixed top-level field is rejected by storage
/// validation.
pub fn is_operator_update(update: &Document) -> CmdResult<bool> {
    match update.keys().next() {
        Some(first) if first.starts_with('$') => {
            for (name, arg) in update {
                spec::validate_modifier(name, arg)?;
            }
            Ok(true)
        }
        _ => {
            check_replacement_names(update)?;
            Ok(false)
        }
    }
}

/// The result of applying one update to one document.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// The document after the update.
    pub doc: Document,
    /// False when nothing changed: MongoDB then reports `nModified: 0` and
    /// writes no oplog entry.
    pub changed: bool,
    /// The oplog entry's `o`: `{$v: 2, diff: {...}}` for operator updates,
    /// the new document for replacements. Meaningless when `changed` is false.
    pub oplog_o: Document,
    /// The oplog entry's `o2`: `{_id: ...}`, or `None` for a document without `_id`.
    pub oplog_o2: Option<Document>,
}

/// Applies `update` to `original`. `is_upsert_insert` is true when the
/// document is an upsert's seed (from [`upsert_seed`]): `$setOnInsert` then
/// applies, and `_id` is moved to the front as the server does before the
/// insert (generating a missing `_id` is left to the caller).
pub fn apply_update(
    original: &Document,
    update: &Document,
    is_upsert_insert: bool,
) -> CmdResult<UpdateOutcome> {
    let is_operator = update.keys().next().is_some_and(|k| k.starts_with('$'));
    if !is_operator {
        return apply_replacement(original, update);
    }
    // Modifier names are validated while parsing, in document order, so the
    // first offending field wins as on the server.
    let leaves = spec::parse(update, spec::Order::Modern)?;
    let mut engine = engine::Engine::new(original.clone(), is_upsert_insert, false);
    for leaf in &leaves {
        engine.apply(leaf)?;
    }
    let mut doc = engine.doc;
    if is_upsert_insert {
        move_id_first(&mut doc);
    }
    Ok(UpdateOutcome {
        oplog_o2: id_doc(&doc),
        oplog_o: doc! {"$v": 2, "diff": engine.diff.serialize()},
        changed: engine.changed,
        doc,
    })
}

/// `ObjectReplaceExecutor`: keeps the original `_id` when the replacement has
/// none, refuses to change it, and is a no-op only when the replacement is
/// byte-identical to the stored document.
fn apply_replacement(original: &Document, replacement: &Document) -> CmdResult<UpdateOutcome> {
    check_replacement_names(replacement)?;
    if let Some(new_id) = replacement.get("_id") {
        if matches!(new_id, Bson::Array(_)) {
            return Err(err(
                value::codes::NOT_SINGLE_VALUE_FIELD,
                "After applying the update to the document, the (immutable) field '_id' was \
                 found to be an array or array descendant.",
            ));
        }
        if let Some(old_id) = original.get("_id") {
            if !value::values_equal(new_id, old_id) {
                return Err(err(
                    codes::IMMUTABLE_FIELD,
                    format!(
                        "After applying the update, the (immutable) field '_id' was found to \
                         have been altered to {}",
                        value::fmt_elem("_id", new_id)
                    ),
                ));
            }
        }
    }
    let changed = !value::docs_binary_equal(original, replacement);
    let mut doc = Document::new();
    // Stored documents always lead with `_id`.
    if let Some(id) = replacement.get("_id").or_else(|| original.get("_id")) {
        doc.insert("_id", id.clone());
    }
    for (k, v) in replacement {
        if k != "_id" {
            doc.insert(k.clone(), v.clone());
        }
    }
    Ok(UpdateOutcome {
        oplog_o2: id_doc(&doc),
        oplog_o: doc.clone(),
        changed,
        doc,
    })
}

/// Storage validation of a replacement: no `$`-prefixed top-level names.
fn check_replacement_names(replacement: &Document) -> CmdResult<()> {
    if let Some(k) = replacement.keys().find(|k| k.starts_with('$')) {
        return Err(err(
            codes::DOLLAR_PREFIXED_FIELD_NAME,
            format!(
                "The dollar ($) prefixed field '{k}' in '{k}' is not allowed in the context of an \
                 update's replacement document. Consider using an aggregation pipeline with \
                 $replaceWith."
            ),
        ));
    }
    Ok(())
}

fn id_doc(doc: &Document) -> Option<Document> {
    doc.get("_id").map(|id| doc! {"_id": id.clone()})
}

/// `ensureIdFieldIsFirst` without the ObjectId generation.
fn move_id_first(doc: &mut Document) {
    if doc.keys().next().is_some_and(|k| k == "_id") {
        return;
    }
    if let Some(id) = doc.remove("_id") {
        let mut out = doc! {"_id": id};
        out.extend(std::mem::take(doc));
        *doc = out;
    }
}

/// Applies the `o` of an update (`op: "u"`) oplog entry to `doc`, as oplog
/// application and `applyOps` do. Recognises, like the server's
/// `extractUpdateType`: a document with `_id` is a replacement; `$v: 2` is a
/// delta; `$v: 1` or no `$v` with `$`-operators is a 4.4-style `$set` /
/// `$unset` entry, replayed with 4.4's lexicographic field order and its
/// idempotent handling of paths that can no longer be created.
pub fn apply_oplog_update(doc: &Document, o: &Document) -> CmdResult<Document> {
    if o.contains_key("_id") {
        return Ok(o.clone());
    }
    let version = match o.get("$v") {
        None => 1,
        Some(Bson::Int32(v)) => i64::from(*v),
        Some(Bson::Int64(v)) => *v,
        Some(Bson::Double(v)) if v.fract() == 0.0 && v.abs() < 1e9 => *v as i64,
        Some(other) => {
            return Err(err(
                6448500,
                format!(
                    "Unsupported or missing oplog version, {}",
                    value::fmt_elem("$v", other)
                ),
            ))
        }
    };
    match version {
        2 => match o.get("diff") {
            Some(Bson::Document(diff)) => diff::apply(doc, diff),
            other => Err(err(
                4772600,
                format!(
                    "Expected 'diff' field to be an object, instead got type: {}",
                    other.map_or("missing", value::type_name)
                ),
            )),
        },
        1 => apply_legacy(doc, o),
        v => Err(err(
            6448500,
            format!("Unsupported or missing oplog version, $v: {v}"),
        )),
    }
}

/// A `$v: 1` entry: only `$set` and `$unset` were ever logged in this form.
fn apply_legacy(doc: &Document, o: &Document) -> CmdResult<Document> {
    let mut update = o.clone();
    update.remove("$v");
    if !update.keys().any(|k| k.starts_with('$')) {
        // An unversioned replacement that lacks `_id` keeps the stored one.
        let mut out = Document::new();
        if let Some(id) = doc.get("_id") {
            out.insert("_id", id.clone());
        }
        out.extend(update);
        return Ok(out);
    }
    if let Some(k) = update.keys().find(|k| *k != "$set" && *k != "$unset") {
        return Err(err(
            codes::FAILED_TO_PARSE,
            format!("Unsupported modifier in a $v: 1 oplog entry: {k}"),
        ));
    }
    let leaves = spec::parse(&update, spec::Order::Legacy)?;
    let mut engine = engine::Engine::new(doc.clone(), false, true);
    for leaf in &leaves {
        engine.apply(leaf)?;
    }
    Ok(engine.doc)
}

/// The document an upsert starts from: the query's equality predicates
/// (`field: value`, `{$eq: v}`, a one-element `$in`, members of `$and`, a
/// single-clause `$or`), dotted paths expanded into sub-documents, inserted
/// in path order (the server keeps them in a `std::map`), then `_id` moved
/// first. Where the server would fail because two predicates name the same
/// path or a path and its prefix, the first predicate wins.
pub fn upsert_seed(filter: &Document) -> Document {
    let mut found: Vec<(String, Bson)> = Vec::new();
    collect_equalities(filter, &mut found);
    let mut found: Vec<(String, Bson)> = found
        .iter()
        .enumerate()
        .filter(|(i, (path, _))| {
            !found[..*i]
                .iter()
                .any(|(earlier, _)| paths_overlap(earlier, path))
        })
        .map(|(_, e)| e.clone())
        .collect();
    found.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut doc = Document::new();
    for (path, value) in found {
        set_path(&mut doc, &path, value);
    }
    move_id_first(&mut doc);
    doc
}

fn paths_overlap(a: &str, b: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    a.starts_with(&b) || b.starts_with(&a)
}

fn collect_equalities(filter: &Document, out: &mut Vec<(String, Bson)>) {
    for (key, cond) in filter {
        match key.as_str() {
            "$and" => {
                if let Bson::Array(clauses) = cond {
                    for c in clauses {
                        if let Bson::Document(d) = c {
                            collect_equalities(d, out);
                        }
                    }
                }
            }
            // The canonicalizer collapses a one-clause `$or` into its clause.
            "$or" => {
                if let Bson::Array(clauses) = cond {
                    if let [Bson::Document(d)] = clauses.as_slice() {
                        collect_equalities(d, out);
                    }
                }
            }
            k if k.starts_with('$') => {}
            _ => match cond {
                Bson::Document(ops) if ops.keys().next().is_some_and(|k| k.starts_with('$')) => {
                    for (op, arg) in ops {
                        match (op.as_str(), arg) {
                            ("$eq", v) => out.push((key.clone(), v.clone())),
                            // A one-element `$in` is rewritten to `$eq`.
                            ("$in", Bson::Array(items))
                                if items.len() == 1
                                    && !matches!(items[0], Bson::RegularExpression(_)) =>
                            {
                                out.push((key.clone(), items[0].clone()));
                            }
                            _ => {}
                        }
                    }
                }
                Bson::RegularExpression(_) => {}
                v => out.push((key.clone(), v.clone())),
            },
        }
    }
}

/// `pathsupport::setElementAtPath` for a seed made of documents only; a path
/// blocked by a non-document is skipped (the server would fail the upsert).
fn set_path(doc: &mut Document, path: &str, value: Bson) {
    let parts: Vec<&str> = path.split('.').collect();
    let Some((last, parents)) = parts.split_last() else {
        return;
    };
    let mut cur = doc;
    for p in parents {
        if !cur.contains_key(*p) {
            cur.insert(*p, Document::new());
        }
        match cur.get_mut(*p) {
            Some(Bson::Document(d)) => cur = d,
            _ => return,
        }
    }
    if !cur.contains_key(*last) {
        cur.insert(*last, value);
    }
}
