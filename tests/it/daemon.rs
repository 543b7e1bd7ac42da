//! `milvus-migrate serve` and its client `milvus-migrate jobs` (docs/daemon.md), real processes
//! only: a daemon on free loopback ports with its own state directory, driven by the client
//! binary. Migrations run against the two real Milvus of `scripts/stack.sh`; the shared rate
//! limit is checked with copies between two s3s-fs stores.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::copy::{MIB, backup_meta};
use crate::migrate::{assert_verified, files_under, seed_full};
use crate::milvus::{counts_of, profiles, seed, unique};
use crate::support::milvus::Stack;
use crate::{BIN, assert_same_tree, copy_args, path_str, profile, random_bytes, two_stores};

/// How long a daemon may take to print its addresses.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// States a job never leaves.
const FINISHED: [&str; 3] = ["succeeded", "failed", "cancelled"];

/// A running `milvus-migrate serve` with its state directory; its stderr goes to a file beside
/// the state directory (kept over restarts, printed when a test panics). Killed on drop.
struct Daemon {
    child: Child,
    /// `http://127.0.0.1:PORT`, what the client's `--daemon` takes.
    url: String,
    /// `127.0.0.1:PORT` of `/metrics`; `None` with `--metrics-listen off`.
    metrics: Option<String>,
    /// The token file the daemon was started with; the client sends it too.
    token_file: Option<PathBuf>,
    /// Everything after `serve`, reused by [`Daemon::restart`].
    args: Vec<String>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `serve --state-dir STATE_DIR` on `--listen 127.0.0.1:0 --metrics-listen
    /// 127.0.0.1:0` (unless `extra` gives either) with `extra`, and waits until it prints its
    /// addresses.
    fn start(state_dir: &Path, extra: &[&str]) -> Daemon {
        let mut args: Vec<String> = vec!["--state-dir".into(), path_str(state_dir).into()];
        for (flag, default) in [
            ("--listen", "127.0.0.1:0"),
            ("--metrics-listen", "127.0.0.1:0"),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag.to_string(), default.to_string()]);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let token_file = extra
            .iter()
            .position(|a| *a == "--token-file")
            .map(|i| PathBuf::from(extra[i + 1]));
        let log = state_dir.with_extension("stderr.log");
        let (child, url, metrics) = spawn_daemon(&args, &log);
        Daemon {
            child,
            url,
            metrics,
            token_file,
            args,
            log,
        }
    }

    /// SIGKILL, as a crash or the OOM killer would; waits for the process to be gone.
    fn kill(&mut self) {
        self.child.kill().expect("kill daemon");
        self.child.wait().expect("wait for daemon");
    }

    /// SIGTERM; returns how the daemon exited and how long it took (panics after 30 s).
    fn terminate(&mut self) -> (ExitStatus, Duration) {
        let t0 = Instant::now();
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -TERM failed");
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for daemon") {
                return (status, t0.elapsed());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "daemon still running 30 s after SIGTERM; stderr:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the daemon again with the same flags and state directory (on new ports) after
    /// [`Daemon::kill`] or [`Daemon::terminate`].
    fn restart(&mut self) {
        assert!(
            self.child.try_wait().expect("daemon status").is_some(),
            "restart of a daemon that still runs"
        );
        let (child, url, metrics) = spawn_daemon(&self.args, &self.log);
        self.child = child;
        self.url = url;
        self.metrics = metrics;
    }

    /// Everything the daemon wrote on stderr, over all its starts.
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `jobs --daemon URL [--token-file F] ARGS`.
    fn jobs(&self, args: &[&str]) -> Output {
        let mut all = vec!["--daemon", self.url.as_str()];
        if let Some(t) = &self.token_file {
            all.extend(["--token-file", path_str(t)]);
        }
        all.extend_from_slice(args);
        client(&all)
    }

    /// `jobs submit copy --from FROM --to TO -n NAME EXTRA.. --json`: the job as submitted.
    fn submit_copy(&self, from: &Path, to: &Path, name: &str, extra: &[&str]) -> Value {
        let mut args = vec!["submit", "copy"];
        args.extend(copy_args(from, to, name, extra));
        args.push("--json");
        let job = self.jobs_json(&args);
        assert_eq!(job["kind"], "copy", "{job}");
        job
    }

    /// Runs a client command expecting exit 0; returns the job (or list) it printed as JSON.
    fn jobs_json(&self, args: &[&str]) -> Value {
        let out = self.jobs(args);
        assert!(
            out.status.success(),
            "jobs {args:?} failed ({:?}):\nstdout: {}\nstderr: {}\ndaemon stderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        last_json(&out)
    }

    /// Runs a client command expecting exit 2; returns (stdout, stderr).
    fn jobs_exit_2(&self, args: &[&str]) -> (String, String) {
        let out = self.jobs(args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "jobs {args:?} should exit 2:\nstdout: {stdout}\nstderr: {stderr}"
        );
        (stdout, stderr)
    }

    /// `jobs get ID --json`.
    fn get(&self, id: &str) -> Value {
        self.jobs_json(&["get", id, "--json"])
    }

    /// Polls `jobs get ID` every `every` until `wanted(job)`; returns that job. Panics after
    /// `limit`, or once the job finished without being `wanted`.
    fn wait_for(
        &self,
        id: &str,
        what: &str,
        every: Duration,
        limit: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let t0 = Instant::now();
        loop {
            let job = self.get(id);
            if wanted(&job) {
                return job;
            }
            let state = job["state"].as_str().unwrap_or_default();
            assert!(
                !FINISHED.contains(&state),
                "job {id} finished before {what}: {job}"
            );
            assert!(t0.elapsed() < limit, "no {what} in {limit:?}: {job}");
            std::thread::sleep(every);
        }
    }

    /// `GET /metrics` (with the token, if any): the status code and the body.
    fn scrape(&self, with_token: bool) -> (u16, String) {
        let addr = self.metrics.as_deref().expect("metrics are off");
        let token = self
            .token_file
            .as_ref()
            .filter(|_| with_token)
            .map(|f| std::fs::read_to_string(f).unwrap().trim().to_string());
        http_get(addr, "/metrics", token.as_deref())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- daemon stderr ({}) ---\n{}",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// Spawns `serve ARGS` with stderr appended to `log`; returns the child, the client URL and the
/// metrics address read from its `listening on` / `metrics on|off` lines.
fn spawn_daemon(args: &[String], log: &Path) -> (Child, String, Option<String>) {
    let err = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("MILVUS_MIGRATE_TOKEN")
        // The daemon's own debug output too: no secret may appear at any level.
        .env("RUST_LOG", "info,milvus_migrate=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err))
        .spawn()
        .expect("start milvus-migrate serve");
    // A reader thread, so a daemon that prints nothing cannot hang the test; it keeps
    // draining stdout after the two lines.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + START_TIMEOUT;
    let (mut listen, mut metrics) = (None, None);
    while metrics.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "serve {args:?} printed no addresses ({e:?}, exit {status:?}); stderr:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        };
        if let Some(addr) = line.strip_prefix("listening on ") {
            listen = Some(loopback(addr));
        } else if let Some(addr) = line.strip_prefix("metrics on ") {
            metrics = Some(Some(loopback(addr)));
        } else if line.trim() == "metrics off" {
            metrics = Some(None);
        }
    }
    let listen = listen.unwrap_or_else(|| panic!("serve {args:?}: `metrics` before `listening`"));
    (child, format!("http://{listen}"), metrics.unwrap())
}

/// `HOST:PORT` of a printed listen address, the wildcard host replaced by 127.0.0.1.
fn loopback(addr: &str) -> String {
    let addr = addr.trim();
    let addr = addr
        .strip_prefix("http://")
        .or_else(|| addr.strip_prefix("https://"))
        .unwrap_or(addr);
    let port = addr.rsplit_once(':').map(|(_, p)| p).unwrap_or_default();
    if addr.starts_with("0.0.0.0:") || addr.starts_with("[::]:") {
        format!("127.0.0.1:{port}")
    } else {
        addr.to_string()
    }
}

/// Runs `milvus-migrate jobs ARGS` with no daemon address or token from the environment.
fn client(args: &[&str]) -> Output {
    client_with_env(args, &[])
}

/// [`client`] with environment variables set.
fn client_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("jobs")
        .args(args)
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("MILVUS_MIGRATE_TOKEN")
        .env_remove("MILVUS_MIGRATE_DAEMON")
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run milvus-migrate jobs")
}

/// The last JSON value a client command printed on stdout (the job, or the list of jobs).
fn last_json(out: &Output) -> Value {
    serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .and_then(|v| v.into_iter().last())
        .unwrap_or_else(|| {
            panic!(
                "no JSON on stdout (exit {:?}):\nstdout: {}\nstderr: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// A plain HTTP/1.0 GET; returns the status code and the body.
fn http_get(addr: &str, path: &str, bearer: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp)
        .unwrap_or_else(|e| panic!("read GET {path} from {addr}: {e}"));
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {resp}"));
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The value of `series` (a metric name with its labels, as printed) in a Prometheus page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix(series))
        .find(|rest| rest.starts_with([' ', '\t']))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// The backup a migration job made: `name` of its report, else of its spec.
fn backup_name(job: &Value) -> String {
    [&job["report"]["name"], &job["spec"]["name"]]
        .into_iter()
        .filter_map(Value::as_str)
        .find(|n| !n.is_empty())
        .unwrap_or_else(|| panic!("the job names no backup: {job}"))
        .to_string()
}

/// Whether `default.COLL` exists on Milvus B, asked through `create`, which refuses an absent
/// collection before writing anything.
fn exists_on_b(b: &str, coll: &str) -> bool {
    let out = crate::milvus::run(&[
        "create",
        "--config",
        b,
        "-n",
        &unique("dm_probe"),
        "-c",
        coll,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return true;
    }
    assert!(
        err.contains(&format!("collection `{coll}` not found")),
        "probe of `{coll}` on B failed otherwise: {err}"
    );
    false
}

/// Asserts that no secret of the stack's stores is in `text` (`what` names it in the panic).
fn assert_no_secrets(text: &str, what: &str) {
    let stack = Stack::get();
    for secret in [&stack.store_a.secret_key, &stack.store_b.secret_key] {
        assert!(
            !text.contains(secret.as_str()),
            "a store secret is in {what}:\n{text}"
        );
    }
}

/// Whether a migration job is in the middle of its copy phase: some objects copied, not all.
/// (Until the copy has planned, the progress may still be the create phase's, all done.)
fn mid_copy(job: &Value) -> bool {
    let p = &job["progress"];
    let done = p["objects_done"].as_u64().unwrap_or(0);
    job["phase"] == "copy" && done > 0 && Some(done) < p["objects_total"].as_u64()
}

/// A migration submitted to a fresh daemon, slowed down to 1 MiB/s and caught in its copy
/// phase (with at least one object copied). `dir` holds the profiles and the state directory.
struct InCopy {
    // Dropped before `dir`, so a panic can still print its stderr.
    daemon: Daemon,
    dir: tempfile::TempDir,
    id: String,
    coll: String,
    expected: u64,
}

/// Seeds ~8 MiB of rows on A, starts a daemon and submits the migration (profiles sent with
/// `--inline` when `inline`), then waits until the job copies.
fn migration_in_copy(tag: &str, inline: bool, daemon_args: &[&str]) -> InCopy {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = profiles(dir.path());
    let coll = unique(tag);
    let seeded = seed(&a, &coll, &["--rows", "30000", "--dim", "64"]);
    let expected = counts_of(&seeded).0;
    let daemon = Daemon::start(&dir.path().join("state"), daemon_args);
    let mut args = vec![
        "submit",
        "migrate",
        "--from",
        path_str(&a),
        "--to",
        path_str(&b),
        "-c",
        &coll,
        "-s",
        "_bak",
        "--bwlimit",
        "1MiB/s",
    ];
    if inline {
        args.push("--inline");
    }
    // Without --json, submit prints just the job id.
    let out = daemon.jobs(&args);
    assert!(
        out.status.success(),
        "submit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !id.is_empty() && !id.contains(char::is_whitespace),
        "submit printed {id:?}, not a job id"
    );
    daemon.wait_for(
        &id,
        "copy progress",
        Duration::from_millis(200),
        Duration::from_secs(90),
        mid_copy,
    );
    InCopy {
        daemon,
        dir,
        id,
        coll,
        expected,
    }
}

/// Follows a job interrupted in its copy phase to its end on the restarted daemon and checks
/// that it completed verified, as a second attempt that continued the copy.
fn assert_resumed(job: &InCopy) {
    let done = job.daemon.jobs_json(&["watch", &job.id, "--json"]);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(done["attempts"].as_u64() >= Some(2), "{done}");
    let report = &done["report"];
    assert_verified(report, job.expected);
    assert_eq!(
        report["collections"][0]["target"],
        format!("default.{}_bak", job.coll)
    );
    assert!(
        report["copy"]["objects_skipped"].as_u64() > Some(0)
            || report["copy"]["parts_reused"].as_u64() > Some(0),
        "the second attempt continues the copy instead of starting over: {report}"
    );
}

/// The one-command migration through the daemon: `submit --watch` follows it to a verified
/// end, `get`/`list` show it without secrets, and `/metrics` counts it.
#[test]
fn daemon_runs_a_migration_and_watch_follows_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (path_str(&a), path_str(&b));
    let coll = unique("dm_watch");
    let expected = seed_full(Path::new(a), &coll, "3000");
    let daemon = Daemon::start(&tmp.path().join("state"), &[]);

    // A job takes `migrate`'s options: here every row compared, and the staging sequential.
    let job = daemon.jobs_json(&[
        "submit",
        "migrate",
        "--from",
        a,
        "--to",
        b,
        "-c",
        &coll,
        "-s",
        "_bak",
        "--verify",
        "full",
        "--sequential",
        "--watch",
        "--json",
    ]);
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "migrate", "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
    assert_verified(&job["report"], expected);
    assert_eq!(
        job["report"]["collections"][0]["verified_by"], "content (full)",
        "{job}"
    );
    assert_eq!(job["spec"]["verify"]["mode"], "full", "{job}");
    assert_eq!(job["spec"]["sequential"], true, "{job}");
    assert!(
        job["report"]["imports_during_copy"].is_null(),
        "a sequential job runs the copy and the restore one after the other: {job}"
    );
    assert_eq!(
        job["report"]["collections"][0]["target"],
        format!("default.{coll}_bak")
    );
    let id = job["id"].as_str().expect("job id").to_string();
    // The backup copies in both stores are gone, as after the one-shot command.
    let stack = Stack::get();
    let name = backup_name(&job);
    for store in [&stack.store_a, &stack.store_b] {
        assert_eq!(
            files_under(&store.object_path(&format!("backup/{name}"))),
            0
        );
    }

    let got = daemon.get(&id);
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["state"], "succeeded", "{got}");
    assert_eq!(got["report"], job["report"]);
    assert!(got["finished_at"].as_i64() >= got["started_at"].as_i64());
    assert!(got["started_at"].as_i64() >= got["created_at"].as_i64());
    assert!(got["created_at"].as_i64() > Some(0), "{got}");
    let listed = daemon.jobs_json(&["list", "--json"]);
    let ids: Vec<&str> = listed
        .as_array()
        .expect("list prints an array")
        .iter()
        .filter_map(|j| j["id"].as_str())
        .collect();
    assert_eq!(ids, [id.as_str()], "{listed}");
    let active = daemon.jobs_json(&["list", "--state", "running,queued", "--json"]);
    assert_eq!(
        active,
        serde_json::json!([]),
        "a finished job is not active"
    );
    // Watching or cancelling a finished job returns it as it is.
    let watched = daemon.jobs_json(&["watch", &id, "--json"]);
    assert_eq!(watched["state"], "succeeded", "{watched}");
    let cancelled = daemon.jobs_json(&["cancel", &id, "--json"]);
    assert_eq!(cancelled["state"], "succeeded", "{cancelled}");

    let (status, page) = daemon.scrape(false);
    assert_eq!(status, 200, "{page}");
    let bytes = sample(&page, "milvus_migrate_bytes_copied_total");
    assert!(bytes > Some(0.0), "bytes copied {bytes:?}:\n{page}");
    assert!(
        sample(&page, "milvus_migrate_objects_copied_total") > Some(0.0),
        "{page}"
    );
    assert!(
        sample(&page, "milvus_migrate_rows_imported_total") > Some(0.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, r#"milvus_migrate_jobs{state="succeeded"}"#),
        Some(1.0),
        "{page}"
    );
    for state in ["queued", "running", "cancelling", "failed", "cancelled"] {
        let series = format!(r#"milvus_migrate_jobs{{state="{state}"}}"#);
        assert_eq!(sample(&page, &series), Some(0.0), "{series}:\n{page}");
    }
    assert_eq!(
        sample(&page, "milvus_migrate_jobs_submitted_total"),
        Some(1.0),
        "{page}"
    );

    for (what, text) in [
        ("submit --watch", job.to_string()),
        ("get", got.to_string()),
        ("list", listed.to_string()),
        ("the daemon's stderr", daemon.log_text()),
    ] {
        assert_no_secrets(&text, what);
    }
}

/// A daemon killed with SIGKILL while a job copies resumes the job on its next start (same
/// state directory) and completes it verified. The job's profiles were sent inline: they are
/// kept in the state directory readable by the owner only, and never shown.
#[test]
fn daemon_resumes_a_job_after_sigkill_in_copy() {
    let mut job = migration_in_copy("dm_kill", true, &[]);
    let shown = job.daemon.get(&job.id);
    assert_eq!(shown["state"], "running", "{shown}");
    assert_no_secrets(&shown.to_string(), "get of an inline job");
    job.daemon.kill();

    // The inline profiles are on disk (the job needs them to resume), mode 0600.
    let state = job.dir.path().join("state");
    let secret = &Stack::get().store_a.secret_key;
    let holding = files_holding(&state, secret);
    assert!(
        !holding.is_empty(),
        "no file in {} holds the inline profile",
        state.display()
    );
    for (path, mode) in &holding {
        assert_eq!(
            mode & 0o077,
            0,
            "{} holds a secret with mode {mode:o}",
            path.display()
        );
    }

    job.daemon.restart();
    assert_resumed(&job);
    assert_no_secrets(&job.daemon.get(&job.id).to_string(), "get after resume");
    assert_no_secrets(&job.daemon.log_text(), "the daemon's stderr");
}

/// Files under `dir` whose bytes contain `needle`, with their permission bits.
fn files_holding(dir: &Path, needle: &str) -> Vec<(PathBuf, u32)> {
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in rd.filter_map(|e| e.ok()) {
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if meta.is_file() {
            let bytes = std::fs::read(&path).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push((path, meta.permissions().mode()));
            }
        }
    }
    found
}

/// SIGTERM stops the daemon promptly with exit 0, and the job it was running resumes on the
/// next start (on the same address, as a supervisor restarts it) and completes verified; a
/// `jobs watch` started before the SIGTERM follows the job across the restart to its end.
#[test]
fn daemon_sigterm_persists_and_resumes() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut job = migration_in_copy("dm_term", false, &["--listen", &listen]);
    let watcher = Command::new(BIN)
        .args([
            "jobs",
            "--daemon",
            &job.daemon.url,
            "watch",
            &job.id,
            "--json",
            "-q",
        ])
        .env_remove("MILVUS_MIGRATE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start jobs watch");
    std::thread::sleep(Duration::from_millis(500));
    let (status, took) = job.daemon.terminate();
    assert_eq!(status.code(), Some(0), "exit after SIGTERM");
    assert!(took < Duration::from_secs(15), "SIGTERM took {took:?}");
    job.daemon.restart();
    let watched = watcher.wait_with_output().expect("jobs watch");
    assert_eq!(
        watched.status.code(),
        Some(0),
        "watch across the restart: {}",
        String::from_utf8_lossy(&watched.stderr)
    );
    assert_eq!(last_json(&watched)["state"], "succeeded");
    assert_resumed(&job);
}

/// Cancel stops a migration at a safe point in the copy phase and in the restore phase: the job
/// ends `cancelled` (watch exits 2), its backup copies are removed from both stores, and no
/// collection is left on B.
#[test]
fn daemon_cancel_leaves_nothing_partial_on_b() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (path_str(&a), path_str(&b));
    let stack = Stack::get();
    let in_copy = unique("dm_cancel_copy");
    seed(Path::new(a), &in_copy, &["--rows", "20000", "--dim", "64"]);
    let in_restore = unique("dm_cancel_restore");
    seed(Path::new(a), &in_restore, &["--rows", "3000", "--dim", "8"]);
    let daemon = Daemon::start(&tmp.path().join("state"), &[]);

    // The copy phase slowed down to last seconds; the restore phase takes seconds anyway
    // (B imports, indexes and loads), so it is caught by polling fast.
    for (coll, phase, slow, every) in [
        (&in_copy, "copy", &["--bwlimit", "1MiB/s"][..], 200),
        (&in_restore, "restore", &[][..], 50),
    ] {
        let mut args = vec![
            "submit", "migrate", "--from", a, "--to", b, "-c", coll, "-s", "_bak", "--json",
        ];
        args.extend_from_slice(slow);
        let job = daemon.jobs_json(&args);
        let id = job["id"].as_str().expect("job id").to_string();
        daemon.wait_for(
            &id,
            &format!("the {phase} phase"),
            Duration::from_millis(every),
            Duration::from_secs(90),
            |j| j["phase"] == phase && (phase != "copy" || mid_copy(j)),
        );
        let asked = daemon.jobs_json(&["cancel", &id, "--json"]);
        assert!(
            ["cancelling", "cancelled"].contains(&asked["state"].as_str().unwrap_or_default()),
            "{asked}"
        );
        let (stdout, stderr) = daemon.jobs_exit_2(&["watch", &id, "--json"]);
        let end: Value = serde_json::Deserializer::from_str(&stdout)
            .into_iter::<Value>()
            .filter_map(Result::ok)
            .last()
            .unwrap_or_else(|| panic!("watch printed no job: {stdout}\n{stderr}"));
        assert_eq!(end["state"], "cancelled", "cancelled in {phase}: {end}");

        let name = backup_name(&end);
        for (side, store) in [("A", &stack.store_a), ("B", &stack.store_b)] {
            let left = files_under(&store.object_path(&format!("backup/{name}")));
            assert_eq!(
                left, 0,
                "cancelled in {phase}: backup `{name}` left in {side}"
            );
        }
        assert!(
            !exists_on_b(b, &format!("{coll}_bak")),
            "cancelled in {phase}: `{coll}_bak` left on B"
        );
    }
}

/// Two copies under the daemon's `--bwlimit` share it (together they move no faster than the
/// limit), `--max-jobs 2` runs two at once and queues a third, and every copy is byte-exact.
#[test]
fn daemon_runs_two_jobs_under_a_shared_rate_limit() {
    const RATE: f64 = 4.0 * MIB as f64;
    let (a, b) = two_stores("dshared");
    let dir = tempfile::tempdir().unwrap();
    let pa = profile(dir.path(), "a.yaml", &a, a.port, "backup", "");
    let pb = profile(dir.path(), "b.yaml", &b, b.port, "backup", "");
    let names = ["one", "two", "three"];
    for (n, name) in names.iter().enumerate() {
        for i in 0..3u64 {
            crate::seed(
                &a,
                &format!("backup/{name}/binlogs/{i}"),
                &random_bytes(10 * n as u64 + i, 4 * MIB),
            );
        }
        crate::seed(
            &a,
            &format!("backup/{name}/meta/backup_meta.json"),
            &backup_meta(name),
        );
    }
    let daemon = Daemon::start(
        &dir.path().join("state"),
        &["--bwlimit", "4MiB/s", "--max-jobs", "2"],
    );

    let t0 = Instant::now();
    let ids: Vec<String> = names
        .iter()
        .map(|name| {
            let job = daemon.submit_copy(&pa, &pb, name, &[]);
            job["id"].as_str().expect("job id").to_string()
        })
        .collect();

    // Until all finish: never more than two running, and at some point two running while the
    // third waits queued.
    let mut two_and_one_queued = false;
    loop {
        let list = daemon.jobs_json(&["list", "--json"]);
        let states: Vec<String> = ids
            .iter()
            .map(|id| {
                list.as_array()
                    .expect("list prints an array")
                    .iter()
                    .find(|j| j["id"] == id.as_str())
                    .and_then(|j| j["state"].as_str())
                    .unwrap_or_else(|| panic!("job {id} not listed: {list}"))
                    .to_string()
            })
            .collect();
        let count = |s: &str| states.iter().filter(|x| *x == s).count();
        assert!(count("running") <= 2, "--max-jobs 2 exceeded: {states:?}");
        assert_eq!(count("failed") + count("cancelled"), 0, "{list}");
        two_and_one_queued |= count("running") == 2 && count("queued") == 1;
        if count("succeeded") == 3 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "copies not done in 90 s: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let elapsed = t0.elapsed().as_secs_f64();
    assert!(
        two_and_one_queued,
        "never saw two jobs running and the third queued"
    );

    let mut bytes = 0;
    for (id, name) in ids.iter().zip(names) {
        let job = daemon.get(id);
        let copied = job["report"]["bytes_copied"].as_u64();
        assert_eq!(job["report"]["objects_failed"], 0, "{job}");
        assert!(copied >= Some(12 * MIB as u64), "{job}");
        bytes += copied.unwrap();
        assert_eq!(
            assert_same_tree(&a, &format!("backup/{name}"), &b, &format!("backup/{name}")),
            4
        );
    }
    // A lower bound only: the shared limit, 15% slack, and one burst of at most 4 MiB.
    let floor = (bytes as f64 - 4.0 * MIB as f64) / (RATE * 1.15);
    assert!(
        elapsed >= floor,
        "{bytes} bytes in {elapsed:.2}s: faster than the shared 4 MiB/s (floor {floor:.2}s)"
    );
}

/// A daemon with a token refuses the client without it or with another one, and `/metrics`
/// too; a daemon on a non-loopback address refuses to start without a token; requests the
/// daemon cannot run are refused with the gRPC code and a message naming the problem, and
/// create no job.
#[test]
fn daemon_auth_and_bad_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let token = dir.join("token");
    std::fs::write(&token, "tok-right-7f3a9c\n").unwrap();
    let wrong = dir.join("wrong");
    std::fs::write(&wrong, "tok-wrong-0b1d2e\n").unwrap();

    // (a) Token checks on loopback.
    let daemon = Daemon::start(&dir.join("state-auth"), &["--token-file", path_str(&token)]);
    let url = daemon.url.as_str();
    for (what, args) in [
        ("no token", vec!["--daemon", url, "list"]),
        (
            "a wrong token",
            vec!["--daemon", url, "--token-file", path_str(&wrong), "list"],
        ),
    ] {
        let out = client(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains("UNAUTHENTICATED"), "{what}: {err}");
    }
    assert_eq!(daemon.jobs_json(&["list", "--json"]), serde_json::json!([]));
    let out = client_with_env(
        &["--daemon", url, "list", "--json"],
        &[("MILVUS_MIGRATE_TOKEN", "tok-right-7f3a9c")],
    );
    assert!(
        out.status.success(),
        "token from the environment: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, _) = daemon.scrape(false);
    assert_ne!(status, 200, "/metrics without the token");
    let (status, page) = daemon.scrape(true);
    assert_eq!(status, 200, "/metrics with the token: {page}");
    drop(daemon);

    // (b) Not on loopback: a token is required to start.
    let state = dir.join("state-open");
    let t0 = Instant::now();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--metrics-listen", "off"])
        .args(["--state-dir", path_str(&state)])
        .env_remove("MILVUS_MIGRATE_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if t0.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve on 0.0.0.0 without a token still runs after 15 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.to_lowercase().contains("token"), "{err}");
    let open = Daemon::start(
        &state,
        &[
            "--listen",
            "0.0.0.0:0",
            "--metrics-listen",
            "off",
            "--token-file",
            path_str(&token),
        ],
    );
    assert_eq!(open.jobs_json(&["list", "--json"]), serde_json::json!([]));
    drop(open);

    // (c) Requests the daemon refuses.
    let (a, b) = profiles(dir);
    let (a, b) = (path_str(&a), path_str(&b));
    let daemon = Daemon::start(&dir.join("state-bad"), &[]);
    let missing = dir.join("no-such-dir/a.yaml");
    let missing = path_str(&missing);
    let (_, err) =
        daemon.jobs_exit_2(&["submit", "migrate", "--from", missing, "--to", b, "-c", "x"]);
    assert!(
        err.contains("INVALID_ARGUMENT") && err.contains(missing),
        "{err}"
    );
    let bad_yaml = dir.join("bad.yaml");
    std::fs::write(&bad_yaml, "minio: [unclosed\n  address: : :\n").unwrap();
    let (_, err) = daemon.jobs_exit_2(&[
        "submit",
        "migrate",
        "--from",
        path_str(&bad_yaml),
        "--to",
        b,
        "-c",
        "x",
        "--inline",
    ]);
    assert!(err.contains("INVALID_ARGUMENT"), "{err}");
    // A passwords file for --rbac is read at submission: a missing one is named.
    let no_passwords = dir.join("no-such-passwords.yaml");
    let (_, err) = daemon.jobs_exit_2(&[
        "submit",
        "migrate",
        "--from",
        a,
        "--to",
        b,
        "-c",
        "x",
        "--rbac",
        "--rbac-passwords",
        path_str(&no_passwords),
    ]);
    assert!(
        err.contains("INVALID_ARGUMENT") && err.contains("no-such-passwords.yaml"),
        "{err}"
    );
    let absent = unique("dm_absent");
    let (_, err) =
        daemon.jobs_exit_2(&["submit", "migrate", "--from", a, "--to", b, "-c", &absent]);
    assert!(
        err.contains("INVALID_ARGUMENT") && err.contains(&absent),
        "{err}"
    );
    for cmd in ["get", "cancel", "watch"] {
        let (_, err) = daemon.jobs_exit_2(&[cmd, "nosuchjob"]);
        assert!(
            err.contains("NOT_FOUND") && err.contains("nosuchjob"),
            "{cmd}: {err}"
        );
    }
    // Still serving, and nothing refused became a job.
    assert_eq!(daemon.jobs_json(&["list", "--json"]), serde_json::json!([]));
}

/// With `--tls-cert`/`--tls-key` the daemon speaks gRPC over TLS only: a client that trusts
/// the certificate (`--ca-cert`) is served, one that does not, or that speaks plain HTTP/2, is
/// refused (exit 2); the token still applies over TLS.
#[test]
fn daemon_serves_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_pem, key_pem) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "tls-token-42\n").unwrap();
    let daemon = Daemon::start(
        &dir.path().join("state"),
        &[
            "--tls-cert",
            path_str(&cert_pem),
            "--tls-key",
            path_str(&key_pem),
            "--token-file",
            path_str(&token),
        ],
    );
    let port = daemon.url.rsplit_once(':').unwrap().1.to_string();
    let https = format!("https://localhost:{port}");
    let with = |url: &str, extra: &[&str]| {
        let mut args = vec!["--daemon", url, "--token-file", path_str(&token)];
        args.extend_from_slice(extra);
        args.extend(["list", "--json"]);
        client(&args)
    };

    let ok = with(&https, &["--ca-cert", path_str(&cert_pem)]);
    assert!(
        ok.status.success(),
        "TLS client with the CA refused: {}\ndaemon stderr:\n{}",
        String::from_utf8_lossy(&ok.stderr),
        daemon.log_text()
    );
    assert_eq!(last_json(&ok), Value::Array(vec![]));

    let untrusted = with(&https, &[]);
    assert_eq!(untrusted.status.code(), Some(2), "a client without the CA");
    let plain = with(&daemon.url, &[]);
    assert_eq!(plain.status.code(), Some(2), "a plain-text client");

    let no_token = client(&["--daemon", &https, "--ca-cert", path_str(&cert_pem), "list"]);
    assert_eq!(no_token.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&no_token.stderr).contains("UNAUTHENTICATED"),
        "{}",
        String::from_utf8_lossy(&no_token.stderr)
    );
}

/// The gRPC health service answers SERVING for the daemon's service, without a token (load
/// balancers and probes carry none), while the job API behind the same port wants one.
#[tokio::test]
async fn daemon_reports_health_without_a_token() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "health-token\n").unwrap();
    let daemon = Daemon::start(
        &dir.path().join("state"),
        &["--token-file", path_str(&token)],
    );
    let channel = tonic::transport::Channel::from_shared(daemon.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "milvus_migrate.daemon.v1.MigrationDaemon"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_string(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of `{service}`: {e}"))
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service `{service}`");
    }
    let refused = client(&["--daemon", &daemon.url, "list"]);
    assert_eq!(refused.status.code(), Some(2));
}

