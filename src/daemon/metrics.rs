//! The daemon's Prometheus metrics: counters fed by every job's progress, job counts by state,
//! and the current throughput; rendered in the text exposition format (0.0.4) and served on
//! `GET /metrics` of a small HTTP listener.
//!
//! Owns the metric names and the HTTP endpoint. The job table supplies the counts by state.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::state::JobState;

/// Window of the throughput gauge.
const WINDOW: Duration = Duration::from_secs(10);

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    pub bytes_copied: AtomicU64,
    pub objects_copied: AtomicU64,
    pub retries: AtomicU64,
    pub rows_imported: AtomicU64,
    pub jobs_submitted: AtomicU64,
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl Metrics {
    /// Records the byte counter now; called about once a second.
    pub fn sample(&self) {
        let now = Instant::now();
        let bytes = self.bytes_copied.load(Ordering::Relaxed);
        let mut s = self.samples.lock().expect("samples lock");
        s.push_back((now, bytes));
        while s.len() > 2 && s.front().is_some_and(|(t, _)| now - *t > WINDOW) {
            s.pop_front();
        }
    }

    /// Bytes per second over the last samples (up to [`WINDOW`]).
    pub fn throughput(&self) -> f64 {
        let s = self.samples.lock().expect("samples lock");
        match (s.front(), s.back()) {
            (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => {
                (b1 - b0) as f64 / (*t1 - *t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// The exposition text, with `jobs` counted by state.
    pub fn render(&self, jobs: &[(JobState, u64)]) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter(
            "milvus_migrate_bytes_copied_total",
            "Bytes written to destination stores and verified.",
            load(&self.bytes_copied),
        );
        counter(
            "milvus_migrate_objects_copied_total",
            "Objects copied.",
            load(&self.objects_copied),
        );
        counter(
            "milvus_migrate_retries_total",
            "Store operations retried.",
            load(&self.retries),
        );
        counter(
            "milvus_migrate_rows_imported_total",
            "Rows imported into target Milvus.",
            load(&self.rows_imported),
        );
        counter(
            "milvus_migrate_jobs_submitted_total",
            "Jobs accepted.",
            load(&self.jobs_submitted),
        );
        let _ = writeln!(
            out,
            "# HELP milvus_migrate_jobs Jobs by state.\n# TYPE milvus_migrate_jobs gauge"
        );
        for state in JobState::ALL {
            let n = jobs
                .iter()
                .find(|(s, _)| *s == state)
                .map_or(0, |(_, n)| *n);
            let _ = writeln!(
                out,
                "milvus_migrate_jobs{{state=\"{}\"}} {n}",
                state.as_str()
            );
        }
        let _ = writeln!(
            out,
            "# HELP milvus_migrate_throughput_bytes_per_second Copy rate over the last 10 s.\n\
             # TYPE milvus_migrate_throughput_bytes_per_second gauge\n\
             milvus_migrate_throughput_bytes_per_second {:.0}",
            self.throughput()
        );
        out
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` fires. With a `token`, requests must
/// carry `Authorization: Bearer <token>` (else 401).
pub async fn serve(
    listener: tokio::net::TcpListener,
    render: Arc<dyn Fn() -> String + Send + Sync>,
    token: Option<Arc<str>>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    use axum::http::{HeaderMap, StatusCode, header};
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |headers: HeaderMap| {
            let render = Arc::clone(&render);
            let token = token.clone();
            async move {
                let given = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                if let Some(t) = &token
                    && !super::auth::bearer_matches(given, t)
                {
                    return (
                        StatusCode::UNAUTHORIZED,
                        [(header::CONTENT_TYPE, "text/plain")],
                        "missing or wrong bearer token\n".to_string(),
                    );
                }
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    render(),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_state_and_the_counters() {
        let m = Metrics::default();
        m.bytes_copied.store(1234, Ordering::Relaxed);
        m.jobs_submitted.store(3, Ordering::Relaxed);
        let text = m.render(&[(JobState::Running, 2), (JobState::Succeeded, 1)]);
        assert!(
            text.contains("\nmilvus_migrate_bytes_copied_total 1234\n"),
            "{text}"
        );
        assert!(
            text.contains("\nmilvus_migrate_jobs_submitted_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains("milvus_migrate_jobs{state=\"running\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("milvus_migrate_jobs{state=\"queued\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("milvus_migrate_jobs{state=\"succeeded\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE milvus_migrate_jobs gauge\n"),
            "{text}"
        );
    }

    #[test]
    fn throughput_is_the_rate_between_the_oldest_and_newest_sample() {
        let m = Metrics::default();
        assert_eq!(m.throughput(), 0.0);
        let t0 = Instant::now();
        {
            let mut s = m.samples.lock().unwrap();
            s.push_back((t0, 0));
            s.push_back((t0 + Duration::from_secs(2), 4_000_000));
        }
        assert!((m.throughput() - 2_000_000.0).abs() < 1.0);
    }
}
