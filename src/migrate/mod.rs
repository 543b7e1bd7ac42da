//! `migrate`: collections from Milvus A to Milvus B in one command, the manual procedure
//! (`milvus-backup create` on A, download, upload, `milvus-backup restore` on B) done end to end.
//!
//! Phases: preflight (both Milvus reachable, no name clash on B), create the backup on A (in A's
//! backup store; with `direct`, straight into B's backup store), copy it to B's backup store,
//! restore it on B, verify (rows, then the settings: [`verify::meta`]; a required setting that
//! differs fails the migration as a content difference does), clean up the intermediate
//! copies unless asked to keep them.
//!
//! A migration is a job that is safe to start again (its records: [`records`]):
//! - **Resumable.** The backup name is derived from the request, so the same command finds its
//!   own earlier state. A complete backup is reused, the copy skips what is already at B and
//!   resumes open uploads, and a restore interrupted on B is redone from scratch: the targets a
//!   run starts restoring are recorded beside the backup in B's backup store, which lets a
//!   rerun tell its own partial collection from a user's collection of that name.
//! - **One run at a time.** After preflight a run takes the migration's lease in B's backup
//!   store (every run of the migration writes there; [`crate::lease`]); a second run waits for
//!   it or stops with [`LeaseError::Held`]. A run that loses its lease stops and undoes nothing.
//! - **Idempotent.** A run that ends writes a completion record naming the targets and their
//!   ids; a later run of the same migration checks them and changes nothing, or reports what
//!   changed on B ([`MigrateError::TargetsChanged`]).
//!
//! Does not own the flows themselves ([`crate::create`], [`crate::transfer`],
//! [`crate::restore`]).

mod records;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use records::{DoneCollection, DoneRecord, TargetNow, differences};
use records::{done_key, lease_key, read_done, read_state, state_key, write_done, write_state};

use crate::clock::unix_now;
use crate::config::{Profile, TransferOptions};
use crate::copy::{CopyObserver, CopyReport};
use crate::create::{self, CreateReport, CreateRequest, Selector};
use crate::error::Error;
use crate::lease::{Lease, LeaseError, LeaseOptions};
use crate::milvus::{ClientOptions, MilvusClient};
use crate::restore::{self, Naming, RestoreError, RestoreReport, RestoreRequest};
use crate::storage::{StorageErrorKind, Store, layout};
use crate::transfer::{self, CopyRequest, CopyTarget, RunContext, Session};
use crate::verify::{
    self, CollectionVerification, MetaComparison, VerifyError, VerifyMode, VerifyOptions,
};

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

/// A migration that cannot run as asked.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The migration completed earlier, and B no longer holds what it left.
    #[error(
        "migration {name} completed at {completed_at}, but B changed since: {}; rerun with \
         --drop-existing to migrate again (replacing the targets)",
        differences.join("; ")
    )]
    TargetsChanged {
        /// The migration.
        name: String,
        /// When it completed, RFC 3339.
        completed_at: String,
        /// What changed, one line per target.
        differences: Vec<String>,
    },
}

