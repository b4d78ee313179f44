//! How far a running backup is, shared with whoever watches it (the
//! daemon's status, `backup-now --wait`): lock-free counters the copy
//! bumps as it goes, read at any time without slowing it down.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::daemon::api;

#[derive(Debug, Default)]
pub struct BackupProgress {
    collections_total: AtomicU64,
    collections_done: AtomicU64,
    documents: AtomicU64,
    bytes: AtomicU64,
}

impl BackupProgress {
    pub fn set_total(&self, collections: u64) {
        self.collections_total.store(collections, Ordering::Relaxed);
    }

    pub fn collection_done(&self) {
        self.collections_done.fetch_add(1, Ordering::Relaxed);
    }

    pub fn copied(&self, documents: u64, bytes: u64) {
        self.documents.fetch_add(documents, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> api::Progress {
        api::Progress {
            collections_done: self.collections_done.load(Ordering::Relaxed),
            collections_total: self.collections_total.load(Ordering::Relaxed),
            documents: self.documents.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}
