//! The full-backup benchmark's dataset, for benchmarks that must be
//! compared with its figures: the same generator, the same seed, so the
//! same documents byte for byte (980,000 documents, 1024 MiB at 1 GiB).

#![allow(dead_code)] // each benchmark uses a part of the shared helpers

use bson::{doc, Document};

const WORDS: &[&str] = &[
    "backup", "restore", "oplog", "replica", "primary", "shard", "index", "cursor", "batch",
    "snapshot", "customer", "order", "invoice", "payment", "shipping", "address", "street", "city",
    "country", "status", "pending", "complete", "failed", "retry", "alpha", "bravo", "charlie",
    "delta", "echo", "foxtrot",
];

/// The seed of every published figure.
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

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

/// `BENCH_GIB` (default 1) in bytes.
pub fn target_bytes() -> u64 {
    let gib: f64 = std::env::var("BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    (gib * 1024.0 * 1024.0 * 1024.0) as u64
}

/// Inserts documents into `bench.people` at `uri` until they hold
/// `target_bytes` of BSON, in batches of 5000 as `backup_restore.rs`
/// does; returns the documents and bytes inserted.
pub async fn load(uri: &str, target_bytes: u64) -> (i64, u64) {
    let client = mongodb::Client::with_uri_str(uri).await.unwrap();
    let coll = client.database("bench").collection::<Document>("people");
    let mut rng = Rng(SEED);
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
    client.shutdown().await;
    (docs, bytes)
}
