//! A real SMTP server for integration tests: `tests/smtp/smtp_server.py`
//! (aiosmtpd, from Debian's `python3-aiosmtpd`, run by `/usr/bin/python3`),
//! plus a throw-away PKI made with rcgen and a parser for the captured
//! messages.
//!
//! ```ignore
//! let pki = TestPki::new();
//! let server = SmtpServer::start(SmtpOptions::starttls(&pki).with_auth("alerts", "s3cret"));
//! // ... point the daemon / lettre at 127.0.0.1:server.port(), trusting pki.ca_pem ...
//! let mails = server.wait_for(1, Duration::from_secs(10));
//! assert_eq!(mails[0].subject, "backup failed");
//! ```

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly by design

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;

/// Debian's interpreter: the one that has `python3-aiosmtpd`.
pub const PYTHON: &str = "/usr/bin/python3";

/// How long the server may take to print `READY <port>`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `stop()` waits after SIGTERM before it kills.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `restart()` keeps retrying to bind the same port.
const REBIND_TIMEOUT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(20);

fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/smtp_server.py")
}

// ---------------------------------------------------------------------------
// PKI
// ---------------------------------------------------------------------------

/// A private CA and one leaf certificate signed by it, as PEM files in `dir`.
///
/// Every `TestPki` has its own freshly generated CA, so a client trusting one
/// PKI's `ca_pem` rejects the leaf of any other.
pub struct TestPki {
    pub dir: TempDir,
    /// The CA certificate: what a client must trust.
    pub ca_pem: PathBuf,
    /// Leaf certificate followed by the CA certificate (what the server sends).
    pub leaf_chain_pem: PathBuf,
    /// The leaf's private key (PKCS#8 PEM).
    pub leaf_key_pem: PathBuf,
}

impl TestPki {
    /// CA + leaf for DNS name `localhost` and IP `127.0.0.1`.
    pub fn new() -> Self {
        Self::for_names(&["localhost", "127.0.0.1"])
    }

    /// Same shape as [`TestPki::new`] but from a different CA: a client that
    /// trusts another `TestPki`'s CA fails the handshake (UnknownIssuer).
    pub fn untrusted() -> Self {
        Self::for_names_with_ca_name(
            &["localhost", "127.0.0.1"],
            "mongo-backupd UNTRUSTED test CA",
        )
    }

    /// A leaf valid only for `mail.other.invalid`: a client connecting to
    /// `localhost` that trusts this PKI's CA fails with a name mismatch.
    pub fn wrong_host() -> Self {
        Self::for_names(&["mail.other.invalid"])
    }

    /// CA + leaf whose subject alternative names are `names` (DNS names or IPs).
    pub fn for_names(names: &[&str]) -> Self {
        Self::for_names_with_ca_name(names, "mongo-backupd test CA")
    }

    fn for_names_with_ca_name(names: &[&str], ca_name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("smtp-pki-")
            .tempdir()
            .expect("create PKI temp dir");

        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, ca_name);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().expect("generate CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let names: Vec<String> = names.iter().map(|s| (*s).to_string()).collect();
        let mut leaf_params = CertificateParams::new(names.clone()).expect("leaf params");
        leaf_params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        leaf_params.is_ca = IsCa::ExplicitNoCa;
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().expect("generate leaf key");
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &issuer)
            .expect("sign leaf with CA");

        let ca_pem = dir.path().join("ca.pem");
        let leaf_chain_pem = dir.path().join("leaf-chain.pem");
        let leaf_key_pem = dir.path().join("leaf-key.pem");
        fs::write(&ca_pem, ca_cert.pem()).expect("write ca.pem");
        fs::write(
            &leaf_chain_pem,
            format!("{}{}", leaf_cert.pem(), ca_cert.pem()),
        )
        .expect("write leaf-chain.pem");
        fs::write(&leaf_key_pem, leaf_key.serialize_pem()).expect("write leaf-key.pem");

