//! The typed configuration: what [`parse`](super::parse) returns once every
//! check has passed. Structs and enums are `#[non_exhaustive]` so later
//! settings (incremental options, alerts, the HTTP API, other storage
//! backends) can be added without breaking code that reads them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;

use super::error::{ConfigError, Origin};
use super::schedule::Schedule;
use super::selection::Selection;

/// A whole configuration file.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub daemon: DaemonSettings,
    pub sources: BTreeMap<String, Source>,
    pub storage: BTreeMap<String, StorageLocation>,
    pub jobs: BTreeMap<String, Job>,
    pub alerts: super::alerts::AlertSettings,
    /// `[http]`: the HTTP API, off (`None`) unless configured.
    pub http: Option<HttpSettings>,
}

/// `[http]`: the HTTP API and the Prometheus metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpSettings {
    /// Default `127.0.0.1:9187`.
    pub listen: std::net::SocketAddr,
    /// A file of bearer tokens, one per line: `NAME TOKEN` (the name is
    /// what the audit log shows) or just `TOKEN`; `#` starts a comment.
    /// Read at start and on reload, never logged.
    pub token_file: PathBuf,
    /// Serve HTTPS with this certificate chain and key (PEM); both or
    /// neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Serve `/metrics` without a token; only allowed on a loopback
    /// address.
    pub metrics_public: bool,
    /// Mutating requests (backup, pause, resume) allowed per token per
    /// minute; more get 429 with Retry-After.
    pub mutations_per_minute: u32,
    /// Larger request bodies get 413.
    pub max_body_bytes: usize,
}

impl HttpSettings {
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:9187";
}

/// Where the control socket is unless `[daemon] control_socket` says
/// otherwise (systemd's RuntimeDirectory=mongo-backupd creates the folder).
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/mongo-backupd/control.sock";

/// `[daemon]`: process-wide settings, all optional.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DaemonSettings {
    pub state_dir: PathBuf,
    /// Zone of jobs that do not name their own.
    pub timezone: Tz,
    pub max_concurrent_jobs: usize,
    /// How long running jobs get to finish on stop before they are aborted.
    pub shutdown_grace: Duration,
    pub log_level: LogLevel,
    /// `None`: log to stderr (the journal under systemd).
    pub log_file: Option<PathBuf>,
    pub log_rotation: LogRotation,
    /// The control socket the CLI talks to the running daemon through.
    pub control_socket: PathBuf,
    /// The group that owns the socket (mode 0660) besides the daemon's
    /// user: the admins allowed to control the daemon.
    pub control_group: Option<String>,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings {
            state_dir: PathBuf::from("/var/lib/mongo-backupd"),
            timezone: Tz::UTC,
            max_concurrent_jobs: 2,
            shutdown_grace: Duration::from_secs(5 * 60),
            log_level: LogLevel::Info,
            log_file: None,
            log_rotation: LogRotation::Daily,
            control_socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
            control_group: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub(crate) const NAMES: [&'static str; 5] = ["error", "warn", "info", "debug", "trace"];

    pub(crate) fn from_name(name: &str) -> Option<LogLevel> {
        Some(match name {
            "error" => LogLevel::Error,
            "warn" => LogLevel::Warn,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            _ => return None,
        })
    }
}

impl From<LogLevel> for tracing::Level {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Trace => tracing::Level::TRACE,
        }
    }
}

/// When the log file starts a new file; ignored without `log_file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogRotation {
    Daily,
    Hourly,
    /// Leave rotation to logrotate(8).
    Never,
}

impl LogRotation {
    pub(crate) const NAMES: [&'static str; 3] = ["daily", "hourly", "never"];

    pub(crate) fn from_name(name: &str) -> Option<LogRotation> {
        Some(match name {
            "daily" => LogRotation::Daily,
            "hourly" => LogRotation::Hourly,
            "never" => LogRotation::Never,
            _ => return None,
        })
    }
}

/// `[sources.NAME]`: a deployment to back up.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Source {
    pub name: String,
    pub uri: UriSpec,
    pub connect_timeout: Duration,
    /// Where the URI setting is, for errors found when it is resolved.
    pub(crate) origin: Origin,
}

/// Equality ignores where in the file the source is, so a reload that only
/// moves lines around sees no change.
impl PartialEq for Source {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.uri == other.uri
            && self.connect_timeout == other.connect_timeout
    }
}

