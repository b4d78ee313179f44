//! Helpers of the export tests: running the binary, a configuration with
//! a full and an incremental job, test documents, and the states (source
//! and exported) the tests compare byte for byte.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly by design

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use bson::{doc, Bson, Document, RawDocumentBuf};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;

use crate::common::{bin, every_type, text};

/// Runs the binary with only the arguments deciding (no identity or
/// configuration from the environment).
pub fn run(args: &[&str]) -> Output {
    bin()
        .env_remove("MONGO_BACKUPD_IDENTITY")
        .env_remove("MONGO_BACKUPD_CONFIG")
        .args(args)
        .output()
        .expect("run mongo-backupd")
}

/// `mongo-backupd export --out OUT ARGS...`.
pub fn export(out: &Path, args: &[&str]) -> Output {
    let out = out.display().to_string();
    let mut all = vec!["export", "--out", &out];
    all.extend_from_slice(args);
    run(&all)
}

#[track_caller]
pub fn ok(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", text(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Oplog times have one-second resolution: wait until the wall clock enters
/// a new second, so writes before and after are told apart.
pub async fn next_second() -> DateTime<Utc> {
    let s = Utc::now().timestamp();
    while Utc::now().timestamp() == s {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Utc::now()
}

pub struct Setup {
    pub work: tempfile::TempDir,
    pub config: String,
    pub storage: PathBuf,
}

impl Setup {
    /// A full job and an incremental job of `db`, optionally encrypted.
    pub fn new(uri: &str, db: &str, encrypt_to: Option<&str>) -> Setup {
        let work = tempfile::tempdir().unwrap();
        let storage = work.path().join("backups");
        let config = work.path().join("config.toml");
        let encrypt = encrypt_to
            .map(|r| format!("encrypt_to = [\"{r}\"]\n"))
            .unwrap_or_default();
        std::fs::write(
            &config,
            format!(
                "[daemon]\nstate_dir = \"{state}\"\n\n[sources.prod]\nuri = \"{uri}\"\n\n\
                 [storage.local]\ntype = \"local\"\npath = \"{storage}\"\n\n\
                 [jobs.nightly]\nsource = \"prod\"\nstorage = \"local\"\nkind = \"full\"\n\
                 schedule = \"0 2 * * *\"\ninclude = [\"{db}\"]\n{encrypt}\n\
                 [jobs.hourly]\nsource = \"prod\"\nstorage = \"local\"\nkind = \"incremental\"\n\
                 schedule = \"0 * * * *\"\ninclude = [\"{db}\"]\n{encrypt}",
                state = work.path().join("state").display(),
                storage = storage.display(),
            ),
        )
        .unwrap();
        Setup {
            config: config.display().to_string(),
            storage,
            work,
        }
    }

    /// Runs a backup of `job`; returns the new backup's directory.
    pub fn backup(&self, job: &str) -> PathBuf {
        let dir = self.storage.join(job);
        let before: Vec<PathBuf> = list(&dir);
        ok(&run(&["backup", "--config", &self.config, "--job", job]));
        let new: Vec<PathBuf> = list(&dir)
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        assert_eq!(new.len(), 1, "{new:?}");
        new[0].clone()
    }

    /// `export --at AT` from the chain of the incremental job.
    pub fn export_at(&self, out: &Path, at: &str) -> Output {
        export(
            out,
            &["--config", &self.config, "--job", "hourly", "--at", at],
        )
    }

    pub fn out(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }
}

pub fn list(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// A person with every BSON type and the personal fields the redaction
/// tests look for; people `i` and `i + 4` share their email and city.
pub fn person(i: i32) -> Document {
    let mut d = every_type(i);
    d.insert("_id", i);
    d.insert("name", format!("Person {i}"));
    d.insert("email", format!("person{}.secret@corp-example.com", i % 4));
    d.insert(
        "phone",
        format!("+41 44 {:03} {:02} {:02}", 100 + i, i % 100, 7),
    );
    d.insert(
        "address",
        doc! {
            "street": format!("{} Hidden Lane", 10 + i),
            "city": format!("Cityname{}", i % 4),
            "geo": { "zip": format!("ZIP-{:05}", 8000 + i) },
        },
    );
    d.insert(
        "contacts",
        vec![Bson::Document(
            doc! { "email": format!("friend{i}@corp-example.com"), "note": "visible" },
        )],
    );
    d
}

/// The documents of every collection of `db`, by collection, as BSON bytes
/// in `_id` order (bytes compare types and field order too).
pub async fn source_state(c: &mongodb::Client, db: &str) -> BTreeMap<String, Vec<Vec<u8>>> {
    let db = c.database(db);
    let mut out = BTreeMap::new();
    for name in db.list_collection_names().await.unwrap() {
        if name.starts_with("system.") {
            continue;
        }
        let docs: Vec<RawDocumentBuf> = db
            .collection::<RawDocumentBuf>(&name)
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        out.insert(name, docs.into_iter().map(|d| d.into_bytes()).collect());
    }
    out
}

/// Every line of an exported JSON file, parsed with bson's Extended JSON
/// support.
pub fn parse_json_lines(path: &Path) -> Vec<Document> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            match Bson::try_from(value).unwrap() {
                Bson::Document(d) => d,
                other => panic!("not a document: {other:?}"),
            }
        })
        .collect()
}

