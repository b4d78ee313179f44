//! Reads: find (including tailable awaitData cursors), getMore,
//! killCursors, count and aggregate, over collections and views.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::{doc, Bson, Document, RawDocumentBuf};

use super::ddl::cursor_reply;
use super::{check_fields, opt_count, raw, target_collection, type_name, Ctx};
use crate::aggregate::run_pipeline;
use crate::cursor::{Cursor, Scan, Source, DEFAULT_FIRST_BATCH};
use crate::error::{codes, CmdResult, CommandError};
use crate::matcher::{matches, Matcher};
use crate::query::{project, sort_documents, validate_projection};
use crate::server::lock;
use crate::store::Store;

/// How long an awaitData getMore waits for new data when the client sets
/// no `maxTimeMS` (mongod's default).
const DEFAULT_AWAIT: Duration = Duration::from_secs(1);

fn opt_doc<'a>(cmd: &'a Document, field: &str, command: &str) -> CmdResult<Option<&'a Document>> {
    match cmd.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d)),
        Some(other) => Err(CommandError::type_mismatch(format!(
            "BSON field '{command}.{field}' is the wrong type '{}', expected type 'object'",
            type_name(other)
        ))),
    }
}

fn internal(e: impl std::fmt::Display) -> CommandError {
    CommandError::new(codes::INTERNAL_ERROR, e.to_string())
}

fn to_raw(d: &Document) -> CmdResult<Arc<RawDocumentBuf>> {
    RawDocumentBuf::from_document(d)
        .map(Arc::new)
        .map_err(internal)
}

/// Every document of a collection, or of a view with its pipeline applied
/// (views may stack on views).
fn materialize(s: &Store, db: &str, name: &str, depth: usize) -> CmdResult<Vec<Document>> {
    if let Some(view) = s.view(db, name) {
        if depth > 20 {
            return Err(CommandError::new(
                43,
                "View depth too deep or view cycle detected; maximum depth is 20",
            ));
        }
        let base = view.get_str("viewOn").unwrap_or_default();
        let input = materialize(s, db, base, depth + 1)?;
        let pipeline: Vec<Document> = view
            .get_array("pipeline")
            .map(|a| a.iter().filter_map(|v| v.as_document().cloned()).collect())
            .unwrap_or_default();
        return run_pipeline(input, &pipeline);
    }
    let Some(c) = s.collection(db, name) else {
        return Ok(Vec::new());
    };
    c.records
        .values()
        .map(|r| Document::try_from(r.as_ref().as_ref()).map_err(internal))
        .collect()
}

