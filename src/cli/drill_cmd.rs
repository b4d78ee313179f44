//! `mongo-backupd drill --job NAME` and `mongo-backupd standby-sync --job
//! NAME`: one run of a drill or standby job from the command line, without
//! the daemon (for a first try of a new job, or from another scheduler).
//! The daemon runs the same code on the job's schedule, and additionally
//! records the run in its history and alerts on failure.

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::commands::load_config;
use super::{exit, ConfigArg};
use crate::drill::{self, DrillError};
use crate::standby::{self, StandbyError};

/// Exit status of a failed run: 65 when the backup is at fault (it does
/// not restore to what it holds), 75 when retrying later can help (a
/// target that cannot be reached), 1 otherwise.
fn drill_status(e: &DrillError) -> u8 {
    match e {
        DrillError::Mismatch { .. } | DrillError::Unreadable { .. } => exit::DATAERR,
        DrillError::Target { .. } | DrillError::Cleanup { .. } => exit::TEMPFAIL,
        DrillError::Setup(_) => exit::CONFIG,
        DrillError::Cancelled => exit::INTERRUPTED,
        _ => exit::FAILURE,
    }
}

pub async fn drill(config: &ConfigArg, job: &str) -> u8 {
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let req = match drill::request(&cfg, job) {
        Ok(r) => r,
        Err(e) => return fail(&e, e.advice(), drill_status(&e)),
    };
    let cancel = cancel_on_ctrl_c();
    let started = Utc::now();
    let seed = u64::try_from(started.timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0);
    match drill::run(&req, seed, &cancel).await {
        Ok(report) => {
            drill::record(&req, &report, Utc::now()).await;
            println!(
                "Drill \"{job}\" passed: backup {} of job \"{}\" restored to {} into \"{}\" (prefix \"{}\").",
                report.backup_id,
                req.from,
                report.restored_to.to_datetime().to_rfc3339(),
                req.target,
                req.prefix()
            );
            println!(
                "  backups restored: {}\n  collections: {}\n  documents: {} (counts as the backups hold them)\n  sampled documents identical to the backup: {}\n  indexes present: {}\nThe drill's databases were dropped again; the backup's manifest records the drill.",
                report.backups.join(", "),
                report.collections,
                report.documents,
                report.sampled,
                report.indexes
            );
            0
        }
        Err(e) => fail(&e, e.advice(), drill_status(&e)),
    }
}

pub async fn standby_sync(config: &ConfigArg, job: &str) -> u8 {
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let status = |e: &StandbyError| match e {
        StandbyError::Target { .. } | StandbyError::NothingToSeed { .. } => exit::TEMPFAIL,
        StandbyError::Setup(_) => exit::CONFIG,
        StandbyError::Cancelled => exit::INTERRUPTED,
        _ => exit::FAILURE,
    };
    let req = match standby::request(&cfg, job) {
        Ok(r) => r,
        Err(e) => return fail(&e, e.advice(), status(&e)),
    };
    let cancel = cancel_on_ctrl_c();
    match standby::run(&req, &cancel).await {
        Ok(report) => {
            if let Some(why) = &report.reseeded {
                println!("Standby \"{job}\" was seeded again: {why}.");
            }
            let p = &report.position;
            println!(
                "Standby \"{job}\" is at backup {} (seeded from {}): it reflects the source as of {}, {} behind now.",
                p.backup_id,
                p.seeded_from,
                p.at.to_datetime().to_rfc3339(),
                crate::config::format_duration(standby::lag(p, Utc::now()))
            );
            match report.applied.is_empty() {
                true => println!("  nothing new to apply"),
                false => println!("  applied: {}", report.applied.join(", ")),
            }
            0
        }
        Err(e) => fail(&e, e.advice(), status(&e)),
    }
}

fn fail(e: &dyn std::error::Error, advice: Option<&str>, code: u8) -> u8 {
    eprintln!("mongo-backupd: {}", crate::error_chain(e));
    if let Some(advice) = advice {
        eprintln!("  {advice}");
    }
    code
}

/// Ctrl-C cancels the run cleanly (a drill still drops its databases).
fn cancel_on_ctrl_c() -> CancellationToken {
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            token.cancel();
        }
    });
    cancel
}
