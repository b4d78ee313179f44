//! The test server as a standalone mongod (`Builder::standalone`, the
//! binary's `--standalone`): the official driver sees a server with no
//! replica set, no oplog and no cluster time, where writes still work and
//! replica set commands fail as they do on a real standalone 7.0. These
//! always run against a local test server: MONGODB_TEST_URI names a
//! replica set, which is exactly what is not under test here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use bson::{doc, Document};
use common::{client_for, code_of, message_of};
use futures_util::TryStreamExt;
use mongo_testserver::TestServer;
use mongodb::error::ErrorKind;
use mongodb::IndexModel;

fn standalone() -> TestServer {
    TestServer::builder().standalone().start().unwrap()
}

/// Everything a replica set member adds to `hello` and a standalone does not.
const REPLICA_SET_FIELDS: &[&str] = &[
    "setName",
    "hosts",
    "primary",
    "me",
    "setVersion",
    "electionId",
    "lastWrite",
    "secondary",
];

/// One OP_MSG command over a fresh connection, bypassing the driver, so the
/// reply is seen exactly as sent (the driver hides error replies' fields).
fn raw_command(server: &TestServer, cmd: Document) -> Document {
    let mut body = Vec::new();
    cmd.to_writer(&mut body).unwrap();
    let len = 16 + 4 + 1 + body.len() as i32;
    let mut msg = Vec::new();
    for n in [len, 1, 0, 2013] {
        msg.extend(n.to_le_bytes());
    }
    msg.extend(0u32.to_le_bytes());
    msg.push(0);
    msg.extend(body);
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&msg).unwrap();
    let mut head = [0u8; 16];
    s.read_exact(&mut head).unwrap();
    let len = i32::from_le_bytes(head[0..4].try_into().unwrap()) as usize;
    let mut rest = vec![0u8; len - 16];
    s.read_exact(&mut rest).unwrap();
    // flagBits (4 bytes), section kind 0 (1 byte), then the body.
    Document::from_reader(&rest[5..]).unwrap()
}

#[test]
fn the_uri_asks_for_a_direct_connection() {
    let server = standalone();
    assert!(server.is_standalone());
    assert_eq!(
        server.uri(),
        format!("mongodb://{}/?directConnection=true", server.host_port())
    );
    assert!(!TestServer::start().unwrap().is_standalone());
}

#[tokio::test]
async fn hello_has_only_the_fields_of_a_standalone() {
    let server = standalone();
    let client = client_for(&server.uri()).await;
    let hello = client
        .database("admin")
        .run_command(doc! { "hello": 1 })
        .await
        .unwrap();
    let keys: Vec<&str> = hello.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "isWritablePrimary",
            "maxBsonObjectSize",
            "maxMessageSizeBytes",
            "maxWriteBatchSize",
            "localTime",
            "logicalSessionTimeoutMinutes",
            "connectionId",
            "minWireVersion",
            "maxWireVersion",
            "readOnly",
            "ok",
        ],
        "no replica set fields and no $clusterTime/operationTime: {hello}"
    );
    assert_eq!(hello.get_bool("isWritablePrimary"), Ok(true));
    assert_eq!(hello.get_i32("maxWireVersion"), Ok(21));

    let legacy = client
        .database("admin")
        .run_command(doc! { "isMaster": 1, "helloOk": true })
        .await
        .unwrap();
    assert_eq!(legacy.get_bool("ismaster"), Ok(true));
    assert_eq!(legacy.get_bool("helloOk"), Ok(true));
    for field in
        REPLICA_SET_FIELDS
            .iter()
            .chain(&["isWritablePrimary", "$clusterTime", "operationTime"])
    {
        assert!(
            !legacy.contains_key(field),
            "isMaster has {field}: {legacy}"
        );
    }
}

