# Sourced by the other scripts: the pinned versions of every tool the project installs, and
# where scripts/install-deps.sh puts them. Defines variables only; prints nothing.
# Respects MM_TOOLS_DIR (default ~/.cache/milvus-migrate/tools).
# shellcheck shell=bash
MM_TOOLS_DIR="${MM_TOOLS_DIR:-$HOME/.cache/milvus-migrate/tools}"

# s3s-fs, the Rust S3 server: 0.14.1 because later versions need a newer rustc than 1.95.
S3S_FS_VERSION=0.14.1
# Milvus standalone from the PyPI wheel `milvus==2.3.5`.
MILVUS_VERSION=2.3.5
# Milvus 2.2.16 (PyPI wheel `milvus==2.2.16`), a source in the version tests; on these
# machines it runs with local storage only (its S3 path crashes in segcore at start-up).
MILVUS_22_VERSION=2.2.16

# Go tools, built with `go install` from the Go module proxy. MinIO and mc publish no semver
# tags: pseudo-versions of their newest commits the proxy served on 2026-12-02.
MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MC_MODULE=github.com/minio/mc
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9
MILVUS_BACKUP_MODULE=github.com/zilliztech/milvus-backup
# The newest release (the proxy here refuses it: 403 "This module version is not available")
# and the newest release the proxy serves, which is also the one that restores into Milvus 2.3
# (tests/it/interop.rs runs it against a real 2.3.5).
MILVUS_BACKUP_NEWEST=v0.6.1
MILVUS_BACKUP_FOR_23=v0.5.16

GO_TOOLS_DIR="$MM_TOOLS_DIR/go"
DEFAULT_S3S_FS_BIN="$MM_TOOLS_DIR/s3s-fs-$S3S_FS_VERSION/bin/s3s-fs"
DEFAULT_MILVUS_HOME="$MM_TOOLS_DIR/milvus-$MILVUS_VERSION"
DEFAULT_MILVUS_22_HOME="$MM_TOOLS_DIR/milvus-$MILVUS_22_VERSION"
DEFAULT_MINIO_BIN="$GO_TOOLS_DIR/minio-$MINIO_VERSION/bin/minio"
DEFAULT_MC_BIN="$GO_TOOLS_DIR/mc-$MC_VERSION/bin/mc"
DEFAULT_MILVUS_BACKUP_BIN="$GO_TOOLS_DIR/milvus-backup-$MILVUS_BACKUP_FOR_23/bin/milvus-backup"
# Where `go mod download` leaves milvus-backup's source (its configs/ are read by tests).
default_milvus_backup_src() { echo "$(go env GOMODCACHE 2>/dev/null || echo "$HOME/go/pkg/mod")/$MILVUS_BACKUP_MODULE@$MILVUS_BACKUP_FOR_23"; }
