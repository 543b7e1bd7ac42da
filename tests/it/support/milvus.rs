//! The real Milvus pairs for integration tests: two Milvus 2.3.5 standalone instances, each on
//! its own store, as `scripts/stack.sh` runs them (Milvus A on store A / `bucket-a`,
//! Milvus B on store B / `bucket-b`, both with `rootPath: files`). [`Stack::get`] is the pair on
//! s3s-fs stores, [`Stack::get_minio`] the pair on MinIO stores (tests in `minio_stack::`).
//!
//! Owns: finding or starting that stack and describing it ([`Stack`]), and writing v1
//! profiles (milvus-backup's `backup.yaml`) that point at one side ([`Stack::profile`]).
//! Does not own: any Milvus or S3 client; tests build their own from the endpoints here.
//!
//! [`Stack::get`] reads `stack.env`, the `KEY=value` file `scripts/stack.sh start DIR`
//! writes, from the directory in the env var `MM_TEST_STACK` (what `scripts/test.sh` sets).
//! Without that variable it runs, once per test process,
//!
//! ```text
//! MM_MILVUS_A_OFFSET=1000 MM_MILVUS_B_OFFSET=1100 MM_A_PORT=9300 MM_B_PORT=9400 \
//!     flock -o target/mm-test-stack.lock bash scripts/stack.sh start target/mm-test-stack
//! ```
//!
//! (ports beside the demo stack's, so both can run at once; `flock` so two test processes do
//! not start it twice: the second finds it running and healthy, and `stack.sh start` is then a
//! no-op) and leaves it running for later test runs. Stop it with
//! `bash scripts/stack.sh stop target/mm-test-stack`. The stack is shared by every test of the
//! process (and of later processes): tests must use their own collection names and backup
//! paths, never wipe a bucket, and must not stop or restart an instance.
//!
//! Needs Milvus and s3s-fs installed (`scripts/install-deps.sh`). A fresh stack is healthy in
//! 5-10 s; each idle Milvus takes ~200 MB RSS.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Env var naming a directory where `scripts/stack.sh start` already runs a stack.
pub const STACK_ENV_VAR: &str = "MM_TEST_STACK";

/// Where the tests start their own stack when [`STACK_ENV_VAR`] is unset, relative to the
/// package root.
pub const DEFAULT_STACK_DIR: &str = "target/mm-test-stack";

/// Port settings of the tests' own stack: (env var of `scripts/stack.sh`, value).
pub const TEST_STACK_PORTS: [(&str, &str); 4] = [
    ("MM_MILVUS_A_OFFSET", "1000"),
    ("MM_MILVUS_B_OFFSET", "1100"),
    ("MM_A_PORT", "9300"),
    ("MM_B_PORT", "9400"),
];

/// Side A (the source, Milvus A on store A) or B (the target).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    fn key(self) -> &'static str {
        match self {
            Side::A => "A",
            Side::B => "B",
        }
    }
}

/// One Milvus instance of the stack.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Host of the proxy, `127.0.0.1`.
    pub address: String,
    /// gRPC (and REST) port of the proxy, 19530 + offset.
    pub port: u16,
    /// Port of `/healthz` and `/metrics`, 9091 + offset.
    pub metrics_port: u16,
    /// The shift of all its ports (see `scripts/milvus.sh ports OFFSET`).
    pub offset: u32,
    /// Its directory: configs/milvus.yaml, data/, milvus.log, milvus.pid.
    pub dir: PathBuf,
}

impl Endpoint {
    /// `address:port`, what gRPC clients dial.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.address, self.port)
    }

    /// `http://address:port`.
    pub fn uri(&self) -> String {
        format!("http://{}:{}", self.address, self.port)
    }

    /// Its log (Go and etcd output; C++ glog files are under `dir/logs`).
    pub fn log(&self) -> PathBuf {
        self.dir.join("milvus.log")
    }

    /// The last `max_bytes` of its log, for panic messages.
    pub fn log_tail(&self, max_bytes: usize) -> String {
        let bytes = std::fs::read(self.log()).unwrap_or_default();
        let start = bytes.len().saturating_sub(max_bytes);
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// Whether `GET /healthz` on the metrics port answers `OK` within 2 s.
    pub fn healthy(&self) -> bool {
        let timeout = Duration::from_secs(2);
        let Ok(addr) = format!("127.0.0.1:{}", self.metrics_port).parse() else {
            return false;
        };
        let Ok(mut s) = TcpStream::connect_timeout(&addr, timeout) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(timeout));
        let _ = s.set_write_timeout(Some(timeout));
        if s.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        resp.split_whitespace().nth(1) == Some("200") && resp.trim_end().ends_with("OK")
    }
}

