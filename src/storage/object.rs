//! Object-store locations (S3 and S3-compatible services, Azure Blob
//! Storage, Google Cloud Storage) through the `object_store` crate.
//!
//! Backups are copied here after they are complete on local disk, so this
//! module is about moving whole files safely and saying clearly what went
//! wrong: uploads stream from disk with bounded memory, hash what they send
//! and are aborted (no half object ever becomes visible) when the local file
//! is not what its manifest says; reads stream with bounded memory too; and
//! every error names the location, the object and what the operator should
//! do, without ever containing a credential.

use std::fmt;
use std::io;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, RetryConfig, WriteMultipart,
};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::{FileEntry, StorageError};
use crate::config::{Backend, ObjectService, ObjectSettings, SecretSource, StorageLocation};

/// S3 and GCS (whose multipart API object_store uses is S3's) refuse parts
/// below 5 MiB except the last one, and only say so when the upload is
/// completed, after every byte was sent; smaller configured part sizes are
/// raised to this.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's and GCS's limit on parts per upload (Azure allows 50,000 blocks);
/// a file that would need more gets larger parts.
const MAX_PARTS: u64 = 10_000;
/// Parts uploading at the same time: enough to keep a link busy, few
/// enough that memory stays at a handful of parts whatever the file size.
const PARTS_IN_FLIGHT: usize = 3;
/// How much of the local file is read (and hashed) at a time.
const READ_BUFFER: usize = 1024 * 1024;
/// The reader fetches objects in ranges of this size so that each request,
/// not the whole object, is what the per-request `timeout` bounds.
const READ_RANGE: u64 = 64 * 1024 * 1024;
/// Network chunks buffered between the download task and the reader.
const READER_CHUNKS: usize = 16;
/// Retries of a failed request (connection refused, 5xx, throttling).
const MAX_RETRIES: usize = 5;
/// The longest connect attempt, unless `timeout` is shorter.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// object_store re-sends signed requests without re-signing them, so
/// retries must stop well before a signature expires (15 minutes for S3).
const MAX_RETRY_WINDOW: Duration = Duration::from_secs(180);
/// The longest service answer quoted in an error message.
const MAX_DETAIL: usize = 600;

/// One `[storage.NAME]` of `type = "s3" | "azure" | "gcs"`, ready to use.
/// Cheap to clone: clones share the HTTP client and its connections.
#[derive(Clone)]
pub struct ObjectLocation {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    name: String,
    url: String,
    /// Prepended to every key: "" or ending in "/".
    prefix: String,
    /// The part size uploads use (the configured one, raised to what the
    /// service accepts).
    part_size: u64,
    /// What it talks to, for "is it reachable?" messages.
    endpoint: String,
    /// "bucket" or "container", as the service calls it.
    container_word: &'static str,
    /// Which settings hold the credentials, for "check the credentials in
    /// ..." advice.
    credentials_hint: String,
    store: Arc<dyn ObjectStore>,
    /// Credential values removed from every message built from a service's
    /// answer, in case one ever echoes them.
    secrets: Vec<String>,
    /// Bytes per ranged GET of [`ObjectLocation::open_read`].
    read_range: u64,
}

/// Deliberately leaves out the client and the credential values.
impl fmt::Debug for ObjectLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectLocation")
            .field("name", &self.inner.name)
            .field("url", &self.inner.url)
            .field("endpoint", &self.inner.endpoint)
            .field("part_size", &self.inner.part_size)
            .finish_non_exhaustive()
    }
}

/// The object (or, for listings, the key prefix) an object-store error is
/// about; shows as `s3://bucket/prefix/KEY (storage "NAME")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectTarget {
    /// The `[storage.NAME]`.
    pub location: String,
    /// The location's URL, see [`ObjectLocation::url`].
    pub url: String,
    /// Relative to the location's prefix.
    pub key: String,
}

impl fmt::Display for ObjectTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{} (storage {:?})", self.url, self.key, self.location)
    }
}

/// One stored object, as [`ObjectLocation::list`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Relative to the location's prefix.
    pub key: String,
    pub size: u64,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

impl ObjectLocation {
    /// Builds the client, reading credentials now (from the secret files or
    /// variables, or the platform's chain when none are configured), so a
    /// rotated credential is picked up by the next open. Needs no runtime.
    /// Errors name the location and never contain a secret.
    pub fn open(loc: &StorageLocation) -> Result<ObjectLocation, StorageError> {
        let settings = match &loc.backend {
            Backend::Object(settings) => settings,
            Backend::Local { path } => {
                return Err(StorageError::ObjectSetup {
                    location: loc.name.clone(),
                    url: path.display().to_string(),
                    detail: "it is a local directory, not an object store".into(),
                    hint: "this is a bug in mongo-backupd: local locations are written \
                           directly"
                        .into(),
                })
            }
        };
        let url = location_url(&settings.service, &settings.prefix);
        let setup = |detail: String, hint: &str| StorageError::ObjectSetup {
            location: loc.name.clone(),
            url: url.clone(),
            detail,
            hint: hint.to_string(),
        };
        if !(settings.prefix.is_empty()
            || settings.prefix.ends_with('/') && ObjPath::parse(&settings.prefix).is_ok())
        {
            return Err(setup(
                format!("the prefix {:?} is not a valid key prefix", settings.prefix),
                "use \"\" or a /-separated path ending in \"/\", e.g. \"mongo-backupd/\"",
            ));
        }
        let client = client_options(settings).map_err(|(detail, hint)| setup(detail, hint))?;
        let built = match &settings.service {
            ObjectService::S3 {
                bucket,
                region,
                endpoint,
                allow_http,
                virtual_hosted_style,
                access_key_id,
                secret_access_key,
            } => build_s3(S3Params {
                bucket,
                region: region.as_deref(),
                endpoint: endpoint.as_deref(),
                allow_http: *allow_http,
                virtual_hosted_style: *virtual_hosted_style,
                access_key_id: access_key_id.as_ref(),
                secret_access_key: secret_access_key.as_ref(),
                client,
                retry: retry_config(settings),
            }),
            ObjectService::Azure {
                account,
                container,
                endpoint,
                allow_http,
                access_key,
            } => build_azure(AzureParams {
                account,
                container,
                endpoint: endpoint.as_deref(),
                allow_http: *allow_http,
                access_key: access_key.as_ref(),
                client,
                retry: retry_config(settings),
            }),
            ObjectService::Gcs {
                bucket,
                service_account_file,
            } => build_gcs(
                bucket,
                service_account_file.as_deref(),
                client,
                retry_config(settings),
            ),
        };
        let built = built.map_err(|(detail, hint)| setup(detail, &hint))?;
        let part_size = match settings.service {
            ObjectService::Azure { .. } => settings.part_size.max(1),
            ObjectService::S3 { .. } | ObjectService::Gcs { .. } => {
                settings.part_size.max(MIN_PART_SIZE)
            }
        };
        if part_size != settings.part_size {
            tracing::debug!(
                location = %loc.name,
                configured = settings.part_size,
                used = part_size,
                "part_size raised to the service's minimum"
            );
        }
        Ok(ObjectLocation {
            inner: Arc::new(Inner {
                name: loc.name.clone(),
                url,
                prefix: settings.prefix.clone(),
                part_size,
                endpoint: built.endpoint,
                container_word: match settings.service {
                    ObjectService::Azure { .. } => "container",
                    ObjectService::S3 { .. } | ObjectService::Gcs { .. } => "bucket",
                },
                credentials_hint: built.credentials_hint,
                store: built.store,
                secrets: built.secrets,
                read_range: READ_RANGE,
            }),
        })
    }

