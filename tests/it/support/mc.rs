//! The MinIO client `mc` (built by `scripts/install-deps.sh`) as the tests' S3 client for
//! MinIO stores, where a server's data directory is MinIO's own format and cannot be read or
//! written directly.
//!
//! Owns: finding the binary, a private config directory per [`Mc`], and one alias that points
//! at one store (`MC_HOST_s=http://KEY:SECRET@HOST:PORT`, so nothing is written to `~/.mc`).
//! Does not own: the server.
//!
//! Synchronous (std only), like the rest of the harness. Each call is one `mc` process
//! (~20-50 ms), so bulk checks use [`Mc::mirror_to`] (one process for a whole prefix) rather than
//! one [`Mc::cat`] per object.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `mc` talking to one store through the alias `s`.
pub struct Mc {
    bin: PathBuf,
    host: String,
    config_dir: tempfile::TempDir,
}

impl Mc {
    /// A client of the store at `endpoint` (`http://127.0.0.1:PORT`) with these keys.
    pub fn new(endpoint: &str, access_key: &str, secret_key: &str) -> Mc {
        let (scheme, rest) = endpoint
            .split_once("://")
            .unwrap_or_else(|| panic!("endpoint without scheme: {endpoint}"));
        Mc {
            bin: mc_bin(),
            host: format!("{scheme}://{access_key}:{secret_key}@{rest}"),
            config_dir: tempfile::tempdir().expect("mc config dir"),
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--config-dir")
            .arg(self.config_dir.path())
            .arg("--no-color")
            .env("MC_HOST_s", &self.host)
            .env_remove("AWS_CA_BUNDLE")
            .stdin(Stdio::null());
        c
    }

    /// Runs `mc ARGS` and returns its output, whatever the exit status.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()))
    }

    /// Runs `mc ARGS`, panicking with its output unless it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "mc {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `mc mb --ignore-existing s/BUCKET`.
    pub fn make_bucket(&self, bucket: &str) {
        self.ok(&["mb", "--quiet", "--ignore-existing", &format!("s/{bucket}")]);
    }

    /// Stores `bytes` as `bucket/key` (`mc pipe`, a multipart upload above its part size).
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let target = format!("s/{bucket}/{key}");
        let mut child = self
            .command()
            .args(["pipe", "--quiet", &target])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        {
            let mut stdin = child.stdin.take().expect("mc stdin");
            stdin
                .write_all(bytes)
                .unwrap_or_else(|e| panic!("mc pipe {target}: {e}"));
        }
        let out = child.wait_with_output().expect("mc pipe");
        assert!(
            out.status.success(),
            "mc pipe {target} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The bytes of `bucket/key`, `None` when it does not exist (or cannot be read).
    pub fn cat(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let out = self.output(&["cat", &format!("s/{bucket}/{key}")]);
        out.status.success().then_some(out.stdout)
    }

    /// Every key in `bucket` under `prefix` (`""` for all), sorted.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let out = self.output(&[
            "ls",
            "--recursive",
            "--json",
            &format!("s/{bucket}/{prefix}"),
        ]);
        let mut keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["status"] == "success" && v["type"] == "file")
            .filter_map(|v| v["key"].as_str().map(|k| format!("{prefix}{k}")))
            .collect();
        keys.sort();
        keys
    }

    /// Keys of multipart uploads in `bucket` that were started and neither completed nor
    /// aborted (`mc ls --incomplete`), sorted.
    pub fn incomplete_uploads(&self, bucket: &str) -> Vec<String> {
        let out = self.ok(&[
            "ls",
            "--incomplete",
            "--recursive",
            "--json",
            &format!("s/{bucket}"),
        ]);
        let mut keys: Vec<String> = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["key"].as_str().map(str::to_owned))
            .collect();
        keys.sort();
        keys
    }

    /// Copies every object under `bucket/prefix` into the local directory `dir` (one `mc`
    /// process), keys below `prefix` as relative paths.
    pub fn mirror_to(&self, bucket: &str, prefix: &str, dir: &Path) {
        std::fs::create_dir_all(dir).expect("mirror dir");
        let src = format!("s/{bucket}/{}", prefix.trim_end_matches('/'));
        self.ok(&[
            "mirror",
            "--quiet",
            "--overwrite",
            &src,
            dir.to_str().unwrap(),
        ]);
    }
}

/// `$MC_BIN`, else the cache path `scripts/install-deps.sh` installs to (see
/// `scripts/versions.sh`).
pub fn mc_bin() -> PathBuf {
    go_tool("MC_BIN", "mc")
}

/// The binary of a Go tool `scripts/install-deps.sh` builds: `$ENV_VAR` if set, else
/// `$MM_TOOLS_DIR/go/<name>-<version>/bin/<name>` with the version pinned in
/// `scripts/versions.sh`.
pub fn go_tool(env_var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "{env_var}={} does not exist; run scripts/install-deps.sh",
            p.display()
        );
        return p;
    }
    let version = pinned_version(name);
    let p = super::tools_dir().join(format!("go/{name}-{version}/bin/{name}"));
    assert!(
        p.is_file(),
        "{name} not found at {} and {env_var} is not set; run scripts/install-deps.sh \
         (or `source scripts/env.sh`)",
        p.display()
    );
    p
}

/// The version `scripts/versions.sh` pins for a Go tool (`minio`, `mc`, `milvus-backup`).
pub fn pinned_version(name: &str) -> String {
    let var = match name {
        "minio" => "MINIO_VERSION",
        "mc" => "MC_VERSION",
        "milvus-backup" => "MILVUS_BACKUP_FOR_23",
        other => panic!("no pinned version for {other}"),
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/versions.sh");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{var}=")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("{} does not set {var}", path.display()))
}
