//! Real object-storage servers for integration tests, so object-store code
//! is tested against the protocols it will meet in production rather than
//! a mock: `s3s-fs` (an S3 server over a local directory, from the s3s
//! project) and Azurite's blob service (Microsoft's Azure Storage
//! emulator).
//!
//! ```ignore
//! let s3 = S3Server::start();                    // free port, bucket "backups"
//! let loc = s3.storage_location("offsite", "pre/", 1 << 20);
//! let azure = Azurite::start();                  // free port, container "backups"
//! let section = azure.toml_section("offsite");   // `[storage.offsite]` for a config file
//! ```
//!
//! Install them once: `cargo install s3s-fs --locked --version 0.14.1
//! --features binary` and `npm install -g azurite`; the environment
//! variables `MONGO_BACKUPD_S3S_FS` and `MONGO_BACKUPD_AZURITE_BLOB` name
//! other binaries.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly by design

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use mongo_backupd::config::{
    Backend, ObjectService, ObjectSettings, SecretSource, StorageLocation,
};
use sha2::Sha256;
use tempfile::TempDir;

pub const S3S_INSTALL: &str = "cargo install s3s-fs --locked --version 0.14.1 --features binary";
pub const AZURITE_INSTALL: &str = "npm install -g azurite";

/// Azurite's well-known development account and key (published by
/// Microsoft; Azurite accepts only these by default).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The bucket (S3) or container (Azure) every server starts with.
pub const BUCKET: &str = "backups";

/// Request timeout of the locations the helpers build: short enough that a
/// test against a stopped server ends quickly, long enough for a loaded
/// CI machine.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a server may take to accept connections (Azurite is a node
/// program and starts in a second or two).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop()` waits after SIGTERM before it kills.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `restart()` keeps trying to bind the same port.
const REBIND_TIMEOUT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(25);

/// What the object-store tests need from either server, so each test is
/// written once and run against both.
pub trait ObjectServer {
    /// "s3" or "azure" (the `type` of the TOML section).
    fn kind(&self) -> &'static str;
    /// The bucket or container.
    fn bucket(&self) -> &str;
    fn endpoint(&self) -> String;
    /// A location with the server's credentials (read from files through
    /// `SecretSource::File`), `prefix` ("" or ending in "/") and
    /// `part_size`, with a [`TEST_TIMEOUT`] request timeout.
    fn storage_location(&self, name: &str, prefix: &str, part_size: u64) -> StorageLocation;
    /// The same with `secret` instead of the right secret key / account key.
    fn storage_location_with_secret(
        &self,
        name: &str,
        prefix: &str,
        part_size: u64,
        secret: &str,
    ) -> StorageLocation;
    /// `[storage.NAME]` with prefix "mongo-backupd/" and part_size "1MiB".
    fn toml_section(&self, name: &str) -> String;
    /// How the object `full_key` (with the location's prefix) is stored,
    /// as the server sees it: `Some(0)` for one PUT, `Some(n)` for a
    /// multipart upload of `n` parts, `None` when it does not exist.
    fn stored_parts(&self, full_key: &str) -> Option<usize>;
    /// Multipart uploads started but neither completed nor aborted, where
    /// the server shows them (s3s-fs; Azure discards uncommitted blocks
    /// itself, so Azurite reports none).
    fn open_uploads(&self) -> Vec<String>;
    fn stop(&mut self);
    /// Stop (if running) and start again on the same port with the same data.
    fn restart(&mut self);
    /// The server's output so far, for failure messages.
    fn log(&self) -> String;
}

// ---------------------------------------------------------------------------
// Shared process handling
// ---------------------------------------------------------------------------

/// A server child process: its port, where its stderr and stdout go, and
/// how it is started (again).
struct Proc {
    name: &'static str,
    install: &'static str,
    program: PathBuf,
    /// Arguments before the port is known; `{port}` is replaced.
    args: Vec<String>,
    port: u16,
    log_path: PathBuf,
    child: Option<Child>,
}

enum SpawnError {
    /// The process exited before it listened (e.g. the port was taken).
    Exited(String),
    Other(String),
}

