//! Writes: insert, update, delete with MongoDB's batch result shapes, and
//! `applyOps`, which replays oplog entries of every form this server writes.

use bson::{doc, Bson, Document, RawDocumentBuf};

use super::{check_fields, raw, target_collection, Ctx};
use crate::error::{codes, CmdResult, CommandError};
use crate::matcher::matches;
use crate::store::{split_ns, RecordId, Store, WriteFailure};
use crate::update::{apply_oplog_update, apply_update, is_operator_update, upsert_seed};

/// Collects per-statement errors the way MongoDB reports them: a
/// `writeErrors` array with the failing statement's index.
#[derive(Default)]
struct WriteErrors(Vec<Bson>);

impl WriteErrors {
    fn push(&mut self, index: usize, failure: WriteFailure) {
        let mut e = doc! { "index": index as i32, "code": failure.error.code };
        e.extend(*failure.extra);
        e.insert("errmsg", failure.error.errmsg);
        self.0.push(Bson::Document(e));
    }

    fn into_reply(self, mut reply: Document) -> CmdResult<RawDocumentBuf> {
        if !self.0.is_empty() {
            reply.insert("writeErrors", self.0);
        }
        reply.insert("ok", 1.0);
        raw(reply)
    }
}

fn statements<'a>(cmd: &'a Document, field: &str, command: &str) -> CmdResult<Vec<&'a Document>> {
    let arr = cmd.get_array(field).map_err(|_| {
        CommandError::new(
            40414,
            format!("BSON field '{command}.{field}' is missing but a required field"),
        )
    })?;
    arr.iter()
        .map(|v| match v {
            Bson::Document(d) => Ok(d),
            _ => Err(CommandError::type_mismatch(format!(
                "BSON field '{command}.{field}' must be an array of objects"
            ))),
        })
        .collect()
}

fn reject_view(s: &Store, db: &str, coll: &str) -> CmdResult<()> {
    if s.view(db, coll).is_some() {
        return Err(CommandError::new(
            codes::COMMAND_NOT_SUPPORTED_ON_VIEW,
            format!("Namespace {db}.{coll} is a view, not a collection"),
        ));
    }
    Ok(())
}

pub fn insert(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    let coll = target_collection(cmd, "insert")?;
    check_fields(cmd, "insert", &["documents", "ordered"])?;
    let docs = statements(cmd, "documents", "insert")?;
    let ordered = cmd.get_bool("ordered").unwrap_or(true);
    let mut errors = WriteErrors::default();
    let n = ctx.shared.with_store(|s| -> CmdResult<i32> {
        reject_view(s, ctx.db, coll)?;
        let mut n = 0;
        for (i, d) in docs.iter().enumerate() {
            match s.insert(ctx.db, coll, (*d).clone()) {
                Ok(_) => n += 1,
                Err(f) => {
                    errors.push(i, f);
                    if ordered {
                        break;
                    }
                }
            }
        }
        Ok(n)
    })?;
    errors.into_reply(doc! { "n": n })
}

/// Records a filter selects, using the `_id` index for `{_id: value}`
/// filters (the shape oplog replay and most single-document writes use).
fn select(
    s: &Store,
    db: &str,
    coll: &str,
    filter: &Document,
    first_only: bool,
) -> CmdResult<Vec<(RecordId, Document)>> {
    let Some(c) = s.collection(db, coll) else {
        return Ok(Vec::new());
    };
    let id_only = filter.len() == 1
        && match filter.get("_id") {
            Some(Bson::Document(d)) => d.keys().next().is_none_or(|k| !k.starts_with('$')),
            Some(_) => true,
            None => false,
        };
    if id_only {
        let id = filter.get("_id").cloned().unwrap_or(Bson::Null);
        let Some(rid) = c.find_by_id(&id) else {
            return Ok(Vec::new());
        };
        let Some(raw) = c.get(rid) else {
            return Ok(Vec::new());
        };
        let doc = Document::try_from(raw.as_ref().as_ref())
            .map_err(|e| CommandError::new(codes::INTERNAL_ERROR, e.to_string()))?;
        return Ok(if matches(&doc, filter)? {
            vec![(rid, doc)]
        } else {
            Vec::new()
        });
    }
    let mut out = Vec::new();
    for (rid, raw) in &c.records {
        let doc = Document::try_from(raw.as_ref().as_ref())
            .map_err(|e| CommandError::new(codes::INTERNAL_ERROR, e.to_string()))?;
        if matches(&doc, filter)? {
            out.push((*rid, doc));
            if first_only {
                break;
            }
        }
    }
    Ok(out)
}

