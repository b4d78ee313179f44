//! `mongo-backupd export`: resolving the backup (`--from DIR`, `--from
//! JOB/ID --location NAME`, or `--at TIME --job JOB`) exactly as `restore`
//! does, then writing the files with [`crate::export`].

use std::path::PathBuf;

use clap::Args;

use super::commands::{cancel_on_signals, fail, load_config};
use super::storage_cmd::{backup_files, load_identities, open_location};
use super::{exit, ConfigArg};
use crate::error_chain;
use crate::export::{
    self, ExportError, ExportOptions, Format, RedactPath, Snapshot, SnapshotError,
};
use crate::restore::{self, NsMapper, RestoreError};

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// The backup: its directory (the one holding manifest.json), or with
    /// --location its JOB/ID there.
    #[arg(long, required_unless_present = "at", conflicts_with = "at")]
    pub from: Option<PathBuf>,
    /// Read the backups from this configured [storage.NAME] (a copy, e.g.
    /// in an object store) instead of a directory or the job's own storage.
    #[arg(long)]
    pub location: Option<String>,
    /// The age identity file (private key) that decrypts encrypted backups.
    #[arg(long, env = "MONGO_BACKUPD_IDENTITY")]
    pub identity: Option<PathBuf>,
    /// Export the data as of this instant (RFC 3339, e.g.
    /// 2026-11-21T10:15:00Z) or "latest", from the full and incremental
    /// backups of --job's source.
    #[arg(long, requires = "job")]
    pub at: Option<String>,
    /// The configured job whose source and storage hold the backups (with --at).
    #[arg(long)]
    pub job: Option<String>,
    #[command(flatten)]
    pub config: ConfigArg,
    /// json: canonical Extended JSON, one document a line (for
    /// mongoimport); csv: the --fields chosen, with a header line.
    #[arg(long, value_parser = ["json", "csv"], default_value = "json")]
    pub format: String,
    /// The CSV columns, as dot paths (a,b.c); required with --format csv.
    #[arg(long, value_delimiter = ',')]
    pub fields: Vec<String>,
    /// The directory to write <db>/<coll>.json (or .csv) into; it must be
    /// empty or new unless --force.
    #[arg(long)]
    pub out: PathBuf,
    /// Write into a non-empty --out (files of the same name are replaced).
    #[arg(long)]
    pub force: bool,
    /// At most this many documents per collection, a uniform random
    /// sample kept in the collection's order.
    #[arg(long, value_name = "N")]
    pub sample: Option<usize>,
    /// Seed of the sample, to draw the same documents again.
    #[arg(long, requires = "sample")]
    pub seed: Option<u64>,
    /// Replace the values at this dot path with consistent fakes (repeat
    /// it, or separate paths with commas; `address.*` is every field
    /// under address).
    #[arg(long, value_name = "PATH", value_delimiter = ',')]
    pub redact: Vec<String>,
    /// Export only these namespaces (`db` or `db.coll`, `*` wildcards).
    #[arg(long = "ns-include")]
    pub ns_include: Vec<String>,
    /// Leave these namespaces out.
    #[arg(long = "ns-exclude")]
    pub ns_exclude: Vec<String>,
}

pub(super) async fn run(args: ExportArgs) -> u8 {
    let opts = match options(&args) {
        Ok(o) => o,
        Err(msg) => return fail(msg, exit::USAGE),
    };
    let created = match export::prepare(&opts) {
        Ok(created) => created,
        Err(e) => return export_failed(&e),
    };
    let out = opts.out.clone();
    let code = export(args, opts).await;
    if code != 0 && created {
        // Only removes it if nothing was written into it.
        let _ = std::fs::remove_dir(&out);
    }
    code
}

async fn export(args: ExportArgs, opts: ExportOptions) -> u8 {
    let identities = match load_identities(args.identity.as_deref()) {
        Ok(ids) => ids,
        Err(code) => return code,
    };
    let snapshot = match (&args.from, &args.at) {
        (Some(from), _) => {
            let files = match backup_files(from, args.location.as_deref(), &args.config, identities)
            {
                Ok(f) => f,
                Err(code) => return code,
            };
            let shown = files.path();
            let opened = tokio::task::spawn_blocking(move || Snapshot::of_backup(files)).await;
            match opened {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    return snapshot_failed(&format!("export of {}", shown.display()), &e)
                }
                Err(e) => return fail(format!("export failed: {e}"), exit::SOFTWARE),
            }
        }
        (None, Some(at)) => match point_in_time(&args, at, identities).await {
            Ok(s) => s,
            Err(code) => return code,
        },
        (None, None) => {
            return fail(
                "name the backup with --from, or a time with --at",
                exit::USAGE,
            )
        }
    };
    print!("{}", describe(&snapshot));
    let cancel = cancel_on_signals();
    let out = opts.out.clone();
    let done = tokio::task::spawn_blocking(move || export::run(&snapshot, &opts, &cancel)).await;
    match done {
        Ok(Ok(summary)) => {
            print!("{}", summary.render(&out));
            0
        }
        Ok(Err(e)) => export_failed(&e),
        Err(e) => fail(format!("export failed: {e}"), exit::SOFTWARE),
    }
}