#[tokio::test]
async fn a_driver_asked_for_a_replica_set_does_not_select_it() {
    // Drivers classify a hello without setName as a standalone, which is
    // never a member of the named set: a faithful standalone is refused.
    let server = standalone();
    let uri = format!(
        "mongodb://{}/?replicaSet=rs0&serverSelectionTimeoutMS=300",
        server.host_port()
    );
    let client = client_for(&uri).await;
    let err = client
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind.as_ref(), ErrorKind::ServerSelection { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn there_is_no_oplog_and_writes_log_nothing() {
    // A fast noop interval proves the periodic writer stays off too.
    let server = TestServer::builder()
        .standalone()
        .noop_interval(Some(Duration::from_millis(20)))
        .start()
        .unwrap();
    let client = client_for(&server.uri()).await;
    let db = client.database("app");
    let c = db.collection::<Document>("items");
    c.insert_many((0..5).map(|i| doc! { "_id": i, "n": i }))
        .await
        .unwrap();
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "n": 10 } })
        .await
        .unwrap();
    c.delete_one(doc! { "_id": 2 }).await.unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "n": 1 }).build())
        .await
        .unwrap();
    db.create_collection("empty").await.unwrap();
    let got: Vec<Document> = c
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            doc! { "_id": 0, "n": 0 },
            doc! { "_id": 1, "n": 10 },
            doc! { "_id": 3, "n": 3 },
            doc! { "_id": 4, "n": 4 },
        ]
    );
    tokio::time::sleep(Duration::from_millis(100)).await;

    let local = client.database("local");
    let names = local.list_collection_names().await.unwrap();
    assert!(
        !names
            .iter()
            .any(|n| n == "oplog.rs" || n == "system.replset"),
        "{names:?}"
    );
    let entries: Vec<Document> = local
        .collection::<Document>("oplog.rs")
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(entries.is_empty(), "{entries:?}");
    // Nothing to protect: dropping the absent oplog is a no-op, as on mongod.
    local
        .run_command(doc! { "drop": "oplog.rs" })
        .await
        .unwrap();

    let reply = db
        .run_command(doc! { "insert": "items", "documents": [{ "_id": 9 }] })
        .await
        .unwrap();
    assert_eq!(reply.get_i32("n"), Ok(1));
    assert!(
        !reply.contains_key("$clusterTime") && !reply.contains_key("operationTime"),
        "{reply}"
    );
}

#[tokio::test]
async fn repl_set_get_status_fails_with_no_replication_enabled() {
    let server = standalone();
    let client = client_for(&server.uri()).await;
    let err = client
        .database("admin")
        .run_command(doc! { "replSetGetStatus": 1 })
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(76));
    assert_eq!(message_of(&err), "not running with --replSet");
    match err.kind.as_ref() {
        ErrorKind::Command(c) => assert_eq!(c.code_name, "NoReplicationEnabled"),
        other => panic!("not a command error: {other:?}"),
    }
    // The whole reply, as mongod 7.0 sends it: no cluster time on errors
    // either.
    assert_eq!(
        raw_command(&server, doc! { "replSetGetStatus": 1, "$db": "admin" }),
        doc! {
            "ok": 0.0,
            "errmsg": "not running with --replSet",
            "code": 76,
            "codeName": "NoReplicationEnabled",
        }
    );
}

#[tokio::test]
async fn server_status_and_command_line_show_no_replication() {
    let server = standalone();
    let client = client_for(&server.uri()).await;
    let admin = client.database("admin");
    let status = admin.run_command(doc! { "serverStatus": 1 }).await.unwrap();
    assert!(!status.contains_key("repl"), "{status}");
    assert_eq!(status.get_str("process"), Ok("mongod"));
    let opts = admin
        .run_command(doc! { "getCmdLineOpts": 1 })
        .await
        .unwrap();
    assert_eq!(
        opts.get_array("argv"),
        Ok(&vec![bson::Bson::from("mongod")])
    );
    assert_eq!(opts.get_document("parsed"), Ok(&Document::new()));
    let ping = raw_command(&server, doc! { "ping": 1, "$db": "admin" });
    assert_eq!(ping, doc! { "ok": 1.0 });
}

#[test]
fn the_binary_runs_standalone_with_a_flag() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mongo-testserver"))
        .args(["--port", "0", "--standalone"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut uri = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut uri)
        .unwrap();
    let uri = uri.trim().to_string();
    let hello = tokio::runtime::Runtime::new().unwrap().block_on(async {
        client_for(&uri)
            .await
            .database("admin")
            .run_command(doc! { "hello": 1 })
            .await
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(uri.ends_with("/?directConnection=true"), "{uri}");
    let hello = hello.unwrap();
    assert_eq!(hello.get_bool("isWritablePrimary"), Ok(true));
    assert!(!hello.contains_key("setName"), "{hello}");
}
