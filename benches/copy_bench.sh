#!/usr/bin/env bash
# Copy throughput of milvus-migrate next to rclone, between two local s3s-fs stores.
#
#   benches/copy_bench.sh [--quick] [--work-dir DIR] [--concurrency N] [--runs N]
#                         [--no-build] [--skip-ours] [--skip-rclone]
#
#   --quick        small sets, 1 run each: a smoke run (~1-2 min)
#   --work-dir     where the stores keep their data (default /dev/shm/mm-bench when
#                  /dev/shm is a tmpfs with room, else /tmp/mm-bench; the full mixed
#                  set needs ~4.5 GB free there: source + one copy)
#   --concurrency  objects in flight, for both tools (default 8)
#   --runs         runs per tool and set; the table shows medians (default 3)
#   --no-build     use target/release/milvus-migrate as it is
#   --skip-ours / --skip-rclone   leave one tool out
#
# Environment: S3S_FS_BIN (else the install-deps.sh cache path), MM_BENCH_BIN (binary
# under test, default target/release/milvus-migrate), CARGO_BUILD_JOBS for the build.
# Needs rclone and /usr/bin/time: scripts/install-deps.sh --with-rclone (run on demand).
# See benches/README.md for what each figure means and how it is measured.
set -euo pipefail

# ---- data sets (count x size per class; sizes in KiB) ----------------------------------
# mixed: 2,000 x 64 KiB + 200 x 4 MiB + 4 x 256 MiB (~2.04 GB); small: 2,000 x 64 KiB.
MIXED_SPEC="2000:64 200:4096 4:262144"
SMALL_SPEC="2000:64"
QUICK_MIXED_SPEC="200:64 20:4096 2:65536"
QUICK_SMALL_SPEC="300:64"
RUNS=3
CONCURRENCY=8
PART_SIZE=16MiB            # ours --part-size
RCLONE_CHUNK=16M           # rclone --s3-chunk-size (same bytes as PART_SIZE)
RCLONE_CUTOFF=32M          # rclone --s3-upload-cutoff
RCLONE_UPLOAD_CONC=4       # rclone --s3-upload-concurrency (parts in flight per object)
BWLIMIT=50MiB/s            # rate-limited run: limit, and the set it copies
BWLIMIT_SET=mixed          # 2.04 GB at 50 MiB/s lasts ~39 s
# ... and the part of it this machine copies faster than the limit (the 64 KiB objects alone
# go at ~27 MB/s here, so on the whole set the limit is not what sets the pace throughout).
BWLIMIT_SET_LARGE=mixed/262144k
QUICK_BWLIMIT=20MiB/s      # quick mixed set (~231 MB) lasts ~11 s
# Memory-backed by default: on a disk file system the stores' cost of creating files after
# the previous run's were deleted (ext4 skips recently freed inodes) swamps what the tools do
# and varies from run to run. See benches/README.md.
WORK=""
BUILD=1
DO_OURS=1
DO_RCLONE=1
QUICK=0

while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --work-dir) WORK=$2; shift ;;
        --concurrency) CONCURRENCY=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --no-build) BUILD=0 ;;
        --skip-ours) DO_OURS=0 ;;
        --skip-rclone) DO_RCLONE=0 ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "copy_bench: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [[ $QUICK == 1 ]]; then
    MIXED_SPEC=$QUICK_MIXED_SPEC; SMALL_SPEC=$QUICK_SMALL_SPEC; RUNS=1; BWLIMIT=$QUICK_BWLIMIT
fi

if [[ -z $WORK ]]; then
    WORK=/tmp/mm-bench
    if [[ "$(stat -f -c %T /dev/shm 2>/dev/null)" == tmpfs ]] &&
        (($(df --output=avail -B1 /dev/shm | tail -1) > 6 * 1024 * 1024 * 1024)); then
        WORK=/dev/shm/mm-bench
    fi
fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
OURS_BIN="${MM_BENCH_BIN:-$REPO/target/release/milvus-migrate}"
S3S_FS_BIN="${S3S_FS_BIN:-${MM_TOOLS_DIR:-$HOME/.cache/milvus-migrate/tools}/s3s-fs-0.14.1/bin/s3s-fs}"
A_KEY=bench-a A_SECRET=bench-a-secret A_BUCKET=bench-a
B_KEY=bench-b B_SECRET=bench-b-secret B_BUCKET=bench-b
CLK_TCK=$(getconf CLK_TCK)

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }
die() { echo "copy_bench: $*" >&2; exit 1; }

# ---- tools -----------------------------------------------------------------------------
if ! command -v rclone >/dev/null || [[ ! -x /usr/bin/time ]] || [[ ! -x "$S3S_FS_BIN" ]]; then
    log "installing missing tools (scripts/install-deps.sh --with-rclone)"
    bash "$REPO/scripts/install-deps.sh" --with-rclone >&2
fi
[[ -x "$S3S_FS_BIN" ]] || die "no s3s-fs at $S3S_FS_BIN"

if [[ $DO_OURS == 1 && $BUILD == 1 ]]; then
    log "cargo build --release (in $REPO)"
    if ! (cd "$REPO" && cargo build --release --bin milvus-migrate) >"${TMPDIR:-/tmp}/mm-bench-build.log" 2>&1; then
        tail -n 30 "${TMPDIR:-/tmp}/mm-bench-build.log" >&2
        log "build failed: milvus-migrate runs are skipped"
        DO_OURS=0
    fi
fi
if [[ $DO_OURS == 1 && ! -x "$OURS_BIN" ]]; then
    log "no binary at $OURS_BIN: milvus-migrate runs are skipped"
    DO_OURS=0
fi

# ---- work dir and free space -----------------------------------------------------------
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
[[ "$WORK" != / && "$WORK" != "$HOME" ]] || die "refusing work dir $WORK (the script deletes in it)"
RES="$WORK/results"
rm -rf "$RES"; mkdir -p "$RES"