/// Where a source's connection string comes from. Credentials usually live
/// in the URI, so `File` and `Env` keep them out of the configuration file.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UriSpec {
    Inline(String),
    /// A file holding the URI; `${VAR}` in the path is expanded when it is
    /// read (e.g. `${CREDENTIALS_DIRECTORY}/prod-uri` for a systemd
    /// credential), not when the configuration is parsed.
    File(PathBuf),
    /// An environment variable of the daemon holding the URI.
    Env(String),
}

/// Hand-written so the inline URI, which may hold a password, never ends
/// up in logs through `{:?}`.
impl fmt::Debug for UriSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UriSpec::Inline(_) => f.write_str("Inline(<redacted>)"),
            UriSpec::File(path) => f.debug_tuple("File").field(path).finish(),
            UriSpec::Env(var) => f.debug_tuple("Env").field(var).finish(),
        }
    }
}

impl Source {
    /// The connection string, read now from the file or environment
    /// variable if that is where it lives (so a rotated credential is picked
    /// up on the next run). File contents are trimmed.
    ///
    /// Errors name the source and the setting to fix, and never contain
    /// the URI itself.
    pub fn resolve_uri(&self) -> Result<String, ConfigError> {
        self.resolve_uri_with(|var| std::env::var_os(var))
    }

    /// [`resolve_uri`](Self::resolve_uri) with an explicit environment, for
    /// tests and for callers that hold one.
    pub fn resolve_uri_with(
        &self,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<String, ConfigError> {
        let name = &self.name;
        let uri = match &self.uri {
            UriSpec::Inline(uri) => uri.clone(),
            UriSpec::Env(var) => match env(var) {
                None => {
                    return Err(self.fail(
                        format!("source {name:?}: environment variable {var} is not set"),
                        "set it in the daemon's environment (Environment= or EnvironmentFile= in the systemd unit)",
                    ))
                }
                Some(value) => value.into_string().map_err(|_| {
                    self.fail(
                        format!("source {name:?}: environment variable {var} is not valid UTF-8"),
                        "set it to a mongodb:// or mongodb+srv:// URI",
                    )
                })?,
            },
            UriSpec::File(pattern) => {
                let path = expand_vars(&pattern.to_string_lossy(), &env).map_err(|var| {
                    self.fail(
                        format!("source {name:?}: uri_file uses ${{{var}}}, which is not set"),
                        "with a systemd credential, add LoadCredential= to the unit and run under systemd",
                    )
                })?;
                let text = std::fs::read_to_string(&path).map_err(|err| {
                    self.fail(
                        format!("source {name:?}: cannot read the URI from {path}: {err}"),
                        "create the file, make it readable by the daemon, or fix uri_file",
                    )
                })?;
                text.trim().to_string()
            }
        };
        if uri.is_empty() {
            return Err(self.fail(
                format!("source {name:?}: the MongoDB URI is empty"),
                "it must be a mongodb:// or mongodb+srv:// URI",
            ));
        }
        if !has_mongodb_scheme(&uri) {
            return Err(self.fail(
                format!("source {name:?}: the MongoDB URI does not start with mongodb:// or mongodb+srv://"),
                "check the value (it is not shown here because it may contain a password)",
            ));
        }
        Ok(uri)
    }

    fn fail(&self, message: String, hint: &str) -> ConfigError {
        self.origin.error(message, Some(hint.to_string()))
    }
}

pub(crate) fn has_mongodb_scheme(uri: &str) -> bool {
    uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")
}

/// Expands `${VAR}` in `text`; the error is the name of an unset variable.
/// `$` not followed by `{` is kept literally (paths may contain `$`).
pub(crate) fn expand_vars(
    text: &str,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            // Unterminated: the parser rejects this, keep it literal here.
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let var = &after[..end];
        let value = env(var).ok_or_else(|| var.to_string())?;
        out.push_str(&value.to_string_lossy());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `[storage.NAME]`: where backups are written (a job's primary
/// `storage`, always a local directory) or copied to (a job's `copies`:
/// a directory or an object store).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StorageLocation {
    pub name: String,
    pub backend: Backend,
    /// `retention`: how long backups are kept at this location, replacing
    /// each job's own `retention` age there (its keep_* counts and
    /// `min_keep` still apply), e.g. 90 days off-site.
    pub retention: Option<Duration>,
}

impl StorageLocation {
    /// A location as the configuration would define it (for tools and
    /// tests that build one without a file).
    pub fn new(name: &str, backend: Backend) -> StorageLocation {
        StorageLocation {
            name: name.to_string(),
            backend,
            retention: None,
        }
    }

    /// The directory of a local location.
    pub fn local_path(&self) -> Option<&std::path::Path> {
        match &self.backend {
            Backend::Local { path } => Some(path),
            Backend::Object(_) => None,
        }
    }
}

/// What kind of place a storage location is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// `type = "local"`: a directory (possibly a network mount).
    Local { path: PathBuf },
    /// `type = "s3" | "azure" | "gcs"`.
    Object(ObjectSettings),
}

/// An object-store location: the service and what every service shares.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectSettings {
    pub service: ObjectService,
    /// Key prefix inside the bucket or container, "" or ending in "/"
    /// (normalised when parsed), e.g. `mongo-backupd/`.
    pub prefix: String,
    /// Multipart upload part size in bytes (default 16 MiB).
    pub part_size: u64,
    /// Extra PEM CA certificate(s) trusted for HTTPS to this service,
    /// besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Per request timeout (default 5 minutes).
    pub timeout: Duration,
}

