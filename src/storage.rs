//! Local backup storage: writing a backup directory in `mongodump`'s layout
//! so that a crash can never leave something that looks complete, and
//! reading it back with every byte checked.
//!
//! Layout: `<root>/<job>/<id>/` holds `<db>/<coll>.bson[.gz|.zst]`,
//! `<db>/<coll>.metadata.json[.gz|.zst]`, `oplog.bson[.gz|.zst]` and
//! `manifest.json`. While a backup is being written it lives in the hidden
//! `<root>/<job>/.partial-<id>/`; [`BackupWriter::commit`] makes it durable
//! and renames it into place in one step. Only a non-hidden directory with a
//! readable `manifest.json` is a complete backup, so an interrupted run, a
//! full disk or a power cut leaves at worst a `.partial-*` directory that
//! [`clean_partials`] removes.
//!
//! Gzip files are exactly what `mongodump --gzip` writes (one plain gzip
//! stream per file), so `mongorestore --gzip` reads an uncompressed or
//! gzip backup directly; zstd files are standard zstd frames (`zstd -d`).

mod copy;
pub mod crypt;
mod error;
mod names;
pub mod object;
mod place;
mod reader;
mod writer;

#[cfg(test)]
mod tests;

pub use copy::{copy_backup, delete_object_backup};
pub use error::StorageError;
pub use names::{escape_name, unescape_name};
pub use place::{BackupFiles, Location};
pub use reader::{open_verified, verify_file, BsonReader, MAX_DOCUMENT_SIZE};
pub use writer::{clean_partials, BackupWriter, FileEntry, FileSink, PARTIAL_PREFIX};

pub(crate) use names::validate_rel_path;
pub(crate) use place::block_on;
pub(crate) use reader::{check_digest, content_reader, map_read_error, HashingReader};

/// How the files of a backup are compressed. Stored in the manifest, so the
/// serialized names are part of the on-disk format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompressionKind {
    None,
    Gzip,
    Zstd,
}

impl CompressionKind {
    /// The file-name suffix this compression appends.
    pub fn suffix(self) -> &'static str {
        match self {
            CompressionKind::None => "",
            CompressionKind::Gzip => ".gz",
            CompressionKind::Zstd => ".zst",
        }
    }

    /// The compression a stored file uses, judged by its name the same way
    /// `mongorestore` does (a `.gz` suffix means gzip).
    pub fn from_file_name(name: &str) -> CompressionKind {
        if name.ends_with(".gz") {
            CompressionKind::Gzip
        } else if name.ends_with(".zst") {
            CompressionKind::Zstd
        } else {
            CompressionKind::None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CompressionKind::None => "none",
            CompressionKind::Gzip => "gzip",
            CompressionKind::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for CompressionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compression kind and its level. The level is ignored for `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    pub kind: CompressionKind,
    pub level: i32,
}

impl Compression {
    pub fn none() -> Compression {
        Compression {
            kind: CompressionKind::None,
            level: 0,
        }
    }

    /// Gzip at level 6: Go's `gzip.DefaultCompression`, what `mongodump
    /// --gzip` uses.
    pub fn gzip() -> Compression {
        Compression {
            kind: CompressionKind::Gzip,
            level: 6,
        }
    }

    /// Zstd at `level` (1..=19 are the usual levels; 0 means zstd's default
    /// of 3; out-of-range levels are clamped by libzstd).
    pub fn zstd(level: i32) -> Compression {
        Compression {
            kind: CompressionKind::Zstd,
            level,
        }
    }

    pub fn suffix(&self) -> &'static str {
        self.kind.suffix()
    }
}