    /// The `[storage.NAME]` this location is.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// `s3://bucket/prefix/`, `azure://account/container/prefix/` or
    /// `gs://bucket/prefix/`: how messages name the location.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The multipart part size uploads use: the configured one, raised to
    /// 5 MiB for S3 and GCS, which refuse smaller parts.
    pub fn part_size(&self) -> u64 {
        self.inner.part_size
    }

    /// For tests: makes [`open_read`](Self::open_read) fetch objects in
    /// ranges of `bytes` (64 MiB otherwise), so that reads spanning several
    /// ranges can be tested with small objects.
    #[doc(hidden)]
    pub fn with_read_range(mut self, bytes: u64) -> ObjectLocation {
        Arc::make_mut(&mut self.inner).read_range = bytes.max(1);
        self
    }

    /// Streams the local file `local` to `key` without loading it whole: one
    /// PUT when it fits in a part, otherwise a multipart upload with a few
    /// parts in flight. The bytes are hashed as they are read; if their size
    /// or sha256 differ from `expect` the upload is aborted and nothing is
    /// stored. Any failure aborts a multipart upload, so no half object
    /// remains (Azure drops the uncommitted blocks itself).
    pub async fn put_file(
        &self,
        key: &str,
        local: &FsPath,
        expect: &FileEntry,
    ) -> Result<(), StorageError> {
        let path = self.object_path(key)?;
        let mut file = tokio::fs::File::open(local)
            .await
            .map_err(|e| StorageError::io(local, "open", e))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| StorageError::io(local, "inspect", e))?
            .len();
        if len != expect.size {
            return Err(self.local_changed(
                key,
                local,
                format!(
                    "it has {len} bytes but the manifest recorded {}",
                    expect.size
                ),
            ));
        }
        let part_size = self.part_size_for(len);
        if len <= part_size {
            self.put_small_file(key, &path, local, file, expect).await
        } else {
            let upload = self
                .inner
                .store
                .put_multipart_opts(&path, PutMultipartOptions::default())
                .await
                .map_err(|e| self.map_error("upload", key, e))?;
            let writer = WriteMultipart::new_with_chunk_size(
                upload,
                usize::try_from(part_size).unwrap_or(usize::MAX),
            );
            // Until it is finished or aborted here, the upload is aborted
            // when this future is dropped (the copy was cancelled).
            let mut guard = AbortOnDrop(None);
            let fed = self
                .feed(key, local, &mut file, guard.0.insert(writer), expect)
                .await;
            match (fed, guard.0.take()) {
                // finish() aborts the upload itself when a part or the
                // completion fails.
                (Ok(()), Some(writer)) => writer
                    .finish()
                    .await
                    .map(|_| ())
                    .map_err(|e| self.map_error("upload", key, e)),
                (Ok(()), None) => Err(StorageError::ObjectRequest {
                    target: self.target(key),
                    op: "upload",
                    detail: "the multipart upload was lost before it completed".into(),
                    hint: "this is a bug in mongo-backupd; run the copy again".into(),
                }),
                (Err(err), None) => Err(err),
                (Err(err), Some(writer)) => {
                    if let Err(abort) = writer.abort().await {
                        tracing::warn!(
                            location = %self.inner.name,
                            key,
                            error = %self.describe(&abort),
                            "could not abort a multipart upload; the service keeps its \
                             parts until a lifecycle rule removes them"
                        );
                    }
                    Err(err)
                }
            }
        }
    }

    /// A file that fits in one part: read (bounded by the part size),
    /// checked, then sent in one PUT, so a damaged file never reaches the
    /// service at all.
    async fn put_small_file(
        &self,
        key: &str,
        path: &ObjPath,
        local: &FsPath,
        file: tokio::fs::File,
        expect: &FileEntry,
    ) -> Result<(), StorageError> {
        let mut data = Vec::with_capacity(usize::try_from(expect.size).unwrap_or(0));
        file.take(expect.size.saturating_add(1))
            .read_to_end(&mut data)
            .await
            .map_err(|e| StorageError::io(local, "read", e))?;
        let digest = hex::encode(Sha256::digest(&data));
        self.check_local(key, local, data.len() as u64, &digest, expect)?;
        self.inner
            .store
            .put_opts(path, PutPayload::from(data), PutOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| self.map_error("upload", key, e))
    }

    /// Reads the whole file into the multipart writer, waiting for a free
    /// slot before each read so memory stays at a few parts.
    async fn feed(
        &self,
        key: &str,
        local: &FsPath,
        file: &mut tokio::fs::File,
        writer: &mut WriteMultipart,
        expect: &FileEntry,
    ) -> Result<(), StorageError> {
        let mut hasher = Sha256::new();
        let mut total: u64 = 0;
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(|e| self.map_error("upload", key, e))?;
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| StorageError::io(local, "read", e))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > expect.size {
                // Stop at once rather than upload a file that keeps growing.
                return Err(self.local_changed(
                    key,
                    local,
                    format!(
                        "it grew beyond the {} bytes the manifest recorded",
                        expect.size
                    ),
                ));
            }
            hasher.update(&buf[..n]);
            writer.write(&buf[..n]);
        }
        let digest = hex::encode(hasher.finalize());
        self.check_local(key, local, total, &digest, expect)
    }

    fn check_local(
        &self,
        key: &str,
        local: &FsPath,
        size: u64,
        sha256: &str,
        expect: &FileEntry,
    ) -> Result<(), StorageError> {
        if size != expect.size {
            return Err(self.local_changed(
                key,
                local,
                format!(
                    "{size} bytes were read but the manifest recorded {}",
                    expect.size
                ),
            ));
        }
        if !sha256.eq_ignore_ascii_case(&expect.sha256) {
            return Err(self.local_changed(
                key,
                local,
                format!(
                    "its sha256 is {sha256} but the manifest recorded {}",
                    expect.sha256
                ),
            ));
        }
        Ok(())
    }

    fn local_changed(&self, key: &str, local: &FsPath, detail: String) -> StorageError {
        StorageError::ObjectLocalChanged {
            target: self.target(key),
            path: local.to_path_buf(),
            detail,
        }
    }

    /// Stores `bytes` at `key` in one PUT (manifests and other small files).
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        let path = self.object_path(key)?;
        self.inner
            .store
            .put_opts(&path, PutPayload::from(bytes), PutOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| self.map_error("upload", key, e))
    }

    /// The whole object in memory, for small objects; `None` when it does
    /// not exist (a missing bucket is an error, not `None`).
    pub async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.object_path(key)?;
        let result = match self
            .inner
            .store
            .get_opts(&path, GetOptions::default())
            .await
        {
            Ok(result) => result,
            Err(err) => {
                return match self.map_error("download", key, err) {
                    StorageError::ObjectNotFound { .. } => Ok(None),
                    other => Err(other),
                }
            }
        };
        let bytes = result
            .bytes()
            .await
            .map_err(|e| self.map_error("download", key, e))?;
        Ok(Some(bytes.to_vec()))
    }

    /// A blocking, streaming reader of the object for code on a blocking
    /// thread (`spawn_blocking`, or any thread that is not a runtime
    /// worker): a task of the current runtime downloads it in ranges into a
    /// small buffer, so memory stays bounded whatever the object's size.
    ///
    /// A missing object shows up as an `io::ErrorKind::NotFound` error on
    /// the first read; every read error names the object's URL. Reading on
    /// a runtime worker thread panics (as tokio's `blocking_recv` does).
    pub fn open_read(&self, key: &str) -> Result<ObjectReader, StorageError> {
        let path = self.object_path(key)?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| StorageError::NoRuntime)?;
        let (tx, rx) = tokio::sync::mpsc::channel(READER_CHUNKS);
        let location = self.clone();
        let key_owned = key.to_string();
        handle.spawn(async move { location.download(path, key_owned, tx).await });
        Ok(ObjectReader {
            rx,
            current: Bytes::new(),
            state: ReaderState::Reading,
            what: format!("{}{key}", self.inner.url),
        })
    }

    /// The task behind [`ObjectReader`]: HEAD for the size, then ranged
    /// GETs, each streamed chunk by chunk into `tx`.
    async fn download(&self, path: ObjPath, key: String, tx: tokio::sync::mpsc::Sender<Chunk>) {
        let to_io = |err: StorageError| {
            let kind = match err {
                StorageError::ObjectNotFound { .. } => io::ErrorKind::NotFound,
                StorageError::ObjectCredentials { .. } => io::ErrorKind::PermissionDenied,
                StorageError::ObjectUnreachable { .. } => io::ErrorKind::TimedOut,
                _ => io::ErrorKind::Other,
            };
            io::Error::new(kind, err)
        };
        let head = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let meta = match self.inner.store.get_opts(&path, head).await {
            Ok(result) => result.meta,
            Err(err) => {
                let _ = tx
                    .send(Chunk::Failed(to_io(self.map_error("read", &key, err))))
                    .await;
                return;
            }
        };
        let mut offset = 0u64;
        while offset < meta.size {
            let end = meta.size.min(offset.saturating_add(self.inner.read_range));
            let options = GetOptions {
                range: Some(GetRange::Bounded(offset..end)),
                // The object must not change between ranges.
                if_match: meta.e_tag.clone(),
                ..GetOptions::default()
            };
            let mut stream = match self.inner.store.get_opts(&path, options).await {
                Ok(result) => result.into_stream(),
                Err(err) => {
                    let _ = tx
                        .send(Chunk::Failed(to_io(self.map_error("read", &key, err))))
                        .await;
                    return;
                }
            };
            let mut got = offset;
            while let Some(item) = stream.next().await {
                match item {
                    Ok(bytes) => {
                        got += bytes.len() as u64;
                        if tx.send(Chunk::Data(bytes)).await.is_err() {
                            // The reader was dropped: nobody wants the rest.
                            return;
                        }
                    }
                    Err(err) => {
                        let _ = tx
                            .send(Chunk::Failed(to_io(self.map_error("read", &key, err))))
                            .await;
                        return;
                    }
                }
            }
            if got != end {
                let err = StorageError::ObjectRequest {
                    target: self.target(&key),
                    op: "read",
                    detail: format!(
                        "the service sent {} bytes of range {offset}..{end}",
                        got - offset
                    ),
                    hint: "the connection was cut short; run it again".into(),
                };
                let _ = tx
                    .send(Chunk::Failed(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        err,
                    )))
                    .await;
                return;
            }
            offset = end;
        }
        let _ = tx.send(Chunk::End).await;
    }

    /// Every object whose key starts with `under` ("" for the whole
    /// location, "job/" for one job), with keys relative to the location.
    pub async fn list(&self, under: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        if under.starts_with('/') || under.chars().any(|c| c.is_ascii_control()) {
            return Err(invalid_key(under));
        }
        // Services list by "directory"; a partial last segment ("job/2026")
        // is matched by filtering below.
        let dir = match under.rfind('/') {
            Some(i) => &under[..i],
            None => "",
        };
        let full = format!("{}{dir}", self.inner.prefix);
        let prefix = if full.is_empty() {
            None
        } else {
            Some(ObjPath::parse(&full).map_err(|_| invalid_key(under))?)
        };
        let mut stream = self.inner.store.list(prefix.as_ref());
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            let meta = item.map_err(|e| match self.map_error("list", under, e) {
                // Listing a missing "directory" is just empty, but a
                // missing bucket must not look like an empty one.
                StorageError::ObjectNotFound { .. } => self.bucket_missing("list", under),
                other => other,
            })?;
            let location = meta.location.as_ref();
            let Some(key) = location.strip_prefix(self.inner.prefix.as_str()) else {
                continue;
            };
            if key.starts_with(under) {
                out.push(ObjectInfo {
                    key: key.to_string(),
                    size: meta.size,
                    last_modified: meta.last_modified,
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Removes `key`; an object that is already gone is success.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.delete_many(vec![key.to_string()]).await
    }

    /// Removes every key (in batches where the service supports it); keys
    /// that are already gone are success.
    pub async fn delete_many(&self, keys: Vec<String>) -> Result<(), StorageError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut paths = Vec::with_capacity(keys.len());
        for key in &keys {
            paths.push(Ok(self.object_path(key)?));
        }
        let mut results = self
            .inner
            .store
            .delete_stream(futures_util::stream::iter(paths).boxed());
        let mut first_key = keys.first().cloned().unwrap_or_default();
        while let Some(result) = results.next().await {
            match result {
                Ok(path) => {
                    first_key = self.relative_key(&path);
                }
                Err(err) => {
                    let key = match &err {
                        object_store::Error::NotFound { path, .. } => self.relative_key_str(path),
                        _ => first_key.clone(),
                    };
                    match self.map_error("delete", &key, err) {
                        StorageError::ObjectNotFound { .. } => {}
                        other => return Err(other),
                    }
                }
            }
        }
        Ok(())
    }

    fn relative_key(&self, path: &ObjPath) -> String {
        self.relative_key_str(path.as_ref())
    }

    fn relative_key_str(&self, path: &str) -> String {
        path.strip_prefix(self.inner.prefix.as_str())
            .unwrap_or(path)
            .to_string()
    }

    /// The part size for a file of `len` bytes: the location's, or larger
    /// when the file would otherwise need more parts than services allow.
    fn part_size_for(&self, len: u64) -> u64 {
        self.inner.part_size.max(len.div_ceil(MAX_PARTS))
    }

    /// `key` under the location's prefix, refusing anything that is not a
    /// plain relative path (it would name another object or none).
    fn object_path(&self, key: &str) -> Result<ObjPath, StorageError> {
        if key.is_empty() || key.starts_with('/') || key.ends_with('/') {
            return Err(invalid_key(key));
        }
        let full = format!("{}{key}", self.inner.prefix);
        let path = ObjPath::parse(&full).map_err(|_| invalid_key(key))?;
        if path.as_ref() != full {
            return Err(invalid_key(key));
        }
        Ok(path)
    }

    fn target(&self, key: &str) -> Box<ObjectTarget> {
        Box::new(ObjectTarget {
            location: self.inner.name.clone(),
            url: self.inner.url.clone(),
            key: key.to_string(),
        })
    }

    fn bucket_missing(&self, op: &'static str, key: &str) -> StorageError {
        StorageError::ObjectBucketMissing {
            target: self.target(key),
            op,
            container: self.inner.container_word,
            detail: "the service answered 404 Not Found".into(),
        }
    }

    /// Turns an object_store error into the variant whose advice fits.
    fn map_error(&self, op: &'static str, key: &str, err: object_store::Error) -> StorageError {
        let detail = self.describe(&err);
        let inner = &self.inner;
        let target = self.target(key);
        if let Some(kind) = transport_failure(&err) {
            use object_store::client::HttpErrorKind as K;
            if matches!(kind, K::Connect | K::Timeout | K::Interrupted | K::Request) {
                return StorageError::ObjectUnreachable {
                    target,
                    op,
                    endpoint: inner.endpoint.clone(),
                    detail,
                };
            }
        }
        if is_bucket_missing(&detail) {
            return StorageError::ObjectBucketMissing {
                target,
                op,
                container: inner.container_word,
                detail,
            };
        }
        // object_store types some answers (403 on GET) but leaves others
        // (403 on a listing) generic with the status in the message.
        let status = http_status(&detail);
        match err {
            object_store::Error::NotFound { .. } => StorageError::ObjectNotFound { target },
            _ if status == Some(404) => StorageError::ObjectNotFound { target },
            object_store::Error::Unauthenticated { .. }
            | object_store::Error::PermissionDenied { .. } => StorageError::ObjectCredentials {
                target,
                op,
                detail,
                hint: inner.credentials_hint.clone(),
            },
            _ if matches!(status, Some(401 | 403)) => StorageError::ObjectCredentials {
                target,
                op,
                detail,
                hint: inner.credentials_hint.clone(),
            },
            object_store::Error::Precondition { .. } => StorageError::ObjectRequest {
                target,
                op,
                detail,
                hint: "the object was replaced while it was being read; run it again".into(),
            },
            _ => StorageError::ObjectRequest {
                target,
                op,
                detail,
                hint: "if it persists, check the service's status and the location's \
                       settings"
                    .into(),
            },
        }
    }

    /// The error's message chain, the service's XML answer boiled down to
    /// its code and message, shortened and without any credential.
    fn describe(&self, err: &object_store::Error) -> String {
        let mut text = summarize(&error_chain(err));
        for secret in &self.inner.secrets {
            if secret.len() >= 4 {
                text = text.replace(secret.as_str(), "<redacted>");
            }
        }
        truncate(text, MAX_DETAIL)
    }
}

/// Aborts a multipart upload that is dropped unfinished (the copy was
/// cancelled), so the service does not keep its parts.
struct AbortOnDrop(Option<WriteMultipart>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(writer) = self.0.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = writer.abort().await;
                });
            }
        }
    }
}