spec_bytes() { local t=0 c s; for cs in $1; do c=${cs%%:*}; s=${cs##*:}; t=$((t + c * s * 1024)); done; echo $t; }
spec_count() { local t=0; for cs in $1; do t=$((t + ${cs%%:*})); done; echo $t; }
MIXED_BYTES=$(spec_bytes "$MIXED_SPEC"); MIXED_COUNT=$(spec_count "$MIXED_SPEC")
SMALL_BYTES=$(spec_bytes "$SMALL_SPEC"); SMALL_COUNT=$(spec_count "$SMALL_SPEC")
SEED_SPEC="mixed=$MIXED_SPEC small=$SMALL_SPEC"
seeded=0
[[ -f "$WORK/a.seeded" && "$(cat "$WORK/a.seeded")" == "$SEED_SPEC" ]] && seeded=1
# Source sets (unless already there) + one copy in B at a time + 10% slack.
need=$(( (MIXED_BYTES + SMALL_BYTES) * (2 - seeded) * 11 / 10 ))
avail=$(df --output=avail -B1 "$WORK" | tail -1)
((avail > need)) || die "$WORK has $((avail >> 20)) MiB free, needs $((need >> 20)) MiB"

# ---- stores ----------------------------------------------------------------------------
PID_A="" PID_B=""
cleanup() {
    local p
    for p in $PID_A $PID_B; do kill "$p" 2>/dev/null || true; done
    for p in $PID_A $PID_B; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r PORT_A PORT_B < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')

start_store() { # name port key secret bucket; the pid is in $!
    mkdir -p "$WORK/$1/$5"
    "$S3S_FS_BIN" --host 127.0.0.1 --port "$2" --access-key "$3" --secret-key "$4" "$WORK/$1" \
        </dev/null >"$WORK/$1.log" 2>&1 &
}
wait_port() { # name port pid
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
        kill -0 "$3" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$WORK/$1.log" >&2
    die "store $1 did not come up on port $2"
}
start_store a "$PORT_A" $A_KEY $A_SECRET $A_BUCKET; PID_A=$!
start_store b "$PORT_B" $B_KEY $B_SECRET $B_BUCKET; PID_B=$!
wait_port a "$PORT_A" "$PID_A"
wait_port b "$PORT_B" "$PID_B"
log "store A http://127.0.0.1:$PORT_A (pid $PID_A), store B http://127.0.0.1:$PORT_B (pid $PID_B), data in $WORK"

export RCLONE_CONFIG="$WORK/rclone.conf"
: >"$RCLONE_CONFIG"
export RCLONE_CONFIG_A_TYPE=s3 RCLONE_CONFIG_A_PROVIDER=Other RCLONE_CONFIG_A_FORCE_PATH_STYLE=true
export RCLONE_CONFIG_A_ENDPOINT="http://127.0.0.1:$PORT_A"
export RCLONE_CONFIG_A_ACCESS_KEY_ID=$A_KEY RCLONE_CONFIG_A_SECRET_ACCESS_KEY=$A_SECRET
export RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other RCLONE_CONFIG_B_FORCE_PATH_STYLE=true
export RCLONE_CONFIG_B_ENDPOINT="http://127.0.0.1:$PORT_B"
export RCLONE_CONFIG_B_ACCESS_KEY_ID=$B_KEY RCLONE_CONFIG_B_SECRET_ACCESS_KEY=$B_SECRET
# rclone refuses plain-http endpoints when AWS_CA_BUNDLE is set (LoadCustomCABundleError).
RCLONE=(env -u AWS_CA_BUNDLE rclone)
rcl() { "${RCLONE[@]}" "$@"; }

profile() { # name port key secret bucket
    cat <<EOF
minio:
  storageType: minio
  address: 127.0.0.1
  port: $2
  accessKeyID: $3
  secretAccessKey: $4
  useSSL: false
  bucketName: $5
  rootPath: files
  backupBucketName: $5
  backupRootPath: backup
EOF
}
profile a "$PORT_A" $A_KEY $A_SECRET $A_BUCKET >"$WORK/A.yaml"
profile b "$PORT_B" $B_KEY $B_SECRET $B_BUCKET >"$WORK/B.yaml"

# ---- data sets, written straight into A's data dir ---------------------------------------
# Each object also gets s3s-fs's side file with its md5 as ETag; without it s3s-fs would
# re-read (md5) the whole file on every HEAD, GET and LIST entry.
if [[ $seeded == 1 ]]; then
    log "data sets already in place ($SEED_SPEC)"
else
    rm -rf "$WORK/a"; mkdir -p "$WORK/a/$A_BUCKET"
    log "writing data sets into A: $SEED_SPEC"
    python3 - "$WORK/a" "$A_BUCKET" "mixed=$MIXED_SPEC" "small=$SMALL_SPEC" <<'PY'
import base64, hashlib, json, os, sys
root, bucket, sets = sys.argv[1], sys.argv[2], sys.argv[3:]
b64 = lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")
for s in sets:
    name, spec = s.split("=", 1)
    for cls in spec.split():
        count, kib = map(int, cls.split(":"))
        size = kib * 1024
        for i in range(count):
            key = f"backup/{name}/{kib}k/{i:05d}.bin"
            path = os.path.join(root, bucket, key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            md5 = hashlib.md5()
            with open(path, "wb") as f:
                left = size
                while left:
                    n = min(left, 8 << 20)
                    buf = os.urandom(n)
                    md5.update(buf)
                    f.write(buf)
                    left -= n
            side = os.path.join(root, f".bucket-{b64(bucket)}.object-{b64(key)}.internal.json")
            with open(side, "w") as f:
                json.dump({"e_tag": md5.hexdigest()}, f)
PY
    echo "$SEED_SPEC" >"$WORK/a.seeded"
fi

# The seeded objects must look like uploaded ones: LIST, ETag (from the side file) and GET.
sanity_check() {
    local key="backup/small/64k/00000.bin" f="$WORK/a/$A_BUCKET/backup/small/64k/00000.bin"
    local want got listed
    want=$(md5sum <"$f" | cut -d' ' -f1)
    got=$(rcl cat "A:$A_BUCKET/$key" | md5sum | cut -d' ' -f1)
    # From the bucket root: naming a "directory" makes rclone HEAD it (s3s-fs: 500, retried).
    listed=$(rcl md5sum "A:$A_BUCKET" --disable ListR --include "/$key" | cut -d' ' -f1)
    [[ "$got" == "$want" && "$listed" == "$want" ]] ||
        die "seeded data not served right: file $want, GET $got, LIST ETag $listed"
    local n
    n=$(rcl lsf -R --files-only --disable ListR "A:$A_BUCKET" --include "/backup/small/**" | wc -l)
    [[ $n == "$SMALL_COUNT" ]] || die "LIST of backup/small shows $n objects, expected $SMALL_COUNT"
}
sanity_check
log "A serves the seeded data (LIST count, ETag = md5, GET bytes checked)"

# ---- measuring -------------------------------------------------------------------------
# CPU ticks (user+sys) both s3s-fs servers have used so far.
srv_ticks() {
    local t=0 p f
    for p in $PID_A $PID_B; do
        read -r -a f <"/proc/$p/stat"
        t=$((t + f[13] + f[14]))
    done
    echo $t
}

# run_measured OUT cmd...: runs cmd under /usr/bin/time with stdout/stderr in OUT.*;
# sets M_RC M_WALL M_USER M_SYS M_RSS_KB M_SRV (server CPU seconds during the run).
run_measured() {
    local out=$1; shift
    local t0 t1
    t0=$(srv_ticks)
    M_RC=0
    /usr/bin/time -f '%e %U %S %M' -o "$out.time" "$@" >"$out.stdout" 2>"$out.stderr" || M_RC=$?
    t1=$(srv_ticks)
    read -r M_WALL M_USER M_SYS M_RSS_KB < <(tail -n 1 "$out.time")
    M_SRV=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/hz}')
}

B_B64=$(printf %s "$B_BUCKET" | base64 | tr '+/' '-_' | tr -d '=\n')
clear_b() {
    rm -rf "$WORK/b/$B_BUCKET/backup"
    find "$WORK/b" -maxdepth 1 -type f \( -name ".bucket-$B_B64.object-*" -o -name '.upload-*' \
        -o -name '.upload_id-*' -o -name '.tmp.*' \) -delete
    local n
    n=$(rcl lsf -R --files-only --disable ListR "B:$B_BUCKET" | wc -l)
    [[ $n == 0 ]] || die "B still lists $n objects after clearing"
}

# verify_b SET: B holds the same files as A for the set (count, bytes, sample contents).
verify_b() {
    local set=$1 src="$WORK/a/$A_BUCKET/backup/$1" dst="$WORK/b/$B_BUCKET/backup/$1"
    [[ -d "$dst" ]] || { echo "missing"; return; }
    local cs cd bs bd
    cs=$(find "$src" -type f | wc -l); cd=$(find "$dst" -type f | wc -l)
    bs=$(du -sb --apparent-size "$src" | cut -f1); bd=$(du -sb --apparent-size "$dst" | cut -f1)
    if [[ $cs != "$cd" || $bs != "$bd" ]]; then echo "mismatch:$cd/$cs-files"; return; fi
    local f
    for f in $(cd "$src" && find . -type f -name '00000.bin'); do
        cmp -s "$src/$f" "$dst/$f" || { echo "mismatch:$f"; return; }
    done
    echo ok
}

# record SET TOOL RUN BYTES OBJECTS VERIFY EXTRA_JSON
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$M_RC" "$M_WALL" \
        "$M_USER" "$M_SYS" "$M_RSS_KB" "$M_SRV" "$4" "$5" "$6" "$7" >>"$RES/results.tsv"
    log "$1 $2 run $3: rc=$M_RC wall=${M_WALL}s cpu=${M_USER}u+${M_SYS}s rss=$((M_RSS_KB / 1024))MiB server-cpu=${M_SRV}s verify=$6"
}

RCLONE_COPY_FLAGS=(--transfers "$CONCURRENCY" --s3-chunk-size "$RCLONE_CHUNK"
    --s3-upload-cutoff "$RCLONE_CUTOFF" --s3-upload-concurrency "$RCLONE_UPLOAD_CONC"
    --disable ListR --s3-provider Other --s3-force-path-style -q)

set_bytes() {
    case $1 in
        mixed) echo "$MIXED_BYTES" ;;
        small) echo "$SMALL_BYTES" ;;
        *) du -sb --apparent-size "$WORK/a/$A_BUCKET/backup/$1" | cut -f1 ;;
    esac
}
set_count() {
    case $1 in
        mixed) echo "$MIXED_COUNT" ;;
        small) echo "$SMALL_COUNT" ;;
        *) find "$WORK/a/$A_BUCKET/backup/$1" -type f | wc -l ;;
    esac
}

