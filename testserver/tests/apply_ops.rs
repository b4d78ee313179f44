//! `applyOps` replays every form of oplog entry the server writes: a
//! database rebuilt from another's oplog ends up identical to it. This is
//! the mechanism point-in-time restore relies on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeMap;

use bson::{doc, Document};
use common::{code_of, Fixture};
use futures_util::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Database, IndexModel};

/// Everything a restore must reproduce, per collection: options, index
/// specs and documents (by `_id`).
async fn snapshot(db: &Database) -> BTreeMap<String, (Document, Vec<Document>, Vec<Document>)> {
    let specs: Vec<Document> = db
        .run_command(doc! { "listCollections": 1 })
        .await
        .unwrap()
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap()
        .iter()
        .map(|b| b.as_document().unwrap().clone())
        .collect();
    let mut out = BTreeMap::new();
    for spec in specs {
        let name = spec.get_str("name").unwrap().to_string();
        let options = spec.get_document("options").unwrap().clone();
        if spec.get_str("type") == Ok("view") || name == "system.views" {
            out.insert(name, (options, vec![], vec![]));
            continue;
        }
        let coll = db.collection::<Document>(&name);
        let mut indexes: Vec<Document> = coll
            .list_indexes()
            .await
            .unwrap()
            .try_collect::<Vec<IndexModel>>()
            .await
            .unwrap()
            .into_iter()
            .map(|m| bson::to_document(&m).unwrap())
            .collect();
        indexes.sort_by_key(|d| d.to_string());
        let docs: Vec<Document> = coll
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        out.insert(name, (options, indexes, docs));
    }
    out
}

/// What mongorestore does to an oplog entry before `applyOps`: aim it at
/// another database, drop the collection UUID (it names the source's
/// collection), and turn a two-phase index build into `createIndexes`.
fn retarget(entry: &Document, from: &str, to: &str) -> Vec<Document> {
    let mut e = entry.clone();
    e.remove("ui");
    let ns = e.get_str("ns").unwrap().replacen(from, to, 1);
    e.insert("ns", ns);
    if e.get_str("op") != Ok("c") {
        return vec![e];
    }
    let o = e.get_document("o").unwrap().clone();
    match o.keys().next().map(String::as_str) {
        Some("startIndexBuild" | "abortIndexBuild") => vec![],
        Some("commitIndexBuild") => {
            let coll = o.get_str("commitIndexBuild").unwrap();
            o.get_array("indexes")
                .unwrap()
                .iter()
                .map(|spec| {
                    let mut create = doc! { "createIndexes": coll };
                    create.extend(spec.as_document().unwrap().clone());
                    let mut c = e.clone();
                    c.insert("o", create);
                    c
                })
                .collect()
        }
        _ => vec![e],
    }
}