/// Files s3s-fs keeps for multipart uploads not yet completed or aborted (`.upload*` at its
/// root: the upload's record and its parts).
fn open_uploads(server: &crate::support::s3::S3Server) -> Vec<String> {
    std::fs::read_dir(&server.data_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".upload"))
        .collect()
}

/// Cancelling a copy in the middle of a multipart upload aborts the upload on the server (no
/// parts stay behind) and removes the partial backup from the destination.
#[test]
fn daemon_cancel_aborts_an_open_multipart_upload() {
    let (a, b) = two_stores("dcancelmp");
    let dir = tempfile::tempdir().unwrap();
    let pa = profile(dir.path(), "a.yaml", &a, a.port, "backup", "");
    let pb = profile(dir.path(), "b.yaml", &b, b.port, "backup", "");
    crate::seed(&a, "backup/mp/binlogs/big", &random_bytes(7, 30 * MIB));
    crate::seed(&a, "backup/mp/meta/backup_meta.json", &backup_meta("mp"));
    let daemon = Daemon::start(&dir.path().join("state"), &[]);
    let job = daemon.submit_copy(
        &pa,
        &pb,
        "mp",
        &[
            "--bwlimit",
            "2MiB/s",
            "--multipart-threshold",
            "5MiB",
            "--part-size",
            "5MiB",
        ],
    );
    let id = job["id"].as_str().expect("job id").to_string();
    // One part written: the upload exists on B.
    daemon.wait_for(
        &id,
        "a part uploaded",
        Duration::from_millis(200),
        Duration::from_secs(60),
        |j| j["progress"]["bytes_done"].as_u64() >= Some(5 * MIB as u64),
    );
    assert!(!open_uploads(&b).is_empty(), "no upload open on B mid-copy");
    daemon.jobs_json(&["cancel", &id, "--json"]);
    let (stdout, _) = daemon.jobs_exit_2(&["watch", &id, "--json"]);
    let end: Value = serde_json::from_str(stdout.trim()).expect("job JSON");
    assert_eq!(end["state"], "cancelled", "{end}");
    assert_eq!(
        open_uploads(&b),
        Vec::<String>::new(),
        "upload left open on B"
    );
    assert!(
        b.list_keys(&b.bucket).is_empty(),
        "partial backup left on B: {:?}",
        b.list_keys(&b.bucket)
    );
}
