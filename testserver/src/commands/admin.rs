//! Handshake, server information and administrative commands: what drivers
//! send to discover the topology and what tools read to describe a server.

use std::sync::atomic::Ordering;

use bson::{doc, oid::ObjectId, Bson, DateTime, Document, RawDocumentBuf, Timestamp};

use super::{raw, Ctx};
use crate::error::{codes, CmdResult, CommandError};
use crate::faults::{ok_count, FailPoint};
use crate::server::lock;
use crate::wire::{MAX_BSON_SIZE, MAX_MESSAGE_SIZE};

pub const VERSION: &str = "7.0.14";
pub const SET_NAME: &str = "rs0";
const MAX_WIRE_VERSION: i32 = 21;

/// The election id never changes: this primary is never replaced.
fn election_id() -> ObjectId {
    ObjectId::from_bytes([0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1])
}

/// `hello` / `isMaster`: a single-node replica set primary, or a standalone
/// mongod, which reports only that it is writable (no `setName`, `hosts`,
/// `secondary`, `primary`, `me`, `setVersion`, `electionId`, `lastWrite`).
/// The legacy spelling answers `ismaster`, the new one `isWritablePrimary`,
/// as 7.0 does.
pub fn hello(ctx: &Ctx<'_>, name: &str, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    if let Ok(client) = cmd.get_document("client") {
        if let Ok(app) = client
            .get_document("application")
            .and_then(|a| a.get_str("name"))
        {
            *lock(&ctx.conn.app_name) = Some(app.to_string());
        }
    }
    let mut d = Document::new();
    if name == "hello" {
        d.insert("isWritablePrimary", true);
    } else {
        if cmd.get_bool("helloOk").unwrap_or(false) {
            d.insert("helloOk", true);
        }
        d.insert("ismaster", true);
    }
    if let Some(last) = replica_set_optime(ctx) {
        let me = ctx.shared.advertised();
        let last_write = DateTime::from_millis(i64::from(last.time) * 1000);
        d.insert("hosts", vec![me.clone()]);
        d.insert("setName", SET_NAME);
        d.insert("setVersion", 1);
        d.insert("secondary", false);
        d.insert("primary", me.clone());
        d.insert("me", me);
        d.insert("electionId", election_id());
        d.insert(
            "lastWrite",
            doc! {
                "opTime": { "ts": last, "t": crate::oplog::TERM },
                "lastWriteDate": last_write,
                "majorityOpTime": { "ts": last, "t": crate::oplog::TERM },
                "majorityWriteDate": last_write,
            },
        );
    }
    d.insert("maxBsonObjectSize", MAX_BSON_SIZE as i32);
    d.insert("maxMessageSizeBytes", MAX_MESSAGE_SIZE as i32);
    d.insert("maxWriteBatchSize", 100_000);
    d.insert("localTime", DateTime::now());
    d.insert("logicalSessionTimeoutMinutes", 30);
    d.insert("connectionId", ctx.conn.id as i32);
    d.insert("minWireVersion", 0);
    d.insert("maxWireVersion", MAX_WIRE_VERSION);
    d.insert("readOnly", false);
    d.insert("ok", 1.0);
    raw(d)
}

/// The newest optime when this server is a replica set member; None on a
/// standalone, which has no replication state to report.
fn replica_set_optime(ctx: &Ctx<'_>) -> Option<Timestamp> {
    ctx.shared
        .with_store(|s| (!s.is_standalone()).then(|| s.last_optime()))
}

pub fn build_info() -> CmdResult<RawDocumentBuf> {
    raw(doc! {
        "version": VERSION,
        "gitVersion": "mongo-testserver",
        "modules": [],
        "allocator": "system",
        "javascriptEngine": "none",
        "sysInfo": "deprecated",
        "versionArray": [7, 0, 14, 0],
        "bits": 64,
        "debug": false,
        "maxBsonObjectSize": MAX_BSON_SIZE as i32,
        "storageEngines": ["inMemory"],
        "ok": 1.0,
    })
}

