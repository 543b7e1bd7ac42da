//! `migrate`: collections from Milvus A to Milvus B in one command, the manual procedure
//! (`milvus-backup create` on A, download, upload, `milvus-backup restore` on B) done end to end.
//!
//! Phases: preflight (both Milvus reachable, no name clash on B), create the backup on A (in A's
//! backup store; with `direct`, straight into B's backup store), copy it to B's backup store,
//! restore it on B, verify, clean up the intermediate copies unless asked to keep them.
//!
//! Resumable: the backup name is derived from the request, so the same command finds its own
//! earlier state. A complete backup is reused, the copy skips what is already at B and resumes
//! open uploads, and a restore interrupted on B is redone from scratch: the targets a run starts
//! restoring are recorded in `<backupRootPath>/<name>.migrate-state.json` beside the backup in
//! B's backup store (outside the backup's directory, so copies of the backup never carry it),
//! which lets a rerun tell its own partial collection from a user's collection of that name.
//! Does not own the flows themselves ([`crate::create`], [`crate::transfer`],
//! [`crate::restore`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::{Profile, TransferOptions};
use crate::copy::{CopyObserver, CopyReport};
use crate::create::{self, CreateReport, CreateRequest, Selector};
use crate::error::Error;
use crate::milvus::{ClientOptions, MilvusClient};
use crate::restore::{self, Naming, RestoreError, RestoreReport, RestoreRequest};
use crate::storage::{StorageErrorKind, Store, layout};
use crate::transfer::{self, CopyRequest, CopyTarget, RunContext, Session};

/// A failure of one phase of a migration: the phase, then the underlying error (which names
/// the collection and the store or Milvus it was talking to).
#[derive(Debug, thiserror::Error)]
#[error("migrate, phase {phase}: {source}")]
pub struct PhaseError {
    /// `preflight`, `create`, `copy`, `restore` or `cleanup`.
    pub phase: &'static str,
    /// What went wrong.
    #[source]
    pub source: Box<Error>,
}

impl PhaseError {
    /// Whether running the same command again may succeed unchanged.
    pub fn is_retryable(&self) -> bool {
        self.source.is_retryable()
    }
}

/// Tags an error with its phase.
fn in_phase<T>(phase: &'static str, r: Result<T, Error>) -> Result<T, Error> {
    r.map_err(|e| match e {
        Error::Phase(p) => Error::Phase(p),
        e => Error::Phase(PhaseError {
            phase,
            source: Box::new(e),
        }),
    })
}

/// A `migrate` request.
#[derive(Debug, Clone)]
pub struct MigrateRequest {
    /// Source profile (Milvus A, its storage and backup store).
    pub from: Profile,
    /// Target profile (Milvus B, its storage and backup store).
    pub to: Profile,
    /// Backup name; default derived from the request, so a rerun finds its state.
    pub name: Option<String>,
    /// Collections (`coll`, `db.coll`, `db.*`).
    pub selectors: Vec<Selector>,
    /// Target names.
    pub naming: Naming,
    /// Recreate indexes on B.
    pub rebuild_index: bool,
    /// Load on B.
    pub load: bool,
    /// Replace existing target collections.
    pub drop_existing: bool,
    /// Keep the backup on A and its copy on B afterwards.
    pub keep_backup: bool,
    /// Write the backup straight into B's backup store (one copy instead of two, no backup on
    /// A).
    pub direct: bool,
    /// Copier settings.
    pub overrides: TransferOptions,
    /// Ledger directory.
    pub state_dir: Option<PathBuf>,
    /// On failure or cancel, keep a partially restored collection on B.
    pub keep_partial: bool,
    /// Shared limit and cancel signal.
    pub context: RunContext,
}

/// Time spent in one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseTime {
    /// `create`, `copy`, `restore`, `cleanup`.
    pub phase: String,
    /// Seconds.
    pub secs: f64,
    /// What happened (e.g. "reused a complete backup").
    pub note: String,
}

/// One migrated collection.
#[derive(Debug, Clone, Serialize)]
pub struct MigratedCollection {
    /// `db.coll` on A.
    pub source: String,
    /// `db.coll` on B.
    pub target: String,
    /// Rows on A at backup time (`count(*)`, when A had it loaded).
    pub rows_a: Option<u64>,
    /// Rows on B after the restore (`count(*)`, when loaded).
    pub rows_b: Option<u64>,
    /// Rows the imports reported.
    pub rows_imported: u64,
    /// Whether B's counts were compared with A's (collection and partitions).
    pub verified: bool,
}