pub fn update(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    let coll = target_collection(cmd, "update")?;
    check_fields(cmd, "update", &["updates", "ordered"])?;
    let stmts = statements(cmd, "updates", "update")?;
    let ordered = cmd.get_bool("ordered").unwrap_or(true);
    let mut errors = WriteErrors::default();
    let mut upserted = Vec::new();
    let (n, modified) = ctx.shared.with_store(|s| -> CmdResult<(i32, i32)> {
        reject_view(s, ctx.db, coll)?;
        let (mut n, mut modified) = (0, 0);
        for (i, stmt) in stmts.iter().enumerate() {
            match update_one_statement(s, ctx.db, coll, stmt) {
                Ok(r) => {
                    n += r.matched;
                    modified += r.modified;
                    if let Some(id) = r.upserted {
                        n += 1;
                        upserted.push(Bson::Document(doc! { "index": i as i32, "_id": id }));
                    }
                }
                Err(f) => {
                    errors.push(i, f);
                    if ordered {
                        break;
                    }
                }
            }
        }
        Ok((n, modified))
    })?;
    let mut reply = doc! { "n": n, "nModified": modified };
    if !upserted.is_empty() {
        reply.insert("upserted", upserted);
    }
    errors.into_reply(reply)
}

struct StatementResult {
    matched: i32,
    modified: i32,
    upserted: Option<Bson>,
}

fn update_one_statement(
    s: &mut Store,
    db: &str,
    coll: &str,
    stmt: &Document,
) -> Result<StatementResult, WriteFailure> {
    let q = stmt.get_document("q").map_err(|_| {
        CommandError::new(
            40414,
            "BSON field 'update.updates.q' is missing but a required field",
        )
    })?;
    let u = match stmt.get("u") {
        Some(Bson::Document(u)) => u,
        Some(Bson::Array(_)) => {
            return Err(CommandError::new(
                codes::INVALID_OPTIONS,
                "pipeline-style updates are not implemented by this test server",
            )
            .into())
        }
        _ => {
            return Err(CommandError::new(
                40414,
                "BSON field 'update.updates.u' is missing but a required field",
            )
            .into())
        }
    };
    let multi = stmt.get_bool("multi").unwrap_or(false);
    let upsert = stmt.get_bool("upsert").unwrap_or(false);
    let operator = is_operator_update(u)?;
    if multi && !operator {
        return Err(CommandError::failed_to_parse(
            "multi update is not supported for replacement-style update",
        )
        .into());
    }
    let targets = select(s, db, coll, q, !multi)?;
    let mut result = StatementResult {
        matched: 0,
        modified: 0,
        upserted: None,
    };
    for (rid, doc) in targets {
        let outcome = apply_update(&doc, u, false)?;
        result.matched += 1;
        if outcome.changed {
            s.update_record(
                db,
                coll,
                rid,
                outcome.doc,
                outcome.oplog_o,
                outcome.oplog_o2,
            )?;
            result.modified += 1;
        }
    }
    if result.matched == 0 && upsert {
        let seed = upsert_seed(q);
        let new_doc = if operator {
            apply_update(&seed, u, true)?.doc
        } else {
            let mut d = Document::new();
            if let Some(id) = seed.get("_id") {
                d.insert("_id", id.clone());
            }
            d.extend(u.iter().map(|(k, v)| (k.clone(), v.clone())));
            d
        };
        let new_doc = crate::store::with_id_first(new_doc)?;
        let id = new_doc.get("_id").cloned().unwrap_or(Bson::Null);
        s.insert(db, coll, new_doc)?;
        result.upserted = Some(id);
    }
    Ok(result)
}

