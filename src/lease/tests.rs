//! Leases against in-memory stores: one that honours conditional writes, one that ignores
//! them (as some S3-compatible servers do).

use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use super::*;

/// An in-memory store with a network store's latency (each request yields, so racing runs
/// interleave) that honours conditional writes, or ignores them and overwrites (as some
/// S3-compatible servers do).
#[derive(Debug)]
struct Mem {
    inner: InMemory,
    ignores_conditions: bool,
}

impl std::fmt::Display for Mem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mem(ignores_conditions: {})", self.ignores_conditions)
    }
}

#[async_trait::async_trait]
impl ObjectStore for Mem {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let opts = if self.ignores_conditions {
            PutOptions {
                mode: PutMode::Overwrite,
                ..opts
            }
        } else {
            opts
        };
        tokio::task::yield_now().await;
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        tokio::task::yield_now().await;
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

fn mem(name: &str, ignores_conditions: bool) -> Store {
    let inner = InMemory::new();
    let store = Mem {
        inner,
        ignores_conditions,
    };
    Store::from_object_store(name, Arc::new(store), None, false)
}

fn honouring() -> Store {
    mem("mem://honours", false)
}

fn ignoring() -> Store {
    mem("mem://ignores", true)
}

fn quick(ttl_ms: u64) -> LeaseOptions {
    LeaseOptions {
        ttl: Duration::from_millis(ttl_ms),
        wait: false,
        settle: Duration::from_millis(50),
    }
}

const KEY: &str = "backup/m1.migrate-lease.json";

fn no_wait(_: &LeaseError) {}

async fn put_record(store: &Store, r: &LeaseRecord) {
    store.put(KEY, r.to_bytes().into()).await.unwrap();
}

async fn holder(store: &Store) -> Option<LeaseRecord> {
    read(store, KEY).await.unwrap().and_then(|c| c.record)
}

#[tokio::test]
async fn second_run_is_refused_naming_the_holder_then_takes_it_after_release() {
    for store in [honouring(), ignoring()] {
        let first = Lease::acquire(&store, KEY, "m1", &quick(60_000), &no_wait)
            .await
            .unwrap();
        let err = Lease::acquire(&store, KEY, "m1", &quick(60_000), &no_wait)
            .await
            .unwrap_err();
        let LeaseError::Held(held) = &err else {
            panic!("{err}");
        };
        assert_eq!(held.pid, std::process::id());
        assert_eq!(held.host, host_name());
        let msg = err.to_string();
        assert!(msg.contains("m1 is running on host"), "{msg}");
        assert!(msg.contains("--wait"), "{msg}");
        assert!(err.is_retryable());

        first.release().await.unwrap();
        assert!(holder(&store).await.is_none(), "released lease removed");
        let again = Lease::acquire(&store, KEY, "m1", &quick(60_000), &no_wait)
            .await
            .unwrap();
        assert_eq!(holder(&store).await.unwrap().owner, again.record().owner);
        // No probe object is left behind.
        let left: Vec<_> = store.list("backup").await.unwrap();
        assert_eq!(left.len(), 1, "{left:?}");
    }
}

/// A local directory (a `local` backup store) refuses a second create with "file exists":
/// that is the refusal of a conditional write, not a failure of the run.
#[tokio::test]
async fn a_lease_in_a_local_directory_refuses_a_second_run_and_renews() {
    let dir = tempfile::tempdir().unwrap();
    let fs = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    let store = Store::from_object_store("file://lease-test", Arc::new(fs), None, false);
    let first = Lease::acquire(&store, KEY, "m1", &quick(300), &no_wait)
        .await
        .unwrap();
    let err = Lease::acquire(&store, KEY, "m1", &quick(300), &no_wait)
        .await
        .unwrap_err();
    assert!(matches!(err, LeaseError::Held(_)), "{err}");
    // Renewals (a directory has no If-Match: rewritten and read back) keep it held.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let err = Lease::acquire(&store, KEY, "m1", &quick(300), &no_wait)
        .await
        .unwrap_err();
    assert!(matches!(err, LeaseError::Held(_)), "renewed: {err}");
    first.release().await.unwrap();
    assert!(holder(&store).await.is_none(), "released lease removed");
}

#[tokio::test]
async fn a_lease_not_renewed_for_its_ttl_is_taken_over() {
    for store in [honouring(), ignoring()] {
        let mut stale = LeaseRecord::ours("m1", Duration::from_secs(30));
        stale.host = "other-host".into();
        stale.renewed_at = unix_now() - 31;
        put_record(&store, &stale).await;
        let lease = Lease::acquire(&store, KEY, "m1", &quick(60_000), &no_wait)
            .await
            .unwrap();
        assert_eq!(holder(&store).await.unwrap().owner, lease.record().owner);
    }
}

#[tokio::test]
async fn a_live_lease_on_another_host_is_not_taken_over() {
    let store = honouring();
    let mut live = LeaseRecord::ours("m1", Duration::from_secs(30));
    live.host = "other-host".into();
    live.renewed_at = unix_now() - 20;
    put_record(&store, &live).await;
    let err = Lease::acquire(&store, KEY, "m1", &quick(60_000), &no_wait)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LeaseError::Held(h) if h.host == "other-host" && h.renewed_ago >= 20),
        "{err}"
    );
    assert_eq!(holder(&store).await.unwrap().owner, live.owner);
}

