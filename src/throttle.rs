//! Rate limits shared by everything one process copies: a byte-rate limit and a request-rate
//! limit, both GCRA limiters from `governor`.
//!
//! Owns the limiters and their waiting; does not decide where they are applied (the HTTP gate in
//! [`crate::storage`] takes a request permit per HTTP request, the copier takes byte permits for
//! every chunk it reads).
//!
//! Implementation notes:
//! - The limiters run on a clock derived from `tokio::time::Instant`, and waiting is a
//!   `tokio::time::sleep`, so tests drive them with tokio's paused time.
//! - Byte permits are counted in KiB cells (a byte cell would make the GCRA period a handful of
//!   nanoseconds and round the rate off by several percent). A sub-KiB remainder is carried over
//!   so the long-run rate is exact.
//! - A single acquisition never exceeds the burst: [`ByteLimiter::acquire`] splits larger
//!   amounts, so callers may pass any chunk size.
//! - [`ByteLimiter::acquire_ranked`] gives the rate to the lowest rank waiting, so a copy that
//!   must deliver its objects in an order (a restore consumes them segment by segment) finishes
//!   them one after another instead of all of them together at the end. Only waiters are
//!   ranked: a rank that is busy reading its stream leaves the rate to the next one, so the
//!   total rate is the same. The waiters form a queue ordered by (rank, arrival); only its head
//!   takes permits, and whoever removes the head wakes the next one.

use std::collections::BTreeMap;
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

const CELL: u64 = 1024;

/// A `governor` clock that reads tokio's clock, so paused time applies.
#[derive(Debug, Clone)]
pub struct TokioClock {
    start: tokio::time::Instant,
}

impl TokioClock {
    fn new() -> Self {
        Self {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.start.elapsed())
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

/// Waits until `n` cells are available, sleeping on tokio's clock; with a `turn`, takes them
/// only while heading its queue. `n` must not exceed the limiter's burst.
async fn wait_for(limiter: &Limiter, clock: &TokioClock, n: NonZeroU32, turn: Option<&Turn<'_>>) {
    loop {
        if let Some(t) = turn {
            t.head().await;
        }
        match limiter.check_n(n) {
            Ok(Ok(())) => return,
            Ok(Err(not_until)) => {
                let wait = not_until.earliest_possible().duration_since(clock.now());
                tokio::time::sleep(Duration::from(wait).max(Duration::from_micros(50))).await;
            }
            Err(_) => unreachable!("acquisitions are split to the burst size"),
        }
    }
}

/// Limits the bytes per second copied by the whole process.
#[derive(Debug)]
pub struct ByteLimiter {
    limiter: Limiter,
    clock: TokioClock,
    burst_cells: u32,
    carry: Mutex<u64>,
    bytes_per_sec: u64,
    turns: Turns,
}

/// The ranked waiters of a [`ByteLimiter`]: (rank, arrival) -> the signal that wakes it.
#[derive(Debug, Default)]
struct Turns {
    waiting: Mutex<Waiting>,
    arrivals: AtomicU64,
}

type Waiting = BTreeMap<(u64, u64), Arc<tokio::sync::Notify>>;

/// A place in [`Turns`]. Leaving it (also by being dropped, when the waiter is cancelled)
/// wakes the next head.
struct Turn<'a> {
    turns: &'a Turns,
    key: (u64, u64),
    signal: Arc<tokio::sync::Notify>,
}

impl Turns {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the queue at `rank`.
    fn join(&self, rank: u64) -> Turn<'_> {
        let key = (rank, self.arrivals.fetch_add(1, Ordering::Relaxed));
        let signal = Arc::new(tokio::sync::Notify::new());
        self.lock().insert(key, Arc::clone(&signal));
        Turn {
            turns: self,
            key,
            signal,
        }
    }
}

