//! Single real Milvus instances beside the stack's pair, for the version matrix
//! (`versions::`): two Milvus 2.2.16 and a Milvus 2.3.5, each keeping its data on local disk
//! (`common.storageType: local`), as `scripts/milvus.sh start DIR NAME OFFSET --milvus-version V
//! --storage local` runs them; a Milvus 2.3.5 on local disk with authentication on
//! (`--auth on`: user root, password Milvus) for the RBAC tests (`restore_options::`); and a
//! Milvus 2.3.5 on local disk that one test alone uses, migrated whole (`migrate --all`); and
//! two Milvus 2.3.5 that take TLS connections only, one with a server certificate, one wanting
//! a client certificate too (`--tls one-way|mutual`, certificates made by openssl); and a
//! Milvus 2.3.5 whose proxy sends at most 2 MiB in one answer (`--set
//! proxy.grpc.serverMaxSendSize=2097152`).
//!
//! Owns: starting such an instance once per test process (under `flock`, so two processes do
//! not start it twice; `milvus.sh start` is a no-op when it already runs healthy with the same
//! settings), reading its `instance.env`, and writing a v1 profile for it. Instances live in
//! `target/mm-test-versions/NAME` and keep running for later test runs; `scripts/test.sh`
//! stops them. Does not own any client.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::milvus::Endpoint;

/// Where the instances live, relative to the package root.
pub const DIR: &str = "target/mm-test-versions";

/// One running instance on local disk.
#[derive(Clone, Debug)]
pub struct Single {
    pub endpoint: Endpoint,
    /// Its `localStorage.path`: where its binlogs are files.
    pub local_path: PathBuf,
    /// `one-way` or `mutual` when it takes TLS connections only.
    pub tls: Option<String>,
    /// Its CA, server and client certificates (`ca.pem`, `client.pem`, `client.key`).
    pub tls_dir: Option<PathBuf>,
}

/// An instance to start: name, port offset, release, authentication, TLS (`off`, `one-way`
/// or `mutual`, as `scripts/milvus.sh --tls` takes it).
struct Spec {
    name: &'static str,
    offset: u32,
    version: &'static str,
    auth: bool,
    tls: &'static str,
    /// milvus.yaml keys set besides (`scripts/milvus.sh --set KEY=VALUE`).
    settings: &'static [&'static str],
}

/// Milvus 2.2.16 on local disk (on these machines 2.2.16 cannot use S3: see test-infra).
const M22: Spec = Spec {
    name: "m22local",
    offset: 1400,
    version: "2.2.16",
    auth: false,
    tls: "off",
    settings: &[],
};
/// A second Milvus 2.2.16 on local disk: the target of a 2.2 to 2.2 migration.
const M22_B: Spec = Spec {
    name: "m22b",
    offset: 1600,
    version: "2.2.16",
    auth: false,
    tls: "off",
    settings: &[],
};
/// Milvus 2.3.5 on local disk.
const M23: Spec = Spec {
    name: "m23local",
    offset: 1500,
    version: "2.3.5",
    auth: false,
    tls: "off",
    settings: &[],
};
/// Milvus 2.3.5 with local storage and `common.security.authorizationEnabled: true`.
const M23_AUTH: Spec = Spec {
    name: "m23auth",
    offset: 1800,
    version: "2.3.5",
    auth: true,
    tls: "off",
    settings: &[],
};

/// Milvus 2.3.5 on local disk, a whole instance to migrate: only the test that migrates it
/// (`--all`) may use it, since any collection another test made there would be migrated too.
const M23_WHOLE: Spec = Spec {
    name: "m23whole",
    offset: 1900,
    version: "2.3.5",
    auth: false,
    tls: "off",
    settings: &[],
};

/// Milvus 2.3.5 on local disk that takes TLS connections only (`tlsMode: 1`).
const M23_TLS: Spec = Spec {
    name: "m23tls",
    offset: 2000,
    version: "2.3.5",
    auth: false,
    tls: "one-way",
    settings: &[],
};

/// Milvus 2.3.5 on local disk that wants a client certificate too (`tlsMode: 2`).
const M23_MTLS: Spec = Spec {
    name: "m23mtls",
    offset: 2100,
    version: "2.3.5",
    auth: false,
    tls: "mutual",
    settings: &[],
};

