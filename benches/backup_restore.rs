//! Backup and restore throughput on a large dataset, per compression.
//!
//! Loads `BENCH_GIB` GiB (default 1) of realistic documents into an
//! in-process test server, then runs the real `mongo-backupd` binary as a
//! child process for each compression setting: a backup, and a restore into
//! a second test server. The child's CPU time and peak RSS come from GNU
//! `time`, so the server's work is not counted.
//! Run with `cargo bench --bench backup_restore`; figures go in
//! BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails loudly

mod common;

use std::time::Duration;

use bson::{doc, Document};
use common::measure;
use mongo_testserver::TestServer;

const WORDS: &[&str] = &[
    "backup", "restore", "oplog", "replica", "primary", "shard", "index", "cursor", "batch",
    "snapshot", "customer", "order", "invoice", "payment", "shipping", "address", "street", "city",
    "country", "status", "pending", "complete", "failed", "retry", "alpha", "bravo", "charlie",
    "delta", "echo", "foxtrot",
];

/// A small deterministic generator: the same dataset on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn words(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| WORDS[(self.next() % WORDS.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn document(i: i64, rng: &mut Rng) -> Document {
    doc! {
        "_id": i,
        "name": rng.words(2),
        "email": format!("user{}@example.com", rng.next() % 1_000_000),
        "age": (rng.next() % 90) as i32,
        "balance": (rng.next() % 1_000_000) as f64 / 100.0,
        "created": bson::DateTime::from_millis(1_600_000_000_000 + (rng.next() % 100_000_000_000) as i64),
        "tags": [rng.words(1), rng.words(1), rng.words(1)],
        "address": { "street": rng.words(3), "city": rng.words(1), "zip": format!("{:05}", rng.next() % 100_000) },
        "notes": rng.words(110),
        "token": format!("{:016x}{:016x}", rng.next(), rng.next()),
    }
}

fn main() {
    let gib: f64 = std::env::var("BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let target_bytes = (gib * 1024.0 * 1024.0 * 1024.0) as u64;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let source = TestServer::builder()
        .oplog_max_bytes(64 << 20)
        .noop_interval(None)
        .start()
        .unwrap();
    let (docs, bytes) = rt.block_on(async {
        let client = mongodb::Client::with_uri_str(source.uri()).await.unwrap();
        let coll = client.database("bench").collection::<Document>("people");
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut docs, mut bytes) = (0i64, 0u64);
        while bytes < target_bytes {
            let batch: Vec<Document> = (0..5000).map(|k| document(docs + k, &mut rng)).collect();
            bytes += batch
                .iter()
                .map(|d| bson::to_vec(d).unwrap().len() as u64)
                .sum::<u64>();
            docs += batch.len() as i64;
            coll.insert_many(batch).await.unwrap();
        }
        (docs, bytes)
    });
    let mib = bytes as f64 / (1024.0 * 1024.0);
    println!("dataset: {docs} documents, {mib:.0} MiB of BSON in one collection\n");
    println!("| compression | operation | wall s | documents/s | MiB/s | client CPU s | peak RSS MiB | stored MiB |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for compression in ["none", "gzip", "zstd"] {
        let store = tempfile::tempdir().unwrap();
        let (wall, cpu, rss) = measure(&[
            "backup",
            "--uri",
            &source.uri(),
            "--out",
            &store.path().display().to_string(),
            "--job",
            "bench",
            "--include",
            "bench",
            "--compression",
            compression,
        ]);
        let dir = std::fs::read_dir(store.path().join("bench"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let stored: u64 = walk_size(&dir);
        row(compression, "backup", wall, cpu, rss, docs, mib, stored);
        let target = TestServer::builder()
            .oplog_max_bytes(64 << 20)
            .noop_interval(None)
            .start()
            .unwrap();
        let (wall, cpu, rss) = measure(&[
            "restore",
            "--from",
            &dir.display().to_string(),
            "--to",
            &target.uri(),
        ]);
        row(compression, "restore", wall, cpu, rss, docs, mib, stored);
        drop(target);
    }
}

#[allow(clippy::too_many_arguments)]
fn row(
    compression: &str,
    op: &str,
    wall: Duration,
    cpu: Duration,
    rss_kib: i64,
    docs: i64,
    mib: f64,
    stored: u64,
) {
    let s = wall.as_secs_f64();
    println!(
        "| {compression} | {op} | {s:.1} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} |",
        docs as f64 / s,
        mib / s,
        cpu.as_secs_f64(),
        rss_kib as f64 / 1024.0,
        stored as f64 / (1024.0 * 1024.0)
    );
}

fn walk_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk_size(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}
