#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

//! `storage::object` against real servers: every test runs against `s3s-fs`
//! (S3) and Azurite (Azure Blob Storage), so both protocols' uploads,
//! multipart uploads, reads, listings, deletes and failures are exercised
//! the way production will see them.

mod common;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use common::objstore::{Azurite, ObjectServer, S3Server};
use mongo_backupd::config::Backend;
use mongo_backupd::storage::object::{ObjectInfo, ObjectLocation};
use mongo_backupd::storage::{FileEntry, StorageError};
use sha2::{Digest, Sha256};

const MIB: u64 = 1024 * 1024;

/// Runs `$test(&mut server)` once against each server.
macro_rules! against_both {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3() {
                let mut server = super::S3Server::start();
                super::$test(&mut server).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn azure() {
                let mut server = super::Azurite::start();
                super::$test(&mut server).await;
            }
        }
    )*};
}

against_both!(
    bytes_round_trip,
    large_file_is_a_real_multipart_upload,
    small_file_is_one_put,
    damaged_local_file_leaves_no_object,
    list_returns_relative_keys_and_sizes,
    deletes,
    missing_objects,
    stopped_server_is_a_clear_error_not_a_hang,
    wrong_credentials_are_named_and_not_shown,
);

fn open(server: &impl ObjectServer, prefix: &str, part_size: u64) -> ObjectLocation {
    ObjectLocation::open(&server.storage_location("offsite", prefix, part_size)).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift), incompressible enough.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes `bytes` to a file in `dir` and returns it with its manifest entry.
fn local_file(dir: &Path, name: &str, bytes: &[u8]) -> (std::path::PathBuf, FileEntry) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let entry = FileEntry {
        path: name.to_string(),
        size: bytes.len() as u64,
        sha256: sha256_hex(bytes),
    };
    (path, entry)
}

/// Reads the object through `open_read` on a blocking thread, as restore
/// code does, and returns its sha256 and length.
async fn read_back(loc: &ObjectLocation, key: &str) -> std::io::Result<(String, u64)> {
    let loc = loc.clone();
    let key = key.to_string();
    tokio::task::spawn_blocking(move || {
        let mut reader = loc.open_read(&key).expect("open_read");
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 100_000];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            total += n as u64;
        }
        Ok((hex::encode(hasher.finalize()), total))
    })
    .await
    .unwrap()
}

async fn bytes_round_trip(server: &mut impl ObjectServer) {
    let loc = open(server, "mongo-backupd/", MIB);
    assert_eq!(loc.name(), "offsite");
    let key = "prod-full/20261121T020000Z-full/manifest.json";
    loc.put_bytes(key, b"{\"v\":1}".to_vec()).await.unwrap();
    assert_eq!(
        loc.get_bytes(key).await.unwrap().as_deref(),
        Some(&b"{\"v\":1}"[..])
    );
    // Overwriting replaces; an empty object is an object.
    loc.put_bytes(key, Vec::new()).await.unwrap();
    assert_eq!(loc.get_bytes(key).await.unwrap(), Some(Vec::new()));
    let (digest, len) = read_back(&loc, key).await.unwrap();
    assert_eq!((digest.as_str(), len), (sha256_hex(b"").as_str(), 0));
    // Keys as escaped collection names come out as they went in.
    let odd = "prod-full/x/shop/a%2Fb+c%24d.bson.zst";
    loc.put_bytes(odd, vec![7; 10]).await.unwrap();
    assert_eq!(loc.get_bytes(odd).await.unwrap(), Some(vec![7; 10]));
    let keys: Vec<String> = loc
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, vec![key.to_string(), odd.to_string()]);
    assert_eq!(
        server.stored_parts(&format!("mongo-backupd/{key}")),
        Some(0)
    );
}

async fn large_file_is_a_real_multipart_upload(server: &mut impl ObjectServer) {
    let loc = open(server, "p/", MIB);
    let dir = tempfile::tempdir().unwrap();
    // Over 11 MiB: 12 parts of 1 MiB on Azure; 3 on S3, whose 5 MiB
    // minimum part size the location applies.
    let data = random_bytes((11 * MIB + 12_345) as usize, 42);
    let (path, entry) = local_file(dir.path(), "orders.bson.zst", &data);
    let key = "prod-full/20261121T020000Z-full/shop/orders.bson.zst";

    loc.put_file(key, &path, &entry).await.unwrap();

    let expected_parts = data.len().div_ceil(loc.part_size() as usize);
    assert!(expected_parts >= 3, "{expected_parts}");
    assert_eq!(
        server.stored_parts(&format!("p/{key}")),
        Some(expected_parts),
        "the server must have stored a multipart upload of {expected_parts} parts\n{}",
        server.log()
    );
    assert!(
        server.open_uploads().is_empty(),
        "{:?}",
        server.open_uploads()
    );
    let listed = loc.list("prod-full/").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, key);
    assert_eq!(listed[0].size, data.len() as u64);

    let (digest, len) = read_back(&loc, key).await.unwrap();
    assert_eq!(len, data.len() as u64);
    assert_eq!(digest, entry.sha256);
    // Read in 12 ranged GETs, the last one short.
    let ranged = loc.clone().with_read_range(MIB);
    assert_eq!(
        read_back(&ranged, key).await.unwrap(),
        (entry.sha256.clone(), data.len() as u64)
    );
    assert_eq!(loc.get_bytes(key).await.unwrap().unwrap(), data);
}