pub fn find(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    let coll = target_collection(cmd, "find")?;
    check_fields(
        cmd,
        "find",
        &[
            "filter",
            "sort",
            "projection",
            "skip",
            "limit",
            "batchSize",
            "singleBatch",
            "tailable",
            "awaitData",
            "noCursorTimeout",
            "hint",
            "allowDiskUse",
            "returnKey",
            "showRecordId",
            "min",
            "max",
            "collation",
            "allowPartialResults",
            "oplogReplay",
            "readOnce",
            "term",
        ],
    )?;
    let filter = opt_doc(cmd, "filter", "find")?.cloned().unwrap_or_default();
    // A bad filter fails even on a missing collection, as in mongod.
    Matcher::new(&filter)?;
    let mut sort = opt_doc(cmd, "sort", "find")?.cloned().unwrap_or_default();
    let projection = opt_doc(cmd, "projection", "find")?
        .cloned()
        .filter(|p| !p.is_empty());
    if let Some(p) = &projection {
        validate_projection(p)?;
    }
    let skip = opt_count(cmd, "skip")?.unwrap_or(0);
    let limit = opt_count(cmd, "limit")?.filter(|l| *l > 0);
    let batch_size = opt_count(cmd, "batchSize")?.map(|b| b as usize);
    let single_batch = cmd.get_bool("singleBatch").unwrap_or(false);
    let tailable = cmd.get_bool("tailable").unwrap_or(false);
    let await_data = cmd.get_bool("awaitData").unwrap_or(false);
    if await_data && !tailable {
        return Err(CommandError::failed_to_parse(
            "Cannot set 'awaitData' without also setting 'tailable'",
        ));
    }
    let reverse = match sort.get("$natural") {
        None => false,
        Some(v) => {
            let dir = match v {
                Bson::Int32(i) => *i as f64,
                Bson::Int64(i) => *i as f64,
                Bson::Double(d) => *d,
                _ => 1.0,
            };
            sort.remove("$natural");
            dir < 0.0
        }
    };
    let ns = format!("{}.{coll}", ctx.db);
    let mut cursor = ctx.shared.with_store(|s| -> CmdResult<Cursor> {
        let is_view = s.view(ctx.db, coll).is_some();
        let capped = s
            .collection(ctx.db, coll)
            .map(|c| c.is_capped())
            .unwrap_or(false);
        if tailable && (!capped || is_view) {
            return Err(CommandError::bad_value(format!(
                "error processing query: ns={ns} tailable cursor requested on non capped collection"
            )));
        }
        if tailable && !sort.is_empty() {
            return Err(CommandError::bad_value(
                "error processing query: tailable cursor requested with a sort other than $natural",
            ));
        }
        let source = if is_view || !sort.is_empty() {
            let mut docs = materialize(s, ctx.db, coll, 0)?;
            if !filter.is_empty() {
                let mut kept = Vec::with_capacity(docs.len());
                for d in docs {
                    if matches(&d, &filter)? {
                        kept.push(d);
                    }
                }
                docs = kept;
            }
            if reverse {
                docs.reverse();
            }
            if !sort.is_empty() {
                sort_documents(&mut docs, &sort)?;
            }
            let mut queue = VecDeque::new();
            for d in docs.into_iter().skip(skip as usize) {
                let d = match &projection {
                    Some(p) => project(&d, p)?,
                    None => d,
                };
                queue.push_back(to_raw(&d)?);
            }
            Source::Buffered(queue)
        } else {
            let uuid = match s.collection(ctx.db, coll) {
                Some(c) => c.uuid,
                None => {
                    // Nothing to scan: an empty, closed cursor.
                    return Ok(Cursor {
                        ns: ns.clone(),
                        source: Source::Buffered(VecDeque::new()),
                        tailable: false,
                        await_data: false,
                        remaining: None,
                        batch_size,
                    });
                }
            };
            Source::Scan(Box::new(Scan {
                db: ctx.db.to_string(),
                coll: coll.to_string(),
                uuid,
                after: None,
                reverse,
                filter: filter.clone(),
                projection: projection.clone(),
                skip,
            }))
        };
        Ok(Cursor {
            ns: ns.clone(),
            source,
            tailable,
            await_data,
            remaining: limit,
            batch_size,
        })
    })?;
    let first = match batch_size {
        Some(0) => Vec::new(),
        Some(n) => take(ctx, &mut cursor, n)?.0,
        None => take(ctx, &mut cursor, DEFAULT_FIRST_BATCH)?.0,
    };
    let exhausted = cursor_exhausted(ctx, &mut cursor, batch_size == Some(0));
    let id = if single_batch || exhausted {
        0
    } else {
        lock(&ctx.shared.cursors).insert(cursor)
    };
    cursor_reply(id, &ns, "firstBatch", &first)
}

