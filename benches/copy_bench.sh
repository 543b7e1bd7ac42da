#!/usr/bin/env bash
# Copy throughput of milvus-migrate next to rclone and MinIO's client mc (`mc mirror` and
# `mc cp --recursive`, what the seed's users run by hand), between two local S3 stores: two
# real MinIO servers (the default, as in the seed) or two s3s-fs servers.
#
#   benches/copy_bench.sh [--quick] [--store minio|s3s-fs] [--work-dir DIR] [--runs N]
#                         [--concurrency N] [--no-tuned] [--no-build]
#                         [--skip-ours] [--skip-rclone] [--skip-mc] [--only-rate-limit]
#
#   --quick        small sets, 1 run each unless --runs: a smoke run (~1-2 min)
#   --store        minio (default) or s3s-fs
#   --work-dir     where the stores keep their data (default /dev/shm/mm-bench when /dev/shm
#                  is a tmpfs with room, else /tmp/mm-bench; the full sets need ~7 GB free
#                  there with MinIO: local source files, store A, one copy in B; ~4.5 GB with
#                  s3s-fs, whose data dir is the source)
#   --runs         runs per tool and set; the tables show medians (default 3)
#   --concurrency  objects in flight in the raw legs and the tuned rows (default 8)
#   --no-tuned     leave out the extra rows with tuned flags (ours and rclone)
#   --no-build     use target/release/milvus-migrate as it is
#   --skip-ours / --skip-rclone / --skip-mc   leave one tool out
#   --only-rate-limit   only the rate-limited runs of milvus-migrate
#
# The main rows run every tool with its default settings; the "tuned" rows (ours and rclone
# with --concurrency/--transfers N and 16 MiB parts) are extra and labelled as such. mc has no
# flag for its parallelism (it adds workers while the rate grows), so it has no tuned row.
# Environment: MINIO_BIN, MC_BIN, S3S_FS_BIN (else scripts/env.sh's cache paths), MM_BENCH_BIN
# (binary under test, default target/release/milvus-migrate), CARGO_BUILD_JOBS for the build.
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
# The tuned rows (and the raw legs): these values, not the tools' defaults.
PART_SIZE=16MiB            # ours --part-size
RCLONE_CHUNK=16M           # rclone --s3-chunk-size (same bytes as PART_SIZE)
RCLONE_CUTOFF=32M          # rclone --s3-upload-cutoff
RCLONE_UPLOAD_CONC=4       # rclone --s3-upload-concurrency (parts in flight per object)
BWLIMIT=50MiB/s            # rate-limited run: limit, and the set it copies
BWLIMIT_SET=mixed          # 2.04 GB at 50 MiB/s lasts ~39 s
# ... and the part of it this machine copies faster than the limit.
BWLIMIT_SET_LARGE=mixed/262144k
QUICK_BWLIMIT=20MiB/s      # quick mixed set (~231 MB) lasts ~11 s
# Memory-backed by default: on a disk file system the stores' cost of creating files after
# the previous run's were deleted (ext4 skips recently freed inodes) swamps what the tools do
# and varies from run to run. See benches/README.md.
WORK=""
STORE=minio
BUILD=1
DO_OURS=1
DO_RCLONE=1
DO_MC=1
TUNED=1
QUICK=0
RUNS_SET=0
ONLY_RATE=0

while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --store) STORE=$2; shift ;;
        --work-dir) WORK=$2; shift ;;
        --concurrency) CONCURRENCY=$2; shift ;;
        --runs) RUNS=$2; RUNS_SET=1; shift ;;
        --no-tuned) TUNED=0 ;;
        --no-build) BUILD=0 ;;
        --skip-ours) DO_OURS=0 ;;
        --skip-rclone) DO_RCLONE=0 ;;
        --skip-mc) DO_MC=0 ;;
        --only-rate-limit) ONLY_RATE=1 ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        *) echo "copy_bench: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[[ $STORE == minio || $STORE == s3s-fs ]] || { echo "copy_bench: --store minio|s3s-fs, got $STORE" >&2; exit 2; }
if [[ $QUICK == 1 ]]; then
    MIXED_SPEC=$QUICK_MIXED_SPEC; SMALL_SPEC=$QUICK_SMALL_SPEC; BWLIMIT=$QUICK_BWLIMIT
    [[ $RUNS_SET == 1 ]] || RUNS=1
fi

if [[ -z $WORK ]]; then
    WORK=/tmp/mm-bench
    if [[ "$(stat -f -c %T /dev/shm 2>/dev/null)" == tmpfs ]] &&
        (($(df --output=avail -B1 /dev/shm | tail -1) > 8 * 1024 * 1024 * 1024)); then
        WORK=/dev/shm/mm-bench
    fi
fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/versions.sh
source "$REPO/scripts/versions.sh"
OURS_BIN="${MM_BENCH_BIN:-$REPO/target/release/milvus-migrate}"
S3S_FS_BIN="${S3S_FS_BIN:-$DEFAULT_S3S_FS_BIN}"
MINIO_BIN="${MINIO_BIN:-$DEFAULT_MINIO_BIN}"
MC_BIN="${MC_BIN:-$DEFAULT_MC_BIN}"
A_KEY=bench-a A_SECRET=bench-a-secret A_BUCKET=bench-a
B_KEY=bench-b B_SECRET=bench-b-secret B_BUCKET=bench-b
CLK_TCK=$(getconf CLK_TCK)

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }
die() { echo "copy_bench: $*" >&2; exit 1; }

# ---- tools -----------------------------------------------------------------------------
if [[ $STORE == s3s-fs && $DO_MC == 1 ]]; then
    # mc stats the source prefix first, which s3s-fs answers with 500 (HEAD of a "directory").
    log "mc cannot copy out of s3s-fs (its HEAD of the source prefix gets a 500): no mc rows; --store minio has them"
    DO_MC=0
fi
NEED_MC=0
[[ $STORE == minio || $DO_MC == 1 ]] && NEED_MC=1
missing=0
command -v rclone >/dev/null && [[ -x /usr/bin/time ]] || missing=1
if [[ $STORE == s3s-fs ]]; then [[ -x "$S3S_FS_BIN" ]] || missing=1; fi
if [[ $STORE == minio ]]; then [[ -x "$MINIO_BIN" ]] || missing=1; fi
if [[ $NEED_MC == 1 ]]; then [[ -x "$MC_BIN" ]] || missing=1; fi
if [[ $missing == 1 ]]; then
    log "installing missing tools (scripts/install-deps.sh --with-rclone --without-milvus)"
    bash "$REPO/scripts/install-deps.sh" --with-rclone --without-milvus >&2
fi
if [[ $STORE == s3s-fs ]]; then [[ -x "$S3S_FS_BIN" ]] || die "no s3s-fs at $S3S_FS_BIN"; fi
if [[ $STORE == minio ]]; then [[ -x "$MINIO_BIN" ]] || die "no minio at $MINIO_BIN"; fi
if [[ $NEED_MC == 1 ]]; then [[ -x "$MC_BIN" ]] || die "no mc at $MC_BIN"; fi

if [[ $DO_OURS == 1 && $BUILD == 1 ]]; then
    log "cargo build --release (in $REPO)"
    if ! (cd "$REPO" && cargo build --release --locked --bin milvus-migrate) >"${TMPDIR:-/tmp}/mm-bench-build.log" 2>&1; then
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
SET_BYTES=$((MIXED_BYTES + SMALL_BYTES))

# Where each store keeps its data, and SRC: a local directory holding the sets as plain files
# (backup/SET/...), the source of truth for the checks. s3s-fs serves plain files, so the sets
# are written straight into A's data dir and SRC is that bucket directory. MinIO has its own
# on-disk format: the sets are generated into WORK/src and uploaded once with `mc mirror`.
if [[ $STORE == s3s-fs ]]; then
    DATA_A="$WORK/a" DATA_B="$WORK/b" SRC="$WORK/a/$A_BUCKET"
    src_seeded=0 a_seeded=0
    [[ -f "$WORK/a.seeded" && "$(cat "$WORK/a.seeded")" == "$SEED_SPEC" ]] && src_seeded=1 a_seeded=1
    # Source sets (unless there) + one copy in B at a time, + 10%.
    need=$(( SET_BYTES * (2 - a_seeded) * 11 / 10 ))
else
    DATA_A="$WORK/minio-a" DATA_B="$WORK/minio-b" SRC="$WORK/src"
    src_seeded=0 a_seeded=0
    [[ -f "$WORK/src.seeded" && "$(cat "$WORK/src.seeded")" == "$SEED_SPEC" ]] && src_seeded=1
    [[ $src_seeded == 1 && -f "$WORK/minio-a.seeded" && "$(cat "$WORK/minio-a.seeded")" == "$SEED_SPEC" ]] && a_seeded=1
    # Local source (unless there) + store A (unless there) + one copy in B, + 10%.
    need=$(( SET_BYTES * (3 - src_seeded - a_seeded) * 11 / 10 ))
fi
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

