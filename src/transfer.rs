//! The `copy` and `check` operations on profiles: which store, bucket and prefix each side means,
//! the preflight checks a user needs before bytes move, and the process-wide limits.
//!
//! Owns turning profiles plus a request into a [`CopyJob`] and probing a store. Does not own the
//! copy itself ([`crate::copy`]) nor printing (the binary).

use std::path::PathBuf;
use std::sync::Arc;

use crate::backup::{self, MetaFile};
use crate::config::{Profile, StorageConfig, TransferConfig, TransferMode, TransferOptions};
use crate::copy::{self, CopyConfig, CopyJob, CopyObserver, CopyReport, Limits, RetryPolicy};
use crate::error::Error;
use crate::storage::layout::{self, BACKUP_META};
use crate::storage::{HttpGate, StorageErrorKind, Store, Timeouts};
use crate::throttle::{ByteLimiter, RequestLimiter};
use tokio_util::sync::CancellationToken;

/// Errors in what was asked, found before anything is copied.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The backup is not at the source, or not all of it.
    #[error(transparent)]
    Missing(#[from] Box<MissingBackup>),
    /// The backup name breaks milvus-backup's rules.
    #[error("{0}")]
    InvalidName(String),
}

/// A backup that cannot be used: nothing of it is there, or objects are there without the
/// meta files that mark a finished backup (`meta/backup_meta.json` is written last).
#[derive(Debug, thiserror::Error)]
pub enum MissingBackup {
    /// Nothing under the backup's directory.
    #[error("backup `{name}` not found in {store} under `{root}/`; {}", list_names(.available))]
    NotFound {
        store: String,
        root: String,
        name: String,
        /// Directories under the backup root (backups, complete or not).
        available: Vec<String>,
    },
    /// Objects under the backup's directory, but not every meta file.
    #[error(
        "backup `{name}` in {store} under `{root}/` is incomplete: {} missing, {objects} objects \
         there; the create or copy that wrote it did not finish: rerun that command to complete \
         it, or delete `{dir}/`",
        .missing.join(", ")
    )]
    Incomplete {
        store: String,
        root: String,
        name: String,
        /// The backup's directory in the bucket.
        dir: String,
        /// Meta files absent, relative to the backup's directory (`meta/backup_meta.json`).
        missing: Vec<String>,
        /// Objects found under the directory.
        objects: usize,
    },
}

fn list_names(names: &[String]) -> String {
    if names.is_empty() {
        "it holds no backups".to_string()
    } else {
        format!("backups there: {}", names.join(", "))
    }
}

/// Says why backup `name` (directory `dir` under `root`) is not usable in `store`: absent, or
/// present without all its meta files. For error paths: listings are not retried, and a
/// listing that fails counts as empty.
pub async fn missing_backup(
    store: &Store,
    root: &str,
    name: &str,
    dir: &str,
) -> Box<MissingBackup> {
    let objects = store.list(&format!("{dir}/")).await.unwrap_or_default();
    if objects.is_empty() {
        return Box::new(MissingBackup::NotFound {
            store: store.name().to_string(),
            root: root.to_string(),
            name: name.to_string(),
            available: store.list_dirs(root).await.unwrap_or_default(),
        });
    }
    let missing = MetaFile::WRITE_ORDER
        .iter()
        .map(|f| backup::layout::meta_key(dir, *f))
        .filter(|key| !objects.iter().any(|o| &o.key == key))
        .map(|key| key[dir.len()..].trim_start_matches('/').to_string())
        .collect();
    Box::new(MissingBackup::Incomplete {
        store: store.name().to_string(),
        root: root.to_string(),
        name: name.to_string(),
        dir: dir.to_string(),
        missing,
        objects: objects.len(),
    })
}

/// What to copy.
#[derive(Debug, Clone)]
pub enum CopyTarget {
    /// Backup `name`: `<backupRootPath>/<name>/` of each profile's backup store.
    Backup(String),
    /// Any prefix of each profile's backup bucket.
    Prefixes {
        /// Prefix in the source's backup bucket.
        src: String,
        /// Prefix in the destination's backup bucket.
        dst: String,
    },
}

