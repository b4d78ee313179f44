//! Namespaces and indexes: create/drop, index builds, and the listings a
//! backup reads to record collection metadata.

use std::collections::VecDeque;
use std::sync::Arc;

use bson::{doc, Bson, Document, RawArrayBuf, RawBson, RawDocumentBuf};

use super::{check_fields, opt_count, raw, target_collection, Ctx};
use crate::cursor::{Cursor, Source, DEFAULT_FIRST_BATCH};
use crate::error::{codes, CmdResult, CommandError};
use crate::server::lock;
use crate::store::{id_index_spec, ns_not_found, validate_collection_name};

const CREATE_OPTIONS: &[&str] = &[
    "capped",
    "size",
    "max",
    "autoIndexId",
    "validator",
    "validationLevel",
    "validationAction",
    "collation",
    "viewOn",
    "pipeline",
    "storageEngine",
    "indexOptionDefaults",
    "timeseries",
    "expireAfterSeconds",
    "clusteredIndex",
    "changeStreamPreAndPostImages",
    "idIndex",
    "encryptedFields",
];

pub fn create(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    let name = target_collection(cmd, "create")?;
    check_fields(cmd, "create", CREATE_OPTIONS)?;
    let options: Document = cmd
        .iter()
        .skip(1)
        .filter(|(k, _)| CREATE_OPTIONS.contains(&k.as_str()) && k.as_str() != "idIndex")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if options.contains_key("pipeline") && !options.contains_key("viewOn") {
        return Err(CommandError::bad_value(
            "'pipeline' requires 'viewOn' to also be specified",
        ));
    }
    if let Ok(view_on) = options.get_str("viewOn") {
        if view_on.is_empty() {
            return Err(CommandError::bad_value("'viewOn' cannot be empty"));
        }
    }
    ctx.shared
        .with_store(|s| s.create_collection(ctx.db, name, options))?;
    raw(doc! { "ok": 1.0 })
}

pub fn drop(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    let name = target_collection(cmd, "drop")?;
    validate_collection_name(ctx.db, name)?;
    // Only a live oplog is protected; a standalone has none to protect.
    let replicating = !ctx.shared.with_store(|s| s.is_standalone());
    if replicating && ctx.db == crate::oplog::OPLOG_DB && name == crate::oplog::OPLOG_COLL {
        return Err(CommandError::new(
            codes::ILLEGAL_OPERATION,
            "can't drop live oplog while replicating",
        ));
    }
    let dropped = ctx.shared.with_store(|s| s.drop_collection(ctx.db, name))?;
    match dropped {
        Some(n) => raw(doc! { "nIndexesWas": n, "ns": format!("{}.{name}", ctx.db), "ok": 1.0 }),
        // 7.0 answers a drop of a missing collection with success.
        None => raw(doc! { "ok": 1.0 }),
    }
}

pub fn drop_database(ctx: &Ctx<'_>) -> CmdResult<RawDocumentBuf> {
    ctx.shared.with_store(|s| s.drop_database(ctx.db))?;
    raw(doc! { "dropped": ctx.db, "ok": 1.0 })
}

