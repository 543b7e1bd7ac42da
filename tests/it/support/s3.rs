//! A real S3 server for integration tests: one `s3s-fs` or MinIO process per [`S3Server`]
//! ([`Kind`]).
//!
//! Owns: finding the server binary, a private data directory, a free loopback port, the
//! child process and its log, and helpers that read or write objects for the tests (seed
//! objects, check stored bytes, list keys and open multipart uploads). With s3s-fs they work
//! on the server's files directly; with MinIO, whose data directory is its own format, they go
//! through the real `mc` client ([`super::mc`]). A few helpers exist for s3s-fs only (forged
//! ETags, paths on disk): they panic on MinIO.
//! Does not own: the program's S3 client. Tests build profiles from `endpoint`, the keys
//! and `bucket` (path style, plain http, region `us-east-1`).
//!
//! The API is synchronous (std only), so it works from `#[test]` and `#[tokio::test]`
//! alike. [`S3Server::start`] blocks for at most ~20 s while the server comes up; in an
//! async test that briefly blocks one runtime thread, which is harmless there.
//!
//! # How s3s-fs 0.14.1 lays out its data directory (found by running it)
//!
//! ```text
//! DATA/<bucket>/                                   a bucket is a plain directory
//! DATA/<bucket>/<key>                              object bytes, verbatim; `/` in keys are
//!                                                  real subdirectories (key `a/b/c` is the
//!                                                  file DATA/<bucket>/a/b/c)
//! DATA/.bucket-<B>.object-<K>.internal.json        {"e_tag":"<hex md5>"} for a single PUT,
//!                                                  {"e_tag":"<hex md5 of part md5s>-<N>"} after
//!                                                  a multipart upload; also checksum_* fields
//!                                                  when the client sent checksums
//! DATA/.bucket-<B>.object-<K>.metadata.json        {"user_metadata":{..},"content_type":..}
//! DATA/.upload-<uuid>.json                         an open multipart upload (creator's key)
//! DATA/.upload_id-<uuid>.part-<n>                  a received part of that upload
//! DATA/.tmp.<n>.internal.part                      in-flight writes (renamed when done)
//! ```
//! `<B>` and `<K>` are the bucket name and key in URL-safe base64 without padding.
//! The side files live in DATA itself, not in the bucket directory, so deleting a bucket
//! directory leaves them behind.
//!
//! A file written straight into DATA/<bucket>/ is a valid object at once (GET, HEAD and
//! LIST see it). Without an `.internal.json` its ETag is the md5 of the file, computed by
//! reading the whole file on every HEAD, GET and for every LIST entry, so for big seeded
//! objects write the side file too (see [`S3Server::write_etag`]).
//!
//! # MinIO
//!
//! `minio server --address 127.0.0.1:PORT --console-address 127.0.0.1:PORT2 DATA` with the
//! keys as root user and password (MinIO wants a password of 8 characters or more), ready when
//! `/minio/health/live` answers 200; the bucket is made with `mc mb`. What differs from s3s-fs
//! and matters to the program is handled in the program, not here.
//!
//! s3s-fs quirks that matter for tests: HEAD/GET of a key that is a prefix of other keys (a
//! "directory") answers 500, not 404; an empty `delimiter=` counts as a delimiter; part
//! numbers must be contiguous from 1; a failed CompleteMultipartUpload destroys the upload;
//! ListMultipartUploads is not implemented (use [`S3Server::open_multipart_uploads`]).

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::mc::{Mc, go_tool};

/// Version of s3s-fs the harness expects (installed by `scripts/install-deps.sh`).
pub const S3S_FS_VERSION: &str = "0.14.1";

/// How long [`S3Server::start`] waits for the port to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Attempts at picking a port; another process may grab the port between our probe and
/// the server's bind.
const PORT_ATTEMPTS: usize = 3;

static INSTANCE: AtomicUsize = AtomicUsize::new(0);

