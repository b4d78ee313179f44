//! `[alerts]` and `[alerts.email]`: who hears about trouble, how often,
//! and through which mail server.
//!
//! The SMTP password is never part of the configuration: only where to read
//! it (a file or an environment variable), read at send time so a rotated
//! credential is used on the next mail and the secret never sits in a
//! structure that could be logged with `{:?}`.

use std::path::PathBuf;
use std::time::Duration;

/// `[alerts]`: process-wide alert settings, all optional.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AlertSettings {
    /// `None`: alerts are only logged.
    pub email: Option<EmailSettings>,
    /// A condition that persists (a job still failing, still stale) is
    /// mailed again this often until it recovers.
    pub reminder_interval: Duration,
    /// At most this many mails in any rolling hour; the rest are counted
    /// and summarised in the next mail that goes out.
    pub max_per_hour: u32,
    /// A scheduled job is stale when its last success is older than its
    /// schedule's interval times this factor (jobs may set `stale_after`).
    pub stale_factor: f64,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            email: None,
            reminder_interval: Duration::from_secs(6 * 3600),
            max_per_hour: 20,
            stale_factor: 1.5,
        }
    }
}

/// `[alerts.email]`: the SMTP server and the recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmailSettings {
    pub host: String,
    /// Defaults by `tls`: 587 for STARTTLS, 465 for TLS, 25 for none.
    pub port: u16,
    pub tls: SmtpTls,
    /// A PEM file of CA certificates trusted in addition to the system's
    /// (for a mail relay with a private CA).
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    /// Always `Some` when `username` is, and only then.
    pub password: Option<SecretSource>,
    /// A mailbox: `backup@example.com` or `Backups <backup@example.com>`.
    pub from: String,
    /// At least one mailbox.
    pub to: Vec<String>,
    /// Starts every subject, e.g. `[mongo-backupd]`.
    pub subject_prefix: String,
    /// The most one delivery attempt (connect, TLS, AUTH, send) may take.
    pub timeout: Duration,
    /// Mails waiting for delivery kept in memory; the oldest are dropped
    /// (and counted) beyond this.
    pub queue_limit: usize,
    /// The longest wait between delivery retries (they back off up to it).
    pub retry_max_interval: Duration,
}

impl EmailSettings {
    /// `host:port (mode)`, for messages.
    pub fn server_label(&self) -> String {
        format!("{}:{} ({})", self.host, self.port, self.tls.describe())
    }
}

/// How the SMTP connection is secured. Never downgraded: a server that does
/// not offer what is configured is an error, not a plaintext fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, required (usually port 587).
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption: only for a relay on the same host or network.
    None,
}

impl SmtpTls {
    pub(crate) const NAMES: [&'static str; 3] = ["starttls", "tls", "none"];

    pub(crate) fn from_name(name: &str) -> Option<SmtpTls> {
        Some(match name {
            "starttls" => SmtpTls::StartTls,
            "tls" => SmtpTls::Tls,
            "none" => SmtpTls::None,
            _ => return None,
        })
    }

    /// The usual port for this mode.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            SmtpTls::StartTls => "STARTTLS",
            SmtpTls::Tls => "implicit TLS",
            SmtpTls::None => "no TLS",
        }
    }
}

/// Where a secret lives. Deliberately has no variant holding the secret,
/// so `{:?}` of any setting can never print one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretSource {
    /// A file (trimmed of surrounding whitespace); `${VAR}` in the path is
    /// expanded when read, e.g. `${CREDENTIALS_DIRECTORY}/smtp-password`.
    File(PathBuf),
    /// An environment variable of the daemon.
    Env(String),
}

impl SecretSource {
    /// Reads the secret now. The error says where it was looked for and
    /// never contains the secret.
    pub fn read(&self) -> Result<String, String> {
        self.read_with(|var| std::env::var_os(var))
    }

    pub fn read_with(
        &self,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<String, String> {
        let value = match self {
            SecretSource::Env(var) => env(var)
                .ok_or_else(|| format!("environment variable {var} is not set"))?
                .into_string()
                .map_err(|_| format!("environment variable {var} is not valid UTF-8"))?,
            SecretSource::File(pattern) => {
                let path = super::model::expand_vars(&pattern.to_string_lossy(), &env)
                    .map_err(|var| format!("password_file uses ${{{var}}}, which is not set"))?;
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read the password file {path}: {e}"))?
                    .trim()
                    .to_string()
            }
        };
        if value.is_empty() {
            return Err(match self {
                SecretSource::Env(var) => format!("environment variable {var} is empty"),
                SecretSource::File(p) => format!("the password file {} is empty", p.display()),
            });
        }
        Ok(value)
    }

    /// Where the secret is read from, for messages.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::File(p) => format!("password_file {}", p.display()),
            SecretSource::Env(v) => format!("password_env {v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_read_at_use_time_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "  hunter2\n").unwrap();
        let file = SecretSource::File(path.clone());
        assert_eq!(file.read().unwrap(), "hunter2");
        assert!(!format!("{file:?}").contains("hunter2"));

        let env = SecretSource::Env("SMTP_PW".into());
        let value = env
            .read_with(|v| (v == "SMTP_PW").then(|| "s3cret".into()))
            .unwrap();
        assert_eq!(value, "s3cret");
        let missing = env.read_with(|_| None).unwrap_err();
        assert_eq!(missing, "environment variable SMTP_PW is not set");

        std::fs::write(&path, "\n").unwrap();
        assert!(file.read().unwrap_err().contains("is empty"));
        let templated = SecretSource::File("${CREDS}/pw".into());
        let err = templated.read_with(|_| None).unwrap_err();
        assert!(err.contains("${CREDS}"), "{err}");
    }
}
