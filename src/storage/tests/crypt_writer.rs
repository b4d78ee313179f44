//! Tests of BackupWriter with encryption: names, the stored bytes' hash,
//! round trips through age and the decompressor, and that no plaintext
//! reaches the disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bson::doc;

use super::{bson_bytes, check_entry_matches_disk};
use crate::storage::crypt::{self, Identities, Recipients, AGE_SUFFIX};
use crate::storage::*;

const MARKER: &str = "alice@example.com";

/// BSON documents with a known string in each (1000 times in all), more
/// than one age chunk even after compression for the uncompressed case.
fn marked_data() -> Vec<u8> {
    let docs: Vec<bson::Document> = (0..1000)
        .map(|i| doc! { "_id": i as i64, "email": MARKER, "n": format!("user {i}") })
        .collect();
    bson_bytes(&docs)
}

struct Keys {
    recipients: Arc<Recipients>,
    identity_files: Vec<PathBuf>,
}

fn keys(dir: &Path, count: usize) -> Keys {
    let mut publics = Vec::new();
    let mut identity_files = Vec::new();
    for i in 0..count {
        let (secret, public) = crypt::generate();
        let file = dir.join(format!("key{i}.txt"));
        fs::write(&file, format!("{secret}\n")).unwrap();
        publics.push(public);
        identity_files.push(file);
    }
    Keys {
        recipients: Arc::new(Recipients::parse(&publics).unwrap()),
        identity_files,
    }
}

/// Writes `data` as `rel` into an encrypted backup and commits it.
fn write_encrypted(
    root: &Path,
    keys: &Keys,
    rel: &str,
    compression: Compression,
    data: &[u8],
) -> (PathBuf, FileEntry) {
    let mut writer = BackupWriter::create(root, "job", "b1").unwrap();
    writer.encrypt_to(Arc::clone(&keys.recipients));
    assert_eq!(
        writer.recipients().unwrap().fingerprints(),
        keys.recipients.fingerprints()
    );
    let mut sink = writer.file(rel, compression).unwrap();
    for chunk in data.chunks(1000) {
        sink.write_all(chunk).unwrap();
    }
    let entry = sink.finish().unwrap();
    let dir = writer.commit(b"{}\n").unwrap();
    (dir, entry)
}

/// Decrypts with `identity_file`, then decompresses by the name without
/// `.age`.
fn read_back(dir: &Path, entry: &FileEntry, identity_file: &Path, expected: &[String]) -> Vec<u8> {
    let ids = Identities::from_file(identity_file).unwrap();
    let file = fs::File::open(dir.join(&entry.path)).unwrap();
    let plain = crypt::decrypt(&ids, file, &entry.path, expected).unwrap();
    let inner_name = entry.path.strip_suffix(AGE_SUFFIX).unwrap();
    let mut decoder: Box<dyn Read> = match CompressionKind::from_file_name(inner_name) {
        CompressionKind::None => Box::new(plain),
        CompressionKind::Gzip => Box::new(flate2::read::MultiGzDecoder::new(plain)),
        CompressionKind::Zstd => Box::new(zstd::stream::read::Decoder::new(plain).unwrap()),
    };
    let mut out = Vec::new();
    decoder.read_to_end(&mut out).unwrap();
    out
}

fn check_encrypted_round_trip(compression: Compression, expected_name: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keys(tmp.path(), 2);
    let data = marked_data();
    assert!(data.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()));
    let (dir, entry) = write_encrypted(
        &tmp.path().join("store"),
        &keys,
        "shop/users.bson",
        compression,
        &data,
    );
    assert_eq!(entry.path, expected_name);
    assert!(entry.path.ends_with(AGE_SUFFIX));
    let stored = check_entry_matches_disk(&dir, &entry);
    assert!(stored.starts_with(b"age-encryption.org/v1\n"));
    assert!(
        !stored.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
        "the plaintext marker reached the disk"
    );
    // The manifest check of the stored bytes works without any key.
    verify_file(&crate::storage::BackupFiles::local(&dir), &entry).unwrap();
    // Either recipient's identity reads it back.
    let fingerprints = keys.recipients.fingerprints();
    for identity_file in &keys.identity_files {
        assert_eq!(read_back(&dir, &entry, identity_file, &fingerprints), data);
    }
}

