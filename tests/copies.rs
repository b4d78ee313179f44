//! Copies to object storage, end to end through the CLI against real S3
//! (s3s-fs) and Azure (Azurite) servers: a job with `copies` writes its
//! backups locally and to the object store; `list`, `verify`, `restore`
//! and a point-in-time restore work straight from the object store; large
//! files go up in many parts; a location that is down fails alone, is
//! never listed as holding what it does not, and catches up on the next
//! run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use bson::{doc, Document};
use common::objstore::{Azurite, ObjectServer, S3Server};
use common::{client, populate, run, snapshot, text};
use mongo_testserver::harness::Target;

struct Setup {
    _work: tempfile::TempDir,
    config: String,
    storage: std::path::PathBuf,
}

fn setup(target: &Target, server: &dyn ObjectServer, db: &str) -> Setup {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("backups");
    let config = work.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nstate_dir = \"{state}\"\n\n[sources.prod]\nuri = \"{uri}\"\n\n\
             [storage.local]\ntype = \"local\"\npath = \"{storage}\"\n\n{remote}\n\
             [jobs.nightly]\nsource = \"prod\"\nstorage = \"local\"\ncopies = [\"offsite\"]\n\
             kind = \"full\"\nschedule = \"0 2 * * *\"\ninclude = [\"{db}\"]\n\n\
             [jobs.hourly]\nsource = \"prod\"\nstorage = \"local\"\ncopies = [\"offsite\"]\n\
             kind = \"incremental\"\nschedule = \"0 * * * *\"\n",
            state = work.path().join("state").display(),
            uri = target.uri(),
            storage = storage.display(),
            remote = server.toml_section("offsite"),
        ),
    )
    .unwrap();
    Setup {
        config: config.display().to_string(),
        storage,
        _work: work,
    }
}

/// The ids of complete backups `list` shows at the location.
fn complete_at(config: &str, location: &str) -> Vec<String> {
    let out = run(&["list", "--config", config, "--location", location]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("complete"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

fn local_ids(storage: &std::path::Path, job: &str) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(storage.join(job))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    ids.sort();
    ids
}

async fn round_trip(server: &mut dyn ObjectServer) {
    let target = Target::new().unwrap();
    let db = target.unique_db("copies");
    let source = client(&target.uri()).await;
    populate(&source, &db).await;
    // Incompressible bytes, so the data file spans several 1 MiB parts.
    let big: Vec<Document> = (0..12)
        .map(|i| {
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(i as u32);
            let noise: Vec<u8> = (0..400_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 32) as u8
                })
                .collect();
            doc! { "_id": i, "blob": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: noise } }
        })
        .collect();
    source
        .database(&db)
        .collection::<Document>("big")
        .insert_many(big)
        .await
        .unwrap();
    let s = setup(&target, server, &db);

    let out = run(&["backup", "--config", &s.config, "--job", "nightly"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("1 backups copied"), "{}", text(&out));
    let full_id = local_ids(&s.storage, "nightly").pop().unwrap();
    assert_eq!(complete_at(&s.config, "offsite"), vec![full_id.clone()]);

    // The big collection went up as a multipart upload.
    let key = format!("mongo-backupd/nightly/{full_id}/{db}/big.bson.zst");
    let parts = server.stored_parts(&key);
    // S3 parts are at least 5 MiB (the service's minimum, which the
    // location enforces), so this ~5 MB file is one PUT there; S3
    // multipart uploads are asserted in object_store.rs with a larger file.
    match server.kind() {
        "azure" => assert!(matches!(parts, Some(n) if n >= 3), "{key}: {parts:?}"),
        _ => assert!(parts.is_some(), "{key} was not stored"),
    }
    assert!(server.open_uploads().is_empty());

    // Verify re-reads every object and checks every checksum.
    let backup = format!("nightly/{full_id}");
    let out = run(&[
        "verify",
        "--config",
        &s.config,
        "--location",
        "offsite",
        &backup,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains(": OK"), "{}", text(&out));

    // Restore straight from the object store, renamed, equals the source.
    let restored = format!("{db}_r");
    let out = run(&[
        "restore",
        "--config",
        &s.config,
        "--location",
        "offsite",
        "--from",
        &backup,
        "--to",
        &target.uri(),
        "--ns-from",
        &format!("{db}.*"),
        "--ns-to",
        &format!("{restored}.*"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        snapshot(&source.database(&restored)).await,
        snapshot(&source.database(&db)).await
    );

    // An incremental after a change, copied too; point in time from the
    // object store's chain.
    source
        .database(&db)
        .collection::<Document>("items")
        .insert_one(doc! { "_id": "after-full", "n": 1 })
        .await
        .unwrap();
    let out = run(&["backup", "--config", &s.config, "--job", "hourly"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(complete_at(&s.config, "offsite").len(), 2);
    let pitr_db = format!("{db}_p");
    let out = run(&[
        "restore",
        "--config",
        &s.config,
        "--location",
        "offsite",
        "--at",
        "latest",
        "--job",
        "hourly",
        "--to",
        &target.uri(),
        "--ns-from",
        &format!("{db}.*"),
        "--ns-to",
        &format!("{pitr_db}.*"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let found = source
        .database(&pitr_db)
        .collection::<Document>("items")
        .find_one(doc! { "_id": "after-full" })
        .await
        .unwrap();
    assert!(found.is_some(), "the incremental's insert was not replayed");

    // The location goes down: the primary backup completes, the copy
    // fails (exit 75), and the location lists nothing it does not hold.
    server.stop();
    let out = run(&["backup", "--config", &s.config, "--job", "nightly"]);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    assert!(
        text(&out).contains("backups are not there yet"),
        "{}",
        text(&out)
    );
    let local = local_ids(&s.storage, "nightly");
    assert_eq!(local.len(), 2);
    server.restart();
    assert_eq!(complete_at(&s.config, "offsite").len(), 2);
    // The next run catches up: both fulls and the new one are there.
    let out = run(&["backup", "--config", &s.config, "--job", "nightly"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("2 backups copied"), "{}", text(&out));
    let remote = complete_at(&s.config, "offsite");
    for id in local_ids(&s.storage, "nightly") {
        assert!(remote.contains(&id), "{id} missing from {remote:?}");
    }
    // The primary's manifest records where each copy is complete.
    let manifest = std::fs::read_to_string(
        s.storage
            .join("nightly")
            .join(&full_id)
            .join("manifest.json"),
    )
    .unwrap();
    assert!(
        manifest.contains("\"copies\"") && manifest.contains("\"offsite\""),
        "{manifest}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_copies_list_verify_restore_and_catch_up() {
    let mut server = S3Server::start();
    round_trip(&mut server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_copies_list_verify_restore_and_catch_up() {
    let mut server = Azurite::start();
    round_trip(&mut server).await;
}
