//! Tests of verify_backup: each kind of damage is found and described.

use crate::storage::BackupFiles;
use std::fs;
use std::path::Path;

use super::*;

fn rewrite_manifest(dir: &Path, manifest: &Manifest) {
    fs::write(dir.join(MANIFEST_FILE), manifest.to_json()).unwrap();
}

fn problems_of(report: &VerifyReport, kind: ProblemKind) -> Vec<&Problem> {
    report.problems.iter().filter(|p| p.kind == kind).collect()
}

#[test]
fn verify_passes_intact_backups_of_every_compression() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, c) in [
        Compression::none(),
        Compression::gzip(),
        Compression::zstd(3),
    ]
    .into_iter()
    .enumerate()
    {
        let (dir, manifest) = build(tmp.path(), "job", &format!("b{i}"), c, Some(100), 200);
        let report = verify_backup(&BackupFiles::local(&dir)).unwrap();
        assert!(report.is_ok(), "{c:?}: {}", report.render());
        assert_eq!(report.files_checked, manifest.files.len());
        assert_eq!(report.documents_checked, USERS + ODD + OPLOG);
        let text = report.render();
        assert!(text.contains(": OK"), "{text}");
        assert!(
            text.contains("6 files checked") && text.contains("105 documents"),
            "{text}"
        );
    }
    // A standalone-server backup: no oplog.
    let (dir, _) = build(
        tmp.path(),
        "job",
        "standalone",
        Compression::gzip(),
        None,
        200,
    );
    let report = verify_backup(&BackupFiles::local(&dir)).unwrap();
    assert!(report.is_ok(), "{}", report.render());
    assert_eq!(report.documents_checked, USERS + ODD);
}

#[test]
fn verify_reports_checksum_mismatch_with_both_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, manifest) = build(tmp.path(), "job", "b1", Compression::gzip(), Some(100), 200);
    let path = dir.join("app/users.bson.gz");
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(&path, &bytes).unwrap();

    let report = verify_backup(&BackupFiles::local(&dir)).unwrap();
    assert!(!report.is_ok());
    let found = problems_of(&report, ProblemKind::ChecksumMismatch);
    assert_eq!(found.len(), 1, "{}", report.render());
    assert_eq!(found[0].file, "app/users.bson.gz");
    let expected = &manifest.file("app/users.bson.gz").unwrap().sha256;
    let actual = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    assert!(
        found[0].detail.contains(expected.as_str()),
        "{}",
        found[0].detail
    );
    assert!(found[0].detail.contains(&actual), "{}", found[0].detail);
    // Every other file is still fine.
    assert!(report
        .problems
        .iter()
        .all(|p| p.file == "app/users.bson.gz"));
    let text = report.render();
    assert!(
        text.contains("app/users.bson.gz: checksum mismatch"),
        "{text}"
    );
    assert!(text.contains("restore from another backup"), "{text}");
}

#[test]
fn verify_reports_truncated_missing_and_unlisted_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, manifest) = build(
        tmp.path(),
        "job",
        "b1",
        Compression::zstd(3),
        Some(100),
        200,
    );
    let oplog = dir.join("oplog.bson.zst");
    let size = manifest.file("oplog.bson.zst").unwrap().size;
    let bytes = fs::read(&oplog).unwrap();
    fs::write(&oplog, &bytes[..bytes.len() - 7]).unwrap();
    fs::remove_file(dir.join("app/users.metadata.json.zst")).unwrap();
    fs::write(dir.join("app/extra.bson"), b"").unwrap();
    fs::create_dir(dir.join("otherdb")).unwrap();
    fs::write(dir.join("otherdb/x.metadata.json"), b"{}").unwrap();

    let report = verify_backup(&BackupFiles::local(&dir)).unwrap();
    let text = report.render();
    let truncated = problems_of(&report, ProblemKind::Truncated);
    assert_eq!(truncated.len(), 1, "{text}");
    assert_eq!(truncated[0].file, "oplog.bson.zst");
    assert!(
        truncated[0].detail.contains(&format!("{} bytes", size - 7))
            && truncated[0].detail.contains(&size.to_string()),
        "{text}"
    );
    let missing = problems_of(&report, ProblemKind::Missing);
    assert_eq!(missing.len(), 1, "{text}");
    assert_eq!(missing[0].file, "app/users.metadata.json.zst");
    let unlisted: Vec<&str> = problems_of(&report, ProblemKind::Unlisted)
        .iter()
        .map(|p| p.file.as_str())
        .collect();
    assert_eq!(
        unlisted,
        ["app/extra.bson", "otherdb/x.metadata.json"],
        "{text}"
    );
    assert!(text.contains("not listed in the manifest"), "{text}");
}

