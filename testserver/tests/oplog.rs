//! The oplog as the backup tool reads it: entry shapes after each kind of
//! write, tailable awaitData cursors, and capped rollover.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::time::Duration;

use bson::{doc, Bson, Document, Timestamp};
use common::{code_of, Fixture};
use futures_util::TryStreamExt;
use mongo_testserver::TestServer;
use mongodb::options::CursorType;
use mongodb::IndexModel;

fn ts(e: &Document) -> Timestamp {
    match e.get("ts") {
        Some(Bson::Timestamp(t)) => *t,
        other => panic!("ts is not a Timestamp: {other:?}"),
    }
}

#[tokio::test]
async fn every_kind_of_write_is_logged_in_mongod_form() {
    let f = Fixture::new("oplog").await;
    let c = f.db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 1, "a": 1, "sub": { "x": 1 } })
        .await
        .unwrap();
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "a": 2 } })
        .await
        .unwrap();
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "sub.y": 5 } })
        .await
        .unwrap();
    c.update_one(doc! { "_id": 1 }, doc! { "$unset": { "a": "" } })
        .await
        .unwrap();
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "a": 2 } })
        .await
        .unwrap();
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "sub.x": 1 } })
        .await
        .unwrap(); // no-op: not logged
    c.replace_one(doc! { "_id": 1 }, doc! { "b": 1 })
        .await
        .unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "b": 1 }).build())
        .await
        .unwrap();
    c.delete_one(doc! { "_id": 1 }).await.unwrap();
    c.drop().await.unwrap();

    let log = f.oplog().await;
    let ns = f.ns("c");
    let cmd_ns = format!("{}.$cmd", f.db.name());
    let summary: Vec<(String, String)> = log
        .iter()
        .map(|e| {
            (
                e.get_str("op").unwrap().to_string(),
                e.get_str("ns").unwrap().to_string(),
            )
        })
        .collect();
    let ops: Vec<&str> = summary.iter().map(|(op, _)| op.as_str()).collect();
    // create, insert, 4 updates, replacement, two-phase index build, delete, drop
    assert_eq!(
        ops,
        ["c", "i", "u", "u", "u", "u", "u", "c", "c", "d", "c"],
        "{log:#?}"
    );

    assert_eq!(log[0].get_str("ns").unwrap(), cmd_ns);
    assert_eq!(
        log[0].get_document("o").unwrap().get_str("create").unwrap(),
        "c"
    );

    let ins = &log[1];
    assert_eq!(ins.get_str("ns").unwrap(), ns);
    assert_eq!(
        ins.get_document("o").unwrap(),
        &doc! { "_id": 1, "a": 1, "sub": { "x": 1 } }
    );
    assert!(
        matches!(ins.get("ui"), Some(Bson::Binary(b)) if b.subtype == bson::spec::BinarySubtype::Uuid)
    );
    assert_eq!(ins.get("v"), Some(&Bson::Int64(2)));
    assert!(matches!(ins.get("t"), Some(Bson::Int64(_))));
    assert!(matches!(ins.get("wall"), Some(Bson::DateTime(_))));

    let diffs: Vec<&Document> = log[2..6]
        .iter()
        .map(|e| e.get_document("o").unwrap())
        .collect();
    assert_eq!(diffs[0], &doc! { "$v": 2, "diff": { "u": { "a": 2 } } });
    assert_eq!(
        diffs[1],
        &doc! { "$v": 2, "diff": { "ssub": { "i": { "y": 5 } } } }
    );
    assert_eq!(diffs[2], &doc! { "$v": 2, "diff": { "d": { "a": false } } });
    assert_eq!(diffs[3], &doc! { "$v": 2, "diff": { "i": { "a": 2 } } });
    for e in &log[2..7] {
        assert_eq!(e.get_document("o2").unwrap(), &doc! { "_id": 1 });
    }
    assert_eq!(
        log[6].get_document("o").unwrap(),
        &doc! { "_id": 1, "b": 1 }
    );

    let start = log[7].get_document("o").unwrap();
    let commit = log[8].get_document("o").unwrap();
    assert_eq!(start.get_str("startIndexBuild").unwrap(), "c");
    assert_eq!(commit.get_str("commitIndexBuild").unwrap(), "c");
    let spec = commit.get_array("indexes").unwrap()[0]
        .as_document()
        .unwrap();
    assert_eq!(spec.get_document("key").unwrap(), &doc! { "b": 1 });
    assert_eq!(spec.get_str("name").unwrap(), "b_1");

    assert_eq!(log[9].get_document("o").unwrap(), &doc! { "_id": 1 });
    assert_eq!(
        log[10].get_document("o").unwrap().get_str("drop").unwrap(),
        "c"
    );

    for pair in log.windows(2) {
        assert!(ts(&pair[0]) < ts(&pair[1]), "ts strictly increases");
    }
    f.finish().await;
}

