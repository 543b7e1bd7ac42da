//! `restore`: recreate backed-up collections in a Milvus and bulk-import their binlogs.
//!
//! Owns the flow: read the backup's meta, map names (`--suffix`, `--rename`), check the targets
//! before anything is written, create each collection with the source's field IDs, stage the
//! binlogs into the target Milvus's own bucket when the backup lives elsewhere, import them in
//! backup mode segment by segment (each as soon as it is staged: [`pipeline`]), optionally
//! rebuild indexes and load (with the source's replica count), verify row counts, and
//! recreate the source's aliases (the metadata rules: [`meta`]).
//! On failure the partial collection is dropped (unless asked to keep it) and staged files are
//! removed, so a rerun starts clean. Does not own the copier, the meta format or the client.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backup::{
    self, BackupInfo, BackupMeta, CollectionBackupInfo, MetaFile, MigrateMeta, SegmentBackupInfo,
    SegmentLocation,
};
use crate::config::{Profile, StorageConfig, StorageType, TransferMode, TransferOptions};
use crate::copy::{self, CopyJob, CopyObserver, CopyReport, SourceGate};
use crate::create::Selector;
use crate::error::Error;
use crate::milvus::proto::{common, milvus as pb};
use crate::milvus::{ClientOptions, MilvusClient, MilvusError};
use crate::storage::{ObjectInfo, StorageErrorKind, Store, layout};
use crate::transfer::{MissingBackup, RunContext, Session, missing_backup};

mod meta;
mod options;
mod pipeline;

pub use options::RestoreOptions;

/// Errors of `restore` that are not errors of a store, of Milvus or of the meta format.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The backup is not there, or not all of it.
    #[error(transparent)]
    Missing(#[from] Box<MissingBackup>),
    /// A meta file could not be read from the store.
    #[error("backup `{name}`: {source}")]
    Meta {
        name: String,
        #[source]
        source: backup::BackupError,
    },
    /// A `--rename` or `-c` value is malformed, or names nothing in the backup.
    #[error("{0}")]
    BadRequest(String),
    /// The target collection does not exist (`--skip-create-collection`).
    #[error(
        "collection `{db}.{collection}` does not exist on Milvus at {address}; \
         --skip-create-collection restores only into existing collections"
    )]
    TargetMissing {
        db: String,
        collection: String,
        address: String,
    },
    /// The target collection exists.
    #[error(
        "collection `{db}.{collection}` already exists on Milvus at {address}; use --drop-existing \
         to replace it or --suffix/--rename to restore under another name"
    )]
    TargetExists {
        db: String,
        collection: String,
        address: String,
    },
    /// The target cannot read what the backup holds.
    #[error("Milvus {version} at {address} cannot restore `{collection}`: {reason}")]
    Unsupported {
        address: String,
        version: String,
        collection: String,
        reason: String,
    },
    /// One step on one collection failed.
    #[error("restore of `{db}.{collection}` failed at {step}{}: {message}", segment.map(|s| format!(" (segment {s})")).unwrap_or_default())]
    Step {
        db: String,
        collection: String,
        step: &'static str,
        segment: Option<i64>,
        message: String,
        retryable: bool,
    },
    /// Row counts after the restore differ from the backup's.
    #[error(
        "restore of `{db}.{collection}`: {what} has {got} rows, the backup recorded {expected}"
    )]
    CountMismatch {
        db: String,
        collection: String,
        what: String,
        got: u64,
        expected: u64,
    },
}

/// How target names are derived from source names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Naming {
    /// Same database and name.
    #[default]
    Same,
    /// Same database, name plus a suffix (`-s _bak`).
    Suffix(String),
    /// Explicit mappings: `a:b`, `db1.a:db2.b`, `db1.*:db2.*`.
    Rename(Vec<(Selector, Selector)>),
}

impl Naming {
    /// The naming of `--suffix` or `--rename` values (the same names without either).
    ///
    /// # Errors
    /// See [`Naming::parse_rename`].
    pub fn from_flags(suffix: Option<&str>, rename: &[String]) -> Result<Naming, RestoreError> {
        match suffix {
            Some(s) => Ok(Naming::Suffix(s.to_string())),
            None if rename.is_empty() => Ok(Naming::Same),
            None => Naming::parse_rename(rename),
        }
    }

    /// Parses `--rename` values (comma-separated `from:to` pairs).
    ///
    /// # Errors
    /// [`RestoreError::BadRequest`] naming the bad pair.
    pub fn parse_rename(values: &[String]) -> Result<Naming, RestoreError> {
        let mut out = Vec::new();
        for v in values.iter().flat_map(|v| v.split(',')) {
            let bad = || {
                RestoreError::BadRequest(format!(
                    "invalid --rename `{v}`: use `old:new`, `db1.old:db2.new` or `db1.*:db2.*`"
                ))
            };
            let (from, to) = v.split_once(':').ok_or_else(bad)?;
            let from = Selector::parse(from).map_err(|_| bad())?;
            let to = Selector::parse(to).map_err(|_| bad())?;
            if matches!(from, Selector::Database(_)) != matches!(to, Selector::Database(_)) {
                return Err(bad());
            }
            out.push((from, to));
        }
        Ok(Naming::Rename(out))
    }

    /// The target (database, collection) of a source collection.
    pub fn target(&self, db: &str, name: &str) -> (String, String) {
        match self {
            Naming::Same => (db.into(), name.into()),
            Naming::Suffix(s) => (db.into(), format!("{name}{s}")),
            Naming::Rename(pairs) => {
                for (from, to) in pairs {
                    match (from, to) {
                        (
                            Selector::Collection {
                                db: fd,
                                name: fname,
                            },
                            Selector::Collection {
                                db: td,
                                name: tname,
                            },
                        ) if fd == db && fname == name => return (td.clone(), tname.clone()),
                        (Selector::Database(fd), Selector::Database(td)) if fd == db => {
                            return (td.clone(), name.into());
                        }
                        _ => {}
                    }
                }
                (db.into(), name.into())
            }
        }
    }
}

/// A `restore` request.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The target: its Milvus and that Milvus's storage (where binlogs are staged for import).
    pub profile: Profile,
    /// Where the backup lives (usually the profile's backup store).
    pub backup_storage: StorageConfig,
    /// Backup name.
    pub name: String,
    /// Source collections to restore; empty = all.
    pub selectors: Vec<Selector>,
    /// Target names.
    pub naming: Naming,
    /// Drop an existing target collection first.
    pub drop_existing: bool,
    /// Recreate the backed-up indexes and wait until they are built.
    pub rebuild_index: bool,
    /// Load the restored collections and wait for 100%.
    pub load: bool,
    /// Keep a partially restored collection on failure.
    pub keep_partial: bool,
    /// milvus-backup's options: meta only, into existing collections, drop or replace indexes.
    pub options: RestoreOptions,
    /// Stage every binlog before the first import instead of importing each segment as soon
    /// as it is staged (for comparison; the result is the same).
    pub sequential: bool,
    /// The backup is still being copied into `backup_storage` (a migration feeding the
    /// restore): its meta comes from here, and each binlog is read once the copy wrote it.
    pub upstream: Option<Upstream>,
    /// Copier settings over the profile's.
    pub overrides: TransferOptions,
    /// Where the copy ledger lives.
    pub state_dir: Option<PathBuf>,
    /// Shared limit and cancel signal.
    pub context: RunContext,
}