/// The result of `migrate`.
#[derive(Debug, Clone, Serialize)]
pub struct MigrateReport {
    /// Backup name used.
    pub name: String,
    /// Per collection.
    pub collections: Vec<MigratedCollection>,
    /// Per phase.
    pub phases: Vec<PhaseTime>,
    /// Bytes copied between the stores by this run (both copies when not direct).
    pub bytes_moved: u64,
    /// Wall time.
    pub duration_secs: f64,
    /// bytes_moved / duration, MiB/s.
    pub throughput_mib_s: f64,
    /// The create phase (absent when a complete backup was reused).
    pub create: Option<CreateReport>,
    /// The copy phase (absent with `direct` or one shared backup store).
    pub copy: Option<CopyReport>,
    /// The restore phase.
    pub restore: RestoreReport,
}

/// `<backupRootPath>/<name>.migrate-state.json`: what a migration has started on B.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct MigrateState {
    /// `db.coll` targets whose restore this migration started.
    restoring: Vec<String>,
}

/// The state file's key for the backup directory `dir`.
fn state_key(dir: &str) -> String {
    format!("{dir}.migrate-state.json")
}

/// The default backup name: `migrate_` and a hash of what is migrated where.
fn default_name(req: &MigrateRequest, targets: &[(String, String)]) -> String {
    let text = format!(
        "{}:{}\n{}:{}\n{:?}\n{:?}\n{}",
        req.from.milvus.address,
        req.from.milvus.port,
        req.to.milvus.address,
        req.to.milvus.port,
        targets,
        req.naming,
        req.direct
    );
    let hex = crate::copy::checksum::md5_hex_of(text.as_bytes());
    format!("migrate_{}", &hex[..16])
}

async fn read_state(store: &Store, dir: &str) -> Result<MigrateState, Error> {
    match store.read(&state_key(dir)).await {
        Ok(b) => Ok(serde_json::from_slice(&b).unwrap_or_default()),
        Err(e) if e.kind() == StorageErrorKind::NotFound => Ok(MigrateState::default()),
        Err(e) => Err(e.into()),
    }
}

async fn write_state(store: &Store, dir: &str, state: &MigrateState) -> Result<(), Error> {
    let bytes = serde_json::to_vec(state).unwrap_or_default();
    store.put(&state_key(dir), bytes.into()).await?;
    Ok(())
}

/// Runs `migrate`.
///
/// # Errors
/// [`Error`] from the phase that failed; each names the phase's collection and server.
pub async fn migrate(
    req: MigrateRequest,
    observer: Arc<dyn CopyObserver>,
) -> Result<MigrateReport, Error> {
    let mut phase = "preflight";
    let r = run(&req, &observer, &mut phase).await;
    in_phase(phase, r)
}