fn options(args: &ExportArgs) -> Result<ExportOptions, String> {
    let namespaces = NsMapper::new(&args.ns_include, &args.ns_exclude, &[], &[])?;
    let redact = args
        .redact
        .iter()
        .map(|p| RedactPath::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let format = match args.format.as_str() {
        "csv" => Format::Csv,
        _ => Format::Json,
    };
    Ok(ExportOptions {
        out: args.out.clone(),
        format,
        fields: args.fields.clone(),
        sample: args.sample,
        seed: args.seed,
        redact,
        namespaces,
        force: args.force,
    })
}

/// The snapshot of `--at TIME --job JOB`: the chain is found and checked
/// as `restore --at` does it, and its plan shown.
async fn point_in_time(
    args: &ExportArgs,
    at: &str,
    identities: Option<std::sync::Arc<crate::storage::crypt::Identities>>,
) -> Result<Snapshot, u8> {
    let at: restore::pitr::At = at.parse().map_err(|e| fail(e, exit::USAGE))?;
    let cfg = load_config(&args.config)?;
    let Some(job) = args.job.as_ref().and_then(|j| cfg.jobs.get(j)) else {
        return Err(fail(
            format!(
                "--at needs --job naming a configured job; the jobs are: {}",
                cfg.jobs.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            exit::USAGE,
        ));
    };
    let name = args.location.as_deref().unwrap_or(&job.storage);
    let location = open_location(&cfg, name)?;
    let what = format!("export of source \"{}\" at {}", job.source, describe_at(at));
    let plan = restore::pitr::plan_blocking(&location, identities, &job.source, at)
        .await
        .map_err(|e| restore_failed(&what, &e))?;
    let opened = tokio::task::spawn_blocking(move || Snapshot::of_plan(&plan)).await;
    match opened {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(snapshot_failed(&what, &e)),
        Err(e) => Err(fail(format!("{what} failed: {e}"), exit::SOFTWARE)),
    }
}

fn describe_at(at: restore::pitr::At) -> String {
    match at {
        restore::pitr::At::Latest => "the latest time".into(),
        restore::pitr::At::Time(t) => t.to_rfc3339(),
    }
}

/// Which backups are read and the instant the export reflects.
fn describe(snapshot: &Snapshot) -> String {
    let ids: Vec<String> = snapshot.backups().map(|m| m.id.clone()).collect();
    let from = match ids.split_first() {
        Some((full, [])) => format!("backup {full}"),
        Some((full, rest)) => format!(
            "backup {full} and the oplog of {} later backup{}",
            rest.len(),
            if rest.len() == 1 { "" } else { "s" }
        ),
        None => "no backup".into(),
    };
    match snapshot.as_of() {
        // A point in time: everything up to the end of that second.
        Some(t) if t.i == u32::MAX => format!(
            "Exporting from {from}: the data as of {} (every operation of that second included).\n",
            t.to_datetime().to_rfc3339()
        ),
        Some(t) => format!(
            "Exporting from {from}: the data as of {} ({t}).\n",
            t.to_datetime().to_rfc3339()
        ),
        None => format!(
            "Exporting from {from}: not consistent to one instant (the source had no oplog).\n"
        ),
    }
}

fn restore_failed(what: &str, e: &RestoreError) -> u8 {
    let code = match e {
        RestoreError::Damaged { .. } | RestoreError::Catalog(_) => exit::DATAERR,
        _ => exit::FAILURE,
    };
    fail(format!("{what} failed: {}", error_chain(e)), code)
}

fn snapshot_failed(what: &str, e: &SnapshotError) -> u8 {
    let code = match e {
        SnapshotError::Damaged { .. } | SnapshotError::Catalog(_) => exit::DATAERR,
        _ => exit::FAILURE,
    };
    fail(format!("{what} failed: {}", error_chain(e)), code)
}

fn export_failed(e: &ExportError) -> u8 {
    match e {
        ExportError::Snapshot(s) => snapshot_failed("export", s),
        ExportError::Io { .. } => fail(format!("export failed: {}", error_chain(e)), exit::IOERR),
        ExportError::Usage(msg) => fail(msg, exit::USAGE),
        ExportError::Cancelled => fail(e, exit::INTERRUPTED),
    }
}