enum Chunk {
    Data(Bytes),
    End,
    Failed(io::Error),
}

enum ReaderState {
    Reading,
    Done,
    /// The error's kind and message, returned again on every later read.
    Failed(io::ErrorKind, String),
}

/// What [`ObjectLocation::open_read`] returns: `std::io::Read` over the
/// object's bytes, fed by a download task of the runtime.
pub struct ObjectReader {
    rx: tokio::sync::mpsc::Receiver<Chunk>,
    current: Bytes,
    state: ReaderState,
    /// The object's URL, for errors that have no better message.
    what: String,
}

impl fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectReader")
            .field("object", &self.what)
            .finish_non_exhaustive()
    }
}

impl io::Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.current.is_empty() {
                let n = buf.len().min(self.current.len());
                buf[..n].copy_from_slice(&self.current.split_to(n));
                return Ok(n);
            }
            match &self.state {
                ReaderState::Done => return Ok(0),
                ReaderState::Failed(kind, message) => {
                    return Err(io::Error::new(*kind, message.clone()))
                }
                ReaderState::Reading => {}
            }
            match self.rx.blocking_recv() {
                Some(Chunk::Data(bytes)) => self.current = bytes,
                Some(Chunk::End) => self.state = ReaderState::Done,
                Some(Chunk::Failed(err)) => {
                    self.state = ReaderState::Failed(err.kind(), err.to_string());
                    return Err(err);
                }
                None => {
                    // The task ended without saying it finished: the
                    // runtime is shutting down. Never let that look like
                    // the end of the object.
                    let message = format!(
                        "reading {} stopped before its end: the download was cancelled \
                         (the daemon is shutting down?)",
                        self.what
                    );
                    self.state = ReaderState::Failed(io::ErrorKind::Interrupted, message.clone());
                    return Err(io::Error::new(io::ErrorKind::Interrupted, message));
                }
            }
        }
    }
}

