//! Encrypted backups end to end through the real binary: a job with
//! `encrypt_to` stores only age files and a manifest naming the recipient
//! by fingerprint, no stored byte shows the data, `verify` checks the
//! encrypted bytes without a key and the documents with one, `restore`
//! needs the right identity, and a file damaged inside its age stream is
//! caught by its checksum or, when the checksum is forged to match, by the
//! age authentication.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use bson::{doc, Document};
use common::{bin, client, populate, snapshot, text};
use mongo_testserver::harness::Target;
use sha2::{Digest, Sha256};

const MARKER: &str = "needle-8f3a1c";

/// Runs the binary without any identity or config taken from the
/// environment, so only the arguments decide.
fn run(args: &[&str]) -> Output {
    bin()
        .env_remove("MONGO_BACKUPD_IDENTITY")
        .env_remove("MONGO_BACKUPD_CONFIG")
        .args(args)
        .output()
        .expect("run mongo-backupd")
}

fn write_identity(path: &Path, secret: &str) {
    std::fs::write(path, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Every regular file under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn restore(dir: &str, uri: &str, from: &str, to: &str, identity: Option<&Path>) -> Output {
    let ns_from = format!("{from}.*");
    let ns_to = format!("{to}.*");
    let mut args = vec![
        "restore",
        "--from",
        dir,
        "--to",
        uri,
        "--ns-from",
        &ns_from,
        "--ns-to",
        &ns_to,
    ];
    let id;
    if let Some(path) = identity {
        id = path.display().to_string();
        args.push("--identity");
        args.push(&id);
    }
    run(&args)
}

#[tokio::test]
async fn encrypted_backup_hides_data_and_needs_the_right_key() {
    let work = tempfile::tempdir().unwrap();
    let (secret_a, public_a) = mongo_backupd::storage::crypt::generate();
    let (secret_b, public_b) = mongo_backupd::storage::crypt::generate();
    assert!(secret_a.starts_with("AGE-SECRET-KEY-1"));
    assert!(public_a.starts_with("age1") && public_b.starts_with("age1"));
    assert_ne!(public_a, public_b);
    let key_a = work.path().join("a.key");
    let key_b = work.path().join("b.key");
    write_identity(&key_a, &secret_a);
    write_identity(&key_b, &secret_b);

    let target = Target::new().unwrap();
    let uri = target.uri();
    let client = client(&uri).await;
    let db = target.unique_db("enc");
    let restored_db = format!("{db}_r");
    let tampered_db = format!("{db}_t");
    populate(&client, &db).await;
    client
        .database(&db)
        .collection::<Document>("people")
        .insert_one(doc! { "_id": "m", "email": format!("{MARKER}@example.com") })
        .await
        .unwrap();

    // 1. An encrypted full backup.
    let storage = work.path().join("backups");
    let config = work.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nstate_dir = \"{}\"\n\n[sources.prod]\nuri = \"{}\"\n\n[storage.local]\ntype = \"local\"\npath = \"{}\"\n\n[jobs.nightly]\nsource = \"prod\"\nstorage = \"local\"\nkind = \"full\"\nschedule = \"0 2 * * *\"\nretention = \"30d\"\nmin_keep = 1\ninclude = [\"{db}\"]\nencrypt_to = [\"{public_a}\"]\n",
            work.path().join("state").display(),
            uri,
            storage.display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let out = run(&["backup", "--config", &config, "--job", "nightly"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let backup = std::fs::read_dir(storage.join("nightly"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let dir = backup.display().to_string();

    // 2. Only age files and a manifest naming the recipient; no plaintext.
    let files = walk(&backup);
    let manifest_path = backup.join("manifest.json");
    assert!(files.contains(&manifest_path), "{files:?}");
    assert!(files.len() > 1, "{files:?}");
    for f in &files {
        if f != &manifest_path {
            assert!(
                f.display().to_string().ends_with(".age"),
                "not encrypted: {}",
                f.display()
            );
        }
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !contains(&bytes, MARKER.as_bytes()),
            "{} holds the plaintext marker",
            f.display()
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let enc = &manifest["encryption"];
    assert_eq!(enc["scheme"], "age-x25519", "{manifest:#}");
    let recipients = enc["recipients"].as_array().unwrap();
    assert_eq!(recipients.len(), 1, "{manifest:#}");
    assert!(
        recipients[0].as_str().unwrap().starts_with("sha256:"),
        "{manifest:#}"
    );

    // 3. verify: checksums without a key, documents with it.
    let v = run(&["verify", &dir]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    let shown = String::from_utf8_lossy(&v.stdout);
    assert!(
        shown.contains("not read") && shown.contains("encrypted"),
        "{}",
        text(&v)
    );
    let key_a_s = key_a.display().to_string();
    let v = run(&["verify", &dir, "--decrypt", &key_a_s]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("OK"),
        "{}",
        text(&v)
    );

    // 4. restore: needs an identity, the right one.
    let r = restore(&dir, &uri, &db, &restored_db, None);
    assert_ne!(r.status.code(), Some(0), "{}", text(&r));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("--identity"),
        "{}",
        text(&r)
    );
    let r = restore(&dir, &uri, &db, &restored_db, Some(&key_b));
    assert_ne!(r.status.code(), Some(0), "{}", text(&r));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("none of the keys"),
        "{}",
        text(&r)
    );
    let r = restore(&dir, &uri, &db, &restored_db, Some(&key_a));
    assert_eq!(r.status.code(), Some(0), "{}", text(&r));
    assert_eq!(
        snapshot(&client.database(&restored_db)).await,
        snapshot(&client.database(&db)).await
    );

    // 5. Damage the largest age file: its checksum catches it.
    let largest = files
        .iter()
        .filter(|f| f.display().to_string().ends_with(".age"))
        .max_by_key(|f| std::fs::metadata(f).unwrap().len())
        .unwrap()
        .clone();
    let rel = largest
        .strip_prefix(&backup)
        .unwrap()
        .to_str()
        .unwrap()
        .replace('\\', "/");
    let mut bytes = std::fs::read(&largest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&largest, &bytes).unwrap();
    let v = run(&["verify", &dir]);
    assert_eq!(v.status.code(), Some(65), "{}", text(&v));
    let shown = String::from_utf8_lossy(&v.stdout);
    assert!(
        shown
            .lines()
            .any(|l| l.contains(&rel) && l.contains("checksum mismatch")),
        "{}",
        text(&v)
    );

    // 6. Forge the checksum: only the age authentication is left to notice.
    let mut manifest = manifest;
    let entry = manifest["files"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["path"] == rel.as_str())
        .unwrap_or_else(|| panic!("{rel} not in the manifest"));
    assert_eq!(entry["size"].as_u64(), Some(bytes.len() as u64));
    entry["sha256"] = hex::encode(Sha256::digest(&bytes)).into();
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let v = run(&["verify", &dir]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    let v = run(&["verify", &dir, "--decrypt", &key_a_s]);
    assert_eq!(v.status.code(), Some(65), "{}", text(&v));
    let shown = String::from_utf8_lossy(&v.stdout);
    assert!(
        shown
            .lines()
            .any(|l| l.contains(&rel) && l.contains("failed authentication")),
        "{}",
        text(&v)
    );
    let r = restore(&dir, &uri, &db, &tampered_db, Some(&key_a));
    assert_eq!(r.status.code(), Some(65), "{}", text(&r));
    let said = String::from_utf8_lossy(&r.stderr);
    assert!(
        said.contains("damaged") && said.contains("failed authentication"),
        "{}",
        text(&r)
    );

    for name in [&db, &restored_db, &tampered_db] {
        let _ = client.database(name).drop().await;
    }
}
