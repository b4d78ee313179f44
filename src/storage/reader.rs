//! Reading a backup back: checking stored files against the manifest and
//! walking BSON streams with every document validated, so a restore never
//! feeds damaged data to a server and verification can say exactly where a
//! file is damaged.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bson::{RawBsonRef, RawDocument, RawDocumentBuf};
use sha2::{Digest, Sha256};

use super::{crypt, BackupFiles, CompressionKind, FileEntry, StorageError};

/// The largest BSON document a dump can hold: MongoDB's 16 MiB limit plus
/// the 16 KiB of headroom the server allows for internal documents such as
/// oplog entries (mongodump uses the same bound).
pub const MAX_DOCUMENT_SIZE: usize = 16 * 1024 * 1024 + 16 * 1024;

/// Checks that the file `entry` describes exists in `files` with the
/// recorded size and SHA-256 (of the stored bytes, so an encrypted file is
/// checked without its key).
pub fn verify_file(files: &BackupFiles, entry: &FileEntry) -> Result<(), StorageError> {
    files.check_rel(&entry.path)?;
    let (path, raw) = files.open_raw(&entry.path, Some(entry.size))?;
    let mut hashing = HashingReader::new(raw);
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| StorageError::io(&path, "read", e))?;
    check_digest(&path, entry, hashing.len(), &hashing.hex_digest())
}

/// Verifies the file like [`verify_file`], then returns a reader of its
/// content: decrypted when it is encrypted, then decompressed (both chosen
/// by the file's suffixes). A local file is hashed and then read through
/// the same open handle, so it cannot be swapped in between; an object is
/// read twice.
pub fn open_verified(
    files: &BackupFiles,
    entry: &FileEntry,
) -> Result<Box<dyn Read + Send>, StorageError> {
    files.check_rel(&entry.path)?;
    let (path, raw) = match files.local_dir() {
        Some(dir) => {
            let (path, mut file) = open_local(dir, &entry.path, Some(entry.size))?;
            let mut hashing = HashingReader::new(&mut file);
            io::copy(&mut hashing, &mut io::sink())
                .map_err(|e| StorageError::io(&path, "read", e))?;
            check_digest(&path, entry, hashing.len(), &hashing.hex_digest())?;
            file.seek(SeekFrom::Start(0))
                .map_err(|e| StorageError::io(&path, "rewind", e))?;
            (path, Box::new(file) as Box<dyn Read + Send>)
        }
        None => {
            verify_file(files, entry)?;
            files.open_raw(&entry.path, Some(entry.size))?
        }
    };
    content_reader(
        files,
        &entry.path,
        BufReader::with_capacity(256 * 1024, raw),
        &path,
    )
}

/// The content of stored file `name` read through `raw`: decrypted with
/// the backup's identities when the name ends in `.age`, then
/// decompressed.
pub(crate) fn content_reader<'a, R: Read + Send + 'a>(
    files: &BackupFiles,
    name: &str,
    raw: R,
    path: &Path,
) -> Result<Box<dyn Read + Send + 'a>, StorageError> {
    match name.strip_suffix(crypt::AGE_SUFFIX) {
        None => decoder_for(name, raw, path),
        Some(inner) => {
            let Some(identities) = files.identities() else {
                return Err(StorageError::NeedsIdentity {
                    path: path.to_path_buf(),
                });
            };
            let plain = crypt::decrypt(identities, raw, &path.display().to_string(), &[]).map_err(
                |source| StorageError::Decrypt {
                    path: path.to_path_buf(),
                    source: Box::new(source),
                },
            )?;
            decoder_for(inner, plain, path)
        }
    }
}

/// A decompressing reader over `raw` for a file named `name`.
pub(crate) fn decoder_for<'a, R: Read + Send + 'a>(
    name: &str,
    raw: R,
    path: &Path,
) -> Result<Box<dyn Read + Send + 'a>, StorageError> {
    Ok(match CompressionKind::from_file_name(name) {
        CompressionKind::None => Box::new(raw),
        // Multi-member, like gunzip: a single-member stream (what we and
        // mongodump write) reads the same, and trailing garbage is an error
        // instead of being silently ignored.
        CompressionKind::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        CompressionKind::Zstd => Box::new(
            zstd::stream::read::Decoder::new(raw)
                .map_err(|e| StorageError::io(path, "start zstd decompression of", e))?,
        ),
    })
}

/// Opens file `rel` of the backup in `dir` and checks what can be checked
/// without reading it: that it is there, a regular file, and of the
/// recorded size.
pub(crate) fn open_local(
    dir: &Path,
    rel: &str,
    expected_size: Option<u64>,
) -> Result<(PathBuf, File), StorageError> {
    let path = dir.join(rel);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StorageError::Missing { path });
        }
        Err(e) => return Err(StorageError::io(&path, "open", e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| StorageError::io(&path, "inspect", e))?;
    if !meta.is_file() {
        return Err(StorageError::Corrupt {
            path,
            detail: "it is not a regular file".to_string(),
        });
    }
    if let Some(size) = expected_size {
        check_size(&path, size, meta.len())?;
    }
    Ok((path, file))
}

fn check_size(path: &Path, expected: u64, actual: u64) -> Result<(), StorageError> {
    if actual < expected {
        Err(StorageError::Truncated {
            path: path.to_path_buf(),
            detail: format!("it has {actual} bytes but the manifest recorded {expected}"),
        })
    } else if actual > expected {
        Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            detail: format!(
                "it has {actual} bytes but the manifest recorded {expected}, so something \
                 was appended to it or it was replaced"
            ),
        })
    } else {
        Ok(())
    }
}