pub fn delete(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    let coll = target_collection(cmd, "delete")?;
    check_fields(cmd, "delete", &["deletes", "ordered"])?;
    let stmts = statements(cmd, "deletes", "delete")?;
    let ordered = cmd.get_bool("ordered").unwrap_or(true);
    let mut errors = WriteErrors::default();
    let n = ctx.shared.with_store(|s| -> CmdResult<i32> {
        reject_view(s, ctx.db, coll)?;
        let mut n = 0;
        for (i, stmt) in stmts.iter().enumerate() {
            let result = (|| -> Result<i32, WriteFailure> {
                let q = stmt.get_document("q").map_err(|_| {
                    CommandError::new(
                        40414,
                        "BSON field 'delete.deletes.q' is missing but a required field",
                    )
                })?;
                let limit = match stmt.get("limit") {
                    Some(Bson::Int32(1)) | Some(Bson::Int64(1)) => true,
                    Some(Bson::Double(d)) if *d == 1.0 => true,
                    Some(Bson::Int32(0)) | Some(Bson::Int64(0)) | None => false,
                    Some(Bson::Double(d)) if *d == 0.0 => false,
                    Some(_) => {
                        return Err(CommandError::failed_to_parse(
                            "The limit field in delete objects must be 0 or 1.",
                        )
                        .into())
                    }
                };
                let mut count = 0;
                for (rid, _) in select(s, ctx.db, coll, q, limit)? {
                    s.delete_record(ctx.db, coll, rid)?;
                    count += 1;
                }
                Ok(count)
            })();
            match result {
                Ok(c) => n += c,
                Err(f) => {
                    errors.push(i, f);
                    if ordered {
                        break;
                    }
                }
            }
        }
        Ok(n)
    })?;
    errors.into_reply(doc! { "n": n })
}

/// `applyOps`: replays oplog entries, one after the other. As in mongod, an
/// update of a missing document inserts it unless `alwaysUpsert: false`,
/// while an insert of an existing `_id` fails with DuplicateKey.
pub fn apply_ops(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    if ctx.db != "admin" {
        return Err(CommandError::new(
            codes::ILLEGAL_OPERATION,
            "applyOps must be run against the admin database",
        ));
    }
    let ops = statements(cmd, "applyOps", "applyOps")?;
    let always_upsert = cmd.get_bool("alwaysUpsert").unwrap_or(true);
    let mut results = Vec::new();
    let failure = ctx.shared.with_store(|s| {
        for op in &ops {
            if let Err(e) = apply_one(s, op, always_upsert) {
                return Some(e);
            }
            results.push(Bson::Boolean(true));
        }
        None
    });
    let applied = results.len() as i32;
    match failure {
        None => raw(doc! { "applied": applied, "results": results, "ok": 1.0 }),
        Some(e) => {
            let mut reply = e.to_reply();
            reply.insert("applied", applied);
            reply.insert("results", results);
            raw(reply)
        }
    }
}

