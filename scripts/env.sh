# Source me: exports what scripts/install-deps.sh installs:
#   S3S_FS_BIN         the s3s-fs binary
#   MILVUS_HOME        the unpacked Milvus 2.3.5 (bin/milvus, its libraries in bin/,
#                      config.yaml.template, glog.conf); scripts/milvus.sh runs it from there
#   MILVUS_22_HOME     the unpacked Milvus 2.2.16 likewise (no glog.conf); milvus.sh
#                      --milvus-version 2.2.16 runs it
#   MINIO_BIN, MC_BIN  the MinIO server and client
#   MILVUS_BACKUP_BIN  milvus-backup (the release that restores into Milvus 2.3)
#   MILVUS_BACKUP_SRC  its source in Go's module cache (tests read its configs/)
#   source scripts/env.sh
# Respects MM_TOOLS_DIR like install-deps.sh; does not install anything. A value already set
# in the environment is kept.
# shellcheck source=versions.sh
source "$(dirname "${BASH_SOURCE[0]}")/versions.sh"
export S3S_FS_BIN="${S3S_FS_BIN:-$DEFAULT_S3S_FS_BIN}"
export MILVUS_HOME="${MILVUS_HOME:-$DEFAULT_MILVUS_HOME}"
export MILVUS_22_HOME="${MILVUS_22_HOME:-$DEFAULT_MILVUS_22_HOME}"
export MINIO_BIN="${MINIO_BIN:-$DEFAULT_MINIO_BIN}"
export MC_BIN="${MC_BIN:-$DEFAULT_MC_BIN}"
export MILVUS_BACKUP_BIN="${MILVUS_BACKUP_BIN:-$DEFAULT_MILVUS_BACKUP_BIN}"
export MILVUS_BACKUP_SRC="${MILVUS_BACKUP_SRC:-$(default_milvus_backup_src)}"
for _mm_bin in "$S3S_FS_BIN" "$MILVUS_HOME/bin/milvus" "$MILVUS_22_HOME/bin/milvus" "$MINIO_BIN" "$MC_BIN" "$MILVUS_BACKUP_BIN"; do
    [ -x "$_mm_bin" ] || echo "env.sh: $_mm_bin is missing; run scripts/install-deps.sh" >&2
done
unset _mm_bin
