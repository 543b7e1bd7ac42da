//! A real S3 server for integration tests: one `s3s-fs` process per [`S3Server`].
//!
//! Owns: finding the `s3s-fs` binary, a private data directory, a free loopback port, the
//! child process and its log, and helpers that read or write the server's files directly
//! (so tests can check stored bytes or seed objects without going through S3).
//! Does not own: any S3 client. Tests build their own client from `endpoint`, the keys
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
//! Quirks that matter for tests: HEAD/GET of a key that is a prefix of other keys (a
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

/// Version of s3s-fs the harness expects (installed by `scripts/install-deps.sh`).
pub const S3S_FS_VERSION: &str = "0.14.1";

/// How long [`S3Server::start`] waits for the port to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Attempts at picking a port; another process may grab the port between our probe and
/// the server's bind.
const PORT_ATTEMPTS: usize = 3;

static INSTANCE: AtomicUsize = AtomicUsize::new(0);

/// A running `s3s-fs` with one pre-created bucket. Killed and its data removed on drop.
pub struct S3Server {
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
        let bin = s3s_fs_bin();
        let n = INSTANCE.fetch_add(1, Ordering::SeqCst);
        let data_dir =
            std::env::temp_dir().join(format!("mm-tests-{}-{}-{}", std::process::id(), name, n));
        let _ = fs::remove_dir_all(&data_dir);
        fs::create_dir_all(data_dir.join(bucket))
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", data_dir.display()));
        // The log sits in the data dir but outside any bucket, so it is never an object.
        let log_path = data_dir.join(".s3s-fs.log");

        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let log = fs::File::create(&log_path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
            let log_err = log.try_clone().expect("clone log file handle");
            let mut child = Command::new(&bin)
                .arg("--host")
                .arg("127.0.0.1")
                .arg("--port")
                .arg(port.to_string())
                .arg("--access-key")
                .arg(access_key)
                .arg("--secret-key")
                .arg(secret_key)
                .arg(&data_dir)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(log_err))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));

            match wait_until_listening(&mut child, port) {
                Ok(()) => {
                    return S3Server {
                        endpoint: format!("http://127.0.0.1:{port}"),
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
        panic!("s3s-fs `{name}` did not start: {last_failure}");
    }

    /// `127.0.0.1:PORT`, e.g. as the upstream of a fault proxy.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Where the object `key` of the default bucket lives on disk.
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.object_path_in(&self.bucket, key)
    }

    /// Where the object `key` of `bucket` lives on disk.
    pub fn object_path_in(&self, bucket: &str, key: &str) -> PathBuf {
        self.data_dir.join(bucket).join(key)
    }

    /// The side file holding the object's ETag (and checksums, if the client sent any).
    /// Exists only for objects written through S3 or by [`S3Server::write_etag`].
    pub fn internal_info_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.data_dir.join(format!(
            ".bucket-{}.object-{}.internal.json",
            base64_url_nopad(bucket.as_bytes()),
            base64_url_nopad(key.as_bytes())
        ))
    }

    /// The side file holding content type and user metadata of an object.
    pub fn metadata_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.data_dir.join(format!(
            ".bucket-{}.object-{}.metadata.json",
            base64_url_nopad(bucket.as_bytes()),
            base64_url_nopad(key.as_bytes())
        ))
    }

    /// Creates another bucket (a directory in the data dir); returns its path.
    /// Idempotent.
    pub fn create_bucket(&self, name: &str) -> PathBuf {
        let path = self.data_dir.join(name);
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create bucket dir {}: {e}", path.display()));
        path
    }

    /// Writes an object straight into the default bucket, bypassing S3. Its ETag is then
    /// computed by the server from the bytes on each request (fine for small objects).
    pub fn write_object(&self, key: &str, bytes: &[u8]) -> PathBuf {
        let path = self.object_path(key);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create object parent dirs");
        }
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Records the ETag the server reports for `key` of the default bucket (e.g. a known
    /// md5 hex, or a made-up one to test ETag checks). Replaces any other side info.
    pub fn write_etag(&self, key: &str, etag: &str) {
        let path = self.internal_info_path(&self.bucket, key);
        fs::write(&path, format!("{{\"e_tag\":\"{etag}\"}}"))
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Reads the stored bytes of `key` of the default bucket, `None` if absent.
    pub fn read_object(&self, key: &str) -> Option<Vec<u8>> {
        fs::read(self.object_path(key)).ok()
    }

    /// Every key in `bucket`, sorted, read from disk.
    pub fn list_keys(&self, bucket: &str) -> Vec<String> {
        let root = self.data_dir.join(bucket);
        let mut keys = Vec::new();
        collect_files(&root, &root, &mut keys);
        keys.sort();
        keys
    }

    /// Ids of multipart uploads created and neither completed nor aborted. Stand-in for
    /// ListMultipartUploads, which s3s-fs does not implement.
    pub fn open_multipart_uploads(&self) -> Vec<String> {
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
        fs::read_to_string(self.data_dir.join(".s3s-fs.log")).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.data_dir);
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
    let tools = std::env::var_os("MM_TOOLS_DIR")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            Path::new(&home).join(".cache/milvus-migrate/tools")
        });
    let p = tools.join(format!("s3s-fs-{S3S_FS_VERSION}/bin/s3s-fs"));
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

fn wait_until_listening(child: &mut Child, port: u16) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("s3s-fs exited early with {status} (port {port})"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("port {port} not accepting after {START_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
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
