//! What encryption and an object-store copy cost, against the full-backup
//! figures: on the dataset of `backup_restore.rs` (1 GiB, 980,000
//! documents), full backups with compression none and zstd, each without
//! and with age encryption to one X25519 recipient; zstd and age alone on
//! one core, on the bytes those backups stored; the encrypted zstd
//! backup copied to a local S3 server (s3s-fs) through the daemon's own
//! copy code (`backup::copies::sync_copies`); `verify` without and with
//! decryption; and (once) a restore without and with decryption.
//!
//! The machine this runs on is shared, so single runs lie: the variants
//! are interleaved (each round runs every variant, in an order rotated
//! from round to round) and the median of `BENCH_ROUNDS` rounds (default
//! 5) is reported with the range. Backups, verifies and restores run the
//! real binary under GNU `time` (see `common::measure`); the copy runs in
//! this process, so its CPU time is this process's, and the server's is
//! read from /proc.
//!
//! Run with `cargo bench --bench copies_encryption` (`BENCH_GIB=0.05
//! BENCH_ROUNDS=1` for a quick check, `BENCH_RESTORE=0` to skip the
//! restores); figures go in BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails loudly

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{dataset, measure, s3, walk_size};
use mongo_backupd::storage::crypt::{self, Recipients};
use mongo_testserver::TestServer;

/// The backup variants: job name, compression, encrypted.
const BACKUPS: [(&str, &str, bool); 4] = [
    ("none", "none", false),
    ("none-age", "none", true),
    ("zstd", "zstd", false),
    ("zstd-age", "zstd", true),
];
/// The backup that is copied and read back decrypted.
const ENCRYPTED: &str = "zstd-age";
/// Its unencrypted twin, read back for comparison.
const PLAIN: &str = "zstd";

/// One measurement.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    /// The client's CPU (the binary, or this process for the copy).
    cpu: Duration,
    /// s3s-fs's CPU, for the copy.
    server_cpu: Option<Duration>,
    rss_kib: Option<i64>,
    stored: u64,
}

