//! Command dispatch: fault injection, the handler for each command name,
//! and the fields every replica set reply carries (`$clusterTime`,
//! `operationTime`).

mod admin;
pub use admin::SET_NAME;
mod ddl;
mod read;
mod write;

use std::sync::Arc;

use bson::{doc, Bson, Document, RawBson, RawDocumentBuf, Timestamp};

use crate::error::{codes, CmdResult, CommandError};
use crate::server::{lock, ConnInfo, Shared};

/// What the connection does after a command.
pub enum Outcome {
    Reply(RawDocumentBuf),
    CloseConnection,
    Shutdown,
}

/// Everything a handler may need.
pub struct Ctx<'a> {
    pub shared: &'a Arc<Shared>,
    pub conn: &'a ConnInfo,
    pub db: &'a str,
}

/// Arguments every command may carry that this server accepts and ignores
/// (sessions, read/write concern, API versioning, gossiped cluster time):
/// a single node applies every write at once and reads the latest data.
pub const GENERIC_ARGS: &[&str] = &[
    "$db",
    "lsid",
    "txnNumber",
    "autocommit",
    "startTransaction",
    "$clusterTime",
    "$readPreference",
    "readConcern",
    "writeConcern",
    "apiVersion",
    "apiStrict",
    "apiDeprecationErrors",
    "comment",
    "maxTimeMS",
    "$audit",
    "$client",
    "bypassDocumentValidation",
    "let",
];

/// Runs one command. `legacy` marks OP_QUERY, which MongoDB 7.0 accepts only
/// for the connection handshake.
pub async fn execute(
    shared: &Arc<Shared>,
    conn: &ConnInfo,
    db: Option<&str>,
    body: Document,
    legacy: bool,
) -> Outcome {
    let name = body.keys().next().cloned().unwrap_or_default();
    let Some(db) = db else {
        return Outcome::Reply(finish(
            shared,
            Err(CommandError::new(
                40571,
                "OP_MSG requests require a $db argument",
            )),
        ));
    };
    if legacy && !matches!(name.as_str(), "hello" | "isMaster" | "ismaster") {
        return Outcome::Reply(finish(
            shared,
            Err(CommandError::new(
                codes::UNSUPPORTED_OP_QUERY_COMMAND,
                format!(
                    "Unsupported OP_QUERY command: {name}. The client driver may require an upgrade. For more details see https://dochub.mongodb.org/core/legacy-opcode-removal"
                ),
            )),
        ));
    }
    if name != "configureFailPoint" {
        let app = lock(&conn.app_name).clone();
        let action = lock(&shared.faults).check(&name, app.as_deref());
        if let Some(action) = action {
            if let Some(delay) = action.block {
                tokio::time::sleep(delay).await;
            }
            if action.shutdown_server {
                tracing::info!("A fault stops the server at command '{name}'.");
                return Outcome::Shutdown;
            }
            if action.close_connection {
                return Outcome::CloseConnection;
            }
            if let Some(error) = action.error {
                return Outcome::Reply(finish_doc(shared, error));
            }
        }
    }
    let ctx = Ctx { shared, conn, db };
    let result = dispatch(&ctx, &name, &body).await;
    Outcome::Reply(finish(shared, result))
}

async fn dispatch(ctx: &Ctx<'_>, name: &str, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    match name {
        "hello" | "isMaster" | "ismaster" => admin::hello(ctx, name, cmd),
        "ping" => raw(doc! { "ok": 1.0 }),
        "buildInfo" | "buildinfo" => admin::build_info(),
        "serverStatus" => admin::server_status(ctx),
        "replSetGetStatus" => admin::repl_set_get_status(ctx),
        "getParameter" => admin::get_parameter(cmd),
        "endSessions" | "killSessions" | "refreshSessions" | "killAllSessions" => {
            raw(doc! { "ok": 1.0 })
        }
        "listDatabases" => admin::list_databases(ctx, cmd),
        "configureFailPoint" => admin::configure_fail_point(ctx, cmd),
        "connectionStatus" => raw(doc! {
            "authInfo": { "authenticatedUsers": [], "authenticatedUserRoles": [] },
            "ok": 1.0,
        }),
        "getCmdLineOpts" => admin::get_cmd_line_opts(ctx),
        "getLog" => raw(doc! { "totalLinesWritten": 0, "log": [], "ok": 1.0 }),
        "whatsmyuri" => raw(doc! { "you": ctx.conn.peer.to_string(), "ok": 1.0 }),
        "hostInfo" => admin::host_info(),
        "create" => ddl::create(ctx, cmd),
        "drop" => ddl::drop(ctx, cmd),
        "dropDatabase" => ddl::drop_database(ctx),
        "createIndexes" => ddl::create_indexes(ctx, cmd),
        "dropIndexes" | "deleteIndexes" => ddl::drop_indexes(ctx, cmd),
        "listCollections" => ddl::list_collections(ctx, cmd),
        "listIndexes" => ddl::list_indexes(ctx, cmd),
        "insert" => write::insert(ctx, cmd),
        "update" => write::update(ctx, cmd),
        "delete" => write::delete(ctx, cmd),
        "applyOps" => write::apply_ops(ctx, cmd),
        "find" => read::find(ctx, cmd),
        "getMore" => read::get_more(ctx, cmd).await,
        "killCursors" => read::kill_cursors(ctx, cmd),
        "count" => read::count(ctx, cmd),
        "aggregate" => read::aggregate(ctx, cmd),
        _ => Err(CommandError::new(
            codes::COMMAND_NOT_FOUND,
            format!("no such command: '{name}'"),
        )),
    }
}