#[test]
fn encrypted_zstd_file_round_trips_and_hides_plaintext() {
    check_encrypted_round_trip(Compression::zstd(3), "shop/users.bson.zst.age");
}

#[test]
fn encrypted_gzip_file_round_trips_and_hides_plaintext() {
    check_encrypted_round_trip(Compression::gzip(), "shop/users.bson.gz.age");
}

#[test]
fn encrypted_uncompressed_file_round_trips_and_hides_plaintext() {
    check_encrypted_round_trip(Compression::none(), "shop/users.bson.age");
}

#[test]
fn encrypted_empty_file_is_a_complete_age_file() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keys(tmp.path(), 1);
    let (dir, entry) = write_encrypted(
        &tmp.path().join("store"),
        &keys,
        "oplog.bson",
        Compression::zstd(3),
        b"",
    );
    assert_eq!(entry.path, "oplog.bson.zst.age");
    check_entry_matches_disk(&dir, &entry);
    assert!(read_back(&dir, &entry, &keys.identity_files[0], &[]).is_empty());
}

#[test]
fn every_file_gets_its_own_key_and_without_encryption_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keys(tmp.path(), 1);
    let data = marked_data();
    let mut writer = BackupWriter::create(&tmp.path().join("store"), "job", "b1").unwrap();
    writer.encrypt_to(Arc::clone(&keys.recipients));
    let mut entries = Vec::new();
    for rel in ["a/x.bson", "a/y.bson"] {
        let mut sink = writer.file(rel, Compression::zstd(3)).unwrap();
        sink.write_all(&data).unwrap();
        entries.push(sink.finish().unwrap());
    }
    // Same plaintext, different ciphertext: a fresh file key per file.
    assert_ne!(entries[0].sha256, entries[1].sha256);
    writer.commit(b"{}\n").unwrap();

    let plain = BackupWriter::create(&tmp.path().join("store"), "job", "b2").unwrap();
    assert!(plain.recipients().is_none());
    let sink = plain.file("a/x.bson", Compression::zstd(3)).unwrap();
    assert_eq!(sink.rel_path(), "a/x.bson.zst");
}

#[test]
fn unfinished_encrypted_files_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keys(tmp.path(), 1);
    let mut writer = BackupWriter::create(&tmp.path().join("store"), "job", "b1").unwrap();
    writer.encrypt_to(Arc::clone(&keys.recipients));
    let mut sink = writer.file("a/x.bson", Compression::gzip()).unwrap();
    sink.write_all(&marked_data()).unwrap();
    let path = writer.partial_dir().join("a/x.bson.gz.age");
    assert!(path.exists());
    drop(sink);
    assert!(!path.exists());
    // The same name can be written again, and the writer commits.
    let sink = writer.file("a/x.bson", Compression::gzip()).unwrap();
    sink.finish().unwrap();
    writer.commit(b"{}\n").unwrap();
}

#[test]
fn encrypting_writer_and_sinks_are_send() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}
    let tmp = tempfile::tempdir().unwrap();
    let keys = keys(tmp.path(), 1);
    let mut writer = BackupWriter::create(&tmp.path().join("store"), "job", "b1").unwrap();
    writer.encrypt_to(Arc::clone(&keys.recipients));
    let sink = writer.file("x.bson", Compression::none()).unwrap();
    assert_send_sync(&writer);
    assert_send(&sink);
    // Debug output shows fingerprints, not keys.
    let debug = format!("{writer:?}");
    assert!(
        debug.contains(&keys.recipients.fingerprints()[0]),
        "{debug}"
    );
    assert!(!debug.contains("age1"), "{debug}");
}
