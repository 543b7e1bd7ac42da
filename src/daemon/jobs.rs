//! The daemon's job table: submitting, running (at most `max_jobs` at once, under the shared
//! byte-rate limit), cancelling, watching, and resuming after a restart.
//!
//! Owns job lifecycles and their events. A job's record is persisted on every state or phase
//! change and every two seconds while it makes progress; its copy ledgers live in its own
//! directory, so a job resumed after a kill skips what it already copied and redoes an
//! interrupted restore from its recorded state (the flows own that; see [`crate::migrate`]).
//! Shutdown stops every running job at an await point without touching its record's state:
//! the next daemon resumes it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::DaemonError;
use super::api;
use super::metrics::Metrics;
use super::state::{
    CopySpec, JobRecord, JobSpec, JobState, MigrateSpec, ProfileSource, ProgressRecord, StateDir,
    now,
};
use crate::config::Profile;
use crate::copy::{CopyObserver, PlanSummary};
use crate::create::Selector;
use crate::error::Error;
use crate::migrate::{self, MigrateRequest};
use crate::restore::Naming;
use crate::storage::StorageError;
use crate::throttle::ByteLimiter;
use crate::transfer::{self, CopyRequest, CopyTarget, RunContext};

/// How long a cancelled job's flow may take to reach its own stop (abort its uploads, drop a
/// partial collection) before it is dropped where it is.
const CANCEL_GRACE: Duration = Duration::from_secs(60);
/// Automatic retries of a job that failed in a way that may pass by itself.
const AUTO_RETRIES: u32 = 2;
/// The pause before the first of them (doubled for the second).
const RETRY_PAUSE: Duration = Duration::from_secs(30);
/// How often progress is published while a job runs.
const TICK: Duration = Duration::from_millis(500);
/// How often progress is persisted while a job runs (in ticks).
const PERSIST_EVERY: u32 = 4;

/// One job.
pub struct Job {
    /// Its id.
    pub id: String,
    spec: JobSpec,
    record: Mutex<JobRecord>,
    events: broadcast::Sender<api::JobEvent>,
    cancel: CancellationToken,
    progressed: AtomicBool,
}

impl Job {
    /// A copy of the record.
    pub fn record(&self) -> JobRecord {
        self.record.lock().expect("job lock").clone()
    }

    /// Subscribes to this job's events.
    pub fn subscribe(&self) -> broadcast::Receiver<api::JobEvent> {
        self.events.subscribe()
    }

    fn update(&self, f: impl FnOnce(&mut JobRecord)) -> JobRecord {
        let mut r = self.record.lock().expect("job lock");
        f(&mut r);
        r.clone()
    }

    fn emit(&self, kind: &str, message: &str) {
        let event = api::JobEvent {
            job: Some(to_proto(&self.record())),
            kind: kind.to_string(),
            message: message.to_string(),
        };
        let _ = self.events.send(event);
    }
}

/// The job as the API shows it.
pub fn to_proto(r: &JobRecord) -> api::Job {
    let p = &r.progress;
    api::Job {
        id: r.id.clone(),
        kind: r.kind.clone(),
        state: state_to_proto(r.state) as i32,
        phase: r.phase.clone(),
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
        error: r.error.clone(),
        spec_json: r.spec.to_string(),
        progress: Some(api::Progress {
            bytes_done: p.bytes_done,
            bytes_total: p.bytes_total,
            objects_done: p.objects_done,
            objects_total: p.objects_total,
            objects_skipped: p.objects_skipped,
            retries: p.retries,
            rows_imported: p.rows_imported,
            objects_failed: p.objects_failed,
        }),
        report_json: r.report.as_ref().map(Value::to_string).unwrap_or_default(),
        message: r.message.clone(),
        attempts: r.attempts,
    }
}

