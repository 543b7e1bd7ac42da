//! Object stores opened from a profile's storage block: local directories, S3 and its
//! compatibles (MinIO, AWS, Aliyun OSS, Tencent COS, Huawei OBS, GCS interop), native GCS and
//! Azure Blob, all through `object_store`.
//!
//! Owns: building a [`Store`] from a [`StorageConfig`] (endpoints, path style, credentials,
//! timeouts suited to long streamed bodies), the narrow set of operations the copier needs, each
//! returning a [`StorageError`] that names the store, the operation and the key, and the key
//! layout helpers in [`layout`]. Does not own retries, rate limits or concurrency: those are the
//! copier's, apart from the request gate in [`http`] that every request passes through.

mod bucket;
pub mod error;
pub mod http;
pub mod layout;
mod transport;

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    ClientOptions, GetOptions, GetRange, MultipartUpload, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload, RetryConfig, UpdateVersion,
};

use crate::config::{StorageConfig, StorageType};
pub use error::{S3Status, StorageError, StorageErrorKind};
pub use http::HttpGate;

/// Timeouts for store clients. There is deliberately no whole-request timeout: a large part or
/// object may stream for minutes; a stalled connection is caught by the read timeout instead.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Time to establish a connection.
    pub connect: Duration,
    /// Longest pause between two reads on a connection.
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(60),
        }
    }
}

/// One object as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Full key in the bucket.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes, if the store gives one.
    pub etag: Option<String>,
}

/// An object being read.
pub struct GetObject {
    /// The whole object's ETag, as the GET response gives it.
    pub etag: Option<String>,
    /// The bytes.
    pub stream: BoxStream<'static, Result<Bytes, StorageError>>,
}

/// What identifies a store for "is this the same place" questions. Holds no secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    service: String,
    bucket: String,
}

/// An opened object store: one bucket (or directory) of one service.
#[derive(Clone)]
pub struct Store {
    name: String,
    identity: Identity,
    object: Arc<dyn ObjectStore>,
    multipart: Option<Arc<dyn MultipartStore>>,
    etag_is_md5: bool,
    /// Creates the bucket when it is missing (S3 family only).
    bucket_admin: Option<Arc<bucket::BucketAdmin>>,
    /// Where its credentials come from ([`StorageConfig::credentials`]), named in the errors
    /// the store denies.
    credentials: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("name", &self.name)
            .field("resumable_multipart", &self.multipart.is_some())
            .field("etag_is_md5", &self.etag_is_md5)
            .finish()
    }
}

fn strip_quotes(etag: &str) -> String {
    etag.trim_matches('"').to_string()
}

fn path(key: &str) -> Path {
    // Keys come from listings or from the backup layout; `from` encodes any character
    // `object_store` would reject, `parse` keeps valid keys byte-identical.
    Path::parse(key).unwrap_or_else(|_| Path::from(key))
}