async fn run(
    req: &MigrateRequest,
    observer: &Arc<dyn CopyObserver>,
    phase_now: &mut &'static str,
) -> Result<MigrateReport, Error> {
    let observer = Arc::clone(observer);
    let started = Instant::now();
    let mut phases = Vec::new();

    // Preflight: both Milvus, the collections on A, no clash on B.
    observer.step("preflight: connecting to both Milvus");
    let a = MilvusClient::connect(&req.from.milvus, ClientOptions::default()).await?;
    let b = MilvusClient::connect(&req.to.milvus, ClientOptions::default()).await?;
    let sources = create::resolve(&a, &req.selectors).await?;
    // The collections as resolved on A, for both create and restore.
    let resolved: Vec<Selector> = sources
        .iter()
        .map(|(db, c)| Selector::Collection {
            db: db.clone(),
            name: c.clone(),
        })
        .collect();
    let name = match &req.name {
        Some(n) => n.clone(),
        None => default_name(req, &sources),
    };
    layout::validate_backup_name(&name).map_err(RestoreError::BadRequest)?;
    let session = Session::with_context(req.to.transfer(&req.overrides)?, req.context.clone());
    let b_backup = session.open(&req.to.backup_storage)?;
    let b_dir = layout::backup_dir(&req.to.backup_storage.root_path, &name);
    let mut state = read_state(&b_backup, &b_dir).await?;
    let b_dbs = b.list_databases().await?;
    let mut ours_to_redo = false;
    for (db, coll) in &sources {
        let (tdb, tname) = req.naming.target(db, coll);
        let key = format!("{tdb}.{tname}");
        if b_dbs.contains(&tdb) && b.with_db(&tdb).has_collection(&tname).await? {
            if state.restoring.contains(&key) {
                ours_to_redo = true;
            } else if !req.drop_existing {
                return Err(RestoreError::TargetExists {
                    db: tdb,
                    collection: tname,
                    address: b.address().to_string(),
                }
                .into());
            }
        }
    }

    // Phase 1: the backup on A (or, direct, in B's backup store).
    req.context.check()?;
    *phase_now = "create";
    let t = Instant::now();
    let mut source_profile = req.from.clone();
    if req.direct {
        source_profile.backup_storage = req.to.backup_storage.clone();
    }
    let a_backup = session.open(&source_profile.backup_storage)?;
    let a_dir = layout::backup_dir(&source_profile.backup_storage.root_path, &name);
    let complete = session.backup_complete(&a_backup, &a_dir).await?;
    let create_report = if complete {
        observer.step(&format!("create: reusing the complete backup `{name}`"));
        phases.push(PhaseTime {
            phase: "create".into(),
            secs: t.elapsed().as_secs_f64(),
            note: format!("reused the complete backup in {}", a_backup.name()),
        });
        None
    } else {
        observer.step(&format!("create: backing up on A into {}", a_backup.name()));
        let r = create::create(
            CreateRequest {
                profile: source_profile.clone(),
                name: name.clone(),
                selectors: resolved.clone(),
                overrides: req.overrides.clone(),
                state_dir: req.state_dir.clone(),
                context: req.context.clone(),
            },
            Arc::clone(&observer),
        )
        .await?;
        phases.push(PhaseTime {
            phase: "create".into(),
            secs: t.elapsed().as_secs_f64(),
            note: format!(
                "{} object(s), {} copied ({})",
                r.copy.objects_total, r.copy.objects_copied, r.copy.mode
            ),
        });
        Some(r)
    };

    // Phase 2: A's backup store -> B's backup store.
    req.context.check()?;
    *phase_now = "copy";
    let t = Instant::now();
    let same_place = a_backup.same_bucket_as(&b_backup) && a_dir == b_dir;
    let copy_report = if same_place {
        phases.push(PhaseTime {
            phase: "copy".into(),
            secs: 0.0,
            note: "none needed: the backup is already in B's backup store".into(),
        });
        None
    } else {
        observer.step(&format!("copy: {} -> {}", a_backup.name(), b_backup.name()));
        let r = transfer::copy(
            CopyRequest {
                from: source_profile.clone(),
                to: req.to.clone(),
                target: CopyTarget::Backup(name.clone()),
                overrides: req.overrides.clone(),
                overwrite: false,
                state_dir: req.state_dir.clone(),
                context: req.context.clone(),
            },
            Arc::clone(&observer),
        )
        .await?;
        if let Some(f) = r.failures.first() {
            return Err(crate::create::CreateError::Incomplete {
                failed: r.objects_failed,
                total: r.objects_total,
                example: f.key.clone(),
                reason: f.error.clone(),
            }
            .into());
        }
        phases.push(PhaseTime {
            phase: "copy".into(),
            secs: t.elapsed().as_secs_f64(),
            note: format!(
                "{} object(s), {} copied, {} skipped",
                r.objects_total, r.objects_copied, r.objects_skipped
            ),
        });
        Some(r)
    };

    // Phase 3: restore on B, recording which targets this migration is restoring.
    req.context.check()?;
    *phase_now = "restore";
    let t = Instant::now();
    for (db, coll) in &sources {
        let (tdb, tname) = req.naming.target(db, coll);
        let key = format!("{tdb}.{tname}");
        if !state.restoring.contains(&key) {
            state.restoring.push(key);
        }
    }
    write_state(&b_backup, &b_dir, &state).await?;
    observer.step("restore: creating the collections on B and importing");
    let restored = restore::restore(
        RestoreRequest {
            profile: req.to.clone(),
            backup_storage: req.to.backup_storage.clone(),
            name: name.clone(),
            selectors: resolved,
            naming: req.naming.clone(),
            drop_existing: req.drop_existing || ours_to_redo,
            rebuild_index: req.rebuild_index,
            load: req.load,
            keep_partial: req.keep_partial,
            overrides: req.overrides.clone(),
            state_dir: req.state_dir.clone(),
            context: req.context.clone(),
        },
        Arc::clone(&observer),
    )
    .await?;
    phases.push(PhaseTime {
        phase: "restore".into(),
        secs: t.elapsed().as_secs_f64(),
        note: format!(
            "import {:.1}s, index+load {:.1}s",
            restored
                .collections
                .iter()
                .map(|c| c.import_secs)
                .sum::<f64>(),
            restored
                .collections
                .iter()
                .map(|c| c.index_load_secs)
                .sum::<f64>()
        ),
    });

    // Phase 4: the intermediate copies.
    req.context.check()?;
    *phase_now = "cleanup";
    let t = Instant::now();
    if req.keep_backup {
        phases.push(PhaseTime {
            phase: "cleanup".into(),
            secs: 0.0,
            note: format!("kept the backup `{name}`"),
        });
    } else {
        observer.step("cleanup: removing the intermediate backup copies");
        // The state file last: it must outlive every other trace of this run.
        let mut removed = 0;
        if !same_place {
            removed += session
                .delete_prefix(&a_backup, &format!("{a_dir}/"))
                .await?;
        }
        removed += session
            .delete_prefix(&b_backup, &format!("{b_dir}/"))
            .await?;
        b_backup.delete(&state_key(&b_dir)).await?;
        phases.push(PhaseTime {
            phase: "cleanup".into(),
            secs: t.elapsed().as_secs_f64(),
            note: format!("removed {removed} object(s) of the backup copies"),
        });
    }

    let collections = restored
        .collections
        .iter()
        .map(|c| MigratedCollection {
            source: format!("{}.{}", c.source_db, c.source_collection),
            target: format!("{}.{}", c.db_name, c.collection_name),
            rows_a: c.expected_rows,
            rows_b: c.rows,
            rows_imported: c.rows_imported,
            verified: c.verified,
        })
        .collect();
    let bytes_moved = create_report.as_ref().map_or(0, |r| r.copy.bytes_copied)
        + copy_report.as_ref().map_or(0, |r| r.bytes_copied)
        + restored.bytes_staged;
    let duration = started.elapsed().as_secs_f64();
    Ok(MigrateReport {
        name,
        collections,
        phases,
        bytes_moved,
        duration_secs: duration,
        throughput_mib_s: bytes_moved as f64 / 1048576.0 / duration.max(1e-9),
        create: create_report,
        copy: copy_report,
        restore: restored,
    })
}

