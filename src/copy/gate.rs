//! Copies that read what another copy is still writing: a restore staging a segment's binlogs
//! out of B's backup store while the backup is being copied into that store from A.
//!
//! Owns [`SourceGate`], which a copy awaits before it reads each object (see
//! [`super::CopyJob::gate`]), and [`Relay`], the gate fed by the upstream copy's events: an
//! object may be read once the upstream copy has written it (or found it already there), and
//! never once the upstream copy has ended without it. Does not own the order objects are
//! written in ([`super::CopyJob::order`]: the upstream copy writes first what the consumer
//! reads first).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::CopyObserver;
use crate::storage::{StorageError, StorageErrorKind};

/// Says when a copy may read a source object.
#[async_trait::async_trait]
pub trait SourceGate: Send + Sync + std::fmt::Debug {
    /// Waits until the source object `rel` (relative to the copy's source prefix) can be read.
    ///
    /// # Errors
    /// A [`StorageError`] when it never will be: the upstream failed (kind
    /// [`StorageErrorKind::Fatal`], which stops the copy) or ended without it
    /// ([`StorageErrorKind::NotFound`], a failure of that object).
    async fn ready(&self, rel: &str) -> Result<(), StorageError>;
}

/// How the upstream copy ended.
#[derive(Debug, Clone)]
enum Ending {
    /// Every object is written.
    Complete,
    /// It stopped or left objects behind: why.
    Failed(String),
}

#[derive(Debug, Default)]
struct RelayState {
    arrived: HashSet<String>,
    ended: Option<Ending>,
}

/// A [`CopyObserver`] in front of the upstream copy's own observer that records each object
/// the upstream copy has written or found already written, and a [`SourceGate`] over them for
/// the copy that reads them.
pub struct Relay {
    inner: Arc<dyn CopyObserver>,
    /// The store the upstream copy writes (for errors).
    store: String,
    state: Mutex<RelayState>,
    /// Bumped after each change of `state`.
    changed: watch::Sender<u64>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("Relay")
            .field("store", &self.store)
            .field("arrived", &st.arrived.len())
            .field("ended", &st.ended)
            .finish()
    }
}

impl Relay {
    /// A relay for an upstream copy writing into `store`, forwarding its events to `inner`.
    pub fn new(inner: Arc<dyn CopyObserver>, store: &str) -> Arc<Relay> {
        Arc::new(Relay {
            inner,
            store: store.to_string(),
            state: Mutex::new(RelayState::default()),
            changed: watch::channel(0).0,
        })
    }

    /// The upstream copy wrote everything: objects it never wrote will not come.
    pub fn complete(&self) {
        self.end(Ending::Complete);
    }

    /// The upstream copy failed (`why`): objects not yet written will not come.
    pub fn failed(&self, why: &str) {
        self.end(Ending::Failed(why.to_string()));
    }

    fn end(&self, ending: Ending) {
        self.lock().ended.get_or_insert(ending);
        self.changed.send_modify(|v| *v += 1);
    }

    fn arrived(&self, rel: &str) {
        tracing::trace!(store = %self.store, rel, "object arrived for the reader downstream");
        self.lock().arrived.insert(rel.to_string());
        self.changed.send_modify(|v| *v += 1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RelayState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Some` once `rel` can be read or never will be.
    fn settled(&self, rel: &str) -> Option<Result<(), StorageError>> {
        let st = self.lock();
        if st.arrived.contains(rel) {
            return Some(Ok(()));
        }
        let (kind, message) = match st.ended.as_ref()? {
            Ending::Complete => (
                StorageErrorKind::NotFound,
                "the copy into this store ended without writing it".to_string(),
            ),
            Ending::Failed(why) => (
                StorageErrorKind::Fatal,
                format!("the copy into this store failed before writing it: {why}"),
            ),
        };
        Some(Err(StorageError::Request {
            store: self.store.clone(),
            op: "wait for",
            key: rel.to_string(),
            kind,
            message,
        }))
    }
}

#[async_trait::async_trait]
impl SourceGate for Relay {
    async fn ready(&self, rel: &str) -> Result<(), StorageError> {
        // Subscribed before looking, so a change after the look wakes the wait below.
        let mut changes = self.changed.subscribe();
        loop {
            if let Some(r) = self.settled(rel) {
                return r;
            }
            // The sender lives as long as `self`: this never fails while we hold it.
            let _ = changes.changed().await;
        }
    }
}

super::report::tap_copy_events!(Relay, inner, arrived);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::copy::{CopyObserver, NoProgress};

    fn relay() -> Arc<Relay> {
        Relay::new(Arc::new(NoProgress), "b-backup")
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_waits_until_the_object_is_written_or_found_there() {
        let r = relay();
        let waiting = tokio::spawn({
            let r = Arc::clone(&r);
            async move { r.ready("seg/1").await }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiting.is_finished(), "must wait for the upstream copy");
        r.object_done("seg/0", 10);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiting.is_finished(), "another object does not open it");
        r.object_done("seg/1", 10);
        waiting.await.unwrap().unwrap();
        // Already there (skipped by the upstream copy): no wait.
        r.object_skipped("seg/2", 10);
        r.ready("seg/2").await.unwrap();
    }

    #[tokio::test]
    async fn an_upstream_that_ends_without_an_object_never_opens_it() {
        let r = relay();
        r.object_done("a", 1);
        r.complete();
        r.ready("a").await.unwrap();
        let e = r.ready("b").await.unwrap_err();
        assert_eq!(e.kind(), StorageErrorKind::NotFound);
        assert!(e.to_string().contains("b-backup"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_upstream_failure_stops_every_waiting_reader() {
        let r = relay();
        let waiters: Vec<_> = ["x", "y"]
            .into_iter()
            .map(|k| {
                let r = Arc::clone(&r);
                tokio::spawn(async move { r.ready(k).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        r.failed("credentials refused");
        for w in waiters {
            let e = w.await.unwrap().unwrap_err();
            assert_eq!(e.kind(), StorageErrorKind::Fatal);
            assert!(e.to_string().contains("credentials refused"), "{e}");
        }
        // The first ending stands.
        r.complete();
        assert_eq!(
            r.ready("z").await.unwrap_err().kind(),
            StorageErrorKind::Fatal
        );
    }
}
