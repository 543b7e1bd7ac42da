//! `create`: back up collections of a Milvus into its profile's backup store, in
//! milvus-backup's binlog format.
//!
//! Owns the flow: resolve which collections, record their DDL (schema, partitions, indexes, load
//! state and replica count, aliases, properties, and their databases' properties where the
//! server has `DescribeDatabase`), flush and wait, list the flushed segments and discover their insert and delta logs in
//! Milvus's storage, copy them into `<backupRootPath>/<name>/binlogs/...` with the copier, and
//! write the meta files. Does not own the copier, the meta format or the gRPC client.
//!
//! Crash safety: `backup_meta.json` is written last, so its presence means a complete backup. A
//! rerun with the same name over a partial backup (binlogs but no `backup_meta.json`) continues:
//! objects already copied are skipped by the copier, the meta is rebuilt.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::backup::{
    self, BackupInfo, BackupMeta, CollectionBackupInfo, CollectionReplicas, CollectionRows,
    FieldBinlog, MigrateMeta, ObjectDigest, PartitionBackupInfo, SegmentBackupInfo,
};
use crate::config::{Profile, TransferMode, TransferOptions};
use crate::copy::{self, CopyJob, CopyObserver, CopyReport};
use crate::error::Error;
use crate::milvus::proto::{common, milvus as pb};
use crate::milvus::{ClientOptions, MilvusClient, MilvusError, convert, gc::GcPause};
use crate::storage::layout;
use crate::storage::{ObjectInfo, Store};
use crate::transfer::{RunContext, Session};

/// Errors of `create` that are not errors of a store or of Milvus.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The backup name breaks milvus-backup's rules.
    #[error("{0}")]
    InvalidName(String),
    /// A complete backup of that name exists.
    #[error("backup `{name}` already exists in {location}; choose another name or delete it")]
    Exists { name: String, location: String },
    /// A selected collection does not exist.
    #[error("collection `{collection}` not found in database `{db}` of Milvus at {address}")]
    CollectionNotFound {
        db: String,
        collection: String,
        address: String,
    },
    /// A selected database does not exist.
    #[error("database `{db}` not found on Milvus at {address} (databases: {available})")]
    DatabaseNotFound {
        db: String,
        address: String,
        available: String,
    },
    /// An unknown `--strategy`.
    #[error(
        "unknown --strategy `{0}`: use auto, meta_only, skip_flush, bulk_flush or serial_flush"
    )]
    BadStrategy(String),
    /// A strategy the source cannot run.
    #[error(
        "--strategy {strategy} is not supported on Milvus {version} (its FlushAll protocol is \
         not built); use serial_flush or skip_flush"
    )]
    StrategyUnsupported {
        strategy: FlushStrategy,
        version: String,
    },
    /// A selector is malformed.
    #[error("invalid collection selector `{0}`: use `coll`, `db.coll` or `db.*`")]
    BadSelector(String),
    /// Nothing selected.
    #[error("Milvus at {address} has no collections to back up")]
    NothingToBackUp { address: String },
    /// A step on one collection failed in Milvus.
    #[error("{step} of collection `{db}.{collection}`: {source}")]
    Milvus {
        step: &'static str,
        db: String,
        collection: String,
        #[source]
        source: Box<MilvusError>,
    },
    /// Flush did not finish in time.
    #[error("collection `{db}.{collection}`: flush not finished after {secs} s")]
    FlushTimeout {
        db: String,
        collection: String,
        secs: u64,
    },
    /// A segment's files are inconsistent in storage.
    #[error("collection `{db}.{collection}`, segment {segment}: {problem}")]
    Segment {
        db: String,
        collection: String,
        segment: i64,
        problem: String,
    },
    /// Some binlogs could not be copied.
    #[error(
        "{failed} of {total} binlog object(s) could not be copied (first: `{example}`: {reason}); \
         run the same command again to resume"
    )]
    Incomplete {
        failed: u64,
        total: u64,
        example: String,
        reason: String,
    },
}

/// How `create` makes the data durable before listing segments: milvus-backup's `--strategy`,
/// with its names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushStrategy {
    /// Chosen by the server's version (see [`FlushStrategy::effective`]).
    #[default]
    Auto,
    /// Schemas, partitions, indexes and load state only: no flush, no segments, no binlogs.
    MetaOnly,
    /// No flush: the segments already flushed are backed up; rows still in growing segments
    /// are not (for a source that takes no writes, or whose last writes were flushed).
    SkipFlush,
    /// One `FlushAll` per database, then the segments of every collection.
    BulkFlush,
    /// `Flush` and wait, collection by collection (what `create` always did).
    SerialFlush,
}

