#!/usr/bin/env bash
# Installs what the tests and benchmarks need on a fresh Debian machine that has only the
# Rust toolchain and Python. Idempotent: a second run reuses what is there.
#
#   scripts/install-deps.sh [--with-rclone]
#
# - s3s-fs 0.14.1 (the S3 server the tests run), built once with cargo into
#   $MM_TOOLS_DIR/s3s-fs-0.14.1 (MM_TOOLS_DIR defaults to ~/.cache/milvus-migrate/tools).
#   0.14.1 because later versions need a newer rustc. The build takes ~4.5 min on 2 cores.
# - rclone and GNU time from Debian, only with --with-rclone or MM_WITH_RCLONE=1
#   (the benchmarks need them, the tests do not).
#
# Ends with an `export S3S_FS_BIN=...` line; `source scripts/env.sh` sets the same.
set -euo pipefail

S3S_FS_VERSION=0.14.1
MM_TOOLS_DIR="${MM_TOOLS_DIR:-$HOME/.cache/milvus-migrate/tools}"
WITH_RCLONE="${MM_WITH_RCLONE:-0}"

for arg in "$@"; do
    case "$arg" in
        --with-rclone) WITH_RCLONE=1 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "install-deps: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { echo "install-deps: $*" >&2; }

# --- s3s-fs ---------------------------------------------------------------------------
S3S_FS_ROOT="$MM_TOOLS_DIR/s3s-fs-$S3S_FS_VERSION"
S3S_FS_BIN="$S3S_FS_ROOT/bin/s3s-fs"
if [[ -x "$S3S_FS_BIN" ]]; then
    log "s3s-fs $S3S_FS_VERSION already installed"
else
    command -v cargo >/dev/null || { log "cargo not found; install the Rust toolchain first"; exit 1; }
    log "building s3s-fs $S3S_FS_VERSION (several minutes on 2 cores)"
    mkdir -p "$S3S_FS_ROOT"
    cargo install "s3s-fs@$S3S_FS_VERSION" --features binary --locked --root "$S3S_FS_ROOT"
fi
"$S3S_FS_BIN" --version >/dev/null
echo "s3s-fs: $S3S_FS_BIN"

# --- rclone and GNU time (benchmarks only) ----------------------------------------------
if [[ "$WITH_RCLONE" == 1 ]]; then
    SUDO=""
    if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
    missing=()
    command -v rclone >/dev/null || missing+=(rclone)
    [[ -x /usr/bin/time ]] || missing+=(time)
    if ((${#missing[@]})); then
        # Update the package lists once, only when a package is not known yet.
        if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
            $SUDO apt-get update
        fi
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
    else
        log "rclone and /usr/bin/time already installed"
    fi
    echo "rclone: $(command -v rclone) ($(rclone version 2>/dev/null | head -1))"
    echo "time: /usr/bin/time"
fi

echo "export S3S_FS_BIN=$S3S_FS_BIN"