/// Which S3 server an [`S3Server`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `s3s-fs` 0.14.1: objects are plain files of its data directory.
    S3sFs,
    /// A MinIO server (single drive), reached through `mc` by the helpers.
    Minio,
}

/// A running S3 server with one pre-created bucket. Killed and its data removed on drop.
pub struct S3Server {
    pub kind: Kind,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub port: u16,
    pub access_key: String,
    pub secret_key: String,
    /// The bucket created at start.
    pub bucket: String,
    /// The server's root directory (see the module docs for its layout).
    pub data_dir: PathBuf,
    child: Child,
    /// `mc` pointed at this server (MinIO only).
    mc: Option<Mc>,
}

impl S3Server {
    /// Starts `s3s-fs` on a free loopback port with the given credentials and a bucket.
    ///
    /// `name` only labels the data directory
    /// (`$TMPDIR/mm-tests-<pid>-<name>-<n>`) and log, to tell servers apart.
    ///
    /// # Panics
    /// If the binary is missing (run `scripts/install-deps.sh`), the data directory cannot
    /// be made, or the server does not accept connections within 20 s (the panic message
    /// carries the tail of its log).
    pub fn start(name: &str, access_key: &str, secret_key: &str, bucket: &str) -> S3Server {
        S3Server::start_kind(Kind::S3sFs, name, access_key, secret_key, bucket)
    }

    /// [`S3Server::start`] for either server. MinIO wants a secret of 8 characters or more.
    pub fn start_kind(
        kind: Kind,
        name: &str,
        access_key: &str,
        secret_key: &str,
        bucket: &str,
    ) -> S3Server {
        let bin = match kind {
            Kind::S3sFs => s3s_fs_bin(),
            Kind::Minio => go_tool("MINIO_BIN", "minio"),
        };
        let n = INSTANCE.fetch_add(1, Ordering::SeqCst);
        let data_dir =
            std::env::temp_dir().join(format!("mm-tests-{}-{}-{}", std::process::id(), name, n));
        let _ = fs::remove_dir_all(&data_dir);
        let first_dir = match kind {
            Kind::S3sFs => data_dir.join(bucket),
            Kind::Minio => data_dir.clone(),
        };
        fs::create_dir_all(&first_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", data_dir.display()));
        // The log sits in the data dir but outside any bucket, so it is never an object.
        let log_path = data_dir.join(log_name(kind));

        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let log = fs::File::create(&log_path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
            let log_err = log.try_clone().expect("clone log file handle");
            let mut cmd = Command::new(&bin);
            match kind {
                Kind::S3sFs => {
                    cmd.arg("--host")
                        .arg("127.0.0.1")
                        .arg("--port")
                        .arg(port.to_string())
                        .arg("--access-key")
                        .arg(access_key)
                        .arg("--secret-key")
                        .arg(secret_key);
                }
                Kind::Minio => {
                    cmd.arg("server")
                        .arg("--quiet")
                        .arg("--address")
                        .arg(format!("127.0.0.1:{port}"))
                        .arg("--console-address")
                        .arg(format!("127.0.0.1:{}", free_port()))
                        .env("MINIO_ROOT_USER", access_key)
                        .env("MINIO_ROOT_PASSWORD", secret_key)
                        .env("MINIO_BROWSER", "off")
                        .env("MINIO_UPDATE", "off")
                        .env("MINIO_CI_CD", "1");
                }
            }
            let mut child = cmd
                .arg(&data_dir)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(log_err))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));