# Two free loopback ports, each with the next one free too (MinIO's console takes port + 1).
read -r PORT_A PORT_B < <(python3 -c '
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
got = []
while len(got) < 2:
    p = random.randrange(30000, 60000, 2)
    if free(p) and free(p + 1) and p not in got:
        got.append(p)
print(*got)')

if [[ $a_seeded == 0 ]]; then rm -rf "$DATA_A" "$WORK/a.seeded" "$WORK/minio-a.seeded"; fi
rm -rf "$DATA_B"
start_store() { # name port key secret bucket data; the pid is in $!
    local name=$1 port=$2 key=$3 secret=$4 bucket=$5 data=$6
    if [[ $STORE == s3s-fs ]]; then
        mkdir -p "$data/$bucket"
        "$S3S_FS_BIN" --host 127.0.0.1 --port "$port" --access-key "$key" --secret-key "$secret" \
            "$data" </dev/null >"$WORK/$name.log" 2>&1 &
    else
        mkdir -p "$data"
        MINIO_ROOT_USER=$key MINIO_ROOT_PASSWORD=$secret MINIO_BROWSER=off MINIO_UPDATE=off \
            MINIO_CI_CD=1 "$MINIO_BIN" server --quiet --address "127.0.0.1:$port" \
            --console-address "127.0.0.1:$((port + 1))" "$data" </dev/null >"$WORK/$name.log" 2>&1 &
    fi
}
wait_ready() { # name port pid
    for _ in $(seq 300); do
        if [[ $STORE == minio ]]; then
            curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$2/minio/health/live" && return 0
        elif (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
            return 0
        fi
        kill -0 "$3" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$WORK/$1.log" >&2
    die "store $1 did not come up on port $2"
}
start_store a "$PORT_A" $A_KEY $A_SECRET $A_BUCKET "$DATA_A"; PID_A=$!
start_store b "$PORT_B" $B_KEY $B_SECRET $B_BUCKET "$DATA_B"; PID_B=$!
wait_ready a "$PORT_A" "$PID_A"
wait_ready b "$PORT_B" "$PID_B"
log "$STORE store A http://127.0.0.1:$PORT_A (pid $PID_A), store B http://127.0.0.1:$PORT_B (pid $PID_B), data in $WORK"

# Plain-http endpoints: rclone refuses them while AWS_CA_BUNDLE is set (LoadCustomCABundleError),
# and mc is kept from it too.
unset AWS_CA_BUNDLE
export RCLONE_CONFIG="$WORK/rclone.conf"
: >"$RCLONE_CONFIG"
RCLONE_PROVIDER=Other
[[ $STORE == minio ]] && RCLONE_PROVIDER=Minio
export RCLONE_CONFIG_A_TYPE=s3 RCLONE_CONFIG_A_PROVIDER=$RCLONE_PROVIDER RCLONE_CONFIG_A_FORCE_PATH_STYLE=true
export RCLONE_CONFIG_A_ENDPOINT="http://127.0.0.1:$PORT_A"
export RCLONE_CONFIG_A_ACCESS_KEY_ID=$A_KEY RCLONE_CONFIG_A_SECRET_ACCESS_KEY=$A_SECRET
export RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=$RCLONE_PROVIDER RCLONE_CONFIG_B_FORCE_PATH_STYLE=true
export RCLONE_CONFIG_B_ENDPOINT="http://127.0.0.1:$PORT_B"
export RCLONE_CONFIG_B_ACCESS_KEY_ID=$B_KEY RCLONE_CONFIG_B_SECRET_ACCESS_KEY=$B_SECRET
RCLONE=(rclone)
rcl() { "${RCLONE[@]}" "$@"; }
# mc reads its aliases from MC_HOST_<alias>; its config dir is ours, not ~/.mc.
export MC_HOST_a="http://$A_KEY:$A_SECRET@127.0.0.1:$PORT_A"
export MC_HOST_b="http://$B_KEY:$B_SECRET@127.0.0.1:$PORT_B"
export MC_UPDATE=off
MC=("$MC_BIN" --config-dir "$WORK/.mc")
mcc() { "${MC[@]}" "$@"; }

if [[ $STORE == minio ]]; then
    mcc mb --quiet --ignore-existing "a/$A_BUCKET" "b/$B_BUCKET" >/dev/null
fi

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

# ---- data sets -------------------------------------------------------------------------
# gen_sets DIR [SIDE_ROOT BUCKET]: random objects under DIR/backup/SET/<KiB>k/<n>.bin; with
# SIDE_ROOT, also s3s-fs's side file per object with its md5 as ETag (without it s3s-fs would
# re-read (md5) the whole file on every HEAD, GET and LIST entry).
gen_sets() {
    python3 - "$1" "${2:-}" "${3:-}" "mixed=$MIXED_SPEC" "small=$SMALL_SPEC" <<'PY'
import base64, hashlib, json, os, sys
root, side_root, bucket, sets = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
b64 = lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")
for s in sets:
    name, spec = s.split("=", 1)
    for cls in spec.split():
        count, kib = map(int, cls.split(":"))
        size = kib * 1024
        for i in range(count):
            key = f"backup/{name}/{kib}k/{i:05d}.bin"
            path = os.path.join(root, key)
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
            if side_root:
                side = os.path.join(side_root, f".bucket-{b64(bucket)}.object-{b64(key)}.internal.json")
                with open(side, "w") as f:
                    json.dump({"e_tag": md5.hexdigest()}, f)
PY
}

if [[ $STORE == s3s-fs ]]; then
    if [[ $a_seeded == 1 ]]; then
        log "data sets already in place ($SEED_SPEC)"
    else
        log "writing data sets into A's data dir: $SEED_SPEC"
        mkdir -p "$SRC"
        gen_sets "$SRC" "$DATA_A" "$A_BUCKET"
        echo "$SEED_SPEC" >"$WORK/a.seeded"
    fi
else
    if [[ $src_seeded == 0 ]]; then
        log "generating data sets in $SRC: $SEED_SPEC"
        rm -rf "$SRC"; mkdir -p "$SRC"
        gen_sets "$SRC"
        echo "$SEED_SPEC" >"$WORK/src.seeded"
    fi
    if [[ $a_seeded == 1 ]]; then
        log "data sets already in store A ($SEED_SPEC)"
    else
        # Not measured. One PUT per object, so every ETag is the object's MD5, as for the
        # binlogs Milvus writes and milvus-backup copies.
        log "uploading the data sets into store A (mc mirror --disable-multipart, not measured)"
        mcc mirror --quiet --disable-multipart "$SRC/backup" "a/$A_BUCKET/backup" >"$RES/seed-upload.log"
        echo "$SEED_SPEC" >"$WORK/minio-a.seeded"
    fi
fi

# The seeded objects must look like uploaded ones: LIST count, ETag = md5, GET bytes.
sanity_check() {
    local key="backup/small/64k/00000.bin" want got etag n
    want=$(md5sum <"$SRC/$key" | cut -d' ' -f1)
    if [[ $STORE == s3s-fs ]]; then
        got=$(rcl cat "A:$A_BUCKET/$key" | md5sum | cut -d' ' -f1)
        # From the bucket root: naming a "directory" makes rclone HEAD it (s3s-fs: 500, retried).
        etag=$(rcl md5sum "A:$A_BUCKET" --disable ListR --include "/$key" | cut -d' ' -f1)
        n=$(rcl lsf -R --files-only --disable ListR "A:$A_BUCKET" --include "/backup/small/**" | wc -l)
    else
        got=$(mcc cat "a/$A_BUCKET/$key" | md5sum | cut -d' ' -f1)
        etag=$(mcc stat --json "a/$A_BUCKET/$key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["etag"])')
        n=$(mcc ls --recursive "a/$A_BUCKET/backup/small/" | wc -l)
    fi
    [[ "$got" == "$want" && "$etag" == "$want" ]] ||
        die "seeded data not served right: file $want, GET $got, ETag $etag"
    [[ $n == "$SMALL_COUNT" ]] || die "LIST of backup/small shows $n objects, expected $SMALL_COUNT"
}
sanity_check
log "A serves the seeded data (LIST count, ETag = md5, GET bytes checked)"

# ---- measuring -------------------------------------------------------------------------
# CPU ticks (user+sys) both store servers have used so far.
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
    echo "$*" >"$out.cmd"
    t0=$(srv_ticks)
    M_RC=0
    /usr/bin/time -f '%e %U %S %M' -o "$out.time" "$@" >"$out.stdout" 2>"$out.stderr" || M_RC=$?
    t1=$(srv_ticks)
    read -r M_WALL M_USER M_SYS M_RSS_KB < <(tail -n 1 "$out.time")
    M_SRV=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/hz}')
}

B_B64=$(printf %s "$B_BUCKET" | base64 | tr '+/' '-_' | tr -d '=\n')
clear_b() {
    local n
    if [[ $STORE == s3s-fs ]]; then
        rm -rf "$DATA_B/$B_BUCKET/backup"
        find "$DATA_B" -maxdepth 1 -type f \( -name ".bucket-$B_B64.object-*" -o -name '.upload-*' \
            -o -name '.upload_id-*' -o -name '.tmp.*' \) -delete
        n=$(rcl lsf -R --files-only --disable ListR "B:$B_BUCKET" | wc -l)
    else
        mcc rm --recursive --force "b/$B_BUCKET/backup/" >/dev/null 2>&1 || true
        mcc rm --incomplete --recursive --force "b/$B_BUCKET/" >/dev/null 2>&1 || true
        n=$(mcc ls --recursive "b/$B_BUCKET/" | wc -l)
        # MinIO moves deleted data to .minio.sys/tmp/.trash and purges it in the background,
        # which lags far behind a benchmark's deletes: on a tmpfs the trash of a few full runs
        # filled the machine's memory (18 GB), and the next runs crawled. It holds only what
        # was deleted, so it is emptied here, before the next run.
        rm -rf "$DATA_B/.minio.sys/tmp/.trash" 2>/dev/null || true
    fi
    [[ $n == 0 ]] || die "B still lists $n objects after clearing"
}

# verify_b SET: B holds what SRC holds for the set: object count, total bytes, and the first
# object of every size class byte for byte.
verify_b() {
    local set=$1 src="$SRC/backup/$1"
    local cs bs cd bd f
    cs=$(set_count "$set")
    bs=$(set_bytes "$set")
    if [[ $STORE == s3s-fs ]]; then
        local dst="$DATA_B/$B_BUCKET/backup/$set"
        [[ -d "$dst" ]] || { echo "missing"; return; }
        cd=$(find "$dst" -type f | wc -l)
        bd=$(find "$dst" -type f -printf '%s\n' | awk '{t += $1} END {print t + 0}')
    else
        read -r cd bd < <(mcc ls --recursive --json "b/$B_BUCKET/backup/$set/" | python3 -c '
import json, sys
n = b = 0
for line in sys.stdin:
    d = json.loads(line)
    if d.get("type") == "file":
        n += 1; b += d["size"]
print(n, b)')
    fi
    if [[ $cs != "$cd" || $bs != "$bd" ]]; then echo "mismatch:$cd/$cs-objects,$bd/$bs-bytes"; return; fi
    for f in $(cd "$src" && find . -type f -name '00000.bin'); do
        f=${f#./}
        if [[ $STORE == s3s-fs ]]; then
            cmp -s "$src/$f" "$DATA_B/$B_BUCKET/backup/$set/$f" || { echo "mismatch:$f"; return; }
        else
            mcc cat "b/$B_BUCKET/backup/$set/$f" | cmp -s - "$src/$f" || { echo "mismatch:$f"; return; }
        fi
    done
    echo ok
}

# record SET TOOL RUN BYTES OBJECTS VERIFY EXTRA_JSON
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$M_RC" "$M_WALL" \
        "$M_USER" "$M_SYS" "$M_RSS_KB" "$M_SRV" "$4" "$5" "$6" "$7" >>"$RES/results.tsv"
    log "$1 $2 run $3: rc=$M_RC wall=${M_WALL}s cpu=${M_USER}u+${M_SYS}s rss=$((M_RSS_KB / 1024))MiB server-cpu=${M_SRV}s verify=$6"
}

# rclone's flags in the tuned rows and the raw legs.
RCLONE_TUNED=(--transfers "$CONCURRENCY" --s3-chunk-size "$RCLONE_CHUNK"
    --s3-upload-cutoff "$RCLONE_CUTOFF" --s3-upload-concurrency "$RCLONE_UPLOAD_CONC")
# What rclone needs to work on s3s-fs at all (not tuning): copy from the bucket root with
# --include, because naming the prefix makes rclone HEAD it, which s3s-fs answers with 500
# (retried for ~90 s); --disable ListR, because s3s-fs treats an empty `delimiter=` as one.
rclone_paths() { # SET: sets RPATHS to the copy's source, destination and what s3s-fs needs
    if [[ $STORE == s3s-fs ]]; then
        RPATHS=("A:$A_BUCKET" "B:$B_BUCKET" --include "/backup/$1/**" --disable ListR)
    else
        RPATHS=("A:$A_BUCKET/backup/$1" "B:$B_BUCKET/backup/$1")
    fi
}

set_bytes() { find "$SRC/backup/$1" -type f -printf '%s\n' | awk '{t += $1} END {print t + 0}'; }
set_count() { find "$SRC/backup/$1" -type f | wc -l; }

# tool_cmd TOOL SET: sets CMD to the command line of one A-to-B copy of the set.
tool_cmd() {
    local set=$2
    case $1 in
        milvus-migrate)
            CMD=("$OURS_BIN" copy --from "$WORK/A.yaml" --to "$WORK/B.yaml"
                --src-prefix "backup/$set" --dst-prefix "backup/$set" --json) ;;
        milvus-migrate-tuned)
            CMD=("$OURS_BIN" copy --from "$WORK/A.yaml" --to "$WORK/B.yaml"
                --src-prefix "backup/$set" --dst-prefix "backup/$set" --json
                --concurrency "$CONCURRENCY" --part-size "$PART_SIZE") ;;
        rclone)
            rclone_paths "$set"; CMD=("${RCLONE[@]}" copy "${RPATHS[@]}" -q) ;;
        rclone-tuned)
            rclone_paths "$set"; CMD=("${RCLONE[@]}" copy "${RPATHS[@]}" -q "${RCLONE_TUNED[@]}") ;;
        mc-mirror)
            CMD=("${MC[@]}" mirror --quiet "a/$A_BUCKET/backup/$set" "b/$B_BUCKET/backup/$set") ;;
        mc-cp)
            CMD=("${MC[@]}" cp --recursive --quiet "a/$A_BUCKET/backup/$set/" "b/$B_BUCKET/backup/$set/") ;;
        *) die "unknown tool $1" ;;
    esac
}