/// `s3://bucket/prefix`, `azure://account/container/prefix`,
/// `gs://bucket/prefix` (the prefix is "" or ends in "/").
fn location_url(service: &ObjectService, prefix: &str) -> String {
    match service {
        ObjectService::S3 { bucket, .. } => format!("s3://{bucket}/{prefix}"),
        ObjectService::Azure {
            account, container, ..
        } => format!("azure://{account}/{container}/{prefix}"),
        ObjectService::Gcs { bucket, .. } => format!("gs://{bucket}/{prefix}"),
    }
}

fn invalid_key(key: &str) -> StorageError {
    StorageError::InvalidName {
        name: key.to_string(),
        reason: "object keys must be relative /-separated paths without empty, `.` or `..` \
                 segments or control characters",
    }
}

/// What every service's client shares: timeouts, the extra CA, plain HTTP.
fn client_options(settings: &ObjectSettings) -> Result<ClientOptions, (String, &'static str)> {
    let allow_http = match &settings.service {
        ObjectService::S3 { allow_http, .. } | ObjectService::Azure { allow_http, .. } => {
            *allow_http
        }
        ObjectService::Gcs { .. } => false,
    };
    let mut options = ClientOptions::new()
        .with_allow_http(allow_http)
        .with_timeout(settings.timeout)
        .with_connect_timeout(settings.timeout.min(CONNECT_TIMEOUT));
    if let Some(ca_file) = &settings.ca_file {
        let pem = std::fs::read(ca_file).map_err(|e| {
            (
                format!("cannot read ca_file {}: {e}", ca_file.display()),
                "create the file or fix ca_file, and make it readable by the daemon's user",
            )
        })?;
        let certificates = object_store::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| {
                (
                    format!(
                        "ca_file {} holds no PEM certificate (BEGIN CERTIFICATE)",
                        ca_file.display()
                    ),
                    "point ca_file at the PEM CA certificate of the service",
                )
            })?;
        for certificate in certificates {
            options = options.with_root_certificate(certificate);
        }
    }
    Ok(options)
}