/// The API's state for ours.
pub fn state_to_proto(s: JobState) -> api::JobState {
    match s {
        JobState::Queued => api::JobState::Queued,
        JobState::Running => api::JobState::Running,
        JobState::Cancelling => api::JobState::Cancelling,
        JobState::Succeeded => api::JobState::Succeeded,
        JobState::Failed => api::JobState::Failed,
        JobState::Cancelled => api::JobState::Cancelled,
    }
}

/// Ours for the API's (`None` for unspecified).
pub fn state_from_proto(s: api::JobState) -> Option<JobState> {
    Some(match s {
        api::JobState::Unspecified => return None,
        api::JobState::Queued => JobState::Queued,
        api::JobState::Running => JobState::Running,
        api::JobState::Cancelling => JobState::Cancelling,
        api::JobState::Succeeded => JobState::Succeeded,
        api::JobState::Failed => JobState::Failed,
        api::JobState::Cancelled => JobState::Cancelled,
    })
}

/// The job table.
pub struct Manager {
    state: StateDir,
    jobs: Mutex<BTreeMap<String, Arc<Job>>>,
    slots: Arc<Semaphore>,
    shared_bytes: Option<Arc<ByteLimiter>>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Manager {
    /// Loads the jobs of `state` and resumes the unfinished ones.
    ///
    /// # Errors
    /// The state directory cannot be read.
    pub fn start(
        state: StateDir,
        max_jobs: usize,
        shared_bytes: Option<Arc<ByteLimiter>>,
    ) -> Result<Arc<Manager>, DaemonError> {
        let manager = Arc::new(Manager {
            state,
            jobs: Mutex::new(BTreeMap::new()),
            slots: Arc::new(Semaphore::new(max_jobs.max(1))),
            shared_bytes,
            metrics: Arc::new(Metrics::default()),
            shutdown: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
        });
        for (spec, record) in manager.state.load_all()? {
            let unfinished = !record.state.is_final();
            let cancelling = record.cancel_requested || record.state == JobState::Cancelling;
            let job = manager.insert(spec, record);
            if cancelling {
                job.cancel.cancel();
            }
            if unfinished {
                tracing::info!(job = %job.id, "resuming");
                manager.spawn(job);
            }
        }
        let m = Arc::clone(&manager);
        let sampler = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => m.metrics.sample(),
                    () = m.shutdown.cancelled() => return,
                }
            }
        });
        manager.tasks.lock().expect("tasks lock").push(sampler);
        Ok(manager)
    }

    fn insert(&self, spec: JobSpec, record: JobRecord) -> Arc<Job> {
        let (events, _) = broadcast::channel(256);
        let job = Arc::new(Job {
            id: record.id.clone(),
            spec,
            record: Mutex::new(record),
            events,
            cancel: CancellationToken::new(),
            progressed: AtomicBool::new(false),
        });
        self.jobs
            .lock()
            .expect("jobs lock")
            .insert(job.id.clone(), Arc::clone(&job));
        job
    }

    fn spawn(self: &Arc<Self>, job: Arc<Job>) {
        let m = Arc::clone(self);
        let handle = tokio::spawn(async move { m.drive(job).await });
        let mut tasks = self.tasks.lock().expect("tasks lock");
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    /// Queues a new job; `public` is its spec as shown (no secrets).
    ///
    /// # Errors
    /// Its files cannot be written.
    pub fn submit(
        self: &Arc<Self>,
        id: String,
        spec: JobSpec,
        public: Value,
    ) -> Result<JobRecord, DaemonError> {
        let record = JobRecord {
            id: id.clone(),
            kind: spec.kind().to_string(),
            state: JobState::Queued,
            phase: String::new(),
            created_at: now(),
            started_at: 0,
            finished_at: 0,
            error: String::new(),
            message: "queued".into(),
            attempts: 0,
            progress: ProgressRecord::default(),
            spec: public,
            report: None,
            cancel_requested: false,
        };
        self.state.create(&spec, &record)?;
        let job = self.insert(spec, record.clone());
        self.metrics.jobs_submitted.fetch_add(1, Ordering::Relaxed);
        tracing::info!(job = %id, kind = %record.kind, "submitted");
        self.spawn(job);
        Ok(record)
    }

    /// A job by id.
    ///
    /// # Errors
    /// [`DaemonError::NotFound`].
    pub fn get(&self, id: &str) -> Result<Arc<Job>, DaemonError> {
        self.jobs
            .lock()
            .expect("jobs lock")
            .get(id)
            .cloned()
            .ok_or_else(|| DaemonError::NotFound(id.to_string()))
    }

    /// Jobs, newest first, in `states` (all when empty).
    pub fn list(&self, states: &[JobState]) -> Vec<JobRecord> {
        let mut out: Vec<JobRecord> = self
            .jobs
            .lock()
            .expect("jobs lock")
            .values()
            .map(|j| j.record())
            .filter(|r| states.is_empty() || states.contains(&r.state))
            .collect();
        out.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        out
    }

    /// Jobs by state, for the metrics.
    pub fn counts(&self) -> Vec<(JobState, u64)> {
        let mut counts: BTreeMap<&'static str, (JobState, u64)> = BTreeMap::new();
        for r in self.list(&[]) {
            counts.entry(r.state.as_str()).or_insert((r.state, 0)).1 += 1;
        }
        counts.into_values().collect()
    }

    /// Asks a job to stop; a finished job is returned unchanged.
    ///
    /// # Errors
    /// [`DaemonError::NotFound`], or the record cannot be written.
    pub fn cancel(&self, id: &str) -> Result<JobRecord, DaemonError> {
        let job = self.get(id)?;
        if job.record().state.is_final() {
            return Ok(job.record());
        }
        let r = job.update(|r| {
            r.cancel_requested = true;
            r.state = JobState::Cancelling;
            r.message = "cancel requested".into();
        });
        self.state.save(&r)?;
        tracing::info!(job = %id, "cancel requested");
        job.cancel.cancel();
        job.emit("state", "cancel requested");
        Ok(r)
    }

    /// Fires when the daemon shuts down.
    pub fn stopping(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops every job at an await point, keeping its persisted state, and waits for them.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock().expect("lock"));
        for t in tasks {
            let _ = t.await;
        }
    }

    fn save(&self, r: &JobRecord) {
        if let Err(e) = self.state.save(r) {
            tracing::error!(job = %r.id, "cannot persist the job: {e}");
        }
    }

    /// Runs a job to its end, retrying a failure that may pass by itself (a Milvus or store
    /// that cannot be reached, throttling) after a pause; the flows resume where they were.
    async fn drive(self: Arc<Self>, job: Arc<Job>) {
        let mut retries = 0;
        loop {
            let Some(e) = self.attempt(&job).await else {
                return;
            };
            if !e.is_retryable() || retries >= AUTO_RETRIES {
                let r = job.update(|r| {
                    r.state = JobState::Failed;
                    r.finished_at = now();
                    r.error = e.to_string();
                });
                self.save(&r);
                tracing::warn!(job = %job.id, "failed: {e}");
                job.emit("error", &r.error);
                job.emit("state", "failed");
                return;
            }
            retries += 1;
            let pause = RETRY_PAUSE * retries;
            let r = job.update(|r| {
                r.state = JobState::Queued;
                r.message = format!(
                    "retrying in {}s ({retries} of {AUTO_RETRIES}) after: {e}",
                    pause.as_secs()
                );
            });
            self.save(&r);
            tracing::warn!(job = %job.id, "{}", r.message);
            job.emit("error", &r.message);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = job.cancel.cancelled() => {}
                () = self.shutdown.cancelled() => return,
            }
        }
    }

    /// One run of a job: `None` when it ended (succeeded, cancelled, or stopped by shutdown),
    /// else the error it failed with.
    async fn attempt(&self, job: &Arc<Job>) -> Option<Error> {
        let permit = tokio::select! {
            p = Arc::clone(&self.slots).acquire_owned() => p.ok(),
            () = job.cancel.cancelled() => None,
            () = self.shutdown.cancelled() => return None,
        };
        if permit.is_none() || job.cancel.is_cancelled() {
            self.finish_cancelled(job).await;
            return None;
        }
        let r = job.update(|r| {
            r.state = JobState::Running;
            r.attempts += 1;
            r.started_at = now();
            r.error.clear();
            r.message = if r.attempts > 1 {
                format!("resumed (attempt {})", r.attempts)
            } else {
                "started".into()
            };
            if let JobSpec::Copy(_) = job.spec {
                r.phase = "copy".into();
            }
        });
        self.save(&r);
        job.emit("state", &r.message);
        tracing::info!(job = %job.id, attempt = r.attempts, "started");

        let context = RunContext {
            shared_bytes: self.shared_bytes.clone(),
            cancel: job.cancel.clone(),
            ..RunContext::default()
        };
        let observer = Arc::new(JobObserver {
            job: Arc::clone(job),
            metrics: Arc::clone(&self.metrics),
        });
        let dir = self.state.job_dir(&job.id);
        let work = execute(&job.spec, dir, context, Arc::clone(&observer));
        tokio::pin!(work);
        let grace = async {
            job.cancel.cancelled().await;
            tokio::time::sleep(CANCEL_GRACE).await;
        };
        tokio::pin!(grace);
        let mut tick = tokio::time::interval(TICK);
        let mut ticks = 0u32;
        let outcome = loop {
            tokio::select! {
                r = &mut work => break Some(r),
                _ = tick.tick() => {
                    ticks += 1;
                    if job.progressed.swap(false, Ordering::Relaxed) {
                        job.emit("progress", "");
                        if ticks.is_multiple_of(PERSIST_EVERY) {
                            self.save(&job.record());
                        }
                    }
                }
                () = &mut grace => break None,
                () = self.shutdown.cancelled() => {
                    self.save(&job.record());
                    tracing::info!(job = %job.id, "stopped by shutdown; resumes on the next start");
                    return None;
                }
            }
        };
        drop(permit);
        match outcome {
            Some(Ok(report)) => {
                let failed = report["objects_failed"].as_u64().unwrap_or(0);
                let r = job.update(|r| {
                    r.finished_at = now();
                    r.report = Some(report);
                    if failed > 0 {
                        r.state = JobState::Failed;
                        r.error = format!(
                            "{failed} object(s) could not be copied (see the report); \
                             submitting the same copy again copies only those"
                        );
                    } else {
                        r.state = JobState::Succeeded;
                        r.message = "done".into();
                    }
                });
                self.save(&r);
                tracing::info!(job = %job.id, state = r.state.as_str(), "finished");
                job.emit("state", r.state.as_str());
            }
            // After a cancel, whatever the flow returned, the job is cancelled.
            Some(Err(e)) if !job.cancel.is_cancelled() => return Some(e),
            _ => self.finish_cancelled(job).await,
        }
        None
    }

    /// Undoes what a cancelled job left and marks it cancelled.
    async fn finish_cancelled(&self, job: &Arc<Job>) {
        let r = job.update(|r| {
            r.state = JobState::Cancelling;
            r.cancel_requested = true;
            r.message = "cancelling: removing what the job left".into();
        });
        self.save(&r);
        job.emit("state", &r.message);
        let observer = JobObserver {
            job: Arc::clone(job),
            metrics: Arc::clone(&self.metrics),
        };
        let dir = self.state.job_dir(&job.id);
        let started = r.attempts > 0;
        let cleanup = async {
            if started {
                discard(&job.spec, dir, self.shared_bytes.clone(), &observer).await
            } else {
                Ok("cancelled before it started: nothing to remove".to_string())
            }
        };
        let result = tokio::select! {
            r = cleanup => r,
            () = self.shutdown.cancelled() => {
                // Still cancelling: the next start finishes the cleanup.
                return;
            }
        };
        let r = job.update(|r| {
            r.state = JobState::Cancelled;
            r.finished_at = now();
            match &result {
                Ok(summary) => {
                    r.error = "cancelled by request".into();
                    r.message = summary.clone();
                }
                Err(e) => {
                    r.error = format!(
                        "cancelled by request; the cleanup stopped: {e} (objects may be left \
                         under the job's backup name)"
                    );
                }
            }
        });
        self.save(&r);
        tracing::info!(job = %job.id, "cancelled");
        job.emit("state", "cancelled");
    }
}

