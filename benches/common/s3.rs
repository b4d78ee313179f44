//! A local S3 server for benchmarks: `s3s-fs` (the server the object-store
//! tests use, see tests/common/objstore.rs) over a directory, started on a
//! free port with its own key pair. Benchmarks also read its CPU time, so
//! they can tell the server's share of an upload from the client's.

#![allow(dead_code)] // each benchmark uses a part of the shared helpers

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bucket the server starts with.
pub const BUCKET: &str = "backups";
const INSTALL: &str = "cargo install s3s-fs --locked --version 0.14.1 --features binary";

/// A running s3s-fs, killed on drop.
pub struct S3Server {
    child: Child,
    port: u16,
    root: PathBuf,
    key_id_file: PathBuf,
    secret_file: PathBuf,
}

/// `$MONGO_BACKUPD_S3S_FS`, else `s3s-fs` on PATH, else in ~/.cargo/bin.
fn program() -> PathBuf {
    if let Some(p) = std::env::var_os("MONGO_BACKUPD_S3S_FS") {
        return PathBuf::from(p);
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("s3s-fs"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("s3s-fs not found; install it with `{INSTALL}`"))
}

impl S3Server {
    /// Starts the server with its data, keys and log under `dir`.
    pub fn start(dir: &Path) -> S3Server {
        let root = dir.join("data");
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        let key_id_file = dir.join("access_key_id");
        let secret_file = dir.join("secret_access_key");
        std::fs::write(&key_id_file, "AKBENCH\n").unwrap();
        std::fs::write(&secret_file, "s3s-bench-secret\n").unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.join("s3s-fs.log")).unwrap();
        let child = Command::new(program())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--access-key",
                "AKBENCH",
                "--secret-key",
                "s3s-bench-secret",
            ])
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            // It logs every request at info level otherwise.
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run s3s-fs ({e}); install it with `{INSTALL}`"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen on {port}");
            std::thread::sleep(Duration::from_millis(25));
        }
        S3Server {
            child,
            port,
            root,
            key_id_file,
            secret_file,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `[storage.NAME]` for this server with the default part size.
    pub fn toml_section(&self, name: &str) -> String {
        format!(
            "[storage.{name}]\ntype = \"s3\"\nbucket = \"{BUCKET}\"\n\
             endpoint = \"http://127.0.0.1:{}\"\nregion = \"us-east-1\"\nallow_http = true\n\
             access_key_id_file = \"{}\"\nsecret_access_key_file = \"{}\"\n",
            self.port,
            self.key_id_file.display(),
            self.secret_file.display()
        )
    }

    /// Deletes every object (s3s-fs keeps them as files under its root), so
    /// the next copy uploads everything again.
    pub fn empty_bucket(&self) {
        for entry in std::fs::read_dir(&self.root).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
        std::fs::create_dir_all(self.root.join(BUCKET)).unwrap();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// utime + stime of a process, from /proc (USER_HZ ticks, 100 a second on
/// Linux: 10 ms resolution).
pub fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}
