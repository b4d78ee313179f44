//! Verifying a backup end to end: every stored file against its size and
//! checksum, every BSON document decoded, counts against the manifest,
//! metadata parsed, and nothing on disk that the manifest does not know.
//! Each file is read once: the raw bytes are hashed while the decompressed
//! stream is walked, because backups can be hundreds of gigabytes.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::fs;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use super::{CatalogError, Manifest, MANIFEST_FILE};
use crate::storage::{
    check_digest, content_reader, crypt, map_read_error, BackupFiles, BsonReader, CompressionKind,
    FileEntry, HashingReader, StorageError, PARTIAL_PREFIX,
};

/// Collection metadata is a few KiB; anything this large is not metadata
/// and is not worth holding in memory to find out.
const MAX_METADATA_SIZE: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Listed in the manifest, absent on disk.
    Missing,
    /// Shorter than recorded, or its content ends mid-document/mid-stream.
    Truncated,
    ChecksumMismatch,
    /// Longer than recorded, undecodable, or not valid BSON/JSON.
    Corrupt,
    /// Readable, but holds a different number of documents than recorded.
    CountMismatch,
    /// On disk but not in the manifest.
    Unlisted,
    /// The manifest contradicts itself or its directory.
    Inconsistent,
    /// Could not be read at all (permissions, I/O error).
    Unreadable,
}

/// One thing wrong with a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path relative to the backup directory (`manifest.json` for problems
    /// of the manifest itself).
    pub file: String,
    pub kind: ProblemKind,
    /// What exactly is wrong, as a sentence.
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.detail)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub backup: PathBuf,
    pub problems: Vec<Problem>,
    pub files_checked: usize,
    pub documents_checked: u64,
    /// False when encrypted files were checked by checksum only, because
    /// no identity was given.
    pub content_checked: bool,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The report the CLI prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let files = plural(self.files_checked as u64, "file");
        let docs = plural(self.documents_checked, "document");
        if self.is_ok() {
            out.push_str(&format!("Backup {}: OK\n", self.backup.display()));
            if self.content_checked {
                out.push_str(&format!(
                    "  {files} checked (size and sha256), {docs} read and valid, no problems \
                     found.\n"
                ));
            } else {
                out.push_str(&format!(
                    "  {files} checked (size and sha256 of the encrypted bytes), no problems \
                     found. The documents were not read: the backup is encrypted; pass \
                     --decrypt IDENTITY_FILE to check them too.\n"
                ));
            }
            return out;
        }
        let problems = plural(self.problems.len() as u64, "problem");
        out.push_str(&format!(
            "Backup {}: {problems} found\n",
            self.backup.display()
        ));
        out.push_str(&format!("  {files} checked, {docs} read.\n"));
        for problem in &self.problems {
            out.push_str(&format!("  - {problem}\n"));
        }
        out.push_str(
            "This backup is damaged or incomplete: restore from another backup. \
             If it is the only one, collections whose files are not listed above \
             can still be restored from it.\n",
        );
        out
    }

    fn problem(&mut self, file: &str, kind: ProblemKind, detail: String) {
        self.problems.push(Problem {
            file: file.to_string(),
            kind,
            detail,
        });
    }
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// What a file is expected to hold, which decides how it is checked.
#[derive(Debug, Clone)]
enum Role {
    /// BSON documents; `expected` is the manifest's count, if it has one.
    Bson {
        expected: Option<u64>,
        what: String,
    },
    Metadata,
    Other,
}

/// Verifies the backup in `files` (a directory or an object-store
/// prefix). Only a missing or unreadable manifest is an error; everything
/// wrong with the data is reported as a [`Problem`]. An encrypted backup
/// read without identities gets every checksum checked (they are of the
/// stored, encrypted bytes) but not its content.
pub fn verify_backup(files: &BackupFiles) -> Result<VerifyReport, CatalogError> {
    let dir = files.path();
    if let Some(local) = files.local_dir() {
        let meta =
            fs::metadata(local).map_err(|e| StorageError::io(local, "open backup directory", e))?;
        if !meta.is_dir() {
            return Err(StorageError::Corrupt {
                path: local.to_path_buf(),
                detail: "it is not a directory, so it is not a backup".to_string(),
            }
            .into());
        }
    }
    let manifest_path = dir.join(MANIFEST_FILE);
    let Some(bytes) = files.read_manifest()? else {
        return Err(CatalogError::NoManifest { dir });
    };
    let manifest = Manifest::from_json(&bytes, &manifest_path)?;

    let mut report = VerifyReport {
        backup: dir.clone(),
        problems: Vec::new(),
        files_checked: 0,
        documents_checked: 0,
        content_checked: true,
    };
    let roles = check_manifest(&dir, &manifest, &mut report);
    for entry in &manifest.files {
        let role = roles
            .get(entry.path.as_str())
            .cloned()
            .unwrap_or_else(|| role_by_name(&entry.path));
        check_file(files, entry, &role, &mut report);
        report.files_checked += 1;
    }
    report_unlisted(files, &manifest, &mut report)?;
    Ok(report)
}

