//! Malformed input on the wire: each bad connection is closed and logged,
//! the server never panics and keeps serving everyone else. These talk to
//! the test server itself (a real mongod's reaction is not under test).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use bson::doc;
use mongo_testserver::TestServer;

fn header(len: i32, op: i32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(len.to_le_bytes());
    v.extend(1i32.to_le_bytes());
    v.extend(0i32.to_le_bytes());
    v.extend(op.to_le_bytes());
    v
}

fn op_msg(body: &[u8]) -> Vec<u8> {
    let mut v = header(16 + 4 + 1 + body.len() as i32, 2013);
    v.extend(0u32.to_le_bytes());
    v.push(0);
    v.extend(body);
    v
}

fn bson_bytes(d: &bson::Document) -> Vec<u8> {
    let mut v = Vec::new();
    d.to_writer(&mut v).unwrap();
    v
}

/// The malformed messages, by name.
fn bad_inputs() -> Vec<(&'static str, Vec<u8>, bool)> {
    let mut bad_bson = bson_bytes(&doc! { "ping": 1, "$db": "admin" });
    let n = bad_bson.len();
    bad_bson[n - 1] = 7; // missing terminating NUL
    let mut wrong_inner_len = bson_bytes(&doc! { "ping": 1, "$db": "admin" });
    wrong_inner_len[0..4].copy_from_slice(&1000i32.to_le_bytes());
    vec![
        (
            "http request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            false,
        ),
        ("absurd length", header(i32::MAX, 2013), false),
        ("negative length", header(-5, 2013), false),
        (
            "unknown opcode",
            [header(20, 9999), vec![0; 4]].concat(),
            false,
        ),
        ("bad BSON", op_msg(&bad_bson), false),
        (
            "BSON length beyond message",
            op_msg(&wrong_inner_len),
            false,
        ),
        (
            "unknown section kind",
            [header(22, 2013), vec![0, 0, 0, 0, 9, 0]].concat(),
            false,
        ),
        // Header promises 100 bytes, the client sends 30 and stops writing.
        ("truncated", [header(100, 2013), vec![0; 14]].concat(), true),
    ]
}

#[test]
fn malformed_messages_close_only_that_connection() {
    let server = TestServer::start().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(common::client_for(&server.uri()));
    for (i, (name, bytes, half_close)) in bad_inputs().into_iter().enumerate() {
        let mut s = TcpStream::connect(server.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&bytes).unwrap();
        if half_close {
            s.shutdown(std::net::Shutdown::Write).unwrap();
        }
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("{name}: the server did not close the connection: {other:?}"),
        }
        assert_eq!(
            server.protocol_errors(),
            i as u64 + 1,
            "{name} was counted as a protocol error"
        );
        // Everyone else is still served.
        runtime
            .block_on(async {
                client
                    .database("admin")
                    .run_command(doc! { "ping": 1 })
                    .await
            })
            .unwrap_or_else(|e| panic!("after {name}: {e}"));
    }
}

#[test]
fn legacy_op_query_is_only_for_the_handshake() {
    let server = TestServer::start().unwrap();
    let query = |cmd: bson::Document| -> bson::Document {
        let mut body = Vec::new();
        body.extend(0i32.to_le_bytes());
        body.extend(b"admin.$cmd\0");
        body.extend(0i32.to_le_bytes());
        body.extend((-1i32).to_le_bytes());
        body.extend(bson_bytes(&cmd));
        let mut msg = header(16 + body.len() as i32, 2004);
        msg.extend(body);
        let mut s = TcpStream::connect(server.addr()).unwrap();
        s.write_all(&msg).unwrap();
        let mut head = [0u8; 16];
        s.read_exact(&mut head).unwrap();
        let len = i32::from_le_bytes(head[0..4].try_into().unwrap()) as usize;
        assert_eq!(
            i32::from_le_bytes(head[12..16].try_into().unwrap()),
            1,
            "OP_REPLY"
        );
        let mut rest = vec![0u8; len - 16];
        s.read_exact(&mut rest).unwrap();
        bson::Document::from_reader(&rest[20..]).unwrap()
    };
    let hello = query(doc! { "isMaster": 1, "helloOk": true });
    assert_eq!(hello.get_bool("ismaster"), Ok(true));
    assert_eq!(hello.get_bool("helloOk"), Ok(true));
    let refused = query(doc! { "find": "c" });
    assert_eq!(refused.get_i32("code"), Ok(352));
    assert_eq!(refused.get_str("codeName"), Ok("UnsupportedOpQueryCommand"));
}

#[test]
fn the_binary_logs_each_closed_connection() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mongo-testserver"))
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut uri = String::new();
    stdout.read_line(&mut uri).unwrap();
    let addr = uri
        .trim()
        .strip_prefix("mongodb://")
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no URI printed: {uri:?}"))
        .to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(&header(-1, 2013)).unwrap();
    let mut buf = [0u8; 8];
    let _ = s.read(&mut buf);
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.success(),
        "SIGTERM is a clean exit: {status:?}\n{err}"
    );
    assert!(
        err.contains("Closing connection") && err.contains("message length -1"),
        "{err}"
    );
}