impl ObjectSettings {
    pub const DEFAULT_PART_SIZE: u64 = 16 * 1024 * 1024;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

    /// `service` with the defaults: no prefix, 16 MiB parts, the system's
    /// CA roots, 5-minute requests.
    pub fn new(service: ObjectService) -> ObjectSettings {
        ObjectSettings {
            service,
            prefix: String::new(),
            part_size: Self::DEFAULT_PART_SIZE,
            ca_file: None,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

/// The object-store service and its own settings. Credentials are read
/// when the location is opened, never held here.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectService {
    S3 {
        bucket: String,
        /// Default `us-east-1`.
        region: Option<String>,
        /// An S3-compatible service's URL, e.g. `https://minio.internal:9000`.
        endpoint: Option<String>,
        /// `http://` endpoints are refused unless set.
        allow_http: bool,
        /// Path-style requests (`endpoint/bucket/key`) unless set.
        virtual_hosted_style: bool,
        /// Both or neither; neither means the platform's usual chain
        /// (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, web identity,
        /// ECS or EC2 instance credentials).
        access_key_id: Option<super::alerts::SecretSource>,
        secret_access_key: Option<super::alerts::SecretSource>,
    },
    Azure {
        account: String,
        container: String,
        /// The Blob service URL for emulators and sovereign clouds, e.g.
        /// `http://127.0.0.1:10000/devstoreaccount1`.
        endpoint: Option<String>,
        allow_http: bool,
        /// The storage account key; `None` means the platform's chain
        /// (`AZURE_STORAGE_*` variables, managed identity).
        access_key: Option<super::alerts::SecretSource>,
    },
    Gcs {
        bucket: String,
        /// A service account JSON key file; `None` means the platform's
        /// chain (`GOOGLE_APPLICATION_CREDENTIALS`, metadata server).
        service_account_file: Option<PathBuf>,
    },
}

impl ObjectService {
    pub fn type_name(&self) -> &'static str {
        match self {
            ObjectService::S3 { .. } => "s3",
            ObjectService::Azure { .. } => "azure",
            ObjectService::Gcs { .. } => "gcs",
        }
    }
}

/// `encrypt_to` / `encrypt_to_file` of a job: the age X25519 recipients
/// (`age1...`, already checked to parse) every data file is encrypted to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Encryption {
    pub recipients: Vec<String>,
}

/// `[jobs.NAME]`: one scheduled (or on-demand) backup.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Job {
    pub name: String,
    /// Name of a key in [`Config::sources`] (checked to exist).
    pub source: String,
    /// Name of a key in [`Config::storage`] (checked to exist, and to be a
    /// local directory).
    pub storage: String,
    /// `copies`: further locations each backup is copied to after it is
    /// complete in `storage` (checked to exist, distinct, not `storage`).
    pub copies: Vec<String>,
    /// `None`: backups are stored unencrypted.
    pub encryption: Option<Encryption>,
    pub kind: JobKind,
    /// Always `Some` for full and incremental jobs.
    pub schedule: Option<Schedule>,
    /// The job's own zone, or the daemon's.
    pub timezone: Tz,
    pub retention: RetentionPolicy,
    pub compression: CompressionSetting,
    pub selection: Selection,
    /// Also back up `admin.system.users` and `admin.system.roles` (the
    /// same flag is in [`Selection::include_users`]).
    pub include_users: bool,
    /// Incremental jobs: after an oplog gap, start the source's full job at
    /// once so a new chain begins (default true).
    pub full_on_gap: bool,
    pub parallel_collections: usize,
    /// How late a missed run may still start (after downtime); `None`:
    /// up to one schedule interval.
    pub catch_up: Option<Duration>,
    pub enabled: bool,
    /// Mailed about this job's alerts besides `[alerts.email] to`.
    pub alert_to: Vec<String>,
    /// No success for this long makes the job stale; `None`: the schedule's
    /// interval times `[alerts] stale_factor`.
    pub stale_after: Option<Duration>,
    /// Drill and standby jobs: whose backups they restore, and where to.
    /// `None` for backup jobs. Such a job's `source` and `storage` are
    /// those of the job it reads, so listings and alerts find its backups.
    pub restore_target: Option<RestoreTarget>,
}