# Raw legs, each alone: GET from A (download, crc32 in rclone: cheap) and PUT into B (from
# the local files that back A, hot in the page cache). The A-to-B copy cannot beat either.
raw_legs() {
    local set=$1 run bytes count
    bytes=$(set_bytes "$set"); count=$(set_count "$set")
    for run in $(seq "$RUNS"); do
        run_measured "$RES/$set-get-$run" "${RCLONE[@]}" hashsum crc32 --download --checkers "$CONCURRENCY" \
            --disable ListR -q "A:$A_BUCKET" --include "/backup/$set/**"
        local got
        got=$(wc -l <"$RES/$set-get-$run.stdout")
        [[ $M_RC == 0 && $got == "$count" ]] && v=ok || v="fail:$got-hashes"
        [[ $M_RC == 0 ]] || tail -n 20 "$RES/$set-get-$run.stderr" >&2 || true
        record "$set" raw-get "$run" "$bytes" "$count" "$v" '{}'
        clear_b
        run_measured "$RES/$set-put-$run" "${RCLONE[@]}" copy "$WORK/a/$A_BUCKET" "B:$B_BUCKET" \
            --include "/backup/$set/**" "${RCLONE_COPY_FLAGS[@]}"
        [[ $M_RC == 0 ]] || tail -n 20 "$RES/$set-put-$run.stderr" >&2 || true
        record "$set" raw-put "$run" "$bytes" "$count" "$(verify_b "$set")" '{}'
    done
    clear_b
}

