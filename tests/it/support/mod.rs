//! Test harness shared by the integration tests: real S3 servers ([`s3`]: s3s-fs or MinIO) and
//! the MinIO client ([`mc`]), a fault-injecting proxy to put in front of them
//! ([`fault_proxy`]) and the real Milvus pairs of `scripts/stack.sh` ([`milvus`]).

pub mod fault_proxy;
pub mod mc;
pub mod milvus;
pub mod s3;
pub mod single;
pub mod tls_front;

/// Where `scripts/install-deps.sh` installs tools: `$MM_TOOLS_DIR`, else
/// `~/.cache/milvus-migrate/tools`.
pub fn tools_dir() -> std::path::PathBuf {
    std::env::var_os("MM_TOOLS_DIR")
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            std::path::Path::new(&home).join(".cache/milvus-migrate/tools")
        })
}