impl Proc {
    fn new(
        name: &'static str,
        install: &'static str,
        program: PathBuf,
        args: Vec<String>,
        log_path: PathBuf,
    ) -> Proc {
        Proc {
            name,
            install,
            program,
            args,
            port: 0,
            log_path,
            child: None,
        }
    }

    /// Starts on a free port, trying another one if the chosen port was
    /// taken between choosing and binding it.
    fn start_on_free_port(&mut self) {
        let mut last = String::new();
        for _ in 0..5 {
            match self.spawn(free_port()) {
                Ok(()) => return,
                Err(SpawnError::Exited(msg)) => last = msg,
                Err(SpawnError::Other(msg)) => panic!("{msg}"),
            }
        }
        panic!("{last}");
    }

    fn spawn(&mut self, port: u16) -> Result<(), SpawnError> {
        let log_start = fs::metadata(&self.log_path).map(|m| m.len()).unwrap_or(0);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open server log");
        let args: Vec<String> = self
            .args
            .iter()
            .map(|a| a.replace("{port}", &port.to_string()))
            .collect();
        let mut child = Command::new(&self.program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone log handle")))
            .stderr(Stdio::from(log))
            // s3s-fs logs every request at info level otherwise.
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({}): {e}; install it with `{}`",
                    self.program.display(),
                    self.name,
                    self.install
                )
            });
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("poll server") {
                return Err(SpawnError::Exited(self.failure(
                    &format!("exited before it listened on port {port} ({status})"),
                    log_start,
                )));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                self.port = port;
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SpawnError::Other(self.failure(
                    &format!("did not listen on port {port} within {READY_TIMEOUT:?}"),
                    log_start,
                )));
            }
            thread::sleep(POLL);
        }
    }

    fn failure(&self, what: &str, log_start: u64) -> String {
        let log = self.log();
        let this_run = log
            .get(usize::try_from(log_start).unwrap_or(0)..)
            .unwrap_or(&log);
        format!(
            "{} ({} {}) {what}\n--- its output\n{}",
            self.name,
            self.program.display(),
            self.args.join(" "),
            tail(this_run, 40)
        )
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// SIGTERM, wait, SIGKILL if it takes too long.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if child.try_wait().expect("poll server").is_some() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if wait_deadline(&mut child, STOP_TIMEOUT).is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + REBIND_TIMEOUT;
        loop {
            match self.spawn(self.port) {
                Ok(()) => return,
                Err(SpawnError::Exited(msg)) => {
                    assert!(
                        Instant::now() < deadline,
                        "could not restart on port {} within {REBIND_TIMEOUT:?}: {msg}",
                        self.port
                    );
                    thread::sleep(Duration::from_millis(100));
                }
                Err(SpawnError::Other(msg)) => panic!("{msg}"),
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}

fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The binary: `$env_var`, else `name` on PATH, else in `extra_dirs`;
/// panics with the install command when there is none.
fn find_binary(env_var: &str, name: &str, extra_dirs: &[PathBuf], install: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{env_var}={} does not exist; unset it or install the server with `{install}`",
            path.display()
        );
        return path;
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in path_dirs.iter().chain(extra_dirs) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "{name} not found (looked at ${env_var}, PATH and {}): the object-store tests run \
         the real server; install it with `{install}`",
        extra_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn cargo_bin_dir() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs
}

fn npm_bin_dir() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(out) = Command::new("npm")
        .args(["prefix", "-g"])
        .stderr(Stdio::null())
        .output()
    {
        let prefix = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !prefix.is_empty() {
            dirs.push(PathBuf::from(prefix).join("bin"));
        }
    }
    dirs.push(PathBuf::from("/usr/local/bin"));
    dirs
}

fn write_secret(dir: &Path, name: &str, value: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("{value}\n")).expect("write secret file");
    path
}