/// A backup that another copy is writing into the restore's backup store while the restore
/// runs (see [`RestoreRequest::upstream`]).
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The backup's meta, read where the copy reads it (the copy writes it last).
    pub backup: Arc<(BackupInfo, Option<MigrateMeta>)>,
    /// Opens each binlog once the copy has written it into the backup store.
    pub gate: Arc<dyn SourceGate>,
}

/// The backup's binlogs, relative to its directory, in the order a restore of all of its
/// collections stages and imports them: for the copy that feeds such a restore
/// ([`copy::CopyJob::order`]), so the first segments arrive whole first.
///
/// # Errors
/// A segment whose binlog keys cannot be derived from the meta.
pub fn consumption_order(info: &BackupInfo, backup_dir: &str) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for c in &info.collection_backups {
        for seg in import_order(c) {
            out.extend(
                backup::segment_objects(backup_dir, seg)?
                    .into_iter()
                    .map(|o| rel_key(backup_dir, &o.backup_key)),
            );
        }
    }
    Ok(out)
}

/// A collection's segments in the order they are staged and imported: data segments largest
/// first, then the delete-only (L0) segments. When the copy is the slow part, what is left
/// after its last byte is the import of the segment that arrived last, so that one is the
/// smallest; larger ones import while later ones are still on their way.
fn import_order(c: &CollectionBackupInfo) -> Vec<&SegmentBackupInfo> {
    let mut segments: Vec<&SegmentBackupInfo> = c.segments().collect();
    segments.sort_by_key(|s| (s.is_l0, std::cmp::Reverse(s.size)));
    segments
}

/// Each field whose ID on the target (`got`, by name) is not the one `wanted`, as a line for an
/// error; empty when all match.
fn field_id_differences<'a>(
    wanted: impl IntoIterator<Item = (&'a str, i64)>,
    got: &BTreeMap<String, i64>,
) -> Vec<String> {
    wanted
        .into_iter()
        .filter(|(name, id)| got.get(*name) != Some(id))
        .map(|(name, id)| {
            let here = got.get(name).map_or("missing".into(), |v| v.to_string());
            format!("`{name}` is {id} in the backup, {here} here")
        })
        .collect()
}

/// A binlog's key relative to the backup directory.
fn rel_key(backup_dir: &str, backup_key: &str) -> String {
    backup_key
        .strip_prefix(backup_dir)
        .and_then(|k| k.strip_prefix('/'))
        .unwrap_or(backup_key)
        .to_string()
}

/// What was restored of one collection.
#[derive(Debug, Clone, Serialize)]
pub struct RestoredCollection {
    /// Source database.
    pub source_db: String,
    /// Source collection.
    pub source_collection: String,
    /// Target database.
    pub db_name: String,
    /// Target collection.
    pub collection_name: String,
    /// Partitions.
    pub partitions: usize,
    /// Segments imported.
    pub segments: usize,
    /// Rows the import jobs reported.
    pub rows_imported: u64,
    /// `count(*)` after the restore (when loaded).
    pub rows: Option<u64>,
    /// `count(*)` at backup time, when recorded.
    pub expected_rows: Option<u64>,
    /// Whether `count(*)` was compared with the backup's count (collection and partitions).
    pub verified: bool,
    /// Binlogs staged into the target bucket (0 when imported in place).
    pub staged_objects: u64,
    /// Seconds from the start of staging to its end.
    pub stage_secs: f64,
    /// Seconds from the start of staging to the end of the last import (imports start while
    /// staging goes on, so this includes `stage_secs`).
    pub import_secs: f64,
    /// Seconds building indexes and loading.
    pub index_load_secs: f64,
    /// Aliases of the target on B (the source's that could be restored).
    pub aliases: Vec<String>,
    /// In-memory replicas it has once loaded (`None`: not loaded).
    pub replicas: Option<u32>,
    /// What of the source's metadata could not be restored, and why.
    pub notes: Vec<String>,
}

/// The result of `restore`.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// Backup name.
    pub name: String,
    /// Target Milvus version.
    pub milvus_version: String,
    /// Per collection.
    pub collections: Vec<RestoredCollection>,
    /// Databases of the backup without restored collections that were created (a whole
    /// instance restored: no `-c`).
    pub databases_created: Vec<String>,
    /// What `--rbac` added to the target's users, roles and grants.
    pub rbac: Option<crate::rbac::RbacReport>,
    /// Staging copies, summed.
    pub bytes_staged: u64,
    /// Wall time.
    pub duration_secs: f64,
}

/// Reads a backup's meta from a store: `full_meta.json`, else the level files; and our own
/// `milvus_migrate.json` when present.
///
/// # Errors
/// [`RestoreError::Missing`] (what is missing, or the backups there), [`RestoreError::Meta`] naming a
/// corrupt or missing file, or store errors.
pub async fn read_backup(
    store: &Store,
    root: &str,
    name: &str,
) -> Result<(BackupInfo, Option<MigrateMeta>), Error> {
    let dir = layout::backup_dir(root, name);
    let read = |file: String| async move {
        match store.read(&file).await {
            Ok(b) => Ok(Some(b.to_vec())),
            Err(e) if e.kind() == StorageErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::from(e)),
        }
    };
    let meta = |e: backup::BackupError| RestoreError::Meta {
        name: name.to_string(),
        source: e,
    };
    let info = match read(backup::layout::meta_key(&dir, MetaFile::Full)).await? {
        Some(full) => BackupMeta::from_full(&full).map_err(meta)?,
        None => {
            let Some(top) = read(backup::layout::meta_key(&dir, MetaFile::Backup)).await? else {
                return Err(
                    RestoreError::from(missing_backup(store, root, name, &dir).await).into(),
                );
            };
            let c = read(backup::layout::meta_key(&dir, MetaFile::Collection)).await?;
            let p = read(backup::layout::meta_key(&dir, MetaFile::Partition)).await?;
            let s = read(backup::layout::meta_key(&dir, MetaFile::Segment)).await?;
            BackupMeta::from_levels(&top, c.as_deref(), p.as_deref(), s.as_deref()).map_err(meta)?
        }
    };
    info.require_binlog_format().map_err(meta)?;
    let ours = match read(backup::layout::migrate_meta_key(&dir)).await? {
        Some(b) => Some(MigrateMeta::from_slice(&b).map_err(meta)?),
        None => None,
    };
    Ok((info, ours))
}

