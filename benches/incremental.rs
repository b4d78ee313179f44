//! The cost of an incremental backup scales with the changes, not the data.
//!
//! For each dataset size (`BENCH_SIZES_MIB`, default "100,1024"): load the
//! data into an in-process test server, take a full backup, make 10,000
//! changes (updates, inserts, deletes), then take an incremental with the
//! real binary under GNU `time` and report its wall time, CPU and output.
//! Run with `cargo bench --bench incremental`; figures go in BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails loudly

mod common;

use bson::{doc, Document};
use common::measure;
use mongo_testserver::TestServer;

const CHANGES: i64 = 10_000;

fn main() {
    let sizes: Vec<u64> = std::env::var("BENCH_SIZES_MIB")
        .unwrap_or_else(|_| "100,1024".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!("| dataset MiB | documents | full backup s | incremental s | incremental CPU s | incremental peak RSS MiB | oplog entries | incremental stored KiB |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for mib in sizes {
        let server = TestServer::builder()
            .oplog_max_bytes(512 << 20)
            .noop_interval(None)
            .start()
            .unwrap();
        let pad = "p".repeat(1000);
        let docs = rt.block_on(async {
            let client = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
            let coll = client.database("bench").collection::<Document>("c");
            let target = mib * 1024 * 1024;
            let mut n = 0i64;
            while (n as u64) * 1030 < target {
                let batch: Vec<Document> = (n..n + 5000)
                    .map(|i| doc! { "_id": i, "v": 0, "pad": pad.clone() })
                    .collect();
                n += 5000;
                coll.insert_many(batch).await.unwrap();
            }
            n
        });
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(
            &cfg,
            format!(
                "[daemon]\nstate_dir = \"{0}/state\"\n[sources.s]\nuri = \"{1}\"\n[storage.l]\ntype = \"local\"\npath = \"{0}/b\"\n[jobs.full]\nsource = \"s\"\nstorage = \"l\"\nkind = \"full\"\nschedule = \"0 2 * * *\"\n[jobs.incr]\nsource = \"s\"\nstorage = \"l\"\nkind = \"incremental\"\nschedule = \"0 * * * *\"\n",
                dir.path().display(),
                server.uri()
            ),
        )
        .unwrap();
        let cfg = cfg.display().to_string();
        let (full, _, _) = measure(&["backup", "--config", &cfg, "--job", "full"]);
        rt.block_on(async {
            let client = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
            let coll = client.database("bench").collection::<Document>("c");
            for i in 0..CHANGES {
                match i % 3 {
                    0 => {
                        coll.update_one(doc! { "_id": i * 7 % docs }, doc! { "$inc": { "v": 1 } })
                            .await
                            .unwrap();
                    }
                    1 => {
                        coll.insert_one(doc! { "_id": docs + i, "v": 1 })
                            .await
                            .unwrap();
                    }
                    _ => {
                        coll.delete_one(doc! { "_id": i * 11 % docs })
                            .await
                            .unwrap();
                    }
                }
            }
        });
        let (inc, inc_cpu, inc_rss) = measure(&["backup", "--config", &cfg, "--job", "incr"]);
        let incr_dir = std::fs::read_dir(dir.path().join("b/incr"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(incr_dir.join("manifest.json")).unwrap())
                .unwrap();
        let entries = manifest["oplog"]["entries"].as_u64().unwrap();
        let stored: u64 = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["size"].as_u64().unwrap())
            .sum();
        println!(
            "| {mib} | {docs} | {:.1} | {:.2} | {:.2} | {:.0} | {entries} | {:.0} |",
            full.as_secs_f64(),
            inc.as_secs_f64(),
            inc_cpu.as_secs_f64(),
            inc_rss as f64 / 1024.0,
            stored as f64 / 1024.0
        );
    }
}