/// Compares what was read with the manifest's record.
pub(crate) fn check_digest(
    path: &Path,
    entry: &FileEntry,
    len: u64,
    digest: &str,
) -> Result<(), StorageError> {
    // The size was checked at open; a different count now means the file
    // changed while it was read.
    check_size(path, entry.size, len)?;
    if !digest.eq_ignore_ascii_case(&entry.sha256) {
        return Err(StorageError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: entry.sha256.clone(),
            actual: digest.to_string(),
        });
    }
    Ok(())
}

/// Hashes and counts every byte read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> HashingReader<R> {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn hex_digest(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// Classifies an error from reading (and decompressing) `path`. Errors that
/// come from the OS are I/O failures; the others come from the
/// decompressor, and mean the data is damaged or cut short.
pub(crate) fn map_read_error(path: &Path, context: &str, err: io::Error) -> StorageError {
    if err.raw_os_error().is_some() {
        return StorageError::io(path, "read", err);
    }
    match err.kind() {
        io::ErrorKind::UnexpectedEof => StorageError::Truncated {
            path: path.to_path_buf(),
            detail: format!("the compressed data ends early ({context}: {err})"),
        },
        _ => StorageError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("it cannot be decompressed ({context}: {err})"),
        },
    }
}

/// Iterates over a stream of concatenated BSON documents (a `.bson` file of
/// a dump, decompressed), validating each one completely. Errors name the
/// file, the document's number (the first is #1) and its byte offset in the
/// decompressed stream; after an error the iterator ends.
pub struct BsonReader<R: Read> {
    inner: R,
    path: PathBuf,
    offset: u64,
    documents: u64,
    done: bool,
}

impl<R: Read> BsonReader<R> {
    /// `path` is only used in error messages.
    pub fn new(inner: R, path: impl Into<PathBuf>) -> BsonReader<R> {
        BsonReader {
            inner,
            path: path.into(),
            offset: 0,
            documents: 0,
            done: false,
        }
    }

    /// Documents read successfully so far.
    pub fn documents_read(&self) -> u64 {
        self.documents
    }

    /// Bytes of the (decompressed) stream consumed by those documents.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn read_document(&mut self) -> Result<Option<RawDocumentBuf>, StorageError> {
        let number = self.documents + 1;
        let offset = self.offset;
        let mut prefix = [0u8; 4];
        let got = self.read_full(&mut prefix, number, offset)?;
        if got == 0 {
            return Ok(None);
        }
        if got < prefix.len() {
            return Err(self.truncated(format!(
                "the stream ends {got} byte(s) into the length of document #{number} \
                 at byte offset {offset}"
            )));
        }
        let declared = i32::from_le_bytes(prefix);
        let len = match usize::try_from(declared) {
            Ok(len) if (5..=MAX_DOCUMENT_SIZE).contains(&len) => len,
            _ => {
                return Err(self.corrupt(format!(
                    "document #{number} at byte offset {offset} declares a length of \
                     {declared} bytes, outside the valid 5..={MAX_DOCUMENT_SIZE}"
                )))
            }
        };
        let mut buf = vec![0u8; len];
        buf[..4].copy_from_slice(&prefix);
        let got = self.read_full(&mut buf[4..], number, offset)?;
        if got < len - 4 {
            return Err(self.truncated(format!(
                "document #{number} at byte offset {offset} declares {len} bytes but the \
                 stream ends after {}",
                got + 4
            )));
        }
        if buf[len - 1] != 0 {
            return Err(self.corrupt(format!(
                "document #{number} at byte offset {offset} does not end with the NUL byte \
                 BSON requires"
            )));
        }
        let doc = RawDocumentBuf::from_bytes(buf).map_err(|e| {
            self.corrupt(format!(
                "document #{number} at byte offset {offset} is not valid BSON: {e}"
            ))
        })?;
        walk(&doc).map_err(|e| {
            self.corrupt(format!(
                "document #{number} at byte offset {offset} is not valid BSON: {e}"
            ))
        })?;
        self.offset += len as u64;
        self.documents = number;
        Ok(Some(doc))
    }

    /// Fills `buf` unless the stream ends first; returns the bytes read.
    fn read_full(
        &mut self,
        buf: &mut [u8],
        number: u64,
        offset: u64,
    ) -> Result<usize, StorageError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let context = format!("reading document #{number} at byte offset {offset}");
                    return Err(map_read_error(&self.path, &context, e));
                }
            }
        }
        Ok(filled)
    }

    fn truncated(&self, detail: String) -> StorageError {
        StorageError::Truncated {
            path: self.path.clone(),
            detail,
        }
    }

    fn corrupt(&self, detail: String) -> StorageError {
        StorageError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }
}

impl<R: Read> Iterator for BsonReader<R> {
    type Item = Result<RawDocumentBuf, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_document() {
            Ok(Some(doc)) => Some(Ok(doc)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

/// Decodes every element of `doc`, nested ones included, so that damage
/// anywhere inside is found now rather than by the server during a
/// restore. Iterative, because a hostile file could nest deeply enough to
/// overflow the stack.
fn walk(doc: &RawDocument) -> Result<(), bson::raw::Error> {
    let mut pending = vec![doc];
    while let Some(doc) = pending.pop() {
        for element in doc.iter() {
            let (_key, value) = element?;
            match value {
                RawBsonRef::Document(sub) => pending.push(sub),
                RawBsonRef::Array(array) => {
                    pending.push(RawDocument::from_bytes(array.as_bytes())?)
                }
                RawBsonRef::JavaScriptCodeWithScope(code) => pending.push(code.scope),
                _ => {}
            }
        }
    }
    Ok(())
}