pub fn host_info() -> CmdResult<RawDocumentBuf> {
    raw(doc! {
        "system": { "currentTime": DateTime::now(), "hostname": "localhost", "numCores": 1 },
        "os": { "type": std::env::consts::OS, "name": std::env::consts::OS },
        "extra": {},
        "ok": 1.0,
    })
}

pub fn server_status(ctx: &Ctx<'_>) -> CmdResult<RawDocumentBuf> {
    let shared = ctx.shared;
    let uptime = shared.started.elapsed();
    let current = shared.connections_current.load(Ordering::Relaxed) as i32;
    let me = shared.advertised();
    let oplog_bytes = shared.with_store(|s| {
        s.collection(crate::oplog::OPLOG_DB, crate::oplog::OPLOG_COLL)
            .map(|c| c.data_bytes as i64)
            .unwrap_or(0)
    });
    let mut status = doc! {
        "host": me.clone(),
        "version": VERSION,
        "process": "mongod",
        "pid": std::process::id() as i64,
        "uptime": uptime.as_secs_f64().floor(),
        "uptimeMillis": uptime.as_millis() as i64,
        "uptimeEstimate": uptime.as_secs() as i64,
        "localTime": DateTime::now(),
        "connections": {
            "current": current,
            "available": 838_860 - current,
            "totalCreated": shared.connections_total.load(Ordering::Relaxed) as i32,
        },
    };
    // mongod leaves the `repl` section out when replication is off.
    if let Some(last) = replica_set_optime(ctx) {
        status.insert(
            "repl",
            doc! {
                "setName": SET_NAME,
                "setVersion": 1,
                "isWritablePrimary": true,
                "secondary": false,
                "primary": me.clone(),
                "me": me,
                "lastWrite": { "opTime": { "ts": last, "t": crate::oplog::TERM } },
            },
        );
    }
    status.insert(
        "storageEngine",
        doc! { "name": "inMemory", "oplogBytes": oplog_bytes },
    );
    status.insert("ok", 1.0);
    raw(status)
}

/// On a standalone this fails as mongod's `checkReplEnabledForCommand`
/// does: NoReplicationEnabled (76), "not running with --replSet".
pub fn repl_set_get_status(ctx: &Ctx<'_>) -> CmdResult<RawDocumentBuf> {
    let Some(last) = replica_set_optime(ctx) else {
        return Err(not_running_with_repl_set());
    };
    let me = ctx.shared.advertised();
    let optime = doc! { "ts": last, "t": crate::oplog::TERM };
    let optime_date = DateTime::from_millis(i64::from(last.time) * 1000);
    let uptime = ctx.shared.started.elapsed().as_secs() as i32;
    raw(doc! {
        "set": SET_NAME,
        "date": DateTime::now(),
        "myState": 1,
        "term": crate::oplog::TERM,
        "heartbeatIntervalMillis": 2000i64,
        "majorityVoteCount": 1,
        "writeMajorityCount": 1,
        "votingMembersCount": 1,
        "writableVotingMembersCount": 1,
        "optimes": {
            "lastCommittedOpTime": optime.clone(),
            "appliedOpTime": optime.clone(),
            "durableOpTime": optime.clone(),
        },
        "members": [{
            "_id": 0,
            "name": me,
            "health": 1.0,
            "state": 1,
            "stateStr": "PRIMARY",
            "uptime": uptime,
            "optime": optime,
            "optimeDate": optime_date,
            "electionId": election_id(),
            "configVersion": 1,
            "configTerm": crate::oplog::TERM,
            "self": true,
        }],
        "ok": 1.0,
    })
}

fn not_running_with_repl_set() -> CommandError {
    CommandError::new(codes::NO_REPLICATION_ENABLED, "not running with --replSet")
}