/// A TOML basic string.
fn toml_str(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn object_settings(service: ObjectService, prefix: &str, part_size: u64) -> ObjectSettings {
    let mut settings = ObjectSettings::new(service);
    settings.prefix = prefix.to_string();
    settings.part_size = part_size;
    settings.timeout = TEST_TIMEOUT;
    settings
}

// ---------------------------------------------------------------------------
// s3s-fs
// ---------------------------------------------------------------------------

/// A running `s3s-fs` on 127.0.0.1 with a fresh data directory, an access
/// key pair and the bucket [`BUCKET`]. Killed on drop.
pub struct S3Server {
    proc: Proc,
    /// Data root (a bucket is a directory in it), secret files and the log.
    dir: TempDir,
    access_key: String,
    secret_key: String,
    access_key_file: PathBuf,
    secret_key_file: PathBuf,
}

impl S3Server {
    pub fn start() -> S3Server {
        let program = find_binary(
            "MONGO_BACKUPD_S3S_FS",
            "s3s-fs",
            &cargo_bin_dir(),
            S3S_INSTALL,
        );
        let dir = tempfile::Builder::new()
            .prefix("s3s-fs-")
            .tempdir()
            .expect("create s3s-fs temp dir");
        let root = dir.path().join("data");
        // s3s-fs serves every directory under its root as a bucket.
        fs::create_dir_all(root.join(BUCKET)).expect("create bucket directory");
        let access_key = format!("AKTEST{}", std::process::id());
        let secret_key = format!("s3s-secret-{:x}", rand_u64());
        let access_key_file = write_secret(dir.path(), "access_key_id", &access_key);
        let secret_key_file = write_secret(dir.path(), "secret_access_key", &secret_key);
        let args = vec![
            "--host".to_string(),
            "127.0.0.1".to_string(),
            "--port".to_string(),
            "{port}".to_string(),
            "--access-key".to_string(),
            access_key.clone(),
            "--secret-key".to_string(),
            secret_key.clone(),
            root.display().to_string(),
        ];
        let mut proc = Proc::new(
            "s3s-fs",
            S3S_INSTALL,
            program,
            args,
            dir.path().join("s3s-fs.log"),
        );
        proc.start_on_free_port();
        S3Server {
            proc,
            dir,
            access_key,
            secret_key,
            access_key_file,
            secret_key_file,
        }
    }

    pub fn bucket(&self) -> &str {
        BUCKET
    }

    pub fn port(&self) -> u16 {
        self.proc.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.proc.port)
    }

    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    pub fn access_key_file(&self) -> &Path {
        &self.access_key_file
    }

    pub fn secret_key_file(&self) -> &Path {
        &self.secret_key_file
    }

    /// The data root: `root_dir()/BUCKET/KEY` is an object's file.
    pub fn root_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Files of multipart uploads that were neither completed nor aborted
    /// (s3s-fs keeps `.upload_id-*` files in its root while an upload is
    /// open).
    pub fn open_uploads(&self) -> Vec<String> {
        fs::read_dir(self.root_dir())
            .expect("read s3s-fs root")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with(".upload_id-"))
            .collect()
    }

    /// How the object `full_key` (with the location's prefix) was stored:
    /// `Some(0)` for a single PUT, `Some(n)` for a multipart upload of `n`
    /// parts (s3s-fs records the ETag, `md5-of-md5s-N` for multipart, in
    /// an internal file), `None` when it does not exist.
    pub fn stored_parts(&self, full_key: &str) -> Option<usize> {
        let b64url = |s: &str| {
            base64_encode(s.as_bytes())
                .trim_end_matches('=')
                .replace('+', "-")
                .replace('/', "_")
        };
        let info = self.root_dir().join(format!(
            ".bucket-{}.object-{}.internal.json",
            b64url(BUCKET),
            b64url(full_key)
        ));
        if !self.root_dir().join(BUCKET).join(full_key).is_file() {
            return None;
        }
        let Ok(text) = fs::read_to_string(&info) else {
            return Some(0);
        };
        let json: serde_json::Value = serde_json::from_str(&text).expect("s3s-fs internal info");
        let e_tag = json["e_tag"].as_str().unwrap_or_default();
        Some(
            e_tag
                .rsplit_once('-')
                .and_then(|(_, n)| n.parse().ok())
                .unwrap_or(0),
        )
    }

    pub fn stop(&mut self) {
        self.proc.stop();
    }

    pub fn restart(&mut self) {
        self.proc.restart();
    }

    pub fn log(&self) -> String {
        self.proc.log()
    }

    fn location(&self, name: &str, prefix: &str, part_size: u64, secret: &Path) -> StorageLocation {
        let service = ObjectService::S3 {
            bucket: BUCKET.to_string(),
            region: Some("us-east-1".to_string()),
            endpoint: Some(self.endpoint()),
            allow_http: true,
            virtual_hosted_style: false,
            access_key_id: Some(SecretSource::File(self.access_key_file.clone())),
            secret_access_key: Some(SecretSource::File(secret.to_path_buf())),
        };
        StorageLocation::new(
            name,
            Backend::Object(object_settings(service, prefix, part_size)),
        )
    }

    /// A location with this server's credentials (secret files), `prefix`
    /// ("" or ending in "/") and `part_size`, with a [`TEST_TIMEOUT`]
    /// request timeout. (Also through [`ObjectServer`].)
    pub fn storage_location(&self, name: &str, prefix: &str, part_size: u64) -> StorageLocation {
        self.location(name, prefix, part_size, &self.secret_key_file)
    }

    /// `[storage.NAME]` with prefix "mongo-backupd/" and part_size "1MiB".
    pub fn toml_section(&self, name: &str) -> String {
        self.toml_section_with(name, "mongo-backupd/", "1MiB")
    }

    /// `[storage.NAME]` with `prefix` and `part_size` (e.g. "1MiB").
    pub fn toml_section_with(&self, name: &str, prefix: &str, part_size: &str) -> String {
        format!(
            "[storage.{name}]\n\
             type = \"s3\"\n\
             bucket = {bucket}\n\
             endpoint = {endpoint}\n\
             region = \"us-east-1\"\n\
             allow_http = true\n\
             access_key_id_file = {id}\n\
             secret_access_key_file = {secret}\n\
             prefix = {prefix}\n\
             part_size = {part_size}\n",
            bucket = toml_str(BUCKET),
            endpoint = toml_str(&self.endpoint()),
            id = toml_str(&self.access_key_file.display().to_string()),
            secret = toml_str(&self.secret_key_file.display().to_string()),
            prefix = toml_str(prefix),
            part_size = toml_str(part_size),
        )
    }
}

