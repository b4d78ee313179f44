//! Tests of writing and reading backup storage.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use bson::{doc, RawDocumentBuf};
use sha2::{Digest, Sha256};

use super::*;

mod bson_stream;
mod crypt_writer;

fn bson_bytes(docs: &[bson::Document]) -> Vec<u8> {
    let mut out = Vec::new();
    for d in docs {
        d.to_writer(&mut out).unwrap();
    }
    out
}

fn sample_docs(n: usize) -> Vec<bson::Document> {
    (0..n)
        .map(|i| doc! { "_id": i as i64, "name": format!("user {i}"), "tags": ["a", "b"], "nested": { "x": 1.5 } })
        .collect()
}

fn write_one(
    root: &Path,
    id: &str,
    rel: &str,
    compression: Compression,
    data: &[u8],
) -> (PathBuf, FileEntry) {
    let writer = BackupWriter::create(root, "job", id).unwrap();
    let mut sink = writer.file(rel, compression).unwrap();
    // Several writes, as the engine streams documents.
    for chunk in data.chunks(1000) {
        sink.write_all(chunk).unwrap();
    }
    let entry = sink.finish().unwrap();
    let dir = writer.commit(b"{}\n").unwrap();
    (dir, entry)
}

fn check_entry_matches_disk(dir: &Path, entry: &FileEntry) -> Vec<u8> {
    let stored = fs::read(dir.join(&entry.path)).unwrap();
    assert_eq!(entry.size, stored.len() as u64);
    assert_eq!(entry.sha256, hex::encode(Sha256::digest(&stored)));
    assert_eq!(entry.sha256, entry.sha256.to_lowercase());
    stored
}

#[test]
fn compression_suffixes_and_levels() {
    assert_eq!(Compression::none().suffix(), "");
    assert_eq!(Compression::gzip().suffix(), ".gz");
    assert_eq!(Compression::gzip().level, 6);
    assert_eq!(Compression::zstd(3).suffix(), ".zst");
    assert_eq!(Compression::zstd(3).level, 3);
    assert_eq!(
        CompressionKind::from_file_name("db/c.bson.gz"),
        CompressionKind::Gzip
    );
    assert_eq!(
        CompressionKind::from_file_name("oplog.bson.zst"),
        CompressionKind::Zstd
    );
    assert_eq!(
        CompressionKind::from_file_name("db/c.bson"),
        CompressionKind::None
    );
    assert_eq!(
        serde_json::to_string(&CompressionKind::Zstd).unwrap(),
        "\"zstd\""
    );
    assert_eq!(
        serde_json::from_str::<CompressionKind>("\"gzip\"").unwrap(),
        CompressionKind::Gzip
    );
}

#[test]
fn gzip_round_trip_is_a_plain_gzip_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let data = bson_bytes(&sample_docs(500));
    let (dir, entry) = write_one(
        tmp.path(),
        "b1",
        "db/users.bson",
        Compression::gzip(),
        &data,
    );
    assert_eq!(entry.path, "db/users.bson.gz");
    let stored = check_entry_matches_disk(&dir, &entry);
    assert_eq!(&stored[..2], &[0x1f, 0x8b], "gzip magic");
    assert!(stored.len() < data.len());
    // A single-member decoder reads it whole, as Go's gzip reader does.
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&stored[..])
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, data);
}

