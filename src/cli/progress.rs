//! Progress displays for the copier: indicatif bars on a terminal, a line every few seconds
//! otherwise. Both read the same counters, fed by [`CopyObserver`] events.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use milvus_migrate::copy::{CopyObserver, PlanSummary};
use milvus_migrate::storage::StorageError;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bars on the terminal.
    Bars,
    /// One line per interval on stderr.
    Lines(Duration),
    /// Nothing.
    Quiet,
}

impl Mode {
    /// Bars when stderr is a terminal, lines otherwise, nothing when `quiet`.
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines(Duration::from_secs(5))
        }
    }
}

#[derive(Default)]
struct Counters {
    objects_total: AtomicU64,
    objects_done: AtomicU64,
    bytes_total: AtomicU64,
    bytes_done: AtomicU64,
    retries: AtomicU64,
    failed: AtomicU64,
}

/// The copier observer behind both displays.
pub struct Progress {
    mode: Mode,
    bar: Option<ProgressBar>,
    counters: Arc<Counters>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts a display in `mode`.
    pub fn start(mode: Mode) -> Arc<Progress> {
        let counters = Arc::new(Counters::default());
        let bar = (mode == Mode::Bars).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let ticker = match mode {
            Mode::Lines(every) => {
                let c = Arc::clone(&counters);
                Some(tokio::spawn(async move {
                    let started = Instant::now();
                    let mut tick = tokio::time::interval(every);
                    tick.tick().await;
                    let mut last = None;
                    loop {
                        tick.tick().await;
                        // Only while something moves: flows wait on Milvus between copies.
                        let now = (
                            c.bytes_done.load(Ordering::Relaxed),
                            c.objects_done.load(Ordering::Relaxed),
                            c.retries.load(Ordering::Relaxed),
                        );
                        if last != Some(now) {
                            eprintln!("{}", line(&c, started.elapsed()));
                            last = Some(now);
                        }
                    }
                }))
            }
            _ => None,
        };
        Arc::new(Progress {
            mode,
            bar,
            counters,
            ticker,
        })
    }

    /// Stops the display.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(t) = &self.ticker {
            t.abort();
        }
    }

    fn message(&self) {
        if let Some(bar) = &self.bar {
            let c = &self.counters;
            let mut msg = format!(
                "objects {}/{}",
                c.objects_done.load(Ordering::Relaxed),
                c.objects_total.load(Ordering::Relaxed)
            );
            let retries = c.retries.load(Ordering::Relaxed);
            if retries > 0 {
                msg.push_str(&format!(", {retries} retries"));
            }
            let failed = c.failed.load(Ordering::Relaxed);
            if failed > 0 {
                msg.push_str(&format!(", {failed} failed"));
            }
            bar.set_message(msg);
        }
    }

    fn say(&self, text: &str) {
        match (&self.bar, self.mode) {
            (Some(bar), _) => bar.println(text),
            (None, Mode::Lines(_)) => eprintln!("{text}"),
            _ => {}
        }
    }
}

fn line(c: &Counters, elapsed: Duration) -> String {
    let done = c.bytes_done.load(Ordering::Relaxed);
    let total = c.bytes_total.load(Ordering::Relaxed);
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-3);
    let eta = if rate > 0.0 && total > done {
        format!("{:.0}s", (total - done) as f64 / rate)
    } else {
        "-".into()
    };
    format!(
        "progress: {}/{} objects, {}/{} ({}/s), ETA {eta}, {} retries, {} failed",
        c.objects_done.load(Ordering::Relaxed),
        c.objects_total.load(Ordering::Relaxed),
        HumanBytes(done),
        HumanBytes(total),
        HumanBytes(rate as u64),
        c.retries.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed),
    )
}

impl CopyObserver for Progress {
    fn planned(&self, s: &PlanSummary) {
        let c = &self.counters;
        // A flow runs several copies one after the other: each starts from zero.
        c.objects_done.store(0, Ordering::Relaxed);
        c.bytes_done.store(0, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_position(0);
        }
        c.objects_total
            .store(s.objects_total - s.objects_skipped, Ordering::Relaxed);
        c.bytes_total
            .store(s.bytes_total - s.bytes_skipped, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(s.bytes_total - s.bytes_skipped);
        }
        if s.objects_skipped > 0 || s.objects_resumed > 0 {
            self.say(&format!(
                "{} of {} objects ({}) already at the destination; {} uploads resume",
                s.objects_skipped,
                s.objects_total,
                HumanBytes(s.bytes_skipped),
                s.objects_resumed
            ));
        }
        self.message();
    }

    fn bytes(&self, n: u64) {
        self.counters.bytes_done.fetch_add(n, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn object_done(&self, _rel: &str, _size: u64) {
        self.counters.objects_done.fetch_add(1, Ordering::Relaxed);
        self.message();
    }

    fn retry(&self, rel: &str, what: &str, attempt: u32, error: &StorageError) {
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
        tracing::info!("retry {attempt} of {what} of {rel}: {error}");
        self.message();
    }

    fn step(&self, message: &str) {
        self.say(message);
    }

    fn object_failed(&self, rel: &str, error: &StorageError) {
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        self.say(&format!("failed: {rel}: {error}"));
        self.message();
    }
}