/// What [`discard`] undid.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Discarded {
    /// Multipart uploads aborted.
    pub uploads_aborted: u64,
    /// `db.coll` collections dropped on B.
    pub collections_dropped: Vec<String>,
    /// Objects removed: staged binlogs and the backup copies.
    pub objects_removed: u64,
}

/// Undoes what a stopped (cancelled or abandoned) migration named `name` left behind:
/// aborts the multipart uploads its ledgers in `req.state_dir` record as open, drops the
/// collections it was restoring on B unless `req.keep_partial` (after their imports end),
/// removes binlogs staged for those restores, and removes the backup copies unless
/// `req.keep_backup`. Runs without `req.context`'s cancel signal.
///
/// # Errors
/// A store or Milvus failure; what was undone before it stays undone, and running it again
/// finishes the rest.
pub async fn discard(
    req: &MigrateRequest,
    name: &str,
    observer: &dyn CopyObserver,
) -> Result<Discarded, Error> {
    let mut out = Discarded::default();
    let context = RunContext {
        shared_bytes: req.context.shared_bytes.clone(),
        ..RunContext::default()
    };
    let session = Session::with_context(req.to.transfer(&req.overrides)?, context);
    let mut a_backup_cfg = req.from.backup_storage.clone();
    if req.direct {
        a_backup_cfg = req.to.backup_storage.clone();
    }
    let a_backup = session.open(&a_backup_cfg)?;
    let b_backup = session.open(&req.to.backup_storage)?;
    let b_milvus = session.open(&req.to.milvus_storage)?;
    let a_milvus = session.open(&req.from.milvus_storage)?;

    if let Some(dir) = &req.state_dir {
        let stores = [&a_milvus, &a_backup, &b_backup, &b_milvus];
        out.uploads_aborted = crate::copy::abort_stranded(dir, &stores).await?;
        if out.uploads_aborted > 0 {
            observer.step(&format!(
                "discard: aborted {} open multipart upload(s)",
                out.uploads_aborted
            ));
        }
    }

    let b_dir = layout::backup_dir(&req.to.backup_storage.root_path, name);
    let state = read_state(&b_backup, &b_dir).await?;
    if !state.restoring.is_empty() {
        let b = MilvusClient::connect(&req.to.milvus, ClientOptions::default()).await?;
        let dbs = b.list_databases().await?;
        for key in &state.restoring {
            let Some((db, coll)) = key.split_once('.') else {
                continue;
            };
            out.objects_removed += session
                .delete_prefix(&b_milvus, &restore::temp_prefix(name, db, coll))
                .await?;
            if req.keep_partial || !dbs.iter().any(|d| d == db) {
                continue;
            }
            let c = b.with_db(db);
            if c.has_collection(coll).await? {
                restore::wait_for_imports(&c, db, coll, observer).await?;
                c.drop_collection(coll).await?;
                observer.step(&format!("discard: dropped the partial collection `{key}`"));
                out.collections_dropped.push(key.clone());
            }
        }
    }

    if !req.keep_backup {
        let a_dir = layout::backup_dir(&a_backup_cfg.root_path, name);
        if !(a_backup.same_bucket_as(&b_backup) && a_dir == b_dir) {
            out.objects_removed += session
                .delete_prefix(&a_backup, &format!("{a_dir}/"))
                .await?;
        }
        out.objects_removed += session
            .delete_prefix(&b_backup, &format!("{b_dir}/"))
            .await?;
        match b_backup.delete(&state_key(&b_dir)).await {
            Err(e) if e.kind() != StorageErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        observer.step(&format!(
            "discard: removed {} object(s) of the backup copies and staged binlogs",
            out.objects_removed
        ));
    }
    Ok(out)
}