        Self {
            dir,
            ca_pem,
            leaf_chain_pem,
            leaf_key_pem,
        }
    }

    /// The CA certificate as PEM text.
    pub fn ca_pem_string(&self) -> String {
        fs::read_to_string(&self.ca_pem).expect("read ca.pem")
    }

    /// The CA certificate for `TlsParametersBuilder::add_root_certificate`.
    pub fn lettre_ca(&self) -> lettre::transport::smtp::client::Certificate {
        lettre::transport::smtp::client::Certificate::from_pem(self.ca_pem_string().as_bytes())
            .expect("lettre parses the test CA")
    }

    /// TLS parameters for `domain` trusting only this PKI's CA (plus the
    /// system roots lettre loads by default, which cannot vouch for it).
    pub fn tls_parameters(&self, domain: &str) -> lettre::transport::smtp::client::TlsParameters {
        lettre::transport::smtp::client::TlsParameters::builder(domain.to_string())
            .add_root_certificate(self.lettre_ca())
            .build()
            .expect("build TLS parameters")
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

// ---------------------------------------------------------------------------
// Server options
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpMode {
    /// No TLS at all.
    #[default]
    Plain,
    /// STARTTLS offered and required before MAIL FROM.
    StartTls,
    /// Implicit TLS ("SMTPS", `Tls::Wrapper` in lettre).
    Tls,
}

impl SmtpMode {
    fn arg(self) -> &'static str {
        match self {
            SmtpMode::Plain => "plain",
            SmtpMode::StartTls => "starttls",
            SmtpMode::Tls => "tls",
        }
    }
}

/// How to run the test server. `SmtpOptions::default()` is plain SMTP, no
/// AUTH, accepting everything, with a private temporary maildir.
#[derive(Debug, Clone, Default)]
pub struct SmtpOptions {
    pub mode: SmtpMode,
    /// Require AUTH (PLAIN / LOGIN) with this user and password.
    pub auth: Option<(String, String)>,
    /// Allow AUTH on an unencrypted connection (otherwise AUTH is offered
    /// only over TLS, as aiosmtpd does by default).
    pub auth_plaintext: bool,
    /// Answer every RCPT TO with this code (e.g. 450, 550).
    pub reject: Option<u16>,
    /// Leaf certificate chain (PEM) for the TLS modes.
    pub cert_chain: Option<PathBuf>,
    /// Leaf key (PEM) for the TLS modes.
    pub cert_key: Option<PathBuf>,
    /// Where to store messages; `None` = a temp dir owned by the server.
    pub maildir: Option<PathBuf>,
}

impl SmtpOptions {
    pub fn plain() -> Self {
        Self::default()
    }

    /// STARTTLS required, presenting `pki`'s leaf.
    pub fn starttls(pki: &TestPki) -> Self {
        Self {
            mode: SmtpMode::StartTls,
            ..Self::default()
        }
        .with_pki(pki)
    }

    /// Implicit TLS, presenting `pki`'s leaf.
    pub fn tls(pki: &TestPki) -> Self {
        Self {
            mode: SmtpMode::Tls,
            ..Self::default()
        }
        .with_pki(pki)
    }

    /// Use `pki`'s leaf certificate and key (the files are copied when the
    /// server starts, so `pki` may be dropped afterwards).
    pub fn with_pki(mut self, pki: &TestPki) -> Self {
        self.cert_chain = Some(pki.leaf_chain_pem.clone());
        self.cert_key = Some(pki.leaf_key_pem.clone());
        self
    }

    pub fn with_auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some((user.to_string(), password.to_string()));
        self
    }

    pub fn with_auth_plaintext(mut self) -> Self {
        self.auth_plaintext = true;
        self
    }

    pub fn with_reject(mut self, code: u16) -> Self {
        self.reject = Some(code);
        self
    }

    pub fn with_maildir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.maildir = Some(dir.into());
        self
    }
}

// ---------------------------------------------------------------------------
// Server process
// ---------------------------------------------------------------------------

/// A running `smtp_server.py`. Killed on drop.
pub struct SmtpServer {
    opts: SmtpOptions,
    port: u16,
    maildir: PathBuf,
    /// Private state: protocol log, copies of the certificate files and,
    /// unless `opts.maildir` was given, the maildir.
    state: TempDir,
    log_path: PathBuf,
    cert_files: Option<(PathBuf, PathBuf)>,
    child: Option<Child>,
}

enum SpawnError {
    /// The port was taken (e.g. the previous incarnation's socket lingers).
    AddrInUse(String),
    Other(String),
}

