//! What a drill's restore must produce, computed from the backup files
//! alone: per collection the document count at the restored instant, a
//! sample of documents as the backups hold them, and the indexes and
//! options the backup recorded.
//!
//! The snapshot reader ([`crate::export::snapshot`]) applies the chain's
//! oplog to the data files, giving the state a correct restore
//! reproduces. On the way it counts each data file's documents: compared
//! with the count the manifest recorded while the backup was written, that
//! catches a file damaged after its checksum was written (the checksum
//! then vouches for broken data, and a restore would faithfully reproduce
//! the loss).

use bson::RawDocumentBuf;

use super::SplitMix;
use crate::export::snapshot::{Snapshot, SnapshotError};
use crate::restore::pitr::PitrPlan;
use crate::restore::NsMapper;
use crate::storage::StorageError;

/// One collection (or view) the restore must produce.
#[derive(Debug, Clone)]
pub struct ExpectedCollection {
    /// Where it is in the backup.
    pub db: String,
    pub name: String,
    /// Where the drill restores it.
    pub target_db: String,
    pub target_name: String,
    pub is_view: bool,
    /// Documents at the restored instant.
    pub count: u64,
    /// Documents drawn at random, as the backup holds them.
    pub sample: Vec<RawDocumentBuf>,
    pub indexes: Vec<bson::Document>,
    pub options: bson::Document,
}

/// What the restore must produce, plus what the files themselves betray.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub collections: Vec<ExpectedCollection>,
    /// Data files whose document count differs from their manifest's.
    pub damaged: Vec<String>,
}

impl Expected {
    /// The prefixed databases the drill writes to, each once.
    pub fn target_databases(&self) -> Vec<String> {
        let mut dbs: Vec<String> = self
            .collections
            .iter()
            .map(|c| c.target_db.clone())
            .collect();
        dbs.sort();
        dbs.dedup();
        dbs
    }
}

/// Reads the plan's backups. Blocking. The error names the backup that
/// could not be read.
pub fn compute(
    plan: &PitrPlan,
    mapper: &NsMapper,
    sample: u32,
    seed: u64,
) -> Result<Expected, (String, StorageError)> {
    let full_id = plan.full.manifest.id.clone();
    let snapshot_error = |e: SnapshotError| {
        (
            full_id.clone(),
            StorageError::Corrupt {
                path: plan.full.dir.path(),
                detail: e.to_string(),
            },
        )
    };
    let mut expected = Expected::default();
    let snapshot = Snapshot::of_plan(plan).map_err(snapshot_error)?;
    let mut rng = SplitMix(seed);
    for coll in snapshot.collections() {
        let Some((target_db, target_name)) = mapper.map(&coll.db, &coll.name) else {
            continue;
        };
        let mut count = 0u64;
        let mut reservoir: Vec<RawDocumentBuf> = Vec::new();
        let mut documents = snapshot.documents(coll).map_err(snapshot_error)?;
        for doc in documents.by_ref() {
            let doc = doc.map_err(snapshot_error)?;
            count += 1;
            // Reservoir sampling: every document equally likely, one pass.
            if reservoir.len() < sample as usize {
                reservoir.push(doc);
            } else if sample > 0 {
                let slot = rng.next() % count;
                if let Ok(slot) = usize::try_from(slot) {
                    if slot < reservoir.len() {
                        reservoir[slot] = doc;
                    }
                }
            }
        }
        if let Some(damage) = coll
            .data_file()
            .and_then(|rel| miscounted(plan, rel, documents.from_file()))
        {
            expected.damaged.push(damage);
        }
        expected.collections.push(ExpectedCollection {
            db: coll.db.clone(),
            name: coll.name.clone(),
            target_db,
            target_name,
            is_view: coll.is_view(),
            count,
            sample: reservoir,
            indexes: coll.indexes.clone(),
            options: coll.options.clone(),
        });
    }
    Ok(expected)
}

/// Why data file `rel` of the full is damaged, when it held `counted`
/// documents but its manifest recorded another count.
fn miscounted(plan: &PitrPlan, rel: &str, counted: u64) -> Option<String> {
    let full = &plan.full.manifest;
    let record = full
        .collections
        .iter()
        .find(|c| c.data_file.as_deref() == Some(rel))?;
    (record.documents != counted).then(|| {
        format!(
            "{rel} of backup {} holds {counted} documents, but its manifest recorded {} when \
             the backup was written",
            full.id, record.documents
        )
    })
}
