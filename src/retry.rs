//! Retry with exponential backoff and jitter: the copier's parts and small objects, and Milvus
//! calls, each retried through the same loop.
//!
//! Owns the backoff schedule and the loop; whether an error is worth another try is the error's
//! own property ([`Retryable::is_retryable`]), never decided from its message. Sits below both
//! users ([`crate::copy`], [`crate::milvus`]); knows neither.

use std::future::Future;
use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::SmallRng};

use crate::storage::StorageError;

/// An error that knows whether the same operation may succeed if tried again.
pub trait Retryable {
    /// Whether trying again, unchanged, may succeed.
    fn is_retryable(&self) -> bool;
}

impl Retryable for StorageError {
    fn is_retryable(&self) -> bool {
        StorageError::is_retryable(self)
    }
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first one.
    pub max_retries: u32,
    /// Upper bound of the first delay.
    pub initial: Duration,
    /// Upper bound of any delay.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 10,
            initial: Duration::from_millis(200),
            max: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The policy for preflight requests (first listing, existence checks): at most three
    /// retries, so an unreachable or misconfigured store is reported within seconds.
    pub fn preflight(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.max_retries.min(3),
            ..*self
        }
    }

    /// The delay before retry number `retry` (1-based): "equal jitter", half of the exponential
    /// ceiling plus a random share of the other half, so delays grow yet never synchronise.
    pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let ceiling = self
            .initial
            .saturating_mul(1u32 << exp.min(20))
            .min(self.max);
        let half = ceiling / 2;
        half + rng.random_range(Duration::ZERO..=half)
    }

    /// Runs `op` until it succeeds, fails with an error that is not retryable, or the budget is
    /// spent. `on_retry` hears of each failure that will be retried, with the retry number.
    ///
    /// # Errors
    /// The last error of `op`.
    pub async fn run<T, E, F, Fut>(
        &self,
        mut op: F,
        mut on_retry: impl FnMut(&E, u32),
    ) -> Result<T, E>
    where
        E: Retryable,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut rng = SmallRng::from_os_rng();
        self.run_with_rng(&mut rng, &mut op, &mut on_retry).await
    }

    /// [`RetryPolicy::run`] with a given random source (tests use a seeded one).
    ///
    /// # Errors
    /// The last error of `op`.
    pub async fn run_with_rng<T, E, F, Fut>(
        &self,
        rng: &mut impl Rng,
        op: &mut F,
        on_retry: &mut impl FnMut(&E, u32),
    ) -> Result<T, E>
    where
        E: Retryable,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempt = 0u32;
        loop {
            match op(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt < self.max_retries => {
                    attempt += 1;
                    on_retry(&e, attempt);
                    tokio::time::sleep(self.delay(attempt, rng)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageErrorKind;

    fn err(kind: StorageErrorKind) -> StorageError {
        StorageError::Request {
            store: "s3://b".into(),
            op: "PUT",
            key: "k".into(),
            kind,
            message: "injected".into(),
        }
    }

    #[test]
    fn delays_grow_and_stay_within_bounds() {
        let p = RetryPolicy {
            max_retries: 10,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        let mut rng = SmallRng::seed_from_u64(7);
        for retry in 1..=12 {
            let ceiling = (Duration::from_millis(100) * (1 << (retry - 1).min(20))).min(p.max);
            for _ in 0..100 {
                let d = p.delay(retry, &mut rng);
                assert!(d >= ceiling / 2 && d <= ceiling, "retry {retry}: {d:?}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_with_backoff() {
        let p = RetryPolicy {
            max_retries: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let mut rng = SmallRng::seed_from_u64(1);
        let start = tokio::time::Instant::now();
        let mut retries = vec![];
        let r = p
            .run_with_rng(
                &mut rng,
                &mut |attempt| async move {
                    if attempt < 3 {
                        Err(err(StorageErrorKind::Transient))
                    } else {
                        Ok(attempt)
                    }
                },
                &mut |_, n| retries.push(n),
            )
            .await;
        assert_eq!(r.unwrap(), 3);
        assert_eq!(retries, vec![1, 2, 3]);
        // Delays: [50,100] + [100,200] + [200,400] ms.
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(350) && waited <= Duration::from_millis(700),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn fatal_errors_are_not_retried_and_budget_is_bounded() {
        let p = RetryPolicy {
            max_retries: 4,
            ..RetryPolicy::default()
        };
        let mut calls = 0;
        let r: Result<(), _> = p
            .run(
                |_| {
                    calls += 1;
                    async { Err(err(StorageErrorKind::Denied)) }
                },
                |_, _| {},
            )
            .await;
        assert_eq!(r.unwrap_err().kind(), StorageErrorKind::Denied);
        assert_eq!(calls, 1);

        let mut calls = 0;
        let r: Result<(), _> = p
            .run(
                |_| {
                    calls += 1;
                    async { Err(err(StorageErrorKind::Transient)) }
                },
                |_, _| {},
            )
            .await;
        assert!(r.is_err());
        assert_eq!(calls, 5, "first try plus max_retries");
    }
}
