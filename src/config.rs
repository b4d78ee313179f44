//! The daemon's configuration: `/etc/mongo-backupd/config.toml`, parsed into
//! typed, validated settings.
//!
//! Sysadmins edit the file by hand and apply it with `systemctl reload`, so a
//! mistake must never half-apply: [`load`] and [`parse`] either return a
//! complete [`Config`] or every problem in the file at once ([`ConfigErrors`]),
//! each with `file:line:column`, the dotted key path and, where we can guess
//! it, a hint on how to fix it. Unknown keys are errors everywhere: a typo
//! such as `shedule` must not silently fall back to a default.
//!
//! The file is read with `toml_edit` rather than deserialized with serde,
//! because serde stops at the first error and loses the positions we need.
//!
//! Parsing is pure: it does not read the environment or other files. The one
//! value that does, a source's URI, is resolved at use time with
//! [`Source::resolve_uri`], so `check-config` run from a shell agrees with the
//! daemon even when the URI lives in a systemd credential.

pub mod alerts;
mod build;
mod build_alerts;
mod build_drill;
mod build_http;
mod build_job;
mod duration;
mod error;
mod model;
mod reader;
mod schedule;
mod selection;
mod suggest;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use alerts::{AlertSettings, EmailSettings, SecretSource, SmtpTls};
pub use duration::{format_duration, parse_duration};
pub use error::{ConfigError, ConfigErrors};
pub use model::{
    Backend, CompressionSetting, Config, DaemonSettings, DrillPoint, Encryption, HttpSettings, Job,
    JobKind, LogLevel, LogRotation, ObjectService, ObjectSettings, RestoreTarget, RetentionPolicy,
    Source, StorageLocation, UriSpec, DEFAULT_CONTROL_SOCKET,
};
pub use schedule::{next_fires, Schedule, ScheduleError};
pub use selection::{Pattern, Selection};

/// Exit status for a configuration that cannot be used (`EX_CONFIG` from
/// sysexits.h), so systemd and scripts can tell "fix the file" apart from
/// runtime failures.
pub const EXIT_CONFIG: u8 = 78;

/// Where the daemon looks for its configuration unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/mongo-backupd/config.toml";

/// Reads and validates the configuration file at `path`.
///
/// A file that cannot be read, or that is not UTF-8, is reported as a
/// [`ConfigError`] like any other problem, so callers have one error path.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let bytes = std::fs::read(path).map_err(|err| {
        ConfigErrors(vec![ConfigError::whole_file(
            path,
            format!("cannot read the configuration file: {err}"),
            Some(read_hint(&err)),
        )])
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => parse(&text, path),
        Err(err) => {
            // Point at the first bad byte: the valid prefix is plain text,
            // and a stand-in for the bad byte keeps the position off the
            // end-of-file rule of `line_column`.
            let valid = err.utf8_error().valid_up_to();
            let mut prefix = String::from_utf8_lossy(&err.as_bytes()[..valid]).into_owned();
            prefix.push('?');
            let (line, column) = error::line_column(&prefix, valid);
            Err(ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line,
                column,
                key_path: String::new(),
                message: "the file is not valid UTF-8".to_string(),
                hint: Some("TOML files must be UTF-8; re-save it as UTF-8".to_string()),
            }]))
        }
    }
}

/// Validates configuration text; `path` only labels the errors and is kept
/// in [`Config::path`].
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
    build::build(text, path)
}

fn read_hint(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => {
            "create it from the commented example mongo-backupd.toml, or give the right path"
                .to_string()
        }
        std::io::ErrorKind::PermissionDenied => {
            "the daemon's user must be able to read it".to_string()
        }
        _ => "check the path and its permissions".to_string(),
    }
}