/// What a process running several flows at once shares with each of them: a byte-rate limit
/// over all of them, and the signal that stops one (cancel). The default is neither.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    /// A byte-rate limit shared with other flows, besides the flow's own.
    pub shared_bytes: Option<Arc<ByteLimiter>>,
    /// Cancelled when the flow must stop: the copier aborts its open multipart uploads, the
    /// flows stop at their next wait and clean up what they started, then return
    /// [`Error::Cancelled`].
    pub cancel: CancellationToken,
    /// Cancelled (with `cancel`) when the run lost the right to write: another run of the same
    /// job took over its lease ([`crate::lease`]). The flows then stop without undoing
    /// anything (no partial collection dropped, no staged binlogs removed): what they would
    /// undo may now be the other run's.
    pub fenced: CancellationToken,
}

impl RunContext {
    /// Whether the run lost the right to write (see [`RunContext::fenced`]).
    pub fn is_fenced(&self) -> bool {
        self.fenced.is_cancelled()
    }

    /// Sleeps `d` unless cancelled first.
    ///
    /// # Errors
    /// [`Error::Cancelled`] when the flow was cancelled.
    pub async fn pause(&self, d: std::time::Duration) -> Result<(), Error> {
        tokio::select! {
            () = tokio::time::sleep(d) => Ok(()),
            () = self.cancel.cancelled() => Err(Error::Cancelled),
        }
    }