impl ObjectServer for S3Server {
    fn kind(&self) -> &'static str {
        "s3"
    }

    fn bucket(&self) -> &str {
        BUCKET
    }

    fn endpoint(&self) -> String {
        S3Server::endpoint(self)
    }

    fn storage_location(&self, name: &str, prefix: &str, part_size: u64) -> StorageLocation {
        S3Server::storage_location(self, name, prefix, part_size)
    }

    fn storage_location_with_secret(
        &self,
        name: &str,
        prefix: &str,
        part_size: u64,
        secret: &str,
    ) -> StorageLocation {
        let file = write_secret(self.dir.path(), "other_secret_access_key", secret);
        self.location(name, prefix, part_size, &file)
    }

    fn toml_section(&self, name: &str) -> String {
        S3Server::toml_section(self, name)
    }

    fn stored_parts(&self, full_key: &str) -> Option<usize> {
        S3Server::stored_parts(self, full_key)
    }

    fn open_uploads(&self) -> Vec<String> {
        S3Server::open_uploads(self)
    }

    fn stop(&mut self) {
        S3Server::stop(self);
    }

    fn restart(&mut self) {
        S3Server::restart(self);
    }

    fn log(&self) -> String {
        S3Server::log(self)
    }
}

// ---------------------------------------------------------------------------
// Azurite
// ---------------------------------------------------------------------------

/// A running Azurite blob service on 127.0.0.1 with a fresh workspace and
/// the container [`BUCKET`] in the development account. Killed on drop.
pub struct Azurite {
    proc: Proc,
    /// Azurite's workspace (`--location`), the key file and the log.
    dir: TempDir,
    key_file: PathBuf,
}