/// The answer limit of [`Single::milvus_23_small_answers`]: 2 MiB, where Milvus's default is
/// 64 MiB.
pub const SMALL_ANSWER_BYTES: u64 = 2 << 20;

/// Milvus 2.3.5 on local disk whose proxy sends at most 2 MiB in one answer
/// (`proxy.grpc.serverMaxSendSize`, 64 MiB by default).
const M23_SMALL: Spec = Spec {
    name: "m23small",
    offset: 2300,
    version: "2.3.5",
    auth: false,
    tls: "off",
    settings: &["proxy.grpc.serverMaxSendSize=2097152"],
};

/// The root user of an instance with authentication on, and Milvus's default password.
pub const ROOT: (&str, &str) = ("root", "Milvus");

static M22_CELL: OnceLock<Result<Single, String>> = OnceLock::new();
static M22_B_CELL: OnceLock<Result<Single, String>> = OnceLock::new();
static M23_CELL: OnceLock<Result<Single, String>> = OnceLock::new();
static M23_AUTH_CELL: OnceLock<Result<Single, String>> = OnceLock::new();
static M23_WHOLE_CELL: OnceLock<Result<Single, String>> = OnceLock::new();
static M23_TLS_CELL: OnceLock<Result<Single, String>> = OnceLock::new();
static M23_MTLS_CELL: OnceLock<Result<Single, String>> = OnceLock::new();
static M23_SMALL_CELL: OnceLock<Result<Single, String>> = OnceLock::new();

/// The instance of `spec`, started on first use in this process; panics naming `what` when
/// it cannot start.
fn started(
    cell: &'static OnceLock<Result<Single, String>>,
    spec: &Spec,
    what: &str,
) -> &'static Single {
    match cell.get_or_init(|| start(spec)) {
        Ok(s) => s,
        Err(e) => panic!("no {what}: {e}"),
    }
}

