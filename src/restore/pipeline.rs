//! Staging and importing at once: a segment's import starts as soon as its binlogs are staged
//! in the target Milvus's bucket, while later segments are still being copied.
//!
//! Owns the bookkeeping between the staging copy and the imports: which import unit each
//! staged object belongs to ([`Arrivals`], a [`CopyObserver`] in front of the flow's own),
//! and the order imports run in ([`import_as_staged`]): data units as they arrive, at most
//! `parallel` at once, delete-only (L0) units after every data unit. Does not own the copy or
//! the import calls themselves ([`super`]).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc;

use crate::copy::CopyObserver;
use crate::error::Error;

/// News from the staging copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arrival {
    /// Every object of this unit is in the target bucket.
    Unit(usize),
    /// The staging copy ended without failures: every unit is there.
    All,
}

/// Forwards a copy's events to `inner`, and reports each unit whose objects have all been
/// copied (or were already there) on a channel.
pub(super) struct Arrivals {
    inner: Arc<dyn CopyObserver>,
    /// Object (relative key) -> unit.
    unit_of: HashMap<String, usize>,
    /// Objects still missing, per unit.
    missing: Mutex<Vec<usize>>,
    tx: mpsc::UnboundedSender<Arrival>,
}

impl Arrivals {
    /// `units[i]` lists the relative keys unit `i` imports. Units with no objects arrive at
    /// once.
    pub(super) fn new(
        inner: Arc<dyn CopyObserver>,
        units: &[Vec<String>],
    ) -> (Arc<Arrivals>, mpsc::UnboundedReceiver<Arrival>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut unit_of = HashMap::new();
        let mut missing = vec![0; units.len()];
        for (i, objects) in units.iter().enumerate() {
            for o in objects {
                if unit_of.insert(o.clone(), i).is_none() {
                    missing[i] += 1;
                }
            }
        }
        for (i, m) in missing.iter().enumerate() {
            if *m == 0 {
                let _ = tx.send(Arrival::Unit(i));
            }
        }
        let a = Arrivals {
            inner,
            unit_of,
            missing: Mutex::new(missing),
            tx,
        };
        (Arc::new(a), rx)
    }

    /// Reports that the staging copy ended without failures.
    pub(super) fn all_staged(&self) {
        let _ = self.tx.send(Arrival::All);
    }

    fn arrived(&self, rel: &str) {
        let Some(&unit) = self.unit_of.get(rel) else {
            return;
        };
        let mut missing = self.missing.lock().unwrap_or_else(|p| p.into_inner());
        if missing[unit] > 0 {
            missing[unit] -= 1;
            if missing[unit] == 0 {
                tracing::debug!(unit, "import unit staged");
                let _ = self.tx.send(Arrival::Unit(unit));
            }
        }
    }
}

crate::copy::report::tap_copy_events!(Arrivals, inner, arrived);

/// Runs `import(i)` for every unit `i` once it has arrived on `rx`: data units (`l0[i]`
/// false) in arrival order, at most `parallel` at once; then the delete-only units, which
/// must follow all data. Returns the rows the imports reported, summed. `rx` closing before
/// [`Arrival::All`] means the staging failed: the imports started finish, and the rest never
/// start.
///
/// # Errors
/// The first failing import; the staging's failure is the caller's to report.
pub(super) async fn import_as_staged<F, Fut>(
    l0: &[bool],
    parallel: usize,
    mut rx: mpsc::UnboundedReceiver<Arrival>,
    import: F,
) -> Result<u64, Error>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<u64, Error>>,
{
    let parallel = parallel.max(1);
    let mut queued = vec![false; l0.len()];
    let mut ready: VecDeque<usize> = VecDeque::new();
    let mut data_left = l0.iter().filter(|d| !**d).count();
    let mut staged = false;
    let mut open = true;
    let mut running = FuturesUnordered::new();
    let mut rows = 0u64;
    let mut queue = |i: usize, ready: &mut VecDeque<usize>| {
        if i < l0.len() && !queued[i] && !l0[i] {
            queued[i] = true;
            ready.push_back(i);
        }
    };
    loop {
        while running.len() < parallel
            && let Some(i) = ready.pop_front()
        {
            running.push(import(i));
        }
        if data_left == 0 && staged {
            break;
        }
        if !open && running.is_empty() && ready.is_empty() {
            // The staging failed before every unit arrived: nothing more will.
            return Ok(rows);
        }
        tokio::select! {
            msg = rx.recv(), if open => match msg {
                Some(Arrival::Unit(i)) => queue(i, &mut ready),
                Some(Arrival::All) => {
                    staged = true;
                    open = false;
                    for i in 0..l0.len() {
                        queue(i, &mut ready);
                    }
                }
                None => open = false,
            },
            Some(r) = running.next(), if !running.is_empty() => {
                rows += r?;
                data_left -= 1;
            }
        }
    }
    // Delete-only units, after every data unit.
    let mut deletes = futures::stream::iter((0..l0.len()).filter(|i| l0[*i]))
        .map(&import)
        .buffered(parallel);
    while let Some(r) = deletes.next().await {
        rows += r?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests;