/// Feeds a job's record and the daemon's counters from a flow's events.
struct JobObserver {
    job: Arc<Job>,
    metrics: Arc<Metrics>,
}

impl JobObserver {
    fn progress(&self, f: impl FnOnce(&mut ProgressRecord)) {
        self.job.update(|r| f(&mut r.progress));
        self.job.progressed.store(true, Ordering::Relaxed);
    }
}

impl CopyObserver for JobObserver {
    fn planned(&self, s: &PlanSummary) {
        self.progress(|p| {
            p.bytes_done = 0;
            p.objects_done = 0;
            p.bytes_total = s.bytes_total - s.bytes_skipped;
            p.objects_total = s.objects_total - s.objects_skipped;
            p.objects_skipped = s.objects_skipped;
        });
    }

    fn bytes(&self, n: u64) {
        self.metrics.bytes_copied.fetch_add(n, Ordering::Relaxed);
        self.progress(|p| p.bytes_done += n);
    }

    fn object_done(&self, _rel: &str, _size: u64) {
        self.metrics.objects_copied.fetch_add(1, Ordering::Relaxed);
        self.progress(|p| p.objects_done += 1);
    }

    fn retry(&self, rel: &str, what: &str, attempt: u32, error: &StorageError) {
        self.metrics.retries.fetch_add(1, Ordering::Relaxed);
        self.progress(|p| p.retries += 1);
        self.job.emit(
            "retry",
            &format!("retry {attempt} of {what} of {rel}: {error}"),
        );
    }