run_ours() { # SET RUN [extra args...]
    local set=$1 run=$2; shift 2
    local out="$RES/${set//\//_}-ours-$run" v extra
    run_measured "$out" "$OURS_BIN" copy --from "$WORK/A.yaml" --to "$WORK/B.yaml" \
        --src-prefix "backup/$set" --dst-prefix "backup/$set" --json \
        --concurrency "$CONCURRENCY" --part-size "$PART_SIZE" "$@"
    extra=$(python3 - "$out.stdout" <<'PY'
import json, sys
doc = None
for line in open(sys.argv[1], errors="replace"):
    line = line.strip()
    if line.startswith("{"):
        try: doc = json.loads(line)
        except ValueError: pass
if doc is None:
    try: doc = json.load(open(sys.argv[1]))
    except Exception: doc = {}
print(json.dumps(doc, separators=(",", ":")))
PY
)
    v=$(verify_b "$set")
    if [[ $M_RC != 0 || $extra == '{}' ]]; then
        log "milvus-migrate copy failed (rc=$M_RC); stderr tail:"
        tail -n 20 "$out.stderr" >&2 || true
        v="fail-rc$M_RC:$v"
    fi
    record "$set" milvus-migrate "$run" "$(set_bytes "$set")" "$(set_count "$set")" "$v" "$extra"
}

run_rclone() { # SET RUN
    local set=$1 run=$2
    # From the bucket root with --include: copying A:bucket/prefix makes rclone HEAD the
    # prefix, which s3s-fs answers with 500 (retried for ~90 s).
    run_measured "$RES/$set-rclone-$run" "${RCLONE[@]}" copy "A:$A_BUCKET" "B:$B_BUCKET" \
        --include "/backup/$set/**" "${RCLONE_COPY_FLAGS[@]}"
    if [[ $M_RC != 0 ]]; then tail -n 20 "$RES/$set-rclone-$run.stderr" >&2 || true; fi
    record "$set" rclone "$run" "$(set_bytes "$set")" "$(set_count "$set")" "$(verify_b "$set")" '{}'
}

