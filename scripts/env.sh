# Source me: exports what scripts/install-deps.sh installs:
#   S3S_FS_BIN   the s3s-fs binary
#   MILVUS_HOME  the unpacked Milvus 2.3.5 (bin/milvus, its libraries in bin/,
#                config.yaml.template, glog.conf); scripts/milvus.sh runs it from there
#   source scripts/env.sh
# Respects MM_TOOLS_DIR like install-deps.sh; does not install anything.
export S3S_FS_BIN="${MM_TOOLS_DIR:-$HOME/.cache/milvus-migrate/tools}/s3s-fs-0.14.1/bin/s3s-fs"
export MILVUS_HOME="${MM_TOOLS_DIR:-$HOME/.cache/milvus-migrate/tools}/milvus-2.3.5"
if [ ! -x "$S3S_FS_BIN" ]; then
    echo "env.sh: $S3S_FS_BIN is missing; run scripts/install-deps.sh" >&2
fi
if [ ! -x "$MILVUS_HOME/bin/milvus" ]; then
    echo "env.sh: $MILVUS_HOME/bin/milvus is missing; run scripts/install-deps.sh" >&2
fi