#[tokio::test]
async fn a_dead_owner_on_this_host_is_taken_over_at_once() {
    let store = honouring();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let mut dead = LeaseRecord::ours("m1", Duration::from_secs(3600));
    dead.pid = dead_pid;
    put_record(&store, &dead).await;
    let lease = Lease::acquire(&store, KEY, "m1", &quick(60_000), &no_wait)
        .await
        .unwrap();
    assert_ne!(lease.record().owner, dead.owner);

    // A live process on this host (this one) with a reused pid but another start time is
    // gone too; with its own start time it is alive.
    let mut reused = LeaseRecord::ours("m1", Duration::from_secs(3600));
    reused.pid_start += 1;
    assert!(reused.owner_gone());
    assert!(!LeaseRecord::ours("m1", Duration::from_secs(3600)).owner_gone());
}

#[tokio::test]
async fn a_waiting_run_takes_the_lease_when_the_holder_releases_it() {
    for store in [honouring(), ignoring()] {
        let first = Lease::acquire(&store, KEY, "m1", &quick(60_000), &no_wait)
            .await
            .unwrap();
        let waits = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = Arc::clone(&waits);
        let waiter = move |_: &LeaseError| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        };
        let opts = LeaseOptions {
            wait: true,
            ..quick(1_200)
        };
        let s2 = store.clone();
        let second =
            tokio::spawn(async move { Lease::acquire(&s2, KEY, "m1", &opts, &waiter).await });
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(!second.is_finished());
        first.release().await.unwrap();
        let second = second.await.unwrap().unwrap();
        assert!(waits.load(std::sync::atomic::Ordering::SeqCst) >= 1);
        assert_eq!(holder(&store).await.unwrap().owner, second.record().owner);
    }
}

#[tokio::test]
async fn a_waiting_run_takes_over_a_lease_seen_unchanged_for_its_ttl_whatever_the_clocks() {
    let store = honouring();
    // An owner on another host whose clock runs an hour ahead, and which died: by the
    // clocks its lease looks fresh, but nobody renews it.
    let mut ahead = LeaseRecord::ours("m1", Duration::from_secs(1));
    ahead.host = "other-host".into();
    ahead.renewed_at = unix_now() + 3600;
    put_record(&store, &ahead).await;
    let opts = LeaseOptions {
        wait: true,
        ..quick(1_000)
    };
    let t = std::time::Instant::now();
    let lease = tokio::time::timeout(
        Duration::from_secs(10),
        Lease::acquire(&store, KEY, "m1", &opts, &no_wait),
    )
    .await
    .expect("took over within 10 s")
    .unwrap();
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert_eq!(holder(&store).await.unwrap().owner, lease.record().owner);
}