/// A few retries with exponential backoff, all within the request timeout
/// (and well within a signature's lifetime).
fn retry_config(settings: &ObjectSettings) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            base: 2.0,
        },
        max_retries: MAX_RETRIES,
        retry_timeout: settings.timeout.min(MAX_RETRY_WINDOW),
    }
}

/// A built client and what messages about it need.
struct Built {
    store: Arc<dyn ObjectStore>,
    endpoint: String,
    credentials_hint: String,
    secrets: Vec<String>,
}

type BuildError = (String, String);

struct S3Params<'a> {
    bucket: &'a str,
    region: Option<&'a str>,
    endpoint: Option<&'a str>,
    allow_http: bool,
    virtual_hosted_style: bool,
    access_key_id: Option<&'a SecretSource>,
    secret_access_key: Option<&'a SecretSource>,
    client: ClientOptions,
    retry: RetryConfig,
}

fn build_s3(p: S3Params<'_>) -> Result<Built, BuildError> {
    use object_store::aws::AmazonS3Builder;

    let region = p.region.unwrap_or("us-east-1");
    check_http(p.endpoint, p.allow_http)?;
    let (mut builder, credentials_hint, secrets) = match (p.access_key_id, p.secret_access_key) {
        (Some(id_source), Some(secret_source)) => {
            let id = read_secret(id_source, "access_key_id")?;
            let secret = read_secret(secret_source, "secret_access_key")?;
            let hint = format!(
                "check the credentials in {} and {} and that they may read, write, list \
                 and delete in the bucket",
                describe_secret(id_source, "access_key_id"),
                describe_secret(secret_source, "secret_access_key"),
            );
            let builder = AmazonS3Builder::new()
                .with_access_key_id(id)
                .with_secret_access_key(secret.clone());
            (builder, hint, vec![secret])
        }
        (None, None) => (
            // The platform's chain: AWS_* variables, web identity, ECS or
            // EC2 instance credentials.
            AmazonS3Builder::from_env(),
            "no credentials are configured, so the platform's were used \
             (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, web identity, instance role): \
             check those, or set access_key_id_file and secret_access_key_file"
                .to_string(),
            Vec::new(),
        ),
        _ => {
            return Err((
                "only one of access_key_id and secret_access_key is set".into(),
                "set both (access_key_id_file and secret_access_key_file), or neither to use \
                 the platform's credentials"
                    .into(),
            ))
        }
    };
    builder = builder
        .with_bucket_name(p.bucket)
        .with_region(region)
        .with_virtual_hosted_style_request(p.virtual_hosted_style)
        .with_client_options(p.client)
        .with_retry(p.retry);
    let endpoint = match p.endpoint {
        Some(endpoint) => {
            builder = builder.with_endpoint(endpoint);
            endpoint.to_string()
        }
        None => format!("https://s3.{region}.amazonaws.com"),
    };
    let store = builder.build().map_err(|e| {
        (
            redact(&format!("cannot set up the S3 client: {e}"), &secrets),
            "check the location's bucket, region and endpoint settings".to_string(),
        )
    })?;
    Ok(Built {
        store: Arc::new(store),
        endpoint,
        credentials_hint,
        secrets,
    })
}