fn apply_one(s: &mut Store, entry: &Document, always_upsert: bool) -> CmdResult<()> {
    let op = entry
        .get_str("op")
        .map_err(|_| CommandError::failed_to_parse("oplog entry is missing 'op'"))?;
    let ns = entry.get_str("ns").unwrap_or("");
    let o = entry
        .get_document("o")
        .map_err(|_| CommandError::failed_to_parse("oplog entry is missing 'o'"));
    match op {
        "n" => Ok(()),
        "i" => {
            let (db, coll) = split_ns(ns).ok_or_else(|| bad_ns(ns))?;
            s.insert(db, coll, o?.clone())
                .map(|_| ())
                .map_err(|f| f.error)
        }
        "u" => {
            let (db, coll) = split_ns(ns).ok_or_else(|| bad_ns(ns))?;
            let o = o?;
            let o2 = entry
                .get_document("o2")
                .map_err(|_| CommandError::failed_to_parse("update oplog entry is missing 'o2'"))?;
            let id = o2.get("_id").cloned().unwrap_or(Bson::Null);
            let existing = s.collection(db, coll).and_then(|c| c.find_by_id(&id));
            match existing {
                Some(rid) => {
                    let current = s
                        .collection(db, coll)
                        .and_then(|c| c.get(rid))
                        .and_then(|r| Document::try_from(r.as_ref().as_ref()).ok())
                        .unwrap_or_default();
                    let new = apply_oplog_update(&current, o)?;
                    s.update_record(db, coll, rid, new, o.clone(), Some(o2.clone()))
                        .map(|_| ())
                        .map_err(|f| f.error)
                }
                // alwaysUpsert (the default): both update forms insert.
                None if always_upsert => {
                    let new = apply_oplog_update(&doc! { "_id": id }, o)?;
                    s.insert(db, coll, new).map(|_| ()).map_err(|f| f.error)
                }
                None => Err(CommandError::new(
                    codes::NO_SUCH_KEY,
                    format!("cannot apply update to {ns}: no document with _id {id}"),
                )),
            }
        }
        "d" => {
            let (db, coll) = split_ns(ns).ok_or_else(|| bad_ns(ns))?;
            let id = o?.get("_id").cloned().unwrap_or(Bson::Null);
            if let Some(rid) = s.collection(db, coll).and_then(|c| c.find_by_id(&id)) {
                s.delete_record(db, coll, rid)?;
            }
            Ok(())
        }
        "c" => {
            let db = ns.strip_suffix(".$cmd").ok_or_else(|| bad_ns(ns))?;
            apply_command(s, db, o?)
        }
        other => Err(CommandError::failed_to_parse(format!(
            "unknown oplog operation type '{other}'"
        ))),
    }
}

fn apply_command(s: &mut Store, db: &str, o: &Document) -> CmdResult<()> {
    let name = o.keys().next().map(String::as_str).unwrap_or("");
    let target = || {
        o.get_str(name)
            .map_err(|_| CommandError::failed_to_parse(format!("'{name}' needs a collection name")))
    };
    match name {
        "create" => {
            let options: Document = o
                .iter()
                .skip(1)
                .filter(|(k, _)| k.as_str() != "idIndex")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            s.create_collection(db, target()?, options)
        }
        "drop" => s.drop_collection(db, target()?).map(|_| ()),
        "dropDatabase" => s.drop_database(db),
        "createIndexes" => {
            let coll = target()?;
            let spec: Document = o
                .iter()
                .skip(1)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            s.ensure_collection(db, coll)?;
            s.create_index(db, coll, spec).map(|_| ())
        }
        // mongod refuses these in applyOps; replay tools (mongorestore)
        // turn a commitIndexBuild into createIndexes themselves.
        "startIndexBuild" | "commitIndexBuild" | "abortIndexBuild" => Err(CommandError::new(
            codes::COMMAND_NOT_SUPPORTED,
            format!(
                "Operation not supported in applyOps: {name}; apply its indexes with createIndexes"
            ),
        )),
        "dropIndexes" | "deleteIndexes" => {
            let coll = target()?;
            let index = o
                .get_str("index")
                .map_err(|_| CommandError::failed_to_parse("dropIndexes needs 'index'"))?;
            s.drop_index(db, coll, index)
        }
        "applyOps" => {
            let inner = o
                .get_array("applyOps")
                .map_err(|_| CommandError::failed_to_parse("applyOps needs an array"))?;
            for op in inner {
                if let Bson::Document(op) = op {
                    apply_one(s, op, true)?;
                }
            }
            Ok(())
        }
        other => Err(CommandError::new(
            codes::COMMAND_NOT_FOUND,
            format!("applyOps: command '{other}' is not supported by this test server"),
        )),
    }
}

fn bad_ns(ns: &str) -> CommandError {
    CommandError::new(
        codes::INVALID_NAMESPACE,
        format!("invalid namespace in oplog entry: '{ns}'"),
    )
}