/// One collection to restore.
struct Task<'a> {
    source: &'a CollectionBackupInfo,
    /// Properties of the source's database, as recorded.
    db_properties: &'a [backup::KeyValuePair],
    db: String,
    name: String,
    /// `--skip-create-collection`: the rows the existing collection held before the import
    /// (`None` inside when they could not be counted).
    rows_before: std::sync::OnceLock<Option<u64>>,
}

impl Task<'_> {
    /// A step on this collection failed for a reason retrying will not fix.
    fn fail(&self, step: &'static str, segment: Option<i64>, message: String) -> Error {
        RestoreError::Step {
            db: self.db.clone(),
            collection: self.name.clone(),
            step,
            segment,
            message,
            retryable: false,
        }
        .into()
    }
}

/// Runs `restore`.
///
/// # Errors
/// [`Error`]: a missing or corrupt backup, bad names, existing targets, Milvus or store
/// failures, failed imports or row counts that do not match. Each names the step, the collection
/// and (for imports) the segment.
pub async fn restore(
    req: RestoreRequest,
    observer: Arc<dyn CopyObserver>,
) -> Result<RestoreReport, Error> {
    let started = Instant::now();
    layout::validate_backup_name(&req.name).map_err(RestoreError::BadRequest)?;
    req.options.validate(req.drop_existing)?;
    let config = req.profile.transfer(&req.overrides)?;
    let allow_server_side = config.mode != TransferMode::Streaming;
    let session = Session::with_context(config, req.context.clone());
    let backup_store = session.open(&req.backup_storage)?;
    let milvus_store = session.open(&req.profile.milvus_storage)?;
    let root = req.backup_storage.root_path.clone();
    let (info, ours) = match &req.upstream {
        Some(up) => up.backup.as_ref().clone(),
        None => {
            observer.step(&format!(
                "reading backup `{}` from {}",
                req.name,
                backup_store.name()
            ));
            read_backup(&backup_store, &root, &req.name).await?
        }
    };

    let client = MilvusClient::connect(&req.profile.milvus, ClientOptions::default()).await?;
    let tasks = plan(&req, &info)?;
    check_targets(&req, &client, &info, &tasks).await?;
    let rbac = match &req.options.rbac {
        Some(passwords) => {
            observer.step("restoring users, roles and grants");
            Some(options::restore_rbac(&client, &info, passwords).await?)
        }
        None => None,
    };

    let backup_dir = layout::backup_dir(&root, &req.name);
    let ctx = Ctx {
        req: &req,
        client: &client,
        session: &session,
        backup_store: &backup_store,
        milvus_store: &milvus_store,
        backup_dir: &backup_dir,
        ours: ours.as_ref(),
        allow_server_side,
        observer: &observer,
        in_place: backup_store.same_bucket_as(&milvus_store),
    };
    let databases_created = options::create_databases(&req, &client, &info).await?;
    let mut collections = Vec::new();
    let mut bytes_staged = 0;
    for task in &tasks {
        let (done, staged) = ctx.restore_one(task).await?;
        bytes_staged += staged;
        collections.push(done);
    }
    Ok(RestoreReport {
        name: req.name.clone(),
        milvus_version: client.version().raw.clone(),
        collections,
        databases_created,
        rbac,
        bytes_staged,
        duration_secs: started.elapsed().as_secs_f64(),
    })
}

/// Which collections, under which names.
fn plan<'a>(req: &RestoreRequest, info: &'a BackupInfo) -> Result<Vec<Task<'a>>, Error> {
    let selected = |c: &CollectionBackupInfo| {
        req.selectors.is_empty()
            || req.selectors.iter().any(|s| match s {
                Selector::Collection { db, name } => {
                    // A bare name (default db) also matches a backup taken before databases.
                    (db == &c.db_name || (db == "default" && c.db_name.is_empty()))
                        && name == &c.collection_name
                }
                Selector::Database(db) => db == &c.db_name,
            })
    };
    let mut tasks = Vec::new();
    for c in info.collection_backups.iter().filter(|c| selected(c)) {
        let db = if c.db_name.is_empty() {
            "default"
        } else {
            c.db_name.as_str()
        };
        let (tdb, tname) = req.naming.target(db, &c.collection_name);
        let db_properties = info
            .database_backups
            .iter()
            .find(|d| d.db_name == db)
            .map_or(&[][..], |d| d.properties.as_slice());
        tasks.push(Task {
            source: c,
            db_properties,
            db: tdb,
            name: tname,
            rows_before: std::sync::OnceLock::new(),
        });
    }
    if tasks.is_empty() {
        let have: Vec<String> = info
            .collection_backups
            .iter()
            .map(|c| format!("{}.{}", c.db_name, c.collection_name))
            .collect();
        return Err(RestoreError::BadRequest(format!(
            "backup `{}` holds none of the requested collections (it holds: {})",
            req.name,
            have.join(", ")
        ))
        .into());
    }
    let mut seen = std::collections::HashSet::new();
    for t in &tasks {
        if !seen.insert((t.db.clone(), t.name.clone())) {
            return Err(RestoreError::BadRequest(format!(
                "two collections would be restored as `{}.{}`",
                t.db, t.name
            ))
            .into());
        }
    }
    Ok(tasks)
}

