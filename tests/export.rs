//! `mongo-backupd export` end to end through the real binary, against the
//! test server (or the replica set in MONGODB_TEST_URI): JSON that parses
//! back into exactly the source documents (at a backup, with writes during
//! its copy, and at a point in time between writes), consistent redaction
//! that leaks no original, CSV quoting, samples, and encrypted backups.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
#[path = "export_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use bson::{doc, Bson, Document};
use common::{client, text};
use futures_util::TryStreamExt;
use mongo_testserver::harness::Target;
use support::*;

/// Writes while the backup copies: the export equals the source as of the
/// backup's T1, worked out by replaying the source's oplog on the server.
#[tokio::test]
async fn writes_during_the_copy_are_in_the_export_exactly_as_of_t1() {
    let target = Target::new().unwrap();
    let db = target.unique_db("export_busy");
    let c = client(&target.uri()).await;
    let big = c.database(&db).collection::<Document>("big");
    big.insert_many(
        (0..3000).map(|i| doc! { "_id": i, "v": i, "tags": [i % 7], "pad": "p".repeat(100) }),
    )
    .await
    .unwrap();
    if target.local().is_some() {
        // Slow the copy down (each getMore waits) so the writer overlaps it.
        c.database("admin")
            .run_command(doc! { "configureFailPoint": "failCommand", "mode": { "times": 4 },
                "data": { "failCommands": ["getMore"], "blockConnection": true, "blockTimeMS": 150, "appName": "mongo-backupd" } })
            .await
            .unwrap();
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let (c, db, stop) = (c.clone(), db.clone(), stop.clone());
        tokio::spawn(async move {
            let big = c.database(&db).collection::<Document>("big");
            // Created during the copy: only the oplog slice has it.
            let side = c.database(&db).collection::<Document>("side");
            let mut n = 0i32;
            while !stop.is_cancelled() {
                let id = (n * 7) % 3000;
                big.update_one(
                    doc! { "_id": id },
                    doc! { "$inc": { "v": 1 }, "$push": { "tags": n }, "$set": { "w.x": n } },
                )
                .await
                .unwrap();
                side.insert_one(doc! { "_id": n, "at": n }).await.unwrap();
                if n % 3 == 0 {
                    big.delete_one(doc! { "_id": 2999 - (n % 3000) })
                        .await
                        .unwrap();
                }
                if n % 5 == 0 {
                    big.replace_one(doc! { "_id": (n * 11) % 3000 }, doc! { "replaced": n })
                        .await
                        .unwrap();
                }
                n += 1;
            }
            n
        })
    };
    let setup = Setup::new(&target.uri(), &db, None);
    let (setup, full) = tokio::task::spawn_blocking(move || {
        let full = setup.backup("nightly");
        (setup, full)
    })
    .await
    .unwrap();
    stop.cancel();
    let writes = writer.await.unwrap();
    if target.local().is_some() {
        let _ = c
            .database("admin")
            .run_command(doc! { "configureFailPoint": "failCommand", "mode": "off" })
            .await;
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(full.join("manifest.json")).unwrap()).unwrap();
    let entries = manifest["oplog"]["entries"].as_u64().unwrap();
    if target.local().is_some() {
        assert!(
            entries > 0 && writes > 0,
            "the writer ran during the copy ({entries} entries, {writes} writes)"
        );
    }
    let t1 = bson::Timestamp {
        time: manifest["oplog_end"]["t"].as_u64().unwrap() as u32,
        increment: manifest["oplog_end"]["i"].as_u64().unwrap() as u32,
    };
    let oracle = target.unique_db("export_oracle");
    let expected: BTreeMap<String, Vec<Vec<u8>>> = common::state_at(&c, &db, &oracle, t1)
        .await
        .into_iter()
        .map(|(name, (_, _, docs))| (name, docs))
        .collect();
    let out = setup.out("busy");
    ok(&export(&out, &["--from", &full.display().to_string()]));
    assert_same(&exported_state(&out, &db), &expected, "as of T1");
    let _ = c.database(&db).drop().await;
    let _ = c.database(&oracle).drop().await;
}

