#!/usr/bin/env bash
# Installs what the tests and benchmarks need on a fresh Debian machine that has only the
# Rust toolchain and Python. Idempotent: a second run reuses what is there.
#
#   scripts/install-deps.sh [--with-rclone] [--without-milvus] [--without-go]
#
# - s3s-fs 0.14.1 (the S3 server the tests run), built once with cargo into
#   $MM_TOOLS_DIR/s3s-fs-0.14.1 (MM_TOOLS_DIR defaults to ~/.cache/milvus-migrate/tools).
#   0.14.1 because later versions need a newer rustc. The build takes ~4.5 min on 2 cores.
# - Milvus 2.3.5 and 2.2.16 standalone (scripts/milvus.sh and scripts/stack.sh run them): the PyPI wheel
#   `milvus==2.3.5` (58 MB, no dependencies needed) goes to $MM_TOOLS_DIR/milvus-2.3.5/wheel,
#   its lzma-compressed binary and 23 shared libraries are unpacked into
#   $MM_TOOLS_DIR/milvus-2.3.5/bin (246 MB), its config template and glog.conf are copied to
#   $MM_TOOLS_DIR/milvus-2.3.5/. On by default; skip with --without-milvus or MM_WITH_MILVUS=0.
# - The seed's own tools, built with `go install` from the Go module proxy, pinned, into
#   $MM_TOOLS_DIR/go/<tool>-<version>/bin (Go's build cache stays in ~/.cache/go-build):
#   MinIO server and `mc` (no semver tags: pseudo-versions), milvus-backup at the newest
#   release the proxy serves that restores into Milvus 2.3 (v0.5.16) and at the newest release
#   (v0.6.1, which the proxy here refuses: the script says what it answered and goes on).
#   About 6 min on 2 cores the first time. Skip with --without-go or MM_WITH_GO=0.
#   The source of milvus-backup v0.5.16 stays in the module cache: tests read its configs/.
# - rclone and GNU time from Debian, only with --with-rclone or MM_WITH_RCLONE=1
#   (the benchmarks need them, the tests do not).
#
# Ends with `export ...=...` lines (S3S_FS_BIN, MILVUS_HOME, MINIO_BIN, MC_BIN,
# MILVUS_BACKUP_BIN, ...); `source scripts/env.sh` sets the same.
set -euo pipefail

# shellcheck source=versions.sh
source "$(dirname "$0")/versions.sh"
WITH_RCLONE="${MM_WITH_RCLONE:-0}"
WITH_MILVUS="${MM_WITH_MILVUS:-1}"
WITH_GO="${MM_WITH_GO:-1}"
# sum.golang.org has no record of milvus-backup (its lookup answers 404), so `go install`
# cannot verify it there; the module's hash is pinned here instead (the `h1:` go.sum hash of
# the module zip, as `go mod download -json` reports it) and checked before building.
declare -A MILVUS_BACKUP_SUMS=(
    [v0.5.16]="h1:zkKFh8ddUi32gG5V8h+GvEsc2hWfxcrZ5ziOxSA7iCg="  # tag v0.5.16, commit 719e9acb
)

for arg in "$@"; do
    case "$arg" in
        --with-rclone) WITH_RCLONE=1 ;;
        --without-milvus) WITH_MILVUS=0 ;;
        --without-go) WITH_GO=0 ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "install-deps: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { echo "install-deps: $*" >&2; }

# --- s3s-fs ---------------------------------------------------------------------------
S3S_FS_BIN="$DEFAULT_S3S_FS_BIN"
S3S_FS_ROOT="${S3S_FS_BIN%/bin/s3s-fs}"
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

