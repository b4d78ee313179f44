//! Tests of the configuration as a whole: error messages and positions,
//! schedules, selections, alert settings, the HTTP API and control socket
//! settings, use-time URI resolution and a
//! mutation fuzz of the example file. Helpers shared by the test modules live here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod alerts;
mod drill;
mod errors_basic;
mod errors_values;
mod fuzz;
mod http;
mod model;
mod schedule;
mod selection;
mod storage;

use std::path::Path;

use super::{parse, Config};

/// The file name errors are reported against.
const FILE: &str = "/etc/mongo-backupd/config.toml";

/// A valid source and storage: lines 1-7, so a job table added after it
/// starts on line 8.
const BASE: &str = r#"[sources.prod]
uri = "mongodb://localhost:27017/"

[storage.local]
type = "local"
path = "/var/backups/mongo-backupd"

"#;

fn parse_ok(text: &str) -> Config {
    match parse(text, Path::new(FILE)) {
        Ok(config) => config,
        Err(errors) => panic!("unexpected errors:\n{errors}"),
    }
}

/// Every error, rendered as the daemon prints it.
fn errors(text: &str) -> Vec<String> {
    let errors = parse(text, Path::new(FILE)).expect_err("the text should be rejected");
    assert!(!errors.is_empty());
    errors.iter().map(ToString::to_string).collect()
}

/// The single error `text` has.
fn the_error(text: &str) -> String {
    let mut all = errors(text);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.remove(0)
}

/// `[jobs.prod-full]` on line 8 followed by `body` from line 9.
fn job(body: &str) -> String {
    format!("{BASE}[jobs.prod-full]\n{body}")
}

/// A valid full job (lines 8-12) with `extra` from line 13.
fn full_job(extra: &str) -> String {
    job(&format!(
        "source = \"prod\"\nstorage = \"local\"\nkind = \"full\"\nschedule = \"0 2 * * *\"\n{extra}"
    ))
}

/// `FILE:line:column: rest`.
fn at(line: usize, column: usize, rest: &str) -> String {
    format!("{FILE}:{line}:{column}: {rest}")
}
