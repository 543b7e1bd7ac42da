//! [`MilvusClient`]: one connection to a Milvus proxy over gRPC, built from a profile's
//! [`MilvusConfig`].
//!
//! Owns the channel (plain or TLS, one-way or mutual), the `authorization` and `dbname` headers,
//! timeouts, retries of retryable answers with backoff, the version handshake, and the
//! translation of every answer's `common.Status` into [`MilvusError`]. It does not own any flow:
//! create, restore and verification call the typed methods here.

use std::future::Future;
use std::time::Duration;

use base64::Engine as _;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::MilvusError;
use super::proto::{common, milvus as pb, schema};
use super::version::ServerVersion;
use crate::config::{MilvusConfig, TlsMode};
use crate::retry::RetryPolicy;

type Svc = pb::milvus_service_client::MilvusServiceClient<InterceptedService<Channel, Headers>>;

/// The headers every call carries.
#[derive(Clone, Default)]
pub struct Headers {
    authorization: Option<MetadataValue<Ascii>>,
    dbname: Option<MetadataValue<Ascii>>,
}

impl Interceptor for Headers {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.authorization {
            req.metadata_mut().insert("authorization", v.clone());
        }
        if let Some(v) = &self.dbname {
            req.metadata_mut().insert("dbname", v.clone());
        }
        Ok(req)
    }
}

/// Timeouts and retries of Milvus calls.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Establishing the connection.
    pub connect_timeout: Duration,
    /// One call.
    pub request_timeout: Duration,
    /// Retries of retryable answers (rate limited, unavailable, not ready).
    pub retry: RetryPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            retry: RetryPolicy {
                max_retries: 8,
                initial: Duration::from_millis(500),
                max: Duration::from_secs(10),
            },
        }
    }
}

/// Answers that carry a `common.Status`.
pub trait Reply {
    /// The status, if the answer has one.
    fn status(&self) -> Option<&common::Status>;
}

impl Reply for common::Status {
    fn status(&self) -> Option<&common::Status> {
        Some(self)
    }
}

macro_rules! reply {
    ($($t:ty),* $(,)?) => {
        $(impl Reply for $t {
            fn status(&self) -> Option<&common::Status> {
                self.status.as_ref()
            }
        })*
    };
}

reply!(
    pb::ConnectResponse,
    pb::GetVersionResponse,
    pb::ListDatabasesResponse,
    pb::ShowCollectionsResponse,
    pb::BoolResponse,
    pb::DescribeCollectionResponse,
    pb::ShowPartitionsResponse,
    pb::FlushResponse,
    pb::GetFlushStateResponse,
    pb::GetPersistentSegmentInfoResponse,
    pb::ImportResponse,
    pb::GetImportStateResponse,
    pb::ListImportTasksResponse,
    pb::DescribeIndexResponse,
    pb::GetLoadingProgressResponse,
    pb::GetLoadStateResponse,
    pb::MutationResult,
    pb::QueryResults,
    pb::GetCollectionStatisticsResponse,
    pb::GetPartitionStatisticsResponse,
    pb::DescribeDatabaseResponse,
    pb::GetReplicasResponse,
);

/// Whether a status means success: both the new and the legacy code are 0. The legacy
/// `error_code` is deprecated upstream but still the only code older servers fill.
#[allow(deprecated)]
fn status_error(address: &str, rpc: &'static str, s: &common::Status) -> Option<MilvusError> {
    let code = s.code & 0xFFFF;
    if code == 0 && s.error_code == 0 {
        return None;
    }
    Some(MilvusError::Server {
        address: address.to_string(),
        rpc,
        code: if code == 0 { s.error_code } else { code },
        error_code: s.error_code,
        reason: if s.reason.is_empty() {
            s.detail.clone()
        } else {
            s.reason.clone()
        },
        retriable: s.retriable || (s.code & 0x10000) != 0,
    })
}

/// One call of `MilvusClient::$method` with a ready request (cloned for each attempt), through
/// [`MilvusClient::call`]'s status check and retries.
macro_rules! unary {
    ($self:ident, $rpc:literal, $method:ident, $req:expr) => {{
        let req = $req;
        $self.call($rpc, move |mut s| {
            let req = req.clone();
            async move { s.$method(req).await }
        })
    }};
}

/// A connection to one Milvus, bound to one database (the `dbname` header).
#[derive(Clone)]
pub struct MilvusClient {
    channel: Channel,
    headers: Headers,
    address: String,
    user: String,
    db: String,
    version: ServerVersion,
    opts: ClientOptions,
    /// The profile's settings: TLS failures are explained by its keys.
    cfg: std::sync::Arc<MilvusConfig>,
}

