//! The official Rust driver against the test server (or the replica set in
//! MONGODB_TEST_URI): CRUD, cursors, indexes, DDL and their error shapes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use bson::{doc, Bson, Document};
use common::{code_of, message_of, Fixture};
use futures_util::TryStreamExt;
use mongodb::options::{FindOptions, IndexOptions};
use mongodb::IndexModel;

#[tokio::test]
async fn crud_round_trip_with_result_shapes() {
    let f = Fixture::new("crud").await;
    let c = f.db.collection::<Document>("people");
    let docs: Vec<Document> = (0..10)
        .map(|i| doc! { "_id": i, "name": format!("p{i}"), "age": 20 + i, "tags": ["a", format!("t{}", i % 3)] })
        .collect();
    let r = c.insert_many(docs).await.unwrap();
    assert_eq!(r.inserted_ids.len(), 10);

    let found: Vec<Document> = c
        .find(doc! { "age": { "$gte": 25 }, "tags": "t1" })
        .sort(doc! { "age": -1 })
        .projection(doc! { "name": 1, "_id": 0 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(found, vec![doc! {"name": "p7"}]);

    let r = c
        .update_one(
            doc! { "_id": 3 },
            doc! { "$set": { "age": 99 }, "$inc": { "visits": 1 } },
        )
        .await
        .unwrap();
    assert_eq!((r.matched_count, r.modified_count), (1, 1));
    let r = c
        .update_one(doc! { "_id": 3 }, doc! { "$set": { "age": 99 } })
        .await
        .unwrap();
    assert_eq!(
        (r.matched_count, r.modified_count),
        (1, 0),
        "a no-op update modifies nothing"
    );
    let r = c
        .update_many(
            doc! { "age": { "$lt": 23 } },
            doc! { "$unset": { "tags": "" } },
        )
        .await
        .unwrap();
    assert_eq!((r.matched_count, r.modified_count), (3, 3));
    let r = c
        .update_one(
            doc! { "_id": 100, "name": "new" },
            doc! { "$set": { "age": 1 } },
        )
        .upsert(true)
        .await
        .unwrap();
    assert_eq!(r.upserted_id, Some(Bson::Int32(100)));
    assert_eq!(
        c.find_one(doc! { "_id": 100 }).await.unwrap().unwrap(),
        doc! { "_id": 100, "name": "new", "age": 1 }
    );
    let r = c
        .replace_one(doc! { "_id": 4 }, doc! { "replaced": true })
        .await
        .unwrap();
    assert_eq!(r.modified_count, 1);
    assert_eq!(
        c.find_one(doc! { "_id": 4 }).await.unwrap().unwrap(),
        doc! { "_id": 4, "replaced": true }
    );

    let r = c.delete_one(doc! { "age": { "$gte": 0 } }).await.unwrap();
    assert_eq!(r.deleted_count, 1);
    let r = c
        .delete_many(doc! { "name": { "$in": ["p5", "p6", "nobody"] } })
        .await
        .unwrap();
    assert_eq!(r.deleted_count, 2);
    assert_eq!(c.count_documents(doc! {}).await.unwrap(), 8);
    assert_eq!(c.estimated_document_count().await.unwrap(), 8);
    f.finish().await;
}

#[tokio::test]
async fn cursor_walks_many_batches_in_natural_order() {
    let f = Fixture::new("batches").await;
    let c = f.db.collection::<Document>("many");
    let docs: Vec<Document> = (0..1000).map(|i| doc! { "_id": i, "v": i * 2 }).collect();
    c.insert_many(docs).await.unwrap();
    let got: Vec<Document> = c
        .find(doc! {})
        .with_options(FindOptions::builder().batch_size(7).build())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.len(), 1000);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, d)| d.get_i32("_id") == Ok(i as i32)));
    let filtered: Vec<Document> = c
        .find(doc! { "v": { "$gt": 1990 } })
        .batch_size(2)
        .skip(1)
        .limit(3)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<i32> = filtered.iter().map(|d| d.get_i32("_id").unwrap()).collect();
    assert_eq!(ids, [997, 998, 999]);
    if let Some(server) = f.target.local() {
        assert_eq!(server.open_cursors(), 0, "exhausted cursors are closed");
    }
    f.finish().await;
}