#[tokio::test]
async fn replaying_a_database_oplog_rebuilds_it_exactly() {
    let f = Fixture::new("replay_src").await;
    let src = &f.db;
    src.create_collection("ring")
        .capped(true)
        .size(16384)
        .await
        .unwrap();
    src.create_collection("checked")
        .validator(doc! { "qty": { "$gte": 0 } })
        .await
        .unwrap();
    src.create_collection("c_view")
        .view_on("c".to_string())
        .pipeline(vec![doc! { "$match": { "n": { "$gt": 5 } } }])
        .await
        .unwrap();
    let empty = src.collection::<Document>("indexed_while_empty");
    empty
        .create_index(IndexModel::builder().keys(doc! { "k": 1 }).build())
        .await
        .unwrap();
    empty.insert_one(doc! { "k": 1 }).await.unwrap();

    let c = src.collection::<Document>("c");
    c.insert_many((0..20).map(|i| {
        doc! { "_id": i, "n": i, "tags": ["x", "y"], "sub": { "a": i, "deep": { "z": [1, 2, 3] } } }
    }))
    .await
    .unwrap();
    c.create_index(
        IndexModel::builder()
            .keys(doc! { "n": -1, "sub.a": 1 })
            .options(
                IndexOptions::builder()
                    .unique(true)
                    .name("n_sub".to_string())
                    .build(),
            )
            .build(),
    )
    .await
    .unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "tags": 1 }).build())
        .await
        .unwrap();
    c.drop_index("tags_1").await.unwrap();
    let updates = [
        doc! { "$set": { "sub.deep.z.1": 20, "new.field": true } },
        doc! { "$unset": { "tags": "" } },
        doc! { "$inc": { "n": 100 }, "$mul": { "sub.a": 2 } },
        doc! { "$push": { "tags": { "$each": ["p", "q"] } } },
        doc! { "$pull": { "tags": "x" } },
        doc! { "$addToSet": { "tags": "z" } },
        doc! { "$rename": { "sub": "moved" } },
        doc! { "$min": { "n": -1 }, "$max": { "hi": 9 } },
        doc! { "$pop": { "sub.deep.z": 1 } },
        doc! { "$currentDate": { "touched": true } },
    ];
    for (i, u) in updates.iter().enumerate() {
        c.update_one(doc! { "_id": i as i32 }, u.clone())
            .await
            .unwrap();
    }
    c.update_many(doc! { "n": { "$gte": 15 } }, doc! { "$set": { "late": 1 } })
        .await
        .unwrap();
    c.replace_one(doc! { "_id": 12 }, doc! { "whole": "new", "n": 1000 })
        .await
        .unwrap();
    c.update_one(
        doc! { "_id": 99 },
        doc! { "$set": { "upserted": true, "n": 1001 } },
    )
    .upsert(true)
    .await
    .unwrap();
    c.delete_one(doc! { "_id": 13 }).await.unwrap();
    c.delete_many(doc! { "n": { "$in": [16, 17] } })
        .await
        .unwrap();
    let ring = src.collection::<Document>("ring");
    ring.insert_many((0..5).map(|i| doc! { "r": i }))
        .await
        .unwrap();
    let tmp = src.collection::<Document>("tmp");
    tmp.insert_one(doc! { "gone": true }).await.unwrap();
    tmp.drop().await.unwrap();

    let entries = f.oplog().await;
    let target = f.client.database(&f.target.unique_db("replay_dst"));
    let admin = f.client.database("admin");
    let (from, to) = (format!("{}.", src.name()), format!("{}.", target.name()));
    let mut applied = 0;
    for entry in &entries {
        for op in retarget(entry, &from, &to) {
            let reply = admin
                .run_command(doc! { "applyOps": [op.clone()] })
                .await
                .unwrap_or_else(|e| panic!("applyOps of {op} failed: {e}"));
            assert_eq!(reply.get_i32("applied"), Ok(1));
            applied += 1;
        }
    }
    assert!(
        applied > 40,
        "the oplog covered the whole history ({applied} entries)"
    );
    assert_eq!(snapshot(&target).await, snapshot(src).await);
    let _ = target.drop().await;
    f.finish().await;
}

#[tokio::test]
async fn apply_ops_follows_mongod_rules() {
    let f = Fixture::new("applyops_rules").await;
    let admin = f.client.database("admin");
    let ns = f.ns("c");
    f.db.collection::<Document>("c")
        .insert_one(doc! { "_id": 1, "a": 1 })
        .await
        .unwrap();

    // An update of a missing document upserts it (alwaysUpsert defaults to true).
    admin
        .run_command(doc! { "applyOps": [
            { "op": "u", "ns": &ns, "o": { "$v": 2, "diff": { "u": { "x": 1 } } }, "o2": { "_id": 7 } },
            { "op": "u", "ns": &ns, "o": { "_id": 8, "y": 2 }, "o2": { "_id": 8 } },
        ] })
        .await
        .unwrap();
    let c = f.db.collection::<Document>("c");
    assert_eq!(
        c.find_one(doc! { "_id": 7 }).await.unwrap(),
        Some(doc! { "_id": 7, "x": 1 })
    );
    assert_eq!(
        c.find_one(doc! { "_id": 8 }).await.unwrap(),
        Some(doc! { "_id": 8, "y": 2 })
    );
    let e = admin
        .run_command(doc! { "applyOps": [
            { "op": "u", "ns": &ns, "o": { "$v": 2, "diff": { "u": { "x": 1 } } }, "o2": { "_id": 70 } },
        ], "alwaysUpsert": false })
        .await;
    assert!(e.is_err(), "alwaysUpsert: false refuses to upsert");

    // Two-phase index build entries are refused, as mongod does.
    let e = admin
        .run_command(doc! { "applyOps": [
            { "op": "c", "ns": format!("{}.$cmd", f.db.name()), "o": { "startIndexBuild": "c", "indexes": [] } },
        ] })
        .await
        .unwrap_err();
    assert!(matches!(code_of(&e), Some(115) | Some(9)), "{e}");

    // A failing entry reports how many were applied before it.
    let e = admin
        .run_command(doc! { "applyOps": [
            { "op": "i", "ns": &ns, "o": { "_id": 50 } },
            { "op": "i", "ns": &ns, "o": { "_id": 1 } },
        ] })
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), Some(11000));
    assert_eq!(c.count_documents(doc! { "_id": 50 }).await.unwrap(), 1);
    f.finish().await;
}