#[test]
fn zstd_round_trip_is_a_standard_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let data = bson_bytes(&sample_docs(500));
    let (dir, entry) = write_one(tmp.path(), "b1", "oplog.bson", Compression::zstd(3), &data);
    assert_eq!(entry.path, "oplog.bson.zst");
    let stored = check_entry_matches_disk(&dir, &entry);
    assert_eq!(&stored[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
    assert_eq!(zstd::decode_all(&stored[..]).unwrap(), data);
}

#[test]
fn uncompressed_round_trip_and_open_verified_for_every_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let data = bson_bytes(&sample_docs(50));
    for (i, compression) in [
        Compression::none(),
        Compression::gzip(),
        Compression::zstd(19),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("b{i}");
        let (dir, entry) = write_one(tmp.path(), &id, "db/c.bson", compression, &data);
        assert_eq!(entry.path, format!("db/c.bson{}", compression.suffix()));
        check_entry_matches_disk(&dir, &entry);
        verify_file(&crate::storage::BackupFiles::local(&dir), &entry).unwrap();
        let mut decoded = Vec::new();
        open_verified(&crate::storage::BackupFiles::local(&dir), &entry)
            .unwrap()
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, data, "{compression:?}");
        let docs: Vec<RawDocumentBuf> = BsonReader::new(
            open_verified(&crate::storage::BackupFiles::local(&dir), &entry).unwrap(),
            "x",
        )
        .collect::<Result<_, _>>()
        .unwrap();
        assert_eq!(docs.len(), 50);
    }
}

#[test]
fn empty_file_is_valid() {
    let tmp = tempfile::tempdir().unwrap();
    for compression in [
        Compression::none(),
        Compression::gzip(),
        Compression::zstd(1),
    ] {
        let id = format!("empty{}", compression.suffix());
        let (dir, entry) = write_one(tmp.path(), &id, "db/empty.bson", compression, &[]);
        verify_file(&crate::storage::BackupFiles::local(&dir), &entry).unwrap();
        let docs = BsonReader::new(
            open_verified(&crate::storage::BackupFiles::local(&dir), &entry).unwrap(),
            "x",
        )
        .count();
        assert_eq!(docs, 0);
    }
}

#[test]
fn file_sink_and_reader_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<FileSink>();
    assert_send::<BackupWriter>();
    assert_send::<Box<dyn Read + Send>>();
}

#[test]
fn sinks_are_written_from_other_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = BackupWriter::create(tmp.path(), "job", "b1").unwrap();
    let data = bson_bytes(&sample_docs(300));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let mut sink = writer
                .file(&format!("db{i}/c.bson"), Compression::zstd(1))
                .unwrap();
            let data = data.clone();
            std::thread::spawn(move || {
                for chunk in data.chunks(4096) {
                    sink.write_all(chunk).unwrap();
                }
                sink.finish().unwrap()
            })
        })
        .collect();
    let entries: Vec<FileEntry> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let dir = writer.commit(b"{}").unwrap();
    for entry in &entries {
        verify_file(&crate::storage::BackupFiles::local(&dir), entry).unwrap();
        assert_eq!(
            zstd::decode_all(&fs::read(dir.join(&entry.path)).unwrap()[..]).unwrap(),
            data
        );
    }
}

#[test]
fn commit_renames_atomically_with_manifest_last() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = BackupWriter::create(tmp.path(), "nightly", "20261121T020000Z-full").unwrap();
    let partial = writer.partial_dir().to_path_buf();
    assert_eq!(
        partial,
        tmp.path().join("nightly/.partial-20261121T020000Z-full")
    );
    assert!(partial.is_dir());
    let mut sink = writer
        .file("db/coll.metadata.json", Compression::none())
        .unwrap();
    sink.write_all(b"{\"indexes\":[]}").unwrap();
    sink.finish().unwrap();
    assert!(
        !partial.join("manifest.json").exists(),
        "manifest only at commit"
    );

    let final_dir = writer.commit(b"{\"id\":1}\n").unwrap();
    assert_eq!(final_dir, tmp.path().join("nightly/20261121T020000Z-full"));
    assert!(!partial.exists());
    assert_eq!(
        fs::read(final_dir.join("manifest.json")).unwrap(),
        b"{\"id\":1}\n"
    );
    assert_eq!(
        fs::read(final_dir.join("db/coll.metadata.json")).unwrap(),
        b"{\"indexes\":[]}"
    );
}