/// Checks the manifest against itself and its directory, and returns the
/// role of every file it names.
fn check_manifest<'m>(
    dir: &Path,
    manifest: &'m Manifest,
    report: &mut VerifyReport,
) -> HashMap<&'m str, Role> {
    let dir_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if dir_name.starts_with(PARTIAL_PREFIX) {
        report.problem(
            MANIFEST_FILE,
            ProblemKind::Inconsistent,
            format!(
                "the backup sits in a {PARTIAL_PREFIX} directory: it was never committed \
                 (interrupted, or still being written) and must not be restored"
            ),
        );
    }
    // A backup copied elsewhere under another name is still the same
    // backup: only the listing of a storage location insists on the name.
    if manifest.consistent && manifest.oplog_end.is_none() {
        report.problem(
            MANIFEST_FILE,
            ProblemKind::Inconsistent,
            "the backup is marked consistent but has no oplog_end (T1)".to_string(),
        );
    }
    if let (Some(t0), Some(t1)) = (manifest.oplog_start, manifest.oplog_end) {
        if t0 > t1 {
            report.problem(
                MANIFEST_FILE,
                ProblemKind::Inconsistent,
                format!("oplog_start {t0} is after oplog_end {t1}"),
            );
        }
    }
    let mut seen = BTreeSet::new();
    for entry in &manifest.files {
        if !seen.insert(entry.path.as_str()) {
            report.problem(
                &entry.path,
                ProblemKind::Inconsistent,
                "the manifest lists this file more than once".to_string(),
            );
        }
    }

    let mut roles = HashMap::new();
    let mut require = |report: &mut VerifyReport, file: &'m str, role: Role, owner: &str| {
        if manifest.file(file).is_none() {
            report.problem(
                file,
                ProblemKind::Inconsistent,
                format!("{owner} names this file, but the manifest's list of files does not"),
            );
        } else {
            roles.insert(file, role);
        }
    };
    for coll in &manifest.collections {
        let owner = format!("collection {}.{}", coll.db, coll.name);
        if let Some(data) = &coll.data_file {
            let role = Role::Bson {
                expected: Some(coll.documents),
                what: owner.clone(),
            };
            require(report, data, role, &owner);
        }
        require(report, &coll.metadata_file, Role::Metadata, &owner);
    }
    if let Some(oplog) = &manifest.oplog {
        let role = Role::Bson {
            expected: Some(oplog.entries),
            what: "the oplog".to_string(),
        };
        require(report, &oplog.file, role, "the oplog record");
    }
    roles
}

/// The role of a file no record claims, judged by its name.
fn role_by_name(path: &str) -> Role {
    let path = path.strip_suffix(crypt::AGE_SUFFIX).unwrap_or(path);
    let kind = CompressionKind::from_file_name(path);
    let stem = &path[..path.len() - kind.suffix().len()];
    if stem.ends_with(".bson") {
        Role::Bson {
            expected: None,
            what: String::new(),
        }
    } else if stem.ends_with(".metadata.json") {
        Role::Metadata
    } else {
        Role::Other
    }
}