/// Checks every target before anything is written: databases, name clashes, version support.
async fn check_targets(
    req: &RestoreRequest,
    client: &MilvusClient,
    info: &BackupInfo,
    tasks: &[Task<'_>],
) -> Result<(), Error> {
    let dbs = client.list_databases().await?;
    let version = client.version();
    let source = crate::milvus::ServerVersion::parse(&info.milvus_version);
    if let Err(reason) = crate::milvus::restorable_into(&source, version)
        && let Some(t) = tasks.first()
    {
        return Err(RestoreError::Unsupported {
            address: client.address().to_string(),
            version: version.raw.clone(),
            collection: t.source.collection_name.clone(),
            reason,
        }
        .into());
    }
    for t in tasks {
        let unsupported = |reason: String| RestoreError::Unsupported {
            address: client.address().to_string(),
            version: version.raw.clone(),
            collection: t.source.collection_name.clone(),
            reason,
        };
        // Storage format, L0 segments, types and schema features by target version.
        crate::milvus::protocol::restorable(t.source, version).map_err(unsupported)?;
        let exists =
            dbs.iter().any(|d| d == &t.db) && client.with_db(&t.db).has_collection(&t.name).await?;
        if req.options.skip_create_collection {
            if !exists {
                return Err(options::missing_target(t, client.address()));
            }
            continue;
        }
        if exists && !req.drop_existing {
            return Err(RestoreError::TargetExists {
                db: t.db.clone(),
                collection: t.name.clone(),
                address: client.address().to_string(),
            }
            .into());
        }
    }
    Ok(())
}

/// Where a collection's binlogs are staged in the target bucket: `restore-temp-<hash>`, the
/// hash over backup and target names, so a rerun after a crash finds (and reuses or removes)
/// them. Short on purpose: binlog keys below it are already ~120 characters and some S3
/// servers limit key or file-name lengths.
/// Waits until no import into `db.collection` is in flight (at most 15 minutes). A restore
/// killed or cancelled mid-import leaves its job running in Milvus; dropping the collection
/// under it keeps Milvus 2.3's DataNode busy until the job expires (15 min), blocking every
/// later import.
///
/// # Errors
/// Listing the import jobs failed (a collection that does not exist has none).
pub(crate) async fn wait_for_imports(
    c: &MilvusClient,
    db: &str,
    collection: &str,
    observer: &dyn CopyObserver,
) -> Result<(), MilvusError> {
    use common::ImportState as S;
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut told = false;
    loop {
        let tasks = match c.list_import_tasks(collection).await {
            Ok(tasks) => tasks,
            Err(e) if e.is_collection_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        let busy = tasks
            .iter()
            .filter(|st| {
                matches!(
                    S::try_from(st.state),
                    Ok(S::ImportPending | S::ImportStarted | S::ImportPersisted)
                )
            })
            .count();
        if busy == 0 || Instant::now() > deadline {
            return Ok(());
        }
        if !told {
            observer.step(&format!(
                "waiting for {busy} import job(s) into `{db}.{collection}` to end before \
                 dropping it"
            ));
            told = true;
        }
        tokio::time::sleep(POLL * 2).await;
    }
}

/// The path an import hands to Milvus for the directory `key` of its store (binlogs staged
/// there): on an S3-family store the key itself (Milvus reads its own bucket); on a Milvus that
/// keeps its data on local disk, the file under the directory as the Milvus process sees it
/// (`milvus_local_path`: v2 `localPath`, else `rootPath`; a relative one is taken from this
/// process's working directory, as the files were written there).
pub(crate) fn import_path(storage: &StorageConfig, key: &str) -> String {
    if storage.storage_type != StorageType::Local {
        return key.to_string();
    }
    let mut dir = std::path::PathBuf::from(&storage.milvus_local_path);
    if dir.is_relative()
        && let Ok(cwd) = std::env::current_dir()
    {
        dir = cwd.join(dir);
    }
    let dir = dir.to_string_lossy();
    format!(
        "{}/{}",
        dir.trim_end_matches('/'),
        key.trim_start_matches('/')
    )
}

/// Where a restore of `backup` into `db.collection` stages binlogs in the target bucket.
pub fn temp_prefix(backup: &str, db: &str, collection: &str) -> String {
    let hex = crate::copy::checksum::md5_hex_of(format!("{backup}\n{db}\n{collection}").as_bytes());
    format!("restore-temp-{}", &hex[..12])
}

/// One import job: a segment (or, in the old layout, a partition directory).
#[derive(Debug, Clone)]
struct ImportUnit {
    /// Binlogs it imports, keys relative to the backup directory (what staging must deliver
    /// before it can start).
    objects: Vec<String>,
    /// Delete-only (L0): runs after every data unit.
    l0: bool,
    partition: String,
    /// Insert-log directory and delta-log directory ("" when there are no delta logs).
    files: Vec<String>,
    options: Vec<(String, String)>,
    /// `ImportRequest.idempotency_key`, where the target honours one.
    idempotency_key: Option<String>,
    segment: Option<i64>,
    /// Rows the backup says the unit holds (before deletes).
    expected: i64,
    /// It carries delta logs: its deletes may remove every row it holds, so an import of 0
    /// rows is no sign of binlogs Milvus did not find.
    deltas: bool,
}

struct Ctx<'a> {
    req: &'a RestoreRequest,
    client: &'a MilvusClient,
    session: &'a Session,
    backup_store: &'a Store,
    milvus_store: &'a Store,
    backup_dir: &'a str,
    ours: Option<&'a MigrateMeta>,
    allow_server_side: bool,
    observer: &'a Arc<dyn CopyObserver>,
    /// The backup is in the target Milvus's bucket: import from it directly.
    in_place: bool,
}

/// How often import, index and load states are polled.
const POLL: Duration = Duration::from_secs(1);

impl Ctx<'_> {
    fn step_err(
        &self,
        t: &Task<'_>,
        step: &'static str,
        segment: Option<i64>,
    ) -> impl Fn(MilvusError) -> Error {
        let (db, name) = (t.db.clone(), t.name.clone());
        move |e: MilvusError| {
            use crate::retry::Retryable;
            RestoreError::Step {
                db: db.clone(),
                collection: name.clone(),
                step,
                segment,
                retryable: e.is_retryable(),
                message: e.to_string(),
            }
            .into()
        }
    }

    async fn restore_one(&self, t: &Task<'_>) -> Result<(RestoredCollection, u64), Error> {
        let c = self.client.with_db(&t.db);
        let db_note = if t.db != "default" && !self.client.list_databases().await?.contains(&t.db) {
            meta::create_database(self.client, &t.db, t.db_properties)
                .await
                .map_err(self.step_err(t, "CreateDatabase", None))?
        } else {
            meta::existing_database_note(&t.db, t.db_properties)
        };
        if self.req.drop_existing {
            self.settle_imports(&c, t).await?;
            c.drop_collection_and_aliases(&t.name)
                .await
                .map_err(self.step_err(t, "DropCollection", None))?;
        }
        self.observer.step(&format!(
            "restoring `{}.{}` as `{}.{}`",
            t.source.db_name, t.source.collection_name, t.db, t.name
        ));
        let temp = temp_prefix(&self.req.name, &t.db, &t.name);
        let mut result = self.restore_into(&c, t, &temp).await;
        if let Ok((done, _)) = &mut result {
            done.notes.splice(0..0, db_note);
        }
        // A fenced run leaves everything to the run that took its lease over.
        let fenced = self.req.context.is_fenced();
        let staged_cleanup = !self.in_place && !self.req.profile.keep_temp_files && !fenced;
        if staged_cleanup && let Err(e) = self.session.delete_prefix(self.milvus_store, &temp).await
        {
            tracing::warn!("cannot remove staged binlogs under `{temp}/`: {e}");
        }
        // A collection that was there before (`--skip-create-collection`) is never dropped.
        let undo = result.is_err()
            && !self.req.keep_partial
            && !fenced
            && !self.req.options.skip_create_collection;
        if undo {
            // An import still running in Milvus must end first (see `settle_imports`).
            if let Err(e) = self.settle_imports(&c, t).await {
                tracing::warn!("cannot list the import jobs of `{}.{}`: {e}", t.db, t.name);
            }
        }
        if undo && let Err(e) = c.drop_collection_and_aliases(&t.name).await {
            tracing::warn!(
                "cannot drop the partial collection `{}.{}`: {e}",
                t.db,
                t.name
            );
        }
        result
    }

    /// Waits until no import into the target is in flight (see [`wait_for_imports`]).
    async fn settle_imports(&self, c: &MilvusClient, t: &Task<'_>) -> Result<(), Error> {
        wait_for_imports(c, &t.db, &t.name, self.observer.as_ref())
            .await
            .map_err(self.step_err(t, "ListImportTasks", None))
    }

    async fn restore_into(
        &self,
        c: &MilvusClient,
        t: &Task<'_>,
        temp: &str,
    ) -> Result<(RestoredCollection, u64), Error> {
        let src = t.source;
        let collection_id = if self.req.options.skip_create_collection {
            self.use_existing(c, t).await?
        } else {
            self.create_collection(c, t).await?
        };
        if self.req.options.drop_exist_index {
            self.drop_indexes(c, t).await?;
        }
        if self.req.options.meta_only {
            return self.finish_meta_only(c, t, collection_id).await;
        }
        if self.req.rebuild_index {
            self.create_indexes(c, t).await?;
        }

        // Stage the binlogs into the target bucket unless the backup is already there; each
        // segment's import starts once its binlogs are staged.
        let root = if self.in_place { self.backup_dir } else { temp };
        let mut units = self.import_units(t, root, collection_id)?;
        for f in units.iter_mut().flat_map(|u| u.files.iter_mut()) {
            if !f.is_empty() {
                *f = import_path(&self.req.profile.milvus_storage, f);
            }
        }
        let started = Instant::now();
        let all_there = || {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let _ = tx.send(pipeline::Arrival::All);
            rx
        };
        let (staged, stage_secs, rows_imported) = if self.in_place {
            (None, 0.0, self.import_all(c, t, &units, all_there()).await?)
        } else if self.req.sequential {
            let report = self.stage(t, temp, Arc::clone(self.observer)).await?;
            let stage_secs = started.elapsed().as_secs_f64();
            let rows = self.import_all(c, t, &units, all_there()).await?;
            (Some(report), stage_secs, rows)
        } else {
            let groups: Vec<Vec<String>> = units.iter().map(|u| u.objects.clone()).collect();
            let (arrivals, rx) = pipeline::Arrivals::new(Arc::clone(self.observer), &groups);
            let stage = async {
                let observer: Arc<dyn CopyObserver> = arrivals.clone();
                let report = self.stage(t, temp, observer).await?;
                arrivals.all_staged();
                Ok::<_, Error>((report, started.elapsed().as_secs_f64()))
            };
            let ((report, stage_secs), rows) =
                tokio::try_join!(stage, self.import_all(c, t, &units, rx))?;
            (Some(report), stage_secs, rows)
        };
        let import_secs = started.elapsed().as_secs_f64();

        let il_started = Instant::now();
        if self.req.rebuild_index {
            self.wait_for_indexes(c, t).await?;
        }
        let mut notes = Vec::new();
        let replicas = if self.req.load {
            self.load(c, t, &mut notes).await?
        } else {
            None
        };
        let loaded = replicas.is_some();
        let index_load_secs = il_started.elapsed().as_secs_f64();

        let (rows, expected, verified) =
            self.verify(c, t, rows_imported, loaded, &mut notes).await?;
        let aliases = meta::restore_aliases(c, &t.name, collection_id, &src.aliases)
            .await
            .map_err(self.step_err(t, "CreateAlias", None))?;
        notes.extend(aliases.notes);
        let staged_objects = staged.as_ref().map_or(0, |r| r.objects_total);
        let staged_bytes = staged.as_ref().map_or(0, |r| r.bytes_copied);
        Ok((
            RestoredCollection {
                source_db: src.db_name.clone(),
                source_collection: src.collection_name.clone(),
                db_name: t.db.clone(),
                collection_name: t.name.clone(),
                partitions: src.partition_backups.len(),
                segments: src.segments().count(),
                rows_imported,
                rows,
                expected_rows: expected,
                verified,
                staged_objects,
                stage_secs,
                import_secs,
                index_load_secs,
                aliases: aliases.restored,
                replicas,
                notes,
            },
            staged_bytes,
        ))
    }

    /// The target collection's description and its field IDs by name.
    async fn describe_with_field_ids(
        &self,
        c: &MilvusClient,
        t: &Task<'_>,
    ) -> Result<(pb::DescribeCollectionResponse, BTreeMap<String, i64>), Error> {
        let described = c.describe_collection(&t.name).await.map_err(self.step_err(
            t,
            "DescribeCollection",
            None,
        ))?;
        let ids = described
            .schema
            .iter()
            .flat_map(|s| s.fields.iter())
            .map(|f| (f.name.clone(), f.field_id))
            .collect();
        Ok((described, ids))
    }

    /// Creates the collection from the backed-up schema; returns its id.
    async fn create_collection(&self, c: &MilvusClient, t: &Task<'_>) -> Result<i64, Error> {
        let src = t.source;
        let mut meta_schema = src.schema.clone().unwrap_or_default();
        meta::merge_properties(&mut meta_schema, &src.properties);
        // Source field-ID order, user fields only, never `$meta`; fields added after creation
        // come back through AddCollectionField (see `protocol::create_plan`).
        let plan = crate::milvus::protocol::create_plan(&meta_schema, c.version())?;
        let mut schema = plan.schema.clone();
        schema.name = t.name.clone();
        let partition_key = schema.fields.iter().any(|f| f.is_partition_key);
        let req = pb::CreateCollectionRequest {
            db_name: t.db.clone(),
            collection_name: t.name.clone(),
            schema: prost::Message::encode_to_vec(&schema),
            shards_num: src.shards_num,
            consistency_level: src.consistency_level.0,
            properties: plan.properties.clone(),
            num_partitions: if partition_key {
                src.partition_backups.len() as i64
            } else {
                0
            },
            ..Default::default()
        };
        c.create_collection(req)
            .await
            .map_err(self.step_err(t, "CreateCollection", None))?;
        for f in &plan.add_fields {
            c.add_collection_field(&t.name, f)
                .await
                .map_err(self.step_err(t, "AddCollectionField", None))?;
        }
        if let Some(value) = plan.restore_func_runtime_check.clone() {
            let key = crate::milvus::protocol::DISABLE_FUNC_RUNTIME_CHECK.to_string();
            c.alter_collection_properties(&t.name, vec![common::KeyValuePair { key, value }])
                .await
                .map_err(self.step_err(t, "AlterCollection", None))?;
        }

        // The import maps binlog directories by field ID: they must match the source's.
        let (created, got) = self.describe_with_field_ids(c, t).await?;
        let wanted = schema.fields.iter().chain(&plan.add_fields);
        let mismatched = field_id_differences(wanted.map(|f| (f.name.as_str(), f.field_id)), &got);
        if !mismatched.is_empty() {
            return Err(t.fail(
                "CreateCollection",
                None,
                format!(
                    "field IDs differ from the source's, so the binlogs cannot be imported: {}",
                    mismatched.join("; ")
                ),
            ));
        }
        if !partition_key {
            for p in &src.partition_backups {
                if p.partition_name != "_default" {
                    c.create_partition(&t.name, &p.partition_name)
                        .await
                        .map_err(self.step_err(t, "CreatePartition", None))?;
                }
            }
        }
        Ok(created.collection_id)
    }

    /// Relative keys of a segment's binlogs.
    fn segment_rel_keys(&self, seg: &SegmentBackupInfo) -> Result<Vec<String>, Error> {
        Ok(backup::segment_objects(self.backup_dir, seg)?
            .iter()
            .map(|o| rel_key(self.backup_dir, &o.backup_key))
            .collect())
    }

    /// Copies the collection's binlogs into the target bucket under `temp/`, segment by
    /// segment in import order, telling `observer` of each object.
    async fn stage(
        &self,
        t: &Task<'_>,
        temp: &str,
        observer: Arc<dyn CopyObserver>,
    ) -> Result<CopyReport, Error> {
        let mut objects = Vec::new();
        for seg in import_order(t.source) {
            for o in backup::segment_objects(self.backup_dir, seg)? {
                let rel = rel_key(self.backup_dir, &o.backup_key);
                let etag = self
                    .ours
                    .and_then(|m| m.objects.get(&rel))
                    .map(|d| d.md5.clone())
                    .filter(|m| !m.is_empty());
                objects.push((
                    rel,
                    ObjectInfo {
                        key: o.backup_key,
                        size: o.size.max(0) as u64,
                        etag,
                    },
                ));
            }
        }
        self.observer.step(&format!(
            "staging {} binlog object(s) into {} {temp}/",
            objects.len(),
            self.milvus_store.name()
        ));
        let mut job = CopyJob::prefix(
            self.backup_store.clone(),
            self.backup_dir,
            self.milvus_store.clone(),
            temp,
        );
        job.allow_server_side = self.allow_server_side;
        job.overwrite = true;
        job.order = Some(objects.iter().map(|(rel, _)| rel.clone()).collect());
        job.objects = Some(objects);
        job.gate = self.req.upstream.as_ref().map(|u| Arc::clone(&u.gate));
        if let Some(dir) = &self.req.state_dir {
            job.ledger = Some(copy::ledger_path(dir, &job));
        }
        let report = copy::run(
            job,
            self.session.copy_config(),
            self.session.limits(),
            observer,
        )
        .await?;
        if let Some(f) = report.failures.first() {
            return Err(RestoreError::Step {
                db: t.db.clone(),
                collection: t.name.clone(),
                step: "staging binlogs",
                segment: None,
                message: format!(
                    "{} object(s) could not be copied (first: `{}`: {})",
                    report.objects_failed, f.key, f.error
                ),
                retryable: f.retryable,
            }
            .into());
        }
        Ok(report)
    }

    /// The import jobs of a collection whose binlogs are under `root`: one per data segment
    /// (one per partition in the old layout without group directories), then one per
    /// delete-only (L0) segment.
    fn import_units(
        &self,
        t: &Task<'_>,
        root: &str,
        collection_id: i64,
    ) -> Result<Vec<ImportUnit>, Error> {
        use crate::milvus::protocol::{import_idempotency_key, import_options};
        let version = self.client.version().clone();
        let key = |partition: i64, segment| {
            import_idempotency_key(&version, collection_id, partition, segment)
        };
        let mut units: Vec<ImportUnit> = Vec::new();
        for p in &t.source.partition_backups {
            let groupless = p.is_groupless();
            let data: Vec<&SegmentBackupInfo> =
                p.segment_backups.iter().filter(|s| !s.is_l0).collect();
            if groupless {
                // Old layout: one job for the whole partition directory.
                let expected = data.iter().map(|s| s.num_of_rows).sum();
                let insert = backup::layout::partition_insert_dir(
                    root,
                    t.source.collection_id,
                    p.partition_id,
                );
                let delta = backup::layout::partition_delta_dir(
                    root,
                    t.source.collection_id,
                    p.partition_id,
                );
                let mut objects = Vec::new();
                for seg in &data {
                    objects.extend(self.segment_rel_keys(seg)?);
                }
                units.push(ImportUnit {
                    objects,
                    l0: false,
                    partition: p.partition_name.clone(),
                    files: vec![insert, delta],
                    options: data
                        .first()
                        .map(|s| import_options(&version, s))
                        .unwrap_or_default(),
                    idempotency_key: key(p.partition_id, None),
                    segment: None,
                    expected,
                    deltas: data.iter().any(|s| s.has_delta_logs()),
                });
                continue;
            }
            for s in data {
                let loc = SegmentLocation::of(s);
                let deltas = s.has_delta_logs();
                let delta = if deltas {
                    loc.delta_import_dir(root)
                } else {
                    String::new()
                };
                units.push(ImportUnit {
                    objects: self.segment_rel_keys(s)?,
                    l0: false,
                    partition: p.partition_name.clone(),
                    files: vec![loc.insert_import_dir(root), delta],
                    options: import_options(&version, s),
                    idempotency_key: key(p.partition_id, Some(s.segment_id)),
                    segment: Some(s.segment_id),
                    expected: s.num_of_rows,
                    deltas,
                });
            }
        }
        // Delete-only L0 segments after all data (2.4.5+; checked before).
        for s in t.source.segments().filter(|s| s.is_l0) {
            let loc = SegmentLocation::of(s);
            let partition = t
                .source
                .partition_backups
                .iter()
                .find(|p| p.partition_id == s.partition_id)
                .map(|p| p.partition_name.clone())
                .unwrap_or_default();
            units.push(ImportUnit {
                objects: self.segment_rel_keys(s)?,
                l0: true,
                idempotency_key: key(s.partition_id, Some(s.segment_id)),
                partition,
                files: vec![loc.l0_import_dir(root)],
                options: import_options(&version, s),
                segment: Some(s.segment_id),
                expected: 0,
                deltas: true,
            });
        }
        Ok(units)
    }

    /// Imports every unit once `arrivals` says it is staged (see [`pipeline`]); returns the
    /// rows the jobs reported.
    async fn import_all(
        &self,
        c: &MilvusClient,
        t: &Task<'_>,
        units: &[ImportUnit],
        arrivals: tokio::sync::mpsc::UnboundedReceiver<pipeline::Arrival>,
    ) -> Result<u64, Error> {
        let parallel = self.req.profile.parallelism.import_jobs.clamp(1, 16);
        self.observer.step(&format!(
            "importing {} segment(s) into `{}.{}` as they are staged",
            units.len(),
            t.db,
            t.name
        ));
        let l0: Vec<bool> = units.iter().map(|u| u.l0).collect();
        pipeline::import_as_staged(&l0, parallel, arrivals, |i| async move {
            // Imported where the backup is: wait until the copy feeding it wrote the unit.
            if let (true, Some(up)) = (self.in_place, &self.req.upstream) {
                for o in &units[i].objects {
                    up.gate.ready(o).await?;
                }
            }
            let n = self.import_one(c, t, units[i].clone()).await?;
            self.observer.rows(n);
            Ok(n)
        })
        .await
    }

    async fn import_one(
        &self,
        c: &MilvusClient,
        t: &Task<'_>,
        unit: ImportUnit,
    ) -> Result<u64, Error> {
        let ImportUnit {
            partition,
            files,
            options,
            idempotency_key,
            segment,
            expected,
            deltas,
            ..
        } = unit;
        tracing::debug!(db = %t.db, collection = %t.name, ?segment, %partition, "import starts");
        let task = c
            .import_keyed(&t.name, &partition, files, options, idempotency_key)
            .await
            .map_err(self.step_err(t, "Import", segment))?;
        loop {
            self.req.context.pause(POLL).await?;
            let st =
                c.import_state(task)
                    .await
                    .map_err(self.step_err(t, "GetImportState", segment))?;
            let info = |k: &str| {
                st.infos
                    .iter()
                    .find(|kv| kv.key == k)
                    .map(|kv| kv.value.clone())
                    .unwrap_or_default()
            };
            match common::ImportState::try_from(st.state) {
                Ok(common::ImportState::ImportCompleted) => {
                    let got = st.row_count.max(0) as u64;
                    // With delta logs, 0 rows is also what a segment whose rows were all
                    // deleted gives (Milvus answers both alike); the collection's counts
                    // judge it then (`verify`).
                    if expected > 0 && got == 0 && !deltas {
                        return Err(t.fail(
                            "Import",
                            segment,
                            format!(
                                "the import completed with 0 rows, {expected} expected: Milvus did \
                                 not find the binlogs (are they in its own bucket?)"
                            ),
                        ));
                    }
                    return Ok(got);
                }
                Ok(
                    common::ImportState::ImportFailed | common::ImportState::ImportFailedAndCleaned,
                ) => {
                    return Err(t.fail(
                        "Import",
                        segment,
                        format!("import task {task} failed: {}", info("failed_reason")),
                    ));
                }
                _ => {}
            }
        }
    }

    /// Creates the backed-up indexes on the (still empty) collection: Milvus then builds each
    /// imported segment's index as the segment lands, while later segments are still being
    /// copied and imported, instead of all of them after the last import.
    async fn create_indexes(&self, c: &MilvusClient, t: &Task<'_>) -> Result<(), Error> {
        for idx in &t.source.index_infos {
            let params = options::index_params(idx, t.source, self.req.options.use_auto_index);
            c.create_index(&t.name, &idx.field_name, &idx.index_name, params)
                .await
                .map_err(self.step_err(t, "CreateIndex", None))?;
        }
        Ok(())
    }

    /// Waits until every index covers every row.
    async fn wait_for_indexes(&self, c: &MilvusClient, t: &Task<'_>) -> Result<(), Error> {
        if t.source.index_infos.is_empty() {
            return Ok(());
        }
        self.observer
            .step(&format!("building indexes of `{}.{}`", t.db, t.name));
        loop {
            let all =
                c.describe_index(&t.name)
                    .await
                    .map_err(self.step_err(t, "DescribeIndex", None))?;
            if let Some(failed) = all
                .iter()
                .find(|d| d.state == common::IndexState::Failed as i32)
            {
                return Err(t.fail(
                    "CreateIndex",
                    None,
                    format!(
                        "index `{}` failed: {}",
                        failed.index_name, failed.index_state_fail_reason
                    ),
                ));
            }
            let done = all.iter().all(|d| {
                d.state == common::IndexState::Finished as i32
                    && d.indexed_rows == d.total_rows
                    && d.pending_index_rows == 0
            });
            if done {
                return Ok(());
            }
            self.req.context.pause(POLL).await?;
        }
    }

    /// Loads the collection with the source's replica count (see [`meta::load_with_replicas`]);
    /// the replicas it got, or `None` when it cannot be loaded because a vector field has no
    /// index (the source had none and none was rebuilt): rows are then checked by the imports.
    async fn load(
        &self,
        c: &MilvusClient,
        t: &Task<'_>,
        notes: &mut Vec<String>,
    ) -> Result<Option<u32>, Error> {
        let indexed: Vec<String> = c
            .describe_index(&t.name)
            .await
            .map_err(self.step_err(t, "DescribeIndex", None))?
            .into_iter()
            .map(|d| d.field_name)
            .collect();
        let unindexed: Vec<&str> = t
            .source
            .schema
            .iter()
            .flat_map(|s| s.fields.iter())
            .filter(|f| (100..200).contains(&f.data_type.0) && !indexed.contains(&f.name))
            .map(|f| f.name.as_str())
            .collect();
        if !unindexed.is_empty() {
            self.observer.step(&format!(
                "not loading `{}.{}`: vector field(s) {} have no index ({}); rows are checked \
                 by the import counts",
                t.db,
                t.name,
                unindexed.join(", "),
                if self.req.rebuild_index {
                    "the backup records none"
                } else {
                    "--rebuild-index not given"
                }
            ));
            return Ok(None);
        }
        let src = t.source;
        let partitions = meta::partitions_to_load(src);
        if partitions.is_empty() {
            self.observer
                .step(&format!("loading `{}.{}`", t.db, t.name));
        } else {
            let loading = format!(
                "`{}.{}` loaded by partitions {} only, as on A",
                t.db,
                t.name,
                partitions.join(", ")
            );
            self.observer.step(&format!("{loading}: loading them"));
            notes.push(loading);
        }
        let wanted = self
            .ours
            .and_then(|m| m.replicas_of(&src.db_name, &src.collection_name));
        let rpc = if partitions.is_empty() {
            "LoadCollection"
        } else {
            "LoadPartitions"
        };
        let note = meta::load_with_replicas(c, &t.name, &partitions, wanted)
            .await
            .map_err(self.step_err(t, rpc, None))?;
        notes.extend(note);
        loop {
            let p = c.loading_progress(&t.name).await.map_err(self.step_err(
                t,
                "GetLoadingProgress",
                None,
            ))?;
            if p >= 100 {
                let replicas = meta::loaded_replicas(c, &t.name).await;
                return Ok(Some(replicas.map_err(self.step_err(
                    t,
                    "GetReplicas",
                    None,
                ))?));
            }
            self.req.context.pause(POLL).await?;
        }
    }

    /// Compares row counts: `count(*)` against the backup's recorded counts when the collection
    /// is loaded and counts were recorded; otherwise the import jobs' rows against the segments'.
    /// Imports of 0 rows passed one by one where the segment has delta logs (every row
    /// deleted, which Milvus reports as it does binlogs it did not find): judged here, by A's
    /// recorded count, or named in `notes` when none was recorded.
    async fn verify(
        &self,
        c: &MilvusClient,
        t: &Task<'_>,
        rows_imported: u64,
        loaded: bool,
        notes: &mut Vec<String>,
    ) -> Result<(Option<u64>, Option<u64>, bool), Error> {
        let src = t.source;
        let recorded = self
            .ours
            .and_then(|m| m.rows_of(&src.db_name, &src.collection_name));
        let segment_rows: u64 = src.segments().map(|s| s.num_of_rows.max(0) as u64).sum();
        if rows_imported == 0 && segment_rows > 0 && recorded.is_none() {
            notes.push(format!(
                "`{}.{}`: every segment imported 0 rows of {segment_rows}: its delete logs \
                 remove them all, or Milvus did not find the binlogs in its own bucket (the \
                 backup records no row count on A to tell)",
                t.db, t.name
            ));
        }
        let loaded = loaded || c.loading_progress(&t.name).await.unwrap_or(0) >= 100;
        let mismatch = |what: String, got: u64, expected: u64| -> Error {
            RestoreError::CountMismatch {
                db: t.db.clone(),
                collection: t.name.clone(),
                what,
                got,
                expected,
            }
            .into()
        };
        if !loaded {
            // Without count(*): the imports' rows cannot exceed the backed-up segments' rows.
            if rows_imported > segment_rows {
                return Err(mismatch("the import".into(), rows_imported, segment_rows));
            }
            // Rows live on A at backup time and none imported: Milvus did not find them.
            if let Some(r) = recorded.filter(|r| rows_imported == 0 && r.rows > 0) {
                return Err(mismatch(
                    "the import (did Milvus find the binlogs in its own bucket?)".into(),
                    0,
                    r.rows,
                ));
            }
            return Ok((None, recorded.map(|r| r.rows), false));
        }
        let count = c
            .count(&t.name, &[])
            .await
            .map_err(self.step_err(t, "Query count(*)", None))?
            .max(0) as u64;
        // Rows an existing target held before (`--skip-create-collection`); when they could
        // not be counted, neither can the restored ones.
        let before = match t.rows_before.get() {
            Some(None) => return Ok((Some(count), recorded.map(|r| r.rows), false)),
            Some(Some(n)) => *n,
            None => 0,
        };
        let Some(rec) = recorded else {
            // No recorded count (backup of an unloaded collection, or by milvus-backup): the
            // segments' rows bound what can be there.
            if count > segment_rows + before {
                return Err(mismatch(
                    "the collection".into(),
                    count,
                    segment_rows + before,
                ));
            }
            return Ok((Some(count), None, false));
        };
        if count != rec.rows + before {
            return Err(mismatch("the collection".into(), count, rec.rows + before));
        }
        // Partition counts before the import are not known: with rows there before, the
        // collection's total is what is compared.
        for (p, expected) in rec.partitions.iter().filter(|_| before == 0) {
            let got = c
                .count(&t.name, std::slice::from_ref(p))
                .await
                .map_err(self.step_err(t, "Query count(*)", None))?
                .max(0) as u64;
            if got != *expected {
                return Err(mismatch(format!("partition `{p}`"), got, *expected));
            }
        }
        Ok((Some(count), Some(rec.rows + before), true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::PartitionBackupInfo;

    #[test]
    fn imports_name_keys_on_s3_and_files_as_milvus_sees_them_on_local_disk() {
        let s3 = crate::config::sample_storage();
        assert_eq!(import_path(&s3, "restore-temp-ab"), "restore-temp-ab");
        let mut local = s3.clone();
        local.storage_type = StorageType::Local;
        local.local_path = "/mnt/volume".into();
        local.milvus_local_path = "/var/lib/milvus/data/".into();
        assert_eq!(
            import_path(&local, "restore-temp-ab"),
            "/var/lib/milvus/data/restore-temp-ab"
        );
        local.milvus_local_path = "data".into();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            import_path(&local, "restore-temp-ab"),
            format!("{}/data/restore-temp-ab", cwd.display())
        );
    }

    #[test]
    fn segments_import_largest_first_and_delete_only_ones_last() {
        let seg = |segment_id, size, is_l0| SegmentBackupInfo {
            segment_id,
            size,
            is_l0,
            ..Default::default()
        };
        let c = CollectionBackupInfo {
            partition_backups: vec![
                PartitionBackupInfo {
                    segment_backups: vec![seg(1, 10, false), seg(2, 500, false), seg(3, 900, true)],
                    ..Default::default()
                },
                PartitionBackupInfo {
                    segment_backups: vec![seg(4, 700, false), seg(5, 10, false)],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let ids: Vec<i64> = import_order(&c).iter().map(|s| s.segment_id).collect();
        // Equal sizes keep the backup's order.
        assert_eq!(ids, [4, 2, 1, 5, 3]);
    }

    #[test]
    fn naming_maps_names() {
        assert_eq!(
            Naming::Suffix("_bak".into()).target("default", "coll"),
            ("default".into(), "coll_bak".into())
        );
        let r = Naming::parse_rename(&["a:b,db1.*:db2.*".into(), "db3.x:db4.y".into()]).unwrap();
        assert_eq!(r.target("default", "a"), ("default".into(), "b".into()));
        assert_eq!(r.target("db1", "q"), ("db2".into(), "q".into()));
        assert_eq!(r.target("db3", "x"), ("db4".into(), "y".into()));
        assert_eq!(r.target("db3", "z"), ("db3".into(), "z".into()));
        assert!(Naming::parse_rename(&["a".into()]).is_err());
        assert!(Naming::parse_rename(&["db1.*:b".into()]).is_err());
    }
}
