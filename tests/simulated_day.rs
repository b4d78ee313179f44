//! A compressed "day": fulls and incrementals taken while a writer keeps
//! changing the source, then restores to 20 random instants across the
//! covered window. Each restore must equal the source's state at that
//! instant, computed independently by replaying the source's own oplog up
//! to the instant into a scratch database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::time::Duration;

use bson::{doc, Document};
use chrono::{DateTime, Utc};
use common::{client, request, snapshot, state_at};
use mongo_backupd::backup;
use mongo_backupd::catalog::BackupKind;
use mongo_backupd::restore::pitr::{self, At};
use mongo_backupd::restore::{NsMapper, RestoreOptions};
use mongo_backupd::storage::Compression;
use mongo_testserver::harness::Target;
use mongo_testserver::TestServer;
use tokio_util::sync::CancellationToken;

/// A small deterministic generator, so a failure can be reproduced.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test]
async fn restores_to_twenty_instants_equal_the_source_at_each() {
    let source = Target::new().unwrap();
    let db = source.unique_db("day");
    let c = client(&source.uri()).await;
    c.database(&db)
        .collection::<Document>("orders")
        .insert_many((0..200).map(|i| doc! { "_id": i, "qty": 1 }))
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let writer = {
        let (c, db, stop) = (c.clone(), db.clone(), stop.clone());
        tokio::spawn(async move {
            let mut rng = Rng(42);
            let orders = c.database(&db).collection::<Document>("orders");
            let events = c.database(&db).collection::<Document>("events");
            let mut n = 1000i64;
            while !stop.is_cancelled() {
                let id = (rng.next() % 400) as i64;
                match rng.next() % 4 {
                    0 => {
                        let _ = orders.insert_one(doc! { "_id": n, "qty": 1 }).await;
                        n += 1;
                    }
                    1 => {
                        orders
                            .update_one(
                                doc! { "_id": id },
                                doc! { "$inc": { "qty": 1 }, "$set": { "touched": n } },
                            )
                            .await
                            .unwrap();
                    }
                    2 => {
                        orders.delete_one(doc! { "_id": id }).await.unwrap();
                    }
                    _ => {
                        events.insert_one(doc! { "n": n }).await.unwrap();
                    }
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };
    let store = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let full_req = request(&source.uri(), &db, store.path(), Compression::zstd(1));
    let mut incr_req = full_req.clone();
    incr_req.kind = BackupKind::Incremental;
    incr_req.job = "test-incr".into();
    // Two chains: a full, incrementals, a second full, more incrementals.
    let mut first_t1: Option<DateTime<Utc>> = None;
    for step in 0..10 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let req = if step == 0 || step == 5 {
            &full_req
        } else {
            &incr_req
        };
        let out = backup::run(req, &cancel, Utc::now()).await.unwrap();
        first_t1.get_or_insert(out.manifest.oplog_end.unwrap().to_datetime());
    }
    stop.cancel();
    writer.await.unwrap();
    let last_end = mongo_backupd::backup::incremental::chain_tip(store.path(), "test")
        .unwrap()
        .unwrap()
        .end
        .to_datetime();
    let first = first_t1.unwrap();
    assert!(
        (last_end - first).num_seconds() >= 4,
        "the window spans several seconds"
    );

    let mut rng = Rng(7);
    // The last second is only partly covered (oplog times are seconds).
    let span = (last_end - first).num_seconds() as u64 - 1;
    for k in 0..20 {
        let at = first + chrono::Duration::seconds((rng.next() % (span + 1)) as i64);
        let oracle_db = source.unique_db("oracle");
        let ts = bson::Timestamp {
            time: at.timestamp() as u32,
            increment: u32::MAX,
        };
        let expected = state_at(&c, &db, &oracle_db, ts).await;
        let (server, uri, to, mapper) = match source.local() {
            Some(_) => {
                let s = TestServer::start().unwrap();
                let uri = s.uri();
                (Some(s), uri, db.clone(), NsMapper::default())
            }
            None => {
                let to = source.unique_db("day_to");
                let m =
                    NsMapper::new(&[], &[], &[format!("{db}.*")], &[format!("{to}.*")]).unwrap();
                (None, source.uri(), to, m)
            }
        };
        let opts = RestoreOptions {
            from: mongo_backupd::storage::BackupFiles::local(""),
            uri: uri.clone(),
            drop: false,
            namespaces: mapper,
            dry_run: false,
            no_indexes: false,
            oplog_replay: true,
            connect_timeout: Duration::from_secs(10),
        };
        pitr::run(
            &mongo_backupd::storage::Location::local_dir(store.path()),
            "test",
            At::Time(at),
            &opts,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        let got = snapshot(&client(&uri).await.database(&to)).await;
        for (name, (_, _, docs)) in &expected {
            let restored = got.get(name).map(|g| &g.2);
            assert_eq!(
                restored,
                Some(docs),
                "restore #{k} to {at}: {name} differs from the source at that instant"
            );
        }
        let _ = c.database(&oracle_db).drop().await;
        if server.is_none() {
            let _ = c.database(&to).drop().await;
        }
    }
    let _ = c.database(&db).drop().await;
}