/// Adds the cluster-time fields a replica set member puts on every reply;
/// a standalone has no cluster time and sends neither.
fn finish(shared: &Shared, result: CmdResult<RawDocumentBuf>) -> RawDocumentBuf {
    let mut reply = match result {
        Ok(r) => r,
        Err(e) => raw_or_internal(&e.to_reply()),
    };
    if let Some(ts) = shared.with_store(|s| s.cluster_time()) {
        append_cluster_time(&mut reply, ts);
    }
    reply
}

fn finish_doc(shared: &Shared, d: Document) -> RawDocumentBuf {
    finish(shared, Ok(raw_or_internal(&d)))
}

fn append_cluster_time(reply: &mut RawDocumentBuf, ts: Timestamp) {
    let signature = doc! {
        "hash": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0u8; 20] },
        "keyId": 0i64,
    };
    let cluster = doc! { "clusterTime": ts, "signature": signature };
    if let Ok(c) = RawDocumentBuf::from_document(&cluster) {
        reply.append("$clusterTime", c);
    }
    reply.append("operationTime", RawBson::Timestamp(ts));
}

/// Documents built by handlers are always encodable; if one is not, the
/// client gets an InternalError rather than a dropped connection.
fn raw_or_internal(d: &Document) -> RawDocumentBuf {
    RawDocumentBuf::from_document(d).unwrap_or_else(|e| {
        let mut r = RawDocumentBuf::new();
        r.append("ok", 0.0);
        r.append("errmsg", format!("cannot encode reply: {e}"));
        r.append("code", codes::INTERNAL_ERROR);
        r.append("codeName", "InternalError");
        r
    })
}

pub fn raw(d: Document) -> CmdResult<RawDocumentBuf> {
    RawDocumentBuf::from_document(&d)
        .map_err(|e| CommandError::new(codes::INTERNAL_ERROR, format!("cannot encode reply: {e}")))
}

/// The collection a command names in its first field.
pub fn target_collection<'a>(cmd: &'a Document, name: &str) -> CmdResult<&'a str> {
    match cmd.get(name) {
        Some(Bson::String(s)) if !s.is_empty() => Ok(s),
        Some(Bson::String(_)) => Err(CommandError::new(
            codes::INVALID_NAMESPACE,
            "Invalid namespace specified: collection name is empty",
        )),
        Some(other) => Err(CommandError::new(
            codes::INVALID_NAMESPACE,
            format!("collection name has invalid type {}", type_name(other)),
        )),
        None => Err(CommandError::failed_to_parse(format!(
            "{name} requires a collection name"
        ))),
    }
}

pub use crate::compare::type_name;

/// A non-negative integer argument (any numeric BSON type, as mongod
/// accepts).
pub fn opt_count(cmd: &Document, field: &str) -> CmdResult<Option<u64>> {
    let v = match cmd.get(field) {
        None | Some(Bson::Null) => return Ok(None),
        Some(v) => v,
    };
    let n = match v {
        Bson::Int32(i) => *i as i64,
        Bson::Int64(i) => *i,
        Bson::Double(d) if d.fract() == 0.0 => *d as i64,
        other => {
            return Err(CommandError::type_mismatch(format!(
                "BSON field '{field}' is the wrong type '{}', expected types '[long, int, decimal, double']",
                type_name(other)
            )))
        }
    };
    if n < 0 {
        return Err(CommandError::new(
            51024,
            format!("BSON field '{field}' value must be >= 0, actual value '{n}'"),
        ));
    }
    Ok(Some(n as u64))
}

/// Rejects fields a command does not define, as mongod's IDL parser does,
/// so a client bug is an error here as it would be there.
pub fn check_fields(cmd: &Document, command: &str, allowed: &[&str]) -> CmdResult<()> {
    for key in cmd.keys().skip(1) {
        if !allowed.contains(&key.as_str()) && !GENERIC_ARGS.contains(&key.as_str()) {
            return Err(CommandError::new(
                40415,
                format!("BSON field '{command}.{key}' is an unknown field."),
            ));
        }
    }
    Ok(())
}
