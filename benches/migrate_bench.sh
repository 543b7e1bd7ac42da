#!/usr/bin/env bash
# Migration benchmark: where the time of `milvus-migrate migrate` goes, and what running the
# copy and the restore at once (the default) saves over running them one after the other
# (`--sequential`). A generated collection (default 2,000,000 rows x 128-d) on Milvus A; then,
# each timed on its own:
#   create alone    milvus-migrate create on A
#   copy alone      milvus-migrate copy of that backup, A's store -> B's store
#   restore alone   milvus-migrate restore of it on B (--rebuild-index --load)
#   sequential      milvus-migrate migrate --sequential (create, copy, restore, one after another)
#   pipelined       milvus-migrate migrate (each segment imported once the copy wrote it)
# first without a byte-rate limit, then with a --bwlimit that makes the copy about as long as
# the restore (two sites over a slow link: the limit is the backup's size over the measured
# restore time; --bwlimit RATE sets it). Both migrations verify by count (`--verify count`),
# as the restore alone does, so the work compared is the same. Goal, per limit:
#   pipelined total <= 1.15 x max(copy alone, restore alone) + create alone.
#
#   benches/migrate_bench.sh [--rows N] [--dim D] [--store minio|s3s-fs] [--bwlimit RATE]
#                            [--no-limit-run] [--no-build] [--keep]
#
# Starts its own stack (two stores, MinIO by default or s3s-fs, and two Milvus 2.3.5) in
# target/migrate-bench with port offsets 3000/3100 and store ports 9700/9800, so it runs beside
# the demo and the tests, and stops it at the end (--keep leaves it running). The profiles keep
# each side's backups in its Milvus bucket (milvus-backup's default layout), so B imports
# straight from the copied backup and the limit applies to the copy between the sites only
# (create's copy on A is server-side). Raw JSON reports stay in target/migrate-bench/results.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
ROWS=2000000
DIM=128
BUILD=1
KEEP=0
STORE=minio
LIMIT=""
LIMITED_ONLY=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rows) ROWS=$2; shift ;;
        --dim) DIM=$2; shift ;;
        --store) STORE=$2; shift ;;
        --bwlimit) LIMIT=$2; shift ;;
        --no-limit-run) LIMITED_ONLY=1 ;;
        --no-build) BUILD=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "migrate_bench: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

log() { echo "migrate_bench: $(date -u +%H:%M:%S) $*" >&2; }
cd "$REPO"
bash scripts/install-deps.sh >/dev/null
# shellcheck source=/dev/null
source scripts/env.sh
unset AWS_CA_BUNDLE
if [[ $BUILD == 1 ]]; then cargo build --release --locked -q; fi
BIN="$REPO/target/release/milvus-migrate"

WORK="${MM_BENCH_DIR:-$REPO/target/migrate-bench}"
R="$WORK/results"
rm -rf "$R" "$WORK/state"
mkdir -p "$R"
export MM_STORE=$STORE MM_MILVUS_A_OFFSET=3000 MM_MILVUS_B_OFFSET=3100 MM_A_PORT=9700 MM_B_PORT=9800
bash scripts/stack.sh start "$WORK/stack" >&2
if [[ $KEEP == 0 ]]; then trap 'bash "$REPO/scripts/stack.sh" stop "$WORK/stack" >/dev/null 2>&1 || true' EXIT; fi
# shellcheck source=/dev/null
source "$WORK/stack/stack.env"
# shellcheck source=lib.sh
source "$REPO/benches/lib.sh"
stack_profile A >"$WORK/a.yaml"
stack_profile B >"$WORK/b.yaml"
# s3s-fs names a multipart upload's side file after the base64 of bucket and key, so backup keys
# (~150 bytes) fail there in multipart ("File name too long"): objects go in one PUT there.
FLAGS=(--state-dir "$WORK/state")
[[ $STORE == s3s-fs ]] && FLAGS+=(--multipart-threshold 256MiB --max-buffer-memory 768MiB)
TAG="b$(date +%s)"