impl SmtpServer {
    /// Start a server on a free port of 127.0.0.1 and wait until it listens.
    pub fn start(opts: SmtpOptions) -> Self {
        assert!(
            Path::new(PYTHON).exists(),
            "{PYTHON} not found: the SMTP test server needs Debian's python3 with the \
             python3-aiosmtpd package (apt-get install python3 python3-aiosmtpd)"
        );
        let state = tempfile::Builder::new()
            .prefix("smtp-server-")
            .tempdir()
            .expect("create SMTP server temp dir");
        let maildir = match &opts.maildir {
            Some(dir) => dir.clone(),
            None => state.path().join("maildir"),
        };
        fs::create_dir_all(&maildir).expect("create maildir");
        let log_path = state.path().join("smtp_server.log");

        let cert_files = if opts.mode == SmtpMode::Plain {
            None
        } else {
            let (chain, key) = match (&opts.cert_chain, &opts.cert_key) {
                (Some(c), Some(k)) => (c, k),
                _ => panic!(
                    "SmtpOptions for {:?} need cert_chain and cert_key (use with_pki)",
                    opts.mode
                ),
            };
            let chain_copy = state.path().join("server-chain.pem");
            let key_copy = state.path().join("server-key.pem");
            fs::copy(chain, &chain_copy).expect("copy server certificate chain");
            fs::copy(key, &key_copy).expect("copy server key");
            Some((chain_copy, key_copy))
        };

        let mut server = Self {
            opts,
            port: 0,
            maildir,
            state,
            log_path,
            cert_files,
            child: None,
        };
        match server.spawn(0) {
            Ok(()) => server,
            Err(SpawnError::AddrInUse(msg) | SpawnError::Other(msg)) => panic!("{msg}"),
        }
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Always `127.0.0.1`; connect to `localhost` to match the certificate name.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn maildir(&self) -> &Path {
        &self.maildir
    }

    pub fn options(&self) -> &SmtpOptions {
        &self.opts
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("poll SMTP server").is_none(),
            None => false,
        }
    }

    /// The file that collects the server's stderr (all incarnations).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The server's protocol log (stderr) so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn spawn(&mut self, port: u16) -> Result<(), SpawnError> {
        let log_start = fs::metadata(&self.log_path).map(|m| m.len()).unwrap_or(0);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open SMTP server log");

        let mut cmd = Command::new(PYTHON);
        cmd.arg(script_path())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--mode", self.opts.mode.arg()])
            .arg("--maildir")
            .arg(&self.maildir);
        if let Some((chain, key)) = &self.cert_files {
            cmd.arg("--cert").arg(chain).arg("--key").arg(key);
        }
        if let Some((user, password)) = &self.opts.auth {
            cmd.arg("--auth").arg(format!("{user}:{password}"));
        }
        if self.opts.auth_plaintext {
            cmd.arg("--auth-plaintext");
        }
        if let Some(code) = self.opts.reject {
            cmd.args(["--reject", &code.to_string()]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME");

        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {PYTHON} {}: {e}", script_path().display()));

        // Read stdout on a thread so that waiting for READY has a deadline.
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });

