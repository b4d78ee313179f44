//! The proof: the source's exact state at an instant, recorded while
//! nothing writes, compared with what a point-in-time restore to that
//! instant produced — every document byte for byte by `_id`, and every
//! index by name and key.
//!
//! Recording is honest because of how the instant is chosen (see
//! [`record_instant`]): the writer is paused and the whole second that the
//! restore targets passes without a write, so "the state at that second"
//! has exactly one meaning, whatever the oplog's one-second resolution.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bson::{Bson, Document, RawDocumentBuf};
use chrono::{DateTime, SubsecRound, Utc};
use futures_util::TryStreamExt;
use mongodb::Database;

use super::writer::Writer;

/// One collection: documents by the encoding of their `_id`, and indexes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Collection {
    docs: BTreeMap<Vec<u8>, RawDocumentBuf>,
    indexes: BTreeSet<String>,
}

/// A database's documents and indexes, by collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    collections: BTreeMap<String, Collection>,
}

impl Snapshot {
    pub fn collections(&self) -> usize {
        self.collections.len()
    }

    pub fn documents(&self) -> usize {
        self.collections.values().map(|c| c.docs.len()).sum()
    }
}

/// The `_id` element encoded on its own: equal exactly when type and
/// value are equal.
fn id_key(doc: &RawDocumentBuf) -> Vec<u8> {
    let mut key = RawDocumentBuf::new();
    if let Ok(Some(id)) = doc.get("_id") {
        key.append("_id", id.to_raw_bson());
    }
    key.into_bytes()
}

fn show_id(key: &[u8]) -> String {
    RawDocumentBuf::from_bytes(key.to_vec())
        .ok()
        .and_then(|d| d.to_document().ok())
        .and_then(|d| d.get("_id").cloned())
        .map(|id| match id {
            Bson::String(s) => format!("{s:?}"),
            other => other.to_string(),
        })
        .unwrap_or_else(|| "(none)".into())
}

/// Reads every collection of `db` (documents in full, as raw BSON).
pub async fn take(db: &Database) -> Result<Snapshot, mongodb::error::Error> {
    let mut collections = BTreeMap::new();
    for name in db.list_collection_names().await? {
        if name.starts_with("system.") {
            continue;
        }
        let coll = db.collection::<RawDocumentBuf>(&name);
        let docs: Vec<RawDocumentBuf> = coll.find(bson::doc! {}).await?.try_collect().await?;
        let indexes = db
            .collection::<Document>(&name)
            .list_indexes()
            .await?
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .map(|i| {
                let name = i.options.and_then(|o| o.name).unwrap_or_default();
                format!("{name} {}", i.keys)
            })
            .collect();
        let docs = docs.into_iter().map(|d| (id_key(&d), d)).collect();
        collections.insert(name, Collection { docs, indexes });
    }
    Ok(Snapshot { collections })
}

/// Every difference between what the source held and what the restore
/// produced, as sentences (at most a few per collection).
pub fn compare(expected: &Snapshot, actual: &Snapshot) -> Vec<String> {
    const SHOWN: usize = 5;
    let mut problems = Vec::new();
    for name in actual.collections.keys() {
        if !expected.collections.contains_key(name) {
            problems.push(format!(
                "collection {name} was restored but did not exist at that instant"
            ));
        }
    }
    for (name, want) in &expected.collections {
        let Some(got) = actual.collections.get(name) else {
            problems.push(format!("collection {name} is missing from the restore"));
            continue;
        };
        if want.indexes != got.indexes {
            problems.push(format!(
                "collection {name}: the indexes differ: expected {:?}, restored {:?}",
                want.indexes, got.indexes
            ));
        }
        let mut found = Vec::new();
        for (id, doc) in &want.docs {
            match got.docs.get(id) {
                None => found.push(format!("document {} is missing", show_id(id))),
                Some(g) if g.as_bytes() != doc.as_bytes() => found.push(format!(
                    "document {} differs: expected {}, restored {}",
                    show_id(id),
                    doc.to_document().map(|d| d.to_string()).unwrap_or_default(),
                    g.to_document().map(|d| d.to_string()).unwrap_or_default()
                )),
                Some(_) => {}
            }
        }
        for id in got.docs.keys().filter(|id| !want.docs.contains_key(*id)) {
            found.push(format!(
                "document {} was restored but did not exist at that instant",
                show_id(id)
            ));
        }
        let total = found.len();
        for f in found.into_iter().take(SHOWN) {
            problems.push(format!("collection {name}: {f}"));
        }
        if total > SHOWN {
            problems.push(format!(
                "collection {name}: {} more differences",
                total - SHOWN
            ));
        }
    }
    problems
}

/// Pauses the writer, lets the wall clock reach a second in which nothing
/// is written, records `db` during that second, and resumes the writer
/// once the second is over. Returns the instant (a whole second) and the
/// state: restoring to that instant must reproduce exactly this state.
pub async fn record_instant(
    db: &Database,
    writer: &Writer,
) -> Result<(DateTime<Utc>, Snapshot), mongodb::error::Error> {
    writer.pause().await;
    // Every write so far has been answered, so its oplog time is in this
    // second or before; the next whole second has no write at all.
    let instant = Utc::now().trunc_subsecs(0) + chrono::Duration::seconds(1);
    sleep_until(instant).await;
    let snapshot = take(db).await;
    // Writes resume only in a later second than the one recorded.
    sleep_until(instant + chrono::Duration::seconds(1)).await;
    writer.resume().await;
    Ok((instant, snapshot?))
}

/// Sleeps until the wall clock reaches `t` (with a small margin: timers
/// and the wall clock may disagree by a few milliseconds).
pub async fn sleep_until(t: DateTime<Utc>) {
    loop {
        let left = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left + Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn snap(docs: &[Document]) -> Snapshot {
        let docs = docs
            .iter()
            .map(|d| {
                let raw = RawDocumentBuf::from_document(d).unwrap();
                (id_key(&raw), raw)
            })
            .collect();
        let coll = Collection {
            docs,
            indexes: ["_id_ { \"_id\": 1 }".to_string()].into(),
        };
        Snapshot {
            collections: [("orders".to_string(), coll)].into(),
        }
    }

    #[test]
    fn equal_states_match_and_differences_are_named() {
        let a = snap(&[doc! { "_id": 1, "v": 1 }, doc! { "_id": "x", "v": 2 }]);
        assert!(compare(&a, &a.clone()).is_empty());
        assert_eq!((a.documents(), a.collections()), (2, 1));
        // Same values, other field order: not the same bytes.
        let reordered = snap(&[doc! { "v": 1, "_id": 1 }, doc! { "_id": "x", "v": 2 }]);
        let p = compare(&a, &reordered);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("collection orders: document 1 differs"),
            "{p:?}"
        );
        // An _id of another type is another document.
        let other_type = snap(&[doc! { "_id": 1_i64, "v": 1 }, doc! { "_id": "x", "v": 2 }]);
        let p = compare(&a, &other_type);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("document 1 is missing"), "{p:?}");
        assert!(p[1].contains("was restored but did not exist"), "{p:?}");
        assert_eq!(
            compare(&a, &Snapshot::default()),
            vec!["collection orders is missing from the restore".to_string()]
        );
    }
}
