//! What the benchmarks share: running the real binary under GNU `time`,
//! the full-backup dataset, a local S3 server.

pub mod dataset;
pub mod s3;

use std::process::Command;
use std::time::Duration;

/// Runs the binary under GNU time; returns wall time, the binary's CPU
/// time and its peak RSS in KiB. (getrusage(RUSAGE_CHILDREN) would be
/// wrong here: Linux charges the parent's resident set, which holds the
/// whole dataset in the test server, to a child at exec.)
pub fn measure(args: &[&str]) -> (Duration, Duration, i64) {
    let out = Command::new("/usr/bin/time")
        .args([
            "-f",
            "BENCH %e %U %S %M",
            env!("CARGO_BIN_EXE_mongo-backupd"),
        ])
        .args(args)
        .output()
        .expect("/usr/bin/time (Debian package `time`) runs the measured command");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("BENCH "))
        .expect("GNU time's report");
    let f: Vec<f64> = line[6..]
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (
        Duration::from_secs_f64(f[0]),
        Duration::from_secs_f64(f[1] + f[2]),
        f[3] as i64,
    )
}

/// The bytes stored under `dir`, recursively.
#[allow(dead_code)] // each benchmark uses a part of the shared helpers
pub fn walk_size(dir: &std::path::Path) -> u64 {
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