impl Turn<'_> {
    /// Waits until this waiter heads the queue. A lower rank that joins later takes the head
    /// from it; it gets the head back when that one leaves.
    async fn head(&self) {
        loop {
            // Created before the look, so a wake-up between the look and the wait is kept.
            let woken = self.signal.notified();
            if self.turns.lock().keys().next() == Some(&self.key) {
                return;
            }
            woken.await;
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut waiting = self.turns.lock();
        let was_head = waiting.keys().next() == Some(&self.key);
        waiting.remove(&self.key);
        if was_head && let Some(next) = waiting.values().next() {
            next.notify_one();
        }
    }
}

impl ByteLimiter {
    /// A limiter of `bytes_per_sec`, with a burst of a tenth of a second's worth of bytes
    /// (at least 64 KiB, at most 4 MiB).
    pub fn new(bytes_per_sec: NonZeroU64) -> Self {
        let rate = bytes_per_sec.get();
        let cells_per_sec = (rate / CELL).max(1);
        let burst_cells = (cells_per_sec / 10).clamp(64, 4096) as u32;
        let period = Duration::from_nanos((1_000_000_000u64 / cells_per_sec).max(1));
        let quota = Quota::with_period(period)
            .expect("period is non-zero")
            .allow_burst(NonZeroU32::new(burst_cells).expect("burst is at least 64"));
        let clock = TokioClock::new();
        Self {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
            burst_cells,
            carry: Mutex::new(0),
            bytes_per_sec: rate,
            turns: Turns::default(),
        }
    }

    /// The configured rate.
    pub fn bytes_per_sec(&self) -> u64 {
        self.bytes_per_sec
    }

    /// The largest number of bytes one permit covers.
    pub fn burst_bytes(&self) -> u64 {
        u64::from(self.burst_cells) * CELL
    }

    /// Waits until `bytes` may pass.
    pub async fn acquire(&self, bytes: u64) {
        self.take(bytes, None).await;
    }

    /// [`ByteLimiter::acquire`], served before every waiter of a higher rank (and after those
    /// of the same rank that came first).
    pub async fn acquire_ranked(&self, bytes: u64, rank: u64) {
        let turn = self.turns.join(rank);
        self.take(bytes, Some(&turn)).await;
    }

    async fn take(&self, bytes: u64, turn: Option<&Turn<'_>>) {
        let cells = {
            let mut carry = self.carry.lock().expect("carry lock");
            let total = *carry + bytes;
            *carry = total % CELL;
            total / CELL
        };
        let mut left = cells;
        while left > 0 {
            let n = left.min(u64::from(self.burst_cells)) as u32;
            wait_for(
                &self.limiter,
                &self.clock,
                NonZeroU32::new(n).expect("n > 0"),
                turn,
            )
            .await;
            left -= u64::from(n);
        }
    }
}

/// Limits the requests per second sent to object stores by the whole process.
#[derive(Debug)]
pub struct RequestLimiter {
    limiter: Limiter,
    clock: TokioClock,
}

impl RequestLimiter {
    /// A limiter of `per_sec` requests per second with a burst of one second's worth.
    pub fn new(per_sec: NonZeroU32) -> Self {
        let clock = TokioClock::new();
        Self {
            limiter: RateLimiter::direct_with_clock(Quota::per_second(per_sec), clock.clone()),
            clock,
        }
    }

