//! A MongoDB deployment to back up: connecting to it and describing what
//! matters for a backup (server version, topology, the oplog window that
//! bounds point-in-time recovery).

use std::time::Duration;

use bson::{doc, Bson, Document, Timestamp};
use mongodb::options::ClientOptions;
use mongodb::Client;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("the MongoDB URI is not valid: {0}")]
    InvalidUri(#[source] mongodb::error::Error),
    #[error("cannot reach MongoDB at {hosts}: {source}")]
    Unreachable {
        hosts: String,
        #[source]
        source: mongodb::error::Error,
    },
    #[error("MongoDB refused '{command}': {source}")]
    Command {
        command: &'static str,
        #[source]
        source: mongodb::error::Error,
    },
}

impl SourceError {
    /// Whether retrying later could help (the server is down or unreachable)
    /// rather than the request itself being wrong.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, SourceError::Unreachable { .. })
    }
}

/// The oldest and newest entries of the oplog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OplogWindow {
    pub first: Timestamp,
    pub last: Timestamp,
}

impl OplogWindow {
    pub fn span(&self) -> Duration {
        Duration::from_secs(u64::from(self.last.time.saturating_sub(self.first.time)))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    pub version: String,
    pub set_name: Option<String>,
    pub writable_primary: bool,
    /// None on a standalone server, which has no oplog: its backups cannot
    /// be made consistent to a point in time.
    pub oplog: Option<OplogWindow>,
}

/// A client for `uri`. `timeout` bounds server selection, so an
/// unreachable server is reported instead of waited on for 30 s.
pub async fn connect(uri: &str, timeout: Duration) -> Result<Client, SourceError> {
    let mut options = ClientOptions::parse(uri)
        .await
        .map_err(SourceError::InvalidUri)?;
    // Settings written in the URI win over our defaults.
    options.server_selection_timeout.get_or_insert(timeout);
    options.connect_timeout.get_or_insert(timeout);
    options
        .app_name
        .get_or_insert_with(|| "mongo-backupd".to_string());
    Client::with_options(options).map_err(SourceError::InvalidUri)
}

/// Closes a client: ends its sessions and connections now. A client merely
/// dropped does that in a background task, which can still be running when
/// the process exits and then fails noisily inside the driver.
pub async fn close(client: Client) {
    client.shutdown().immediate(true).await;
}

/// The hosts a client was configured with, for messages (never the
/// credentials that may be part of the URI).
pub fn hosts_of(uri: &str) -> String {
    let rest = uri.split_once("://").map(|(_, r)| r).unwrap_or(uri);
    let rest = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    rest.split(['/', '?']).next().unwrap_or("").to_string()
}

pub async fn describe(client: &Client, uri: &str) -> Result<SourceInfo, SourceError> {
    let admin = client.database("admin");
    let hello = admin
        .run_command(doc! { "hello": 1 })
        .await
        .map_err(|source| {
            if is_connectivity(&source) {
                SourceError::Unreachable {
                    hosts: hosts_of(uri),
                    source,
                }
            } else {
                SourceError::Command {
                    command: "hello",
                    source,
                }
            }
        })?;
    let build = admin
        .run_command(doc! { "buildInfo": 1 })
        .await
        .map_err(|source| SourceError::Command {
            command: "buildInfo",
            source,
        })?;
    let set_name = hello.get_str("setName").ok().map(str::to_string);
    let oplog = if set_name.is_some() {
        oplog_window(client).await?
    } else {
        None
    };
    Ok(SourceInfo {
        version: build.get_str("version").unwrap_or("unknown").to_string(),
        writable_primary: hello.get_bool("isWritablePrimary").unwrap_or(false),
        set_name,
        oplog,
    })
}

fn is_connectivity(e: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    matches!(
        e.kind.as_ref(),
        ErrorKind::ServerSelection { .. }
            | ErrorKind::DnsResolve { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
    )
}

async fn oplog_window(client: &Client) -> Result<Option<OplogWindow>, SourceError> {
    let oplog = client.database("local").collection::<Document>("oplog.rs");
    let edge = |dir: i32| {
        let oplog = oplog.clone();
        async move {
            oplog
                .find_one(doc! {})
                .sort(doc! { "$natural": dir })
                .projection(doc! { "ts": 1, "_id": 0 })
                .await
                .map_err(|source| SourceError::Command {
                    command: "find on local.oplog.rs",
                    source,
                })
                .map(|d| match d.and_then(|d| d.get("ts").cloned()) {
                    Some(Bson::Timestamp(t)) => Some(t),
                    _ => None,
                })
        }
    };
    let first = edge(1).await?;
    let last = edge(-1).await?;
    Ok(match (first, last) {
        (Some(first), Some(last)) => Some(OplogWindow { first, last }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_never_include_credentials() {
        assert_eq!(
            hosts_of("mongodb://user:s3cret@db1:27017,db2/?replicaSet=rs0"),
            "db1:27017,db2"
        );
        assert_eq!(
            hosts_of("mongodb+srv://a:b@cluster.example.net/app"),
            "cluster.example.net"
        );
        assert_eq!(hosts_of("mongodb://127.0.0.1:1234"), "127.0.0.1:1234");
    }

    #[test]
    fn window_span_in_seconds() {
        let w = OplogWindow {
            first: Timestamp {
                time: 100,
                increment: 5,
            },
            last: Timestamp {
                time: 3700,
                increment: 1,
            },
        };
        assert_eq!(w.span(), Duration::from_secs(3600));
    }
}