#[test]
fn dropping_an_uncommitted_writer_removes_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let partial;
    {
        let writer = BackupWriter::create(tmp.path(), "job", "b1").unwrap();
        partial = writer.partial_dir().to_path_buf();
        let mut sink = writer.file("db/c.bson", Compression::gzip()).unwrap();
        sink.write_all(&bson_bytes(&sample_docs(10))).unwrap();
        sink.finish().unwrap();
        // Dropped here: a cancelled task or a panic.
    }
    assert!(!partial.exists());
    assert!(!tmp.path().join("job/b1").exists());
    assert!(fs::read_dir(tmp.path().join("job"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn panic_while_writing_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let result = std::thread::spawn(move || {
        let writer = BackupWriter::create(&root, "job", "b1").unwrap();
        let mut sink = writer.file("oplog.bson", Compression::zstd(1)).unwrap();
        sink.write_all(b"partial").unwrap();
        panic!("simulated crash in the backup engine");
    })
    .join();
    assert!(result.is_err());
    assert!(!tmp.path().join("job/.partial-b1").exists());
}

#[test]
fn abort_removes_the_partial_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = BackupWriter::create(tmp.path(), "job", "b1").unwrap();
    let partial = writer.partial_dir().to_path_buf();
    writer.abort().unwrap();
    assert!(!partial.exists());
}

#[test]
fn refuses_existing_backups_and_duplicate_files() {
    let tmp = tempfile::tempdir().unwrap();
    write_one(tmp.path(), "b1", "oplog.bson", Compression::none(), b"");
    assert!(matches!(
        BackupWriter::create(tmp.path(), "job", "b1"),
        Err(StorageError::AlreadyExists { .. })
    ));

    let writer = BackupWriter::create(tmp.path(), "job", "b2").unwrap();
    // A second writer for the same id while the first is running.
    assert!(matches!(
        BackupWriter::create(tmp.path(), "job", "b2"),
        Err(StorageError::AlreadyExists { .. })
    ));
    let _first = writer.file("db/c.bson", Compression::none()).unwrap();
    assert!(matches!(
        writer.file("db/c.bson", Compression::none()),
        Err(StorageError::AlreadyExists { .. })
    ));
}

#[test]
fn refuses_names_that_escape_the_backup() {
    let tmp = tempfile::tempdir().unwrap();
    for (job, id) in [
        ("..", "b"),
        ("j/k", "b"),
        ("job", ".partial-x"),
        ("job", ""),
        ("", "b"),
    ] {
        assert!(
            matches!(
                BackupWriter::create(tmp.path(), job, id),
                Err(StorageError::InvalidName { .. })
            ),
            "{job:?} {id:?}"
        );
    }
    let writer = BackupWriter::create(tmp.path(), "job", "b1").unwrap();
    for rel in [
        "../x.bson",
        "/etc/passwd",
        "db/../../x",
        "manifest.json",
        "db//c.bson",
        "",
    ] {
        let err = writer.file(rel, Compression::none()).unwrap_err();
        assert!(matches!(err, StorageError::InvalidName { .. }), "{rel:?}");
    }
    // Escaped odd collection names are fine.
    let rel = format!("db/{}.bson", escape_name("../../etc/passwd"));
    assert_eq!(rel, "db/..%2F..%2Fetc%2Fpasswd.bson");
    writer
        .file(&rel, Compression::none())
        .unwrap()
        .finish()
        .unwrap();
    assert!(writer.partial_dir().join(&rel).is_file());
}

#[test]
fn commit_refuses_while_files_are_open_and_dropped_sinks_vanish() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = BackupWriter::create(tmp.path(), "job", "b1").unwrap();
    let partial = writer.partial_dir().to_path_buf();
    let mut open = writer.file("db/c.bson", Compression::none()).unwrap();
    open.write_all(b"half").unwrap();
    let err = writer.commit(b"{}").unwrap_err();
    assert!(
        matches!(err, StorageError::FilesStillOpen { count: 1, .. }),
        "{err}"
    );
    assert!(!partial.exists(), "the failed commit dropped the writer");
    assert!(!tmp.path().join("job/b1").exists());
    drop(open);

    let writer = BackupWriter::create(tmp.path(), "job", "b2").unwrap();
    let mut abandoned = writer.file("db/gone.bson", Compression::gzip()).unwrap();
    abandoned.write_all(b"xxxx").unwrap();
    let abandoned_path = writer.partial_dir().join("db/gone.bson.gz");
    assert!(abandoned_path.exists());
    drop(abandoned);
    assert!(
        !abandoned_path.exists(),
        "an unfinished file never reaches a backup"
    );
    let dir = writer.commit(b"{}").unwrap();
    assert!(dir.join("manifest.json").is_file());
}