impl Azurite {
    pub fn start() -> Azurite {
        let program = find_binary(
            "MONGO_BACKUPD_AZURITE_BLOB",
            "azurite-blob",
            &npm_bin_dir(),
            AZURITE_INSTALL,
        );
        let dir = tempfile::Builder::new()
            .prefix("azurite-")
            .tempdir()
            .expect("create Azurite temp dir");
        let workspace = dir.path().join("workspace");
        fs::create_dir_all(&workspace).expect("create Azurite workspace");
        let key_file = write_secret(dir.path(), "access_key", AZURITE_KEY);
        let args = vec![
            "--blobHost".to_string(),
            "127.0.0.1".to_string(),
            "--blobPort".to_string(),
            "{port}".to_string(),
            "--location".to_string(),
            workspace.display().to_string(),
            "--silent".to_string(),
            // object_store may speak a newer API version than this Azurite.
            "--skipApiVersionCheck".to_string(),
            "--disableTelemetry".to_string(),
        ];
        let mut proc = Proc::new(
            "azurite-blob",
            AZURITE_INSTALL,
            program,
            args,
            dir.path().join("azurite.log"),
        );
        proc.start_on_free_port();
        let server = Azurite {
            proc,
            dir,
            key_file,
        };
        server.create_container(BUCKET);
        server
    }

    pub fn account(&self) -> &str {
        AZURITE_ACCOUNT
    }

    pub fn container(&self) -> &str {
        BUCKET
    }

    /// The container, under the name generic test code uses.
    pub fn bucket(&self) -> &str {
        BUCKET
    }

    pub fn port(&self) -> u16 {
        self.proc.port
    }