/// What a drill or standby job restores, and where to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreTarget {
    /// `from`: the full or incremental job whose backups are read. Both
    /// kinds share a chain per source, so either names it.
    pub from: String,
    /// `target`: the `[sources.NAME]` restored into.
    pub target: String,
    /// `prefix`: prepended to every database name on the target, so a
    /// drill can share a server with real data (drills: "drill_"; standby:
    /// none, the standby is meant to look like the source).
    pub prefix: String,
    /// `identity_file`: the age identity for encrypted backups.
    pub identity_file: Option<std::path::PathBuf>,
    /// Drills: which instant is restored.
    pub point: DrillPoint,
    /// Drills: documents per collection compared byte for byte.
    pub sample: u32,
}

/// `point` of a drill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrillPoint {
    /// The newest instant the backups restore to.
    Newest,
    /// An instant drawn at random inside the restorable window, so drills
    /// over time exercise old chains and long replays too.
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum JobKind {
    /// A complete, consistent dump (with the oplog slice taken meanwhile).
    Full,
    /// The oplog since the previous backup of the chain.
    Incremental,
    /// A full backup run only on request (or on its optional schedule).
    Manual,
    /// A restore drill: restores another job's backups into a scratch
    /// target, checks them and drops them again.
    Drill,
    /// Keeps a target database in sync from another job's backups.
    Standby,
}

impl JobKind {
    pub(crate) const NAMES: [&'static str; 5] =
        ["full", "incremental", "manual", "drill", "standby"];

    pub(crate) fn from_name(name: &str) -> Option<JobKind> {
        Some(match name {
            "full" => JobKind::Full,
            "incremental" => JobKind::Incremental,
            "manual" => JobKind::Manual,
            "drill" => JobKind::Drill,
            "standby" => JobKind::Standby,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Full => "full",
            JobKind::Incremental => "incremental",
            JobKind::Manual => "manual",
            JobKind::Drill => "drill",
            JobKind::Standby => "standby",
        }
    }

    /// Whether runs of this kind write backups (rather than read them).
    pub fn makes_backups(self) -> bool {
        matches!(self, JobKind::Full | JobKind::Incremental | JobKind::Manual)
    }

    /// The product's canonical retention when a job sets none: full
    /// backups 30 days, incrementals 7 days, manual backups 90 days.
    pub fn default_retention(self) -> Duration {
        let days = match self {
            JobKind::Full => 30,
            JobKind::Incremental => 7,
            JobKind::Manual => 90,
            // Drills and standbys keep no backups of their own.
            JobKind::Drill | JobKind::Standby => 0,
        };
        Duration::from_secs(days * 86_400)
    }

    /// Whether jobs of this kind must have a schedule.
    pub fn needs_schedule(self) -> bool {
        !matches!(self, JobKind::Manual)
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which backups to keep. A backup is kept when it is younger than
/// `max_age`, or is one of the newest per day/week/month that a `keep_*`
/// asks for (restic-style), or is among the `min_keep` newest; retention
/// never deletes a backup that a kept one still needs to restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionPolicy {
    pub max_age: Duration,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    /// At least 1, so a failing source can never age out its last backup.
    pub min_keep: u32,
}

impl RetentionPolicy {
    /// Only an age limit, with `min_keep = 1`.
    pub fn max_age(max_age: Duration) -> RetentionPolicy {
        RetentionPolicy {
            max_age,
            keep_daily: None,
            keep_weekly: None,
            keep_monthly: None,
            min_keep: 1,
        }
    }
}

/// How backup files are compressed, with the level checked for the codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompressionSetting {
    None,
    /// Level 1..=9 (default 6): readable by `mongorestore --gzip`.
    Gzip {
        level: u32,
    },
    /// Level 1..=22 (default 3): smaller and faster.
    Zstd {
        level: i32,
    },
}

impl Default for CompressionSetting {
    fn default() -> Self {
        CompressionSetting::Zstd { level: 3 }
    }
}

impl CompressionSetting {
    pub fn name(&self) -> &'static str {
        match self {
            CompressionSetting::None => "none",
            CompressionSetting::Gzip { .. } => "gzip",
            CompressionSetting::Zstd { .. } => "zstd",
        }
    }
}
