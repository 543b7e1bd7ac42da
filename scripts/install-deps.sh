#!/usr/bin/env bash
# Installs what the tests and benchmarks need on a fresh Debian machine that has only the
# Rust toolchain and Python. Idempotent: a second run reuses what is there.
#
#   scripts/install-deps.sh [--with-rclone] [--without-milvus]
#
# - s3s-fs 0.14.1 (the S3 server the tests run), built once with cargo into
#   $MM_TOOLS_DIR/s3s-fs-0.14.1 (MM_TOOLS_DIR defaults to ~/.cache/milvus-migrate/tools).
#   0.14.1 because later versions need a newer rustc. The build takes ~4.5 min on 2 cores.
# - Milvus 2.3.5 standalone (scripts/milvus.sh and scripts/stack.sh run it): the PyPI wheel
#   `milvus==2.3.5` (58 MB, no dependencies needed) goes to $MM_TOOLS_DIR/milvus-2.3.5/wheel,
#   its lzma-compressed binary and 23 shared libraries are unpacked into
#   $MM_TOOLS_DIR/milvus-2.3.5/bin (246 MB), its config template and glog.conf are copied to
#   $MM_TOOLS_DIR/milvus-2.3.5/. On by default; skip with --without-milvus or MM_WITH_MILVUS=0.
# - rclone and GNU time from Debian, only with --with-rclone or MM_WITH_RCLONE=1
#   (the benchmarks need them, the tests do not).
#
# Ends with `export S3S_FS_BIN=...` and `export MILVUS_HOME=...` lines; `source scripts/env.sh`
# sets the same.
set -euo pipefail

S3S_FS_VERSION=0.14.1
MM_TOOLS_DIR="${MM_TOOLS_DIR:-$HOME/.cache/milvus-migrate/tools}"
MILVUS_VERSION=2.3.5
WITH_RCLONE="${MM_WITH_RCLONE:-0}"
WITH_MILVUS="${MM_WITH_MILVUS:-1}"

for arg in "$@"; do
    case "$arg" in
        --with-rclone) WITH_RCLONE=1 ;;
        --without-milvus) WITH_MILVUS=0 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
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

# --- Milvus 2.3.5 (the embedded-Milvus wheel holds a real standalone binary) ------------
MILVUS_HOME="$MM_TOOLS_DIR/milvus-$MILVUS_VERSION"
MILVUS_STAMP="$MILVUS_HOME/.unpacked"
if [[ "$WITH_MILVUS" == 1 ]]; then
    if [[ -f "$MILVUS_STAMP" && -x "$MILVUS_HOME/bin/milvus" ]]; then
        log "milvus $MILVUS_VERSION already installed"
    else
        wheel="$MILVUS_HOME/wheel"
        if [[ ! -f "$wheel/milvus/data/config.yaml.template" ]]; then
            log "downloading the milvus $MILVUS_VERSION wheel (58 MB)"
            mkdir -p "$MILVUS_HOME"
            rm -rf "$wheel"
            python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
                --no-deps --no-compile --target "$wheel" "milvus==$MILVUS_VERSION"
        fi
        log "unpacking milvus $MILVUS_VERSION into $MILVUS_HOME/bin (246 MB, a few seconds)"
        rm -f "$MILVUS_STAMP"
        # Plain lzma decompression (what the wheel's _initialize_data_files does), two files
        # at a time (lzma releases the GIL); each file is written under a temporary name and
        # renamed, so an interrupted run never leaves a truncated library behind.
        python3 - "$wheel/milvus/data/bin" "$MILVUS_HOME/bin" <<'PY'
import concurrent.futures, lzma, os, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
def unpack(name):
    out = os.path.join(dst, name[:-len(".lzma")])
    with lzma.open(os.path.join(src, name)) as f, open(out + ".tmp", "wb") as o:
        while chunk := f.read(1 << 20):
            o.write(chunk)
    os.chmod(out + ".tmp", 0o755)
    os.replace(out + ".tmp", out)
names = sorted((n for n in os.listdir(src) if n.endswith(".lzma")),
               key=lambda n: -os.path.getsize(os.path.join(src, n)))
with concurrent.futures.ThreadPoolExecutor(2) as pool:
    list(pool.map(unpack, names))
print(f"install-deps: unpacked {len(names)} files", file=sys.stderr)
PY
        cp "$wheel/milvus/data/config.yaml.template" "$MILVUS_HOME/config.yaml.template"
        cp "$wheel/milvus/data/glog.conf" "$MILVUS_HOME/glog.conf"
        # The binary must find its libraries; a missing one shows up here, not at start.
        missing_libs=$(LD_LIBRARY_PATH="$MILVUS_HOME/bin" ldd "$MILVUS_HOME/bin/milvus" | grep "not found" || true)
        if [[ -n "$missing_libs" ]]; then
            echo "$missing_libs" >&2
            log "milvus: missing shared libraries"; exit 1
        fi
        echo "$MILVUS_VERSION" >"$MILVUS_STAMP"
    fi
    echo "milvus: $MILVUS_HOME/bin/milvus"
fi

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
if [[ "$WITH_MILVUS" == 1 ]]; then echo "export MILVUS_HOME=$MILVUS_HOME"; fi