impl std::str::FromStr for FlushStrategy {
    type Err = CreateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().replace('-', "_").as_str() {
            "" | "auto" => Ok(FlushStrategy::Auto),
            "meta_only" => Ok(FlushStrategy::MetaOnly),
            "skip_flush" => Ok(FlushStrategy::SkipFlush),
            "bulk_flush" => Ok(FlushStrategy::BulkFlush),
            "serial_flush" => Ok(FlushStrategy::SerialFlush),
            _ => Err(CreateError::BadStrategy(s.to_string())),
        }
    }
}

impl std::fmt::Display for FlushStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FlushStrategy::Auto => "auto",
            FlushStrategy::MetaOnly => "meta_only",
            FlushStrategy::SkipFlush => "skip_flush",
            FlushStrategy::BulkFlush => "bulk_flush",
            FlushStrategy::SerialFlush => "serial_flush",
        })
    }
}

impl FlushStrategy {
    /// The strategy used on a server: `auto` is `serial_flush` (milvus-backup picks
    /// `bulk_flush` from 2.6.11, where `FlushAll` answers with per-channel messages this tool
    /// does not read: see docs/versions-protocol.md). `bulk_flush` is refused from 2.6.11 on
    /// for the same reason.
    ///
    /// # Errors
    /// [`CreateError::StrategyUnsupported`].
    pub fn effective(self, version: &crate::milvus::ServerVersion) -> Result<Self, CreateError> {
        match self {
            FlushStrategy::Auto => Ok(FlushStrategy::SerialFlush),
            FlushStrategy::BulkFlush if version.at_least(2, 6, 11) => {
                Err(CreateError::StrategyUnsupported {
                    strategy: self,
                    version: version.raw.clone(),
                })
            }
            s => Ok(s),
        }
    }

    /// Whether segments and binlogs are backed up.
    pub fn has_data(self) -> bool {
        self != FlushStrategy::MetaOnly
    }
}

/// Which collections: `coll` (database `default`), `db.coll`, or `db.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// One collection.
    Collection { db: String, name: String },
    /// Every collection of a database.
    Database(String),
}

impl Selector {
    /// The selectors of `-c` values and `-d` databases.
    ///
    /// # Errors
    /// [`CreateError::BadSelector`] for the first bad `-c` value.
    pub fn parse_all(
        collections: &[String],
        databases: &[String],
    ) -> Result<Vec<Selector>, CreateError> {
        let mut out = Vec::new();
        for c in collections {
            out.push(Selector::parse(c)?);
        }
        out.extend(databases.iter().cloned().map(Selector::Database));
        Ok(out)
    }

    /// Parses one `-c` value.
    ///
    /// # Errors
    /// [`CreateError::BadSelector`].
    pub fn parse(s: &str) -> Result<Selector, CreateError> {
        let bad = || CreateError::BadSelector(s.to_string());
        let s = s.trim();
        match s.split_once('.') {
            None if !s.is_empty() => Ok(Selector::Collection {
                db: "default".into(),
                name: s.into(),
            }),
            Some((db, "*")) if !db.is_empty() => Ok(Selector::Database(db.into())),
            Some((db, name)) if !db.is_empty() && !name.is_empty() && !name.contains('.') => {
                Ok(Selector::Collection {
                    db: db.into(),
                    name: name.into(),
                })
            }
            _ => Err(bad()),
        }
    }
}

/// A `create` request.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// The profile of the Milvus to back up; the backup goes to its backup store.
    pub profile: Profile,
    /// Backup name.
    pub name: String,
    /// Collections; empty means every collection of every database.
    pub selectors: Vec<Selector>,
    /// How the data is made durable first (milvus-backup's `--strategy`).
    pub strategy: FlushStrategy,
    /// Also record users, roles, grants and role bindings in `rbac_meta` (`--rbac`).
    pub rbac: bool,
    /// Record every database of the instance, also those without collections, as a backup
    /// without selectors does, while `selectors` pin the collections (`migrate --all` names
    /// the collections it resolved once).
    pub every_database: bool,
    /// Copier settings over the profile's.
    pub overrides: TransferOptions,
    /// Where the copy ledger lives; `None` disables cross-run part resume.
    pub state_dir: Option<PathBuf>,
    /// Shared limit and cancel signal.
    pub context: RunContext,
}

/// What was backed up of one collection.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionSummary {
    /// Database.
    pub db_name: String,
    /// Collection.
    pub collection_name: String,
    /// Partitions.
    pub partitions: usize,
    /// Flushed segments backed up.
    pub segments: usize,
    /// Binlog objects.
    pub objects: usize,
    /// Bytes of binlogs.
    pub bytes: u64,
    /// Rows in the segments (before deletes).
    pub segment_rows: u64,
    /// `count(*)` at backup time, when the collection was loaded.
    pub rows: Option<u64>,
}