            match wait_until_ready(kind, &mut child, port) {
                Ok(()) => {
                    let endpoint = format!("http://127.0.0.1:{port}");
                    let mc = (kind == Kind::Minio).then(|| {
                        let mc = Mc::new(&endpoint, access_key, secret_key);
                        mc.make_bucket(bucket);
                        mc
                    });
                    return S3Server {
                        kind,
                        mc,
                        endpoint,
                        port,
                        access_key: access_key.to_owned(),
                        secret_key: secret_key.to_owned(),
                        bucket: bucket.to_owned(),
                        data_dir,
                        child,
                    };
                }
                Err(reason) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let tail = log_tail(&log_path, 4096);
                    last_failure = format!("{reason}; log tail of {}:\n{tail}", log_path.display());
                    // Only a lost port race is worth another try.
                    if !(tail.contains("in use") || tail.contains("AddrInUse")) {
                        break;
                    }
                }
            }
        }
        let _ = fs::remove_dir_all(&data_dir);
        panic!("{kind:?} `{name}` did not start: {last_failure}");
    }

    /// `127.0.0.1:PORT`, e.g. as the upstream of a fault proxy.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `mc` for this server; panics for s3s-fs.
    fn mc(&self) -> &Mc {
        self.mc.as_ref().expect("mc is used for MinIO servers only")
    }

    /// Panics unless this is s3s-fs (helpers that work on its files).
    fn files_only(&self, what: &str) {
        assert_eq!(
            self.kind,
            Kind::S3sFs,
            "{what} works on s3s-fs's files; not available for {:?}",
            self.kind
        );
    }

    /// Where the object `key` of the default bucket lives on disk (s3s-fs only).
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.object_path_in(&self.bucket, key)
    }

    /// Where the object `key` of `bucket` lives on disk (s3s-fs only).
    pub fn object_path_in(&self, bucket: &str, key: &str) -> PathBuf {
        self.files_only("object_path_in");
        self.data_dir.join(bucket).join(key)
    }

    /// The side file holding the object's ETag (and checksums, if the client sent any).
    /// Exists only for objects written through S3 or by [`S3Server::write_etag`].
    pub fn internal_info_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.files_only("internal_info_path");
        self.data_dir.join(format!(
            ".bucket-{}.object-{}.internal.json",
            base64_url_nopad(bucket.as_bytes()),
            base64_url_nopad(key.as_bytes())
        ))
    }

    /// The side file holding content type and user metadata of an object.
    pub fn metadata_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.files_only("metadata_path");
        self.data_dir.join(format!(
            ".bucket-{}.object-{}.metadata.json",
            base64_url_nopad(bucket.as_bytes()),
            base64_url_nopad(key.as_bytes())
        ))
    }

    /// Creates another bucket (s3s-fs: a directory in the data dir). Idempotent.
    pub fn create_bucket(&self, name: &str) {
        match self.kind {
            Kind::S3sFs => {
                let path = self.data_dir.join(name);
                fs::create_dir_all(&path)
                    .unwrap_or_else(|e| panic!("cannot create bucket dir {}: {e}", path.display()));
            }
            Kind::Minio => self.mc().make_bucket(name),
        }
    }

    /// Stores an object in the default bucket. s3s-fs: written straight into its data
    /// directory, bypassing S3, and its ETag is then computed by the server from the bytes on
    /// each request (fine for small objects; see [`S3Server::write_etag`]). MinIO: an upload
    /// through `mc` (multipart for large objects, as a real writer would do).
    pub fn write_object(&self, key: &str, bytes: &[u8]) {
        if self.kind == Kind::Minio {
            return self.mc().put(&self.bucket, key, bytes);
        }
        let path = self.object_path(key);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create object parent dirs");
        }
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Records the ETag the server reports for `key` of the default bucket (e.g. a known
    /// md5 hex, or a made-up one to test ETag checks). Replaces any other side info.
    /// s3s-fs only.
    pub fn write_etag(&self, key: &str, etag: &str) {
        let path = self.internal_info_path(&self.bucket, key);
        fs::write(&path, format!("{{\"e_tag\":\"{etag}\"}}"))
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Reads the stored bytes of `key` of the default bucket, `None` if absent.
    pub fn read_object(&self, key: &str) -> Option<Vec<u8>> {
        match self.kind {
            Kind::S3sFs => fs::read(self.object_path(key)).ok(),
            Kind::Minio => self.mc().cat(&self.bucket, key),
        }
    }

    /// Every key in `bucket`, sorted (s3s-fs: read from disk).
    pub fn list_keys(&self, bucket: &str) -> Vec<String> {
        if self.kind == Kind::Minio {
            return self.mc().keys(bucket, "");
        }
        let root = self.data_dir.join(bucket);
        let mut keys = Vec::new();
        collect_files(&root, &root, &mut keys);
        keys.sort();
        keys
    }

    /// Multipart uploads created and neither completed nor aborted: s3s-fs, their ids, read
    /// from its data dir (it does not implement ListMultipartUploads); MinIO, the keys of those
    /// in the default bucket (`mc ls --incomplete`).
    pub fn open_multipart_uploads(&self) -> Vec<String> {
        if self.kind == Kind::Minio {
            return self.mc().incomplete_uploads(&self.bucket);
        }
        let mut ids: Vec<String> = fs::read_dir(&self.data_dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let name = e.file_name().into_string().ok()?;
                        let id = name.strip_prefix(".upload-")?.strip_suffix(".json")?;
                        Some(id.to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.data_dir.join(log_name(self.kind))).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.data_dir);
    }
}

/// The server's log file in its data dir (outside any bucket, and for MinIO a name its own
/// files never take).
fn log_name(kind: Kind) -> &'static str {
    match kind {
        Kind::S3sFs => ".s3s-fs.log",
        Kind::Minio => ".minio-server.log",
    }
}

