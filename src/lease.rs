//! Leases: at most one live run of a named job (a migration), held as a small JSON object in
//! a store that every run of that job writes.
//!
//! Owns taking, renewing, taking over and releasing that object, and telling a live owner from
//! a dead one. Does not own where the object lives (the caller names store and key) nor what
//! the run does while it holds it ([`crate::migrate`]).
//!
//! How exclusion holds on each kind of store:
//! - The lease is created with `If-None-Match: *` and renewed and taken over with `If-Match`
//!   on its ETag, so of two runs racing for it exactly one wins, where the store honours those
//!   conditions (S3, MinIO, GCS, Azure, a local directory for creation).
//! - Some S3-compatible servers ignore the conditions and overwrite. Whether a store honours
//!   them is asked on the lease itself once this run holds it: a second creation must be
//!   refused (no other object is written). Where it is not, the run waits `settle` after
//!   writing and reads the lease back: of runs writing within that window the last write wins
//!   and every other run sees someone else's owner id and backs off. A takeover always reads
//!   back, whatever the store.
//! - The owner rewrites the lease every `ttl / 3`. It counts as dead when its last renewal is
//!   older than `ttl` by the reader's clock, when a waiting reader has seen it unchanged for
//!   `ttl` by its own monotonic clock (immune to clock skew), or at once when it ran on this
//!   same host and its process is gone. An owner that finds its lease in other hands, or
//!   cannot renew it for `ttl`, reports it lost: the run must stop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::{rfc3339, unix_now};
use crate::storage::{StorageError, StorageErrorKind, Store};

/// Default time after its last renewal at which a lease whose owner stopped renewing expires.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// Default wait between writing a lease and reading it back on stores that ignore
/// conditional writes.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(2);

/// What the lease object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The job (the migration's name).
    pub job: String,
    /// Random id of the run holding it.
    pub owner: String,
    /// Host name of the owner.
    pub host: String,
    /// Process id of the owner on that host.
    pub pid: u32,
    /// Boot id of the owner's host (Linux), to tell a reboot from a live process.
    #[serde(default)]
    pub boot_id: String,
    /// Start time of the owner process in clock ticks since boot (Linux), against pid reuse.
    #[serde(default)]
    pub pid_start: u64,
    /// When the owner took the lease, Unix seconds.
    pub started_at: u64,
    /// When the owner last renewed it, Unix seconds (owner's clock).
    pub renewed_at: u64,
    /// Seconds after `renewed_at` at which the lease expires.
    pub ttl_secs: u64,
}

impl LeaseRecord {
    /// A new record for this process.
    fn ours(job: &str, ttl: Duration) -> Self {
        let now = unix_now();
        let me = Process::current();
        Self {
            job: job.to_string(),
            owner: format!("{:032x}", rand::random::<u128>()),
            host: me.host,
            pid: std::process::id(),
            boot_id: me.boot_id,
            pid_start: me.pid_start,
            started_at: now,
            renewed_at: now,
            ttl_secs: ttl.as_secs().max(1),
        }
    }

    fn to_bytes(&self) -> Bytes {
        serde_json::to_vec_pretty(self).unwrap_or_default().into()
    }

    /// Whether its owner is known to be gone: same host (same boot), and the process is not
    /// running, or the host rebooted since.
    fn owner_gone(&self) -> bool {
        let me = Process::current();
        if self.host != me.host || self.host.is_empty() {
            return false;
        }
        if !self.boot_id.is_empty() && !me.boot_id.is_empty() && self.boot_id != me.boot_id {
            return true;
        }
        !process_alive(self.pid, self.pid_start)
    }

    /// Whether the last renewal is more than the lease's ttl old by this machine's clock.
    fn expired_by_clock(&self, now: u64) -> bool {
        now.saturating_sub(self.renewed_at) > self.ttl_secs
    }
}

/// Settings of [`Lease::acquire`].
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// Expiry after the last renewal; renewed every third of it.
    pub ttl: Duration,
    /// Wait for a live owner to finish (or die) instead of failing with
    /// [`LeaseError::Held`].
    pub wait: bool,
    /// Wait before reading back a lease written to a store that ignores conditions.
    pub settle: Duration,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            wait: false,
            settle: DEFAULT_SETTLE,
        }
    }
}