async fn small_file_is_one_put(server: &mut impl ObjectServer) {
    let loc = open(server, "", 8 * MIB);
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(3 * MIB as usize + 1, 7);
    let (path, entry) = local_file(dir.path(), "small.bson", &data);
    loc.put_file("job/id/small.bson", &path, &entry)
        .await
        .unwrap();
    assert_eq!(server.stored_parts("job/id/small.bson"), Some(0));
    assert_eq!(
        read_back(&loc, "job/id/small.bson").await.unwrap(),
        (entry.sha256.clone(), data.len() as u64)
    );
}

async fn damaged_local_file_leaves_no_object(server: &mut impl ObjectServer) {
    let loc = open(server, "p/", MIB);
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes((11 * MIB) as usize, 3);
    let (path, mut entry) = local_file(dir.path(), "big.bson", &data);
    entry.sha256 = sha256_hex(b"something else");

    // Multipart: every part is sent before the digest is known, so the
    // upload must be aborted.
    let err = loc
        .put_file("job/big.bson", &path, &entry)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, StorageError::ObjectLocalChanged { .. }),
        "{msg}"
    );
    assert!(msg.contains("changed or is damaged"), "{msg}");
    assert!(msg.contains(&entry.sha256), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("p/job/big.bson"), "{msg}");
    assert_eq!(err.path(), Some(path.as_path()));

    // Single PUT: never sent at all.
    let (small, mut small_entry) = local_file(dir.path(), "small.bson", b"tiny");
    small_entry.sha256 = sha256_hex(b"tinx");
    assert!(matches!(
        loc.put_file("job/small.bson", &small, &small_entry).await,
        Err(StorageError::ObjectLocalChanged { .. })
    ));

    // A size that differs from the manifest is refused before anything.
    let (_, mut sized) = local_file(dir.path(), "sized.bson", b"12345");
    sized.size = 4;
    let err = loc
        .put_file("job/sized.bson", &dir.path().join("sized.bson"), &sized)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("5 bytes"), "{err}");

    assert_eq!(loc.list("").await.unwrap(), Vec::<ObjectInfo>::new());
    assert_eq!(server.stored_parts("p/job/big.bson"), None);
    assert!(
        server.open_uploads().is_empty(),
        "{:?}",
        server.open_uploads()
    );
}

