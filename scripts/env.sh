# Source me: exports S3S_FS_BIN, the s3s-fs that scripts/install-deps.sh installs.
#   source scripts/env.sh
# Respects MM_TOOLS_DIR like install-deps.sh; does not install anything.
export S3S_FS_BIN="${MM_TOOLS_DIR:-$HOME/.cache/milvus-migrate/tools}/s3s-fs-0.14.1/bin/s3s-fs"
if [ ! -x "$S3S_FS_BIN" ]; then
    echo "env.sh: $S3S_FS_BIN is missing; run scripts/install-deps.sh" >&2
fi