/// A lease could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another live run holds it.
    #[error("{0}")]
    Held(Box<HeldLease>),
    /// This run's lease was taken over (it could not renew it in time, or another run judged
    /// it expired): the run stopped.
    #[error(
        "{job}: this run lost its lease ({store}, {key}) to {by}; it stopped so that two runs \
         never write at once"
    )]
    Lost {
        /// The job.
        job: String,
        /// Who holds it now, or why it was lost.
        by: String,
        /// The store holding the lease.
        store: String,
        /// The lease's key.
        key: String,
    },
    /// The store failed.
    #[error("lease of {job}: {source}")]
    Storage {
        /// The job.
        job: String,
        /// What failed.
        #[source]
        source: StorageError,
    },
}

impl LeaseError {
    /// Whether trying again later may work: a held lease ends, a lost one is free again when
    /// the other run ends.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Held(_) | Self::Lost { .. } => true,
            Self::Storage { source, .. } => source.is_retryable(),
        }
    }
}

/// Who holds a lease another run asked for.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{job} is running on host {host} (pid {pid}) since {since}, lease renewed {renewed_ago} s ago \
     ({store}, {key}); wait for it with --wait, or rerun after it ends (a lease not renewed for \
     {ttl_secs} s expires and is taken over)"
)]
pub struct HeldLease {
    /// The job.
    pub job: String,
    /// The owner's host.
    pub host: String,
    /// The owner's process id.
    pub pid: u32,
    /// When it started, RFC 3339.
    pub since: String,
    /// Seconds since its last renewal, by this machine's clock.
    pub renewed_ago: u64,
    /// Its ttl.
    pub ttl_secs: u64,
    /// The store holding the lease.
    pub store: String,
    /// The lease's key.
    pub key: String,
}

/// What [`Lease::acquire`] reports while it waits for another run.
pub trait LeaseWaiter: Send + Sync {
    /// Called at each poll while `held` (a [`LeaseError::Held`]) keeps the lease.
    fn waiting(&self, held: &LeaseError);
}

impl<F: Fn(&LeaseError) + Send + Sync> LeaseWaiter for F {
    fn waiting(&self, held: &LeaseError) {
        self(held);
    }
}

/// A lease held by this run; renewed in the background until [`Lease::release`] or drop.
pub struct Lease {
    shared: Arc<Shared>,
    renewer: JoinHandle<()>,
}

struct Shared {
    store: Store,
    key: String,
    job: String,
    ttl: Duration,
    /// The store honours `If-None-Match`/`If-Match`.
    conditional: bool,
    state: Mutex<Held>,
    /// Cancelled when the lease is lost.
    lost: CancellationToken,
    lost_to: Mutex<Option<String>>,
}

struct Held {
    record: LeaseRecord,
    etag: Option<String>,
    renewed: Instant,
}

/// The lease object as read: its record (None when unreadable) and ETag.
struct Current {
    record: Option<LeaseRecord>,
    etag: Option<String>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("store", &self.shared.store.name())
            .field("key", &self.shared.key)
            .field("job", &self.shared.job)
            .finish()
    }
}