async fn list_returns_relative_keys_and_sizes(server: &mut impl ObjectServer) {
    let loc = open(server, "mongo-backupd/", MIB);
    // Something outside the prefix must never show up.
    let other = open(server, "", MIB);
    other.put_bytes("elsewhere/x", vec![1]).await.unwrap();
    other
        .put_bytes("mongo-backupd-old/x", vec![1])
        .await
        .unwrap();

    let files = [
        ("prod-full/20261121T020000Z-full/manifest.json", 10),
        ("prod-full/20261121T020000Z-full/shop/orders.bson.zst", 2000),
        ("prod-full/20261122T020000Z-full/manifest.json", 11),
        ("prod-fullish/20261121T020000Z-full/manifest.json", 12),
        ("prod-incr/20261121T021000Z-incremental/oplog.bson.zst", 13),
    ];
    let before = chrono::Utc::now() - chrono::Duration::minutes(5);
    for (key, size) in files {
        loc.put_bytes(key, vec![0; size]).await.unwrap();
    }

    let all = loc.list("").await.unwrap();
    let got: Vec<(&str, u64)> = all.iter().map(|o| (o.key.as_str(), o.size)).collect();
    let want: Vec<(&str, u64)> = files.iter().map(|&(k, s)| (k, s as u64)).collect();
    assert_eq!(got, want);
    for info in &all {
        assert!(info.last_modified > before, "{info:?}");
    }

    let job: Vec<String> = loc
        .list("prod-full/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(job, [files[0].0, files[1].0, files[2].0]);
    // A partial last segment is a plain string prefix.
    let partial: Vec<String> = loc
        .list("prod-full/20261121")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(partial, [files[0].0, files[1].0]);
    assert_eq!(loc.list("prod-full").await.unwrap().len(), 4);
    assert!(loc.list("nothing/").await.unwrap().is_empty());
}

async fn deletes(server: &mut impl ObjectServer) {
    let loc = open(server, "d/", MIB);
    let keys: Vec<String> = (0..7).map(|i| format!("job/b{i}/file{i}.bson")).collect();
    for key in &keys {
        loc.put_bytes(key, vec![1, 2, 3]).await.unwrap();
    }
    loc.delete(&keys[0]).await.unwrap();
    // Deleting what is gone is success.
    loc.delete(&keys[0]).await.unwrap();
    loc.delete("job/never-written").await.unwrap();
    assert_eq!(loc.get_bytes(&keys[0]).await.unwrap(), None);

    let mut batch = keys[1..5].to_vec();
    batch.push("job/also-never-written".into());
    batch.push(keys[0].clone());
    loc.delete_many(batch).await.unwrap();
    loc.delete_many(Vec::new()).await.unwrap();
    let left: Vec<String> = loc
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(left, keys[5..].to_vec());
    assert_eq!(server.stored_parts(&format!("d/{}", keys[1])), None);
}

async fn missing_objects(server: &mut impl ObjectServer) {
    let loc = open(server, "m/", MIB);
    assert_eq!(loc.get_bytes("no/such/key").await.unwrap(), None);

    let err = read_back(&loc, "no/such/key").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("{}no/such/key", loc.url())), "{msg}");
    assert!(msg.contains("\"offsite\""), "{msg}");

    // A missing bucket is an error, never "no such object".
    let mut missing = server.storage_location("gone", "", MIB);
    if let Backend::Object(settings) = &mut missing.backend {
        match &mut settings.service {
            mongo_backupd::config::ObjectService::S3 { bucket, .. } => *bucket = "nobucket".into(),
            mongo_backupd::config::ObjectService::Azure { container, .. } => {
                *container = "nocontainer".into()
            }
            _ => unreachable!(),
        }
    }
    let gone = ObjectLocation::open(&missing).unwrap();
    let err = gone.list("").await.unwrap_err();
    assert!(
        matches!(err, StorageError::ObjectBucketMissing { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("create it first"), "{err}");
    // s3s-fs answers a GET in a missing bucket with NoSuchKey and a PUT by
    // creating the bucket (AWS says NoSuchBucket to both), so only
    // Azurite's answers can be checked here.
    if server.kind() == "azure" {
        let err = gone.get_bytes("k").await.unwrap_err();
        assert!(
            matches!(err, StorageError::ObjectBucketMissing { .. }),
            "{err}"
        );
        let err = gone.put_bytes("k", vec![1]).await.unwrap_err();
        assert!(
            matches!(err, StorageError::ObjectBucketMissing { .. }),
            "{err}"
        );
    }
}

async fn stopped_server_is_a_clear_error_not_a_hang(server: &mut impl ObjectServer) {
    let timeout = Duration::from_secs(5);
    let mut settings = server.storage_location("offsite", "s/", MIB);
    if let Backend::Object(object) = &mut settings.backend {
        object.timeout = timeout;
    }
    let loc = ObjectLocation::open(&settings).unwrap();
    loc.put_bytes("job/a", vec![1]).await.unwrap();

    server.stop();
    let dir = tempfile::tempdir().unwrap();
    let (path, entry) = local_file(dir.path(), "f", &random_bytes(3 * MIB as usize, 1));
    // Each operation must fail within the request timeout (its retries
    // included), not hang.
    let mut results = Vec::new();
    macro_rules! timed {
        ($op:expr) => {{
            let started = Instant::now();
            let err = $op.await.unwrap_err();
            results.push((err, started.elapsed()));
        }};
    }
    timed!(loc.put_bytes("job/b", vec![1]));
    timed!(loc.get_bytes("job/a"));
    timed!(loc.list(""));
    timed!(loc.delete("job/a"));
    timed!(loc.put_file("job/f", &path, &entry));
    for (err, took) in &results {
        let msg = err.to_string();
        assert!(
            matches!(err, StorageError::ObjectUnreachable { .. }),
            "{msg}"
        );
        assert!(msg.contains(loc.url()), "{msg}");
        assert!(msg.contains("\"offsite\""), "{msg}");
        assert!(msg.contains("reachable"), "{msg}");
        assert!(msg.contains(&server.endpoint()), "{msg}");
        assert!(*took < timeout, "took {took:?}: {msg}");
    }
    let started = Instant::now();
    let read = read_back(&loc, "job/a").await.unwrap_err();
    assert!(started.elapsed() < timeout, "{read}");
    assert_eq!(read.kind(), std::io::ErrorKind::TimedOut, "{read}");
    assert!(read.to_string().contains(loc.url()), "{read}");

    server.restart();
    assert_eq!(loc.get_bytes("job/a").await.unwrap(), Some(vec![1]));
}

async fn wrong_credentials_are_named_and_not_shown(server: &mut impl ObjectServer) {
    // Azure keys are base64; this is a valid one, just not the account's.
    let wrong = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3Jvbmc=";
    let loc = ObjectLocation::open(&server.storage_location_with_secret("offsite", "", MIB, wrong))
        .unwrap();
    assert!(!format!("{loc:?}").contains(wrong));
    let errors = [
        loc.put_bytes("job/a", vec![1]).await.unwrap_err(),
        loc.get_bytes("job/a").await.unwrap_err(),
        loc.list("").await.unwrap_err(),
    ];
    for err in &errors {
        let msg = err.to_string();
        assert!(
            matches!(err, StorageError::ObjectCredentials { .. }),
            "{msg}"
        );
        assert!(msg.contains("credentials"), "{msg}");
        assert!(msg.contains("other_"), "names the secret's file: {msg}");
        assert!(msg.contains(loc.url()), "{msg}");
        assert!(!msg.contains(wrong), "{msg}");
        assert!(!format!("{err:?}").contains(wrong), "{err:?}");
    }
    let read = read_back(&loc, "job/a").await.unwrap_err();
    assert_eq!(read.kind(), std::io::ErrorKind::PermissionDenied, "{read}");
    assert!(!read.to_string().contains(wrong), "{read}");
}

/// Dropping `put_file` mid-upload (a cancelled copy) aborts the multipart
/// upload: s3s-fs shows open uploads as files, so this is checked there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_upload_is_aborted() {
    let server = S3Server::start();
    let loc = open(&server, "", MIB);
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes((40 * MIB) as usize, 9);
    let (path, entry) = local_file(dir.path(), "big", &data);
    let upload_seen = async {
        while server.open_uploads().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        result = loc.put_file("job/big", &path, &entry) => {
            panic!("the upload finished before it could be cancelled: {result:?}")
        }
        () = upload_seen => {}
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.open_uploads().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the cancelled upload was not aborted: {:?}",
            server.open_uploads()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.stored_parts("job/big"), None);
    assert!(loc.list("").await.unwrap().is_empty());
}