impl std::fmt::Debug for MilvusClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MilvusClient")
            .field("address", &self.address)
            .field("user", &self.user)
            .field("db", &self.db)
            .field("version", &self.version.raw)
            .finish()
    }
}

impl MilvusClient {
    /// Connects to the Milvus of a profile, checks it answers as Milvus and learns its version.
    ///
    /// # Errors
    /// [`MilvusError::Connect`] when nothing answers, [`MilvusError::NotMilvus`] when something
    /// else answers, [`MilvusError::Unauthenticated`] when the credentials are refused,
    /// [`MilvusError::Tls`] when the TLS files cannot be read.
    pub async fn connect(cfg: &MilvusConfig, opts: ClientOptions) -> Result<Self, MilvusError> {
        let address = format!("{}:{}", cfg.address, cfg.port);
        let tls = cfg.tls_mode != TlsMode::Disabled;
        let url = format!("{}://{address}", if tls { "https" } else { "http" });
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| MilvusError::Connect {
                address: address.clone(),
                message: format!("invalid address `{url}`: {e}"),
            })?
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.request_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        if tls {
            endpoint = endpoint
                .tls_config(tls_config(cfg, &address)?)
                .map_err(|e| MilvusError::Tls {
                    address: address.clone(),
                    message: error_chain(&e),
                })?;
        }
        let channel = endpoint.connect().await.map_err(|e| {
            let message = error_chain(&e);
            if is_connect_failure(&e) {
                MilvusError::Connect {
                    address: address.clone(),
                    message,
                }
            } else if let Some(t) = tls_failure(&e) {
                MilvusError::Tls {
                    address: address.clone(),
                    message: explain_tls_failure(t, cfg),
                }
            } else {
                let e = MilvusError::NotMilvus {
                    address: address.clone(),
                    message,
                };
                tls_hint(e, cfg.tls_mode)
            }
        })?;
        let authorization = if cfg.user.is_empty() && cfg.password.expose().is_empty() {
            None
        } else {
            let token = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                cfg.user,
                cfg.password.expose()
            ));
            Some(token.parse().map_err(|_| MilvusError::Connect {
                address: address.clone(),
                message: "the user name cannot be sent as a header".into(),
            })?)
        };
        let mut client = MilvusClient {
            channel,
            headers: Headers {
                authorization,
                dbname: None,
            },
            address,
            user: cfg.user.clone(),
            db: "default".into(),
            version: ServerVersion::parse(""),
            opts,
            cfg: std::sync::Arc::new(cfg.clone()),
        };
        client.version = client
            .handshake()
            .await
            .map_err(|e| tls_hint(e, cfg.tls_mode))?;
        Ok(client)
    }

    /// The same connection, for calls in database `db`.
    pub fn with_db(&self, db: &str) -> MilvusClient {
        let mut c = self.clone();
        c.db = db.to_string();
        c.headers.dbname = if db.is_empty() || db == "default" {
            None
        } else {
            db.parse().ok()
        };
        c
    }

    /// The server's version.
    pub fn version(&self) -> &ServerVersion {
        &self.version
    }

    /// `host:port` of the server, for messages.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The database of this client's calls.
    pub fn db(&self) -> &str {
        &self.db
    }

    fn svc(&self) -> Svc {
        pb::milvus_service_client::MilvusServiceClient::with_interceptor(
            self.channel.clone(),
            self.headers.clone(),
        )
        .max_decoding_message_size(1 << 30)
        .max_encoding_message_size(256 << 20)
    }

    /// An answer that lacks what the call promises.
    fn malformed(&self, rpc: &'static str, reason: &str) -> MilvusError {
        MilvusError::Server {
            address: self.address.clone(),
            rpc,
            code: 0,
            error_code: 0,
            reason: reason.to_string(),
            retriable: false,
        }
    }

    fn rpc_error(&self, rpc: &'static str, s: tonic::Status) -> MilvusError {
        match s.code() {
            tonic::Code::Unauthenticated => MilvusError::Unauthenticated {
                address: self.address.clone(),
                user: self.user.clone(),
                message: if self.cfg.credentials.is_empty() {
                    s.message().to_string()
                } else {
                    format!("{} (check {})", s.message(), self.cfg.credentials)
                },
            },
            code => {
                // A transport failure's cause (a TLS alert, a reset) is in its sources.
                let cause = std::error::Error::source(&s);
                // A connection closed before the answer comes as `Cancelled` (hyper), a reset
                // as `Unknown`: one event, one code. A timeout of ours is `Cancelled` without a
                // source and stays so.
                let code = match code {
                    tonic::Code::Cancelled if cause.is_some() => tonic::Code::Unknown,
                    code => code,
                };
                if let Some(t) = cause.and_then(tls_failure) {
                    return MilvusError::Tls {
                        address: self.address.clone(),
                        message: explain_tls_failure(t, &self.cfg),
                    };
                }
                if code == tonic::Code::ResourceExhausted
                    && let Some((size, limit)) = super::error::refused_sizes(s.message())
                {
                    return MilvusError::TooLarge {
                        address: self.address.clone(),
                        rpc,
                        size,
                        limit,
                    };
                }
                MilvusError::Rpc {
                    address: self.address.clone(),
                    rpc,
                    code,
                    message: match cause.map(error_chain) {
                        Some(c) if c.starts_with(s.message()) => c,
                        Some(c) => format!("{}: {c}", s.message()),
                        None => s.message().to_string(),
                    },
                }
            }
        }
    }

    /// One call, without retries: the gRPC error or the answer's error status as
    /// [`MilvusError`].
    async fn once<T, Fut>(
        &self,
        rpc: &'static str,
        call: impl FnOnce(Svc) -> Fut,
    ) -> Result<T, MilvusError>
    where
        T: Reply,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let reply = call(self.svc())
            .await
            .map_err(|s| self.rpc_error(rpc, s))?
            .into_inner();
        match reply
            .status()
            .and_then(|s| status_error(&self.address, rpc, s))
        {
            Some(e) => Err(e),
            None => Ok(reply),
        }
    }

    /// One call, retried with backoff while the answer is retryable.
    ///
    /// # Errors
    /// The last error.
    pub async fn call<T, Fut>(
        &self,
        rpc: &'static str,
        call: impl Fn(Svc) -> Fut,
    ) -> Result<T, MilvusError>
    where
        T: Reply,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.opts
            .retry
            .run(
                |_| self.once(rpc, &call),
                |e: &MilvusError, n| tracing::debug!(rpc, retry = n, "{e}"),
            )
            .await
    }

    async fn handshake(&self) -> Result<ServerVersion, MilvusError> {
        let connect = self
            .once("Connect", |mut s| async move {
                s.connect(pb::ConnectRequest {
                    client_info: Some(common::ClientInfo {
                        sdk_type: "milvus-migrate".into(),
                        sdk_version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
            })
            .await;
        let tags = match connect {
            Ok(r) => r.server_info.map(|i| i.build_tags).unwrap_or_default(),
            Err(MilvusError::Rpc {
                code: tonic::Code::Unimplemented,
                ..
            }) => String::new(),
            Err(MilvusError::Rpc {
                code: tonic::Code::Unknown | tonic::Code::Internal,
                message,
                ..
            }) => {
                return Err(MilvusError::NotMilvus {
                    address: self.address.clone(),
                    message,
                });
            }
            Err(e) => return Err(e),
        };
        let parsed = ServerVersion::parse(&tags);
        if parsed.parsed.is_some() {
            return Ok(parsed);
        }
        match self
            .once("GetVersion", |mut s| async move {
                s.get_version(pb::GetVersionRequest {}).await
            })
            .await
        {
            Ok(r) => Ok(ServerVersion::parse(&r.version)),
            Err(MilvusError::Rpc {
                code: tonic::Code::Unimplemented,
                message,
                ..
            }) => Err(MilvusError::NotMilvus {
                address: self.address.clone(),
                message: format!("GetVersion is not implemented: {message}"),
            }),
            Err(e) => Err(e),
        }
    }

    /// The databases (`default` on servers without database support).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn list_databases(&self) -> Result<Vec<String>, MilvusError> {
        match self
            .call("ListDatabases", |mut s| async move {
                s.list_databases(pb::ListDatabasesRequest::default()).await
            })
            .await
        {
            Ok(r) => Ok(r.db_names),
            Err(MilvusError::Rpc {
                code: tonic::Code::Unimplemented,
                ..
            }) => Ok(vec!["default".into()]),
            Err(e) => Err(e),
        }
    }

    /// Creates a database.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn create_database(&self, name: &str) -> Result<(), MilvusError> {
        self.create_database_with(name, Vec::new()).await
    }

    /// Creates a database with properties (`CreateDatabaseRequest.properties`, 2.4+: older
    /// servers ignore them, see [`ServerVersion::has_database_properties`]).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn create_database_with(
        &self,
        name: &str,
        properties: Vec<common::KeyValuePair>,
    ) -> Result<(), MilvusError> {
        unary!(
            self,
            "CreateDatabase",
            create_database,
            pb::CreateDatabaseRequest {
                db_name: name.to_string(),
                properties,
                ..Default::default()
            }
        )
        .await
        .map(drop)
    }

    /// A database's properties; `None` on a server without `DescribeDatabase`
    /// ([`ServerVersion::has_describe_database`]).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn database_properties(
        &self,
        name: &str,
    ) -> Result<Option<Vec<common::KeyValuePair>>, MilvusError> {
        if !self.version.has_describe_database() {
            return Ok(None);
        }
        unary!(
            self,
            "DescribeDatabase",
            describe_database,
            pb::DescribeDatabaseRequest {
                db_name: name.to_string(),
                ..Default::default()
            }
        )
        .await
        .map(|r| Some(r.properties))
    }

    /// The collections of this client's database.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn show_collections(&self) -> Result<Vec<String>, MilvusError> {
        unary!(
            self,
            "ShowCollections",
            show_collections,
            pb::ShowCollectionsRequest {
                db_name: self.db.clone(),
                ..Default::default()
            }
        )
        .await
        .map(|r| r.collection_names)
    }

    /// Whether a collection exists.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn has_collection(&self, name: &str) -> Result<bool, MilvusError> {
        unary!(
            self,
            "HasCollection",
            has_collection,
            pb::HasCollectionRequest {
                db_name: self.db.clone(),
                collection_name: name.to_string(),
                ..Default::default()
            }
        )
        .await
        .map(|r| r.value)
    }

    /// Schema and settings of a collection.
    ///
    /// # Errors
    /// [`MilvusError`]; [`MilvusError::is_collection_not_found`] tells a missing collection.
    pub async fn describe_collection(
        &self,
        name: &str,
    ) -> Result<pb::DescribeCollectionResponse, MilvusError> {
        unary!(
            self,
            "DescribeCollection",
            describe_collection,
            pb::DescribeCollectionRequest {
                db_name: self.db.clone(),
                collection_name: name.to_string(),
                ..Default::default()
            }
        )
        .await
    }

    /// Partition names and IDs of a collection.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn show_partitions(
        &self,
        collection: &str,
    ) -> Result<Vec<(String, i64)>, MilvusError> {
        let r = unary!(
            self,
            "ShowPartitions",
            show_partitions,
            pb::ShowPartitionsRequest {
                db_name: self.db.clone(),
                collection_name: collection.to_string(),
                ..Default::default()
            }
        )
        .await?;
        Ok(r.partition_names
            .into_iter()
            .zip(r.partition_i_ds)
            .collect())
    }

    /// The indexes of a collection (empty when it has none).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn describe_index(
        &self,
        collection: &str,
    ) -> Result<Vec<pb::IndexDescription>, MilvusError> {
        match unary!(
            self,
            "DescribeIndex",
            describe_index,
            pb::DescribeIndexRequest {
                db_name: self.db.clone(),
                collection_name: collection.to_string(),
                ..Default::default()
            }
        )
        .await
        {
            Ok(r) => Ok(r.index_descriptions),
            Err(e) if e.is_index_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Loading progress of a collection in percent (0 when it is not loaded).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn loading_progress(&self, collection: &str) -> Result<i64, MilvusError> {
        if !self.version.has_loading_progress_status() {
            // Deprecated in the protos since 2.3, the only way on 2.2.
            #[allow(deprecated)]
            let r = unary!(
                self,
                "ShowCollections",
                show_collections,
                pb::ShowCollectionsRequest {
                    db_name: self.db.clone(),
                    r#type: pb::ShowType::InMemory as i32,
                    ..Default::default()
                }
            )
            .await?;
            let at = r.collection_names.iter().position(|n| n == collection);
            #[allow(deprecated)]
            return Ok(at
                .and_then(|i| r.in_memory_percentages.get(i).copied())
                .unwrap_or(0));
        }
        match unary!(
            self,
            "GetLoadingProgress",
            get_loading_progress,
            pb::GetLoadingProgressRequest {
                db_name: self.db.clone(),
                collection_name: collection.to_string(),
                ..Default::default()
            }
        )
        .await
        {
            Ok(r) => Ok(r.progress),
            Err(e) if matches!(e.server_code(), Some((c, _)) if c == super::error::code::COLLECTION_NOT_LOADED) => {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Seals and flushes a collection's growing segments.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn flush(&self, collection: &str) -> Result<Flushed, MilvusError> {
        let r = unary!(
            self,
            "Flush",
            flush,
            pb::FlushRequest {
                db_name: self.db.clone(),
                collection_names: vec![collection.to_string()],
                ..Default::default()
            }
        )
        .await?;
        Ok(Flushed {
            segment_ids: r
                .coll_seg_i_ds
                .get(collection)
                .map(|a| a.data.clone())
                .unwrap_or_default(),
            flush_ts: r.coll_flush_ts.get(collection).copied().unwrap_or(0),
            seal_time: r.coll_seal_times.get(collection).copied().unwrap_or(0),
        })
    }

    /// Whether the segments of a [`MilvusClient::flush`] are flushed.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn flush_state(&self, collection: &str, f: &Flushed) -> Result<bool, MilvusError> {
        unary!(
            self,
            "GetFlushState",
            get_flush_state,
            pb::GetFlushStateRequest {
                segment_i_ds: f.segment_ids.clone(),
                flush_ts: f.flush_ts,
                db_name: self.db.clone(),
                collection_name: collection.to_string(),
            }
        )
        .await
        .map(|r| r.flushed)
    }

    /// The persisted segments of a collection (Flushing, Flushed, Sealed).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn persistent_segments(
        &self,
        collection: &str,
    ) -> Result<Vec<pb::PersistentSegmentInfo>, MilvusError> {
        unary!(
            self,
            "GetPersistentSegmentInfo",
            get_persistent_segment_info,
            pb::GetPersistentSegmentInfoRequest {
                db_name: self.db.clone(),
                collection_name: collection.to_string(),
                ..Default::default()
            }
        )
        .await
        .map(|r| r.infos)
    }

    /// Creates a collection.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn create_collection(
        &self,
        req: pb::CreateCollectionRequest,
    ) -> Result<(), MilvusError> {
        unary!(self, "CreateCollection", create_collection, req)
            .await
            .map(drop)
    }

    /// Adds a field to an existing collection (`AddCollectionField`, Milvus 2.6+).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn add_collection_field(
        &self,
        collection: &str,
        field: &schema::FieldSchema,
    ) -> Result<(), MilvusError> {
        let req = pb::AddCollectionFieldRequest {
            db_name: self.db.clone(),
            collection_name: collection.to_string(),
            schema: prost::Message::encode_to_vec(field),
            ..Default::default()
        };
        unary!(self, "AddCollectionField", add_collection_field, req)
            .await
            .map(drop)
    }

    /// Sets collection properties (`AlterCollection`).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn alter_collection_properties(
        &self,
        collection: &str,
        properties: Vec<common::KeyValuePair>,
    ) -> Result<(), MilvusError> {
        let req = pb::AlterCollectionRequest {
            db_name: self.db.clone(),
            collection_name: collection.to_string(),
            properties,
            ..Default::default()
        };
        unary!(self, "AlterCollection", alter_collection, req)
            .await
            .map(drop)
    }

    /// Drops a collection; a missing one is not an error.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn drop_collection(&self, name: &str) -> Result<(), MilvusError> {
        match unary!(
            self,
            "DropCollection",
            drop_collection,
            pb::DropCollectionRequest {
                db_name: self.db.clone(),
                collection_name: name.to_string(),
                ..Default::default()
            }
        )
        .await
        {
            Err(e) if e.is_collection_not_found() => Ok(()),
            r => r.map(drop),
        }
    }

    /// Drops a collection's aliases, then the collection (Milvus 2.4+ refuses to drop a
    /// collection that has aliases; 2.3 drops them with it); a missing one is not an error.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn drop_collection_and_aliases(&self, name: &str) -> Result<(), MilvusError> {
        let aliases = match self.describe_collection(name).await {
            Ok(d) => d.aliases,
            Err(e) if e.is_collection_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        for alias in &aliases {
            self.drop_alias(alias).await?;
        }
        self.drop_collection(name).await
    }

    /// Creates a partition.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn create_partition(&self, collection: &str, name: &str) -> Result<(), MilvusError> {
        unary!(
            self,
            "CreatePartition",
            create_partition,
            pb::CreatePartitionRequest {
                db_name: self.db.clone(),
                collection_name: collection.to_string(),
                partition_name: name.to_string(),
                ..Default::default()
            }
        )
        .await
        .map(drop)
    }

    /// Starts a bulk import; returns the task (2.3) or job (2.4+) ID.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn import(
        &self,
        collection: &str,
        partition: &str,
        files: Vec<String>,
        options: Vec<(String, String)>,
    ) -> Result<i64, MilvusError> {
        self.import_keyed(collection, partition, files, options, None)
            .await
    }

    /// Starts a bulk import with `ImportRequest.idempotency_key` (field 9) when given, which
    /// every retry of the call sends unchanged, so a server that honours the key (see
    /// [`super::protocol::import_idempotency_key`]) starts the job once.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn import_keyed(
        &self,
        collection: &str,
        partition: &str,
        files: Vec<String>,
        options: Vec<(String, String)>,
        idempotency_key: Option<String>,
    ) -> Result<i64, MilvusError> {
        let options = options
            .into_iter()
            .map(|(key, value)| common::KeyValuePair { key, value })
            .collect();
        let req = pb::ImportRequest {
            db_name: self.db.clone(),
            collection_name: collection.to_string(),
            partition_name: partition.to_string(),
            files,
            options,
            idempotency_key: idempotency_key.unwrap_or_default(),
            ..Default::default()
        };
        let r = unary!(self, "Import", import, req).await?;
        r.tasks
            .first()
            .copied()
            .ok_or_else(|| self.malformed("Import", "the answer names no import task"))
    }

    /// The state of an import task.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn import_state(&self, task: i64) -> Result<pb::GetImportStateResponse, MilvusError> {
        unary!(
            self,
            "GetImportState",
            get_import_state,
            pb::GetImportStateRequest { task }
        )
        .await
    }

    /// The import tasks of a collection (most recent first as the server returns them).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn list_import_tasks(
        &self,
        collection: &str,
    ) -> Result<Vec<pb::GetImportStateResponse>, MilvusError> {
        unary!(
            self,
            "ListImportTasks",
            list_import_tasks,
            pb::ListImportTasksRequest {
                collection_name: collection.to_string(),
                limit: 0,
                db_name: self.db.clone(),
            }
        )
        .await
        .map(|r| r.tasks)
    }

    /// Creates an index.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn create_index(
        &self,
        collection: &str,
        field: &str,
        index_name: &str,
        params: Vec<common::KeyValuePair>,
    ) -> Result<(), MilvusError> {
        let req = pb::CreateIndexRequest {
            db_name: self.db.clone(),
            collection_name: collection.to_string(),
            field_name: field.to_string(),
            extra_params: params,
            index_name: index_name.to_string(),
            ..Default::default()
        };
        unary!(self, "CreateIndex", create_index, req)
            .await
            .map(drop)
    }

    /// Starts loading a collection.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn load_collection(&self, collection: &str) -> Result<(), MilvusError> {
        self.load_collection_replicas(collection, 0).await
    }

    /// Starts loading a collection with `replicas` in-memory replicas (0: the server's default,
    /// 1 on 2.3, the database's `database.replica.number` or the cluster's on 2.4+).
    ///
    /// # Errors
    /// [`MilvusError`], e.g. when the query nodes cannot hold that many replicas.
    pub async fn load_collection_replicas(
        &self,
        collection: &str,
        replicas: i32,
    ) -> Result<(), MilvusError> {
        unary!(
            self,
            "LoadCollection",
            load_collection,
            pb::LoadCollectionRequest {
                db_name: self.db.clone(),
                collection_name: collection.to_string(),
                replica_number: replicas,
                ..Default::default()
            }
        )
        .await
        .map(drop)
    }

    /// Starts loading some partitions of a collection with `replicas` in-memory replicas (0:
    /// the server's default). Queries then see the rows of these partitions only.
    ///
    /// # Errors
    /// [`MilvusError`], e.g. on a partition-key collection (loaded whole only).
    pub async fn load_partitions(
        &self,
        collection: &str,
        partitions: &[String],
        replicas: i32,
    ) -> Result<(), MilvusError> {
        unary!(
            self,
            "LoadPartitions",
            load_partitions,
            pb::LoadPartitionsRequest {
                db_name: self.db.clone(),
                collection_name: collection.to_string(),
                partition_names: partitions.to_vec(),
                replica_number: replicas,
                ..Default::default()
            }
        )
        .await
        .map(drop)
    }

    /// The load state of each of `partitions` of `collection` (`GetLoadState`, which every
    /// release since 2.2 answers by partition). A collection loaded by some partitions only
    /// says 100 % to `GetLoadingProgress`, while queries see the loaded partitions alone and
    /// fail when they name another. One request when all are loaded, one per partition
    /// otherwise.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn partition_load_states(
        &self,
        collection: &str,
        partitions: &[String],
    ) -> Result<Vec<common::LoadState>, MilvusError> {
        let state = |names: &[String]| {
            let req = pb::GetLoadStateRequest {
                db_name: self.db.clone(),
                collection_name: collection.to_string(),
                partition_names: names.to_vec(),
                ..Default::default()
            };
            async move {
                let r = unary!(self, "GetLoadState", get_load_state, req).await?;
                Ok::<_, MilvusError>(
                    common::LoadState::try_from(r.state).unwrap_or(common::LoadState::NotExist),
                )
            }
        };
        if partitions.is_empty() || state(partitions).await? == common::LoadState::Loaded {
            return Ok(vec![common::LoadState::Loaded; partitions.len()]);
        }
        let mut out = Vec::with_capacity(partitions.len());
        for p in partitions {
            out.push(state(std::slice::from_ref(p)).await?);
        }
        Ok(out)
    }

    /// A collection's partitions, each with whether it is loaded
    /// ([`Self::partition_load_states`]).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn partitions_loaded(
        &self,
        collection: &str,
    ) -> Result<Vec<(String, bool)>, MilvusError> {
        let names: Vec<String> = self
            .show_partitions(collection)
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let states = self.partition_load_states(collection, &names).await?;
        let loaded = states.into_iter().map(|s| s == common::LoadState::Loaded);
        Ok(names.into_iter().zip(loaded).collect())
    }

    /// How many in-memory replicas of a loaded collection the server keeps (`GetReplicas` by
    /// collection id, which every release takes); 0 when it is not loaded.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn replica_count(&self, collection_id: i64) -> Result<usize, MilvusError> {
        match unary!(
            self,
            "GetReplicas",
            get_replicas,
            pb::GetReplicasRequest {
                collection_id,
                db_name: self.db.clone(),
                ..Default::default()
            }
        )
        .await
        {
            Ok(r) => Ok(r.replicas.len()),
            Err(e) if matches!(e.server_code(), Some((c, _)) if c == super::error::code::COLLECTION_NOT_LOADED) => {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Creates alias `alias` of a collection.
    ///
    /// # Errors
    /// [`MilvusError`], e.g. when the name is taken by another alias or a collection.
    pub async fn create_alias(&self, collection: &str, alias: &str) -> Result<(), MilvusError> {
        unary!(
            self,
            "CreateAlias",
            create_alias,
            pb::CreateAliasRequest {
                db_name: self.db.clone(),
                collection_name: collection.to_string(),
                alias: alias.to_string(),
                ..Default::default()
            }
        )
        .await
        .map(drop)
    }

    /// Drops alias `alias`.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn drop_alias(&self, alias: &str) -> Result<(), MilvusError> {
        unary!(
            self,
            "DropAlias",
            drop_alias,
            pb::DropAliasRequest {
                db_name: self.db.clone(),
                alias: alias.to_string(),
                ..Default::default()
            }
        )
        .await
        .map(drop)
    }

    /// Releases a loaded collection.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn release_collection(&self, collection: &str) -> Result<(), MilvusError> {
        unary!(
            self,
            "ReleaseCollection",
            release_collection,
            pb::ReleaseCollectionRequest {
                db_name: self.db.clone(),
                collection_name: collection.to_string(),
                ..Default::default()
            }
        )
        .await
        .map(drop)
    }

    /// `count(*)` with Strong consistency, over the whole collection or some partitions. The
    /// collection must be loaded. Servers before 2.3 refuse it: callers use
    /// [`MilvusClient::count`] (`query.rs`), which picks the method by version.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub(super) async fn count_star(
        &self,
        collection: &str,
        partitions: &[String],
    ) -> Result<i64, MilvusError> {
        let req = pb::QueryRequest {
            db_name: self.db.clone(),
            collection_name: collection.to_string(),
            expr: String::new(),
            output_fields: vec!["count(*)".into()],
            partition_names: partitions.to_vec(),
            consistency_level: common::ConsistencyLevel::Strong as i32,
            use_default_consistency: false,
            ..Default::default()
        };
        let r = unary!(self, "Query", query, req).await?;
        r.fields_data
            .iter()
            .find_map(|f| match &f.field {
                Some(schema::field_data::Field::Scalars(sc)) => match &sc.data {
                    Some(schema::scalar_field::Data::LongData(l)) => l.data.first().copied(),
                    _ => None,
                },
                _ => None,
            })
            .ok_or_else(|| self.malformed("Query", "count(*) answered without a number"))
    }

    /// Inserts rows.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn insert(
        &self,
        mut req: pb::InsertRequest,
    ) -> Result<pb::MutationResult, MilvusError> {
        if req.db_name.is_empty() {
            req.db_name = self.db.clone();
        }
        unary!(self, "Insert", insert, req).await
    }

    /// Deletes the rows an expression selects.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn delete(
        &self,
        collection: &str,
        partition: &str,
        expr: &str,
    ) -> Result<pb::MutationResult, MilvusError> {
        let req = pb::DeleteRequest {
            db_name: self.db.clone(),
            collection_name: collection.to_string(),
            partition_name: partition.to_string(),
            expr: expr.to_string(),
            ..Default::default()
        };
        unary!(self, "Delete", delete, req).await
    }
}