impl Single {
    /// Milvus 2.2.16 with local storage.
    pub fn milvus_22_local() -> &'static Single {
        started(&M22_CELL, &M22, "Milvus 2.2.16 on local disk")
    }

    /// A second Milvus 2.2.16 with local storage.
    pub fn milvus_22_local_b() -> &'static Single {
        started(&M22_B_CELL, &M22_B, "second Milvus 2.2.16 on local disk")
    }

    /// Milvus 2.3.5 with local storage.
    pub fn milvus_23_local() -> &'static Single {
        started(&M23_CELL, &M23, "Milvus 2.3.5 on local disk")
    }

    /// Milvus 2.3.5 with local storage and authentication on.
    pub fn milvus_23_auth() -> &'static Single {
        started(
            &M23_AUTH_CELL,
            &M23_AUTH,
            "Milvus 2.3.5 with authentication",
        )
    }

    /// Milvus 2.3.5 with local storage for the whole-instance migration.
    pub fn milvus_23_whole() -> &'static Single {
        started(
            &M23_WHOLE_CELL,
            &M23_WHOLE,
            "Milvus 2.3.5 on local disk (whole instance)",
        )
    }

    /// Milvus 2.3.5 with local storage and TLS (server certificate only).
    pub fn milvus_23_tls() -> &'static Single {
        started(&M23_TLS_CELL, &M23_TLS, "Milvus 2.3.5 with TLS")
    }

    /// Milvus 2.3.5 with local storage and mutual TLS.
    pub fn milvus_23_mtls() -> &'static Single {
        started(&M23_MTLS_CELL, &M23_MTLS, "Milvus 2.3.5 with mutual TLS")
    }

    /// Milvus 2.3.5 with local storage whose proxy sends at most [`SMALL_ANSWER_BYTES`] in
    /// one answer.
    pub fn milvus_23_small_answers() -> &'static Single {
        started(
            &M23_SMALL_CELL,
            &M23_SMALL,
            "Milvus 2.3.5 with a 2 MiB answer limit",
        )
    }

    /// [`Single::profile`] for a user of an instance with authentication on.
    pub fn profile_as(
        &self,
        dir: &Path,
        file: &str,
        backups: &Path,
        (user, password): (&str, &str),
    ) -> PathBuf {
        let path = self.profile(dir, file, backups);
        let text = std::fs::read_to_string(&path).unwrap().replacen(
            "  authorizationEnabled: false\n",
            &format!(
                "  authorizationEnabled: true\n  user: \"{user}\"\n  password: \"{password}\"\n"
            ),
            1,
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes `dir/file`: a v1 profile (milvus-backup's `backup.yaml`) for this Milvus, its
    /// storage `local` (`rootPath` the data directory), backups in the local directory
    /// `backups`. Returns the path.
    pub fn profile(&self, dir: &Path, file: &str, backups: &Path) -> PathBuf {
        let m = &self.endpoint;
        // As milvus-backup's backup.yaml writes TLS: the CA, the name the certificate holds,
        // and for mutual TLS the client's certificate and key.
        let tls = match (&self.tls, &self.tls_dir) {
            (Some(mode), Some(d)) => {
                let mut t = format!(
                    "  tlsMode: {}\n  caCertPath: \"{ca}\"\n  serverName: \"localhost\"\n",
                    if mode == "mutual" { 2 } else { 1 },
                    ca = d.join("ca.pem").display()
                );
                if mode == "mutual" {
                    t += &format!(
                        "  mtlsCertPath: \"{}\"\n  mtlsKeyPath: \"{}\"\n",
                        d.join("client.pem").display(),
                        d.join("client.key").display()
                    );
                }
                t
            }
            _ => "  tlsMode: 0\n".to_string(),
        };
        let text = format!(
            r#"milvus:
  address: {addr}
  port: {port}
  authorizationEnabled: false
{tls}minio:
  storageType: "local"
  rootPath: "{root}"
  backupStorageType: "local"
  backupRootPath: "{backups}"
backup:
  gcPause:
    enable: true
    address: http://{addr}:{metrics}
"#,
            addr = m.address,
            port = m.port,
            metrics = m.metrics_port,
            root = self.local_path.display(),
            backups = backups.display(),
        );
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn start(spec: &Spec) -> Result<Single, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join(DIR);
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let lock = root.join(format!("{DIR}.lock"));
    let out = Command::new("flock")
        .arg("-o")
        .arg(&lock)
        .arg("bash")
        .arg(root.join("scripts/milvus.sh"))
        .args(["start", dir.to_str().unwrap(), spec.name])
        .arg(spec.offset.to_string())
        .args(["--milvus-version", spec.version, "--storage", "local"])
        .args(["--auth", if spec.auth { "on" } else { "off" }])
        .args(["--tls", spec.tls])
        .args(spec.settings.iter().flat_map(|kv| ["--set", kv]))
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run flock/bash scripts/milvus.sh: {e}"))?;
    if out.status.success() {
        return read(&dir.join(spec.name));
    }
    Err(format!(
        "`scripts/milvus.sh start {} {} {} --milvus-version {} --storage local` failed \
         ({}); run scripts/install-deps.sh if Milvus {} is missing\nstdout:\n{}\nstderr:\n{}",
        dir.display(),
        spec.name,
        spec.offset,
        spec.version,
        out.status,
        spec.version,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn read(d: &Path) -> Result<Single, String> {
    let path = d.join("instance.env");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let vars: HashMap<&str, &str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    let get = |k: &str| {
        vars.get(k)
            .map(|v| v.to_string())
            .ok_or_else(|| format!("{} lacks {k}", path.display()))
    };
    let num = |k: &str| -> Result<u32, String> { get(k)?.parse().map_err(|e| format!("{k}: {e}")) };
    Ok(Single {
        endpoint: Endpoint {
            address: get("MILVUS_ADDRESS")?,
            port: num("MILVUS_PORT")? as u16,
            metrics_port: num("MILVUS_METRICS_PORT")? as u16,
            offset: num("MILVUS_OFFSET")?,
            dir: d.to_path_buf(),
        },
        local_path: PathBuf::from(get("MILVUS_LOCAL_PATH")?),
        tls: get("MILVUS_TLS").ok(),
        tls_dir: get("MILVUS_TLS_DIR").ok().map(PathBuf::from),
    })
}