#[test]
fn open_read_without_a_runtime_is_an_error() {
    let server = S3Server::start();
    let loc = open(&server, "", MIB);
    assert!(matches!(loc.open_read("k"), Err(StorageError::NoRuntime)));
}

#[test]
fn toml_sections_name_every_setting() {
    let s3 = S3Server::start();
    let text = s3.toml_section("offsite");
    assert!(
        text.starts_with("[storage.offsite]\ntype = \"s3\"\n"),
        "{text}"
    );
    for key in [
        "bucket = \"backups\"",
        &format!("endpoint = \"{}\"", s3.endpoint()),
        "region = \"us-east-1\"",
        "allow_http = true",
        &format!(
            "access_key_id_file = \"{}\"",
            s3.access_key_file().display()
        ),
        &format!(
            "secret_access_key_file = \"{}\"",
            s3.secret_key_file().display()
        ),
        "prefix = \"mongo-backupd/\"",
        "part_size = \"1MiB\"",
    ] {
        assert!(text.contains(key), "{key} in\n{text}");
    }
    assert_eq!(
        std::fs::read_to_string(s3.secret_key_file())
            .unwrap()
            .trim(),
        s3.secret_key()
    );

    let azure = Azurite::start();
    let text = azure.toml_section("cloud");
    assert!(
        text.starts_with("[storage.cloud]\ntype = \"azure\"\n"),
        "{text}"
    );
    for key in [
        "account = \"devstoreaccount1\"",
        "container = \"backups\"",
        &format!("endpoint = \"{}\"", azure.endpoint()),
        "allow_http = true",
        &format!(
            "access_key_file = \"{}\"",
            azure.access_key_file().display()
        ),
        "prefix = \"mongo-backupd/\"",
        "part_size = \"1MiB\"",
    ] {
        assert!(text.contains(key), "{key} in\n{text}");
    }
    assert_eq!(
        common::objstore::base64_decode(azure.access_key()).len(),
        64
    );
    assert_eq!(common::objstore::base64_encode(b"foobar"), "Zm9vYmFy");
}