# --- Milvus 2.3.5 and 2.2.16 (the embedded-Milvus wheels hold real standalone binaries) ---
# install_milvus VERSION HOME: unpacks the wheel `milvus==VERSION` into HOME unless done.
install_milvus() {
    local version=$1 home=$2
    local stamp="$home/.unpacked" wheel="$home/wheel"
    if [[ -f "$stamp" && -x "$home/bin/milvus" ]]; then
        log "milvus $version already installed"
        return 0
    fi
    if [[ ! -f "$wheel/milvus/data/config.yaml.template" ]]; then
        log "downloading the milvus $version wheel (40-60 MB)"
        mkdir -p "$home"
        rm -rf "$wheel"
        python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
            --no-deps --no-compile --target "$wheel" "milvus==$version"
    fi
    log "unpacking milvus $version into $home/bin (about 250 MB, a few seconds)"
    rm -f "$stamp"
    # Plain lzma decompression (what the wheel's _initialize_data_files does), two files
    # at a time (lzma releases the GIL); each file is written under a temporary name and
    # renamed, so an interrupted run never leaves a truncated library behind.
    python3 - "$wheel/milvus/data/bin" "$home/bin" <<'PY'
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
    cp "$wheel/milvus/data/config.yaml.template" "$home/config.yaml.template"
    # 2.3's wheel has a glog.conf; 2.2's C++ side logs through easylogging (milvus.sh
    # writes its config).
    if [[ -f "$wheel/milvus/data/glog.conf" ]]; then cp "$wheel/milvus/data/glog.conf" "$home/glog.conf"; fi
    # The binary must find its libraries; a missing one shows up here, not at start.
    local missing_libs
    missing_libs=$(LD_LIBRARY_PATH="$home/bin" ldd "$home/bin/milvus" | grep "not found" || true)
    if [[ -n "$missing_libs" ]]; then
        echo "$missing_libs" >&2
        log "milvus $version: missing shared libraries"; exit 1
    fi
    echo "$version" >"$stamp"
}

MILVUS_HOME="$DEFAULT_MILVUS_HOME"
MILVUS_22_HOME="$DEFAULT_MILVUS_22_HOME"
if [[ "$WITH_MILVUS" == 1 ]]; then
    install_milvus "$MILVUS_VERSION" "$MILVUS_HOME"
    echo "milvus: $MILVUS_HOME/bin/milvus"
    install_milvus "$MILVUS_22_VERSION" "$MILVUS_22_HOME"
    echo "milvus $MILVUS_22_VERSION: $MILVUS_22_HOME/bin/milvus"
fi