/// The result of `create`.
#[derive(Debug, Clone, Serialize)]
pub struct CreateReport {
    /// Backup name.
    pub name: String,
    /// Where it is: store and directory.
    pub location: String,
    /// The source Milvus version.
    pub milvus_version: String,
    /// The flush strategy used (`auto` resolved by the version).
    pub strategy: FlushStrategy,
    /// Users, roles and grants recorded (`--rbac`).
    pub rbac: Option<crate::rbac::RbacCounts>,
    /// Per collection.
    pub collections: Vec<CollectionSummary>,
    /// The binlog copy.
    pub copy: CopyReport,
    /// Seconds spent flushing and discovering segments.
    pub prepare_secs: f64,
    /// Wall time.
    pub duration_secs: f64,
}

/// One collection's discovered state.
struct Discovered {
    info: CollectionBackupInfo,
    rows: Option<CollectionRows>,
    replicas: Option<CollectionReplicas>,
    objects: Vec<(String, ObjectInfo)>,
    summary: CollectionSummary,
}

/// Runs `create`.
///
/// # Errors
/// [`Error`]: invalid name, existing backup, unknown collections, Milvus or store failures
/// (each naming the step, collection and server), or binlogs that could not be copied.
pub async fn create(
    req: CreateRequest,
    observer: Arc<dyn CopyObserver>,
) -> Result<CreateReport, Error> {
    let started = Instant::now();
    layout::validate_backup_name(&req.name).map_err(CreateError::InvalidName)?;
    let profile = &req.profile;
    let config = profile.transfer(&req.overrides)?;
    let allow_server_side = config.mode != TransferMode::Streaming;
    let session = Session::with_context(config, req.context.clone());
    let milvus_store = session.open(&profile.milvus_storage)?;
    let backup_store = session.open_to_write(&profile.backup_storage).await?;
    let backup_dir = layout::backup_dir(&profile.backup_storage.root_path, &req.name);
    let location = format!("{} {backup_dir}/", backup_store.name());

    if session.backup_complete(&backup_store, &backup_dir).await? {
        return Err(CreateError::Exists {
            name: req.name.clone(),
            location,
        }
        .into());
    }

    observer.step(&format!(
        "connecting to Milvus at {}",
        profile.milvus.address
    ));
    let client = MilvusClient::connect(&profile.milvus, ClientOptions::default()).await?;
    let targets = resolve(&client, &req.selectors).await?;
    let strategy = req.strategy.effective(client.version())?;
    observer.step(&format!(
        "backing up {} collection(s) from Milvus {} at {}",
        targets.len(),
        client.version(),
        client.address()
    ));

    let gc = if profile.pause_gc {
        match GcPause::start(&profile.milvus.management_endpoint).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("{e}; backing up without the pause");
                None
            }
        }
    } else {
        None
    };
    let rbac = if req.rbac {
        observer.step("reading users, roles and grants");
        Some(crate::rbac::read(&client).await?)
    } else {
        None
    };
    let rbac_counts = rbac.as_ref().map(crate::rbac::RbacCounts::of);
    let all_databases = if req.selectors.is_empty() || req.every_database {
        client.list_databases().await?
    } else {
        Vec::new()
    };
    let result = back_up(
        &req,
        strategy,
        rbac,
        &all_databases,
        &client,
        &targets,
        &session,
        (&milvus_store, &backup_store),
        &backup_dir,
        allow_server_side,
        &observer,
    )
    .await;
    if let Some(gc) = gc {
        gc.resume().await;
    }
    let (collections, copy, prepare_secs) = result?;
    Ok(CreateReport {
        name: req.name,
        location,
        milvus_version: client.version().raw.clone(),
        strategy,
        rbac: rbac_counts,
        collections,
        copy,
        prepare_secs,
        duration_secs: started.elapsed().as_secs_f64(),
    })
}