/// Whether a cursor has nothing more to give after its first batch.
fn cursor_exhausted(ctx: &Ctx<'_>, cursor: &mut Cursor, nothing_taken: bool) -> bool {
    if nothing_taken || cursor.tailable {
        return false;
    }
    if cursor.remaining == Some(0) {
        return true;
    }
    match &cursor.source {
        Source::Buffered(q) => q.is_empty(),
        Source::Scan(scan) => ctx.shared.with_store(|s| {
            // A scan is done when no record lies beyond its position.
            s.collection(&scan.db, &scan.coll)
                .is_none_or(|c| match (scan.reverse, scan.after) {
                    (false, Some(a)) => c.records.range(a + 1..).next().is_none(),
                    (true, Some(a)) => c.records.range(..a).next().is_none(),
                    (_, None) => c.records.is_empty(),
                })
        }),
    }
}

fn take(
    ctx: &Ctx<'_>,
    cursor: &mut Cursor,
    max: usize,
) -> CmdResult<(Vec<Arc<RawDocumentBuf>>, bool)> {
    let batch = ctx.shared.with_store(|s| cursor.next_batch(s, max))?;
    Ok((batch.docs, batch.exhausted))
}

pub async fn get_more(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    let id = match cmd.get("getMore") {
        Some(Bson::Int64(id)) => *id,
        Some(other) => {
            return Err(CommandError::type_mismatch(format!(
                "BSON field 'getMore.getMore' is the wrong type '{}', expected type 'long'",
                type_name(other)
            )))
        }
        None => {
            return Err(CommandError::failed_to_parse(
                "getMore requires a cursor id",
            ))
        }
    };
    let coll = match cmd.get("collection") {
        Some(Bson::String(c)) => c.clone(),
        _ => {
            return Err(CommandError::new(
                40414,
                "BSON field 'getMore.collection' is missing but a required field",
            ))
        }
    };
    check_fields(
        cmd,
        "getMore",
        &[
            "collection",
            "batchSize",
            "term",
            "lastKnownCommittedOpTime",
        ],
    )?;
    let batch_size = opt_count(cmd, "batchSize")?.map(|b| b as usize);
    let max_time = opt_count(cmd, "maxTimeMS")?.map(Duration::from_millis);
    let Some(mut cursor) = lock(&ctx.shared.cursors).take(id) else {
        return Err(CommandError::new(
            codes::CURSOR_NOT_FOUND,
            format!("cursor id {id} not found"),
        ));
    };
    let ns = format!("{}.{coll}", ctx.db);
    if cursor.ns != ns {
        let owner = cursor.ns.clone();
        lock(&ctx.shared.cursors).restore(id, cursor);
        return Err(CommandError::new(
            13,
            format!("Requested getMore on namespace '{ns}', but cursor belongs to a different namespace {owner}"),
        ));
    }
    let max = batch_size
        .or(cursor.batch_size)
        .filter(|b| *b > 0)
        .unwrap_or(usize::MAX);
    let deadline = Instant::now() + max_time.unwrap_or(DEFAULT_AWAIT);
    let mut changes = ctx.shared.changes.subscribe();
    let (docs, exhausted) = loop {
        changes.borrow_and_update();
        let (docs, exhausted) = take(ctx, &mut cursor, max)?;
        if !docs.is_empty() || exhausted || !cursor.await_data {
            break (docs, exhausted);
        }
        let now = Instant::now();
        if now >= deadline {
            break (docs, false);
        }
        // Wake on the next write or at the deadline, whichever is first.
        let _ = tokio::time::timeout(deadline - now, changes.changed()).await;
    };
    let reply_id = if exhausted {
        0
    } else {
        lock(&ctx.shared.cursors).restore(id, cursor);
        id
    };
    cursor_reply(reply_id, &ns, "nextBatch", &docs)
}

pub fn kill_cursors(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    target_collection(cmd, "killCursors")?;
    let ids = cmd.get_array("cursors").map_err(|_| {
        CommandError::new(
            40414,
            "BSON field 'killCursors.cursors' is missing but a required field",
        )
    })?;
    let mut killed = Vec::new();
    let mut not_found = Vec::new();
    let mut table = lock(&ctx.shared.cursors);
    for v in ids {
        let Bson::Int64(id) = v else {
            return Err(CommandError::type_mismatch(
                "cursor ids must be of type long",
            ));
        };
        if table.kill(*id) {
            killed.push(Bson::Int64(*id));
        } else {
            not_found.push(Bson::Int64(*id));
        }
    }
    raw(doc! {
        "cursorsKilled": killed,
        "cursorsNotFound": not_found,
        "cursorsAlive": [],
        "cursorsUnknown": [],
        "ok": 1.0,
    })
}