# quiet: waits (at most 5 min) until the machine is under 25% busy over 5 s, so that what a
# step leaves running (Milvus's compactions and index builds after a seed or a restore) does
# not land in the next step's time.
quiet() {
    local busy=100
    for _ in $(seq 60); do
        busy=$(python3 -c '
import time
def snap():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(v), v[3] + v[4]
t0, i0 = snap(); time.sleep(5); t1, i1 = snap()
print(int(100 * (1 - (i1 - i0) / max(1, t1 - t0))))')
        if [[ $busy -lt 25 ]]; then return 0; fi
    done
    log "still ${busy}% busy after 5 min: timing anyway"
}

# timed NAME CMD...: once the machine is quiet, runs CMD (which prints a JSON report) into
# results/NAME.json, with the wall time and load average before it in results/NAME.time.
timed() {
    local name=$1; shift
    local load t0 t1
    quiet
    load=$(cut -d' ' -f1 /proc/loadavg)
    t0=$(date +%s.%N)
    "$@" >"$R/$name.json"
    t1=$(date +%s.%N)
    python3 -c "import json,sys; json.dump({'secs': $t1 - $t0, 'load': $load}, sys.stdout)" >"$R/$name.time"
    log "$name: $(python3 -c "print(round($t1 - $t0, 1))") s (load before $load)"
}

# run_set LABEL [--bwlimit RATE]: copy alone, sequential and pipelined migrations under one limit.
run_set() {
    local label=$1; shift
    local limit=("$@")
    log "[$label] copy alone (into a fresh prefix on B)"
    timed "$label.copy" "$BIN" copy --from "$WORK/a.yaml" --to "$WORK/b.yaml" \
        --src-prefix "backup/base_$TAG" --dst-prefix "backup/copy_${label}_$TAG" \
        --json -q "${FLAGS[@]}" "${limit[@]}"
    for mode in sequential pipelined; do
        local extra=()
        [[ $mode == sequential ]] && extra=(--sequential)
        log "[$label] migrate, $mode"
        timed "$label.$mode" "$BIN" migrate --from "$WORK/a.yaml" --to "$WORK/b.yaml" -c bench \
            --suffix "_${label}_$mode" -n "${label}_${mode}_$TAG" --verify count --json -q \
            "${FLAGS[@]}" "${limit[@]}" "${extra[@]}"
    done
}

log "seeding bench ($ROWS rows x $DIM-d, partitions p1,p2, deletes) on A (not timed)"
"$BIN" seed --config "$WORK/a.yaml" -c bench --rows "$ROWS" --dim "$DIM" --partitions p1,p2 \
    --delete-every 100 --drop-existing --json >"$R/seed.json"

log "create alone"
timed create "$BIN" create --config "$WORK/a.yaml" -c bench -n "base_$TAG" --json -q "${FLAGS[@]}"
log "copy alone, then restore alone (no limit)"
timed first.copy "$BIN" copy --from "$WORK/a.yaml" --to "$WORK/b.yaml" -n "base_$TAG" --json -q "${FLAGS[@]}"
timed restore "$BIN" restore --config "$WORK/b.yaml" -n "base_$TAG" -s _restore --rebuild-index \
    --load --drop-existing --json -q "${FLAGS[@]}"

if [[ $LIMITED_ONLY == 0 ]]; then run_set nolimit; fi
if [[ -z $LIMIT ]]; then
    # The backup's bytes over the restore's time: the copy then takes about as long.
    LIMIT=$(python3 - "$R" <<'EOF'
import json, sys, os
r = sys.argv[1]
copy = json.load(open(os.path.join(r, "first.copy.json")))
secs = json.load(open(os.path.join(r, "restore.time")))["secs"]
print(f"{max(1, int(copy['bytes_total'] / secs / 1024))}KiB/s")
EOF
)
fi
# Content verification of the migrated collection (issue 15): the sampled check that `migrate`
# runs by default, and every row compared (--verify full), next to the migration's time.
VERIFIED=nolimit_pipelined
[[ $LIMITED_ONLY == 1 ]] && VERIFIED=""
if [[ -n $VERIFIED ]]; then
    for mode in sample full; do
        log "verify --verify $mode of bench_$VERIFIED"
        timed "verify.$mode" "$BIN" verify --from "$WORK/a.yaml" --to "$WORK/b.yaml" -c bench \
            --suffix "_$VERIFIED" --verify "$mode" --json
    done
fi
log "limit for the slow-link runs: $LIMIT"
echo "$LIMIT" >"$R/limit"
run_set limited --bwlimit "$LIMIT"

python3 - "$R" "$LIMITED_ONLY" <<'EOF'
import json, sys, os
r, limited_only = sys.argv[1], sys.argv[2] == "1"
def j(name):
    return json.load(open(os.path.join(r, name)))
def secs(name):
    return j(name + ".time")["secs"]
seed = j("seed.json")
copy = j("first.copy.json")
mib = copy["bytes_total"] / 1048576
limit = open(os.path.join(r, "limit")).read().strip()
create, restore = secs("create"), secs("restore")
print(f"collection: {seed['rows_inserted']} rows x {seed['dim']}-d, {seed['expected_rows']} after deletes; "
      f"backup {mib:.0f} MiB in {copy['objects_total']} objects")
print(f"create alone {create:.1f} s, restore alone {restore:.1f} s (--rebuild-index --load)")
print()
print(f"{'limit':>14} {'copy alone':>11} {'sequential':>11} {'pipelined':>10} {'goal':>10}  result")
verify_rows = {}
sets = [("limited", limit)] if limited_only else [("nolimit", "none"), ("limited", limit)]
for label, shown in sets:
    c, s, p = secs(f"{label}.copy"), secs(f"{label}.sequential"), secs(f"{label}.pipelined")
    goal = 1.15 * max(c, restore) + create
    print(f"{shown:>14} {c:11.1f} {s:11.1f} {p:10.1f} {goal:10.1f}  "
          f"{'met' if p <= goal else 'NOT met'} (pipelined {p / s:.2f}x of sequential; "
          f"{(p - create) / max(c, restore):.2f}x max(copy, restore) after create)")
    if label == "nolimit" and os.path.exists(os.path.join(r, "verify.full.time")):
        verify_rows[label] = p
    for mode in ("sequential", "pipelined"):
        m = j(f"{label}.{mode}.json")
        phases = ", ".join(f"{ph['phase']} {ph['secs']:.1f}" for ph in m["phases"])
        col = m["collections"][0]
        print(f"{'':>14}   {mode}: {phases}; rows A {col['rows_a']} B {col['rows_b']}, "
              f"{col['verified_by']}")
if verify_rows:
    p = verify_rows["nolimit"]
    print()
    for mode in ("sample", "full"):
        v, t = j(f"verify.{mode}.json"), secs(f"verify.{mode}")
        col = v["collections"][0]
        print(f"verify --verify {mode}: {t:.1f} s = {100 * t / p:.1f}% of the pipelined migration "
              f"({p:.1f} s); rows A {col['rows_a']} B {col['rows_b']}, {col['rows_compared']} rows "
              f"compared field by field in {col['ranges']} key ranges"
              + ("; goal < 20%: " + ("met" if t < 0.2 * p else "NOT met") if mode == "full" else ""))
EOF
