//! `mongo-backupd export`: a backup's collections (at its consistent
//! point, or at a point in time of a chain) written as files other tools
//! read, with no server involved: canonical Extended JSON v2, one document
//! a line (what `mongoimport` reads), or CSV with chosen fields; optionally
//! a random sample per collection and chosen fields replaced with
//! consistent fakes, so sanitized test or fallback data can be made from a
//! real backup.
//!
//! The documents come from [`snapshot`], which applies the backup's oplog
//! without a server. Files are `<out>/<db>/<coll>.json` (or `.csv`; the
//! collection name escaped as in the backup), each written under a
//! temporary name and renamed when complete.

mod csv;
mod output;
pub mod redact;
pub mod sample;
pub mod snapshot;

use std::path::{Path, PathBuf};

use bson::{Bson, Document, RawDocumentBuf};
use tokio_util::sync::CancellationToken;

use crate::restore::NsMapper;
use crate::storage::escape_name;
pub use redact::{RedactPath, Redactor};
use sample::{Reservoir, Rng};
pub use snapshot::{Snapshot, SnapshotCollection, SnapshotError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Canonical Extended JSON v2, one document a line.
    Json,
    Csv,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub out: PathBuf,
    pub format: Format,
    /// The CSV columns (dot paths); required for CSV, refused for JSON.
    pub fields: Vec<String>,
    /// At most this many documents per collection, drawn uniformly.
    pub sample: Option<usize>,
    /// Seeds the sample (drawn at random when None; the summary shows it).
    pub seed: Option<u64>,
    pub redact: Vec<RedactPath>,
    pub namespaces: NsMapper,
    /// Write into a non-empty `out`.
    pub force: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("could not {op} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error("the export was interrupted; the files completed so far are in place, the one being written was removed")]
    Cancelled,
}

impl ExportError {
    fn io(path: &Path, op: &'static str, source: std::io::Error) -> ExportError {
        ExportError::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    }
}

/// One file written.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedFile {
    pub namespace: String,
    pub path: PathBuf,
    pub documents: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportSummary {
    pub files: Vec<ExportedFile>,
    pub documents: u64,
    /// Values replaced by `--redact`.
    pub redacted: u64,
    /// Views, which hold no documents of their own and are not exported.
    pub views_skipped: Vec<String>,
    /// The seed the sample was drawn with.
    pub seed: Option<u64>,
}

impl ExportSummary {
    /// What the command prints at the end.
    pub fn render(&self, out: &Path) -> String {
        let n = self.files.len();
        let mut text = format!(
            "Exported {n} collection{}, {} documents, {} values redacted, into {}.\n",
            if n == 1 { "" } else { "s" },
            self.documents,
            self.redacted,
            out.display()
        );
        for f in &self.files {
            text.push_str(&format!(
                "  {:<40} {:>10} documents  {}\n",
                f.namespace,
                f.documents,
                f.path.display()
            ));
        }
        for v in &self.views_skipped {
            text.push_str(&format!(
                "  {v:<40} view, not exported (a view stores no documents)\n"
            ));
        }
        if let Some(seed) = self.seed {
            text.push_str(&format!("The sample was drawn with --seed {seed}.\n"));
        }
        text
    }
}

/// Checks the options and prepares `out` (before the backup is read, so a
/// mistake costs nothing). True when it created `out`.
pub fn prepare(opts: &ExportOptions) -> Result<bool, ExportError> {
    match opts.format {
        Format::Csv => {
            csv::parse_fields(&opts.fields).map_err(ExportError::Usage)?;
        }
        Format::Json if !opts.fields.is_empty() => {
            return Err(ExportError::Usage(
                "--fields chooses the columns of --format csv; JSON exports whole documents".into(),
            ))
        }
        Format::Json => {}
    }
    if opts.sample == Some(0) {
        return Err(ExportError::Usage(
            "--sample takes a number of documents above 0".into(),
        ));
    }
    output::prepare(&opts.out, opts.force)
}

/// Writes every selected collection of `snapshot`. Blocking (see
/// [`snapshot`]); checks `cancel` between documents.
pub fn run(
    snapshot: &Snapshot,
    opts: &ExportOptions,
    cancel: &CancellationToken,
) -> Result<ExportSummary, ExportError> {
    prepare(opts)?;
    let redactor = if opts.redact.is_empty() {
        Redactor::new(Vec::new(), [0; 32])
    } else {
        let key = redact::random_key()
            .map_err(|e| ExportError::io(Path::new("/dev/urandom"), "read", e))?;
        Redactor::new(opts.redact.clone(), key)
    };
    let seed = match (opts.sample, opts.seed) {
        (None, _) => None,
        (Some(_), Some(s)) => Some(s),
        (Some(_), None) => {
            let mut b = [0u8; 8];
            sample::os_random(&mut b)
                .map_err(|e| ExportError::io(Path::new("/dev/urandom"), "read", e))?;
            Some(u64::from_be_bytes(b) >> 11)
        }
    };
    let fields = match opts.format {
        Format::Csv => csv::parse_fields(&opts.fields).map_err(ExportError::Usage)?,
        Format::Json => Vec::new(),
    };
    let mut summary = ExportSummary {
        seed,
        ..ExportSummary::default()
    };
    for coll in snapshot.collections() {
        if opts.namespaces.map(&coll.db, &coll.name).is_none() {
            continue;
        }
        let ns = coll.namespace();
        if coll.is_view() {
            tracing::info!("View {ns} was not exported: a view stores no documents.");
            summary.views_skipped.push(ns);
            continue;
        }
        let target = opts.out.join(&coll.db).join(format!(
            "{}.{}",
            escape_name(&coll.name),
            opts.format.extension()
        ));
        let mut file = output::AtomicFile::create(target)?;
        let mut writer = DocWriter {
            format: opts.format,
            fields: &fields,
            redactor: &redactor,
            file: &mut file,
            documents: 0,
            redacted: 0,
        };
        writer.start(&opts.fields)?;
        let docs = snapshot.documents(coll)?;
        match (opts.sample, seed) {
            (Some(n), Some(seed)) => {
                let mut reservoir = Reservoir::new(n, Rng::for_namespace(seed, &ns));
                for doc in docs {
                    check(cancel)?;
                    reservoir.offer(doc?);
                }
                for doc in reservoir.into_sorted() {
                    writer.write(&doc)?;
                }
            }
            _ => {
                for doc in docs {
                    check(cancel)?;
                    writer.write(&doc?)?;
                }
            }
        }
        let (documents, redacted) = (writer.documents, writer.redacted);
        let path = file.commit()?;
        tracing::debug!(
            "Exported {documents} documents of {ns} to {}.",
            path.display()
        );
        summary.documents += documents;
        summary.redacted += redacted;
        summary.files.push(ExportedFile {
            namespace: ns,
            path,
            documents,
        });
    }
    Ok(summary)
}

fn check(cancel: &CancellationToken) -> Result<(), ExportError> {
    if cancel.is_cancelled() {
        Err(ExportError::Cancelled)
    } else {
        Ok(())
    }
}

struct DocWriter<'a> {
    format: Format,
    fields: &'a [Vec<String>],
    redactor: &'a Redactor,
    file: &'a mut output::AtomicFile,
    documents: u64,
    redacted: u64,
}

impl DocWriter<'_> {
    fn start(&mut self, names: &[String]) -> Result<(), ExportError> {
        if self.format == Format::Csv {
            self.file.write_all(csv::header(names).as_bytes())?;
        }
        Ok(())
    }

    fn write(&mut self, raw: &RawDocumentBuf) -> Result<(), ExportError> {
        let mut doc: Document = raw.to_document().map_err(|e| {
            ExportError::Snapshot(SnapshotError::Invalid(format!(
                "a document for {} cannot be decoded: {e}",
                self.file.target().display()
            )))
        })?;
        if !self.redactor.is_empty() {
            self.redacted += self.redactor.apply(&mut doc);
        }
        let line = match self.format {
            Format::Json => {
                let mut line = Bson::Document(doc).into_canonical_extjson().to_string();
                line.push('\n');
                line
            }
            Format::Csv => csv::row(&doc, self.fields),
        };
        self.file.write_all(line.as_bytes())?;
        self.documents += 1;
        Ok(())
    }
}