/// What a flush reported for one collection.
#[derive(Debug, Clone, Default)]
pub struct Flushed {
    /// Segments sealed by the flush.
    pub segment_ids: Vec<i64>,
    /// Flush timestamp (2.3.1+; 0 before).
    pub flush_ts: u64,
    /// Seal time in Unix seconds.
    pub seal_time: i64,
}

fn tls_config(cfg: &MilvusConfig, address: &str) -> Result<ClientTlsConfig, MilvusError> {
    let read = |what: &str, path: &str| {
        std::fs::read(path).map_err(|e| MilvusError::Tls {
            address: address.to_string(),
            message: format!("cannot read {what} `{path}`: {e}"),
        })
    };
    crate::install_tls_provider();
    let mut tls = ClientTlsConfig::new().with_native_roots();
    if !cfg.ca_cert_path.is_empty() {
        tls = tls.ca_certificate(Certificate::from_pem(read(
            "CA certificate",
            &cfg.ca_cert_path,
        )?));
    }
    let domain = if cfg.server_name.is_empty() {
        cfg.address.clone()
    } else {
        cfg.server_name.clone()
    };
    tls = tls.domain_name(domain);
    if cfg.tls_mode == TlsMode::Mutual {
        if cfg.mtls_cert_path.is_empty() || cfg.mtls_key_path.is_empty() {
            return Err(MilvusError::Tls {
                address: address.to_string(),
                message: "tlsMode mutual needs milvus.mtlsCertPath and milvus.mtlsKeyPath".into(),
            });
        }
        let cert = read("client certificate", &cfg.mtls_cert_path)?;
        let key = read("client key", &cfg.mtls_key_path)?;
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Ok(tls)
}

/// The messages of an error and its sources, on one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// A server that wants more TLS than it gets gives no HTTP/2 answer, only a failed transport
/// (under TLS 1.3 a missing client certificate shows after the handshake, as an alert the
/// transport passes on as text): the likely setting is named on what comes back from
/// something that does not answer as Milvus's gRPC.
fn tls_hint(e: MilvusError, mode: TlsMode) -> MilvusError {
    let hint = match mode {
        TlsMode::Disabled => {
            "if this Milvus requires TLS, set `milvus.tlsMode` to 1, or 2 for mutual TLS"
        }
        TlsMode::Server => {
            "if this Milvus wants a client certificate, set `milvus.tlsMode: 2` with \
             `milvus.mtlsCertPath` and `milvus.mtlsKeyPath`"
        }
        TlsMode::Mutual => {
            "does this Milvus accept the client certificate in `milvus.mtlsCertPath` (signed by \
             the CA it trusts)?"
        }
    };
    match e {
        MilvusError::NotMilvus { address, message } => MilvusError::NotMilvus {
            address,
            message: format!("{message} ({hint})"),
        },
        e => e,
    }
}

/// The TLS error in an error's chain (rustls's, which tokio-rustls hands on inside an
/// `io::Error`), if any.
fn tls_failure<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<rustls::Error>());
        if inner.is_some() {
            return inner;
        }
        cur = err.source();
    }
    None
}

