//! Fault injection. `configureFailPoint` faults also work on a real
//! replica set started with `--setParameter enableTestCommands=1`; the
//! others need the test server and are skipped against MONGODB_TEST_URI.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::time::{Duration, Instant};

use bson::{doc, Document};
use common::{client_for, code_of, is_network, Fixture};
use futures_util::TryStreamExt;
use mongo_testserver::harness::skip_external;
use mongodb::error::ErrorKind;

async fn fail_point(f: &Fixture, mode: bson::Bson, data: Document) {
    f.client
        .database("admin")
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": mode, "data": data })
        .await
        .unwrap();
}

async fn fail_point_off(f: &Fixture) {
    fail_point(f, "off".into(), doc! {}).await;
}

#[tokio::test]
async fn fail_command_returns_the_error_code_n_times() {
    let f = Fixture::new("failcmd").await;
    let c = f.db.collection::<Document>("c");
    c.insert_one(doc! { "a": 1 }).await.unwrap();
    fail_point(
        &f,
        doc! { "times": 2 }.into(),
        doc! { "failCommands": ["find"], "errorCode": 13 },
    )
    .await;
    for _ in 0..2 {
        let e = c.find_one(doc! {}).await.unwrap_err();
        assert_eq!(code_of(&e), Some(13));
        let ErrorKind::Command(ce) = e.kind.as_ref() else {
            panic!("{e}")
        };
        assert_eq!(ce.code_name, "Unauthorized");
    }
    assert!(
        c.find_one(doc! {}).await.unwrap().is_some(),
        "the third find succeeds"
    );
    fail_point_off(&f).await;
    f.finish().await;
}

#[tokio::test]
async fn close_connection_gives_a_network_error() {
    let f = Fixture::new("closeconn").await;
    let uri = f.target.uri();
    let sep = if uri.contains('?') { '&' } else { '?' };
    let client = client_for(&format!("{uri}{sep}retryWrites=false")).await;
    let c = client.database(f.db.name()).collection::<Document>("c");
    c.insert_one(doc! { "a": 1 }).await.unwrap();
    fail_point(
        &f,
        doc! { "times": 1 }.into(),
        doc! { "failCommands": ["insert"], "closeConnection": true },
    )
    .await;
    let e = c.insert_one(doc! { "a": 2 }).await.unwrap_err();
    assert!(is_network(&e), "{e}");
    c.insert_one(doc! { "a": 3 }).await.unwrap();
    assert_eq!(c.count_documents(doc! {}).await.unwrap(), 2);
    fail_point_off(&f).await;
    f.finish().await;
}

#[tokio::test]
async fn block_connection_delays_the_reply() {
    let f = Fixture::new("block").await;
    fail_point(
        &f,
        doc! { "times": 1 }.into(),
        doc! { "failCommands": ["count"], "blockConnection": true, "blockTimeMS": 400 },
    )
    .await;
    let started = Instant::now();
    f.db.run_command(doc! { "count": "c" }).await.unwrap();
    // A lower bound only: the reply cannot come before the block ends.
    assert!(started.elapsed() >= Duration::from_millis(400));
    fail_point_off(&f).await;
    f.finish().await;
}

#[tokio::test]
async fn refused_connections_fail_server_selection_until_allowed() {
    let f = Fixture::new("refuse").await;
    let Some(server) = f.target.local() else {
        return skip_external("refused_connections_fail_server_selection_until_allowed");
    };
    server.refuse_connections(true);
    let fresh = client_for(&format!("{}&serverSelectionTimeoutMS=500", server.uri())).await;
    let e = fresh
        .database("x")
        .run_command(doc! { "ping": 1 })
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind.as_ref(), ErrorKind::ServerSelection { .. }),
        "{e}"
    );
    server.refuse_connections(false);
    let fresh = client_for(&format!("{}&serverSelectionTimeoutMS=5000", server.uri())).await;
    fresh
        .database("x")
        .run_command(doc! { "ping": 1 })
        .await
        .unwrap();
}

#[tokio::test]
async fn dropped_connections_surface_as_network_errors() {
    let f = Fixture::new("dropconn").await;
    let Some(server) = f.target.local() else {
        return skip_external("dropped_connections_surface_as_network_errors");
    };
    let client = client_for(&format!(
        "{}&retryWrites=false&retryReads=false",
        server.uri()
    ))
    .await;
    let c = client.database("d").collection::<Document>("c");
    c.insert_one(doc! { "a": 1 }).await.unwrap();
    server.drop_connections();
    // The pooled connection is dead; the first operation on it fails...
    let mut failures = 0;
    for _ in 0..3 {
        if let Err(e) = c.insert_one(doc! { "a": 2 }).await {
            assert!(
                is_network(&e)
                    || matches!(e.kind.as_ref(), ErrorKind::ConnectionPoolCleared { .. }),
                "{e}"
            );
            failures += 1;
        }
    }
    assert!(failures >= 1, "an operation saw the dropped connection");
    // ...and the pool recovers with new connections.
    c.insert_one(doc! { "a": 3 }).await.unwrap();
}

#[tokio::test]
async fn stopped_server_fails_then_restarts_with_its_data() {
    let f = Fixture::new("stop").await;
    let Some(server) = f.target.local() else {
        return skip_external("stopped_server_fails_then_restarts_with_its_data");
    };
    let client = client_for(&format!("{}&serverSelectionTimeoutMS=1000", server.uri())).await;
    let c = client.database("keep").collection::<Document>("c");
    c.insert_one(doc! { "_id": 1 }).await.unwrap();
    server.stop();
    assert!(!server.is_running());
    let e = c.find_one(doc! {}).await.unwrap_err();
    assert!(
        is_network(&e)
            || matches!(
                e.kind.as_ref(),
                ErrorKind::ServerSelection { .. } | ErrorKind::ConnectionPoolCleared { .. }
            ),
        "{e}"
    );
    server.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let doc = loop {
        match c.find_one(doc! {}).await {
            Ok(d) => break d,
            Err(e) if Instant::now() < deadline => {
                // The driver rediscovers the server on its own schedule.
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the restarted server was never reachable: {e}"),
        }
    };
    assert_eq!(doc, Some(doc! { "_id": 1 }));
}

#[tokio::test]
async fn server_stops_in_the_middle_of_a_cursor() {
    let f = Fixture::new("stopmid").await;
    let Some(server) = f.target.local() else {
        return skip_external("server_stops_in_the_middle_of_a_cursor");
    };
    let c = f.db.collection::<Document>("c");
    c.insert_many((0..100).map(|i| doc! { "_id": i }))
        .await
        .unwrap();
    server.stop_on("getMore", 1);
    let mut cursor = c.find(doc! {}).batch_size(10).await.unwrap();
    let mut got = 0;
    let err = loop {
        match cursor.try_next().await {
            Ok(Some(_)) => got += 1,
            Ok(None) => panic!("the cursor finished although the server stopped"),
            Err(e) => break e,
        }
    };
    assert_eq!(
        got, 20,
        "the first batch and one getMore arrived before the stop"
    );
    assert!(is_network(&err), "{err}");
    assert!(!server.is_running());
}