/// What an export wrote for `db`, in the same form as [`source_state`].
pub fn exported_state(out: &Path, db: &str) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut state = BTreeMap::new();
    for path in list(&out.join(db)) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "a temporary file was left: {name}");
        let coll = name.strip_suffix(".json").unwrap().to_string();
        let mut docs: Vec<(Bson, Vec<u8>)> = parse_json_lines(&path)
            .into_iter()
            .map(|d| (d.get("_id").cloned().unwrap(), bson::to_vec(&d).unwrap()))
            .collect();
        docs.sort_by(|a, b| mongo_testserver::compare::cmp_bson(&a.0, &b.0));
        state.insert(coll, docs.into_iter().map(|(_, b)| b).collect());
    }
    state
}

/// Compares two states byte for byte, and on a difference shows the first
/// differing document of each side as Extended JSON (cut short).
#[track_caller]
pub fn assert_same(
    got: &BTreeMap<String, Vec<Vec<u8>>>,
    want: &BTreeMap<String, Vec<Vec<u8>>>,
    what: &str,
) {
    let show = |b: Option<&Vec<u8>>| -> String {
        let text = b
            .map(|b| bson::from_slice::<Document>(b).unwrap().to_string())
            .unwrap_or_else(|| "(none)".into());
        text.chars().take(600).collect()
    };
    let names = |m: &BTreeMap<String, Vec<Vec<u8>>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(got), names(want), "{what}: the collections differ");
    for (coll, docs) in want {
        let mine = &got[coll];
        if let Some(i) = (0..docs.len().max(mine.len())).find(|&i| mine.get(i) != docs.get(i)) {
            panic!(
                "{what}: {coll} differs ({} documents exported, {} expected) first at #{i}:\n  exported {}\n  expected {}",
                mine.len(),
                docs.len(),
                show(mine.get(i)),
                show(docs.get(i))
            );
        }
    }
}

/// Every string of `doc` at the given top-level or dotted paths.
pub fn strings_at(doc: &Document, paths: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for p in paths {
        let mut cur = vec![Bson::Document(doc.clone())];
        for part in p.split('.') {
            cur = cur
                .into_iter()
                .flat_map(|v| match v {
                    Bson::Document(d) => d.get(part).cloned().into_iter().collect::<Vec<_>>(),
                    Bson::Array(a) => a
                        .into_iter()
                        .filter_map(|e| e.as_document().and_then(|d| d.get(part).cloned()))
                        .collect(),
                    _ => Vec::new(),
                })
                .collect();
        }
        out.extend(
            cur.into_iter()
                .filter_map(|v| v.as_str().map(str::to_string)),
        );
    }
    out
}