# --- Go tools: MinIO, mc, milvus-backup -----------------------------------------------
# go_tool NAME MODULE VERSION [PKG]: builds MODULE/PKG@VERSION into $GO_TOOLS_DIR/NAME-VERSION/bin
# unless it is there. Prints the binary's path; on a refusal by the proxy says what it
# answered and returns 1.
go_tool() {
    local name=$1 module=$2 version=$3 pkg=${4:-$2}
    local dir="$GO_TOOLS_DIR/$name-$version" bin
    bin="$dir/bin/$(basename "$pkg")"
    if [[ -x "$bin" ]]; then
        log "$name $version already installed"
        echo "$bin"
        return 0
    fi
    local out
    if ! out=$(go mod download -json "$module@$version" 2>&1); then
        log "the Go module proxy refused $module@$version: $(grep -o '"Error": *"[^"]*"' <<<"$out" | head -1 || echo "$out" | tail -1)"
        return 1
    fi
    local pinned=${MILVUS_BACKUP_SUMS[$version]:-}
    if [[ "$module" == "$MILVUS_BACKUP_MODULE" ]]; then
        local sum
        sum=$(grep -o '"Sum": *"[^"]*"' <<<"$out" | sed 's/.*"\(h1:[^"]*\)"/\1/')
        if [[ -z "$pinned" || "$sum" != "$pinned" ]]; then
            log "$module@$version: module hash $sum, expected ${pinned:-(none pinned)}; not building it"
            return 1
        fi
    fi
    log "building $name $version with go install (a few minutes on 2 cores)"
    mkdir -p "$dir"
    local err="$dir/go-install.err"
    if ! GOBIN="$dir/bin.tmp" go install -trimpath -ldflags="-s -w" "$pkg@$version" 2>"$err"; then
        # `go install M@V` also asks the proxy for M's version list (deprecation notices); the
        # proxy here refuses that list for milvus-backup (403) although it serves v0.5.16. The
        # module is downloaded and checked above: build it from the module cache instead.
        if grep -q '@v/list: 403' "$err"; then
            local src
            src=$(grep -o '"Dir": *"[^"]*"' <<<"$out" | sed 's/.*"\(\/[^"]*\)"/\1/')
            log "the proxy refuses $module's version list; building from $src"
            if ! (cd "$src/${pkg#"$module"}" && go build -trimpath -ldflags="-s -w" \
                -o "$dir/bin.tmp/$(basename "$pkg")" .) >&2; then
                rm -rf "$dir/bin.tmp"
                log "go build of $pkg@$version failed"
                return 1
            fi
        else
            cat "$err" >&2
            rm -rf "$dir/bin.tmp"
            log "go install $pkg@$version failed"
            return 1
        fi
    fi
    rm -f "$err"
    rm -rf "$dir/bin" && mv "$dir/bin.tmp" "$dir/bin"
    echo "$bin"
}

MINIO_BIN="" MC_BIN="" MILVUS_BACKUP_BIN="" MILVUS_BACKUP_NEWEST_BIN="" MILVUS_BACKUP_SRC=""
if [[ "$WITH_GO" == 1 ]]; then
    command -v go >/dev/null || { log "go not found; install Go first (or pass --without-go)"; exit 1; }
    export GOFLAGS="${GOFLAGS:--buildvcs=false}"
    # milvus-backup is checked against the hash pinned above, not against sum.golang.org.
    export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}$MILVUS_BACKUP_MODULE"
    # The tools are required by the tests: a refusal of these three stops the script.
    MINIO_BIN=$(go_tool minio "$MINIO_MODULE" "$MINIO_VERSION") || exit 1
    MC_BIN=$(go_tool mc "$MC_MODULE" "$MC_VERSION") || exit 1
    MILVUS_BACKUP_BIN=$(go_tool milvus-backup "$MILVUS_BACKUP_MODULE" "$MILVUS_BACKUP_FOR_23") || exit 1
    # The newest release is only for figures and config tests; a refusal is reported.
    if [[ "$MILVUS_BACKUP_NEWEST" != "$MILVUS_BACKUP_FOR_23" ]]; then
        MILVUS_BACKUP_NEWEST_BIN=$(go_tool milvus-backup "$MILVUS_BACKUP_MODULE" "$MILVUS_BACKUP_NEWEST") ||
            log "going on without milvus-backup $MILVUS_BACKUP_NEWEST"
    fi
    MILVUS_BACKUP_SRC=$(default_milvus_backup_src)
    for b in "$MINIO_BIN" "$MC_BIN" "$MILVUS_BACKUP_BIN"; do echo "$(basename "$b"): $b"; done
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
if [[ "$WITH_MILVUS" == 1 ]]; then
    echo "export MILVUS_HOME=$MILVUS_HOME"
    echo "export MILVUS_22_HOME=$MILVUS_22_HOME"
fi
if [[ "$WITH_GO" == 1 ]]; then
    echo "export MINIO_BIN=$MINIO_BIN"
    echo "export MC_BIN=$MC_BIN"
    echo "export MILVUS_BACKUP_BIN=$MILVUS_BACKUP_BIN"
    echo "export MILVUS_BACKUP_SRC=$MILVUS_BACKUP_SRC"
    if [[ -n "$MILVUS_BACKUP_NEWEST_BIN" ]]; then echo "export MILVUS_BACKUP_NEWEST_BIN=$MILVUS_BACKUP_NEWEST_BIN"; fi
fi
