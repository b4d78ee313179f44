//! The real daemon process for integration tests: started with a
//! configuration in a temporary directory, a notification socket standing
//! in for systemd, its stderr captured to `daemon.log`.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A running daemon with its files.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub notify: UnixDatagram,
}

impl Daemon {
    pub fn start_in(dir: tempfile::TempDir, config: &str) -> Daemon {
        Self::start_with_env(dir, config, &[])
    }

    pub fn start_with_env(dir: tempfile::TempDir, config: &str, env: &[(&str, &str)]) -> Daemon {
        let config = with_control_socket(config, dir.path());
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let socket = dir.path().join("notify.sock");
        let _ = std::fs::remove_file(&socket);
        let notify = UnixDatagram::bind(&socket).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
        let child = super::bin()
            .args(["run", "--config"])
            .arg(dir.path().join("config.toml"))
            .env("NOTIFY_SOCKET", &socket)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let d = Daemon {
            child: Some(child),
            dir,
            notify,
        };
        d.expect_notify("READY=1");
        d
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
    }

    /// The next notification must start with `prefix` (30 s bound).
    pub fn expect_notify(&self, prefix: &str) -> String {
        let mut buf = [0u8; 1024];
        let n = self
            .notify
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {prefix} notification: {e}\n{}", self.log()));
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(
            msg.starts_with(prefix),
            "expected {prefix}, got {msg:?}\n{}",
            self.log()
        );
        msg
    }

    /// Reads notifications until one starts with `prefix`, skipping
    /// watchdog pings; returns how many pings it skipped.
    pub fn expect_past_pings(&self, prefix: &str) -> usize {
        let mut pings = 0;
        loop {
            let mut buf = [0u8; 1024];
            let n = self
                .notify
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("no {prefix}: {e}\n{}", self.log()));
            let msg = String::from_utf8_lossy(&buf[..n]);
            if msg == "WATCHDOG=1" {
                pings += 1;
                continue;
            }
            assert!(msg.starts_with(prefix), "expected {prefix}, got {msg:?}");
            return pings;
        }
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    }

    pub fn write_config(&self, text: &str) {
        let text = with_control_socket(text, self.dir.path());
        std::fs::write(self.path("config.toml"), text).unwrap();
    }

    /// The daemon's control socket (in its directory).
    pub fn socket(&self) -> PathBuf {
        self.path("control.sock")
    }

    /// Complete backups of job `fast`, and whether a partial one exists.
    pub fn backups(&self) -> (usize, bool) {
        let entries: Vec<String> = std::fs::read_dir(self.path("backups/fast"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let partial = entries.iter().any(|e| e.starts_with(".partial-"));
        (
            entries.iter().filter(|e| !e.starts_with('.')).count(),
            partial,
        )
    }

    pub fn wait_for(&self, what: &str, timeout: Duration, mut cond: impl FnMut(&Daemon) -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGTERM, then the exit status (bounded wait).
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        self.expect_notify("STOPPING=1");
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not exit\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Each test daemon gets its own control socket in its directory, unless
/// the test names one: daemons sharing the default would find each other
/// and refuse to start.
pub fn with_control_socket(config: &str, dir: &std::path::Path) -> String {
    if config.contains("control_socket") {
        return config.to_string();
    }
    let line = format!(
        "control_socket = \"{}\"\n",
        dir.join("control.sock").display()
    );
    match config.find("[daemon]\n") {
        Some(i) => {
            let at = i + "[daemon]\n".len();
            format!("{}{line}{}", &config[..at], &config[at..])
        }
        None => format!("[daemon]\n{line}\n{config}"),
    }
}
