//! mongo-backupd: scheduled, consistent, restorable MongoDB backups.
//!
//! The library holds everything; `main.rs` only calls [`cli::main`].
//! One module per domain noun: where backups come from (`source`), what
//! the operator configured (`config`), how they are written and read
//! (`storage`), what a backup contains (`catalog`), and the two operations
//! that matter (`backup`, `restore`).

pub mod backup;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod restore;
pub mod source;
pub mod storage;