# The report of a milvus-migrate run (its --json document), compact, or {}.
ours_json() {
    python3 - "$1" <<'PY'
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
}

run_tool() { # TOOL SET RUN [extra args...]
    local tool=$1 set=$2 run=$3; shift 3
    local out="$RES/${set//\//_}-$tool-$run" v extra='{}'
    tool_cmd "$tool" "$set"
    run_measured "$out" "${CMD[@]}" "$@"
    [[ $tool == milvus-migrate* ]] && extra=$(ours_json "$out.stdout")
    v=$(verify_b "$set")
    if [[ $M_RC != 0 ]]; then
        log "$tool failed (rc=$M_RC); stderr tail:"
        tail -n 20 "$out.stderr" >&2 || true
        v="fail-rc$M_RC:$v"
    fi
    record "$set" "$tool" "$run" "$(set_bytes "$set")" "$(set_count "$set")" "$v" "$extra"
}

# Raw legs, each alone, rclone as the client with the tuned flags: GET from A (download,
# crc32: cheap) and PUT into B from the local source files (hot in the page cache).
raw_legs() {
    local set=$1 run bytes count got v
    bytes=$(set_bytes "$set"); count=$(set_count "$set")
    for run in $(seq "$RUNS"); do
        local get_path=("A:$A_BUCKET/backup/$set")
        [[ $STORE == s3s-fs ]] && get_path=("A:$A_BUCKET" --include "/backup/$set/**" --disable ListR)
        run_measured "$RES/$set-get-$run" "${RCLONE[@]}" hashsum crc32 --download \
            --checkers "$CONCURRENCY" -q "${get_path[@]}"
        got=$(wc -l <"$RES/$set-get-$run.stdout")
        [[ $M_RC == 0 && $got == "$count" ]] && v=ok || v="fail:$got-hashes"
        [[ $M_RC == 0 ]] || tail -n 20 "$RES/$set-get-$run.stderr" >&2 || true
        record "$set" raw-get "$run" "$bytes" "$count" "$v" '{}'
        clear_b
        local put_src=("$SRC/backup/$set" "B:$B_BUCKET/backup/$set")
        [[ $STORE == s3s-fs ]] && put_src=("$SRC" "B:$B_BUCKET" --include "/backup/$set/**" --disable ListR)
        run_measured "$RES/$set-put-$run" "${RCLONE[@]}" copy "${put_src[@]}" -q "${RCLONE_TUNED[@]}"
        [[ $M_RC == 0 ]] || tail -n 20 "$RES/$set-put-$run.stderr" >&2 || true
        record "$set" raw-put "$run" "$bytes" "$count" "$(verify_b "$set")" '{}'
    done
    clear_b
}