    fn object_failed(&self, rel: &str, error: &StorageError) {
        self.progress(|p| p.objects_failed += 1);
        self.job.emit("error", &format!("{rel}: {error}"));
    }

    fn step(&self, message: &str) {
        let phase = message
            .split_once(':')
            .map(|(p, _)| p)
            .filter(|p| ["preflight", "create", "copy", "restore", "cleanup"].contains(p));
        self.job.update(|r| {
            r.message = message.to_string();
            if let Some(p) = phase.filter(|p| *p != r.phase) {
                r.phase = p.to_string();
                // A new phase's copy starts from nothing; totals over the job stay.
                let pr = &mut r.progress;
                (pr.bytes_done, pr.bytes_total) = (0, 0);
                (pr.objects_done, pr.objects_total, pr.objects_skipped) = (0, 0, 0);
            }
        });
        self.job
            .emit(if phase.is_some() { "phase" } else { "step" }, message);
    }

    fn rows(&self, rows: u64) {
        self.metrics
            .rows_imported
            .fetch_add(rows, Ordering::Relaxed);
        self.progress(|p| p.rows_imported += rows);
    }
}

/// Loads a job's profile.
///
/// # Errors
/// The file cannot be read, or the profile is invalid.
pub fn load_profile(source: &ProfileSource, role: &str) -> Result<Profile, Error> {
    let loaded = match source {
        ProfileSource::Path(path) => Profile::load(path)?,
        ProfileSource::Inline(text) => Profile::from_yaml_str(
            text,
            std::path::Path::new(&format!("<inline `{role}` profile>")),
            &|name| std::env::var(name).ok(),
        )?,
    };
    for w in &loaded.warnings {
        tracing::debug!("{w}");
    }
    Ok(loaded.profile)
}

