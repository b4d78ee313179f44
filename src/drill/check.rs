//! Comparing what a drill restored with what the backups hold.
//!
//! Every difference is a [`Problem`] worded for the alert: which
//! namespace, what was expected, what was found. The comparison reads
//! only the drill's prefixed databases.

use std::collections::BTreeSet;
use std::fmt;

use bson::{doc, Bson, Document, RawDocumentBuf};
use futures_util::TryStreamExt;
use mongodb::Client;

use super::expected::{Expected, ExpectedCollection};
use crate::source::SourceError;

/// One difference between the restore and the backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `db.collection` as named in the backup.
    pub namespace: String,
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.namespace, self.detail)
    }
}

/// What was compared, and what differed.
#[derive(Debug, Default)]
pub struct Checked {
    pub collections: u64,
    pub documents: u64,
    pub sampled: u64,
    pub indexes: u64,
    pub problems: Vec<Problem>,
}

/// Index options whose loss changes behaviour (a unique index that is not
/// unique any more accepts duplicates).
const INDEX_OPTIONS: [&str; 7] = [
    "unique",
    "sparse",
    "expireAfterSeconds",
    "partialFilterExpression",
    "collation",
    "hidden",
    "weights",
];

pub async fn compare(client: &Client, expected: &Expected) -> Result<Checked, SourceError> {
    let mut checked = Checked::default();
    for damage in &expected.damaged {
        checked.problems.push(Problem {
            namespace: "data file".into(),
            detail: damage.clone(),
        });
    }
    for db in expected.target_databases() {
        let listed = list_collections(client, &db).await?;
        let wanted: BTreeSet<&str> = expected
            .collections
            .iter()
            .filter(|c| c.target_db == db)
            .map(|c| c.target_name.as_str())
            .collect();
        for (name, _) in &listed {
            if !wanted.contains(name.as_str()) && !name.starts_with("system.") {
                checked.problems.push(Problem {
                    namespace: format!("{db}.{name}"),
                    detail: "is on the target but not in the backup at that instant".into(),
                });
            }
        }
        for coll in expected.collections.iter().filter(|c| c.target_db == db) {
            let options = listed
                .iter()
                .find(|(n, _)| *n == coll.target_name)
                .map(|(_, o)| o);
            let Some(options) = options else {
                checked
                    .problems
                    .push(problem(coll, "was not restored".into()));
                continue;
            };
            checked.collections += 1;
            compare_options(coll, options, &mut checked.problems);
            if coll.is_view {
                continue;
            }
            compare_collection(client, coll, &mut checked).await?;
        }
    }
    Ok(checked)
}

fn problem(coll: &ExpectedCollection, detail: String) -> Problem {
    Problem {
        namespace: format!("{}.{}", coll.db, coll.name),
        detail,
    }
}

async fn compare_collection(
    client: &Client,
    coll: &ExpectedCollection,
    checked: &mut Checked,
) -> Result<(), SourceError> {
    let db = client.database(&coll.target_db);
    let command = |source| SourceError::Command {
        command: "count",
        source,
    };
    let reply = db
        .run_command(doc! { "count": &coll.target_name })
        .await
        .map_err(command)?;
    let count = number(reply.get("n")).unwrap_or(-1);
    checked.documents += u64::try_from(count).unwrap_or(0);
    if u64::try_from(count).ok() != Some(coll.count) {
        checked.problems.push(problem(
            coll,
            format!(
                "{count} documents restored, the backups hold {}",
                coll.count
            ),
        ));
    }
    let raw = db.collection::<RawDocumentBuf>(&coll.target_name);
    for wanted in &coll.sample {
        let id = wanted
            .get("_id")
            .ok()
            .flatten()
            .and_then(|v| Bson::try_from(v.to_raw_bson()).ok())
            .unwrap_or(Bson::Null);
        let found = raw
            .find_one(doc! { "_id": id.clone() })
            .await
            .map_err(|source| SourceError::Command {
                command: "find",
                source,
            })?;
        checked.sampled += 1;
        match found {
            None => checked
                .problems
                .push(problem(coll, format!("document {id} is missing"))),
            Some(found) if found.as_bytes() != wanted.as_bytes() => checked.problems.push(problem(
                coll,
                format!("document {id} differs from the backup's bytes"),
            )),
            Some(_) => {}
        }
    }
    compare_indexes(client, coll, checked).await
}