#[allow(clippy::too_many_arguments)]
async fn back_up(
    req: &CreateRequest,
    strategy: FlushStrategy,
    rbac: Option<backup::RbacMeta>,
    all_databases: &[String],
    client: &MilvusClient,
    targets: &[(String, String)],
    session: &Session,
    (milvus_store, backup_store): (&Store, &Store),
    backup_dir: &str,
    allow_server_side: bool,
    observer: &Arc<dyn CopyObserver>,
) -> Result<(Vec<CollectionSummary>, CopyReport, f64), Error> {
    let prepare = Instant::now();
    let root = req.profile.milvus_storage.root_path.clone();
    let parallel = req.profile.parallelism.backup_collections.max(1);
    if strategy == FlushStrategy::BulkFlush {
        bulk_flush(client, targets, observer.as_ref(), &req.context).await?;
    }
    let discovered: Vec<Discovered> = futures::stream::iter(targets.iter().cloned())
        .map(|(db, name)| {
            let c = client.with_db(&db);
            let root = root.clone();
            let observer = Arc::clone(observer);
            async move {
                observer.step(&format!(
                    "{} `{db}.{name}`",
                    match strategy {
                        FlushStrategy::SerialFlush => "flushing and listing",
                        FlushStrategy::MetaOnly => "describing",
                        _ => "listing",
                    }
                ));
                discover(&c, &db, &name, strategy, milvus_store, &root, &req.context).await
            }
        })
        .buffered(parallel)
        .try_collect()
        .await?;
    let prepare_secs = prepare.elapsed().as_secs_f64();

    let objects: Vec<(String, ObjectInfo)> = discovered
        .iter()
        .flat_map(|d| d.objects.iter().cloned())
        .collect();
    observer.step(&format!(
        "copying {} binlog object(s) to {} {backup_dir}/",
        objects.len(),
        backup_store.name()
    ));
    let mut job = CopyJob::prefix(
        milvus_store.clone(),
        &root,
        backup_store.clone(),
        backup_dir,
    );
    job.allow_server_side = allow_server_side;
    job.objects = Some(objects);
    // No complete backup of this name exists (checked first): whatever is under its directory
    // is a partial run's, to be completed and cleaned of stale objects.
    job.overwrite = true;
    if let Some(dir) = &req.state_dir {
        job.ledger = Some(copy::ledger_path(dir, &job));
    }
    let report = copy::run(
        job,
        session.copy_config(),
        session.limits(),
        Arc::clone(observer),
    )
    .await?;
    if let Some(f) = report.failures.first() {
        return Err(CreateError::Incomplete {
            failed: report.objects_failed,
            total: report.objects_total,
            example: f.key.clone(),
            reason: f.error.clone(),
        }
        .into());
    }

    observer.step("writing the backup meta");
    let mut info = BackupInfo {
        id: backup_id(),
        name: req.name.clone(),
        milvus_version: client.version().raw.clone(),
        collection_backups: discovered.iter().map(|d| d.info.clone()).collect(),
        database_backups: database_backups(client, targets, all_databases).await?,
        rbac_meta: rbac,
        ..Default::default()
    };
    info.recompute_sizes();
    let mut ours = MigrateMeta {
        row_counts: discovered.iter().filter_map(|d| d.rows.clone()).collect(),
        replicas: discovered
            .iter()
            .filter_map(|d| d.replicas.clone())
            .collect(),
        ..Default::default()
    };
    // Checksums: the ETags the destination holds now, each verified by the copier against the
    // MD5 it computed. Stores whose listings carry no ETags are asked by HEAD.
    let retry = session.copy_config().retry;
    let listed = retry
        .run(|_| backup_store.list(backup_dir), |_, _| {})
        .await?;
    let prefix = format!("{backup_dir}/");
    let binlogs: Vec<ObjectInfo> = listed
        .into_iter()
        .filter(|o| {
            o.key
                .strip_prefix(&prefix)
                .is_some_and(|rel| rel.starts_with("binlogs/"))
        })
        .collect();
    let digests: Vec<ObjectInfo> = futures::stream::iter(binlogs)
        .map(|o| async move {
            match o.etag {
                Some(_) => Ok(o),
                None => retry.run(|_| backup_store.head(&o.key), |_, _| {}).await,
            }
        })
        .buffer_unordered(session.copy_config().concurrency.max(1))
        .try_collect()
        .await?;
    for o in digests {
        ours.objects.insert(
            o.key[prefix.len()..].to_string(),
            ObjectDigest {
                size: o.size,
                md5: o.etag.unwrap_or_default(),
            },
        );
    }
    write_meta(session, backup_store, backup_dir, &info, &ours).await?;
    Ok((
        discovered.into_iter().map(|d| d.summary).collect(),
        report,
        prepare_secs,
    ))
}

/// Writes `milvus_migrate.json` and milvus-backup's five files, `backup_meta.json` last: its
/// presence is what makes the backup complete, for us and for milvus-backup's `list`.
async fn write_meta(
    session: &Session,
    store: &Store,
    backup_dir: &str,
    info: &BackupInfo,
    ours: &MigrateMeta,
) -> Result<(), Error> {
    let mut files: Vec<(String, Vec<u8>)> =
        vec![(backup::layout::migrate_meta_key(backup_dir), ours.to_vec()?)];
    let mut backup_meta = None;
    for (file, bytes) in BackupMeta::write_files(info)? {
        let key = backup::layout::meta_key(backup_dir, file);
        if file == backup::MetaFile::Backup {
            backup_meta = Some((key, bytes));
        } else {
            files.push((key, bytes));
        }
    }
    files.extend(backup_meta);
    let retry = session.copy_config().retry;
    for (key, bytes) in files {
        let payload = bytes::Bytes::from(bytes);
        retry
            .run(|_| store.put(&key, payload.clone().into()), |_, _| {})
            .await?;
    }
    Ok(())
}