/// The `migrate` request of a migration job, its profiles read.
///
/// # Errors
/// A profile or a selector is invalid.
pub fn migrate_request(
    m: &MigrateSpec,
    state_dir: Option<PathBuf>,
    context: RunContext,
) -> Result<MigrateRequest, Error> {
    let from = load_profile(&m.from, "from")?;
    let to = load_profile(&m.to, "to")?;
    migrate_request_with(m, from, to, state_dir, context)
}

/// The `migrate` request of a migration job whose profiles are loaded.
///
/// # Errors
/// A selector or rename map is invalid.
pub fn migrate_request_with(
    m: &MigrateSpec,
    from: Profile,
    to: Profile,
    state_dir: Option<PathBuf>,
    context: RunContext,
) -> Result<MigrateRequest, Error> {
    Ok(MigrateRequest {
        from,
        to,
        name: Some(m.name.clone()),
        selectors: if m.all {
            Vec::new()
        } else {
            Selector::parse_all(&m.collections, &m.databases)?
        },
        naming: Naming::from_flags(m.suffix.as_deref(), &m.rename)?,
        rebuild_index: m.rebuild_index,
        load: m.rebuild_index && m.load,
        drop_existing: m.drop_existing,
        keep_backup: m.keep_backup,
        direct: m.direct,
        overrides: m.transfer.clone(),
        state_dir,
        keep_partial: m.keep_partial,
        sequential: m.sequential,
        rbac: m
            .rbac
            .as_ref()
            .map(|r| crate::rbac::RbacPasswords::from_file(r.passwords.as_deref()))
            .transpose()?,
        // A job queued behind another run of the same migration waits for it (a job is
        // cancelled by its own signal, not by the other run).
        lease: crate::lease::LeaseOptions {
            wait: true,
            ..crate::lease::LeaseOptions::default()
        },
        verify: m.verify,
        context,
    })
}