TOOLS=()
[[ $DO_OURS == 1 ]] && TOOLS+=(milvus-migrate)
[[ $DO_RCLONE == 1 ]] && TOOLS+=(rclone)
[[ $DO_MC == 1 ]] && TOOLS+=(mc-mirror mc-cp)
[[ $TUNED == 1 && $DO_OURS == 1 ]] && TOOLS+=(milvus-migrate-tuned)
[[ $TUNED == 1 && $DO_RCLONE == 1 ]] && TOOLS+=(rclone-tuned)

# The tools take turns within each run (ours, rclone, mc mirror, mc cp, tuned rows).
compare() { # SET
    local set=$1 run tool
    for run in $(seq "$RUNS"); do
        for tool in "${TOOLS[@]}"; do clear_b; run_tool "$tool" "$set" "$run"; done
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
        # From outside, every 0.25 s, so the rate can be taken over the middle of the run,
        # without start-up and the last completions: the bytes s3s-fs A reads from its files
        # (4 KiB at a time, as the client drains them), or with MinIO the bytes B's server
        # receives (MinIO A reads ahead of the client in large bursts).
        local samples="$RES/${set//\//_}-bwlimit.io"
        (while kill -0 "$PID_A" 2>/dev/null; do
            echo "$(date +%s.%N) $(awk '$1 == "rchar:" {print $2}' "/proc/$PID_A/io") $(awk '$1 == "rchar:" {print $2}' "/proc/$PID_B/io")"
            sleep 0.25
        done) >"$samples" &
        local sampler=$!
        run_tool milvus-migrate "$set" bwlimit --bwlimit "$BWLIMIT"
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        clear_b
    done
}

