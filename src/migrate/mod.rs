//! `migrate`: collections from Milvus A to Milvus B in one command, the manual procedure
//! (`milvus-backup create` on A, download, upload, `milvus-backup restore` on B) done end to end.
//!
//! Stages ([`Stages`], one method each, over a [`Plan`] built once): preflight (both Milvus
//! reachable, no name clash on B), create the backup on A (in A's backup store; with `direct`,
//! straight into B's backup store), copy it to B's backup store and restore it on B at once
//! (the copy writes the binlogs in the order the restore imports them, and each segment is
//! imported as soon as the copy has written it; `sequential` runs one after the other), verify
//! (rows, then the settings: [`verify::meta`]; a required setting that differs fails the
//! migration as a content difference does), record the completion, clean up the intermediate
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use records::{DoneCollection, DoneRecord, TargetNow, differences};
use records::{done_key, lease_key, read_done, read_state, state_key, write_done, write_state};

use crate::clock::unix_now;
use crate::config::{Profile, TransferOptions};
use crate::copy::{CopyObserver, CopyReport, Relay};
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
    /// Collections (`coll`, `db.coll`, `db.*`); none: the whole instance.
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
    /// Also move users, roles, grants and role bindings (`--rbac`), with the passwords of the
    /// users created on B.
    pub rbac: Option<crate::rbac::RbacPasswords>,
    /// The migration's lease: its ttl, and whether to wait for another run holding it.
    pub lease: LeaseOptions,
    /// The last phase's check of B against A: counts only, or also content (a sample of
    /// rows, or every row). A content difference fails the migration and keeps the backup.
    pub verify: VerifyOptions,
    /// Shared limit and cancel signal.
    pub context: RunContext,
}

impl MigrateRequest {
    /// Every database of A, also those without collections (no selector, `--all`).
    fn whole_instance(&self) -> bool {
        self.selectors.is_empty()
    }
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
    /// Per phase. The copy and the restore overlap unless `--sequential` (or nothing needed
    /// copying): their times then add up to more than the run's.
    pub phases: Vec<PhaseTime>,
    /// Segment imports that ended on B while the copy between the stores still ran (absent
    /// when the two did not run at once).
    pub imports_during_copy: Option<u64>,
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
    // `--rbac` makes another migration (its backup holds the RBAC); names without it stay
    // what they were.
    let text = if req.rbac.is_some() {
        format!("{text}\nrbac")
    } else {
        text
    };
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
        let b_backup = session.open_to_write(&req.to.backup_storage).await?;
        let b_dir = layout::backup_dir(&req.to.backup_storage.root_path, &name);
        let mut source_profile = req.from.clone();
        if req.direct {
            source_profile.backup_storage = req.to.backup_storage.clone();
        }
        let a_backup = session
            .open_to_write(&source_profile.backup_storage)
            .await?;
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
        imports_during_copy: None,
        bytes_moved: 0,
        duration_secs: started.elapsed().as_secs_f64(),
        throughput_mib_s: 0.0,
        create: None,
        copy: None,
        restore: None,
    })
}

/// The migration under its lease: its stages in order, each a method of [`Stages`].
async fn run_held(
    req: &MigrateRequest,
    plan: &Plan,
    observer: &Arc<dyn CopyObserver>,
    phase_now: &mut &'static str,
    context: &RunContext,
    started: Instant,
) -> Result<MigrateReport, Error> {
    let mut run = Stages {
        req,
        plan,
        observer: Arc::clone(observer),
        context,
        phases: Vec::new(),
        imports_during_copy: None,
    };
    // A run this one waited for may have completed it.
    if let Some(report) = run.completed_earlier(phase_now, started).await? {
        return Ok(report);
    }
    let redo = run.check_targets().await?;
    *phase_now = "create";
    let create = run.create().await?;
    let (copy, restored) = run.copy_and_restore(phase_now, redo).await?;
    *phase_now = "verify";
    let checks = run.verify(&restored).await?;
    *phase_now = "cleanup";
    let (collections, done) = run.record_done(&restored, checks).await?;
    run.cleanup(done).await?;

    let bytes_moved = create.as_ref().map_or(0, |r| r.copy.bytes_copied)
        + copy.as_ref().map_or(0, |r| r.bytes_copied)
        + restored.bytes_staged;
    let duration = started.elapsed().as_secs_f64();
    Ok(MigrateReport {
        name: plan.name.clone(),
        completed_earlier: None,
        collections,
        phases: run.phases,
        imports_during_copy: run.imports_during_copy,
        bytes_moved,
        duration_secs: duration,
        throughput_mib_s: bytes_moved as f64 / 1048576.0 / duration.max(1e-9),
        create,
        copy,
        restore: Some(restored),
    })
}