/// The databases a backup records, with their properties where the server can describe them
/// (`DescribeDatabase`, 2.4.3+; older servers have no database properties to record): those of
/// the collections, and with a whole-instance backup (no selectors) every database, also those
/// without collections, so a restore creates them.
async fn database_backups(
    client: &MilvusClient,
    targets: &[(String, String)],
    all: &[String],
) -> Result<Vec<backup::DatabaseBackupInfo>, Error> {
    let mut dbs: Vec<&str> = targets
        .iter()
        .map(|(db, _)| db.as_str())
        .chain(all.iter().map(String::as_str))
        .collect();
    dbs.sort_unstable();
    dbs.dedup();
    let mut out = Vec::with_capacity(dbs.len());
    for db in dbs {
        let properties = client
            .database_properties(db)
            .await
            .map_err(|source| CreateError::Milvus {
                step: "DescribeDatabase",
                db: db.to_string(),
                collection: "*".into(),
                source: Box::new(source),
            })?
            .unwrap_or_default();
        out.push(backup::DatabaseBackupInfo {
            db_name: db.to_string(),
            properties: convert::kv_to_meta(&properties),
            ..Default::default()
        });
    }
    Ok(out)
}

/// A backup id in the shape milvus-backup uses: a random (version 4) UUID.
fn backup_id() -> String {
    let x = format!("{:032x}", rand::random::<u128>());
    format!(
        "{}-{}-4{}-a{}-{}",
        &x[0..8],
        &x[8..12],
        &x[13..16],
        &x[17..20],
        &x[20..32]
    )
}