# ---- run -------------------------------------------------------------------------------
echo "# copy_bench $(date -u +%FT%TZ) store=$STORE quick=$QUICK runs=$RUNS (tuned rows and raw legs: concurrency=$CONCURRENCY part=$PART_SIZE)" \
     >"$RES/header.txt"
{
    echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work skews the figures)"
    echo "commit: $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null)$(cd "$REPO" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' + uncommitted changes in src/Cargo'); work dir $WORK ($(stat -f -c %T "$WORK"))"
    if [[ $STORE == s3s-fs ]]; then
        echo "stores: s3s-fs $("$S3S_FS_BIN" --version 2>/dev/null) ($S3S_FS_BIN)"
    else
        echo "stores: MinIO $("$MINIO_BIN" --version 2>/dev/null | head -1 | sed 's/^minio version //') ($MINIO_BIN)"
    fi
    echo "rclone: $(rclone version 2>/dev/null | head -1)"
    [[ $NEED_MC == 1 ]] && echo "mc: $("$MC_BIN" --version 2>/dev/null | head -1 | sed 's/^mc version //') ($MC_BIN)"
    echo "milvus-migrate: $([[ $DO_OURS == 1 ]] && echo "$("$OURS_BIN" --version 2>/dev/null), $OURS_BIN built $(date -u -r "$OURS_BIN" +%FT%TZ)" || echo skipped)"
    echo "sets: mixed=$MIXED_SPEC ($MIXED_COUNT objects, $MIXED_BYTES bytes); small=$SMALL_SPEC ($SMALL_COUNT objects, $SMALL_BYTES bytes) [count:KiB]"
} >>"$RES/header.txt"
clear_b
if [[ $ONLY_RATE == 0 ]]; then
    log "raw legs (mixed)"; raw_legs mixed
    log "A->B copies (mixed): ${TOOLS[*]}"; compare mixed
    log "raw legs (small)"; raw_legs small
    log "A->B copies (small): ${TOOLS[*]}"; compare small
