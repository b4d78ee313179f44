//! The idle daemon's cost: resident memory with 10 scheduled jobs and the
//! CPU time it uses while nothing is due.
//!
//! Starts the real daemon with 10 jobs whose next run is hours away, lets
//! it idle for `IDLE_SECS` seconds (default 600), and reads its resident set
//! and CPU time from /proc. Run with `cargo bench --bench idle`; figures go
//! in BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails loudly

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mongo_testserver::TestServer;

fn proc_field(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// utime + stime in clock ticks (USER_HZ, 100 on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn main() {
    let secs: u64 = std::env::var("IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let server = TestServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = format!(
        "[daemon]\nstate_dir = \"{}\"\ncontrol_socket = \"{}\"\n\n[sources.prod]\nuri = \"{}\"\n\n[storage.local]\ntype = \"local\"\npath = \"{}\"\n",
        dir.path().join("state").display(),
        dir.path().join("control.sock").display(),
        server.uri(),
        dir.path().join("backups").display()
    );
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let now_hour = chrono::Utc::now()
        .format("%H")
        .to_string()
        .parse::<u32>()
        .unwrap();
    for i in 0..10 {
        // Daily jobs at least two hours away: nothing runs while we measure.
        let hour = (now_hour + 2 + i / 4) % 24;
        writeln!(
            cfg,
            "\n[jobs.job{i}]\nsource = \"prod\"\nstorage = \"local\"\nkind = \"full\"\nschedule = \"{} {hour} * * *\"",
            i * 5
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("config.toml"), cfg).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mongo-backupd"))
        .args(["run", "--config"])
        .arg(dir.path().join("config.toml"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(2)); // start-up done
    let (rss_start, cpu_start, t0) = (proc_field(pid, "VmRSS:"), cpu_ticks(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(secs));
    let (rss_end, hwm, cpu_end) = (
        proc_field(pid, "VmRSS:"),
        proc_field(pid, "VmHWM:"),
        cpu_ticks(pid),
    );
    let idle = t0.elapsed().as_secs_f64();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    println!("idle daemon, 10 scheduled jobs, {idle:.0} s idle:");
    println!(
        "  resident memory: {:.1} MiB at start, {:.1} MiB at the end, peak {:.1} MiB",
        rss_start as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!(
        "  CPU time while idle: {:.2} s",
        (cpu_end - cpu_start) as f64 / 100.0
    );
}