impl Lease {
    /// Takes the lease `key` in `store` for `job`: creates it, or takes over an expired one;
    /// with `opts.wait`, waits while a live run holds it (reporting to `waiter`).
    ///
    /// # Errors
    /// [`LeaseError::Held`] when a live run holds it and `opts.wait` is off;
    /// [`LeaseError::Storage`] when the store fails.
    pub async fn acquire(
        store: &Store,
        key: &str,
        job: &str,
        opts: &LeaseOptions,
        waiter: &dyn LeaseWaiter,
    ) -> Result<Lease, LeaseError> {
        let storage = |source| LeaseError::Storage {
            job: job.to_string(),
            source,
        };
        let mine = LeaseRecord::ours(job, opts.ttl);
        let poll = (opts.ttl / 6).clamp(Duration::from_millis(200), Duration::from_secs(5));
        // What a waiting run has seen of the holder: its ETag (or renewal time) and since when.
        let mut seen: Option<(String, Instant)> = None;
        loop {
            let current = read(store, key).await.map_err(storage)?;
            let written = match &current {
                None => create(store, key, &mine, opts.settle).await,
                Some(cur) => {
                    let held = cur.record.as_ref().map(|r| held_error(r, store, key));
                    let version = cur
                        .etag
                        .clone()
                        .or_else(|| cur.record.as_ref().map(|r| r.renewed_at.to_string()))
                        .unwrap_or_default();
                    let unchanged_for = match &seen {
                        Some((v, since)) if *v == version => since.elapsed(),
                        _ => {
                            seen = Some((version, Instant::now()));
                            Duration::ZERO
                        }
                    };
                    let expired = match &cur.record {
                        // Unreadable: not a lease any run of ours wrote; replace it.
                        None => true,
                        Some(r) => {
                            r.owner_gone()
                                || r.expired_by_clock(unix_now())
                                || unchanged_for > Duration::from_secs(r.ttl_secs)
                        }
                    };
                    if expired {
                        take_over(store, key, &mine, cur.etag.as_deref(), opts.settle).await
                    } else if let Some(held) = held {
                        if !opts.wait {
                            return Err(held);
                        }
                        waiter.waiting(&held);
                        tokio::time::sleep(poll).await;
                        continue;
                    } else {
                        continue;
                    }
                }
            };
            match written.map_err(storage)? {
                Some(Taken { etag, conditional }) => {
                    tracing::debug!(
                        job,
                        key,
                        store = store.name(),
                        conditional,
                        "lease taken (conditional: whether the store honours conditional writes)"
                    );
                    return Ok(Lease::start(
                        store,
                        key,
                        job,
                        opts.ttl,
                        conditional,
                        mine,
                        etag,
                    ));
                }
                // Another run won the race: look again.
                None => {
                    seen = None;
                    continue;
                }
            }
        }
    }

    fn start(
        store: &Store,
        key: &str,
        job: &str,
        ttl: Duration,
        conditional: bool,
        record: LeaseRecord,
        etag: Option<String>,
    ) -> Lease {
        let shared = Arc::new(Shared {
            store: store.clone(),
            key: key.to_string(),
            job: job.to_string(),
            ttl,
            conditional,
            state: Mutex::new(Held {
                record,
                etag,
                renewed: Instant::now(),
            }),
            lost: CancellationToken::new(),
            lost_to: Mutex::new(None),
        });
        let renewer = tokio::spawn(renew_loop(Arc::clone(&shared)));
        Lease { shared, renewer }
    }

    /// Cancelled when the lease is lost; the run must then stop.
    pub fn lost(&self) -> CancellationToken {
        self.shared.lost.clone()
    }

    /// [`LeaseError::Lost`] if the lease was lost.
    pub fn check(&self) -> Result<(), LeaseError> {
        match self.shared.lost_to.lock().ok().and_then(|g| g.clone()) {
            None if !self.shared.lost.is_cancelled() => Ok(()),
            by => Err(LeaseError::Lost {
                job: self.shared.job.clone(),
                by: by.unwrap_or_else(|| "another run".into()),
                store: self.shared.store.name().to_string(),
                key: self.shared.key.clone(),
            }),
        }
    }

    /// This run's record (owner id, host, times).
    pub fn record(&self) -> LeaseRecord {
        self.shared
            .state
            .lock()
            .map(|s| s.record.clone())
            .unwrap_or_else(|p| p.into_inner().record.clone())
    }