pub fn create_indexes(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    let name = target_collection(cmd, "createIndexes")?;
    check_fields(
        cmd,
        "createIndexes",
        &["indexes", "commitQuorum", "ignoreUnknownIndexOptions"],
    )?;
    let specs = cmd.get_array("indexes").map_err(|_| {
        CommandError::type_mismatch(
            "BSON field 'createIndexes.indexes' is missing but a required field",
        )
    })?;
    if specs.is_empty() {
        return Err(CommandError::bad_value(
            "Must specify at least one index to create",
        ));
    }
    let mut normalized = Vec::new();
    for spec in specs {
        let Bson::Document(spec) = spec else {
            return Err(CommandError::type_mismatch(
                "each index specification must be an object",
            ));
        };
        let key = spec.get_document("key").map_err(|_| {
            CommandError::failed_to_parse(format!(
                "Error in specification {spec} :: caused by :: The 'key' field is a required property of an index specification"
            ))
        })?;
        if spec.get_str("name").is_err() {
            return Err(CommandError::failed_to_parse(format!(
                "Error in specification {spec} :: caused by :: The 'name' field is a required property of an index specification"
            )));
        }
        // Stored the way listIndexes shows it: v, key, name, then options.
        let mut out =
            doc! { "v": 2, "key": key.clone(), "name": spec.get_str("name").unwrap_or_default() };
        for (k, v) in spec {
            if !matches!(k.as_str(), "v" | "key" | "name" | "ns" | "background") {
                out.insert(k.clone(), v.clone());
            }
        }
        normalized.push(out);
    }
    let (before, after, created) = ctx.shared.with_store(|s| -> CmdResult<_> {
        if s.view(ctx.db, name).is_some() {
            return Err(CommandError::new(
                codes::COMMAND_NOT_SUPPORTED_ON_VIEW,
                format!("Namespace {}.{name} is a view, not a collection", ctx.db),
            ));
        }
        let created = s.ensure_collection(ctx.db, name)?;
        let before = s
            .collection(ctx.db, name)
            .map(|c| c.indexes.len())
            .unwrap_or(0);
        for spec in normalized {
            s.create_index(ctx.db, name, spec)?;
        }
        let after = s
            .collection(ctx.db, name)
            .map(|c| c.indexes.len())
            .unwrap_or(0);
        Ok((before as i32, after as i32, created))
    })?;
    let mut reply = doc! {
        "numIndexesBefore": before,
        "numIndexesAfter": after,
        "createdCollectionAutomatically": created,
    };
    if before == after {
        reply.insert("note", "all indexes already exist");
    }
    reply.insert("ok", 1.0);
    raw(reply)
}

pub fn drop_indexes(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    let first = cmd.keys().next().cloned().unwrap_or_default();
    let name = target_collection(cmd, &first)?;
    let which = cmd.get("index").cloned().ok_or_else(|| {
        CommandError::failed_to_parse(
            "BSON field 'dropIndexes.index' is missing but a required field",
        )
    })?;
    let was = ctx.shared.with_store(|s| -> CmdResult<i32> {
        let coll = s
            .collection(ctx.db, name)
            .ok_or_else(|| ns_not_found(ctx.db, name))?;
        let was = coll.indexes.len() as i32;
        let names: Vec<String> = match &which {
            Bson::String(n) if n == "*" => coll
                .indexes
                .iter()
                .filter(|i| i.name != "_id_")
                .map(|i| i.name.clone())
                .collect(),
            Bson::String(n) => vec![n.clone()],
            Bson::Array(a) => a
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect(),
            Bson::Document(key) => {
                let found = coll
                    .indexes
                    .iter()
                    .find(|i| i.spec.get_document("key").ok() == Some(key))
                    .map(|i| i.name.clone())
                    .ok_or_else(|| {
                        CommandError::new(
                            codes::INDEX_NOT_FOUND,
                            format!("can't find index with key: {key}"),
                        )
                    })?;
                vec![found]
            }
            _ => {
                return Err(CommandError::type_mismatch(
                    "index must be a string, array or document",
                ))
            }
        };
        for n in &names {
            s.drop_index(ctx.db, name, n)?;
        }
        Ok(was)
    })?;
    raw(doc! { "nIndexesWas": was, "ok": 1.0 })
}

pub fn list_collections(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    check_fields(
        cmd,
        "listCollections",
        &[
            "filter",
            "nameOnly",
            "authorizedCollections",
            "cursor",
            "includePendingDrops",
        ],
    )?;
    let name_only = cmd.get_bool("nameOnly").unwrap_or(false);
    let filter = match cmd.get("filter") {
        None | Some(Bson::Null) => Document::new(),
        Some(Bson::Document(f)) => f.clone(),
        Some(_) => return Err(CommandError::type_mismatch("filter must be an object")),
    };
    let entries: Vec<Document> = ctx.shared.with_store(|s| {
        let mut out: Vec<Document> = s
            .collections(ctx.db)
            .map(|(name, c)| {
                let mut info = doc! { "readOnly": false, "uuid": Bson::from(c.uuid) };
                if c.is_capped() && name == crate::oplog::OPLOG_COLL {
                    info = doc! { "readOnly": false, "uuid": Bson::from(c.uuid) };
                }
                let mut e = doc! {
                    "name": name.clone(),
                    "type": "collection",
                    "options": c.options.clone(),
                    "info": info,
                };
                if c.indexes.iter().any(|i| i.name == "_id_") {
                    e.insert("idIndex", id_index_spec());
                }
                e
            })
            .collect();
        for v in s.views(ctx.db) {
            let Some((_, name)) = v.get_str("_id").ok().and_then(crate::store::split_ns) else {
                continue;
            };
            let mut options = doc! {
                "viewOn": v.get_str("viewOn").unwrap_or_default(),
                "pipeline": v.get("pipeline").cloned().unwrap_or(Bson::Array(vec![])),
            };
            if let Some(c) = v.get("collation") {
                options.insert("collation", c.clone());
            }
            out.push(doc! {
                "name": name,
                "type": "view",
                "options": options,
                "info": { "readOnly": true },
            });
        }
        out.sort_by(|a, b| {
            a.get_str("name")
                .unwrap_or("")
                .cmp(b.get_str("name").unwrap_or(""))
        });
        out
    });
    let mut selected = Vec::new();
    for e in entries {
        if !filter.is_empty() && !crate::matcher::matches(&e, &filter)? {
            continue;
        }
        let e = if name_only {
            doc! { "name": e.get_str("name").unwrap_or_default(), "type": e.get_str("type").unwrap_or_default() }
        } else {
            e
        };
        selected.push(e);
    }
    listing_reply(
        ctx,
        cmd,
        format!("{}.$cmd.listCollections", ctx.db),
        selected,
    )
}

