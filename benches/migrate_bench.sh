#!/usr/bin/env bash
# End-to-end migration benchmark: a generated collection (default 1,000,000 rows x 128-d) moved
# from Milvus A to Milvus B by `milvus-migrate migrate`, next to the same steps done separately
# the way users do them today (create on A, rclone copy of the backup A -> B, restore on B).
#
#   benches/migrate_bench.sh [--rows N] [--dim D] [--store s3s-fs|minio] [--no-build] [--keep]
#
# Starts its own stack (two stores, s3s-fs by default or MinIO with --store minio, and two
# Milvus 2.3.5) in target/migrate-bench with port offsets 3000/3100 and store ports 9700/9800
# (MinIO consoles 9701/9801), so it runs beside the demo and the tests, and stops it at the end
# (--keep leaves it running). benches/seed_procedure_bench.sh compares with the seed's own
# tools (milvus-backup and mc) instead. Prints, per phase, the time of each way, the
# share of the total spent waiting on Milvus's import, and the target check:
#   migration total (without B's index build and load, which the separate steps also need)
#   <= 1.10 x (flush on A + import on B + the copies).
# Needs rclone: scripts/install-deps.sh --with-rclone (run on demand).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
ROWS=1000000
DIM=128
BUILD=1
KEEP=0
STORE=s3s-fs
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rows) ROWS=$2; shift ;;
        --dim) DIM=$2; shift ;;
        --store) STORE=$2; shift ;;
        --no-build) BUILD=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "migrate_bench: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

log() { echo "migrate_bench: $*" >&2; }
cd "$REPO"
bash scripts/install-deps.sh --with-rclone >/dev/null
# shellcheck source=/dev/null
source scripts/env.sh
unset AWS_CA_BUNDLE
if [[ $BUILD == 1 ]]; then cargo build --release --locked -q; fi
BIN="$REPO/target/release/milvus-migrate"

WORK="${MM_BENCH_DIR:-$REPO/target/migrate-bench}"
mkdir -p "$WORK/results"
export MM_STORE=$STORE MM_MILVUS_A_OFFSET=3000 MM_MILVUS_B_OFFSET=3100 MM_A_PORT=9700 MM_B_PORT=9800
bash scripts/stack.sh start "$WORK/stack" >&2
if [[ $KEEP == 0 ]]; then trap 'bash "$REPO/scripts/stack.sh" stop "$WORK/stack" >/dev/null 2>&1 || true' EXIT; fi
# shellcheck source=/dev/null
source "$WORK/stack/stack.env"

# shellcheck source=lib.sh
source "$REPO/benches/lib.sh"
stack_profile A >"$WORK/a.yaml"
stack_profile B >"$WORK/b.yaml"
R="$WORK/results"
# s3s-fs names a multipart upload's side file after the base64 of bucket and key, so keys longer
# than ~130 bytes fail there in multipart ("File name too long"); backup keys are ~150. On
# s3s-fs both tools therefore upload objects up to 256 MiB in one PUT (MinIO has no such limit:
# there both keep their defaults).
OURS_FLAGS=()
RCLONE_FLAGS=(--transfers 32 --checkers 32 --s3-chunk-size 16M)
if [[ $STORE == s3s-fs ]]; then
    OURS_FLAGS=(--multipart-threshold 256MiB --max-buffer-memory 768MiB)
    RCLONE_FLAGS+=(--s3-upload-cutoff 256M --disable ListR)
fi
STATE="$WORK/state"
rm -rf "$STATE"

log "seeding bench ($ROWS rows x $DIM-d, partitions p1,p2, deletes) on A"
"$BIN" seed --config "$WORK/a.yaml" -c bench --rows "$ROWS" --dim "$DIM" --partitions p1,p2 \
    --delete-every 100 --drop-existing --json >"$R/seed.json"

TAG="b$(date +%s)"
log "separate steps: create on A"
"$BIN" create --config "$WORK/a.yaml" -c bench -n "sep_$TAG" --json -q --state-dir "$STATE" \
    "${OURS_FLAGS[@]}" >"$R/create.json"

