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

use common::{dataset, measure, walk_size};
use mongo_testserver::TestServer;

fn main() {
    let target_bytes = dataset::target_bytes();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let source = TestServer::builder()
        .oplog_max_bytes(64 << 20)
        .noop_interval(None)
        .start()
        .unwrap();
    let (docs, bytes) = rt.block_on(dataset::load(&source.uri(), target_bytes));
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