pub fn list_indexes(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    let name = target_collection(cmd, "listIndexes")?;
    check_fields(
        cmd,
        "listIndexes",
        &["cursor", "includeBuildUUIDs", "includeIndexBuildInfo"],
    )?;
    let specs = ctx.shared.with_store(|s| -> CmdResult<Vec<Document>> {
        if s.view(ctx.db, name).is_some() {
            return Err(CommandError::new(
                codes::COMMAND_NOT_SUPPORTED_ON_VIEW,
                format!("Namespace {}.{name} is a view, not a collection", ctx.db),
            ));
        }
        let c = s
            .collection(ctx.db, name)
            .ok_or_else(|| ns_not_found(ctx.db, name))?;
        Ok(c.indexes.iter().map(|i| i.spec.clone()).collect())
    })?;
    listing_reply(
        ctx,
        cmd,
        format!("{}.$cmd.listIndexes.{name}", ctx.db),
        specs,
    )
}

/// A cursor reply for a listing, honouring `cursor.batchSize`.
fn listing_reply(
    ctx: &Ctx<'_>,
    cmd: &Document,
    ns: String,
    docs: Vec<Document>,
) -> CmdResult<RawDocumentBuf> {
    let batch_size = match cmd.get_document("cursor") {
        Ok(c) => opt_count(c, "batchSize")?.map(|n| n as usize),
        Err(_) => None,
    };
    let mut queue = VecDeque::new();
    for d in docs {
        queue
            .push_back(Arc::new(RawDocumentBuf::from_document(&d).map_err(
                |e| CommandError::new(codes::INTERNAL_ERROR, e.to_string()),
            )?));
    }
    let mut cursor = Cursor {
        ns: ns.clone(),
        source: Source::Buffered(queue),
        tailable: false,
        await_data: false,
        remaining: None,
        batch_size: None,
    };
    let first = batch_size.unwrap_or(DEFAULT_FIRST_BATCH.max(usize::MAX / 2));
    let batch = ctx.shared.with_store(|s| cursor.next_batch(s, first))?;
    let id = if batch.exhausted || batch_size.is_none() {
        0
    } else {
        lock(&ctx.shared.cursors).insert(cursor)
    };
    cursor_reply(id, &ns, "firstBatch", &batch.docs)
}

/// `{cursor: {<batch_field>: [...], id, ns}, ok: 1}` built from raw
/// documents, so stored bytes reach the client unchanged.
pub fn cursor_reply(
    id: i64,
    ns: &str,
    batch_field: &str,
    docs: &[Arc<RawDocumentBuf>],
) -> CmdResult<RawDocumentBuf> {
    let mut arr = RawArrayBuf::new();
    for d in docs {
        arr.push(RawBson::Document(d.as_ref().clone()));
    }
    let mut cursor = RawDocumentBuf::new();
    cursor.append(batch_field, arr);
    cursor.append("id", id);
    cursor.append("ns", ns);
    let mut reply = RawDocumentBuf::new();
    reply.append("cursor", cursor);
    reply.append("ok", 1.0);
    Ok(reply)
}