/// The (database, collection) pairs the selectors name, checked to exist, in a stable order.
///
/// # Errors
/// Unknown databases or collections, Milvus failures.
pub async fn resolve(
    client: &MilvusClient,
    selectors: &[Selector],
) -> Result<Vec<(String, String)>, Error> {
    let dbs = client.list_databases().await?;
    let mut out: Vec<(String, String)> = Vec::new();
    let check_db = |db: &str| -> Result<(), Error> {
        if dbs.iter().any(|d| d == db) {
            Ok(())
        } else {
            Err(CreateError::DatabaseNotFound {
                db: db.to_string(),
                address: client.address().to_string(),
                available: dbs.join(", "),
            }
            .into())
        }
    };
    if selectors.is_empty() {
        for db in &dbs {
            for name in client.with_db(db).show_collections().await? {
                out.push((db.clone(), name));
            }
        }
        if out.is_empty() {
            return Err(CreateError::NothingToBackUp {
                address: client.address().to_string(),
            }
            .into());
        }
    }
    for sel in selectors {
        match sel {
            Selector::Database(db) => {
                check_db(db)?;
                for name in client.with_db(db).show_collections().await? {
                    out.push((db.clone(), name));
                }
            }
            Selector::Collection { db, name } => {
                check_db(db)?;
                if !client.with_db(db).has_collection(name).await? {
                    return Err(CreateError::CollectionNotFound {
                        db: db.clone(),
                        collection: name.clone(),
                        address: client.address().to_string(),
                    }
                    .into());
                }
                out.push((db.clone(), name.clone()));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|t| seen.insert(t.clone()));
    Ok(out)
}

/// How long to wait for a flush before giving up.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1800);

/// `bulk_flush`: one `FlushAll` per database of the targets, then waits until each is flushed.
async fn bulk_flush(
    client: &MilvusClient,
    targets: &[(String, String)],
    observer: &dyn CopyObserver,
    context: &RunContext,
) -> Result<(), Error> {
    let mut dbs: Vec<&str> = targets.iter().map(|(db, _)| db.as_str()).collect();
    dbs.sort_unstable();
    dbs.dedup();
    for db in dbs {
        observer.step(&format!("flushing every collection of database `{db}`"));
        let c = client.with_db(db);
        let step = |step: &'static str| {
            move |source: MilvusError| CreateError::Milvus {
                step,
                db: db.to_string(),
                collection: "*".into(),
                source: Box::new(source),
            }
        };
        let ts = c.flush_all().await.map_err(step("FlushAll"))?;
        let waited = Instant::now();
        while !c
            .flush_all_state(ts)
            .await
            .map_err(step("GetFlushAllState"))?
        {
            if waited.elapsed() > FLUSH_TIMEOUT {
                return Err(CreateError::FlushTimeout {
                    db: db.into(),
                    collection: "*".into(),
                    secs: FLUSH_TIMEOUT.as_secs(),
                }
                .into());
            }
            context.pause(Duration::from_millis(500)).await?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn discover(
    c: &MilvusClient,
    db: &str,
    name: &str,
    strategy: FlushStrategy,
    store: &Store,
    root: &str,
    context: &RunContext,
) -> Result<Discovered, Error> {
    let step = |step: &'static str| {
        move |source: MilvusError| CreateError::Milvus {
            step,
            db: db.to_string(),
            collection: name.to_string(),
            source: Box::new(source),
        }
    };
    let desc = c
        .describe_collection(name)
        .await
        .map_err(step("DescribeCollection"))?;
    let indexes = c
        .describe_index(name)
        .await
        .map_err(step("DescribeIndex"))?;
    let partitions = c
        .show_partitions(name)
        .await
        .map_err(step("ShowPartitions"))?;
    let progress = c
        .loading_progress(name)
        .await
        .map_err(step("GetLoadingProgress"))?;
    let load_state = match progress {
        100 => "Loaded",
        0 => "NotLoad",
        _ => "Loading",
    };
    // A collection loaded by some partitions only says 100 %: each partition's own state is
    // recorded, so a restore loads the same ones, and only loaded partitions are counted.
    let partition_states: Vec<&str> = if load_state == "NotLoad" {
        vec!["NotLoad"; partitions.len()]
    } else {
        let names: Vec<String> = partitions.iter().map(|(n, _)| n.clone()).collect();
        c.partition_load_states(name, &names)
            .await
            .map_err(step("GetLoadState"))?
            .into_iter()
            .map(|s| match s {
                common::LoadState::Loaded => "Loaded",
                common::LoadState::Loading => "Loading",
                _ => "NotLoad",
            })
            .collect()
    };

    let mut seal_time = 0;
    if strategy == FlushStrategy::SerialFlush {
        let flushed = c.flush(name).await.map_err(step("Flush"))?;
        seal_time = flushed.seal_time;
        let waited = Instant::now();
        while !c
            .flush_state(name, &flushed)
            .await
            .map_err(step("GetFlushState"))?
        {
            if waited.elapsed() > FLUSH_TIMEOUT {
                return Err(CreateError::FlushTimeout {
                    db: db.into(),
                    collection: name.into(),
                    secs: FLUSH_TIMEOUT.as_secs(),
                }
                .into());
            }
            context.pause(Duration::from_millis(500)).await?;
        }
    }

    // Compaction can make a listed segment vanish for a moment: retry as milvus-backup does.
    let mut attempts = 0;
    let segments = loop {
        if !strategy.has_data() {
            break Vec::new();
        }
        match c.persistent_segments(name).await {
            Ok(s) => break s,
            Err(e) if e.is_segment_not_found() && attempts < 50 => {
                attempts += 1;
                context.pause(Duration::from_secs(1)).await?;
            }
            Err(e) => return Err(step("GetPersistentSegmentInfo")(e).into()),
        }
    };
    let segments: Vec<pb::PersistentSegmentInfo> = segments
        .into_iter()
        .filter(|s| s.state == common::SegmentState::Flushed as i32)
        .collect();

    // Row counts at backup time, when the collection can be queried (a meta-only backup holds
    // no rows; without a flush the count would include rows the backup does not hold).
    let rows = if load_state == "Loaded"
        && matches!(
            strategy,
            FlushStrategy::SerialFlush | FlushStrategy::BulkFlush
        ) {
        let mut per = BTreeMap::new();
        // Partition-key collections refuse queries naming partitions: the total only.
        let partition_key = desc
            .schema
            .as_ref()
            .is_some_and(|s| s.fields.iter().any(|f| f.is_partition_key));
        let loaded = partitions
            .iter()
            .zip(&partition_states)
            .filter(|(_, s)| **s == "Loaded")
            .map(|(p, _)| p);
        for (p, _) in loaded.filter(|_| !partition_key) {
            let n = c
                .count(name, std::slice::from_ref(p))
                .await
                .map_err(step("Query count(*)"))?;
            per.insert(p.clone(), n.max(0) as u64);
        }
        // Where counting reads every primary key (no count(*)), the partitions' counts add up
        // to the total: reading all keys a second time would buy nothing.
        let enumerates =
            crate::milvus::count_method(c.version()) == crate::milvus::CountMethod::EnumerateKeys;
        let total = if enumerates && !partition_key {
            per.values().sum()
        } else {
            c.count(name, &[])
                .await
                .map_err(step("Query count(*)"))?
                .max(0) as u64
        };
        Some(CollectionRows {
            db_name: db.to_string(),
            collection_name: name.to_string(),
            rows: total,
            partitions: per,
        })
    } else {
        None
    };

    let collection_id = desc.collection_id;
    let replicas = if load_state == "Loaded" {
        let n = c
            .replica_count(collection_id)
            .await
            .map_err(step("GetReplicas"))?;
        Some(CollectionReplicas {
            db_name: db.to_string(),
            collection_name: name.to_string(),
            replicas: u32::try_from(n).unwrap_or(u32::MAX),
        })
    } else {
        None
    };
    let mut by_partition: BTreeMap<i64, Vec<SegmentBackupInfo>> = BTreeMap::new();
    let mut l0_segments = Vec::new();
    let mut objects = Vec::new();
    let mut bytes = 0u64;
    for s in &segments {
        let (seg, objs) = segment_files(store, root, db, name, s).await?;
        for o in &objs {
            bytes += o.1.size;
        }
        objects.extend(objs);
        if seg.is_l0 && seg.partition_id == backup::ALL_PARTITIONS {
            l0_segments.push(seg);
        } else {
            by_partition.entry(seg.partition_id).or_default().push(seg);
        }
    }
    let segment_rows: u64 = segments.iter().map(|s| s.num_rows.max(0) as u64).sum();
    let partition_backups: Vec<PartitionBackupInfo> = partitions
        .iter()
        .zip(&partition_states)
        .map(|((pname, pid), state)| PartitionBackupInfo {
            partition_id: *pid,
            partition_name: pname.clone(),
            collection_id,
            segment_backups: by_partition.remove(pid).unwrap_or_default(),
            load_state: (*state).to_string(),
            ..Default::default()
        })
        .collect();
    if let Some((pid, segs)) = by_partition.into_iter().next() {
        return Err(CreateError::Segment {
            db: db.into(),
            collection: name.into(),
            segment: segs[0].segment_id,
            problem: format!("it belongs to partition {pid}, which ShowPartitions does not list"),
        }
        .into());
    }

    let schema = desc.schema.as_ref().map(convert::schema_to_meta);
    let info = CollectionBackupInfo {
        id: String::new(),
        collection_id,
        db_name: db.to_string(),
        collection_name: name.to_string(),
        schema,
        shards_num: desc.shards_num,
        consistency_level: backup::ConsistencyLevel(desc.consistency_level),
        partition_backups,
        l0_segments,
        backup_physical_timestamp: seal_time.max(0) as u64,
        has_index: !indexes.is_empty(),
        index_infos: indexes.iter().map(index_info).collect(),
        load_state: load_state.to_string(),
        properties: convert::kv_to_meta(&desc.properties),
        created_timestamp: desc.created_timestamp,
        virtual_channel_names: desc.virtual_channel_names.clone(),
        physical_channel_names: desc.physical_channel_names.clone(),
        aliases: desc.aliases.clone(),
        ..Default::default()
    };
    let summary = CollectionSummary {
        db_name: db.to_string(),
        collection_name: name.to_string(),
        partitions: partitions.len(),
        segments: segments.len(),
        objects: objects.len(),
        bytes,
        segment_rows,
        rows: rows.as_ref().map(|r| r.rows),
    };
    Ok(Discovered {
        info,
        rows,
        replicas,
        objects,
        summary,
    })
}

fn index_info(d: &pb::IndexDescription) -> backup::IndexInfo {
    let params: BTreeMap<String, String> = d
        .params
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    backup::IndexInfo {
        field_name: d.field_name.clone(),
        index_name: d.index_name.clone(),
        index_type: params.get("index_type").cloned().unwrap_or_default(),
        params,
        index_id: d.index_id,
        ..Default::default()
    }
}

/// Lists one segment's insert and delta logs in Milvus's storage and builds its meta entry and
/// its objects (key relative to the backup directory, source object).
async fn segment_files(
    store: &Store,
    root: &str,
    db: &str,
    collection: &str,
    s: &pb::PersistentSegmentInfo,
) -> Result<(SegmentBackupInfo, Vec<(String, ObjectInfo)>), Error> {
    let ids = [
        s.collection_id.to_string(),
        s.partition_id.to_string(),
        s.segment_id.to_string(),
    ];
    let insert_dir = layout::join(&[root, "insert_log", &ids[0], &ids[1], &ids[2]]);
    let delta_dir = layout::join(&[root, "delta_log", &ids[0], &ids[1], &ids[2]]);
    let problem = |problem: String| -> Error {
        CreateError::Segment {
            db: db.into(),
            collection: collection.into(),
            segment: s.segment_id,
            problem,
        }
        .into()
    };
    let is_l0 = s.level == common::SegmentLevel::L0 as i32;
    crate::milvus::protocol::segment_backupable(s.storage_version).map_err(problem)?;
    let insert = store.list(&insert_dir).await?;
    let delta = store.list(&delta_dir).await?;

    // Insert logs by field: <insert_dir>/<field>/<log>.
    let mut fields: BTreeMap<i64, Vec<(i64, ObjectInfo)>> = BTreeMap::new();
    for o in insert {
        let rel = &o.key[insert_dir.len() + 1..];
        let parsed = rel
            .split_once('/')
            .and_then(|(f, l)| Some((f.parse::<i64>().ok()?, l.parse::<i64>().ok()?)));
        let Some((field, log)) = parsed else {
            return Err(problem(format!(
                "unexpected object `{}` in its insert logs",
                o.key
            )));
        };
        fields.entry(field).or_default().push((log, o));
    }
    if !is_l0 && fields.is_empty() {
        return Err(problem(format!(
            "no insert logs under `{insert_dir}/` (is minio.rootPath `{root}` Milvus's rootPath?)"
        )));
    }
    let counts: Vec<(i64, usize)> = fields.iter().map(|(f, v)| (*f, v.len())).collect();
    if counts.windows(2).any(|w| w[0].1 != w[1].1) {
        let detail: Vec<String> = counts
            .iter()
            .map(|(f, n)| format!("field {f}: {n}"))
            .collect();
        return Err(problem(format!(
            "fields have different numbers of insert logs ({}); orphaned files from a retried \
             upload or a running compaction; try again later",
            detail.join(", ")
        )));
    }

    let group = if s.partition_id == backup::ALL_PARTITIONS {
        0
    } else {
        s.segment_id
    };
    let mut seg = SegmentBackupInfo {
        segment_id: s.segment_id,
        collection_id: s.collection_id,
        partition_id: s.partition_id,
        num_of_rows: s.num_rows,
        group_id: group,
        is_l0,
        storage_version: s.storage_version,
        ..Default::default()
    };
    let loc = backup::SegmentLocation::of(&seg);
    let mut objects = Vec::new();
    for (field, mut logs) in fields {
        logs.sort_by_key(|(id, _)| *id);
        let mut fb = FieldBinlog {
            field_id: field,
            binlogs: Vec::new(),
        };
        for (log, o) in logs {
            let key = loc.insert_log_key("", field, &log.to_string());
            fb.binlogs.push(backup::Binlog {
                log_path: o.key.clone(),
                log_size: o.size as i64,
                log_id: log,
                ..Default::default()
            });
            objects.push((key, o));
        }
        seg.binlogs.push(fb);
    }
    let mut deltas = FieldBinlog::default();
    let mut delta: Vec<ObjectInfo> = delta;
    delta.sort_by(|a, b| a.key.cmp(&b.key));
    for o in delta {
        let rel = &o.key[delta_dir.len() + 1..];
        let Ok(log) = rel.parse::<i64>() else {
            return Err(problem(format!(
                "unexpected object `{}` in its delta logs",
                o.key
            )));
        };
        deltas.binlogs.push(backup::Binlog {
            log_path: o.key.clone(),
            log_size: o.size as i64,
            log_id: log,
            ..Default::default()
        });
        objects.push((loc.delta_log_key("", &log.to_string()), o));
    }
    if !deltas.binlogs.is_empty() {
        seg.deltalogs.push(deltas);
    }
    seg.size = seg.logs_size();
    Ok((seg, objects))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        assert_eq!(
            Selector::parse("coll").unwrap(),
            Selector::Collection {
                db: "default".into(),
                name: "coll".into()
            }
        );
        assert_eq!(
            Selector::parse("db1.c").unwrap(),
            Selector::Collection {
                db: "db1".into(),
                name: "c".into()
            }
        );
        assert_eq!(
            Selector::parse("db1.*").unwrap(),
            Selector::Database("db1".into())
        );
        assert!(Selector::parse("").is_err());
        assert!(Selector::parse(".c").is_err());
        assert!(Selector::parse("a.b.c").is_err());
    }

    #[test]
    fn strategies_parse_by_milvus_backup_names_and_auto_follows_the_version() {
        use crate::milvus::ServerVersion;
        for (text, want) in [
            ("", FlushStrategy::Auto),
            ("auto", FlushStrategy::Auto),
            ("meta_only", FlushStrategy::MetaOnly),
            ("skip_flush", FlushStrategy::SkipFlush),
            ("skip-flush", FlushStrategy::SkipFlush),
            ("bulk_flush", FlushStrategy::BulkFlush),
            ("serial_flush", FlushStrategy::SerialFlush),
        ] {
            let got: FlushStrategy = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
            if !text.is_empty() {
                assert_eq!(got.to_string(), text.replace('-', "_"));
            }
        }
        let err = "flush".parse::<FlushStrategy>().unwrap_err().to_string();
        assert!(
            err.contains("`flush`") && err.contains("serial_flush"),
            "{err}"
        );

        let v23 = ServerVersion::parse("v2.3.5");
        let v26 = ServerVersion::parse("v2.6.11");
        assert_eq!(
            FlushStrategy::Auto.effective(&v23).unwrap(),
            FlushStrategy::SerialFlush
        );
        assert_eq!(
            FlushStrategy::Auto.effective(&v26).unwrap(),
            FlushStrategy::SerialFlush
        );
        assert_eq!(
            FlushStrategy::BulkFlush.effective(&v23).unwrap(),
            FlushStrategy::BulkFlush
        );
        let err = FlushStrategy::BulkFlush
            .effective(&v26)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bulk_flush") && err.contains("2.6.11"),
            "{err}"
        );
        assert_eq!(
            FlushStrategy::SkipFlush.effective(&v26).unwrap(),
            FlushStrategy::SkipFlush
        );
        assert!(!FlushStrategy::MetaOnly.has_data());
        assert!(FlushStrategy::SkipFlush.has_data());
    }

    #[test]
    fn backup_ids_look_like_uuids() {
        let id = backup_id();
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(backup_id(), id);
    }
}