#[test]
fn verify_compares_document_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, mut manifest) = build(tmp.path(), "job", "b1", Compression::gzip(), Some(100), 200);
    manifest.collections[0].documents = 100;
    manifest.oplog.as_mut().unwrap().entries = 4;
    rewrite_manifest(&dir, &manifest);

    let report = verify_backup(&BackupFiles::local(&dir)).unwrap();
    let counts = problems_of(&report, ProblemKind::CountMismatch);
    assert_eq!(counts.len(), 2, "{}", report.render());
    assert_eq!(counts[0].file, "app/users.bson.gz");
    assert_eq!(
        counts[0].detail,
        "it holds 97 documents but the manifest says collection app.users has 100"
    );
    assert_eq!(counts[1].file, "oplog.bson.gz");
    assert!(
        counts[1].detail.contains("the oplog has 4"),
        "{}",
        counts[1].detail
    );
}

#[test]
fn verify_walks_documents_even_when_checksums_match() {
    // Damage that happened before hashing (a bug, or a bad source) is
    // caught by walking the documents.
    let tmp = tempfile::tempdir().unwrap();
    let writer = BackupWriter::create(tmp.path(), "job", "b1").unwrap();
    let mut cut = bson_docs(10, "x");
    let one = cut.len() / 10;
    cut.truncate(cut.len() - 3);
    let mut garbled = bson_docs(4, "y");
    garbled[one + 4] = 0x66; // element type of document #2
    let files = vec![
        put(&writer, "app/cut.bson", Compression::gzip(), &cut),
        put(&writer, "app/garbled.bson", Compression::none(), &garbled),
        put(
            &writer,
            "app/cut.metadata.json",
            Compression::none(),
            b"{\"indexes\": [",
        ),
        put(
            &writer,
            "app/garbled.metadata.json",
            Compression::none(),
            b"[]",
        ),
    ];
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        id: "b1".into(),
        kind: BackupKind::Manual,
        job: "job".into(),
        source: "dev".into(),
        server_version: "7.0".into(),
        tool_version: "0.1.0".into(),
        started_at: at(0),
        finished_at: at(1),
        consistent: false,
        oplog_start: None,
        oplog_end: None,
        compression: CompressionKind::None,
        collections: Vec::new(),
        oplog: None,
        files,
        parent: None,
        note: Some("hand-made".into()),
        requested_by: None,
        bridge: None,
        encryption: None,
        copies: Vec::new(),
        drills: Vec::new(),
    };
    let dir = writer.commit(&manifest.to_json()).unwrap();
    let report = verify_backup(&BackupFiles::local(&dir)).unwrap();
    let text = report.render();
    assert_eq!(report.problems.len(), 4, "{text}");
    assert!(
        problems_of(&report, ProblemKind::ChecksumMismatch).is_empty(),
        "{text}"
    );
    let p = &report.problems[0];
    assert_eq!(
        (p.file.as_str(), p.kind),
        ("app/cut.bson.gz", ProblemKind::Truncated)
    );
    assert!(
        p.detail
            .contains(&format!("document #10 at byte offset {}", 9 * one)),
        "{text}"
    );
    let p = &report.problems[1];
    assert_eq!(
        (p.file.as_str(), p.kind),
        ("app/garbled.bson", ProblemKind::Corrupt)
    );
    assert!(
        p.detail
            .contains(&format!("document #2 at byte offset {one}")),
        "{text}"
    );
    assert_eq!(report.problems[2].file, "app/cut.metadata.json");
    assert!(
        report.problems[2].detail.contains("not valid JSON"),
        "{text}"
    );
    assert!(
        report.problems[3].detail.contains("not an object"),
        "{text}"
    );
    assert_eq!(report.documents_checked, 9 + 1);
}

#[test]
fn verify_reports_an_inconsistent_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, mut manifest) = build(tmp.path(), "job", "b1", Compression::none(), Some(100), 200);
    manifest.files.retain(|f| f.path != "app/users.bson");
    manifest.oplog_end = None;
    rewrite_manifest(&dir, &manifest);
    let report = verify_backup(&BackupFiles::local(&dir)).unwrap();
    let text = report.render();
    let inconsistent = problems_of(&report, ProblemKind::Inconsistent);
    assert_eq!(inconsistent.len(), 2, "{text}");
    assert!(
        text.contains("marked consistent but has no oplog_end"),
        "{text}"
    );
    assert!(
        text.contains("app/users.bson: collection app.users names this file"),
        "{text}"
    );
    // The file is still on disk, now unlisted.
    assert_eq!(
        problems_of(&report, ProblemKind::Unlisted)[0].file,
        "app/users.bson"
    );
}

#[test]
fn verify_needs_a_manifest_and_flags_partial_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let err = verify_backup(&BackupFiles::local(tmp.path().join("nope"))).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    let err = verify_backup(&BackupFiles::local(tmp.path())).unwrap_err();
    assert!(matches!(err, CatalogError::NoManifest { .. }), "{err}");

    // A crash between writing the manifest and the rename.
    let (dir, _) = build(tmp.path(), "job", "b1", Compression::none(), Some(100), 200);
    let partial = tmp.path().join("job/.partial-b1");
    fs::rename(&dir, &partial).unwrap();
    let report = verify_backup(&BackupFiles::local(&partial)).unwrap();
    assert_eq!(report.problems.len(), 1, "{}", report.render());
    assert!(report.problems[0].detail.contains("never committed"));
}
