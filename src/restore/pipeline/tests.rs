//! The order imports run in while staging goes on, with fake imports.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::copy::NoProgress;
use crate::restore::RestoreError;

fn keys(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| s.to_string()).collect()
}

/// Records the order imports start and end in, and the most running at once.
#[derive(Default)]
struct Log {
    started: Mutex<Vec<usize>>,
    running: AtomicUsize,
    most: AtomicUsize,
}

impl Log {
    async fn import(&self, i: usize, rows: u64) -> Result<u64, Error> {
        self.started.lock().unwrap().push(i);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(10)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(rows)
    }
    fn started(&self) -> Vec<usize> {
        self.started.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn a_unit_is_imported_once_all_its_objects_arrived_and_not_before() {
    let units = vec![keys(&["s1/a", "s1/b"]), keys(&["s2/a"]), keys(&["l0/d"])];
    let (arrivals, rx) = Arrivals::new(Arc::new(NoProgress), &units);
    let log = Arc::new(Log::default());
    let l = Arc::clone(&log);
    let imports = tokio::spawn(async move {
        import_as_staged(&[false, false, true], 4, rx, |i| {
            let l = Arc::clone(&l);
            async move { l.import(i, 10).await }
        })
        .await
    });
    // s2 complete first; s1 half there: only s2 may start.
    arrivals.object_done("s2/a", 1);
    arrivals.object_done("s1/a", 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(log.started(), [1]);
    // An object skipped (already staged by an earlier run) counts as arrived; one outside
    // every unit is ignored.
    arrivals.object_skipped("s1/b", 1);
    arrivals.object_done("unrelated", 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(log.started(), [1, 0]);
    // The delete-only unit waits for the end of staging, even with its objects there.
    arrivals.object_done("l0/d", 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(log.started(), [1, 0]);
    arrivals.all_staged();
    let rows = imports.await.unwrap().unwrap();
    assert_eq!(rows, 30);
    assert_eq!(log.started(), [1, 0, 2]);
}

#[tokio::test]
async fn the_end_of_staging_releases_every_unit_and_parallelism_is_bounded() {
    let units: Vec<Vec<String>> = (0..8).map(|i| keys(&[&format!("s{i}")])).collect();
    let (arrivals, rx) = Arrivals::new(Arc::new(NoProgress), &units);
    // No per-object news at all (an observer that saw nothing): the end of staging is enough.
    arrivals.all_staged();
    let log = Log::default();
    let rows = import_as_staged(&[false; 8], 3, rx, |i| log.import(i, 1))
        .await
        .unwrap();
    assert_eq!(rows, 8);
    let mut started = log.started();
    started.sort_unstable();
    assert_eq!(started, (0..8).collect::<Vec<_>>());
    assert_eq!(log.most.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn units_without_objects_arrive_at_once() {
    let (_arrivals, rx) = Arrivals::new(Arc::new(NoProgress), &[vec![], keys(&["x"])]);
    let log = Log::default();
    let run = import_as_staged(&[false, false], 2, rx, |i| log.import(i, 1));
    // Staging never ends here: only the empty unit can run, then it waits.
    let r = tokio::time::timeout(Duration::from_millis(200), run).await;
    assert!(r.is_err());
    assert_eq!(log.started(), [0]);
}

#[tokio::test]
async fn a_failed_staging_starts_no_more_imports() {
    let units = vec![keys(&["s1"]), keys(&["s2"]), keys(&["l0"])];
    let (arrivals, rx) = Arrivals::new(Arc::new(NoProgress), &units);
    arrivals.object_done("s1", 1);
    // The staging copy fails: its observer is dropped without `all_staged`.
    drop(arrivals);
    let log = Log::default();
    let rows = import_as_staged(&[false, false, true], 2, rx, |i| log.import(i, 5))
        .await
        .unwrap();
    assert_eq!(rows, 5);
    assert_eq!(log.started(), [0]);
}

#[tokio::test]
async fn a_failed_import_stops_the_rest() {
    let units: Vec<Vec<String>> = (0..4).map(|i| keys(&[&format!("s{i}")])).collect();
    let (arrivals, rx) = Arrivals::new(Arc::new(NoProgress), &units);
    arrivals.all_staged();
    let log = Log::default();
    let err = import_as_staged(&[false, false, false, true], 1, rx, |i| {
        let log = &log;
        async move {
            if i == 1 {
                return Err(RestoreError::BadRequest("import 1 failed".into()).into());
            }
            log.import(i, 1).await
        }
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("import 1 failed"), "{err}");
    assert_eq!(log.started(), [0]);
}
