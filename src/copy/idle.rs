//! Wakeup coalescing while large bodies stream.
//!
//! Owns when an idle runtime worker pauses before it sleeps. A worker with nothing to do
//! sleeps in the kernel until the next socket event. While large bodies stream in over many
//! connections, events come every few microseconds, and a sleep and wakeup per event cost
//! more than the bytes each brings: on a 2-core machine copying the benchmark's mixed set,
//! about 8,000 sleeps a second and a quarter of the copier's CPU. So while a large transfer
//! streams, an idle worker first pauses [`PAUSE`], then handles everything that arrived
//! meanwhile in one go. Copies of small objects wait on round trips, not on bytes: they are
//! not delayed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How long an idle worker pauses while large transfers stream: at 200 MB/s, about 100 KB
/// arrive meanwhile, which socket buffers hold with room to spare.
const PAUSE: Duration = Duration::from_micros(500);

/// Transfers of at least this many bytes count as large.
pub(super) const LARGE: u64 = 1 << 20;

static STREAMING: AtomicUsize = AtomicUsize::new(0);

/// Held while a large body streams.
pub(super) struct Streaming(());

impl Streaming {
    pub(super) fn start() -> Self {
        STREAMING.fetch_add(1, Ordering::Relaxed);
        Self(())
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        STREAMING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// For the runtime's `on_thread_park`: pauses an idle worker while a large transfer streams.
pub fn on_worker_idle() {
    if STREAMING.load(Ordering::Relaxed) > 0 {
        std::thread::sleep(PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_large_transfers_in_flight() {
        let before = STREAMING.load(Ordering::Relaxed);
        let a = Streaming::start();
        let b = Streaming::start();
        assert_eq!(STREAMING.load(Ordering::Relaxed), before + 2);
        drop(a);
        drop(b);
        assert_eq!(STREAMING.load(Ordering::Relaxed), before);
    }
}
