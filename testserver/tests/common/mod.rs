//! Helpers shared by the driver-level integration tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use bson::{doc, Document};
use mongo_testserver::harness::Target;
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::{Client, Database};

/// A connected client plus a database of its own, dropped on `finish`.
pub struct Fixture {
    pub target: Target,
    pub client: Client,
    pub db: Database,
}

impl Fixture {
    pub async fn new(prefix: &str) -> Fixture {
        let target = Target::new().expect("start the test server");
        Self::with_target(target, prefix).await
    }

    pub async fn local(prefix: &str) -> Fixture {
        let target = Target::local_only().expect("start the test server");
        Self::with_target(target, prefix).await
    }

    pub async fn with_target(target: Target, prefix: &str) -> Fixture {
        let client = client_for(&target.uri()).await;
        let db = client.database(&target.unique_db(prefix));
        Fixture { target, client, db }
    }

    pub fn ns(&self, coll: &str) -> String {
        format!("{}.{coll}", self.db.name())
    }

    /// Oplog entries about this fixture's database, oldest first.
    pub async fn oplog(&self) -> Vec<Document> {
        use futures_util::TryStreamExt;
        let prefix = format!("^{}\\.", regex_escape(self.db.name()));
        let filter = doc! { "ns": { "$regex": prefix } };
        let mut out: Vec<Document> = self
            .client
            .database("local")
            .collection::<Document>("oplog.rs")
            .find(filter)
            .await
            .expect("read the oplog")
            .try_collect()
            .await
            .expect("read the oplog");
        out.retain(|e| e.get_str("op") != Ok("n"));
        out
    }

    pub async fn finish(self) {
        let _ = self.db.drop().await;
    }
}

pub async fn client_for(uri: &str) -> Client {
    Client::with_uri_str(uri).await.expect("parse the URI")
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

/// The server error code inside a driver error, whatever its kind.
pub fn code_of(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::InsertMany(i) => i.write_errors.as_ref()?.first().map(|w| w.code),
        _ => None,
    }
}

pub fn message_of(e: &mongodb::error::Error) -> String {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => c.message.clone(),
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.message.clone(),
        ErrorKind::InsertMany(i) => i
            .write_errors
            .as_ref()
            .and_then(|w| w.first())
            .map(|w| w.message.clone())
            .unwrap_or_default(),
        other => other.to_string(),
    }
}

/// A network-level failure (the driver's own predicate is private).
pub fn is_network(e: &mongodb::error::Error) -> bool {
    matches!(
        e.kind.as_ref(),
        ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. }
    )
}