#[tokio::test]
async fn the_holder_renews_and_a_waiting_run_keeps_waiting() {
    let store = honouring();
    let first = Lease::acquire(&store, KEY, "m1", &quick(900), &no_wait)
        .await
        .unwrap();
    let before = holder(&store).await.unwrap().renewed_at;
    let opts = LeaseOptions {
        wait: true,
        ..quick(900)
    };
    // Three ttls: a lease not renewed would have been taken over.
    let r = tokio::time::timeout(
        Duration::from_millis(2_700),
        Lease::acquire(&store, KEY, "m1", &opts, &no_wait),
    )
    .await;
    assert!(r.is_err(), "the waiting run must not take a renewed lease");
    first.check().unwrap();
    let now = holder(&store).await.unwrap();
    assert_eq!(now.owner, first.record().owner);
    assert!(now.renewed_at >= before);
}

#[tokio::test]
async fn a_holder_whose_lease_was_taken_learns_it_has_lost_it() {
    for store in [honouring(), ignoring()] {
        let first = Lease::acquire(&store, KEY, "m1", &quick(600), &no_wait)
            .await
            .unwrap();
        let mut thief = LeaseRecord::ours("m1", Duration::from_secs(60));
        thief.host = "thief-host".into();
        put_record(&store, &thief).await;
        tokio::time::timeout(Duration::from_secs(3), first.lost().cancelled())
            .await
            .expect("loss noticed within a few renewal periods");
        let err = first.check().unwrap_err();
        assert!(
            matches!(&err, LeaseError::Lost { by, .. } if by.contains("thief-host")),
            "{err}"
        );
        // Releasing a lost lease leaves the new holder's in place.
        first.release().await.unwrap();
        assert_eq!(holder(&store).await.unwrap().owner, thief.owner);
    }
}

#[tokio::test]
async fn racing_runs_end_with_exactly_one_holder() {
    for store in [honouring(), ignoring()] {
        let runs: Vec<_> = (0..6)
            .map(|_| {
                let s = store.clone();
                tokio::spawn(async move {
                    Lease::acquire(&s, KEY, "m1", &quick(60_000), &no_wait).await
                })
            })
            .collect();
        let mut won = Vec::new();
        for r in runs {
            match r.await.unwrap() {
                Ok(l) => won.push(l),
                Err(LeaseError::Held(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(won.len(), 1, "{}", store.name());
        assert_eq!(holder(&store).await.unwrap().owner, won[0].record().owner);
    }
}

#[test]
fn this_process_reads_as_alive_and_a_missing_one_as_gone() {
    let me = std::process::id();
    let start = proc_start_ticks(me).expect("/proc on Linux");
    assert!(process_alive(me, start));
    assert!(process_alive(me, 0));
    assert!(!process_alive(me, start + 1));
    assert!(!process_alive(u32::MAX - 1, 0));
    assert!(!host_name().is_empty());
}

#[tokio::test]
async fn a_holder_whose_lease_was_removed_learns_it_has_lost_it() {
    for store in [honouring(), ignoring()] {
        let first = Lease::acquire(&store, KEY, "m1", &quick(600), &no_wait)
            .await
            .unwrap();
        store.delete(KEY).await.unwrap();
        tokio::time::timeout(Duration::from_secs(3), first.lost().cancelled())
            .await
            .expect("loss noticed within a few renewal periods");
        let err = first.check().unwrap_err().to_string();
        assert!(
            err.contains("lost its lease") && err.contains("to nobody (the lease was removed)"),
            "{err}"
        );
    }
}