fi
rate_limited

python3 - "$RES" "$BWLIMIT" "$CONCURRENCY" "$PART_SIZE" "$STORE" <<'PY'
import json, statistics, sys
res, bwlimit, conc, part, store = sys.argv[1:6]
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
        "peak RSS": max(r["rss"] for r in ok),
        "wall s": med(lambda r: r["wall"]),
        "runs ok": f"{len(ok)}/{len(rs)}",
    }

cols = ["MB/s", "obj/s", "CPU s/GB", "srv CPU s/GB", "RSS MiB", "peak RSS", "wall s", "runs ok"]
W = 40
def table(title, entries):
    print(f"\n## {title}")
    print(f"{'':<{W}}" + "".join(f"{c:>13}" for c in cols))
    for name, m in entries:
        if m is None:
            print(f"{name:<{W}}{'(no successful run)':>26}")
            continue
        cell = lambda v: f"{v:>13.2f}" if isinstance(v, float) else f"{v:>13}"
        print(f"{name:<{W}}" + "".join(cell(m.get(c, "")) for c in cols))

LABELS = [
    ("raw-get", "raw GET (A only, rclone, tuned)"),
    ("raw-put", "raw PUT (B only, rclone, tuned)"),
    ("milvus-migrate", "milvus-migrate copy (defaults)"),
    ("rclone", "rclone copy (defaults)"),
    ("mc-mirror", "mc mirror (defaults)"),
    ("mc-cp", "mc cp --recursive (defaults)"),
    ("milvus-migrate-tuned", f"tuned: milvus-migrate -c{conc} {part}"),
    ("rclone-tuned", f"tuned: rclone --transfers {conc} 16M"),
]
ratio = lambda a, b: {c: (a[c] / b[c] if c not in ("runs ok",) else "") for c in cols}
goal_lines = []
for s in ("mixed", "small"):
    rs = [r for r in rows if r["set"] == s]
    if not rs:
        continue
    by = {t: metrics([r for r in rs if r["tool"] == t and r["run"] != "bwlimit"]) for t, _ in LABELS}
    entries = [(label, by[t]) for t, label in LABELS if any(r["tool"] == t for r in rs)]
    ours = by["milvus-migrate"]
    for peer, label in (("rclone", "rclone"), ("mc-mirror", "mc mirror"), ("mc-cp", "mc cp -r")):
        if ours and by[peer]:
            entries.append((f"ratio ours/{label} (defaults)", ratio(ours, by[peer])))
    if by["milvus-migrate-tuned"] and by["rclone-tuned"]:
        entries.append(("ratio tuned ours/tuned rclone", ratio(by["milvus-migrate-tuned"], by["rclone-tuned"])))
    table(f"{s}: {rs[0]['objects']} objects, {rs[0]['bytes'] / 1e6:.1f} MB (medians; peak RSS = max over runs)", entries)
    for r in rs:
        if r["verify"] != "ok" or r["rc"] != 0:
            print(f"  ! {r['tool']} run {r['run']}: rc={r['rc']} verify={r['verify']}")
    for r in rs:
        if r["tool"].startswith("milvus-migrate") and r["extra"]:
            e = r["extra"]
            print(f"  {r['tool']} run {r['run']}: " + ", ".join(
                f"{k}={e.get(k)}" for k in ("objects_copied", "objects_skipped", "objects_failed",
                                            "bytes_copied", "retries", "duration_secs")))
    if ours:
        peers = [(l, by[p]) for p, l in (("rclone", "rclone"), ("mc-mirror", "mc mirror"), ("mc-cp", "mc cp -r")) if by[p]]
        fast = all(ours["MB/s"] >= 1.5 * m["MB/s"] for _, m in peers)
        lean = ours["peak RSS"] < 200
        goal_lines.append(f"{s}: ours {ours['MB/s']:.1f} MB/s, " + ", ".join(
            f"{ours['MB/s'] / m['MB/s']:.2f}x {l}" for l, m in peers)
            + f"; peak RSS {ours['peak RSS']:.0f} MiB -> {'met' if fast and lean else 'NOT met'}")