#[tokio::test]
async fn duplicate_keys_report_the_real_error_shape() {
    let f = Fixture::new("dup").await;
    let c = f.db.collection::<Document>("users");
    c.insert_one(doc! { "_id": 1, "email": "a@x" })
        .await
        .unwrap();
    let e = c.insert_one(doc! { "_id": 1 }).await.unwrap_err();
    assert_eq!(code_of(&e), Some(11000));
    assert_eq!(
        message_of(&e),
        format!(
            "E11000 duplicate key error collection: {} index: _id_ dup key: {{ _id: 1 }}",
            f.ns("users")
        )
    );
    c.create_index(
        IndexModel::builder()
            .keys(doc! { "email": 1 })
            .options(IndexOptions::builder().unique(true).build())
            .build(),
    )
    .await
    .unwrap();
    let e = c
        .insert_one(doc! { "_id": 2, "email": "a@x" })
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), Some(11000));
    assert!(
        message_of(&e).contains("index: email_1 dup key: { email: \"a@x\" }"),
        "{}",
        message_of(&e)
    );
    let e = c
        .update_one(doc! { "_id": 1 }, doc! { "$set": { "_id": 5 } })
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), Some(66), "changing _id is ImmutableField");
    // Unordered inserts go on past a failure and report each one.
    let e = c
        .insert_many(vec![
            doc! { "_id": 1 },
            doc! { "_id": 10 },
            doc! { "_id": 1 },
        ])
        .ordered(false)
        .await
        .unwrap_err();
    let mongodb::error::ErrorKind::InsertMany(im) = e.kind.as_ref() else {
        panic!("{e}")
    };
    let idx: Vec<usize> = im
        .write_errors
        .as_ref()
        .unwrap()
        .iter()
        .map(|w| w.index)
        .collect();
    assert_eq!(idx, [0, 2]);
    assert_eq!(c.count_documents(doc! {}).await.unwrap(), 2);
    f.finish().await;
}