fn from_measure((wall, cpu, rss): (Duration, Duration, i64), stored: u64) -> Sample {
    Sample {
        wall,
        cpu,
        server_cpu: None,
        rss_kib: Some(rss),
        stored,
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rounds: usize = env_or("BENCH_ROUNDS", 5);
    let restores = env_or::<u8>("BENCH_RESTORE", 1) != 0;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let source = TestServer::builder()
        .oplog_max_bytes(64 << 20)
        .noop_interval(None)
        .start()
        .unwrap();
    let started = Instant::now();
    let (docs, bytes) = rt.block_on(dataset::load(&source.uri(), dataset::target_bytes()));
    let mib = bytes as f64 / (1024.0 * 1024.0);
    println!(
        "dataset: {docs} documents, {mib:.0} MiB of BSON in one collection (loaded in {:.0} s)",
        started.elapsed().as_secs_f64()
    );

    let work = tempfile::tempdir().unwrap();
    let server = s3::S3Server::start(&work.path().join("s3"));
    let key = work.path().join("backup-key.txt");
    let (secret, public) = crypt::generate();
    std::fs::write(&key, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir_all(work.path().join("state")).unwrap();
    let config = write_config(work.path(), &source.uri(), &public, &server);
    let recipients = Recipients::parse(std::slice::from_ref(&public)).unwrap();
    let mut cfg = mongo_backupd::config::load(&config).unwrap();
    // Only in this process: the measured `backup` runs must not copy.
    // (Retention at a location judges the jobs that copy there, so the
    // configuration itself must say it, not just the job passed along.)
    cfg.jobs.get_mut(ENCRYPTED).unwrap().copies = vec!["offsite".into()];
    let config = config.display().to_string();
    let key = key.display().to_string();

    let mut samples: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    let mut record = |name: String, s: Sample| {
        println!(
            "  {name:<28} {:>6.1} s  cpu {:>5.1} s{}",
            s.wall.as_secs_f64(),
            s.cpu.as_secs_f64(),
            s.server_cpu
                .map(|c| format!("  server cpu {:.1} s", c.as_secs_f64()))
                .unwrap_or_default()
        );
        samples.entry(name).or_default().push(s);
    };
    for round in 0..rounds {
        println!("round {}/{rounds}", round + 1);
        let mut dirs = BTreeMap::new();
        for k in 0..BACKUPS.len() {
            let (job, _, _) = BACKUPS[(k + round) % BACKUPS.len()];
            let m = measure(&["backup", "--config", &config, "--job", job]);
            let dir = backup_dir(work.path(), job);
            let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
            assert_eq!(
                manifest.contains("\"encryption\""),
                job.ends_with("-age"),
                "{job}: {manifest}"
            );
            record(format!("backup {job}"), from_measure(m, walk_size(&dir)));
            dirs.insert(job, dir);
        }
        let bson = dirs["none"].join("bench/people.bson");
        let zst = dirs[PLAIN].join("bench/people.bson.zst");
        for (name, sample) in transform_costs(&bson, &zst, &recipients) {
            record(name, sample);
        }
        let stored = walk_size(&dirs[ENCRYPTED]);
        record(
            format!("copy {ENCRYPTED} to S3"),
            copy_to_s3(&rt, &cfg, &server, stored),
        );
        let plain = dirs[PLAIN].display().to_string();
        let encrypted = dirs[ENCRYPTED].display().to_string();
        let verifies: [(String, Vec<&str>); 2] = [
            (format!("verify {PLAIN}"), vec!["verify", &plain]),
            (
                format!("verify --decrypt {ENCRYPTED}"),
                vec!["verify", "--decrypt", &key, &encrypted],
            ),
        ];
        for k in 0..verifies.len() {
            let (name, args) = &verifies[(k + round) % verifies.len()];
            record(name.clone(), from_measure(measure(args), 0));
        }
        if restores && round + 1 == rounds {
            for (name, args) in [
                (format!("restore {PLAIN}"), vec!["--from", &plain]),
                (
                    format!("restore --identity {ENCRYPTED}"),
                    vec!["--from", &encrypted, "--identity", &key],
                ),
            ] {
                let target = TestServer::builder()
                    .oplog_max_bytes(64 << 20)
                    .noop_interval(None)
                    .start()
                    .unwrap();
                let uri = target.uri();
                let mut all = vec!["restore", "--to", &uri];
                all.extend(args);
                record(name, from_measure(measure(&all), 0));
                drop(target);
            }
        }
        for (job, _, _) in BACKUPS {
            std::fs::remove_dir_all(work.path().join("backups").join(job).join(job)).unwrap();
        }
        server.empty_bucket();
    }
    report(&samples, docs, mib, rounds);
}

/// The two transformations alone, on one core, in this process (its test
/// server is idle meanwhile): zstd level 3 and age over the collection's
/// BSON as the unencrypted, uncompressed backup stored it, and age over
/// the zstd backup's compressed file: what each costs per byte, without
/// the database, the disk or the other variants' noise.
fn transform_costs(bson: &Path, zst: &Path, recipients: &Recipients) -> Vec<(String, Sample)> {
    let timed = |f: &dyn Fn()| {
        let (cpu0, t0) = (s3::cpu_time("self"), Instant::now());
        f();
        (t0.elapsed(), s3::cpu_time("self") - cpu0)
    };
    let encrypt = |path: &Path| {
        let mut w = crypt::encrypt(recipients, std::io::sink()).unwrap();
        std::io::copy(&mut std::fs::File::open(path).unwrap(), &mut w).unwrap();
        w.finish().unwrap();
    };
    let compress = || {
        let mut w = zstd::stream::write::Encoder::new(std::io::sink(), 3).unwrap();
        std::io::copy(&mut std::fs::File::open(bson).unwrap(), &mut w).unwrap();
        w.finish().unwrap();
    };
    [
        ("zstd level 3 of the BSON (1 core)", &compress as &dyn Fn()),
        ("age of the BSON (1 core)", &|| encrypt(bson)),
        ("age of the zstd output (1 core)", &|| encrypt(zst)),
    ]
    .into_iter()
    .map(|(name, f)| {
        let (wall, cpu) = timed(f);
        let sample = Sample {
            wall,
            cpu,
            server_cpu: None,
            rss_kib: None,
            stored: 0,
        };
        (name.to_string(), sample)
    })
    .collect()
}

/// The configuration: one local storage per job, so no backup ever sees
/// another variant's as the chain to bridge from, and the S3 server as
/// storage "offsite" (default part size, 16 MiB).
fn write_config(work: &Path, uri: &str, recipient: &str, server: &s3::S3Server) -> PathBuf {
    let mut text = format!(
        "[daemon]\nstate_dir = \"{}\"\n\n[sources.bench]\nuri = \"{uri}\"\n\n{}\n",
        work.join("state").display(),
        server.toml_section("offsite")
    );
    for (job, compression, encrypted) in BACKUPS {
        text.push_str(&format!(
            "[storage.{job}]\ntype = \"local\"\npath = \"{}\"\n\n\
             [jobs.{job}]\nsource = \"bench\"\nstorage = \"{job}\"\nkind = \"full\"\n\
             schedule = \"0 2 * * *\"\ninclude = [\"bench\"]\ncompression = \"{compression}\"\n{}\n",
            work.join("backups").join(job).display(),
            if encrypted {
                format!("encrypt_to = [\"{recipient}\"]\n")
            } else {
                String::new()
            }
        ));
    }
    let path = work.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The one backup of `job` (the benchmark keeps one per job at a time).
fn backup_dir(work: &Path, job: &str) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(work.join("backups").join(job).join(job))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// Copies the encrypted backup to the S3 server the way the daemon does
/// after a backup of a job with `copies = ["offsite"]`.
fn copy_to_s3(
    rt: &tokio::runtime::Runtime,
    cfg: &mongo_backupd::config::Config,
    server: &s3::S3Server,
    stored: u64,
) -> Sample {
    let job = &cfg.jobs[ENCRYPTED];
    let server_pid = server.pid().to_string();
    let (cpu0, server0, t0) = (
        s3::cpu_time("self"),
        s3::cpu_time(&server_pid),
        Instant::now(),
    );
    let reports = rt.block_on(mongo_backupd::backup::copies::sync_copies(
        cfg,
        job,
        chrono::Utc::now(),
    ));
    let wall = t0.elapsed();
    let (cpu, server_cpu) = (
        s3::cpu_time("self") - cpu0,
        s3::cpu_time(&server_pid) - server0,
    );
    assert!(
        reports.len() == 1 && reports[0].error.is_none() && reports[0].copied.len() == 1,
        "{reports:?}"
    );
    Sample {
        wall,
        cpu,
        server_cpu: Some(server_cpu),
        rss_kib: None,
        stored,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn report(samples: &BTreeMap<String, Vec<Sample>>, docs: i64, mib: f64, rounds: usize) {
    println!("\n{rounds} rounds; medians, wall-time range in brackets; documents/s and MiB/s are of the dataset ({mib:.0} MiB of BSON)\n");
    println!("| operation | runs | wall s | documents/s | MiB/s | client CPU s | server CPU s | peak RSS MiB | stored MiB |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut notes = Vec::new();
    let order = BACKUPS
        .iter()
        .map(|(job, _, _)| format!("backup {job}"))
        .chain([
            "zstd level 3 of the BSON (1 core)".to_string(),
            "age of the BSON (1 core)".to_string(),
            "age of the zstd output (1 core)".to_string(),
            format!("copy {ENCRYPTED} to S3"),
            format!("verify {PLAIN}"),
            format!("verify --decrypt {ENCRYPTED}"),
            format!("restore {PLAIN}"),
            format!("restore --identity {ENCRYPTED}"),
        ]);
    for name in order {
        let Some(s) = samples.get(&name) else {
            continue;
        };
        let walls: Vec<f64> = s.iter().map(|x| x.wall.as_secs_f64()).collect();
        let (lo, hi) = walls
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), &w| (lo.min(w), hi.max(w)));
        let wall = median(walls);
        let cpu = median(s.iter().map(|x| x.cpu.as_secs_f64()).collect());
        let server = s
            .iter()
            .filter_map(|x| x.server_cpu)
            .map(|c| c.as_secs_f64())
            .collect::<Vec<_>>();
        let server = if server.is_empty() {
            "-".to_string()
        } else {
            format!("{:.1}", median(server))
        };
        let rss = s
            .iter()
            .filter_map(|x| x.rss_kib)
            .max()
            .map(|k| format!("{:.0}", k as f64 / 1024.0))
            .unwrap_or_else(|| "-".into());
        let stored = s.iter().map(|x| x.stored).max().unwrap_or(0);
        let stored = if stored == 0 {
            "-".to_string()
        } else {
            format!("{:.0}", stored as f64 / (1024.0 * 1024.0))
        };
        let range = if s.len() > 1 {
            format!(" ({lo:.1}-{hi:.1})")
        } else {
            String::new()
        };
        println!(
            "| {name} | {} | {wall:.1}{range} | {:.0} | {:.1} | {cpu:.1} | {server} | {rss} | {stored} |",
            s.len(),
            docs as f64 / wall,
            mib / wall,
        );
        if name.starts_with("copy ") {
            let up = s.iter().map(|x| x.stored).max().unwrap_or(0) as f64 / (1024.0 * 1024.0);
            notes.push(format!(
                "The copy uploads {up:.0} MiB (the stored, compressed and encrypted bytes): {:.1} MiB/s of stored bytes.",
                up / wall
            ));
        }
    }
    for note in notes {
        println!("\n{note}");
    }
}