#[test]
fn clean_partials_removes_only_leftovers() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(clean_partials(tmp.path(), "job").unwrap().is_empty());
    write_one(tmp.path(), "done", "oplog.bson", Compression::none(), b"");
    fs::create_dir_all(tmp.path().join("job/.partial-old/db")).unwrap();
    fs::write(tmp.path().join("job/.partial-old/db/c.bson"), b"x").unwrap();
    fs::create_dir_all(tmp.path().join("job/.partial-older")).unwrap();
    fs::create_dir_all(tmp.path().join("other/.partial-keep")).unwrap();

    let removed = clean_partials(tmp.path(), "job").unwrap();
    assert_eq!(
        removed,
        vec![
            tmp.path().join("job/.partial-old"),
            tmp.path().join("job/.partial-older")
        ]
    );
    assert!(tmp.path().join("job/done/manifest.json").is_file());
    assert!(tmp.path().join("other/.partial-keep").is_dir());
}

fn stored(tmp: &Path, data: &[u8]) -> (PathBuf, FileEntry) {
    write_one(tmp, "b1", "db/c.bson", Compression::none(), data)
}

#[test]
fn verify_file_detects_missing_truncated_grown_and_altered_files() {
    let tmp = tempfile::tempdir().unwrap();
    let data = bson_bytes(&sample_docs(20));
    let (dir, entry) = stored(tmp.path(), &data);
    let path = dir.join(&entry.path);
    verify_file(&crate::storage::BackupFiles::local(&dir), &entry).unwrap();

    // Same size, one byte changed.
    let mut altered = data.clone();
    altered[100] ^= 0xff;
    fs::write(&path, &altered).unwrap();
    match verify_file(&crate::storage::BackupFiles::local(&dir), &entry).unwrap_err() {
        StorageError::ChecksumMismatch {
            path: p,
            expected,
            actual,
        } => {
            assert_eq!(p, path);
            assert_eq!(expected, entry.sha256);
            assert_eq!(actual, hex::encode(Sha256::digest(&altered)));
        }
        other => panic!("{other}"),
    }
    assert!(open_verified(&crate::storage::BackupFiles::local(&dir), &entry).is_err());

    fs::write(&path, &data[..data.len() - 10]).unwrap();
    let err = verify_file(&crate::storage::BackupFiles::local(&dir), &entry).unwrap_err();
    assert!(matches!(err, StorageError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()));

    let mut grown = data.clone();
    grown.extend_from_slice(b"junk");
    fs::write(&path, &grown).unwrap();
    let err = verify_file(&crate::storage::BackupFiles::local(&dir), &entry).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");

    fs::remove_file(&path).unwrap();
    let err = verify_file(&crate::storage::BackupFiles::local(&dir), &entry).unwrap_err();
    assert!(matches!(err, StorageError::Missing { .. }), "{err}");

    let escaping = FileEntry {
        path: "../../etc/passwd".into(),
        ..entry.clone()
    };
    let err = verify_file(&crate::storage::BackupFiles::local(&dir), &escaping).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
}