#[tokio::test]
async fn indexes_are_listed_created_and_dropped() {
    let f = Fixture::new("idx").await;
    let c = f.db.collection::<Document>("c");
    c.insert_one(doc! { "a": 1, "b": 2 }).await.unwrap();
    let names = c
        .create_indexes(vec![
            IndexModel::builder().keys(doc! { "a": 1, "b": -1 }).build(),
            IndexModel::builder()
                .keys(doc! { "b": 1 })
                .options(
                    IndexOptions::builder()
                        .unique(true)
                        .sparse(true)
                        .name("b_unique".to_string())
                        .build(),
                )
                .build(),
        ])
        .await
        .unwrap();
    assert_eq!(names.index_names, ["a_1_b_-1", "b_unique"]);
    let specs: Vec<IndexModel> = c.list_indexes().await.unwrap().try_collect().await.unwrap();
    let listed: Vec<(Document, bool)> = specs
        .iter()
        .map(|m| {
            (
                m.keys.clone(),
                m.options.as_ref().and_then(|o| o.unique).unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (doc! {"_id": 1}, false),
            (doc! {"a": 1, "b": -1}, false),
            (doc! {"b": 1}, true)
        ]
    );
    c.drop_index("a_1_b_-1").await.unwrap();
    let e = c.drop_index("nope").await.unwrap_err();
    assert_eq!(code_of(&e), Some(27), "IndexNotFound");
    assert_eq!(c.list_index_names().await.unwrap(), ["_id_", "b_unique"]);
    let e =
        f.db.collection::<Document>("missing")
            .list_index_names()
            .await
            .unwrap_err();
    assert_eq!(code_of(&e), Some(26), "NamespaceNotFound");
    f.finish().await;
}

#[tokio::test]
async fn collections_views_and_options_are_listed_as_created() {
    let f = Fixture::new("ddl").await;
    f.db.create_collection("capped")
        .capped(true)
        .size(65536)
        .max(100)
        .await
        .unwrap();
    f.db.create_collection("plain").await.unwrap();
    f.db.create_collection("validated")
        .validator(doc! { "$jsonSchema": { "required": ["name"] } })
        .await
        .unwrap();
    f.db.create_collection("adults")
        .view_on("plain".to_string())
        .pipeline(vec![doc! { "$match": { "age": { "$gte": 18 } } }])
        .await
        .unwrap();
    let e = f.db.create_collection("plain").await.unwrap_err();
    assert_eq!(code_of(&e), Some(48), "NamespaceExists");

    let mut names = f.db.list_collection_names().await.unwrap();
    names.sort();
    assert_eq!(
        names,
        ["adults", "capped", "plain", "system.views", "validated"]
    );
    let specs: Vec<Document> =
        f.db.run_command(doc! { "listCollections": 1 })
            .await
            .unwrap()
            .get_document("cursor")
            .unwrap()
            .get_array("firstBatch")
            .unwrap()
            .iter()
            .map(|b| b.as_document().unwrap().clone())
            .collect();
    let spec = |n: &str| {
        specs
            .iter()
            .find(|s| s.get_str("name") == Ok(n))
            .unwrap()
            .clone()
    };
    let capped = spec("capped");
    assert_eq!(capped.get_str("type").unwrap(), "collection");
    let opts = capped.get_document("options").unwrap();
    assert_eq!(opts.get_bool("capped"), Ok(true));
    assert!(
        matches!(capped.get_document("info").unwrap().get("uuid"), Some(Bson::Binary(b)) if b.bytes.len() == 16)
    );
    assert_eq!(
        capped
            .get_document("idIndex")
            .unwrap()
            .get_str("name")
            .unwrap(),
        "_id_"
    );
    assert!(spec("validated")
        .get_document("options")
        .unwrap()
        .contains_key("validator"));
    let view = spec("adults");
    assert_eq!(view.get_str("type").unwrap(), "view");
    assert_eq!(
        view.get_document("options")
            .unwrap()
            .get_str("viewOn")
            .unwrap(),
        "plain"
    );
    assert_eq!(
        view.get_document("info").unwrap().get_bool("readOnly"),
        Ok(true)
    );

    // A view is queried through its pipeline.
    let plain = f.db.collection::<Document>("plain");
    plain
        .insert_many(vec![
            doc! { "_id": 1, "age": 10 },
            doc! { "_id": 2, "age": 30 },
        ])
        .await
        .unwrap();
    let adults: Vec<Document> =
        f.db.collection::<Document>("adults")
            .find(doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
    assert_eq!(adults, vec![doc! { "_id": 2, "age": 30 }]);

    // Filtered listing and nameOnly.
    let only: Vec<String> =
        f.db.list_collection_names()
            .filter(doc! { "type": "view" })
            .await
            .unwrap();
    assert_eq!(only, ["adults"]);

    f.db.collection::<Document>("capped").drop().await.unwrap();
    f.db.collection::<Document>("never-existed")
        .drop()
        .await
        .unwrap();
    assert!(!f
        .db
        .list_collection_names()
        .await
        .unwrap()
        .contains(&"capped".to_string()));
    let dbs = f.client.list_database_names().await.unwrap();
    assert!(dbs.contains(&f.db.name().to_string()));
    f.db.drop().await.unwrap();
    let dbs = f.client.list_database_names().await.unwrap();
    assert!(!dbs.contains(&f.db.name().to_string()));
}

#[tokio::test]
async fn aggregate_and_count_commands() {
    let f = Fixture::new("agg").await;
    let c = f.db.collection::<Document>("sales");
    let docs: Vec<Document> = (1..=20)
        .map(|i| doc! { "_id": i, "qty": i, "kind": if i % 2 == 0 { "even" } else { "odd" } })
        .collect();
    c.insert_many(docs).await.unwrap();
    let out: Vec<Document> = c
        .aggregate(vec![
            doc! { "$match": { "kind": "even" } },
            doc! { "$group": { "_id": null, "total": { "$sum": "$qty" }, "n": { "$sum": 1 } } },
        ])
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].get("total"), Some(&Bson::Int32(110)));
    assert_eq!(out[0].get("n"), Some(&Bson::Int32(10)));
    let out: Vec<Document> = c
        .aggregate(vec![
            doc! { "$sort": { "qty": -1 } },
            doc! { "$skip": 2 },
            doc! { "$limit": 3 },
            doc! { "$project": { "qty": 1, "_id": 0 } },
        ])
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![doc! {"qty": 18}, doc! {"qty": 17}, doc! {"qty": 16}]
    );
    let n =
        f.db.run_command(doc! { "count": "sales", "query": { "qty": { "$lte": 5 } } })
            .await
            .unwrap();
    assert_eq!(n.get_i32("n"), Ok(5));
    let counted: Vec<Document> = c
        .aggregate(vec![
            doc! { "$match": { "qty": { "$gt": 15 } } },
            doc! { "$count": "big" },
        ])
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(counted, vec![doc! { "big": 5 }]);
    f.finish().await;
}