#[tokio::test]
async fn json_exports_equal_the_source_at_a_backup_and_at_a_point_in_time() {
    let target = Target::new().unwrap();
    let db = target.unique_db("export");
    let c = client(&target.uri()).await;
    let people = c.database(&db).collection::<Document>("people");
    people.insert_many((0..30).map(person)).await.unwrap();
    let orders = c.database(&db).collection::<Document>("orders");
    orders
        .insert_many((0..12).map(|i| doc! { "_id": bson::oid::ObjectId::new(), "n": i, "total": format!("{i}.25").parse::<bson::Decimal128>().unwrap() }))
        .await
        .unwrap();
    c.database(&db).create_collection("empty").await.unwrap();
    let setup = Setup::new(&target.uri(), &db, None);
    let full = setup.backup("nightly").display().to_string();
    let at_full = source_state(&c, &db).await;

    // 1. The full backup, exported, parses back into the source documents.
    let out = setup.out("full");
    let shown = ok(&export(&out, &["--from", &full]));
    assert!(
        shown.contains("Exported 3 collections, 42 documents, 0 values redacted"),
        "{shown}"
    );
    assert_same(&exported_state(&out, &db), &at_full, "the full backup");

    // 2. Writes A, the instant to export, writes B, an incremental.
    people.update_many(doc! { "_id": { "$lt": 10 } }, doc! { "$inc": { "i32": 100 }, "$set": { "address.city": "Moved" }, "$unset": { "phone": "" } }).await.unwrap();
    people
        .update_one(
            doc! { "_id": 11 },
            doc! { "$push": { "contacts": { "email": "new@corp-example.com" } } },
        )
        .await
        .unwrap();
    people
        .replace_one(doc! { "_id": 12 }, doc! { "name": "replaced", "n": 1.5 })
        .await
        .unwrap();
    people
        .delete_many(doc! { "_id": { "$gte": 25 } })
        .await
        .unwrap();
    people.insert_one(person(100)).await.unwrap();
    c.database(&db)
        .collection::<Document>("later")
        .insert_one(doc! { "_id": "made in A" })
        .await
        .unwrap();
    let instant = next_second().await;
    let at_instant = source_state(&c, &db).await;
    next_second().await;
    people
        .delete_many(doc! { "_id": { "$lt": 5 } })
        .await
        .unwrap();
    people
        .update_many(doc! {}, doc! { "$set": { "phase": "B" } })
        .await
        .unwrap();
    orders.drop().await.unwrap();
    next_second().await;
    setup.backup("hourly");
    let latest = source_state(&c, &db).await;

    let out = setup.out("instant");
    let shown = ok(&setup.export_at(&out, &instant.to_rfc3339()));
    assert!(shown.contains("and the oplog of 1 later backup"), "{shown}");
    assert_same(
        &exported_state(&out, &db),
        &at_instant,
        &format!("at {instant}"),
    );
    let out = setup.out("latest");
    ok(&setup.export_at(&out, "latest"));
    assert_same(&exported_state(&out, &db), &latest, "at the latest time");

    // 3. A sample: 10 documents of each collection, each one a source
    // document, in the collection's order; the same seed draws the same.
    let sample = |name: &str, seed: &str| {
        let out = setup.out(name);
        let shown = ok(&export(
            &out,
            &["--from", &full, "--sample", "10", "--seed", seed],
        ));
        assert!(shown.contains(&format!("--seed {seed}")), "{shown}");
        out
    };
    let (s1, s2, s3) = (sample("s1", "7"), sample("s2", "7"), sample("s3", "8"));
    for coll in ["people", "orders"] {
        let file = |dir: &Path| dir.join(&db).join(format!("{coll}.json"));
        let lines = parse_json_lines(&file(&s1));
        assert_eq!(lines.len(), 10, "{coll}");
        let ids: Vec<Bson> = lines
            .iter()
            .map(|d| d.get("_id").cloned().unwrap())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_by(mongo_testserver::compare::cmp_bson);
        assert_eq!(
            ids, sorted,
            "{coll}: the sample keeps the collection's order"
        );
        for d in &lines {
            assert!(
                at_full[coll].contains(&bson::to_vec(d).unwrap()),
                "{coll}: {d} is not a source document"
            );
        }
        assert_eq!(
            std::fs::read(file(&s1)).unwrap(),
            std::fs::read(file(&s2)).unwrap()
        );
    }
    // Another seed, another draw (10 of 30 people: equal by chance once in
    // 30 million).
    let people_file = |dir: &Path| std::fs::read(dir.join(&db).join("people.json")).unwrap();
    assert_ne!(people_file(&s1), people_file(&s3));
    assert_eq!(std::fs::read(s1.join(&db).join("empty.json")).unwrap(), b"");

    // 4. Nothing is written over: a non-empty --out needs --force.
    let again = export(&s1, &["--from", &full]);
    assert_eq!(again.status.code(), Some(64), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force"),
        "{}",
        text(&again)
    );
    ok(&export(&s1, &["--from", &full, "--force"]));
    assert_same(&exported_state(&s1, &db), &at_full, "with --force");
    let _ = c.database(&db).drop().await;
}