fn check_file(files: &BackupFiles, entry: &FileEntry, role: &Role, report: &mut VerifyReport) {
    if let Err(err) = files.check_rel(&entry.path) {
        return report_error(report, &entry.path, err);
    }
    let (path, raw) = match files.open_raw(&entry.path, Some(entry.size)) {
        Ok(opened) => opened,
        Err(err) => return report_error(report, &entry.path, err),
    };
    // Without the key an encrypted file's checksum is all there is to
    // check; its content is checked when verify is given the identity.
    let encrypted = entry.path.ends_with(crypt::AGE_SUFFIX);
    let role = if encrypted && files.identities().is_none() {
        report.content_checked = false;
        &Role::Other
    } else {
        role
    };
    let mut hashing = HashingReader::new(BufReader::with_capacity(256 * 1024, raw));
    let content = check_content(files, &entry.path, &path, role, &mut hashing, report);
    // Hash whatever the content check did not read, so the checksum covers
    // the whole file even when the content stopped early.
    if let Err(err) = io::copy(&mut hashing, &mut io::sink()) {
        return report_error(report, &entry.path, StorageError::io(&path, "read", err));
    }
    let digest = check_digest(&path, entry, hashing.len(), &hashing.hex_digest());
    let intact = digest.is_ok();
    if let Err(err) = digest {
        report_error(report, &entry.path, err);
    }
    match (content, role) {
        // A content error is worth reporting even after a checksum
        // mismatch: it says where the damage is.
        (Err(err), _) => report_error(report, &entry.path, err),
        (
            Ok(Some(found)),
            Role::Bson {
                expected: Some(expected),
                what,
            },
        ) if intact && found != *expected => report.problem(
            &entry.path,
            ProblemKind::CountMismatch,
            format!(
                "it holds {} but the manifest says {what} has {expected}",
                plural(found, "document")
            ),
        ),
        _ => {}
    }
}

/// Reads the decompressed content as its role demands; returns the number
/// of BSON documents for BSON files.
fn check_content<R: Read + Send>(
    files: &BackupFiles,
    rel: &str,
    path: &Path,
    role: &Role,
    raw: &mut R,
    report: &mut VerifyReport,
) -> Result<Option<u64>, StorageError> {
    match role {
        Role::Other => Ok(None),
        Role::Bson { .. } => {
            let decoded = content_reader(files, rel, raw, path)?;
            let mut reader = BsonReader::new(decoded, path);
            let mut failure = None;
            for document in &mut reader {
                if let Err(err) = document {
                    failure = Some(err);
                }
            }
            report.documents_checked += reader.documents_read();
            match failure {
                Some(err) => Err(err),
                None => Ok(Some(reader.documents_read())),
            }
        }
        Role::Metadata => {
            let mut json = Vec::new();
            content_reader(files, rel, raw, path)?
                .take(MAX_METADATA_SIZE + 1)
                .read_to_end(&mut json)
                .map_err(|e| map_read_error(path, "reading the metadata", e))?;
            if json.len() as u64 > MAX_METADATA_SIZE {
                return Err(StorageError::Corrupt {
                    path: path.to_path_buf(),
                    detail: format!(
                        "it is larger than {} MiB, which no collection metadata is",
                        MAX_METADATA_SIZE >> 20
                    ),
                });
            }
            match serde_json::from_slice::<serde_json::Value>(&json) {
                Ok(serde_json::Value::Object(_)) => Ok(None),
                Ok(_) => Err(StorageError::Corrupt {
                    path: path.to_path_buf(),
                    detail: "its metadata is JSON but not an object".to_string(),
                }),
                Err(err) => Err(StorageError::Corrupt {
                    path: path.to_path_buf(),
                    detail: format!("its metadata is not valid JSON ({err})"),
                }),
            }
        }
    }
}

/// Files on disk that the manifest does not list: leftovers or additions
/// that a restore would ignore, and a sign that something wrote into the
/// backup after it was committed.
fn report_unlisted(
    files: &BackupFiles,
    manifest: &Manifest,
    report: &mut VerifyReport,
) -> Result<(), CatalogError> {
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for file in files.list_files()? {
        if !listed.contains(file.as_str()) {
            report.problem(
                &file,
                ProblemKind::Unlisted,
                "it is stored but not listed in the manifest, so it was added after the backup \
                 was written (or left by a broken write); a restore ignores it"
                    .to_string(),
            );
        }
    }
    Ok(())
}

/// Turns a storage error about one file into a problem phrased for the
/// report, where the file is already named.
fn report_error(report: &mut VerifyReport, rel: &str, err: StorageError) {
    let (kind, detail) = match err {
        StorageError::Missing { .. } => (
            ProblemKind::Missing,
            "missing: the manifest lists it but it is not on disk".to_string(),
        ),
        StorageError::Truncated { detail, .. } => {
            (ProblemKind::Truncated, format!("truncated: {detail}"))
        }
        StorageError::ChecksumMismatch {
            expected, actual, ..
        } => (
            ProblemKind::ChecksumMismatch,
            format!(
                "checksum mismatch: the manifest recorded sha256 {expected} but the file has \
                 {actual}"
            ),
        ),
        StorageError::Corrupt { detail, .. } => {
            (ProblemKind::Corrupt, format!("corrupt: {detail}"))
        }
        other => (ProblemKind::Unreadable, other.to_string()),
    };
    report.problem(rel, kind, detail);
}