impl Store {
    /// Opens the store described by `cfg`. `role` names it in messages (for example
    /// `"backup store of a.yaml"`).
    ///
    /// # Errors
    /// [`StorageError::Build`] when the configuration cannot make a client (bad endpoint,
    /// missing account, unreadable credentials file). Nothing is sent to the store here.
    pub fn open(
        cfg: &StorageConfig,
        gate: &Arc<HttpGate>,
        timeouts: Timeouts,
    ) -> Result<Store, StorageError> {
        let name = describe(cfg);
        let build_err = |e: object_store::Error| StorageError::Build {
            store: name.clone(),
            reason: e.to_string(),
        };
        let options = ClientOptions::new()
            .with_timeout_disabled()
            .with_connect_timeout(timeouts.connect)
            .with_read_timeout(timeouts.read)
            .with_pool_max_idle_per_host(256)
            .with_allow_http(!cfg.use_ssl);
        let connector = |authority: String, plain_http: bool| http::GatedConnector {
            gate: Arc::clone(gate),
            authority,
            timeouts,
            plain_http,
        };
        let no_retry = RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        };
        let identity = Identity {
            service: service_identity(cfg),
            bucket: cfg.bucket.clone(),
        };
        match cfg.storage_type {
            StorageType::Local => {
                let dir = local_dir(cfg);
                std::fs::create_dir_all(&dir).map_err(|e| StorageError::Build {
                    store: name.clone(),
                    reason: format!("cannot create directory {dir}: {e}"),
                })?;
                let fs = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(build_err)?
                    .with_automatic_cleanup(true);
                Ok(Store {
                    name,
                    identity,
                    object: Arc::new(fs),
                    multipart: None,
                    etag_is_md5: false,
                    bucket_admin: None,
                    credentials: cfg.credentials.clone(),
                })
            }
            StorageType::GcpNative => {
                let mut b = GoogleCloudStorageBuilder::new()
                    .with_bucket_name(&cfg.bucket)
                    .with_client_options(options)
                    .with_retry(no_retry)
                    .with_http_connector(connector("googleapis.com".into(), false));
                let json = cfg.gcp_credential_json.expose();
                if !json.is_empty() {
                    b = if json.trim_start().starts_with('{') {
                        b.with_service_account_key(json)
                    } else {
                        b.with_service_account_path(json)
                    };
                }
                let gcs = Arc::new(b.build().map_err(build_err)?);
                Ok(Store {
                    name,
                    identity,
                    object: gcs.clone(),
                    multipart: Some(gcs),
                    etag_is_md5: false,
                    bucket_admin: None,
                    credentials: cfg.credentials.clone(),
                })
            }
            StorageType::Azure => {
                let mut b = MicrosoftAzureBuilder::new()
                    .with_account(&cfg.azure_account_name)
                    .with_container_name(&cfg.bucket)
                    .with_client_options(options)
                    .with_retry(no_retry);
                if !cfg.azure_account_key.is_empty() {
                    b = b.with_access_key(cfg.azure_account_key.expose());
                }
                let default_host = cfg.address.is_empty() || cfg.address.ends_with("windows.net");
                let authority = if default_host {
                    "core.windows.net".to_string()
                } else {
                    b = b
                        .with_endpoint(cfg.endpoint_url())
                        .with_allow_http(!cfg.use_ssl);
                    authority_of(cfg)
                };
                b = b.with_http_connector(connector(authority, !cfg.use_ssl));
                let az = Arc::new(b.build().map_err(build_err)?);
                Ok(Store {
                    name,
                    identity,
                    object: az.clone(),
                    multipart: Some(az),
                    etag_is_md5: false,
                    bucket_admin: None,
                    credentials: cfg.credentials.clone(),
                })
            }
            _ => {
                // The S3 family. Payloads go unsigned: integrity comes from comparing the MD5 we
                // compute while streaming with the ETag the server returns, which saves hashing
                // every body twice (SHA-256 for the signature on both sides).
                let aws_default = cfg.storage_type == StorageType::Aws
                    && (cfg.address.is_empty() || cfg.address.ends_with("amazonaws.com"));
                let virtual_host = cfg.virtual_host
                    || matches!(cfg.storage_type, StorageType::Ali | StorageType::Tencent);
                let region = if cfg.region.is_empty() {
                    "us-east-1"
                } else {
                    cfg.region.as_str()
                };
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(&cfg.bucket)
                    .with_region(region)
                    .with_virtual_hosted_style_request(virtual_host && !aws_default)
                    .with_unsigned_payload(true)
                    .with_retry(no_retry)
                    .with_client_options(options)
                    .with_allow_http(!cfg.use_ssl);
                let authority = if aws_default {
                    "amazonaws.com".to_string()
                } else {
                    b = b.with_endpoint(cfg.endpoint_url());
                    authority_of(cfg)
                };
                if cfg.use_iam {
                    if !cfg.iam_endpoint.is_empty() {
                        b = b.with_metadata_endpoint(&cfg.iam_endpoint);
                    }
                } else {
                    b = b
                        .with_access_key_id(&cfg.access_key_id)
                        .with_secret_access_key(cfg.secret_access_key.expose());
                    if !cfg.token.is_empty() {
                        b = b.with_token(cfg.token.expose());
                    }
                }
                b = b.with_http_connector(connector(authority, !cfg.use_ssl));
                let s3 = Arc::new(b.build().map_err(build_err)?);
                let admin = bucket::BucketAdmin::new(
                    cfg,
                    region,
                    virtual_host && !aws_default,
                    s3.credentials().clone(),
                );
                Ok(Store {
                    name,
                    identity,
                    object: s3.clone(),
                    multipart: Some(s3),
                    etag_is_md5: true,
                    bucket_admin: Some(Arc::new(admin)),
                    credentials: cfg.credentials.clone(),
                })
            }
        }
    }

    /// A store over an existing `object_store` implementation (tests, embedders).
    pub fn from_object_store(
        name: impl Into<String>,
        object: Arc<dyn ObjectStore>,
        multipart: Option<Arc<dyn MultipartStore>>,
        etag_is_md5: bool,
    ) -> Store {
        let name = name.into();
        Store {
            identity: Identity {
                service: name.clone(),
                bucket: String::new(),
            },
            name,
            object,
            multipart,
            etag_is_md5,
            bucket_admin: None,
            credentials: String::new(),
        }
    }

    /// Human-readable name: `s3://bucket (http://host:port)` or `file:///dir`. No secrets.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `other` is the same bucket of the same service with the same credentials, so
    /// that a server-side copy between the two is possible.
    pub fn same_bucket_as(&self, other: &Store) -> bool {
        self.identity == other.identity
    }

    /// Whether single-request uploads get the MD5 of their body as ETag (the S3 family).
    pub fn etag_is_md5(&self) -> bool {
        self.etag_is_md5
    }

    /// Whether multipart uploads can be resumed part by part.
    pub fn resumable_multipart(&self) -> bool {
        self.multipart.is_some()
    }

    fn err(&self, op: &'static str, key: &str, e: object_store::Error) -> StorageError {
        StorageError::from_object_store(&self.name, op, key, e).naming(&self.credentials)
    }

    /// Makes sure the bucket exists before anything is written to it: a missing one is created
    /// where the store can (the S3 family), as milvus-backup does for its backup storage.
    /// Returns whether it was created.
    ///
    /// # Errors
    /// The probe (one LIST) fails for another reason than a missing bucket, or the bucket is
    /// missing and cannot be created here (denied, or not an S3-family store).
    pub async fn ensure_bucket(&self) -> Result<bool, StorageError> {
        const PROBE: &str = "milvus-migrate-bucket-probe";
        let Err(e) = self.object.list_with_delimiter(Some(&path(PROBE))).await else {
            return Ok(false);
        };
        let e = self.err("LIST", PROBE, e);
        match &self.bucket_admin {
            Some(admin) if e.kind() == StorageErrorKind::BucketNotFound => {
                admin
                    .create(&self.name, &self.identity.bucket)
                    .await
                    .map_err(|e| e.naming(&self.credentials))?;
                tracing::info!(store = %self.name, "created the missing bucket");
                Ok(true)
            }
            _ => Err(e),
        }
    }

    /// Lists every object under `prefix` (a directory-like prefix without trailing `/`).
    ///
    /// # Errors
    /// The first failing LIST page.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let p = (!prefix.is_empty()).then(|| path(prefix));
        self.object
            .list(p.as_ref())
            .map_ok(|m| ObjectInfo {
                key: m.location.to_string(),
                size: m.size,
                etag: m.e_tag.as_deref().map(strip_quotes),
            })
            .map_err(|e| self.err("LIST", prefix, e))
            .try_collect()
            .await
    }

    /// Lists the immediate sub-directories of `prefix` (names only).
    ///
    /// # Errors
    /// A failing LIST request.
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let p = (!prefix.is_empty()).then(|| path(prefix));
        let listing = self
            .object
            .list_with_delimiter(p.as_ref())
            .await
            .map_err(|e| self.err("LIST", prefix, e))?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// Size and ETag of one object.
    ///
    /// # Errors
    /// `NotFound` kind when the object does not exist.
    pub async fn head(&self, key: &str) -> Result<ObjectInfo, StorageError> {
        let m = self
            .object
            .head(&path(key))
            .await
            .map_err(|e| self.err("HEAD", key, e))?;
        Ok(ObjectInfo {
            key: key.to_string(),
            size: m.size,
            etag: m.e_tag.as_deref().map(strip_quotes),
        })
    }

    /// Streams an object, or a byte range of it.
    ///
    /// # Errors
    /// The GET itself fails; errors while reading the body come through the stream.
    pub async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<GetObject, StorageError> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self
            .object
            .get_opts(&path(key), options)
            .await
            .map_err(|e| self.err("GET", key, e))?;
        let store = self.name.clone();
        let owned_key = key.to_string();
        let etag = result.meta.e_tag.as_deref().map(strip_quotes);
        let stream = result
            .into_stream()
            .map_err(move |e| StorageError::from_object_store(&store, "GET", &owned_key, e))
            .boxed();
        Ok(GetObject { etag, stream })
    }

    /// Reads a whole (small) object into memory.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub async fn read(&self, key: &str) -> Result<Bytes, StorageError> {
        let chunks: Vec<Bytes> = self.get(key, None).await?.stream.try_collect().await?;
        Ok(chunks.concat().into())
    }

    /// Writes an object in one request; returns its ETag.
    ///
    /// # Errors
    /// A failing PUT.
    pub async fn put(
        &self,
        key: &str,
        payload: PutPayload,
    ) -> Result<Option<String>, StorageError> {
        let r = self
            .object
            .put(&path(key), payload)
            .await
            .map_err(|e| self.err("PUT", key, e))?;
        Ok(r.e_tag.as_deref().map(strip_quotes))
    }

    /// Writes an object only if no object has the key (`If-None-Match: *` on S3); returns
    /// its ETag.
    ///
    /// Some S3-compatible servers ignore the condition and overwrite: callers that need
    /// mutual exclusion read the object back (see [`crate::lease`]).
    ///
    /// # Errors
    /// [`StorageErrorKind::Conflict`] when the object exists; a failing PUT.
    pub async fn put_if_absent(
        &self,
        key: &str,
        payload: PutPayload,
    ) -> Result<Option<String>, StorageError> {
        self.put_mode(key, payload, PutMode::Create).await
    }

    /// Replaces an object only if its ETag is still `etag` (`If-Match` on S3); returns the
    /// new ETag.
    ///
    /// # Errors
    /// [`StorageErrorKind::Conflict`] when the object changed or is gone;
    /// [`StorageErrorKind::Unsupported`] on a store without conditional updates (a local
    /// directory); a failing PUT.
    pub async fn put_if_match(
        &self,
        key: &str,
        payload: PutPayload,
        etag: &str,
    ) -> Result<Option<String>, StorageError> {
        let version = UpdateVersion {
            e_tag: Some(format!("\"{etag}\"")),
            version: None,
        };
        self.put_mode(key, payload, PutMode::Update(version)).await
    }

    async fn put_mode(
        &self,
        key: &str,
        payload: PutPayload,
        mode: PutMode,
    ) -> Result<Option<String>, StorageError> {
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        let r = self
            .object
            .put_opts(&path(key), payload, opts)
            .await
            .map_err(|e| self.err("PUT", key, e))?;
        Ok(r.e_tag.as_deref().map(strip_quotes))
    }

    /// Writes an object in one request whose body must have MD5 `md5`; returns its ETag.
    ///
    /// An S3-family store is sent the digest as `Content-MD5`, so it refuses a body that
    /// differs (an [`StorageErrorKind::Integrity`] error) instead of storing it. Other stores
    /// get a plain PUT: check their ETag or the object afterwards.
    ///
    /// # Errors
    /// A failing PUT.
    pub async fn put_with_md5(
        &self,
        key: &str,
        payload: PutPayload,
        md5: [u8; 16],
    ) -> Result<Option<String>, StorageError> {
        self.checking_md5(md5, self.put(key, payload)).await
    }

    /// Runs `request` with `Content-MD5: md5` when this is an S3-family store (which checks
    /// it); other stores get the request as it is.
    async fn checking_md5<F: std::future::Future>(&self, md5: [u8; 16], request: F) -> F::Output {
        if self.etag_is_md5 {
            http::with_content_md5(md5, request).await
        } else {
            request.await
        }
    }

    /// Starts a resumable multipart upload; returns its id.
    ///
    /// # Errors
    /// A failing request, or a store without resumable multipart uploads.
    pub async fn create_multipart(&self, key: &str) -> Result<String, StorageError> {
        let mp = self.multipart_store(key)?;
        mp.create_multipart(&path(key))
            .await
            .map_err(|e| self.err("CreateMultipartUpload", key, e))
    }

    /// Uploads part `index` (0-based) of a multipart upload; returns the part's ETag.
    ///
    /// # Errors
    /// A failing request.
    pub async fn put_part(
        &self,
        key: &str,
        upload_id: &str,
        index: usize,
        payload: PutPayload,
    ) -> Result<String, StorageError> {
        let mp = self.multipart_store(key)?;
        let part = mp
            .put_part(&path(key), &upload_id.to_string(), index, payload)
            .await
            .map_err(|e| self.err("UploadPart", key, e))?;
        Ok(strip_quotes(&part.content_id))
    }

    /// [`Store::put_part`] of a body that must have MD5 `md5`: sent as `Content-MD5` to an
    /// S3-family store, which refuses a body that differs (see [`Store::put_with_md5`]).
    ///
    /// # Errors
    /// A failing request.
    pub async fn put_part_with_md5(
        &self,
        key: &str,
        upload_id: &str,
        index: usize,
        payload: PutPayload,
        md5: [u8; 16],
    ) -> Result<String, StorageError> {
        self.checking_md5(md5, self.put_part(key, upload_id, index, payload))
            .await
    }

    /// Completes a multipart upload from its part ETags in part order; returns the object ETag.
    ///
    /// # Errors
    /// A failing request.
    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        part_etags: &[String],
    ) -> Result<Option<String>, StorageError> {
        let mp = self.multipart_store(key)?;
        let parts = part_etags
            .iter()
            .map(|e| PartId {
                content_id: format!("\"{e}\""),
            })
            .collect();
        let r = mp
            .complete_multipart(&path(key), &upload_id.to_string(), parts)
            .await
            .map_err(|e| self.err("CompleteMultipartUpload", key, e))?;
        Ok(r.e_tag.as_deref().map(strip_quotes))
    }

    /// Aborts a multipart upload, freeing its parts on the server.
    ///
    /// # Errors
    /// A failing request.
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StorageError> {
        let mp = self.multipart_store(key)?;
        mp.abort_multipart(&path(key), &upload_id.to_string())
            .await
            .map_err(|e| self.err("AbortMultipartUpload", key, e))
    }

    /// Starts a streaming multipart write for stores without resumable uploads (local
    /// directories): parts must be written in order.
    ///
    /// # Errors
    /// A failing request.
    pub async fn start_sequential_upload(
        &self,
        key: &str,
    ) -> Result<Box<dyn MultipartUpload>, StorageError> {
        self.object
            .put_multipart(&path(key))
            .await
            .map_err(|e| self.err("PUT", key, e))
    }

    /// Server-side copy within this bucket.
    ///
    /// # Errors
    /// A failing request.
    pub async fn copy_within(&self, from: &str, to: &str) -> Result<(), StorageError> {
        self.object
            .copy(&path(from), &path(to))
            .await
            .map_err(|e| self.err("COPY", to, e))
    }

    /// Deletes one object. Deleting a missing object succeeds.
    ///
    /// # Errors
    /// A failing request.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.object.delete(&path(key)).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = self.err("DELETE", key, e);
                if err.kind() == StorageErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    fn multipart_store(&self, key: &str) -> Result<&Arc<dyn MultipartStore>, StorageError> {
        self.multipart
            .as_ref()
            .ok_or_else(|| StorageError::Request {
                store: self.name.clone(),
                op: "multipart",
                key: key.to_string(),
                kind: StorageErrorKind::Fatal,
                message: "this store has no resumable multipart uploads".into(),
            })
    }
}

fn local_dir(cfg: &StorageConfig) -> String {
    if cfg.local_path.is_empty() {
        cfg.bucket.clone()
    } else {
        cfg.local_path.clone()
    }
}

fn authority_of(cfg: &StorageConfig) -> String {
    let url = cfg.endpoint_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    rest.trim_end_matches('/').to_ascii_lowercase()
}

fn service_identity(cfg: &StorageConfig) -> String {
    match cfg.storage_type {
        StorageType::Local => format!("local:{}", local_dir(cfg)),
        t => format!(
            "{t:?}|{}|{}|{}|{}",
            cfg.endpoint_url(),
            cfg.region,
            cfg.access_key_id,
            cfg.azure_account_name
        ),
    }
}

fn describe(cfg: &StorageConfig) -> String {
    match cfg.storage_type {
        StorageType::Local => format!("file://{}", local_dir(cfg)),
        StorageType::Azure => format!("azure://{}/{}", cfg.azure_account_name, cfg.bucket),
        StorageType::GcpNative => format!("gs://{}", cfg.bucket),
        _ => format!("s3://{} ({})", cfg.bucket, cfg.endpoint_url()),
    }
}
