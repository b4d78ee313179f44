//! mongo-backupd: scheduled, consistent, restorable MongoDB backups.
//!
//! The library holds everything; `main.rs` only calls [`cli::main`].

pub mod cli;
pub mod source;