pub fn count(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    let coll = target_collection(cmd, "count")?;
    check_fields(
        cmd,
        "count",
        &["query", "limit", "skip", "hint", "collation", "fields"],
    )?;
    let query = opt_doc(cmd, "query", "count")?.cloned().unwrap_or_default();
    Matcher::new(&query)?;
    let skip = opt_count(cmd, "skip")?.unwrap_or(0);
    let limit = opt_count(cmd, "limit")?.filter(|l| *l > 0);
    let n = ctx.shared.with_store(|s| -> CmdResult<u64> {
        let total = if query.is_empty() && s.view(ctx.db, coll).is_none() {
            s.collection(ctx.db, coll)
                .map(|c| c.len() as u64)
                .unwrap_or(0)
        } else {
            let mut n = 0u64;
            for d in materialize(s, ctx.db, coll, 0)? {
                if matches(&d, &query)? {
                    n += 1;
                }
            }
            n
        };
        let after_skip = total.saturating_sub(skip);
        Ok(limit.map_or(after_skip, |l| after_skip.min(l)))
    })?;
    raw(doc! { "n": n as i32, "ok": 1.0 })
}

pub fn aggregate(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    let coll = match cmd.get("aggregate") {
        Some(Bson::String(c)) => c.clone(),
        _ => {
            return Err(CommandError::new(
                codes::INVALID_NAMESPACE,
                "this test server supports aggregate only on a collection or view",
            ))
        }
    };
    check_fields(
        cmd,
        "aggregate",
        &[
            "pipeline",
            "cursor",
            "allowDiskUse",
            "explain",
            "hint",
            "collation",
            "fromMongos",
            "needsMerge",
        ],
    )?;
    let pipeline: Vec<Document> = cmd
        .get_array("pipeline")
        .map_err(|_| {
            CommandError::new(
                40414,
                "BSON field 'aggregate.pipeline' is missing but a required field",
            )
        })?
        .iter()
        .map(|s| {
            s.as_document().cloned().ok_or_else(|| {
                CommandError::type_mismatch(
                    "Each element of the 'pipeline' array must be an object",
                )
            })
        })
        .collect::<CmdResult<_>>()?;
    let cursor_opts = cmd.get_document("cursor").map_err(|_| {
        CommandError::failed_to_parse(
            "The 'cursor' option is required, except for aggregate with the explain argument",
        )
    })?;
    let batch_size = opt_count(cursor_opts, "batchSize")?.map(|b| b as usize);
    let results = ctx.shared.with_store(|s| -> CmdResult<Vec<Document>> {
        let input = materialize(s, ctx.db, &coll, 0)?;
        run_pipeline(input, &pipeline)
    })?;
    let mut queue = VecDeque::new();
    for d in &results {
        queue.push_back(to_raw(d)?);
    }
    let ns = format!("{}.{coll}", ctx.db);
    let mut cursor = Cursor {
        ns: ns.clone(),
        source: Source::Buffered(queue),
        tailable: false,
        await_data: false,
        remaining: None,
        batch_size: None,
    };
    let (first, exhausted) = match batch_size {
        Some(0) => (Vec::new(), false),
        Some(n) => take(ctx, &mut cursor, n)?,
        None => take(ctx, &mut cursor, DEFAULT_FIRST_BATCH)?,
    };
    let id = if exhausted {
        0
    } else {
        lock(&ctx.shared.cursors).insert(cursor)
    };
    cursor_reply(id, &ns, "firstBatch", &first)
}