/// One store of the stack.
#[derive(Clone, Debug)]
pub struct StoreInfo {
    /// `s3s-fs` or `minio` (`MM_STORE_KIND` of `stack.env`; s3s-fs when absent).
    pub kind: String,
    /// `127.0.0.1`
    pub address: String,
    pub port: u16,
    /// `http://127.0.0.1:PORT` (path style, plain http, any region, e.g. `us-east-1`).
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    /// Milvus's bucket in this store (`bucket-a` / `bucket-b`).
    pub bucket: String,
    /// Milvus's root path in the bucket (`files`).
    pub root_path: String,
    /// The server's data directory (layout: see `support::s3`); the bucket is
    /// `data_dir/bucket`.
    pub data_dir: PathBuf,
}

impl StoreInfo {
    /// `mc` pointed at this store.
    pub fn mc(&self) -> super::mc::Mc {
        super::mc::Mc::new(&self.endpoint, &self.access_key, &self.secret_key)
    }

    /// The bucket's directory on disk.
    pub fn bucket_dir(&self) -> PathBuf {
        self.data_dir.join(&self.bucket)
    }

    /// Where the object `key` of Milvus's bucket lives on disk.
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.bucket_dir().join(key)
    }
}

/// The running pair: Milvus A on store A, Milvus B on store B.
#[derive(Clone, Debug)]
pub struct Stack {
    /// The directory given to `scripts/stack.sh` (holds `stack.env`, `stores/`, `milvus/`).
    pub dir: PathBuf,
    pub milvus_a: Endpoint,
    pub milvus_b: Endpoint,
    pub store_a: StoreInfo,
    pub store_b: StoreInfo,
}

/// Env var naming a directory where `MM_STORE=minio scripts/stack.sh start` already runs a
/// stack on MinIO stores.
pub const MINIO_STACK_ENV_VAR: &str = "MM_TEST_STACK_MINIO";

/// Port settings of the tests' own MinIO stack when they start it themselves: apart from the
/// s3s-fs one, so both can run at once. (`scripts/test.sh` runs the two one after the other on
/// the same ports.)
pub const TEST_MINIO_STACK_PORTS: [(&str, &str); 4] = [
    ("MM_MILVUS_A_OFFSET", "1200"),
    ("MM_MILVUS_B_OFFSET", "1300"),
    ("MM_A_PORT", "9500"),
    ("MM_B_PORT", "9600"),
];

/// How to find or start one of the test stacks.
struct StackSpec {
    env_var: &'static str,
    dir: &'static str,
    ports: [(&'static str, &'static str); 4],
    /// `MM_STORE` for `scripts/stack.sh`.
    store: &'static str,
}

const S3S_FS_STACK: StackSpec = StackSpec {
    env_var: STACK_ENV_VAR,
    dir: DEFAULT_STACK_DIR,
    ports: TEST_STACK_PORTS,
    store: "s3s-fs",
};

const MINIO_STACK: StackSpec = StackSpec {
    env_var: MINIO_STACK_ENV_VAR,
    dir: "target/mm-test-stack-minio",
    ports: TEST_MINIO_STACK_PORTS,
    store: "minio",
};

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
static MINIO: OnceLock<Result<Stack, String>> = OnceLock::new();