/// What a TLS failure means for the profile: which key to look at.
fn explain_tls_failure(e: &rustls::Error, cfg: &MilvusConfig) -> String {
    use rustls::CertificateError as C;
    let name = if cfg.server_name.is_empty() {
        format!(
            "`{}` (`milvus.address`; `milvus.serverName` is not set)",
            cfg.address
        )
    } else {
        format!("`{}` (`milvus.serverName`)", cfg.server_name)
    };
    let what = match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            if cfg.ca_cert_path.is_empty() {
                "the server's certificate is not signed by a public CA: give its CA in \
                 `milvus.caCertPath`"
                    .to_string()
            } else {
                format!(
                    "the server's certificate is not signed by the CA in `milvus.caCertPath` \
                     (`{}`)",
                    cfg.ca_cert_path
                )
            }
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => {
            format!("the server's certificate is not valid for {name}")
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the server's certificate has expired".to_string()
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the server does not speak TLS: for a plain server set `milvus.tlsMode: 0`".to_string()
        }
        rustls::Error::AlertReceived(_) if cfg.tls_mode == TlsMode::Mutual => {
            "the server refused the handshake: does it accept the client certificate in \
             `milvus.mtlsCertPath`?"
                .to_string()
        }
        rustls::Error::AlertReceived(_) => {
            "the server refused the handshake: does it want mutual TLS (`milvus.tlsMode: 2` with \
             `milvus.mtlsCertPath` and `milvus.mtlsKeyPath`)?"
                .to_string()
        }
        _ => "the TLS handshake failed".to_string(),
    };
    format!("{what} ({e})")
}

/// Whether a transport error means nothing could be reached (as opposed to something that
/// answered in another protocol).
fn is_connect_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused
                    | TimedOut
                    | HostUnreachable
                    | NetworkUnreachable
                    | NotFound
                    | AddrNotAvailable
            ) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}