compare() { # SET
    local set=$1 run
    for run in $(seq "$RUNS"); do
        if [[ $DO_OURS == 1 ]]; then clear_b; run_ours "$set" "$run"; fi
        if [[ $DO_RCLONE == 1 ]]; then clear_b; run_rclone "$set" "$run"; fi
    done
    clear_b
}

rate_limited() {
    [[ $DO_OURS == 1 ]] || return 0
    local set=$BWLIMIT_SET
    clear_b
    local sets=("$set")
    [[ $QUICK == 1 ]] || sets+=("$BWLIMIT_SET_LARGE")
    for set in "${sets[@]}"; do
        log "rate-limited run: milvus-migrate --bwlimit $BWLIMIT on $set"
        # From outside: the bytes store A's server reads (rchar), every 0.25 s, so the rate
        # can be taken over the middle of the run, without start-up and the last completions.
        local samples="$RES/${set//\//_}-bwlimit.rchar"
        (while kill -0 "$PID_A" 2>/dev/null; do
            echo "$(date +%s.%N) $(awk '/^rchar/{print $2}' "/proc/$PID_A/io")"
            sleep 0.25
        done) >"$samples" &
        local sampler=$!
        run_ours "$set" bwlimit --bwlimit "$BWLIMIT"
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        clear_b
    done
}

# ---- run -------------------------------------------------------------------------------
echo "# copy_bench $(date -u +%FT%TZ) quick=$QUICK concurrency=$CONCURRENCY part=$PART_SIZE runs=$RUNS" \
     >"$RES/header.txt"
{
    echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work skews the figures)"
    echo "s3s-fs: $S3S_FS_BIN ($("$S3S_FS_BIN" --version 2>/dev/null))"
    echo "rclone: $(rclone version 2>/dev/null | head -1)"
    echo "milvus-migrate: $([[ $DO_OURS == 1 ]] && "$OURS_BIN" --version 2>/dev/null || echo skipped)"
    echo "sets: mixed=$MIXED_SPEC ($MIXED_COUNT objects, $MIXED_BYTES bytes); small=$SMALL_SPEC ($SMALL_COUNT objects, $SMALL_BYTES bytes) [count:KiB]"
} >>"$RES/header.txt"
clear_b
log "raw legs (mixed)"; raw_legs mixed
log "A->B copies (mixed)"; compare mixed
log "raw legs (small)"; raw_legs small
log "A->B copies (small)"; compare small
rate_limited

python3 - "$RES" "$BWLIMIT" <<'PY'
import json, statistics, sys
res, bwlimit = sys.argv[1], sys.argv[2]
print(open(f"{res}/header.txt").read().rstrip())
rows = []
for line in open(f"{res}/results.tsv"):
    f = line.rstrip("\n").split("\t")
    rows.append(dict(set=f[0], tool=f[1], run=f[2], rc=int(f[3]), wall=float(f[4]), user=float(f[5]),
                     sys=float(f[6]), rss=int(f[7]) / 1024, srv=float(f[8]), bytes=int(f[9]),
                     objects=int(f[10]), verify=f[11], extra=json.loads(f[12] or "{}")))

def metrics(rs):
    ok = [r for r in rs if r["rc"] == 0 and r["verify"] == "ok"]
    if not ok:
        return None
    med = lambda k: statistics.median(k(r) for r in ok)
    gb = ok[0]["bytes"] / 1e9
    return {
        "MB/s": med(lambda r: r["bytes"] / 1e6 / r["wall"]),
        "obj/s": med(lambda r: r["objects"] / r["wall"]),
        "CPU s/GB": med(lambda r: (r["user"] + r["sys"]) / gb),
        "srv CPU s/GB": med(lambda r: r["srv"] / gb),
        "RSS MiB": med(lambda r: r["rss"]),
        "wall s": med(lambda r: r["wall"]),
        "runs ok": f"{len(ok)}/{len(rs)}",
    }