if goal_lines:
    print("\n## goal: milvus-migrate >= 1.5x mc and rclone in MB/s at peak RSS < 200 MiB, all at defaults")
    print("\n".join(goal_lines))

for r in [r for r in rows if r["run"] == "bwlimit"]:
    units = {"KiB": 1024, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 1e3, "MB": 1e6, "GB": 1e9, "B": 1}
    num = bwlimit.split("/")[0]
    unit = next(u for u in units if num.endswith(u))
    limit = float(num[: -len(unit)]) * units[unit]
    e = r["extra"]
    print(f"\n## rate limit {bwlimit} ({limit / 1e6:.1f} MB/s), set {r['set']}, milvus-migrate defaults otherwise")
    if e.get("bytes_copied") and e.get("duration_secs"):
        rate = e["bytes_copied"] / e["duration_secs"]
        print(f"achieved (bytes_copied/duration_secs): {rate / 1e6:.1f} MB/s = {rate / limit:.3f} x limit")
    if e.get("bytes_copied") and e.get("transfer_secs"):
        rate = e["bytes_copied"] / e["transfer_secs"]
        print(f"achieved while transferring (bytes_copied/transfer_secs, listing and planning "
              f"excluded): {rate / 1e6:.1f} MB/s = {rate / limit:.3f} x limit")
    print(f"achieved (set bytes / wall {r['wall']:.1f} s): {r['bytes'] / r['wall'] / 1e6:.1f} MB/s "
          f"= {r['bytes'] / r['wall'] / limit:.3f} x limit; rc={r['rc']} verify={r['verify']}")
    # Columns: time, A's rchar, B's rchar.
    col = 1 if store == "s3s-fs" else 2
    try:
        pts = [(float(l.split()[0]), float(l.split()[col])) for l in
               open(f"{res}/{r['set'].replace('/', '_')}-bwlimit.io") if len(l.split()) == 3]
    except OSError:
        pts = []
    # Samples while bytes moved; the rate over their middle 80% (time-wise).
    moving = [p for i, p in enumerate(pts) if i and p[1] > pts[i - 1][1] + 1e6]
    if len(moving) > 10:
        t0, t1 = moving[0][0], moving[-1][0]
        lo, hi = t0 + 0.1 * (t1 - t0), t0 + 0.9 * (t1 - t0)
        mid = [p for p in pts if lo <= p[0] <= hi]
        rate = (mid[-1][1] - mid[0][1]) / (mid[-1][0] - mid[0][0])
        what = "read by store A's server" if store == "s3s-fs" else "received by store B's server"
        print(f"steady rate (bytes {what}, middle 80% of {t1 - t0:.1f} s): "
              f"{rate / 1e6:.1f} MB/s = {rate / limit:.3f} x limit")
PY
log "raw outputs in $RES"