    /// [`Error::Cancelled`] when the flow was cancelled.
    ///
    /// # Errors
    /// When it was.
    pub fn check(&self) -> Result<(), Error> {
        if self.cancel.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// A copy between two profiles' backup stores.
#[derive(Debug, Clone)]
pub struct CopyRequest {
    /// Source profile (`--from`); its `transfer:` settings apply.
    pub from: Profile,
    /// Destination profile (`--to`).
    pub to: Profile,
    /// What to copy.
    pub target: CopyTarget,
    /// Settings from the command line, over the profile's.
    pub overrides: TransferOptions,
    /// Replace a different backup at the destination.
    pub overwrite: bool,
    /// Where the ledger lives; `None` disables cross-run part resume.
    pub state_dir: Option<PathBuf>,
    /// Shared limit and cancel signal.
    pub context: RunContext,
}

/// Process-wide limits and the store clients built under them.
#[derive(Debug, Clone)]
pub struct Session {
    gate: Arc<HttpGate>,
    bytes: Option<Arc<ByteLimiter>>,
    timeouts: Timeouts,
    config: TransferConfig,
    context: RunContext,
}

impl Session {
    /// Builds the limiters of `config`.
    pub fn new(config: TransferConfig) -> Self {
        Self::with_context(config, RunContext::default())
    }

    /// Builds the limiters of `config`, under the shared limit and cancel signal of `context`.
    pub fn with_context(config: TransferConfig, context: RunContext) -> Self {
        Self {
            gate: HttpGate::new(config.request_rate.map(RequestLimiter::new)),
            bytes: config.byte_rate.map(|r| Arc::new(ByteLimiter::new(r))),
            timeouts: Timeouts {
                connect: config.connect_timeout,
                read: config.read_timeout,
            },
            config,
            context,
        }
    }

    /// Opens a store under this session's limits.
    ///
    /// # Errors
    /// The store cannot be built from its configuration.
    pub fn open(&self, cfg: &StorageConfig) -> Result<Store, Error> {
        Ok(Store::open(cfg, &self.gate, self.timeouts)?)
    }

    /// Opens a store that backups are written to, creating its bucket when it is missing (as
    /// milvus-backup does for its backup storage; S3-family stores only).
    ///
    /// # Errors
    /// The store cannot be built, or its bucket is missing and cannot be created.
    pub async fn open_to_write(&self, cfg: &StorageConfig) -> Result<Store, Error> {
        let store = self.open(cfg)?;
        store.ensure_bucket().await?;
        Ok(store)
    }

    /// The copier settings.
    pub fn copy_config(&self) -> CopyConfig {
        let c = &self.config;
        CopyConfig {
            concurrency: c.concurrency,
            parts_per_object: c.parts_per_object,
            part_size: c.part_size,
            multipart_threshold: c.multipart_threshold,
            max_buffer_memory: c.max_buffer_memory,
            retry: RetryPolicy {
                max_retries: c.retries,
                ..RetryPolicy::default()
            },
        }
    }

    /// Whether `dir` holds a complete backup: its `meta/backup_meta.json`, written last, exists.
    ///
    /// # Errors
    /// A store failure other than "not found" (after the preflight retries).
    pub async fn backup_complete(&self, store: &Store, dir: &str) -> Result<bool, Error> {
        let meta = layout::join(&[dir, BACKUP_META]);
        let retry = self.copy_config().retry.preflight();
        match retry.run(|_| store.head(&meta), |_, _| {}).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == StorageErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes every object under `prefix`, 16 at a time, each delete retried; returns how
    /// many were deleted.
    ///
    /// # Errors
    /// The first listing or delete that failed for good.
    pub async fn delete_prefix(&self, store: &Store, prefix: &str) -> Result<u64, Error> {
        use futures::StreamExt;
        let retry = self.copy_config().retry;
        let objects = retry.run(|_| store.list(prefix), |_, _| {}).await?;
        let n = objects.len() as u64;
        let results: Vec<Result<(), crate::storage::StorageError>> = futures::stream::iter(objects)
            .map(|o| async move { retry.run(|_| store.delete(&o.key), |_, _| {}).await })
            .buffer_unordered(16)
            .collect()
            .await;
        for r in results {
            r?;
        }
        Ok(n)
    }

    /// The limits for [`copy::run`].
    pub fn limits(&self) -> Limits {
        Limits {
            bytes: self.bytes.clone(),
            shared_bytes: self.context.shared_bytes.iter().cloned().collect(),
            gate: Some(Arc::clone(&self.gate)),
            cancel: self.context.cancel.clone(),
        }
    }
}

/// Copies a backup (or a prefix) from one profile's backup store to another's.
///
/// # Errors
/// Invalid settings or names, a backup that does not exist, stores that cannot be reached or
/// refuse the credentials, a destination holding a different backup, or a failure every object
/// would meet. Per-object failures are in the report instead.
pub async fn copy(req: CopyRequest, observer: Arc<dyn CopyObserver>) -> Result<CopyReport, Error> {
    prepare_copy(&req).await?.run(observer).await
}

/// A copy between two profiles' backup stores, checked and ready to run: for a caller that
/// orders its objects first ([`CopyJob::order`]).
#[derive(Debug)]
pub struct PreparedCopy {
    session: Session,
    /// The copy.
    pub job: CopyJob,
}

impl PreparedCopy {
    /// Runs the copy to the end.
    ///
    /// # Errors
    /// As [`copy`].
    pub async fn run(self, observer: Arc<dyn CopyObserver>) -> Result<CopyReport, Error> {
        let PreparedCopy { session, job } = self;
        Ok(copy::run(job, session.copy_config(), session.limits(), observer).await?)
    }
}

/// Checks a copy request (names, the source backup) and builds its job.
///
/// # Errors
/// As [`copy`], for everything found before the first object is listed.
pub async fn prepare_copy(req: &CopyRequest) -> Result<PreparedCopy, Error> {
    let config = req.from.transfer(&req.overrides)?;
    let allow_server_side = config.mode != TransferMode::Streaming;
    let session = Session::with_context(config, req.context.clone());
    let src = session.open(&req.from.backup_storage)?;
    let dst = session.open_to_write(&req.to.backup_storage).await?;
    let (src_prefix, dst_prefix, last) = match &req.target {
        CopyTarget::Backup(name) => {
            layout::validate_backup_name(name).map_err(TransferError::InvalidName)?;
            let src_root = &req.from.backup_storage.root_path;
            let src_dir = layout::backup_dir(src_root, name);
            ensure_backup_exists(&session, &src, src_root, name, &src_dir).await?;
            (
                src_dir,
                layout::backup_dir(&req.to.backup_storage.root_path, name),
                vec![BACKUP_META.to_string(), "meta/full_meta.json".to_string()],
            )
        }
        CopyTarget::Prefixes { src, dst } => (
            layout::join(&[src.as_str()]),
            layout::join(&[dst.as_str()]),
            Vec::new(),
        ),
    };
    let mut job = CopyJob {
        src,
        src_prefix,
        dst,
        dst_prefix,
        overwrite: req.overwrite,
        last,
        ledger: None,
        allow_server_side,
        objects: None,
        order: None,
        gate: None,
    };
    if let Some(dir) = &req.state_dir {
        job.ledger = Some(copy::ledger_path(dir, &job));
    }
    Ok(PreparedCopy { session, job })
}

/// Undoes what a stopped copy left at its destination: aborts the multipart uploads its
/// ledgers (in `req.state_dir`) record as open there, and removes the destination's backup
/// when it is incomplete (its `backup_meta.json`, copied last, is missing). Returns the uploads
/// aborted and the objects removed.
///
/// # Errors
/// A store failure, or a ledger that cannot be read.
pub async fn discard(req: &CopyRequest) -> Result<(u64, u64), Error> {
    let session = Session::new(req.from.transfer(&req.overrides)?);
    let dst = session.open(&req.to.backup_storage)?;
    let aborted = match &req.state_dir {
        Some(dir) => copy::abort_stranded(dir, &[&dst]).await?,
        None => 0,
    };
    let mut removed = 0;
    if let CopyTarget::Backup(name) = &req.target {
        let dir = layout::backup_dir(&req.to.backup_storage.root_path, name);
        if !session.backup_complete(&dst, &dir).await? {
            removed = session.delete_prefix(&dst, &format!("{dir}/")).await?;
        }
    }
    Ok((aborted, removed))
}

/// Checks that backup `name` exists, complete, in `profile`'s backup store.
///
/// # Errors
/// [`TransferError::Missing`] (saying what is missing, or listing the backups there), or a
/// store failure.
pub async fn find_backup(profile: &Profile, name: &str) -> Result<(), Error> {
    layout::validate_backup_name(name).map_err(TransferError::InvalidName)?;
    let session = Session::new(profile.transfer(&TransferOptions::default())?);
    let store = session.open(&profile.backup_storage)?;
    let root = &profile.backup_storage.root_path;
    ensure_backup_exists(
        &session,
        &store,
        root,
        name,
        &layout::backup_dir(root, name),
    )
    .await
}

async fn ensure_backup_exists(
    session: &Session,
    store: &Store,
    root: &str,
    name: &str,
    dir: &str,
) -> Result<(), Error> {
    if session.backup_complete(store, dir).await? {
        return Ok(());
    }
    Err(TransferError::from(missing_backup(store, root, name, dir).await).into())
}

/// One step of a store probe and how it went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeStep {
    /// What was tried.
    pub step: String,
    /// `None` when it worked, else the error.
    pub error: Option<String>,
}

/// The result of probing one store.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeReport {
    /// Which store of the profile (`milvus storage`, `backup storage`).
    pub role: String,
    /// The store's name.
    pub store: String,
    /// Steps in order; probing stops at the first failure.
    pub steps: Vec<ProbeStep>,
}

impl ProbeReport {
    /// Whether every step worked.
    pub fn ok(&self) -> bool {
        self.steps.iter().all(|s| s.error.is_none())
    }
}

/// Probes a store: list the root path, write a probe object, read it back, delete it.
pub async fn probe(session: &Session, role: &str, cfg: &StorageConfig) -> ProbeReport {
    let mut report = ProbeReport {
        role: role.to_string(),
        store: String::new(),
        steps: Vec::new(),
    };
    let mut step = |name: String, r: Result<(), String>| {
        let ok = r.is_ok();
        report.steps.push(ProbeStep {
            step: name,
            error: r.err(),
        });
        ok
    };
    let store = match session.open(cfg) {
        Ok(s) => s,
        Err(e) => {
            step("open".into(), Err(e.to_string()));
            return report;
        }
    };
    let root = cfg.root_path.clone();
    let key = layout::join(&[
        &root,
        &format!(".milvus-migrate-probe-{}", std::process::id()),
    ]);
    let body = bytes::Bytes::from_static(b"milvus-migrate probe");
    let steps_ok = step(
        format!("list `{root}/`"),
        store
            .list_dirs(&root)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    ) && step(
        format!("write `{key}`"),
        store
            .put(&key, body.clone().into())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    ) && step(
        format!("read `{key}`"),
        match store.read(&key).await {
            Ok(b) if b == body => Ok(()),
            Ok(_) => Err("read back different bytes".into()),
            Err(e) => Err(e.to_string()),
        },
    );
    if steps_ok {
        step(
            format!("delete `{key}`"),
            store.delete(&key).await.map_err(|e| e.to_string()),
        );
    }
    report.store = store.name().to_string();
    report
}