/// The `copy` request of a copy job.
///
/// # Errors
/// A profile is invalid.
pub fn copy_request(
    c: &CopySpec,
    state_dir: Option<PathBuf>,
    context: RunContext,
) -> Result<CopyRequest, Error> {
    Ok(CopyRequest {
        from: load_profile(&c.from, "from")?,
        to: load_profile(&c.to, "to")?,
        target: CopyTarget::Backup(c.name.clone()),
        overrides: c.transfer.clone(),
        overwrite: c.overwrite,
        state_dir,
        context,
    })
}

async fn execute(
    spec: &JobSpec,
    dir: PathBuf,
    context: RunContext,
    observer: Arc<JobObserver>,
) -> Result<Value, Error> {
    let value = |r: Result<Value, serde_json::Error>| r.unwrap_or(Value::Null);
    match spec {
        JobSpec::Migrate(m) => {
            let req = migrate_request(m, Some(dir), context)?;
            let report = migrate::migrate(req, observer).await?;
            Ok(value(serde_json::to_value(report)))
        }
        JobSpec::Copy(c) => {
            let req = copy_request(c, Some(dir), context)?;
            let report = transfer::copy(req, observer).await?;
            Ok(value(serde_json::to_value(report)))
        }
    }
}

async fn discard(
    spec: &JobSpec,
    dir: PathBuf,
    shared_bytes: Option<Arc<ByteLimiter>>,
    observer: &JobObserver,
) -> Result<String, Error> {
    let context = RunContext {
        shared_bytes,
        ..RunContext::default()
    };
    match spec {
        JobSpec::Migrate(m) => {
            let req = migrate_request(m, Some(dir), context)?;
            let d = migrate::discard(&req, &m.name, observer).await?;
            Ok(format!(
                "cancelled: {} upload(s) aborted, {} object(s) removed, collections dropped: {}",
                d.uploads_aborted,
                d.objects_removed,
                if d.collections_dropped.is_empty() {
                    "none".to_string()
                } else {
                    d.collections_dropped.join(", ")
                }
            ))
        }
        JobSpec::Copy(c) => {
            let req = copy_request(c, Some(dir), context)?;
            let (aborted, removed) = transfer::discard(&req).await?;
            Ok(format!(
                "cancelled: {aborted} upload(s) aborted, {removed} object(s) of the partial copy \
                 removed"
            ))
        }
    }
}