struct AzureParams<'a> {
    account: &'a str,
    container: &'a str,
    endpoint: Option<&'a str>,
    allow_http: bool,
    access_key: Option<&'a SecretSource>,
    client: ClientOptions,
    retry: RetryConfig,
}

fn build_azure(p: AzureParams<'_>) -> Result<Built, BuildError> {
    use object_store::azure::MicrosoftAzureBuilder;

    check_http(p.endpoint, p.allow_http)?;
    let (mut builder, credentials_hint, secrets) = match p.access_key {
        Some(source) => {
            let key = read_secret(source, "access_key")?;
            let hint = format!(
                "check the account key in {} (it must be the key of account {:?}, in \
                 base64) and that it may use the container",
                describe_secret(source, "access_key"),
                p.account
            );
            (
                MicrosoftAzureBuilder::new().with_access_key(key.clone()),
                hint,
                vec![key],
            )
        }
        None => (
            // The platform's chain: AZURE_STORAGE_* variables, workload or
            // managed identity.
            MicrosoftAzureBuilder::from_env(),
            "no access key is configured, so the platform's credentials were used \
             (AZURE_STORAGE_* variables, managed identity): check those and the identity's \
             role on the container, or set access_key_file"
                .to_string(),
            Vec::new(),
        ),
    };
    builder = builder
        .with_account(p.account)
        .with_container_name(p.container)
        .with_client_options(p.client)
        .with_retry(p.retry);
    // A custom endpoint (Azurite: http://127.0.0.1:10000/devstoreaccount1,
    // sovereign clouds) carries the account in its path when it needs to,
    // so it is used as is rather than through object_store's emulator mode,
    // which ignores the port given here.
    let endpoint = match p.endpoint {
        Some(endpoint) => {
            builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_string());
            endpoint.to_string()
        }
        None => format!("https://{}.blob.core.windows.net", p.account),
    };
    let store = builder.build().map_err(|e| {
        (
            redact(&format!("cannot set up the Azure client: {e}"), &secrets),
            "check the location's account, container, endpoint and access key settings \
             (the key is the base64 text the portal shows)"
                .to_string(),
        )
    })?;
    Ok(Built {
        store: Arc::new(store),
        endpoint,
        credentials_hint,
        secrets,
    })
}

fn build_gcs(
    bucket: &str,
    service_account_file: Option<&FsPath>,
    client: ClientOptions,
    retry: RetryConfig,
) -> Result<Built, BuildError> {
    use object_store::gcp::GoogleCloudStorageBuilder;

    let (builder, credentials_hint) = match service_account_file {
        Some(file) => {
            // Read here, not by object_store, so a missing file gets a
            // message that names the setting.
            let key = std::fs::read_to_string(file).map_err(|e| {
                (
                    format!("cannot read service_account_file {}: {e}", file.display()),
                    "create the file (a service account JSON key) or fix \
                     service_account_file, and make it readable by the daemon's user"
                        .to_string(),
                )
            })?;
            (
                GoogleCloudStorageBuilder::new().with_service_account_key(key),
                format!(
                    "check the service account key in service_account_file {} and its \
                     roles on the bucket",
                    file.display()
                ),
            )
        }
        None => (
            GoogleCloudStorageBuilder::from_env(),
            "no service_account_file is configured, so the platform's credentials were used \
             (GOOGLE_APPLICATION_CREDENTIALS, the instance's service account): check those \
             and their roles on the bucket, or set service_account_file"
                .to_string(),
        ),
    };
    let store = builder
        .with_bucket_name(bucket)
        .with_client_options(client)
        .with_retry(retry)
        .build()
        .map_err(|e| {
            (
                // Key parsing errors describe the JSON's shape, never its
                // content.
                format!("cannot set up the Google Cloud Storage client: {e}"),
                match service_account_file {
                    Some(file) => format!(
                        "check that service_account_file {} is a service account JSON key",
                        file.display()
                    ),
                    None => "check GOOGLE_APPLICATION_CREDENTIALS, or set \
                             service_account_file"
                        .to_string(),
                },
            )
        })?;
    Ok(Built {
        store: Arc::new(store),
        endpoint: "https://storage.googleapis.com".into(),
        credentials_hint,
        secrets: Vec::new(),
    })
}