    /// Waits until one more request may be sent.
    pub async fn acquire(&self) {
        wait_for(&self.limiter, &self.clock, NonZeroU32::MIN, None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn byte_limiter_holds_the_rate() {
        let limiter = ByteLimiter::new(NonZeroU64::new(1024 * 1024).unwrap());
        let start = tokio::time::Instant::now();
        // 10 MiB in uneven chunks, some larger than the burst.
        let mut sent = 0u64;
        let sizes = [4096u64, 65_537, 3 * 1024 * 1024, 1, 999_999];
        let mut i = 0;
        while sent < 10 * 1024 * 1024 {
            let n = sizes[i % sizes.len()].min(10 * 1024 * 1024 - sent);
            limiter.acquire(n).await;
            sent += n;
            i += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        // The first burst is free; the rest must go at 1 MiB/s.
        let burst = limiter.burst_bytes() as f64 / (1024.0 * 1024.0);
        assert!(secs >= 10.0 - burst - 0.01, "too fast: {secs}s");
        assert!(secs <= 10.0 + 0.05, "too slow: {secs}s");
    }

    #[tokio::test(start_paused = true)]
    async fn byte_limiter_carries_sub_kib_remainders() {
        let limiter = ByteLimiter::new(NonZeroU64::new(64 * 1024).unwrap());
        let start = tokio::time::Instant::now();
        // 2048 acquisitions of 512 bytes = 1 MiB: without the carry they would round to 0 cells.
        for _ in 0..2048 {
            limiter.acquire(512).await;
        }
        let secs = start.elapsed().as_secs_f64();
        let burst_secs = limiter.burst_bytes() as f64 / (64.0 * 1024.0);
        assert!(secs >= 16.0 - burst_secs - 0.01, "too fast: {secs}s");
        assert!(secs <= 16.0 + 0.05, "too slow: {secs}s");
    }

    /// Streams of 1 MiB at ranks 0..4 sharing 1 MiB/s, in 16 KiB chunks: each finishes about a
    /// second after the one before it, instead of all of them at the end.
    #[tokio::test(start_paused = true)]
    async fn ranked_streams_finish_in_rank_order_at_the_same_total_rate() {
        let limiter = Arc::new(ByteLimiter::new(NonZeroU64::new(1024 * 1024).unwrap()));
        let start = tokio::time::Instant::now();
        // Started from the last rank to the first, so arrival order does not give the answer.
        let streams: Vec<_> = (0..4u64)
            .rev()
            .map(|rank| {
                let limiter = Arc::clone(&limiter);
                tokio::spawn(async move {
                    for _ in 0..64 {
                        limiter.acquire_ranked(16 * 1024, rank).await;
                        // The stream's own read between two chunks.
                        tokio::time::sleep(Duration::from_micros(100)).await;
                    }
                    (rank, start.elapsed().as_secs_f64())
                })
            })
            .collect();
        let mut done = Vec::new();
        for s in streams {
            done.push(s.await.unwrap());
        }
        done.sort_by_key(|&(rank, _)| rank);
        let burst = limiter.burst_bytes() as f64 / (1024.0 * 1024.0);
        for (rank, secs) in done {
            let expected = (rank + 1) as f64;
            assert!(
                (expected - burst - 0.05..=expected + 0.05).contains(&secs),
                "rank {rank} ended at {secs}s, expected about {expected}s"
            );
        }
    }

    /// A waiter that is cancelled hands its turn on: the next rank is not stuck behind it.
    #[tokio::test(start_paused = true)]
    async fn a_cancelled_ranked_waiter_hands_its_turn_on() {
        let limiter = Arc::new(ByteLimiter::new(NonZeroU64::new(64 * 1024).unwrap()));
        // Spend the burst, so the next acquisition waits.
        limiter.acquire(limiter.burst_bytes()).await;
        let head = {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move { limiter.acquire_ranked(64 * 1024, 0).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let next = {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move { limiter.acquire_ranked(1024, 1).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        head.abort();
        let waited = tokio::time::timeout(Duration::from_millis(100), next).await;
        assert!(
            waited.is_ok(),
            "rank 1 still waits after rank 0 was cancelled"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn request_limiter_holds_the_rate() {
        let limiter = RequestLimiter::new(NonZeroU32::new(20).unwrap());
        let start = tokio::time::Instant::now();
        for _ in 0..220 {
            limiter.acquire().await;
        }
        // 20 in the initial burst, then 200 at 20/s.
        let secs = start.elapsed().as_secs_f64();
        assert!((9.9..=10.1).contains(&secs), "{secs}s");
    }
}