log "separate steps: rclone copy of the backup A -> B"
export RCLONE_CONFIG="$WORK/rclone.conf"
: >"$RCLONE_CONFIG"
PROVIDER=Other
[[ $STORE == minio ]] && PROVIDER=Minio
export RCLONE_CONFIG_A_TYPE=s3 RCLONE_CONFIG_A_PROVIDER=$PROVIDER RCLONE_CONFIG_A_FORCE_PATH_STYLE=true
export RCLONE_CONFIG_A_ENDPOINT="http://127.0.0.1:$MM_STORE_A_PORT"
export RCLONE_CONFIG_A_ACCESS_KEY_ID=$MM_STORE_A_ACCESS_KEY RCLONE_CONFIG_A_SECRET_ACCESS_KEY=$MM_STORE_A_SECRET_KEY
export RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=$PROVIDER RCLONE_CONFIG_B_FORCE_PATH_STYLE=true
export RCLONE_CONFIG_B_ENDPOINT="http://127.0.0.1:$MM_STORE_B_PORT"
export RCLONE_CONFIG_B_ACCESS_KEY_ID=$MM_STORE_B_ACCESS_KEY RCLONE_CONFIG_B_SECRET_ACCESS_KEY=$MM_STORE_B_SECRET_KEY
t0=$(date +%s.%N)
if [[ $STORE == s3s-fs ]]; then
    # From the bucket root with --include (s3s-fs answers HEAD of a "directory" with 500).
    rclone copy "A:$MM_STORE_A_BUCKET" "B:$MM_STORE_B_BUCKET" --include "/backup/sep_$TAG/**" "${RCLONE_FLAGS[@]}"
else
    rclone copy "A:$MM_STORE_A_BUCKET/backup/sep_$TAG" "B:$MM_STORE_B_BUCKET/backup/sep_$TAG" "${RCLONE_FLAGS[@]}"
fi
t1=$(date +%s.%N)
echo "{\"secs\": $(python3 -c "print($t1 - $t0)")}" >"$R/rclone.json"

log "separate steps: restore on B"
"$BIN" restore --config "$WORK/b.yaml" -n "sep_$TAG" -s _sep --rebuild-index --load --drop-existing \
    --json -q --state-dir "$STATE" "${OURS_FLAGS[@]}" >"$R/restore.json"

log "milvus-migrate migrate A -> B"
"$BIN" migrate --from "$WORK/a.yaml" --to "$WORK/b.yaml" -c bench --suffix _mig --drop-existing \
    -n "mig_$TAG" --json -q --state-dir "$STATE" "${OURS_FLAGS[@]}" >"$R/migrate.json"

python3 - "$R" <<'EOF'
import json, sys, os
r = sys.argv[1]
j = lambda f: json.load(open(os.path.join(r, f)))
seed, create, rcl, restore, mig = (j("seed.json"), j("create.json"), j("rclone.json"),
                                    j("restore.json"), j("migrate.json"))
rc = restore["collections"][0]
phase = {p["phase"]: p["secs"] for p in mig["phases"]}
mr = mig["restore"]["collections"][0]
mc = mig["create"]
flush = mc["prepare_secs"]
copy_create = mc["copy"]["duration_secs"]
copy = (mig.get("copy") or {}).get("duration_secs", 0.0)
import_s = mr["import_secs"]
index_load = mr["index_load_secs"]
mb = (mig.get("copy") or {}).get("bytes_total", 0) / 1048576
total = mig["duration_secs"]
print(f"collection: {seed['rows_inserted']} rows x {seed['dim']}-d, {seed['expected_rows']} after deletes; "
      f"backup {mb:.0f} MiB in {mig['create']['copy']['objects_total']} objects")
print(f"{'phase':28} {'separate steps':>15} {'migrate':>10}")
print(f"{'create on A (flush+copy)':28} {create['duration_secs']:15.1f} {phase['create']:10.1f}")
print(f"{'copy A -> B':28} {rcl['secs']:15.1f} {phase['copy']:10.1f}   (rclone vs milvus-migrate)")
print(f"{'restore on B':28} {restore['duration_secs']:15.1f} {phase['restore']:10.1f}")
print(f"{'  of which stage + import':28} {rc['import_secs']:15.1f} {import_s:10.1f}")
print(f"{'  of which index + load':28} {rc['index_load_secs']:15.1f} {index_load:10.1f}")
sep_total = create['duration_secs'] + rcl['secs'] + restore['duration_secs']
print(f"{'total':28} {sep_total:15.1f} {total:10.1f}")
print(f"copy throughput: milvus-migrate {mb / max(copy, 1e-9):.0f} MiB/s, rclone {mb / max(rcl['secs'], 1e-9):.0f} MiB/s")
print(f"share of the migration spent waiting on Milvus's import: {100 * import_s / total:.0f}%")
floor = flush + import_s + copy_create + copy
ours = total - index_load
print(f"target: total without B's index+load {ours:.1f}s <= 1.10 x (flush {flush:.1f} + stage+import "
      f"{import_s:.1f} + copies {copy_create + copy:.1f} = {floor:.1f}s): "
      f"{'met' if ours <= 1.10 * floor else 'NOT met'} ({ours / floor:.2f}x)")
print(f"verified: rows on A {mr['expected_rows']}, rows on B {mr['rows']}, {'yes' if mr['verified'] else 'NO'}")
EOF