#[tokio::test]
async fn unknown_commands_and_bad_arguments_fail_like_mongod() {
    let f = Fixture::new("unknown").await;
    let e =
        f.db.run_command(doc! { "frobnicate": 1 })
            .await
            .unwrap_err();
    assert_eq!(code_of(&e), Some(59));
    assert_eq!(message_of(&e), "no such command: 'frobnicate'");
    let e =
        f.db.run_command(doc! { "find": "c", "filter": { "a": { "$bogus": 1 } } })
            .await
            .unwrap_err();
    assert_eq!(
        code_of(&e),
        Some(2),
        "BadValue for an unknown query operator"
    );
    let e =
        f.db.run_command(doc! { "getMore": 12345i64, "collection": "c" })
            .await
            .unwrap_err();
    assert_eq!(code_of(&e), Some(43), "CursorNotFound");
    let hello = f.db.run_command(doc! { "hello": 1 }).await.unwrap();
    assert_eq!(hello.get_bool("isWritablePrimary"), Ok(true));
    assert!(hello.get_str("setName").is_ok());
    assert!(
        hello.get_i32("maxWireVersion").unwrap() >= 9,
        "4.4 or newer"
    );
    assert!(hello.contains_key("$clusterTime") && hello.contains_key("operationTime"));
    let info = f.db.run_command(doc! { "buildInfo": 1 }).await.unwrap();
    assert!(info.get_str("version").is_ok());
    let status = f
        .client
        .database("admin")
        .run_command(doc! { "replSetGetStatus": 1 })
        .await
        .unwrap();
    assert_eq!(status.get_i32("myState"), Ok(1));
    f.finish().await;
}

#[tokio::test]
async fn several_servers_in_one_process_are_independent() {
    let a = mongo_testserver::TestServer::start().unwrap();
    let b = mongo_testserver::TestServer::start().unwrap();
    assert_ne!(a.uri(), b.uri());
    let ca = common::client_for(&a.uri()).await;
    let cb = common::client_for(&b.uri()).await;
    ca.database("d")
        .collection::<Document>("c")
        .insert_one(doc! { "_id": 1 })
        .await
        .unwrap();
    assert_eq!(
        ca.database("d")
            .collection::<Document>("c")
            .count_documents(doc! {})
            .await
            .unwrap(),
        1
    );
    assert!(!cb
        .list_database_names()
        .await
        .unwrap()
        .contains(&"d".to_string()));
    let addr = a.addr();
    drop(a);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "a dropped server frees its port"
    );
    cb.database("admin")
        .run_command(doc! { "ping": 1 })
        .await
        .unwrap();
}
