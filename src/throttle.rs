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

use std::num::{NonZeroU32, NonZeroU64};
use std::sync::Mutex;
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

/// Waits until `n` cells are available, sleeping on tokio's clock. `n` must not exceed the
/// limiter's burst.
async fn wait_for(limiter: &Limiter, clock: &TokioClock, n: NonZeroU32) {
    loop {
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
        wait_for(&self.limiter, &self.clock, NonZeroU32::MIN).await;
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