/// The command line this server would have been started with.
pub fn get_cmd_line_opts(ctx: &Ctx<'_>) -> CmdResult<RawDocumentBuf> {
    let (argv, parsed) = if ctx.shared.with_store(|s| s.is_standalone()) {
        (vec!["mongod"], Document::new())
    } else {
        (
            vec!["mongod", "--replSet", SET_NAME],
            doc! { "replication": { "replSet": SET_NAME } },
        )
    };
    raw(doc! { "argv": argv, "parsed": parsed, "ok": 1.0 })
}

/// The parameters a client may reasonably ask for.
fn parameters() -> Document {
    doc! {
        "featureCompatibilityVersion": { "version": "7.0" },
        "authenticationMechanisms": ["SCRAM-SHA-1", "SCRAM-SHA-256"],
        "maxBSONDepth": 200,
        "transactionLifetimeLimitSeconds": 60,
        "cursorTimeoutMillis": 600_000i64,
    }
}

pub fn get_parameter(cmd: &Document) -> CmdResult<RawDocumentBuf> {
    let all = parameters();
    let mut out = Document::new();
    let everything = matches!(cmd.get("getParameter"), Some(Bson::String(s)) if s == "*")
        || cmd
            .get_document("getParameter")
            .is_ok_and(|d| d.get_bool("allParameters").unwrap_or(false));
    if everything {
        out = all;
    } else {
        for key in cmd.keys().skip(1) {
            if super::GENERIC_ARGS.contains(&key.as_str()) {
                continue;
            }
            match all.get(key) {
                Some(v) => {
                    out.insert(key.clone(), v.clone());
                }
                None => {
                    return Err(CommandError::new(
                        codes::INVALID_OPTIONS,
                        "no option found to get",
                    ))
                }
            }
        }
        if out.is_empty() {
            return Err(CommandError::new(
                codes::INVALID_OPTIONS,
                "no option found to get",
            ));
        }
    }
    out.insert("ok", 1.0);
    raw(out)
}

pub fn list_databases(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    let name_only = cmd.get_bool("nameOnly").unwrap_or(false);
    let filter = cmd.get_document("filter").ok().cloned();
    let sizes: Vec<(String, i64)> = ctx.shared.with_store(|s| {
        s.database_names()
            .into_iter()
            .map(|db| {
                let bytes: u64 = s.collections(&db).map(|(_, c)| c.data_bytes).sum();
                (db, bytes as i64)
            })
            .collect()
    });
    let mut dbs = Vec::new();
    let mut total = 0i64;
    for (name, bytes) in sizes {
        // mongod reports allocated size, never less than one page.
        let size_on_disk = (bytes.max(1) + 4095) / 4096 * 4096;
        let entry = if name_only {
            doc! { "name": name }
        } else {
            doc! { "name": name, "sizeOnDisk": size_on_disk, "empty": false }
        };
        if let Some(f) = &filter {
            if !crate::matcher::matches(&entry, f)? {
                continue;
            }
        }
        total += size_on_disk;
        dbs.push(Bson::Document(entry));
    }
    let mut reply = doc! { "databases": dbs };
    if !name_only {
        reply.insert("totalSize", total);
        reply.insert("totalSizeMb", total / (1024 * 1024));
    }
    reply.insert("ok", 1.0);
    raw(reply)
}

pub fn configure_fail_point(ctx: &Ctx<'_>, cmd: &Document) -> CmdResult<RawDocumentBuf> {
    if ctx.db != "admin" {
        return Err(CommandError::new(
            13,
            "configureFailPoint may only be run against the admin database.",
        ));
    }
    match cmd.get_str("configureFailPoint") {
        Ok("failCommand") => {}
        Ok(other) => {
            return Err(CommandError::bad_value(format!(
                "Cannot find failpoint: {other} (this test server implements only failCommand)"
            )))
        }
        Err(_) => {
            return Err(CommandError::type_mismatch(
                "configureFailPoint must name a fail point",
            ))
        }
    }
    let point = FailPoint::from_command(cmd)?;
    let count = lock(&ctx.shared.faults).configure(point);
    raw(ok_count(count))
}