    /// `http://127.0.0.1:PORT/devstoreaccount1` (the account is in the
    /// path, as Azurite expects).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.proc.port)
    }

    /// The account key (Azure has no separate key id).
    pub fn access_key(&self) -> &str {
        AZURITE_KEY
    }

    /// The same account key: it is the only secret.
    pub fn secret_key(&self) -> &str {
        AZURITE_KEY
    }

    pub fn access_key_file(&self) -> &Path {
        &self.key_file
    }

    /// Azurite's workspace directory.
    pub fn root_dir(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    pub fn stop(&mut self) {
        self.proc.stop();
    }

    pub fn restart(&mut self) {
        self.proc.restart();
    }

    pub fn log(&self) -> String {
        self.proc.log()
    }

    /// Creates a container (Create Container, signed with the account key).
    pub fn create_container(&self, name: &str) {
        // Right after the port opens Azurite may still be loading its
        // database; retry briefly.
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let (status, body) =
                self.request("PUT", &format!("/{name}"), &[("restype", "container")]);
            if status == 201 || status == 409 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Azurite did not create container {name}: HTTP {status}\n{body}\n--- its output\n{}",
                tail(&self.log(), 40)
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// How many committed blocks the blob `name` (full name in the
    /// container) has: 0 for a blob written in one Put Blob, the number of
    /// parts for one written by a multipart upload; `None` when it does
    /// not exist.
    pub fn committed_blocks(&self, name: &str) -> Option<usize> {
        // Get Block List answers for a blob that has only uncommitted
        // blocks (an aborted upload) too, so ask whether it exists first.
        match self.request("HEAD", &format!("/{BUCKET}/{name}"), &[]) {
            (200, _) => {}
            (404, _) => return None,
            (status, body) => panic!("Get Blob Properties of {name}: HTTP {status}\n{body}"),
        }
        let (status, body) = self.request(
            "GET",
            &format!("/{BUCKET}/{name}"),
            &[("blocklisttype", "committed"), ("comp", "blocklist")],
        );
        match status {
            200 => Some(body.matches("<Block>").count()),
            404 => None,
            other => panic!("Get Block List of {name}: HTTP {other}\n{body}"),
        }
    }

    /// One request to the blob service with SharedKey authorization and an
    /// empty body; `query` sorted by name. Returns the status and body.
    fn request(&self, method: &str, path: &str, query: &[(&str, &str)]) -> (u16, String) {
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let version = "2021-08-06";
        let url_path = format!("/{AZURITE_ACCOUNT}{path}");
        let mut resource = format!("/{AZURITE_ACCOUNT}{url_path}");
        for (k, v) in query {
            let _ = write!(resource, "\n{k}:{v}");
        }
        // Verb, then the standard headers (all empty here, Content-Length
        // too because it is 0), then x-ms-* headers, then the resource.
        let string_to_sign = format!(
            "{method}\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}"
        );
        let key = base64_decode(AZURITE_KEY);
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key");
        mac.update(string_to_sign.as_bytes());
        let signature = base64_encode(&mac.finalize().into_bytes());
        let query_string: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let request = format!(
            "{method} {url_path}{}{} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-ms-date: {date}\r\n\
             x-ms-version: {version}\r\nAuthorization: SharedKey {AZURITE_ACCOUNT}:{signature}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n",
            if query.is_empty() { "" } else { "?" },
            query_string.join("&"),
            port = self.proc.port,
        );
        let mut stream = match TcpStream::connect(("127.0.0.1", self.proc.port)) {
            Ok(stream) => stream,
            Err(e) => return (0, format!("connect: {e}")),
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set read timeout");
        if let Err(e) = stream.write_all(request.as_bytes()) {
            return (0, format!("send: {e}"));
        }
        let mut response = Vec::new();
        if let Err(e) = stream.read_to_end(&mut response) {
            return (0, format!("receive: {e}"));
        }
        let text = String::from_utf8_lossy(&response).to_string();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    fn location(&self, name: &str, prefix: &str, part_size: u64, key: &Path) -> StorageLocation {
        let service = ObjectService::Azure {
            account: AZURITE_ACCOUNT.to_string(),
            container: BUCKET.to_string(),
            endpoint: Some(self.endpoint()),
            allow_http: true,
            access_key: Some(SecretSource::File(key.to_path_buf())),
        };
        StorageLocation::new(
            name,
            Backend::Object(object_settings(service, prefix, part_size)),
        )
    }

    /// A location with this server's credentials (secret files), `prefix`
    /// ("" or ending in "/") and `part_size`, with a [`TEST_TIMEOUT`]
    /// request timeout. (Also through [`ObjectServer`].)
    pub fn storage_location(&self, name: &str, prefix: &str, part_size: u64) -> StorageLocation {
        self.location(name, prefix, part_size, &self.key_file)
    }

    /// `[storage.NAME]` with prefix "mongo-backupd/" and part_size "1MiB".
    pub fn toml_section(&self, name: &str) -> String {
        self.toml_section_with(name, "mongo-backupd/", "1MiB")
    }

    /// `[storage.NAME]` with `prefix` and `part_size` (e.g. "1MiB").
    pub fn toml_section_with(&self, name: &str, prefix: &str, part_size: &str) -> String {
        format!(
            "[storage.{name}]\n\
             type = \"azure\"\n\
             account = {account}\n\
             container = {container}\n\
             endpoint = {endpoint}\n\
             allow_http = true\n\
             access_key_file = {key}\n\
             prefix = {prefix}\n\
             part_size = {part_size}\n",
            account = toml_str(AZURITE_ACCOUNT),
            container = toml_str(BUCKET),
            endpoint = toml_str(&self.endpoint()),
            key = toml_str(&self.key_file.display().to_string()),
            prefix = toml_str(prefix),
            part_size = toml_str(part_size),
        )
    }
}

impl ObjectServer for Azurite {
    fn kind(&self) -> &'static str {
        "azure"
    }

    fn bucket(&self) -> &str {
        BUCKET
    }

    fn endpoint(&self) -> String {
        Azurite::endpoint(self)
    }

    fn storage_location(&self, name: &str, prefix: &str, part_size: u64) -> StorageLocation {
        Azurite::storage_location(self, name, prefix, part_size)
    }

    fn storage_location_with_secret(
        &self,
        name: &str,
        prefix: &str,
        part_size: u64,
        secret: &str,
    ) -> StorageLocation {
        let file = write_secret(self.dir.path(), "other_access_key", secret);
        self.location(name, prefix, part_size, &file)
    }

    fn toml_section(&self, name: &str) -> String {
        Azurite::toml_section(self, name)
    }

    fn stored_parts(&self, full_key: &str) -> Option<usize> {
        self.committed_blocks(full_key)
    }

    fn open_uploads(&self) -> Vec<String> {
        Vec::new()
    }

    fn stop(&mut self) {
        Azurite::stop(self);
    }

    fn restart(&mut self) {
        Azurite::restart(self);
    }

    fn log(&self) -> String {
        Azurite::log(self)
    }
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (only the SharedKey signature needs it, so
/// no dependency for it).
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = B64
            .iter()
            .position(|&b| b == c)
            .unwrap_or_else(|| panic!("not base64: {c:?}"));
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Good enough to make secrets differ between test runs.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}