/// `$S3S_FS_BIN`, else the cache path `scripts/install-deps.sh` installs to.
fn s3s_fs_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("S3S_FS_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "S3S_FS_BIN={} does not exist; run scripts/install-deps.sh",
            p.display()
        );
        return p;
    }
    let p = super::tools_dir().join(format!("s3s-fs-{S3S_FS_VERSION}/bin/s3s-fs"));
    assert!(
        p.is_file(),
        "s3s-fs not found at {} and S3S_FS_BIN is not set; run scripts/install-deps.sh \
         (or `source scripts/env.sh`)",
        p.display()
    );
    p
}

/// A port that was free a moment ago (bind port 0, read it, release it).
fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Waits until the server serves: s3s-fs when its port accepts connections, MinIO when its
/// liveness endpoint answers 200.
fn wait_until_ready(kind: Kind, child: &mut Child, port: u16) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{kind:?} exited early with {status} (port {port})"));
        }
        let ready = match kind {
            Kind::S3sFs => TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
            Kind::Minio => http_status(&addr, "/minio/health/live") == Some(200),
        };
        if ready {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("port {port} not accepting after {START_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The status of `GET path` (HTTP/1.0) on `addr`, `None` if there is no answer within 1 s.
fn http_status(addr: &SocketAddr, path: &str) -> Option<u16> {
    use std::io::Write;
    let timeout = Duration::from_secs(1);
    let mut s = TcpStream::connect_timeout(addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn log_tail(path: &Path, max: u64) -> String {
    let Ok(mut f) = fs::File::open(path) else {
        return "(no log)".into();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for entry in rd.filter_map(|e| e.ok()) {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_files(root, &path, out),
            Ok(t) if t.is_file() => {
                if let Ok(rel) = path.strip_prefix(root) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
            _ => {}
        }
    }
}

/// URL-safe base64 without padding, as s3s-fs uses in its side-file names.
fn base64_url_nopad(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1; // 1 byte -> 2 chars, 2 -> 3, 3 -> 4
        for i in 0..chars {
            let idx = (n >> (18 - 6 * i)) & 0x3f;
            out.push(ALPHABET[idx as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64_url_nopad;

    #[test]
    fn base64_matches_s3s_fs_names() {
        // Names seen in a real s3s-fs data dir.
        assert_eq!(base64_url_nopad(b"bkt"), "Ymt0");
        assert_eq!(base64_url_nopad(b"dir/f2"), "ZGlyL2Yy");
        assert_eq!(base64_url_nopad(b"dir/sub/f1"), "ZGlyL3N1Yi9mMQ");
        assert_eq!(base64_url_nopad(b"\xfb\xff"), "-_8");
    }
}