/// Tags an error with its phase.
fn in_phase<T>(phase: &'static str, r: Result<T, Error>) -> Result<T, Error> {
    r.map_err(|e| match e {
        Error::Phase(p) => Error::Phase(p),
        // Not a phase's failure: the run's standing (lease, earlier completion).
        e @ (Error::Lease(_) | Error::Migrate(_)) => e,
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
    /// Replace existing target collections (and migrate again one that completed earlier).
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
    /// Stage every binlog on B before the first import (see [`RestoreRequest::sequential`]).
    pub sequential: bool,
    /// The migration's lease: its ttl, and whether to wait for another run holding it.
    pub lease: LeaseOptions,
    /// The last phase's check of B against A: counts only, or also content (a sample of
    /// rows, or every row). A content difference fails the migration and keeps the backup.
    pub verify: VerifyOptions,
    /// Shared limit and cancel signal.
    pub context: RunContext,
}

/// Time spent in one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseTime {
    /// `check`, `create`, `copy`, `restore`, `verify`, `cleanup`.
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
    /// Rows the imports reported (0 when nothing was imported by this run).
    pub rows_imported: u64,
    /// Whether B's counts were compared with A's (collection and partitions), and its
    /// content too unless the verification mode is `count`.
    pub verified: bool,
    /// How B was checked: `content (sample)`, `content (full)`, `count`, or `not verified`
    /// and why.
    pub verified_by: String,
    /// The content comparison of B with A (absent in `count` mode or when B is not loaded).
    pub verification: Option<CollectionVerification>,
    /// B's settings against A's, item by item (absent when found complete earlier).
    pub metadata: Option<MetaComparison>,
}

/// The result of `migrate`.
#[derive(Debug, Clone, Serialize)]
pub struct MigrateReport {
    /// Backup name used.
    pub name: String,
    /// When an earlier run completed this migration (RFC 3339), if this run found it
    /// complete and B unchanged, and so did nothing.
    pub completed_earlier: Option<String>,
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
    /// The restore phase (absent when the migration had completed earlier).
    pub restore: Option<RestoreReport>,
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

/// Runs `migrate`.
///
/// # Errors
/// [`Error`] from the phase that failed; each names the phase's collection and server.
/// [`Error::Lease`] when another run holds the migration (and `req.lease.wait` is off) or took
/// it over from this one; [`Error::Migrate`] when it completed earlier and B changed since.
pub async fn migrate(
    req: MigrateRequest,
    observer: Arc<dyn CopyObserver>,
) -> Result<MigrateReport, Error> {
    let mut phase = "preflight";
    let r = run(&req, &observer, &mut phase).await;
    in_phase(phase, r)
}

/// What preflight settles once for the whole run: both Milvus, the collections, the name, the
/// stores.
struct Plan {
    b: MilvusClient,
    /// `(db, collection)` on A.
    sources: Vec<(String, String)>,
    /// The same as selectors, for create and restore.
    resolved: Vec<Selector>,
    name: String,
    session: Session,
    /// The profile the backup is created with (A's, with B's backup store when direct).
    source_profile: Profile,
    a_backup: Store,
    a_dir: String,
    b_backup: Store,
    b_dir: String,
}

impl Plan {
    async fn build(req: &MigrateRequest) -> Result<Plan, Error> {
        let a = MilvusClient::connect(&req.from.milvus, ClientOptions::default()).await?;
        let b = MilvusClient::connect(&req.to.milvus, ClientOptions::default()).await?;
        let sources = create::resolve(&a, &req.selectors).await?;
        let unsupported = |coll: &str, reason: String| -> Error {
            RestoreError::Unsupported {
                address: b.address().to_string(),
                version: b.version().raw.clone(),
                collection: coll.to_string(),
                reason,
            }
            .into()
        };
        // A backup from a newer release line than B's cannot be imported there: refuse now,
        // before anything is written.
        if let Err(reason) = crate::milvus::restorable_into(a.version(), b.version())
            && let Some((_, coll)) = sources.first()
        {
            return Err(unsupported(coll, reason));
        }
        // The same for each schema's types and features by B's version (segments are checked
        // again by the restore, once the backup records them).
        for (db, coll) in &sources {
            let described = a.with_db(db).describe_collection(coll).await?;
            let info = crate::backup::CollectionBackupInfo {
                collection_name: coll.clone(),
                schema: described
                    .schema
                    .as_ref()
                    .map(crate::milvus::convert::schema_to_meta),
                ..Default::default()
            };
            crate::milvus::protocol::restorable(&info, b.version())
                .map_err(|reason| unsupported(coll, reason))?;
        }
        let resolved = sources
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
        let mut source_profile = req.from.clone();
        if req.direct {
            source_profile.backup_storage = req.to.backup_storage.clone();
        }
        let a_backup = session.open(&source_profile.backup_storage)?;
        let a_dir = layout::backup_dir(&source_profile.backup_storage.root_path, &name);
        Ok(Plan {
            b,
            sources,
            resolved,
            name,
            session,
            source_profile,
            a_backup,
            a_dir,
            b_backup,
            b_dir,
        })
    }

    /// The backup is written where B reads it: nothing to copy.
    fn same_place(&self) -> bool {
        self.a_backup.same_bucket_as(&self.b_backup) && self.a_dir == self.b_dir
    }

    /// Removes both backup copies and the state file (last: it must outlive every other trace
    /// of a run); returns the objects removed.
    async fn remove_copies(&self) -> Result<u64, Error> {
        let mut removed = 0;
        if !self.same_place() {
            removed += self
                .session
                .delete_prefix(&self.a_backup, &format!("{}/", self.a_dir))
                .await?;
        }
        removed += self
            .session
            .delete_prefix(&self.b_backup, &format!("{}/", self.b_dir))
            .await?;
        self.b_backup.delete(&state_key(&self.b_dir)).await?;
        Ok(removed)
    }
}

async fn run(
    req: &MigrateRequest,
    observer: &Arc<dyn CopyObserver>,
    phase_now: &mut &'static str,
) -> Result<MigrateReport, Error> {
    let started = Instant::now();
    observer.step("preflight: connecting to both Milvus");
    let plan = Plan::build(req).await?;

    // Completed earlier, nothing left to clean: check B, touch nothing (not even the lease).
    if !req.drop_existing
        && let Some(done) = read_done(&plan.b_backup, &plan.b_dir).await?
        && (done.cleaned || req.keep_backup)
    {
        return finished(&plan, &done, started).await;
    }

    observer.step(&format!("preflight: taking the lease of `{}`", plan.name));
    let waiting = |held: &LeaseError| observer.step(&format!("waiting: {held}"));
    let key = lease_key(&plan.b_dir);
    let lease = tokio::select! {
        l = Lease::acquire(
            &plan.b_backup,
            &key,
            &plan.name,
            &req.lease,
            &waiting,
        ) => l?,
        () = req.context.cancel.cancelled() => return Err(Error::Cancelled),
    };
    // Losing the lease stops the run at its next step, fenced: it undoes nothing.
    let context = RunContext {
        shared_bytes: req.context.shared_bytes.clone(),
        cancel: req.context.cancel.child_token(),
        fenced: CancellationToken::new(),
    };
    let watch = {
        let (lost, context) = (lease.lost(), context.clone());
        tokio::spawn(async move {
            lost.cancelled().await;
            context.fenced.cancel();
            context.cancel.cancel();
        })
    };
    let result = run_held(req, &plan, observer, phase_now, &context, started).await;
    watch.abort();
    lease.check()?;
    if let Err(e) = lease.release().await {
        tracing::warn!("{e}");
    }
    result
}

/// Checks what a completed migration left on B.
async fn finished(
    plan: &Plan,
    done: &DoneRecord,
    started: Instant,
) -> Result<MigrateReport, Error> {
    let t = Instant::now();
    let now = records::targets_now(&plan.b, done).await?;
    let diff = differences(done, &now);
    if !diff.is_empty() {
        return Err(MigrateError::TargetsChanged {
            name: plan.name.clone(),
            completed_at: records::when(done),
            differences: diff,
        }
        .into());
    }
    let collections = done
        .collections
        .iter()
        .zip(&now)
        .map(|(c, n)| {
            let rows_b = match n {
                TargetNow::Present { rows, .. } => *rows,
                TargetNow::Missing => None,
            };
            MigratedCollection {
                source: c.source.clone(),
                target: c.target.clone(),
                rows_a: c.verified.then_some(c.rows),
                rows_b,
                rows_imported: 0,
                verified: c.verified && rows_b == Some(c.rows),
                verified_by: if c.verified && rows_b == Some(c.rows) {
                    "count (earlier run)".into()
                } else {
                    "not verified".into()
                },
                verification: None,
                metadata: None,
            }
        })
        .collect();
    Ok(MigrateReport {
        name: plan.name.clone(),
        completed_earlier: Some(records::when(done)),
        collections,
        phases: vec![PhaseTime {
            phase: "check".into(),
            secs: t.elapsed().as_secs_f64(),
            note: format!(
                "completed at {}; the targets on B are unchanged: nothing to do",
                records::when(done)
            ),
        }],
        bytes_moved: 0,
        duration_secs: started.elapsed().as_secs_f64(),
        throughput_mib_s: 0.0,
        create: None,
        copy: None,
        restore: None,
    })
}

/// The migration under its lease.
async fn run_held(
    req: &MigrateRequest,
    plan: &Plan,
    observer: &Arc<dyn CopyObserver>,
    phase_now: &mut &'static str,
    context: &RunContext,
    started: Instant,
) -> Result<MigrateReport, Error> {
    let observer = Arc::clone(observer);
    let name = &plan.name;
    // A run this one waited for may have completed it.
    match read_done(&plan.b_backup, &plan.b_dir).await? {
        Some(done) if !req.drop_existing => {
            let report = finished(plan, &done, started).await?;
            if !done.cleaned && !req.keep_backup {
                *phase_now = "cleanup";
                observer.step("cleanup: removing the backup copies an earlier run left");
                plan.remove_copies().await?;
                write_done(
                    &plan.b_backup,
                    &plan.b_dir,
                    &DoneRecord {
                        cleaned: true,
                        ..done
                    },
                )
                .await?;
            }
            return Ok(report);
        }
        // --drop-existing: migrate again.
        Some(_) => plan.b_backup.delete(&done_key(&plan.b_dir)).await?,
        None => {}
    }

    // No clash on B, except with this migration's own partial targets.
    let mut state = read_state(&plan.b_backup, &plan.b_dir).await?;
    let b = &plan.b;
    let b_dbs = b.list_databases().await?;
    let mut ours_to_redo = false;
    for (db, coll) in &plan.sources {
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
    let mut phases = Vec::new();

    // Phase 1: the backup on A (or, direct, in B's backup store).
    context.check()?;
    *phase_now = "create";
    let t = Instant::now();
    let complete = plan
        .session
        .backup_complete(&plan.a_backup, &plan.a_dir)
        .await?;
    let create_report = if complete {
        observer.step(&format!("create: reusing the complete backup `{name}`"));
        phases.push(PhaseTime {
            phase: "create".into(),
            secs: t.elapsed().as_secs_f64(),
            note: format!("reused the complete backup in {}", plan.a_backup.name()),
        });
        None
    } else {
        observer.step(&format!(
            "create: backing up on A into {}",
            plan.a_backup.name()
        ));
        let r = create::create(
            CreateRequest {
                profile: plan.source_profile.clone(),
                name: name.clone(),
                selectors: plan.resolved.clone(),
                overrides: req.overrides.clone(),
                state_dir: req.state_dir.clone(),
                context: context.clone(),
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
    context.check()?;
    *phase_now = "copy";
    let t = Instant::now();
    let copy_report = if plan.same_place() {
        phases.push(PhaseTime {
            phase: "copy".into(),
            secs: 0.0,
            note: "none needed: the backup is already in B's backup store".into(),
        });
        None
    } else {
        observer.step(&format!(
            "copy: {} -> {}",
            plan.a_backup.name(),
            plan.b_backup.name()
        ));
        let r = transfer::copy(
            CopyRequest {
                from: plan.source_profile.clone(),
                to: req.to.clone(),
                target: CopyTarget::Backup(name.clone()),
                overrides: req.overrides.clone(),
                overwrite: false,
                state_dir: req.state_dir.clone(),
                context: context.clone(),
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
    context.check()?;
    *phase_now = "restore";
    let t = Instant::now();
    for (db, coll) in &plan.sources {
        let (tdb, tname) = req.naming.target(db, coll);
        let key = format!("{tdb}.{tname}");
        if !state.restoring.contains(&key) {
            state.restoring.push(key);
        }
    }
    write_state(&plan.b_backup, &plan.b_dir, &state).await?;
    observer.step("restore: creating the collections on B and importing");
    let restored = restore::restore(
        RestoreRequest {
            profile: req.to.clone(),
            backup_storage: req.to.backup_storage.clone(),
            name: name.clone(),
            selectors: plan.resolved.clone(),
            naming: req.naming.clone(),
            drop_existing: req.drop_existing || ours_to_redo,
            rebuild_index: req.rebuild_index,
            load: req.load,
            keep_partial: req.keep_partial,
            sequential: req.sequential,
            overrides: req.overrides.clone(),
            state_dir: req.state_dir.clone(),
            context: context.clone(),
        },
        Arc::clone(&observer),
    )
    .await?;
    phases.push(PhaseTime {
        phase: "restore".into(),
        secs: t.elapsed().as_secs_f64(),
        note: format!(
            "stage+import {:.1}s, index+load {:.1}s",
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

    // Phase 4: B's content against A's. A difference fails the migration before the
    // completion record and the cleanup, so the backup stays for inspection.
    context.check()?;
    *phase_now = "verify";
    let t = Instant::now();
    let verifications = verify_content(req, plan, &restored, &observer).await?;
    let metadata = verify_metadata(req, plan, &restored).await?;
    let content = verifications.iter().flatten().map(|v| v.summary());
    phases.push(PhaseTime {
        phase: "verify".into(),
        secs: t.elapsed().as_secs_f64(),
        note: content
            .chain(metadata.iter().map(MetaComparison::summary))
            .collect::<Vec<_>>()
            .join("; "),
    });

    // The completion record, before the cleanup: a rerun after a kill from here on checks B
    // and finishes the cleanup instead of migrating again.
    context.check()?;
    *phase_now = "cleanup";
    let mut done = DoneRecord {
        name: name.clone(),
        completed_at: unix_now(),
        from: format!("{}:{}", req.from.milvus.address, req.from.milvus.port),
        to: format!("{}:{}", req.to.milvus.address, req.to.milvus.port),
        collections: Vec::with_capacity(restored.collections.len()),
        cleaned: false,
    };
    let mut collections = Vec::with_capacity(restored.collections.len());
    let checks = verifications.into_iter().zip(metadata);
    for (c, (content, metadata)) in restored.collections.iter().zip(checks) {
        let collection_id = b
            .with_db(&c.db_name)
            .describe_collection(&c.collection_name)
            .await?
            .collection_id;
        let migrated = MigratedCollection {
            source: format!("{}.{}", c.source_db, c.source_collection),
            target: format!("{}.{}", c.db_name, c.collection_name),
            rows_a: c.expected_rows,
            rows_b: c.rows,
            rows_imported: c.rows_imported,
            verified: c.verified,
            verified_by: match (&content, c.verified) {
                (Some(v), true) => format!("content ({})", v.mode),
                (None, true) => "count".into(),
                (_, false) if c.rows.is_none() => "not verified (B not loaded)".into(),
                (_, false) => "not verified (no count recorded on A)".into(),
            },
            verification: content,
            metadata: Some(metadata),
        };
        done.collections.push(DoneCollection {
            source: migrated.source.clone(),
            target: migrated.target.clone(),
            collection_id,
            rows: c.rows.unwrap_or(c.rows_imported),
            verified: c.verified,
        });
        collections.push(migrated);
    }
    write_done(&plan.b_backup, &plan.b_dir, &done).await?;

    // Phase 4: the intermediate copies.
    let t = Instant::now();
    if req.keep_backup {
        plan.b_backup.delete(&state_key(&plan.b_dir)).await?;
        phases.push(PhaseTime {
            phase: "cleanup".into(),
            secs: 0.0,
            note: format!("kept the backup `{name}`"),
        });
    } else {
        observer.step("cleanup: removing the intermediate backup copies");
        let removed = plan.remove_copies().await?;
        done.cleaned = true;
        write_done(&plan.b_backup, &plan.b_dir, &done).await?;
        phases.push(PhaseTime {
            phase: "cleanup".into(),
            secs: t.elapsed().as_secs_f64(),
            note: format!("removed {removed} object(s) of the backup copies"),
        });
    }

    let bytes_moved = create_report.as_ref().map_or(0, |r| r.copy.bytes_copied)
        + copy_report.as_ref().map_or(0, |r| r.bytes_copied)
        + restored.bytes_staged;
    let duration = started.elapsed().as_secs_f64();
    Ok(MigrateReport {
        name: name.clone(),
        completed_earlier: None,
        collections,
        phases,
        bytes_moved,
        duration_secs: duration,
        throughput_mib_s: bytes_moved as f64 / 1048576.0 / duration.max(1e-9),
        create: create_report,
        copy: copy_report,
        restore: Some(restored),
    })
}

/// Compares each restored collection on B with its source on A, unless the mode is `count`
/// (the restore compared the counts) or B is not loaded (nothing can be queried).
///
/// # Errors
/// [`VerifyError::Differs`] for the first collection whose content differs, naming the keys;
/// query failures.
async fn verify_content(
    req: &MigrateRequest,
    plan: &Plan,
    restored: &RestoreReport,
    observer: &Arc<dyn CopyObserver>,
) -> Result<Vec<Option<CollectionVerification>>, Error> {
    if req.verify.mode == VerifyMode::Count || restored.collections.iter().all(|c| c.rows.is_none())
    {
        return Ok(vec![None; restored.collections.len()]);
    }
    let a = MilvusClient::connect(&req.from.milvus, ClientOptions::default()).await?;
    let mut out = Vec::with_capacity(restored.collections.len());
    for c in &restored.collections {
        if c.rows.is_none() {
            out.push(None);
            continue;
        }
        observer.step(&format!(
            "verify: comparing `{}.{}` with `{}.{}` on A ({})",
            c.db_name, c.collection_name, c.source_db, c.source_collection, req.verify.mode
        ));
        let v = verify::verify_collection(
            &a.with_db(&c.source_db),
            &c.source_collection,
            &plan.b.with_db(&c.db_name),
            &c.collection_name,
            &req.verify,
        )
        .await?;
        if !v.ok() {
            return Err(VerifyError::Differs {
                source_name: v.source.clone(),
                target: v.target.clone(),
                summary: format!(
                    "{}; the backup `{}` is kept for inspection",
                    v.summary(),
                    plan.name
                ),
            }
            .into());
        }
        out.push(Some(v));
    }
    Ok(out)
}

/// Compares each restored collection's settings on B with its source's on A (see
/// [`verify::meta`]).
///
/// # Errors
/// [`VerifyError::MetadataDiffers`] for the first collection with a required item that
/// differs (a lost alias, another index, ...); describe failures.
async fn verify_metadata(
    req: &MigrateRequest,
    plan: &Plan,
    restored: &RestoreReport,
) -> Result<Vec<MetaComparison>, Error> {
    let a = MilvusClient::connect(&req.from.milvus, ClientOptions::default()).await?;
    let mut out = Vec::with_capacity(restored.collections.len());
    for c in &restored.collections {
        let (ca, cb) = (a.with_db(&c.source_db), plan.b.with_db(&c.db_name));
        let m = verify::verify_metadata(&ca, &c.source_collection, &cb, &c.collection_name).await?;
        if !m.ok() {
            return Err(VerifyError::MetadataDiffers {
                source_name: format!("{}.{}", c.source_db, c.source_collection),
                target: format!("{}.{}", c.db_name, c.collection_name),
                summary: format!(
                    "{}; the backup `{}` is kept for inspection",
                    m.summary(),
                    plan.name
                ),
            }
            .into());
        }
        out.push(m);
    }
    Ok(out)
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
/// `req.keep_backup`. Runs without `req.context`'s cancel signal, under the migration's lease.
///
/// # Errors
/// [`Error::Lease`] when another run of the migration holds its lease (nothing is undone
/// then); a store or Milvus failure: what was undone before it stays undone, and running it
/// again finishes the rest.
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
    // Another run of this migration may be at work now: undo nothing it needs.
    let no_wait = LeaseOptions {
        wait: false,
        ..req.lease.clone()
    };
    let lease = Lease::acquire(
        &b_backup,
        &lease_key(&b_dir),
        name,
        &no_wait,
        &|_: &LeaseError| {},
    )
    .await?;
    let result = async {
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
                    c.drop_collection_and_aliases(coll).await?;
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
        Ok::<_, Error>(())
    }
    .await;
    if let Err(e) = lease.release().await {
        tracing::warn!("{e}");
    }
    result?;
    Ok(out)
}