async fn compare_indexes(
    client: &Client,
    coll: &ExpectedCollection,
    checked: &mut Checked,
) -> Result<(), SourceError> {
    let reply = client
        .database(&coll.target_db)
        .run_command(doc! { "listIndexes": &coll.target_name })
        .await
        .map_err(|source| SourceError::Command {
            command: "listIndexes",
            source,
        })?;
    let found = first_batch(&reply);
    for spec in &coll.indexes {
        let name = spec.get_str("name").unwrap_or("");
        let Some(have) = found.iter().find(|f| f.get_str("name").ok() == Some(name)) else {
            checked
                .problems
                .push(problem(coll, format!("index {name:?} is missing")));
            continue;
        };
        checked.indexes += 1;
        if !same(spec.get("key"), have.get("key")) {
            checked.problems.push(problem(
                coll,
                format!("index {name:?} has other keys than in the backup"),
            ));
        }
        for option in INDEX_OPTIONS {
            if !same(spec.get(option), have.get(option)) {
                checked.problems.push(problem(
                    coll,
                    format!("index {name:?} lost or changed its {option} option"),
                ));
            }
        }
    }
    Ok(())
}

/// The backup's options must all be on the target (the server may add
/// others of its own, such as a uuid).
fn compare_options(coll: &ExpectedCollection, have: &Document, problems: &mut Vec<Problem>) {
    for (key, value) in &coll.options {
        if !same(Some(value), have.get(key)) {
            problems.push(problem(
                coll,
                format!("collection option {key:?} differs from the backup's"),
            ));
        }
    }
}

/// Equal, with numbers compared by value: metadata.json and the server
/// may store 1 as an int, a long or a double.
fn same(a: Option<&Bson>, b: Option<&Bson>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => match (number_f64(a), number_f64(b)) {
            (Some(x), Some(y)) => x == y,
            _ => match (a, b) {
                (Bson::Document(x), Bson::Document(y)) => {
                    x.len() == y.len()
                        && x.iter()
                            .zip(y.iter())
                            .all(|((kx, vx), (ky, vy))| kx == ky && same(Some(vx), Some(vy)))
                }
                (Bson::Array(x), Bson::Array(y)) => {
                    x.len() == y.len() && x.iter().zip(y).all(|(vx, vy)| same(Some(vx), Some(vy)))
                }
                _ => a == b,
            },
        },
        _ => false,
    }
}

fn number_f64(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(n) => Some(f64::from(*n)),
        // Index options are small integers; precision is not at stake.
        #[allow(clippy::cast_precision_loss)]
        Bson::Int64(n) => Some(*n as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    }
}

fn number(v: Option<&Bson>) -> Option<i64> {
    match v? {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        #[allow(clippy::cast_possible_truncation)]
        Bson::Double(d) => Some(*d as i64),
        _ => None,
    }
}

/// `(name, options)` of every collection and view in `db`, options as the
/// server reports them (the raw command: the driver's typed options would
/// drop what it does not know).
async fn list_collections(
    client: &Client,
    db: &str,
) -> Result<Vec<(String, Document)>, SourceError> {
    let command = |source| SourceError::Command {
        command: "listCollections",
        source,
    };
    let mut cursor = client
        .database(db)
        .run_cursor_command(doc! { "listCollections": 1 })
        .await
        .map_err(command)?;
    let mut out = Vec::new();
    while let Some(spec) = cursor.try_next().await.map_err(command)? {
        let name = spec.get_str("name").unwrap_or("").to_string();
        let options = spec.get_document("options").cloned().unwrap_or_default();
        out.push((name, options));
    }
    Ok(out)
}

fn first_batch(reply: &Document) -> Vec<Document> {
    reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .map(|b| b.iter().filter_map(|d| d.as_document().cloned()).collect())
        .unwrap_or_default()
}