#[tokio::test]
async fn redaction_hides_every_original_consistently_and_csv_quotes_what_it_must() {
    let target = Target::new().unwrap();
    let db = target.unique_db("redact");
    let c = client(&target.uri()).await;
    let people = c.database(&db).collection::<Document>("people");
    people.insert_many((0..16).map(person)).await.unwrap();
    // The same emails in another collection must get the same fakes.
    c.database(&db)
        .collection::<Document>("orders")
        .insert_many((0..6).map(
            |i| doc! { "_id": i, "email": format!("person{}.secret@corp-example.com", i % 4) },
        ))
        .await
        .unwrap();
    let csv = c.database(&db).collection::<Document>("csv");
    csv.insert_many([
        doc! { "_id": 1, "name": "Doe, Jane", "address": { "city": "Zürich" }, "n": 3_i64 },
        doc! { "_id": 2, "name": "say \"hi\"", "address": { "city": "Line\nbreak" }, "n": 2.5 },
        doc! { "_id": 3, "name": "plain", "n": bson::DateTime::from_millis(1_700_000_000_000) },
    ])
    .await
    .unwrap();
    let setup = Setup::new(&target.uri(), &db, None);
    let full = setup.backup("nightly").display().to_string();
    let source: Vec<Document> = people
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();

    let out = setup.out("redacted");
    let shown = ok(&export(
        &out,
        &[
            "--from",
            &full,
            "--redact",
            "email,phone",
            "--redact",
            "address.*",
            "--redact",
            "contacts.email",
            "--ns-exclude",
            &format!("{db}.csv"),
        ],
    ));
    // 16 people x (email, phone, street, city, zip, one contact email) + 6 orders.
    assert!(
        shown.contains("values redacted")
            && shown.contains(&format!("{} values redacted", 16 * 6 + 6)),
        "{shown}"
    );
    let mut all_bytes = Vec::new();
    for path in list(&out.join(&db)) {
        all_bytes.extend(std::fs::read(path).unwrap());
    }
    let originals: Vec<String> = source
        .iter()
        .flat_map(|d| {
            strings_at(
                d,
                &[
                    "email",
                    "phone",
                    "address.street",
                    "address.city",
                    "address.geo.zip",
                    "contacts.email",
                ],
            )
        })
        .collect();
    assert_eq!(originals.len(), 16 * 6);
    for o in &originals {
        assert!(
            !all_bytes.windows(o.len()).any(|w| w == o.as_bytes()),
            "the original value {o:?} is in the export"
        );
    }
    let got = parse_json_lines(&out.join(&db).join("people.json"));
    assert_eq!(got.len(), 16);
    let orders = parse_json_lines(&out.join(&db).join("orders.json"));
    let mut fake_of: BTreeMap<String, String> = BTreeMap::new();
    let mut check = |original: &str, fake: &str| {
        assert_ne!(original, fake);
        let prev = fake_of
            .entry(original.to_string())
            .or_insert_with(|| fake.to_string());
        assert_eq!(prev, fake, "{original} got two different fakes");
    };
    for (src, exp) in source.iter().zip(&got) {
        assert_eq!(src.get("_id"), exp.get("_id"));
        let email = exp.get_str("email").unwrap();
        assert!(
            email.starts_with("user-") && email.ends_with("@example.invalid"),
            "{email}"
        );
        check(src.get_str("email").unwrap(), email);
        let phone = exp.get_str("phone").unwrap();
        assert_eq!(phone.len(), src.get_str("phone").unwrap().len());
        assert!(
            phone.starts_with('+'),
            "the phone's format is kept: {phone}"
        );
        let (sa, ea) = (
            src.get_document("address").unwrap(),
            exp.get_document("address").unwrap(),
        );
        check(sa.get_str("city").unwrap(), ea.get_str("city").unwrap());
        check(sa.get_str("street").unwrap(), ea.get_str("street").unwrap());
        assert!(ea
            .get_document("geo")
            .unwrap()
            .get_str("zip")
            .unwrap()
            .starts_with("redacted-"));
        let contact = exp.get_array("contacts").unwrap()[0].as_document().unwrap();
        assert_eq!(contact.get_str("note").unwrap(), "visible");
        // Everything else is untouched.
        let strip = |d: &Document| {
            let mut d = d.clone();
            for k in ["email", "phone", "address", "contacts"] {
                d.remove(k);
            }
            bson::to_vec(&d).unwrap()
        };
        assert_eq!(strip(src), strip(exp));
    }
    for o in &orders {
        let i = o.get_i32("_id").unwrap();
        check(
            &format!("person{}.secret@corp-example.com", i % 4),
            o.get_str("email").unwrap(),
        );
    }
    // Four distinct emails, four distinct fakes.
    let emails: std::collections::BTreeSet<&str> =
        got.iter().map(|d| d.get_str("email").unwrap()).collect();
    assert_eq!(emails.len(), 4);

    // CSV: header, values by dot path, quoting of commas, quotes, newlines.
    let out = setup.out("csv");
    ok(&export(
        &out,
        &[
            "--from",
            &full,
            "--format",
            "csv",
            "--fields",
            "_id,name,address.city,n,missing",
            "--ns-include",
            &format!("{db}.csv"),
        ],
    ));
    assert_eq!(
        list(&out.join(&db)),
        vec![out.join(&db).join("csv.csv")],
        "only the included collection"
    );
    assert_eq!(
        std::fs::read_to_string(out.join(&db).join("csv.csv")).unwrap(),
        "_id,name,address.city,n,missing\n\
         1,\"Doe, Jane\",Zürich,3,\n\
         2,\"say \"\"hi\"\"\",\"Line\nbreak\",2.5,\n\
         3,plain,,2023-11-14T22:13:20.000Z,\n"
    );
    let no_fields = export(&setup.out("nf"), &["--from", &full, "--format", "csv"]);
    assert_eq!(no_fields.status.code(), Some(64), "{}", text(&no_fields));
    assert!(
        String::from_utf8_lossy(&no_fields.stderr).contains("--fields"),
        "{}",
        text(&no_fields)
    );
    let _ = c.database(&db).drop().await;
}

#[tokio::test]
async fn an_encrypted_backup_exports_with_its_identity_and_is_refused_without() {
    let target = Target::new().unwrap();
    let db = target.unique_db("export_enc");
    let c = client(&target.uri()).await;
    c.database(&db)
        .collection::<Document>("people")
        .insert_many((0..8).map(person))
        .await
        .unwrap();
    let (secret, public) = mongo_backupd::storage::crypt::generate();
    let setup = Setup::new(&target.uri(), &db, Some(&public));
    let key = setup.out("key.txt");
    std::fs::write(&key, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let full = setup.backup("nightly").display().to_string();
    let out = setup.out("enc");
    let refused = export(&out, &["--from", &full]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--identity"),
        "{}",
        text(&refused)
    );
    assert!(
        list(&out).is_empty(),
        "nothing was written: {:?}",
        list(&out)
    );
    ok(&export(
        &out,
        &["--from", &full, "--identity", &key.display().to_string()],
    ));
    assert_same(
        &exported_state(&out, &db),
        &source_state(&c, &db).await,
        "encrypted",
    );
    let _ = c.database(&db).drop().await;
}
