//! mongo-backupd: scheduled, consistent, restorable MongoDB backups.
//!
//! The library holds everything; `main.rs` only calls [`cli::main`].
//! One module per domain noun: where backups come from (`source`), what
//! the operator configured (`config`), how they are written and read
//! (`storage`), what a backup contains (`catalog`), and the two operations
//! that matter (`backup`, `restore`).

pub mod alert;
pub mod backup;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
#[cfg(feature = "demo")]
pub mod demo;
pub mod drill;
pub mod export;
pub mod history;
pub mod http;
pub mod restore;
pub mod retention;
pub mod schedule;
pub mod signal;
pub mod source;
pub mod standby;
pub mod storage;

/// An error with its causes, as one line (what logs and mails show).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}