    /// Stops renewing and removes the lease, if it is still this run's.
    ///
    /// # Errors
    /// The store fails; the lease then expires on its own after its ttl.
    pub async fn release(self) -> Result<(), LeaseError> {
        self.renewer.abort();
        let s = &self.shared;
        let owner = self.record().owner;
        let current = read(&s.store, &s.key)
            .await
            .map_err(|source| LeaseError::Storage {
                job: s.job.clone(),
                source,
            })?;
        if is_mine(current.as_ref(), &owner) {
            s.store
                .delete(&s.key)
                .await
                .map_err(|source| LeaseError::Storage {
                    job: s.job.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

fn held_error(r: &LeaseRecord, store: &Store, key: &str) -> LeaseError {
    LeaseError::Held(Box::new(HeldLease {
        job: r.job.clone(),
        host: r.host.clone(),
        pid: r.pid,
        since: rfc3339(r.started_at),
        renewed_ago: unix_now().saturating_sub(r.renewed_at),
        ttl_secs: r.ttl_secs,
        store: store.name().to_string(),
        key: key.to_string(),
    }))
}

/// Reads the lease object; None when there is none.
async fn read(store: &Store, key: &str) -> Result<Option<Current>, StorageError> {
    let got = match store.get(key, None).await {
        Ok(g) => g,
        Err(e) if e.kind() == StorageErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let etag = got.etag;
    let chunks: Vec<Bytes> = match got.stream.try_collect().await {
        Ok(c) => c,
        Err(e) if e.kind() == StorageErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let record = serde_json::from_slice(&chunks.concat()).ok();
    Ok(Some(Current { record, etag }))
}

/// Reads the lease back after `settle`; Some(etag) if it is still `mine`.
async fn confirm(
    store: &Store,
    key: &str,
    mine: &LeaseRecord,
    settle: Duration,
) -> Result<Option<Option<String>>, StorageError> {
    tokio::time::sleep(settle).await;
    let current = read(store, key).await?;
    Ok(is_mine(current.as_ref(), &mine.owner).then(|| current.and_then(|c| c.etag)))
}

/// A lease this run now holds.
struct Taken {
    etag: Option<String>,
    /// The store refused a second creation of the lease: it honours conditional writes.
    conditional: bool,
}

/// Whether the store honours `If-None-Match: *`, asked on the lease this run holds: a second
/// creation must be refused. Where it is not, the store has just rewritten the same record:
/// its new ETag comes back. No other object is written.
async fn honours_conditions(
    store: &Store,
    key: &str,
    mine: &LeaseRecord,
    etag: Option<String>,
) -> Result<Taken, StorageError> {
    match store.put_if_absent(key, mine.to_bytes().into()).await {
        Err(e) if e.kind() == StorageErrorKind::Conflict => Ok(Taken {
            etag,
            conditional: true,
        }),
        Ok(etag) => Ok(Taken {
            etag,
            conditional: false,
        }),
        Err(e) if e.kind() == StorageErrorKind::Unsupported => Ok(Taken {
            etag,
            conditional: false,
        }),
        Err(e) => Err(e),
    }
}

/// Creates the lease; Some when this run holds it, None when another run got there first.
async fn create(
    store: &Store,
    key: &str,
    mine: &LeaseRecord,
    settle: Duration,
) -> Result<Option<Taken>, StorageError> {
    match store.put_if_absent(key, mine.to_bytes().into()).await {
        Ok(etag) => {
            let taken = honours_conditions(store, key, mine, etag).await?;
            if taken.conditional {
                return Ok(Some(taken));
            }
            // The store overwrites regardless: the last of the runs writing now wins.
            Ok(confirm(store, key, mine, settle).await?.map(|etag| Taken {
                etag,
                conditional: false,
            }))
        }
        // A retried request whose first attempt had created it reads back as ours; and the
        // store refused a second creation.
        Err(e) if e.kind() == StorageErrorKind::Conflict => {
            Ok(confirm(store, key, mine, Duration::ZERO)
                .await?
                .map(|etag| Taken {
                    etag,
                    conditional: true,
                }))
        }
        Err(e) if e.kind() == StorageErrorKind::Unsupported => {
            store.put(key, mine.to_bytes().into()).await?;
            Ok(confirm(store, key, mine, settle).await?.map(|etag| Taken {
                etag,
                conditional: false,
            }))
        }
        Err(e) => Err(e),
    }
}

/// Replaces an expired lease (ETag `etag`) with ours; Some when this run holds it.
async fn take_over(
    store: &Store,
    key: &str,
    mine: &LeaseRecord,
    etag: Option<&str>,
    settle: Duration,
) -> Result<Option<Taken>, StorageError> {
    let written = match etag {
        Some(etag) => store.put_if_match(key, mine.to_bytes().into(), etag).await,
        None => store.put(key, mine.to_bytes().into()).await,
    };
    match written {
        Ok(_) => {}
        Err(e) if e.kind() == StorageErrorKind::Conflict => {}
        Err(e) if e.kind() == StorageErrorKind::Unsupported => {
            store.put(key, mine.to_bytes().into()).await?;
        }
        Err(e) => return Err(e),
    }
    // Always read back: several runs may judge the same lease expired at once.
    match confirm(store, key, mine, settle).await? {
        Some(etag) => Ok(Some(honours_conditions(store, key, mine, etag).await?)),
        None => Ok(None),
    }
}

/// Renews every ttl/3 until aborted; marks the lease lost when another run holds it or when
/// it could not be renewed for a whole ttl.
async fn renew_loop(s: Arc<Shared>) {
    let period = s.ttl / 3;
    loop {
        tokio::time::sleep(period).await;
        match renew(&s).await {
            Ok(None) => {}
            Ok(Some(by)) => return mark_lost(&s, by),
            Err(e) => {
                let since = s
                    .state
                    .lock()
                    .map(|g| g.renewed)
                    .unwrap_or_else(|p| p.into_inner().renewed);
                tracing::warn!(job = %s.job, "lease renewal failed: {e}");
                if since.elapsed() >= s.ttl {
                    return mark_lost(
                        &s,
                        format!("no renewal for {} s (last error: {e})", s.ttl.as_secs()),
                    );
                }
            }
        }
    }
}

fn mark_lost(s: &Shared, by: String) {
    tracing::warn!(job = %s.job, "lease lost to {by}");
    if let Ok(mut g) = s.lost_to.lock() {
        *g = Some(by);
    }
    s.lost.cancel();
}

/// Whether the lease as read is `owner`'s.
fn is_mine(current: Option<&Current>, owner: &str) -> bool {
    current.is_some_and(|c| c.record.as_ref().is_some_and(|r| r.owner == owner))
}

/// Who holds the lease now, as read, for a run that lost it.
fn holder(current: Option<Current>) -> String {
    match current {
        None => "nobody (the lease was removed)".to_string(),
        Some(Current { record: None, .. }) => "an unreadable lease".to_string(),
        Some(Current {
            record: Some(r), ..
        }) => format!(
            "host {} (pid {}) since {}",
            r.host,
            r.pid,
            rfc3339(r.started_at)
        ),
    }
}

/// One renewal; Some(description of the new holder) when the lease is no longer ours.
async fn renew(s: &Shared) -> Result<Option<String>, StorageError> {
    let (mut record, etag) = {
        let g = s.state.lock().unwrap_or_else(|p| p.into_inner());
        (g.record.clone(), g.etag.clone())
    };
    record.renewed_at = unix_now();
    let body = || record.to_bytes().into();
    // `If-Match` where the store honours it; None: read, and rewrite if still ours.
    let conditional = match (s.conditional, etag) {
        (true, Some(etag)) => match s.store.put_if_match(&s.key, body(), &etag).await {
            Ok(t) => Some(t),
            Err(e) if e.kind() == StorageErrorKind::Conflict => {
                // Ours still (a retried request had landed) or somebody else's.
                let current = read(&s.store, &s.key).await?;
                if !is_mine(current.as_ref(), &record.owner) {
                    return Ok(Some(holder(current)));
                }
                current.and_then(|c| c.etag).map(Some)
            }
            Err(e) if e.kind() == StorageErrorKind::Unsupported => None,
            Err(e) => return Err(e),
        },
        _ => None,
    };
    let new_etag = match conditional {
        Some(etag) => etag,
        None => {
            let current = read(&s.store, &s.key).await?;
            if !is_mine(current.as_ref(), &record.owner) {
                return Ok(Some(holder(current)));
            }
            s.store.put(&s.key, body()).await?
        }
    };
    let mut g = s.state.lock().unwrap_or_else(|p| p.into_inner());
    g.record = record;
    g.etag = new_etag;
    g.renewed = Instant::now();
    Ok(None)
}

/// This process as a lease records it.
struct Process {
    host: String,
    boot_id: String,
    pid_start: u64,
}

impl Process {
    fn current() -> Self {
        Self {
            host: host_name(),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            pid_start: proc_start_ticks(std::process::id()).unwrap_or(0),
        }
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The host name: `/proc/sys/kernel/hostname` (Linux), else `$HOSTNAME`, else `/etc/hostname`.
pub fn host_name() -> String {
    let h = read_trimmed("/proc/sys/kernel/hostname");
    if !h.is_empty() {
        return h;
    }
    if let Ok(h) = std::env::var("HOSTNAME")
        && !h.trim().is_empty()
    {
        return h.trim().to_string();
    }
    read_trimmed("/etc/hostname")
}

/// Field 22 of `/proc/<pid>/stat`: the process's start time in ticks since boot.
fn proc_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the
    // last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether process `pid`, started at `start` ticks (0: unknown), runs on this host. Without
/// `/proc` (not Linux) every process counts as running.
fn process_alive(pid: u32, start: u64) -> bool {
    if !std::path::Path::new("/proc/self/stat").exists() {
        return true;
    }
    match proc_start_ticks(pid) {
        None => false,
        Some(t) => start == 0 || t == start,
    }
}

#[cfg(test)]
mod tests;