#[tokio::test]
async fn tailable_await_cursor_sees_new_writes() {
    let f = Fixture::new("tail").await;
    let c = f.db.collection::<Document>("events");
    c.insert_one(doc! { "_id": 0 }).await.unwrap();
    let start = ts(f.oplog().await.last().unwrap());
    let oplog = f
        .client
        .database("local")
        .collection::<Document>("oplog.rs");
    let mut cursor = oplog
        .find(doc! { "ts": { "$gt": start }, "ns": f.ns("events") })
        .cursor_type(CursorType::TailableAwait)
        .max_await_time(Duration::from_millis(300))
        .await
        .unwrap();
    let writer = {
        let c = c.clone();
        tokio::spawn(async move {
            for i in 1..=3 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                c.insert_one(doc! { "_id": i }).await.unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    let read = async {
        while seen.len() < 3 {
            // An empty awaitData batch is not the end: the cursor stays open.
            if let Some(e) = cursor.try_next().await.unwrap() {
                seen.push(e.get_document("o").unwrap().get_i32("_id").unwrap());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the tailing cursor saw all three inserts");
    writer.await.unwrap();
    assert_eq!(seen, [1, 2, 3]);
    f.finish().await;
}

async fn lose_position(
    c: &mongodb::Collection<Document>,
    writes: usize,
    pad: usize,
) -> mongodb::error::Error {
    let mut cursor = c
        .find(doc! {})
        .cursor_type(CursorType::Tailable)
        .batch_size(1)
        .await
        .unwrap();
    assert!(cursor.try_next().await.unwrap().is_some());
    let filler = "x".repeat(pad);
    for i in 0..writes {
        c.insert_one(doc! { "i": i as i64, "pad": filler.clone() })
            .await
            .unwrap();
    }
    loop {
        match cursor.try_next().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a tailable cursor ended instead of losing its position"),
            Err(e) => return e,
        }
    }
}

#[tokio::test]
async fn capped_collection_rollover_gives_capped_position_lost() {
    let f = Fixture::new("capped").await;
    f.db.create_collection("ring")
        .capped(true)
        .size(8192)
        .await
        .unwrap();
    let ring = f.db.collection::<Document>("ring");
    for i in 0..5 {
        ring.insert_one(doc! { "seed": i }).await.unwrap();
    }
    let e = lose_position(&ring, 200, 200).await;
    assert_eq!(code_of(&e), Some(136), "{e}");
    f.finish().await;
}

#[tokio::test]
async fn small_oplog_rolls_over_under_a_tailing_reader() {
    let server = TestServer::builder()
        .oplog_max_bytes(32 * 1024)
        .start()
        .unwrap();
    let client = common::client_for(&server.uri()).await;
    let oplog = client.database("local").collection::<Document>("oplog.rs");
    let mut cursor = oplog
        .find(doc! {})
        .cursor_type(CursorType::Tailable)
        .batch_size(1)
        .await
        .unwrap();
    assert!(cursor.try_next().await.unwrap().is_some());
    let c = client.database("burst").collection::<Document>("c");
    let pad = "y".repeat(500);
    for i in 0..200 {
        c.insert_one(doc! { "i": i, "pad": pad.clone() })
            .await
            .unwrap();
    }
    let e = loop {
        match cursor.try_next().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("cursor ended"),
            Err(e) => break e,
        }
    };
    assert_eq!(code_of(&e), Some(136), "{e}");
    let first: Document = oplog.find_one(doc! {}).await.unwrap().unwrap();
    assert_ne!(
        first
            .get_document("o")
            .ok()
            .and_then(|o| o.get_str("msg").ok()),
        Some("initiating set"),
        "the oldest entries fell off"
    );
}