/// object_store would only refuse a plain-HTTP endpoint at the first
/// request, with a less helpful message.
fn check_http(endpoint: Option<&str>, allow_http: bool) -> Result<(), BuildError> {
    match endpoint {
        Some(endpoint) if endpoint.starts_with("http://") && !allow_http => Err((
            format!("the endpoint {endpoint} is plain HTTP, which is refused by default"),
            "use https://, or set allow_http = true if the network is trusted".into(),
        )),
        _ => Ok(()),
    }
}

fn read_secret(source: &SecretSource, setting: &str) -> Result<String, BuildError> {
    source.read().map_err(|e| {
        (
            format!("cannot read {setting}: {e}"),
            format!(
                "fix {} (the file must be readable by the daemon's user and hold only the \
                 value)",
                describe_secret(source, setting)
            ),
        )
    })
}

/// The setting a secret comes from, as the configuration names it.
fn describe_secret(source: &SecretSource, setting: &str) -> String {
    match source {
        SecretSource::File(path) => format!("{setting}_file {}", path.display()),
        SecretSource::Env(var) => format!("{setting}_env {var}"),
    }
}

fn redact(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_string();
    for secret in secrets {
        if secret.len() >= 4 {
            text = text.replace(secret.as_str(), "<redacted>");
        }
    }
    text
}

/// The HTTP-level failure behind an error, if it is one: connection
/// refused, timeouts and the like are found as `HttpError` in the chain.
fn transport_failure(err: &object_store::Error) -> Option<object_store::client::HttpErrorKind> {
    let mut current: &(dyn std::error::Error + 'static) = err;
    loop {
        if let Some(http) = current.downcast_ref::<object_store::client::HttpError>() {
            return Some(http.kind());
        }
        current = current.source()?;
    }
}

/// Whether a 404 is about the bucket or container rather than the object.
fn is_bucket_missing(detail: &str) -> bool {
    detail.contains("NoSuchBucket") || detail.contains("ContainerNotFound")
}

/// The HTTP status object_store put in its message ("... non-2xx status
/// code: 403 Forbidden ..."); the error type that carries it is private.
fn http_status(detail: &str) -> Option<u16> {
    let rest = &detail[detail.find("status code: ")? + "status code: ".len()..];
    rest.get(..3)?.parse().ok()
}

/// The messages of an error and its sources, each once (object_store's
/// messages often repeat their source's).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(source) = current {
        let message = source.to_string();
        if !message.is_empty() && !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        current = source.source();
    }
    text
}

/// Replaces a service's XML error document in `text` with its code and
/// message: the rest (request ids, the string to sign) is noise in an
/// alert.
fn summarize(text: &str) -> String {
    let text = strip_wrappers(text.trim()).replace("  ", " ");
    let text = text.as_str();
    let Some(start) = text.find("<?xml").or_else(|| text.find("<Error>")) else {
        return text.to_string();
    };
    let (before, xml) = text.split_at(start);
    let tag = |name: &str| -> Option<String> {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let from = xml.find(&open)? + open.len();
        let len = xml[from..].find(&close)?;
        // Azure appends RequestId and Time on further lines.
        Some(xml[from..from + len].lines().next()?.trim().to_string())
    };
    let before = before.trim_end().trim_end_matches(':').trim_end();
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!("{before}: {code}: {message}"),
        (Some(code), None) => format!("{before}: {code}"),
        _ => before.to_string(),
    }
}

