//! What the demo does with the running daemon: ask it for the first full
//! backup, record the shop at a chosen second while the schedule goes on,
//! make sure a backup chain covers that second, then restore to it with
//! the real point-in-time restore and compare.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use tokio_util::sync::CancellationToken;

use super::session::{Session, Verified};
use super::setup::{self, FULL_JOB, INCREMENTAL_JOB, SOURCE};
use super::verify::{self, Snapshot};
use super::{dataset, say, DemoError};
use crate::daemon::api::{ApiError, BackupNow, Caller, ErrorCode, RunState};
use crate::restore::pitr::{self, At, PitrPlan};
use crate::restore::{NsMapper, RestoreOptions};

/// The database the shop is restored into, beside the original.
const RESTORED_DB: &str = "shop_restored";
/// How long the demo waits for a backup it asked for.
const BACKUP_WAIT: Duration = Duration::from_secs(60);

fn caller() -> Caller {
    Caller {
        name: "mongo-backupd demo".into(),
        via: "demo".into(),
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn refused(what: &str, e: ApiError) -> DemoError {
    DemoError::Daemon(format!("the daemon refused {what}: {e}"))
}

fn mongo(what: &str) -> impl FnOnce(mongodb::error::Error) -> DemoError + '_ {
    move |source| DemoError::Mongo {
        what: what.to_string(),
        source,
    }
}

/// The point-in-time plan for `at`, off the async threads (it checks
/// every file's checksum, and that the demo's identity reads them).
async fn plan_for(session: &Session, at: DateTime<Utc>) -> Result<PitrPlan, DemoError> {
    let location = crate::storage::Location::local_dir(session.storage_root());
    let identities = Some(session.key.identities.clone());
    pitr::plan_blocking(&location, identities, SOURCE, At::Time(at))
        .await
        .map_err(DemoError::from)
}

impl Session {
    /// Asks the daemon for a full backup now, through the same request API
    /// as `mongo-backupd backup-now`, and waits for it.
    pub(super) async fn first_full(&mut self) -> Result<(), DemoError> {
        let handle = self
            .handle()
            .ok_or_else(|| DemoError::Daemon("the daemon is not running".into()))?;
        say(format!("Asking the daemon for a full backup of job \"{FULL_JOB}\" now, as `mongo-backupd backup-now {FULL_JOB}` would; the schedule takes over after it."));
        let options = BackupNow {
            manual: false,
            note: Some("the demo's first full backup".into()),
        };
        let run = match handle.backup_now(FULL_JOB, options, caller()).await {
            Ok(run) => run,
            // The schedule started one a moment earlier: that one will do.
            Err(e) if e.code == ErrorCode::JobRunning => {
                return self.wait_covered_by_full().await;
            }
            Err(e) => return Err(refused("the first full backup", e)),
        };
        let mut watch = handle
            .watch_run(run.id)
            .await
            .map_err(|e| refused("to report on the first full backup", e))?;
        let finished = tokio::time::timeout(BACKUP_WAIT, watch.wait_for(|r| r.state.is_finished()))
            .await
            .map_err(|_| {
                DemoError::Daemon(format!(
                    "the first full backup did not finish within {} s; see the log above",
                    BACKUP_WAIT.as_secs()
                ))
            })?
            .map_err(|_| {
                DemoError::Daemon("the daemon stopped during the first full backup".into())
            })?
            .clone();
        if finished.state != RunState::Success {
            return Err(DemoError::Daemon(format!(
                "the first full backup did not succeed: {}",
                finished.error.unwrap_or_else(|| "cancelled".into())
            )));
        }
        say(format!(
            "First full backup {} complete: {} documents, {} bytes stored (compressed, then encrypted). From now on the schedule runs it all: watch the log.",
            finished.backup_id.unwrap_or_default(),
            finished.documents.unwrap_or(0),
            finished.stored_bytes.unwrap_or(0)
        ));
        Ok(())
    }

    async fn wait_covered_by_full(&self) -> Result<(), DemoError> {
        let root = self.storage_root();
        let deadline = tokio::time::Instant::now() + BACKUP_WAIT;
        while tokio::time::Instant::now() < deadline {
            let listings = crate::catalog::list_backups(&root, Some(FULL_JOB)).unwrap_or_default();
            if listings.iter().any(|l| l.is_complete()) {
                say("The scheduled full backup is complete.");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(DemoError::Daemon(format!(
            "no full backup completed within {} s; see the log above",
            BACKUP_WAIT.as_secs()
        )))
    }

    /// Records the shop at a second a few seconds before the last
    /// incremental that has time to run before `end`.
    pub(super) async fn record(
        &mut self,
        end: DateTime<Utc>,
    ) -> Result<(DateTime<Utc>, Snapshot), DemoError> {
        let started = self.started.unwrap_or_else(Utc::now).trunc_subsecs(0);
        let every = chrono::Duration::seconds(i64::from(setup::INCREMENTAL_EVERY));
        let mut last = started + chrono::Duration::seconds(i64::from(setup::INCREMENTAL_FIRST));
        while last + every <= end - chrono::Duration::seconds(3) {
            last += every;
        }
        verify::sleep_until(last - chrono::Duration::milliseconds(5500)).await;
        let (Some(client), Some(writer)) = (&self.client, &self.writer) else {
            return Err(DemoError::Daemon("the source is not running".into()));
        };
        let db = client.database(dataset::DB);
        let (at, snapshot) = verify::record_instant(&db, writer)
            .await
            .map_err(mongo("recording the source's state"))?;
        self.writes_at_record = writer.writes();
        // A slow start (a loaded machine) can push the recording past the
        // planned incremental; a later one covers it then.
        let cover = if last > at + chrono::Duration::seconds(1) {
            format!("the incremental due at {}", stamp(last))
        } else {
            "a later incremental".to_string()
        };
        say(format!(
            "Recorded the shop as it was at {}: {} documents in {} collections. The application paused for exactly that second, so the state at that instant is unambiguous; it writes on now, and {cover} will cover that second.",
            stamp(at),
            snapshot.documents(),
            snapshot.collections(),
        ));
        Ok((at, snapshot))
    }

    /// Lets the daemon run until `end`, then makes sure a chain covers
    /// `at` (asking for an incremental if the schedule left it uncovered).
    pub(super) async fn finish(
        &mut self,
        end: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<(), DemoError> {
        verify::sleep_until(end).await;
        if plan_for(self, at).await.is_ok() {
            return Ok(());
        }
        say(format!(
            "No complete incremental covers {} yet; asking the daemon for one now.",
            stamp(at)
        ));
        if let Some(handle) = self.handle() {
            match handle
                .backup_now(INCREMENTAL_JOB, BackupNow::default(), caller())
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == ErrorCode::JobRunning => {}
                Err(e) => return Err(refused("an incremental backup", e)),
            }
        }
        let deadline = tokio::time::Instant::now() + BACKUP_WAIT;
        loop {
            match plan_for(self, at).await {
                Ok(_) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// Restores the shop to `at` beside the original and compares it with
    /// what was recorded at that instant.
    pub(super) async fn restore_and_compare(
        &mut self,
        at: DateTime<Utc>,
        recorded: Snapshot,
    ) -> Result<Verified, DemoError> {
        let uri = self.source_uri();
        let client = self
            .client
            .clone()
            .ok_or_else(|| DemoError::Daemon("the source is not running".into()))?;
        let plan = plan_for(self, at).await?;
        say(format!(
            "Restoring the shop to {0} into database \"{RESTORED_DB}\" on the same server, decrypting with the identity, as this would:\n    mongo-backupd restore --config {1} --job {INCREMENTAL_JOB} --at {0} --identity {3} --to '{uri}' --ns-from 'shop.*' --ns-to '{RESTORED_DB}.*'\n{2}",
            stamp(at),
            self.dir.join(setup::CONFIG_FILE).display(),
            plan.render()
                .lines()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
            self.key.file.display()
        ));
        let namespaces = NsMapper::new(
            &[],
            &[],
            &[format!("{}.*", dataset::DB)],
            &[format!("{RESTORED_DB}.*")],
        )
        .map_err(DemoError::Daemon)?;
        let options = RestoreOptions {
            // The plan names the backups; this is filled in from it.
            from: crate::storage::BackupFiles::local(""),
            uri,
            drop: true,
            namespaces,
            dry_run: false,
            no_indexes: false,
            oplog_replay: true,
            connect_timeout: Duration::from_secs(10),
        };
        let summary = pitr::execute(&plan, &options, &CancellationToken::new()).await?;
        say(format!(
            "Restore complete: {} collections, {} documents inserted, {} oplog operations replayed.",
            summary.collections, summary.inserted, summary.oplog_applied
        ));
        let restored = verify::take(&client.database(RESTORED_DB))
            .await
            .map_err(mongo("reading the restored data"))?;
        let live = verify::take(&client.database(dataset::DB))
            .await
            .map_err(mongo("reading the source"))?;
        let later = self.writes.saturating_sub(self.writes_at_record);
        let moved = if verify::compare(&recorded, &live).is_empty() {
            "it has not changed since".to_string()
        } else {
            format!("it changed since ({later} writes after that instant, which the restore must leave out)")
        };
        say(format!(
            "Comparing every restored document, byte for byte, and every index with the shop as recorded at {}; {moved}.",
            stamp(at)
        ));
        let problems = verify::compare(&recorded, &restored);
        if !problems.is_empty() {
            for p in &problems {
                say(format!("Mismatch: {p}"));
            }
            return Err(DemoError::Mismatch { at: stamp(at) });
        }
        Ok(Verified {
            at,
            documents: recorded.documents(),
            collections: recorded.collections(),
        })
    }
}