        let deadline = Instant::now() + READY_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(POLL) {
                Ok(line) => {
                    if let Some(p) = line.strip_prefix("READY ") {
                        let p: u16 = p.trim().parse().expect("READY line carries a port");
                        self.port = p;
                        self.child = Some(child);
                        return Ok(());
                    }
                    seen.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stdout closed: the process is exiting; reap it below.
                    let status = wait_deadline(&mut child, Duration::from_secs(5));
                    return Err(self.spawn_failure(status, &seen, log_start, false));
                }
            }
            if let Some(status) = child.try_wait().expect("poll SMTP server") {
                return Err(self.spawn_failure(Some(status), &seen, log_start, false));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(self.spawn_failure(None, &seen, log_start, true));
            }
        }
    }

    fn spawn_failure(
        &self,
        status: Option<ExitStatus>,
        stdout: &[String],
        log_start: u64,
        timed_out: bool,
    ) -> SpawnError {
        let full = self.log();
        let this_run = full
            .get(usize::try_from(log_start).unwrap_or(0)..)
            .unwrap_or(&full)
            .to_string();
        let mut msg = String::new();
        if timed_out {
            let _ = write!(
                msg,
                "SMTP test server did not print READY within {READY_TIMEOUT:?}"
            );
        } else {
            let _ = write!(
                msg,
                "SMTP test server exited before it was ready ({})",
                status.map_or_else(|| "unknown status".to_string(), |s| s.to_string())
            );
        }
        let _ = write!(
            msg,
            ".\nIt runs `{PYTHON} {}`, which needs Debian's python3-aiosmtpd package \
             (apt-get install python3-aiosmtpd).\n--- stdout\n{}\n--- stderr\n{}",
            script_path().display(),
            stdout.join("\n"),
            this_run
        );
        // smtp_server.py exits with 4 when the port is taken (EADDRINUSE).
        let addr_in_use = status.and_then(|s| s.code()) == Some(4)
            || this_run
                .to_ascii_lowercase()
                .contains("address already in use");
        if addr_in_use {
            SpawnError::AddrInUse(msg)
        } else {
            SpawnError::Other(msg)
        }
    }

    /// SIGTERM, wait for a clean exit, SIGKILL if it takes too long.
    /// Does nothing if the server is not running.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if child.try_wait().expect("poll SMTP server").is_some() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if wait_deadline(&mut child, STOP_TIMEOUT).is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop (if running) and start again on the same port with the same
    /// options and maildir; earlier messages stay, numbering continues.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + REBIND_TIMEOUT;
        loop {
            match self.spawn(self.port) {
                Ok(()) => return,
                Err(SpawnError::AddrInUse(msg)) => {
                    assert!(
                        Instant::now() < deadline,
                        "could not re-bind port {} within {REBIND_TIMEOUT:?}: {msg}",
                        self.port
                    );
                    thread::sleep(Duration::from_millis(100));
                }
                Err(SpawnError::Other(msg)) => panic!("{msg}"),
            }
        }
    }

    /// All stored messages, by sequence number.
    pub fn messages(&self) -> Vec<Captured> {
        read_maildir(&self.maildir)
    }

    /// Poll the maildir until a message `matches`; panic with the subjects
    /// there are and `context` (e.g. the daemon's log) when `timeout`
    /// passes first.
    #[allow(dead_code)] // not every test binary that loads this uses it
    pub fn wait_for_mail(
        &self,
        matches: impl Fn(&Captured) -> bool,
        timeout: Duration,
        context: impl Fn() -> String,
    ) -> Captured {
        let deadline = Instant::now() + timeout;
        loop {
            let msgs = self.messages();
            if let Some(m) = msgs.iter().find(|m| matches(m)) {
                return m.clone();
            }
            if Instant::now() >= deadline {
                let subjects: Vec<&str> = msgs.iter().map(|m| m.subject.as_str()).collect();
                panic!(
                    "no matching mail within {timeout:?}; subjects: {subjects:?}\n{}",
                    context()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Poll the maildir until at least `n` messages are stored; panic with
    /// what there is (and the protocol log) when `timeout` passes first.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Captured> {
        let deadline = Instant::now() + timeout;
        loop {
            let msgs = self.messages();
            if msgs.len() >= n {
                return msgs;
            }
            if Instant::now() >= deadline {
                let summary: Vec<String> = msgs
                    .iter()
                    .map(|m| {
                        format!(
                            "#{} from {:?} to {:?}: {:?}",
                            m.seq, m.from, m.to, m.subject
                        )
                    })
                    .collect();
                panic!(
                    "expected at least {n} message(s) in {} within {timeout:?}, found {}:\n{}\n\
                     --- SMTP server log (tail)\n{}",
                    self.maildir.display(),
                    msgs.len(),
                    summary.join("\n"),
                    tail(&self.log(), 60)
                );
            }
            thread::sleep(POLL);
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
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

/// Every `<seq>.eml` (with its `<seq>.json`) in `dir`, sorted by sequence.
pub fn read_maildir(dir: &Path) -> Vec<Captured> {
    let mut seqs: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read maildir {}: {e}", dir.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?;
            let stem = name.strip_suffix(".eml")?;
            if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((stem.parse().ok()?, path))
        })
        .collect();
    seqs.sort();
    seqs.into_iter()
        .map(|(seq, eml)| {
            let raw = fs::read(&eml).unwrap_or_else(|e| panic!("read {}: {e}", eml.display()));
            let json_path = eml.with_extension("json");
            let meta = fs::read_to_string(&json_path)
                .unwrap_or_else(|e| panic!("read {}: {e}", json_path.display()));
            let meta: serde_json::Value = serde_json::from_str(&meta)
                .unwrap_or_else(|e| panic!("parse {}: {e}", json_path.display()));
            Captured::parse(seq, &raw, &meta)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Captured messages
// ---------------------------------------------------------------------------

/// One message as the server received it, parsed.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Sequence number in the maildir (1, 2, ...).
    pub seq: u64,
    /// The DATA bytes as received (lossy UTF-8).
    pub raw: String,
    /// Decoded Subject (RFC 2047 encoded words decoded, folding removed).
    pub subject: String,
    /// Decoded From header, e.g. `mongo-backupd <backupd@example.com>`.
    pub from: String,
    /// Decoded mailboxes of the To header.
    pub to: Vec<String>,
    /// The decoded text/plain body, line endings normalised to `\n`.
    pub body: String,
    /// All header fields in order, unfolded, values not decoded.
    pub headers: Vec<(String, String)>,
    /// Whether the SMTP session was encrypted (STARTTLS or implicit TLS).
    pub tls: bool,
    /// The authenticated user, if the client authenticated.
    pub auth_user: Option<String>,
    /// Envelope sender (MAIL FROM).
    pub envelope_from: String,
    /// Envelope recipients (RCPT TO).
    pub envelope_to: Vec<String>,
}

impl Captured {
    pub fn parse(seq: u64, raw: &[u8], meta: &serde_json::Value) -> Self {
        let text = |key: &str| meta.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let envelope_to = meta
            .get("rcpt_tos")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();

        let (head, body) = split_head_body(raw);
        let headers = parse_headers(head);
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let subject = get("Subject").map(decode_rfc2047).unwrap_or_default();
        let from = get("From").map(decode_rfc2047).unwrap_or_default();
        let to = get("To")
            .map(|v| {
                split_addresses(v)
                    .iter()
                    .map(|a| decode_rfc2047(a))
                    .collect()
            })
            .unwrap_or_default();

        // lettre (like every SMTP client) ends DATA with "\r\n.\r\n"; the
        // first CRLF is not part of the message it was given.
        let body = body.strip_suffix(b"\r\n").unwrap_or(body);
        let body = extract_text_plain(&headers, body).unwrap_or_default();

        Self {
            seq,
            raw: String::from_utf8_lossy(raw).into_owned(),
            subject,
            from,
            to,
            body,
            headers,
            tls: meta.get("tls").and_then(|v| v.as_bool()).unwrap_or(false),
            auth_user: text("auth_user"),
            envelope_from: text("mail_from").unwrap_or_default(),
            envelope_to,
        }
    }

    /// First header named `name` (case-insensitive), raw (not decoded).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// First header named `name`, RFC 2047 decoded.
    pub fn header_decoded(&self, name: &str) -> Option<String> {
        self.header(name).map(decode_rfc2047)
    }

    /// The address part of `from` (`a@b` from `Name <a@b>`).
    #[allow(clippy::wrong_self_convention)] // "from" is the header's name
    pub fn from_addr(&self) -> String {
        addr_spec(&self.from)
    }

    /// The address parts of `to`.
    pub fn to_addrs(&self) -> Vec<String> {
        self.to.iter().map(|m| addr_spec(m)).collect()
    }
}

fn split_head_body(raw: &[u8]) -> (&[u8], &[u8]) {
    if let Some(i) = find(raw, b"\r\n\r\n") {
        return (&raw[..i], &raw[i + 4..]);
    }
    if let Some(i) = find(raw, b"\n\n") {
        return (&raw[..i], &raw[i + 2..]);
    }
    (raw, &[])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

type Headers = Vec<(String, String)>;

/// Header fields, unfolded (CRLF + WSP -> WSP), in order.
pub fn parse_headers(head: &[u8]) -> Vec<(String, String)> {
    let head = String::from_utf8_lossy(head);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push_str(line);
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim_start().to_string()));
        }
    }
    for (_, v) in &mut out {
        *v = v.trim_end().to_string();
    }
    out
}

/// Split an address-list header on commas outside quotes, comments and `<>`.
fn split_addresses(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut angle, mut comment, mut escaped) = (false, false, 0u32, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            cur.push(c);
            continue;
        }
        match c {
            '\\' if quoted || comment > 0 => escaped = true,
            '"' if comment == 0 => quoted = !quoted,
            '(' if !quoted => comment += 1,
            ')' if !quoted && comment > 0 => comment -= 1,
            '<' if !quoted && comment == 0 => angle = true,
            '>' if !quoted && comment == 0 => angle = false,
            ',' if !quoted && !angle && comment == 0 => {
                let t = cur.trim();
                if !t.is_empty() {
                    out.push(t.to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    let t = cur.trim();
    if !t.is_empty() {
        out.push(t.to_string());
    }
    out
}

fn addr_spec(mailbox: &str) -> String {
    match (mailbox.rfind('<'), mailbox.rfind('>')) {
        (Some(a), Some(b)) if a < b => mailbox[a + 1..b].trim().to_string(),
        _ => mailbox.trim().to_string(),
    }
}

/// Parameters of a structured header such as Content-Type:
/// (`"multipart/alternative"`, [("boundary", "...")]). Names lower-cased.
fn parse_content_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = split_params(value).into_iter();
    let mime = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map_or_else(
                    || v.to_string(),
                    |v| v.replace("\\\"", "\"").replace("\\\\", "\\"),
                );
            Some((k.trim().to_ascii_lowercase(), v))
        })
        .collect();
    (mime, params)
}

fn split_params(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == ';' && !quoted {
            out.push(std::mem::take(&mut cur));
            continue;
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// The decoded text/plain content of an entity (recursing into multiparts).
/// A non-multipart entity of any type is decoded and returned.
fn extract_text_plain(headers: &[(String, String)], body: &[u8]) -> Option<String> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let (mime, params) = parse_content_type(get("Content-Type").unwrap_or("text/plain"));
    if mime.starts_with("multipart/") {
        let boundary = params
            .iter()
            .find(|(k, _)| k == "boundary")
            .map(|(_, v)| v.clone())?;
        let parts: Vec<(Headers, &[u8])> = split_multipart(body, &boundary)
            .into_iter()
            .map(|part| {
                let (h, b) = split_head_body(part);
                (parse_headers(h), b)
            })
            .collect();
        let part_type = |h: &[(String, String)]| {
            let ct = h
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Content-Type"))
                .map_or("text/plain", |(_, v)| v.as_str());
            parse_content_type(ct).0
        };
        // Prefer text/plain, then nested multiparts that contain one.
        for (h, b) in &parts {
            if part_type(h) == "text/plain" {
                return extract_text_plain(h, b);
            }
        }
        for (h, b) in &parts {
            if part_type(h).starts_with("multipart/") {
                if let Some(text) = extract_text_plain(h, b) {
                    return Some(text);
                }
            }
        }
        return None;
    }
    let cte = get("Content-Transfer-Encoding")
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    let bytes = match cte.as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => decode_base64(body),
        _ => body.to_vec(),
    };
    Some(String::from_utf8_lossy(&bytes).replace("\r\n", "\n"))
}

/// The bodies of the parts of a multipart entity (delimiter CRLFs removed).
fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    // Offsets of every delimiter line (at start of body or after a newline).
    let mut marks: Vec<(usize, usize)> = Vec::new(); // (line start, after line)
    let mut pos = 0;
    while pos < body.len() {
        let line_end = body[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |i| pos + i + 1);
        let line = &body[pos..line_end];
        if line.starts_with(delim) {
            marks.push((pos, line_end));
            if line[delim.len()..].starts_with(b"--") {
                break;
            }
        }
        pos = line_end;
    }
    marks
        .windows(2)
        .map(|w| {
            let (start, end) = (w[0].1, w[1].0);
            let part = &body[start..end.max(start)];
            // The line break before a delimiter belongs to the delimiter.
            part.strip_suffix(b"\r\n")
                .or_else(|| part.strip_suffix(b"\n"))
                .unwrap_or(part)
        })
        .collect()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Quoted-printable (RFC 2045 6.7): `=XX` escapes and `=` soft line breaks.
pub fn decode_quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'=' {
            // Soft line break: "=" [WSP...] CRLF or LF.
            let mut j = i + 1;
            while j < input.len() && (input[j] == b' ' || input[j] == b'\t') {
                j += 1;
            }
            if input[j..].starts_with(b"\r\n") {
                i = j + 2;
                continue;
            }
            if input[j..].starts_with(b"\n") {
                i = j + 1;
                continue;
            }
            if j == input.len() {
                i = j;
                continue;
            }
            if i + 2 < input.len() {
                if let (Some(h), Some(l)) = (hex_val(input[i + 1]), hex_val(input[i + 2])) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
            }
            out.push(b);
            i += 1;
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

/// Base64 (standard alphabet), ignoring whitespace and anything invalid.
pub fn decode_base64(input: &[u8]) -> Vec<u8> {
    fn val(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' | b'-' => Some(62),
            b'/' | b'_' => Some(63),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in input {
        if c == b'=' {
            break;
        }
        let Some(v) = val(c) else { continue };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap_or(0));
        }
    }
    out
}

/// Decode RFC 2047 encoded words (`=?charset?B|Q?text?=`) in a header
/// value. Whitespace between adjacent encoded words is dropped, and the
/// bytes of adjacent words in the same charset are joined before decoding
/// (an encoder may split a multi-byte character across words). UTF-8,
/// US-ASCII and ISO-8859-1 are understood; others are decoded as UTF-8.
pub fn decode_rfc2047(value: &str) -> String {
    // Unfold first, in case a raw (still folded) value is given.
    let value = value.replace("\r\n", "").replace('\n', "");
    let mut out = String::new();
    // Pending bytes of consecutive encoded words: (charset, bytes).
    let mut pending: Option<(String, Vec<u8>)> = None;
    let mut gap = String::new(); // whitespace seen after an encoded word
    let mut rest = value.as_str();

    fn flush(out: &mut String, pending: &mut Option<(String, Vec<u8>)>) {
        if let Some((charset, bytes)) = pending.take() {
            out.push_str(&decode_charset(&charset, &bytes));
        }
    }

    while !rest.is_empty() {
        if let Some((charset, bytes, len)) = parse_encoded_word(rest) {
            match &mut pending {
                Some((cs, buf)) if cs.eq_ignore_ascii_case(&charset) => buf.extend(bytes),
                _ => {
                    flush(&mut out, &mut pending);
                    pending = Some((charset, bytes));
                }
            }
            gap.clear();
            rest = &rest[len..];
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        if pending.is_some() && (c == ' ' || c == '\t') {
            gap.push(c);
        } else {
            flush(&mut out, &mut pending);
            out.push_str(&gap);
            gap.clear();
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut out, &mut pending);
    out.push_str(&gap);
    out
}

/// `=?charset?enc?text?=` at the start of `s`: (charset, decoded bytes, length).
fn parse_encoded_word(s: &str) -> Option<(String, Vec<u8>, usize)> {
    let inner = s.strip_prefix("=?")?;
    let q1 = inner.find('?')?;
    let charset = &inner[..q1];
    // RFC 2231 language suffix: charset*lang
    let charset = charset.split('*').next().unwrap_or(charset);
    let after_cs = &inner[q1 + 1..];
    let q2 = after_cs.find('?')?;
    let enc = &after_cs[..q2];
    let after_enc = &after_cs[q2 + 1..];
    let end = after_enc.find("?=")?;
    let text = &after_enc[..end];
    if charset.is_empty() || text.contains(' ') {
        return None;
    }
    let bytes = if enc.eq_ignore_ascii_case("b") {
        decode_base64(text.as_bytes())
    } else if enc.eq_ignore_ascii_case("q") {
        let underscores = text.replace('_', " ");
        decode_q(underscores.as_bytes())
    } else {
        return None;
    };
    let len = 2 + q1 + 1 + q2 + 1 + end + 2;
    Some((charset.to_string(), bytes, len))
}

fn decode_q(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'=' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex_val(input[i + 1]), hex_val(input[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

fn decode_charset(charset: &str, bytes: &[u8]) -> String {
    let cs = charset.to_ascii_lowercase();
    if cs == "iso-8859-1" || cs == "latin1" || cs == "latin-1" {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}
