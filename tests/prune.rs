//! `prune` on real storage: the decisions are shown with their reasons,
//! `--dry-run` deletes nothing, and a prune deletes exactly what the policy
//! no longer keeps.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use bson::{doc, Document};
use common::{aged_copy, client, run, text};
use mongo_testserver::harness::Target;

#[tokio::test]
async fn prune_deletes_what_the_policy_no_longer_keeps() {
    let target = Target::new().unwrap();
    let db = target.unique_db("prune");
    client(&target.uri())
        .await
        .database(&db)
        .collection::<Document>("c")
        .insert_one(doc! { "x": 1 })
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("backups");
    let config = work.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nstate_dir = \"{}\"\n\n[sources.prod]\nuri = \"{}\"\n\n[storage.local]\ntype = \"local\"\npath = \"{}\"\n\n[jobs.nightly]\nsource = \"prod\"\nstorage = \"local\"\nkind = \"full\"\nschedule = \"0 2 * * *\"\nretention = \"30d\"\nmin_keep = 1\ninclude = [\"{db}\"]\n",
            work.path().join("state").display(),
            target.uri(),
            storage.display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let out = run(&["backup", "--config", &config, "--job", "nightly"]);
    assert!(out.status.success(), "{}", text(&out));
    let real = std::fs::read_dir(storage.join("nightly"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let old = aged_copy(&real, 40);
    let recent = aged_copy(&real, 20);

    let dry = run(&["prune", "--config", &config, "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let shown = String::from_utf8_lossy(&dry.stdout).to_string();
    let line = |id: &str| {
        shown
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line(&old).contains("DELETE") && line(&old).contains("older than retention 30d"),
        "{shown}"
    );
    assert!(line(&recent).contains("KEEP"), "{shown}");
    assert!(shown.contains("Dry run: nothing was deleted."), "{shown}");
    assert!(
        storage.join("nightly").join(&old).is_dir(),
        "a dry run deletes nothing"
    );

    let pruned = run(&["prune", "--config", &config]);
    assert_eq!(pruned.status.code(), Some(0), "{}", text(&pruned));
    assert!(
        !storage.join("nightly").join(&old).exists(),
        "{}",
        text(&pruned)
    );
    assert!(storage.join("nightly").join(&recent).is_dir());
    assert!(real.is_dir());
    let _ = client(&target.uri()).await.database(&db).drop().await;
}
