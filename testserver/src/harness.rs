//! What every integration test connects to: a fresh test server, or the
//! real replica set named by `MONGODB_TEST_URI`.
//!
//! Tests written against a [`Target`] run unchanged on both. Against a real
//! server they work in databases with unique names, which they drop at the
//! end, so a shared replica set is left as it was. Faults that only the
//! test server can cause (stopping it, refusing connections) are reached
//! through [`Target::local`], which is None for a real server: such a test
//! says it was skipped and why.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::TestServer;

/// The environment variable naming a real replica set to test against.
pub const ENV_URI: &str = "MONGODB_TEST_URI";

pub enum Target {
    Local(TestServer),
    External(String),
}

impl Target {
    /// A test server, unless `MONGODB_TEST_URI` names a real one.
    pub fn new() -> std::io::Result<Target> {
        match std::env::var(ENV_URI) {
            Ok(uri) if !uri.trim().is_empty() => Ok(Target::External(uri)),
            _ => Ok(Target::Local(TestServer::start()?)),
        }
    }

    /// Always a test server (for tests of the test server itself, or that
    /// need its harness-only faults).
    pub fn local_only() -> std::io::Result<Target> {
        Ok(Target::Local(TestServer::start()?))
    }

    pub fn uri(&self) -> String {
        match self {
            Target::Local(s) => s.uri(),
            Target::External(u) => u.clone(),
        }
    }

    pub fn local(&self) -> Option<&TestServer> {
        match self {
            Target::Local(s) => Some(s),
            Target::External(_) => None,
        }
    }

    pub fn is_external(&self) -> bool {
        matches!(self, Target::External(_))
    }

    /// A database name no other test (in this or another process) uses.
    pub fn unique_db(&self, prefix: &str) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}_{}_{n}", std::process::id())
    }
}

/// Prints why a test that needs the test server's own faults did nothing.
pub fn skip_external(test: &str) {
    eprintln!("{test}: skipped against {ENV_URI}: it needs faults only the test server can cause");
}