/// Drops object_store's leading "Generic S3 error: ", "The operation
/// lacked ... for path KEY: " and the like: the message around it already
/// says which service and key.
fn strip_wrappers(mut text: &str) -> &str {
    const LEADS: [&str; 3] = [
        "The operation lacked the necessary privileges to complete for path ",
        "The operation lacked valid authentication credentials for path ",
        "Object at location ",
    ];
    'outer: loop {
        if let Some(rest) = text.strip_prefix("Generic ") {
            if let Some(i) = rest.find(" error: ") {
                if !rest[..i].contains(' ') {
                    text = &rest[i + " error: ".len()..];
                    continue;
                }
            }
        }
        for lead in LEADS {
            if let Some(rest) = text.strip_prefix(lead) {
                if let Some(i) = rest.find(": ") {
                    text = &rest[i + 2..];
                    continue 'outer;
                }
            }
        }
        return text;
    }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

    use super::*;
    use std::path::PathBuf;

    fn s3(bucket: &str) -> ObjectService {
        ObjectService::S3 {
            bucket: bucket.into(),
            region: None,
            endpoint: Some("http://127.0.0.1:9".into()),
            allow_http: true,
            virtual_hosted_style: false,
            access_key_id: None,
            secret_access_key: None,
        }
    }

    fn location(service: ObjectService, prefix: &str) -> StorageLocation {
        let mut settings = ObjectSettings::new(service);
        settings.prefix = prefix.into();
        StorageLocation::new("offsite", Backend::Object(settings))
    }

    #[test]
    fn urls_name_service_bucket_and_prefix() {
        assert_eq!(location_url(&s3("backups"), ""), "s3://backups/");
        assert_eq!(
            location_url(&s3("backups"), "mongo-backupd/"),
            "s3://backups/mongo-backupd/"
        );
        let azure = ObjectService::Azure {
            account: "acct".into(),
            container: "dumps".into(),
            endpoint: None,
            allow_http: false,
            access_key: None,
        };
        assert_eq!(location_url(&azure, "p/q/"), "azure://acct/dumps/p/q/");
        let gcs = ObjectService::Gcs {
            bucket: "b".into(),
            service_account_file: None,
        };
        assert_eq!(location_url(&gcs, ""), "gs://b/");
    }

    #[test]
    fn open_needs_no_runtime_and_keys_get_the_prefix() {
        let mut small = location(s3("backups"), "pre/");
        if let Backend::Object(settings) = &mut small.backend {
            settings.part_size = 1024 * 1024;
        }
        let loc = ObjectLocation::open(&small).unwrap();
        assert_eq!(loc.name(), "offsite");
        assert_eq!(loc.url(), "s3://backups/pre/");
        assert_eq!(
            loc.object_path("job/id/db/c.bson.zst").unwrap().as_ref(),
            "pre/job/id/db/c.bson.zst"
        );
        assert_eq!(
            loc.object_path("job/a%2Fb+c.bson").unwrap().as_ref(),
            "pre/job/a%2Fb+c.bson"
        );
        for bad in ["", "/abs", "dir/", "a//b", "a/../b", "./a", "a\nb"] {
            assert!(
                matches!(loc.object_path(bad), Err(StorageError::InvalidName { .. })),
                "{bad:?}"
            );
        }
        // Parts below S3's minimum would only fail at completion.
        assert_eq!(loc.part_size(), MIN_PART_SIZE);
        assert_eq!(loc.part_size_for(10), MIN_PART_SIZE);
        assert_eq!(
            loc.part_size_for(100_000 * MIN_PART_SIZE),
            10 * MIN_PART_SIZE
        );
    }

    #[test]
    fn debug_and_errors_never_show_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let id = dir.path().join("id");
        let secret = dir.path().join("secret");
        std::fs::write(&id, "AKIDEXAMPLE\n").unwrap();
        std::fs::write(&secret, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n").unwrap();
        let mut service = s3("backups");
        if let ObjectService::S3 {
            access_key_id,
            secret_access_key,
            ..
        } = &mut service
        {
            *access_key_id = Some(SecretSource::File(id));
            *secret_access_key = Some(SecretSource::File(secret));
        }
        let loc = ObjectLocation::open(&location(service, "")).unwrap();
        let debug = format!("{loc:?}");
        assert!(!debug.contains("EXAMPLEKEY"), "{debug}");
        assert!(debug.contains("s3://backups/"), "{debug}");
        assert_eq!(
            redact(
                "x wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY y",
                &loc.inner.secrets
            ),
            "x <redacted> y"
        );
    }

    #[test]
    fn missing_secret_files_and_http_endpoints_are_clear_errors() {
        let mut service = s3("backups");
        if let ObjectService::S3 {
            access_key_id,
            secret_access_key,
            allow_http,
            ..
        } = &mut service
        {
            *access_key_id = Some(SecretSource::File("/nonexistent/id".into()));
            *secret_access_key = Some(SecretSource::File("/nonexistent/secret".into()));
            *allow_http = false;
        }
        let err = ObjectLocation::open(&location(service.clone(), ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"offsite\""), "{err}");
        assert!(err.contains("s3://backups/"), "{err}");
        assert!(err.contains("allow_http"), "{err}");

        if let ObjectService::S3 { allow_http, .. } = &mut service {
            *allow_http = true;
        }
        let err = ObjectLocation::open(&location(service, ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("access_key_id_file /nonexistent/id"), "{err}");
    }

    #[test]
    fn gcs_with_a_missing_key_file_names_the_setting() {
        let service = ObjectService::Gcs {
            bucket: "b".into(),
            service_account_file: Some(PathBuf::from("/nonexistent/sa.json")),
        };
        let err = ObjectLocation::open(&location(service, "x/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("gs://b/x/"), "{err}");
        assert!(
            err.contains("service_account_file /nonexistent/sa.json"),
            "{err}"
        );
        assert!(err.contains("No such file"), "{err}");
    }

    #[test]
    fn gcs_with_a_key_file_builds_without_network() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sa.json");
        std::fs::write(&file, "not json").unwrap();
        let service = ObjectService::Gcs {
            bucket: "b".into(),
            service_account_file: Some(file),
        };
        let err = ObjectLocation::open(&location(service, ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("service account JSON key"), "{err}");
    }

    #[test]
    fn service_xml_is_boiled_down_to_code_and_message() {
        let text = "Error performing PUT http://h/b/k in 2ms - Server returned non-2xx status \
                    code: 403 Forbidden: <?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch\
                    </Code><Message>The request signature we calculated does not match\
                    </Message><StringToSign>AWS4...</StringToSign></Error>";
        assert_eq!(
            summarize(text),
            "Error performing PUT http://h/b/k in 2ms - Server returned non-2xx status \
             code: 403 Forbidden: SignatureDoesNotMatch: The request signature we calculated \
             does not match"
        );
        assert_eq!(summarize(" plain "), "plain");
        assert_eq!(
            summarize(
                "Generic S3 error: The operation lacked the necessary privileges to complete \
                 for path job/a: Error performing GET http://h/b in 2ms  - refused"
            ),
            "Error performing GET http://h/b in 2ms - refused"
        );
        assert_eq!(http_status(text), Some(403));
        assert_eq!(http_status("connection refused"), None);
        assert_eq!(truncate("é".repeat(10), 5), "éé...");
    }

    #[test]
    fn futures_are_send() {
        fn send<T: Send>(_: T) {}
        let loc = ObjectLocation::open(&location(s3("b"), "")).unwrap();
        let entry = FileEntry {
            path: "x".into(),
            size: 0,
            sha256: String::new(),
        };
        send(loc.put_file("k", FsPath::new("/x"), &entry));
        send(loc.put_bytes("k", Vec::new()));
        send(loc.get_bytes("k"));
        send(loc.list(""));
        send(loc.delete("k"));
        send(loc.delete_many(Vec::new()));
    }
}