cols = ["MB/s", "obj/s", "CPU s/GB", "srv CPU s/GB", "RSS MiB", "wall s", "runs ok"]
def table(title, entries):
    print(f"\n## {title}")
    print(f"{'':<26}" + "".join(f"{c:>14}" for c in cols))
    for name, m in entries:
        if m is None:
            print(f"{name:<26}{'(no successful run)':>28}")
            continue
        cell = lambda v: f"{v:>14.2f}" if isinstance(v, float) else f"{v:>14}"
        print(f"{name:<26}" + "".join(cell(m[c]) for c in cols))

for s in ("mixed", "small"):
    rs = [r for r in rows if r["set"] == s]
    if not rs:
        continue
    by = lambda t: metrics([r for r in rs if r["tool"] == t and r["run"] != "bwlimit"])
    ours, rcl = by("milvus-migrate"), by("rclone")
    entries = [("raw GET (A only)", by("raw-get")), ("raw PUT (B only)", by("raw-put")),
               ("milvus-migrate A->B", ours), ("rclone A->B", rcl)]
    if ours and rcl:
        entries.append(("ratio ours/rclone", {c: (ours[c] / rcl[c] if c != "runs ok" else "")
                                              for c in cols}))
    table(f"{s}: {rs[0]['objects']} objects, {rs[0]['bytes'] / 1e6:.1f} MB (medians)", entries)
    for r in rs:
        if r["verify"] != "ok" or r["rc"] != 0:
            print(f"  ! {r['tool']} run {r['run']}: rc={r['rc']} verify={r['verify']}")
    for r in rs:
        if r["tool"] == "milvus-migrate" and r["extra"]:
            e = r["extra"]
            print(f"  milvus-migrate run {r['run']}: " + ", ".join(
                f"{k}={e.get(k)}" for k in ("objects_copied", "objects_skipped", "objects_failed",
                                            "bytes_copied", "retries", "duration_secs")))

for r in [r for r in rows if r["run"] == "bwlimit"]:
    units = {"KiB": 1024, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 1e3, "MB": 1e6, "GB": 1e9, "B": 1}
    num = bwlimit.split("/")[0]
    unit = next(u for u in units if num.endswith(u))
    limit = float(num[: -len(unit)]) * units[unit]
    e = r["extra"]
    print(f"\n## rate limit {bwlimit} ({limit / 1e6:.1f} MB/s), set {r['set']}")
    if e.get("bytes_copied") and e.get("duration_secs"):
        rate = e["bytes_copied"] / e["duration_secs"]
        print(f"achieved (bytes_copied/duration_secs): {rate / 1e6:.1f} MB/s = {rate / limit:.3f} x limit")
    if e.get("bytes_copied") and e.get("transfer_secs"):
        rate = e["bytes_copied"] / e["transfer_secs"]
        print(f"achieved while transferring (bytes_copied/transfer_secs, listing and planning "
              f"excluded): {rate / 1e6:.1f} MB/s = {rate / limit:.3f} x limit")
    print(f"achieved (set bytes / wall {r['wall']:.1f} s): {r['bytes'] / r['wall'] / 1e6:.1f} MB/s "
          f"= {r['bytes'] / r['wall'] / limit:.3f} x limit; rc={r['rc']} verify={r['verify']}")
    try:
        pts = [tuple(map(float, l.split())) for l in
               open(f"{res}/{r['set'].replace('/', '_')}-bwlimit.rchar") if len(l.split()) == 2]
    except OSError:
        pts = []
    # Samples while bytes moved; the rate over their middle 80% (time-wise).
    moving = [p for i, p in enumerate(pts) if i and p[1] > pts[i - 1][1] + 1e6]
    if len(moving) > 10:
        t0, t1 = moving[0][0], moving[-1][0]
        lo, hi = t0 + 0.1 * (t1 - t0), t0 + 0.9 * (t1 - t0)
        mid = [p for p in pts if lo <= p[0] <= hi]
        rate = (mid[-1][1] - mid[0][1]) / (mid[-1][0] - mid[0][0])
        print(f"steady rate (bytes read by store A's server, middle 80% of {t1 - t0:.1f} s): "
              f"{rate / 1e6:.1f} MB/s = {rate / limit:.3f} x limit")
PY
log "raw outputs in $RES"