/// One run of a migration under its lease, stage by stage; `phases` collects each stage's
/// time.
struct Stages<'a> {
    req: &'a MigrateRequest,
    plan: &'a Plan,
    observer: Arc<dyn CopyObserver>,
    context: &'a RunContext,
    phases: Vec<PhaseTime>,
    /// Imports that ended on B while the copy still ran (when the two overlapped).
    imports_during_copy: Option<u64>,
}

impl Stages<'_> {
    fn phase(&mut self, phase: &str, t: Instant, note: String) {
        self.phases.push(PhaseTime {
            phase: phase.into(),
            secs: t.elapsed().as_secs_f64(),
            note,
        });
    }

    /// A completion record of an earlier run: check B against it (and finish its cleanup)
    /// instead of migrating again, unless `--drop-existing` asks to migrate again.
    async fn completed_earlier(
        &self,
        phase_now: &mut &'static str,
        started: Instant,
    ) -> Result<Option<MigrateReport>, Error> {
        let plan = self.plan;
        match read_done(&plan.b_backup, &plan.b_dir).await? {
            Some(done) if !self.req.drop_existing => {
                let report = finished(plan, &done, started).await?;
                if !done.cleaned && !self.req.keep_backup {
                    *phase_now = "cleanup";
                    self.observer
                        .step("cleanup: removing the backup copies an earlier run left");
                    plan.remove_copies().await?;
                    let cleaned = DoneRecord {
                        cleaned: true,
                        ..done
                    };
                    write_done(&plan.b_backup, &plan.b_dir, &cleaned).await?;
                }
                Ok(Some(report))
            }
            // --drop-existing: migrate again.
            Some(_) => {
                plan.b_backup.delete(&done_key(&plan.b_dir)).await?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// No clash on B, except with this migration's own partial targets; returns whether
    /// there are such (the restore then replaces them).
    async fn check_targets(&self) -> Result<bool, Error> {
        let (req, plan) = (self.req, self.plan);
        let state = read_state(&plan.b_backup, &plan.b_dir).await?;
        let b = &plan.b;
        let b_dbs = b.list_databases().await?;
        let mut ours_to_redo = false;
        for (db, coll) in &plan.sources {
            let (tdb, tname) = req.naming.target(db, coll);
            if !(b_dbs.contains(&tdb) && b.with_db(&tdb).has_collection(&tname).await?) {
                continue;
            }
            if state.restoring.contains(&format!("{tdb}.{tname}")) {
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
        Ok(ours_to_redo)
    }

    /// The backup on A (or, direct, in B's backup store), unless a complete one is there.
    async fn create(&mut self) -> Result<Option<CreateReport>, Error> {
        self.context.check()?;
        let plan = self.plan;
        let t = Instant::now();
        if plan
            .session
            .backup_complete(&plan.a_backup, &plan.a_dir)
            .await?
        {
            self.observer.step(&format!(
                "create: reusing the complete backup `{}`",
                plan.name
            ));
            let note = format!("reused the complete backup in {}", plan.a_backup.name());
            self.phase("create", t, note);
            return Ok(None);
        }
        self.observer.step(&format!(
            "create: backing up on A into {}",
            plan.a_backup.name()
        ));
        let r = create::create(
            CreateRequest {
                profile: plan.source_profile.clone(),
                name: plan.name.clone(),
                selectors: plan.resolved.clone(),
                strategy: create::FlushStrategy::Auto,
                rbac: self.req.rbac.is_some(),
                every_database: self.req.whole_instance(),
                overrides: self.req.overrides.clone(),
                state_dir: self.req.state_dir.clone(),
                context: self.context.clone(),
            },
            Arc::clone(&self.observer),
        )
        .await?;
        let note = format!(
            "{} object(s), {} copied ({})",
            r.copy.objects_total, r.copy.objects_copied, r.copy.mode
        );
        self.phase("create", t, note);
        Ok(Some(r))
    }

    /// A's backup store to B's, and the restore on B. Unless `sequential`, both at once: the
    /// copy writes the binlogs in the order the restore consumes them, and each segment is
    /// staged and imported as soon as the copy has written it.
    async fn copy_and_restore(
        &mut self,
        phase_now: &mut &'static str,
        redo: bool,
    ) -> Result<(Option<CopyReport>, RestoreReport), Error> {
        self.context.check()?;
        let plan = self.plan;
        *phase_now = "copy";
        if plan.same_place() {
            let note = "none needed: the backup is already in B's backup store".into();
            self.phase("copy", Instant::now(), note);
            *phase_now = "restore";
            return Ok((None, self.restore(redo, None).await?));
        }
        if self.req.sequential {
            let copy = self.copy().await?;
            *phase_now = "restore";
            return Ok((Some(copy), self.restore(redo, None).await?));
        }

        // The meta is read where the copy reads it: the copy writes B's last.
        let root = &plan.source_profile.backup_storage.root_path;
        let backup = restore::read_backup(&plan.a_backup, root, &plan.name).await?;
        let order = restore::consumption_order(&backup.0, &plan.a_dir)?;
        let relay = Relay::new(Arc::clone(&self.observer), plan.b_backup.name());
        let upstream = restore::Upstream {
            backup: Arc::new(backup),
            gate: relay.clone(),
        };
        self.observer
            .step("copy and restore at once: each segment is imported once it is on B");
        let t = Instant::now();
        let beside = BesideCopy::new(Arc::clone(&self.observer));
        let copy = async {
            let r = self.copy_fed(order, &relay).await;
            let imports = beside.copy_ended();
            match &r {
                Ok(_) => {
                    relay.complete();
                    self.observer.step(&format!(
                        "restore: the copy is complete ({imports} import(s) ended meanwhile); \
                         importing the rest"
                    ));
                }
                Err(e) => relay.failed(&e.to_string()),
            }
            (r, t.elapsed().as_secs_f64(), imports)
        };
        let mut overlapped = Stages {
            phases: Vec::new(),
            observer: beside.clone(),
            imports_during_copy: None,
            ..*self
        };
        let restore = overlapped.restore(redo, Some(upstream));
        let ((copied, copy_secs, imports), restored) = tokio::join!(copy, restore);
        // The copy's failure is the cause when both failed.
        let copied = copied?;
        self.imports_during_copy = Some(imports);
        self.phases.push(PhaseTime {
            phase: "copy".into(),
            secs: copy_secs,
            note: format!(
                "{} object(s), {} copied, {} skipped; {imports} import(s) ended on B meanwhile",
                copied.objects_total, copied.objects_copied, copied.objects_skipped
            ),
        });
        self.phases.append(&mut overlapped.phases);
        *phase_now = "restore";
        Ok((Some(copied), restored?))
    }

    /// The copy to B's backup store, checked for objects left behind.
    async fn copy(&mut self) -> Result<CopyReport, Error> {
        let observer = Arc::clone(&self.observer);
        let t = Instant::now();
        let r = self.copy_with(None, observer).await?;
        let note = format!(
            "{} object(s), {} copied, {} skipped",
            r.objects_total, r.objects_copied, r.objects_skipped
        );
        self.phase("copy", t, note);
        Ok(r)
    }

    /// [`Stages::copy`] feeding a restore through `relay` (which hears of every object).
    async fn copy_fed(&self, order: Vec<String>, relay: &Arc<Relay>) -> Result<CopyReport, Error> {
        let observer: Arc<dyn CopyObserver> = relay.clone();
        self.copy_with(Some(order), observer).await
    }

    async fn copy_with(
        &self,
        order: Option<Vec<String>>,
        observer: Arc<dyn CopyObserver>,
    ) -> Result<CopyReport, Error> {
        let plan = self.plan;
        self.observer.step(&format!(
            "copy: {} -> {}",
            plan.a_backup.name(),
            plan.b_backup.name()
        ));
        let mut prepared = transfer::prepare_copy(&CopyRequest {
            from: plan.source_profile.clone(),
            to: self.req.to.clone(),
            target: CopyTarget::Backup(plan.name.clone()),
            overrides: self.req.overrides.clone(),
            overwrite: false,
            state_dir: self.req.state_dir.clone(),
            context: self.context.clone(),
        })
        .await?;
        prepared.job.order = order;
        let r = prepared.run(observer).await?;
        if let Some(f) = r.failures.first() {
            return Err(crate::create::CreateError::Incomplete {
                failed: r.objects_failed,
                total: r.objects_total,
                example: f.key.clone(),
                reason: f.error.clone(),
            }
            .into());
        }
        Ok(r)
    }

    /// The restore on B, recording first which targets this migration is restoring.
    async fn restore(
        &mut self,
        redo: bool,
        upstream: Option<restore::Upstream>,
    ) -> Result<RestoreReport, Error> {
        let (req, plan) = (self.req, self.plan);
        self.context.check()?;
        let t = Instant::now();
        let mut state = read_state(&plan.b_backup, &plan.b_dir).await?;
        for (db, coll) in &plan.sources {
            let (tdb, tname) = req.naming.target(db, coll);
            let key = format!("{tdb}.{tname}");
            if !state.restoring.contains(&key) {
                state.restoring.push(key);
            }
        }
        write_state(&plan.b_backup, &plan.b_dir, &state).await?;
        self.observer
            .step("restore: creating the collections on B and importing");
        let observer = Arc::clone(&self.observer);
        let restored = restore::restore(
            RestoreRequest {
                profile: req.to.clone(),
                backup_storage: req.to.backup_storage.clone(),
                name: plan.name.clone(),
                // A whole instance restores all the backup holds (the collections resolved
                // once, which the create pinned), so the databases without collections it
                // records are created too.
                selectors: if req.whole_instance() {
                    Vec::new()
                } else {
                    plan.resolved.clone()
                },
                naming: req.naming.clone(),
                drop_existing: req.drop_existing || redo,
                rebuild_index: req.rebuild_index,
                load: req.load,
                keep_partial: req.keep_partial,
                options: restore::RestoreOptions {
                    rbac: req.rbac.clone(),
                    ..Default::default()
                },
                sequential: req.sequential,
                upstream,
                overrides: req.overrides.clone(),
                state_dir: req.state_dir.clone(),
                context: self.context.clone(),
            },
            observer,
        )
        .await?;
        let sum = |f: fn(&restore::RestoredCollection) -> f64| {
            restored.collections.iter().map(f).sum::<f64>()
        };
        let note = format!(
            "stage+import {:.1}s, index+load {:.1}s",
            sum(|c| c.import_secs),
            sum(|c| c.index_load_secs)
        );
        self.phase("restore", t, note);
        Ok(restored)
    }

    /// B's content against A's. A difference fails the migration before the completion
    /// record and the cleanup, so the backup stays for inspection.
    async fn verify(&mut self, restored: &RestoreReport) -> Result<Checks, Error> {
        self.context.check()?;
        let t = Instant::now();
        let v = verify_content(self.req, self.plan, restored, &self.observer).await?;
        let metadata = verify_metadata(self.req, self.plan, restored).await?;
        let note = v
            .iter()
            .zip(&restored.collections)
            .filter_map(|(check, c)| match check {
                ContentCheck::Compared(v) => Some(v.summary()),
                ContentCheck::CountOnly => None,
                ContentCheck::SourceNotLoaded => Some(format!(
                    "`{}.{}` is not loaded on A: content not compared, {} (load it on A and \
                     run `milvus-migrate verify`)",
                    c.source_db,
                    c.source_collection,
                    if c.verified {
                        "B's rows counted against the backup's"
                    } else {
                        "and the backup of an unloaded collection records no row count"
                    }
                )),
            })
            .chain(metadata.iter().map(MetaComparison::summary))
            .collect::<Vec<_>>()
            .join("; ");
        self.phase("verify", t, note);
        Ok(Checks {
            content: v,
            metadata,
        })
    }

    /// The completion record, before the cleanup: a rerun after a kill from here on checks B
    /// and finishes the cleanup instead of migrating again. Returns the report's rows and the
    /// record (the cleanup marks it cleaned).
    async fn record_done(
        &self,
        restored: &RestoreReport,
        checks: Checks,
    ) -> Result<(Vec<MigratedCollection>, DoneRecord), Error> {
        self.context.check()?;
        let (req, plan) = (self.req, self.plan);
        let mut done = DoneRecord {
            name: plan.name.clone(),
            completed_at: unix_now(),
            from: format!("{}:{}", req.from.milvus.address, req.from.milvus.port),
            to: format!("{}:{}", req.to.milvus.address, req.to.milvus.port),
            collections: Vec::with_capacity(restored.collections.len()),
            cleaned: false,
        };
        let mut collections = Vec::with_capacity(restored.collections.len());
        let checks = checks.content.into_iter().zip(checks.metadata);
        for (c, (content, metadata)) in restored.collections.iter().zip(checks) {
            let collection_id = plan
                .b
                .with_db(&c.db_name)
                .describe_collection(&c.collection_name)
                .await?
                .collection_id;
            let migrated = migrated_row(c, content, metadata);
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
        Ok((collections, done))
    }

    /// The intermediate copies, unless kept; then the completion record says so.
    async fn cleanup(&mut self, done: DoneRecord) -> Result<(), Error> {
        let plan = self.plan;
        let t = Instant::now();
        if self.req.keep_backup {
            plan.b_backup.delete(&state_key(&plan.b_dir)).await?;
            self.phase("cleanup", t, format!("kept the backup `{}`", plan.name));
            return Ok(());
        }
        self.observer
            .step("cleanup: removing the intermediate backup copies");
        let removed = plan.remove_copies().await?;
        let cleaned = DoneRecord {
            cleaned: true,
            ..done
        };
        write_done(&plan.b_backup, &plan.b_dir, &cleaned).await?;
        let note = format!("removed {removed} object(s) of the backup copies");
        self.phase("cleanup", t, note);
        Ok(())
    }
}

/// The report's row for one restored collection and its content check.
fn migrated_row(
    c: &restore::RestoredCollection,
    content: ContentCheck,
    metadata: MetaComparison,
) -> MigratedCollection {
    let not_loaded = matches!(content, ContentCheck::SourceNotLoaded);
    let content = match content {
        ContentCheck::Compared(v) => Some(*v),
        ContentCheck::CountOnly | ContentCheck::SourceNotLoaded => None,
    };
    MigratedCollection {
        source: format!("{}.{}", c.source_db, c.source_collection),
        target: format!("{}.{}", c.db_name, c.collection_name),
        rows_a: c.expected_rows,
        rows_b: c.rows,
        rows_imported: c.rows_imported,
        verified: c.verified,
        verified_by: match (&content, c.verified) {
            (Some(v), true) if !v.partitions_not_loaded_on_a().is_empty() => {
                format!("content ({}, partitions loaded on A)", v.mode)
            }
            (Some(v), true) => format!("content ({})", v.mode),
            (None, true) if not_loaded => "count (A not loaded)".into(),
            (None, true) => "count".into(),
            (_, false) if not_loaded => "not verified (A not loaded)".into(),
            (_, false) if c.rows.is_none() => "not verified (B not loaded)".into(),
            (_, false) => "not verified (no count recorded on A)".into(),
        },
        verification: content,
        metadata: Some(metadata),
    }
}

/// The verify stage's findings, per restored collection: content (absent in `count` mode or
/// when B is not loaded) and settings.
struct Checks {
    content: Vec<ContentCheck>,
    metadata: Vec<MetaComparison>,
}

/// What the verify stage did with one collection's content.
enum ContentCheck {
    /// Compared with A's (a sample of rows, or every row).
    Compared(Box<CollectionVerification>),
    /// Not compared: `--verify count`, or B is not loaded (nothing can be queried there); the
    /// restore compared the counts.
    CountOnly,
    /// Not compared: the source collection is not loaded on A, and Milvus answers no query on
    /// it (loading it would change A); the restore compared B's count with the backup's.
    SourceNotLoaded,
}

/// The observer of a restore that runs beside the copy feeding it: forwards the restore's
/// steps, imported rows, retries and failures, but not its staging copies' plans and bytes
/// (the progress shows the copy between the stores), and counts the imports that ended while
/// the copy still ran.
struct BesideCopy {
    inner: Arc<dyn CopyObserver>,
    copying: AtomicBool,
    imports_during_copy: AtomicU64,
}

impl BesideCopy {
    fn new(inner: Arc<dyn CopyObserver>) -> Arc<BesideCopy> {
        Arc::new(BesideCopy {
            inner,
            copying: AtomicBool::new(true),
            imports_during_copy: AtomicU64::new(0),
        })
    }

    /// The copy ended: imports from now on no longer count.
    fn copy_ended(&self) -> u64 {
        self.copying.store(false, Ordering::SeqCst);
        self.imports_during_copy.load(Ordering::SeqCst)
    }
}

impl CopyObserver for BesideCopy {
    fn retry(&self, rel: &str, what: &str, attempt: u32, error: &crate::storage::StorageError) {
        self.inner.retry(rel, what, attempt, error);
    }
    fn object_failed(&self, rel: &str, error: &crate::storage::StorageError) {
        self.inner.object_failed(rel, error);
    }
    /// While the copy runs it is the phase the user follows: the restore's phase step is
    /// told as happening beside it (a daemon job stays in its copy phase).
    fn step(&self, message: &str) {
        match message.strip_prefix("restore:") {
            Some(rest) if self.copying.load(Ordering::SeqCst) => {
                self.inner
                    .step(&format!("restore (beside the copy):{rest}"));
            }
            _ => self.inner.step(message),
        }
    }
    /// Told once per finished import.
    fn rows(&self, rows: u64) {
        if self.copying.load(Ordering::SeqCst) {
            self.imports_during_copy.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.rows(rows);
    }
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
) -> Result<Vec<ContentCheck>, Error> {
    if req.verify.mode == VerifyMode::Count || restored.collections.iter().all(|c| c.rows.is_none())
    {
        return Ok(restored
            .collections
            .iter()
            .map(|_| ContentCheck::CountOnly)
            .collect());
    }
    let a = MilvusClient::connect(&req.from.milvus, ClientOptions::default()).await?;
    let mut out = Vec::with_capacity(restored.collections.len());
    for c in &restored.collections {
        if c.rows.is_none() {
            out.push(ContentCheck::CountOnly);
            continue;
        }
        observer.step(&format!(
            "verify: comparing `{}.{}` with `{}.{}` on A ({})",
            c.db_name, c.collection_name, c.source_db, c.source_collection, req.verify.mode
        ));
        let v = match verify::verify_collection(
            &a.with_db(&c.source_db),
            &c.source_collection,
            &plan.b.with_db(&c.db_name),
            &c.collection_name,
            &req.verify,
        )
        .await
        {
            Ok(v) => v,
            // verify_collection checks that both sides are loaded before it queries; B was
            // loaded by the restore (`c.rows`), so an unloaded side is A.
            Err(VerifyError::NotLoaded { side: "A", .. }) => {
                observer.step(&format!(
                    "verify: `{}.{}` is not loaded on A: its content cannot be queried",
                    c.source_db, c.source_collection
                ));
                out.push(ContentCheck::SourceNotLoaded);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
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
        out.push(ContentCheck::Compared(Box::new(v)));
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

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn rbac_makes_another_migration_and_leaves_other_names_as_they_were() {
        let profile = |port: u16| {
            crate::config::Profile::from_yaml_str(
                &format!("milvus:\n  address: localhost\n  port: {port}\n"),
                std::path::Path::new("p.yaml"),
                &|_| None,
            )
            .unwrap()
            .profile
        };
        let req = MigrateRequest {
            from: profile(19530),
            to: profile(19630),
            name: None,
            selectors: Vec::new(),
            naming: Naming::Same,
            rebuild_index: true,
            load: true,
            drop_existing: false,
            keep_backup: false,
            direct: false,
            overrides: TransferOptions::default(),
            state_dir: None,
            keep_partial: false,
            sequential: false,
            rbac: None,
            lease: LeaseOptions::default(),
            verify: VerifyOptions::default(),
            context: RunContext::default(),
        };
        let targets = [("default".to_string(), "coll".to_string())];
        let plain = default_name(&req, &targets);
        // Without --rbac the name is the hash it always was.
        let text = "localhost:19530\nlocalhost:19630\n[(\"default\", \"coll\")]\nSame\nfalse";
        let hex = crate::copy::checksum::md5_hex_of(text.as_bytes());
        assert_eq!(plain, format!("migrate_{}", &hex[..16]));
        let with_rbac = MigrateRequest {
            rbac: Some(crate::rbac::RbacPasswords::default()),
            ..req
        };
        assert_ne!(default_name(&with_rbac, &targets), plain);
    }
}