impl Stack {
    /// The stack of this test process: the one in `$MM_TEST_STACK`, else the tests' own one
    /// in `target/mm-test-stack`, started on first use (see the module docs).
    ///
    /// # Panics
    /// If the stack cannot be started or its `stack.env` is missing or incomplete (every
    /// later call panics with the same message, without trying again).
    pub fn get() -> &'static Stack {
        match STACK.get_or_init(|| Self::find_or_start(&S3S_FS_STACK)) {
            Ok(stack) => stack,
            Err(e) => panic!("no Milvus test stack: {e}"),
        }
    }

    /// The pair on MinIO stores: the one in `$MM_TEST_STACK_MINIO`, else the tests' own one in
    /// `target/mm-test-stack-minio` (offsets 1200/1300, stores on 9500/9600), started on first
    /// use like [`Stack::get`]'s.
    pub fn get_minio() -> &'static Stack {
        match MINIO.get_or_init(|| Self::find_or_start(&MINIO_STACK)) {
            Ok(stack) => stack,
            Err(e) => panic!("no Milvus test stack on MinIO: {e}"),
        }
    }

    fn find_or_start(spec: &StackSpec) -> Result<Stack, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let var = spec.env_var;
        if let Some(dir) = std::env::var_os(var).filter(|d| !d.is_empty()) {
            let dir = root.join(dir); // an absolute path stays as it is
            return Self::read(&dir).map_err(|e| {
                format!(
                    "{e} ({var}={}; start it with `MM_STORE={} bash scripts/stack.sh start DIR`, \
                     or unset {var} to let the tests start their own)",
                    dir.display(),
                    spec.store
                )
            });
        }
        let dir = root.join(spec.dir);
        let lock = root.join(format!("{}.lock", spec.dir));
        std::fs::create_dir_all(root.join("target")).map_err(|e| format!("mkdir target: {e}"))?;
        // -o: the started servers must not inherit (and keep holding) the lock.
        let mut cmd = Command::new("flock");
        cmd.arg("-o")
            .arg(&lock)
            .arg("bash")
            .arg(root.join("scripts/stack.sh"))
            .arg("start")
            .arg(&dir)
            .current_dir(root);
        for (k, v) in spec.ports {
            cmd.env(k, v);
        }
        cmd.env("MM_STORE", spec.store);
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run flock/bash scripts/stack.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`MM_STORE={} bash scripts/stack.sh start {}` failed ({}); run \
                 scripts/install-deps.sh if Milvus or the store server is missing\nstdout:\n{}\nstderr:\n{}",
                spec.store,
                dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Self::read(&dir)
    }

    /// Reads `dir/stack.env`.
    pub fn read(dir: &Path) -> Result<Stack, String> {
        let path = dir.join("stack.env");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let vars: HashMap<&str, &str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .collect();
        let get = |k: &str| -> Result<String, String> {
            vars.get(k)
                .map(|v| v.to_string())
                .ok_or_else(|| format!("{} lacks {k}", path.display()))
        };
        let num = |k: &str| -> Result<u16, String> {
            get(k)?
                .parse()
                .map_err(|e| format!("{}: {k}: {e}", path.display()))
        };
        let milvus = |s: Side| -> Result<Endpoint, String> {
            let p = format!("MM_MILVUS_{}_", s.key());
            Ok(Endpoint {
                address: get(&format!("{p}ADDRESS"))?,
                port: num(&format!("{p}PORT"))?,
                metrics_port: num(&format!("{p}METRICS"))?,
                offset: get(&format!("{p}OFFSET"))?
                    .parse()
                    .map_err(|e| format!("{}: {p}OFFSET: {e}", path.display()))?,
                dir: PathBuf::from(get(&format!("{p}DIR"))?),
            })
        };
        let store = |s: Side| -> Result<StoreInfo, String> {
            let p = format!("MM_STORE_{}_", s.key());
            Ok(StoreInfo {
                kind: vars.get("MM_STORE_KIND").unwrap_or(&"s3s-fs").to_string(),
                address: get(&format!("{p}ADDRESS"))?,
                port: num(&format!("{p}PORT"))?,
                endpoint: get(&format!("{p}ENDPOINT"))?,
                access_key: get(&format!("{p}ACCESS_KEY"))?,
                secret_key: get(&format!("{p}SECRET_KEY"))?,
                bucket: get(&format!("{p}BUCKET"))?,
                root_path: get(&format!("{p}ROOT_PATH"))?,
                data_dir: PathBuf::from(get(&format!("{p}DATA_DIR"))?),
            })
        };
        Ok(Stack {
            dir: dir.to_path_buf(),
            milvus_a: milvus(Side::A)?,
            milvus_b: milvus(Side::B)?,
            store_a: store(Side::A)?,
            store_b: store(Side::B)?,
        })
    }

    pub fn milvus(&self, side: Side) -> &Endpoint {
        match side {
            Side::A => &self.milvus_a,
            Side::B => &self.milvus_b,
        }
    }

    pub fn store(&self, side: Side) -> &StoreInfo {
        match side {
            Side::A => &self.store_a,
            Side::B => &self.store_b,
        }
    }

    /// Writes `dir/file`, a v1 profile (milvus-backup's `backup.yaml` shape) for one side:
    /// its Milvus, its store as `minio` (Milvus's bucket, `rootPath: files`), backups in
    /// `backup_bucket`/`backup_root` of the same store, then `extra` verbatim (e.g. a
    /// `transfer:` block). Returns the path.
    pub fn profile(
        &self,
        side: Side,
        dir: &Path,
        file: &str,
        backup_bucket: &str,
        backup_root: &str,
        extra: &str,
    ) -> PathBuf {
        let m = self.milvus(side);
        let s = self.store(side);
        let text = format!(
            r#"# milvus proxy address, compatible to milvus.yaml
milvus:
  address: {maddr}
  port: {mport}
  authorizationEnabled: false
  tlsMode: 0
  user: "root"
  password: "Milvus"
minio:
  storageType: "minio"
  address: {saddr}
  port: {sport}
  accessKeyID: {ak}
  secretAccessKey: {sk}
  useSSL: false
  useIAM: false
  iamEndpoint: ""
  bucketName: "{bucket}"
  rootPath: "{root}"
  backupBucketName: "{backup_bucket}"
  backupRootPath: "{backup_root}"
backup:
  gcPause:
    enable: true
    address: http://{maddr}:{metrics}
{extra}
"#,
            maddr = m.address,
            mport = m.port,
            metrics = m.metrics_port,
            saddr = s.address,
            sport = s.port,
            ak = s.access_key,
            sk = s.secret_key,
            bucket = s.bucket,
            root = s.root_path,
        );
        let path = dir.join(file);
        std::fs::write(&path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stack_env_and_writes_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let mut env = String::from("# comment\nMM_STACK_DIR=/x\n");
        for (s, port, metrics, offset, store, ak) in [
            ("A", 20530, 10091, 1000, 9300, "minio-a-key"),
            ("B", 20630, 10191, 1100, 9400, "minio-b-key"),
        ] {
            let b = s.to_lowercase();
            env += &format!(
                "MM_MILVUS_{s}_ADDRESS=127.0.0.1\nMM_MILVUS_{s}_PORT={port}\n\
                 MM_MILVUS_{s}_METRICS={metrics}\nMM_MILVUS_{s}_OFFSET={offset}\n\
                 MM_MILVUS_{s}_DIR=/x/milvus/{b}\nMM_STORE_{s}_ADDRESS=127.0.0.1\n\
                 MM_STORE_{s}_PORT={store}\nMM_STORE_{s}_ENDPOINT=http://127.0.0.1:{store}\n\
                 MM_STORE_{s}_ACCESS_KEY={ak}\nMM_STORE_{s}_SECRET_KEY=minio-{b}-secret\n\
                 MM_STORE_{s}_BUCKET=bucket-{b}\nMM_STORE_{s}_ROOT_PATH=files\n\
                 MM_STORE_{s}_DATA_DIR=/x/stores/{b}\n"
            );
        }
        std::fs::write(dir.path().join("stack.env"), &env).unwrap();
        let st = Stack::read(dir.path()).unwrap();
        assert_eq!(st.milvus_b.addr(), "127.0.0.1:20630");
        assert_eq!(st.milvus_a.metrics_port, 10091);
        assert_eq!(st.store_b.bucket_dir(), Path::new("/x/stores/b/bucket-b"));
        assert_eq!(st.store(Side::A).access_key, "minio-a-key");

        let p = st.profile(Side::B, dir.path(), "b.yaml", "bucket-b", "backup", "");
        let text = std::fs::read_to_string(p).unwrap();
        assert!(text.contains("  port: 20630\n"), "{text}");
        assert!(text.contains("  port: 9400\n"), "{text}");
        assert!(text.contains("secretAccessKey: minio-b-secret\n"), "{text}");
        assert!(text.contains("backupRootPath: \"backup\""), "{text}");

        std::fs::write(dir.path().join("stack.env"), "MM_STACK_DIR=/x\n").unwrap();
        let err = Stack::read(dir.path()).unwrap_err();
        assert!(err.contains("lacks MM_MILVUS_A_ADDRESS"), "{err}");
    }

    /// The real stack is up: both Milvus healthy, each with its bucket in its own store
    /// (starts it unless MM_TEST_STACK names a running one).
    #[test]
    fn milvus_stack_is_healthy() {
        let st = Stack::get();
        for side in [Side::A, Side::B] {
            let m = st.milvus(side);
            assert!(
                m.healthy(),
                "milvus {side:?} not healthy; log tail:\n{}",
                m.log_tail(4000)
            );
            assert!(
                st.store(side).bucket_dir().is_dir(),
                "{side:?}: no bucket dir"
            );
        }
        assert_ne!(st.milvus_a.port, st.milvus_b.port);
    }
}
