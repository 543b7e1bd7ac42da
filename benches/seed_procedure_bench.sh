#!/usr/bin/env bash
# The seed's whole manual procedure next to `milvus-migrate migrate`, on the seed's setting:
# two Milvus 2.3.5, each on its own real MinIO server (different root users and buckets).
#
#   benches/seed_procedure_bench.sh [--rows N] [--dim D] [--mc mirror|cp] [--work-dir DIR]
#                                   [--no-rebuild-variant] [--no-build] [--keep]
#
#   --rows N               rows of the collection (default 1,000,000); e.g. --rows 20000 for a
#                          quick run
#   --dim D                vector dimension (default 128)
#   --mc mirror|cp         the seed's copy: `mc mirror` (default) or `mc cp --recursive`
#   --work-dir DIR         stack, profiles and results (default target/seed-procedure-bench)
#   --no-rebuild-variant   skip the extra `milvus-backup restore --rebuild_index` run
#   --no-build             use target/release/milvus-migrate as it is
#   --keep                 leave the stack running at the end (else it is stopped and its
#                          data removed; results stay in WORK/results)
#
# One collection `bench` (N rows x D-d, partitions _default/p1/p2, every 100th row deleted,
# IVF_FLAT index, loaded) is seeded on Milvus A (not measured), then moved to Milvus B:
#   1. the seed's procedure, each step timed: `milvus-backup create` on A, the mc copy of the
#      backup from MinIO A to MinIO B, `milvus-backup restore` on B (no flags but the suffix:
#      it creates the collection and imports; no index, no load, no check);
#   2. `milvus-migrate migrate` with its default flags (create, copy, restore, indexes built,
#      loaded, count(*) checked against A, backups removed);
#   3. `migrate --no-load` (indexes built and waited for, B not loaded);
#   4. `migrate --no-rebuild-index` (no index, no load: the work milvus-backup restore does);
#   5. unless --no-rebuild-variant: `milvus-backup restore --rebuild_index` of the same backup
#      (it creates the index definitions and returns; Milvus builds them afterwards, unwaited).
# If milvus-backup restore fails, its error is printed and `milvus-migrate restore` of the same
# backup (no index, no load) is timed in its place, labelled as a stand-in.
# Every tool runs with its default settings. Stack: offsets 3200/3300, MinIO on 9740/9840
# (consoles 9741/9841), so it runs beside the demo, the tests and migrate_bench.sh.
# Binaries: MINIO_BIN, MC_BIN, MILVUS_BACKUP_BIN (scripts/env.sh); install-deps.sh on demand.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
ROWS=1000000
DIM=128
MC_MODE=mirror
REBUILD_VARIANT=1
BUILD=1
KEEP=0
WORK=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rows) ROWS=$2; shift ;;
        --dim) DIM=$2; shift ;;
        --mc) MC_MODE=$2; shift ;;
        --work-dir) WORK=$2; shift ;;
        --no-rebuild-variant) REBUILD_VARIANT=0 ;;
        --no-build) BUILD=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
        *) echo "seed_procedure_bench: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[[ $MC_MODE == mirror || $MC_MODE == cp ]] || { echo "seed_procedure_bench: --mc mirror|cp" >&2; exit 2; }

log() { echo "[seed-bench $(date +%H:%M:%S)] $*" >&2; }
die() { echo "seed_procedure_bench: $*" >&2; exit 1; }
cd "$REPO"
# shellcheck source=../scripts/env.sh
source scripts/env.sh 2>/dev/null
if [[ ! -x "$MINIO_BIN" || ! -x "$MC_BIN" || ! -x "$MILVUS_BACKUP_BIN" || ! -x "$MILVUS_HOME/bin/milvus" ||
      ! -x /usr/bin/time ]]; then
    log "installing missing tools (scripts/install-deps.sh)"
    bash scripts/install-deps.sh --with-rclone >&2
    # shellcheck source=../scripts/env.sh
    source scripts/env.sh
fi
for b in "$MINIO_BIN" "$MC_BIN" "$MILVUS_BACKUP_BIN"; do [[ -x "$b" ]] || die "missing $b"; done
# Plain-http endpoints: keep the CA bundle away from mc and milvus-backup.
unset AWS_CA_BUNDLE
if [[ $BUILD == 1 ]]; then
    log "cargo build --release --locked"
    cargo build --release --locked -q
fi
BIN="$REPO/target/release/milvus-migrate"
[[ -x "$BIN" ]] || die "no binary at $BIN"

WORK="${WORK:-$REPO/target/seed-procedure-bench}"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
R="$WORK/results"
rm -rf "$R" "$WORK/state" "$WORK/mb"
mkdir -p "$R" "$WORK/mb" "$WORK/.mc"

export MM_STORE=minio MM_MILVUS_A_OFFSET=3200 MM_MILVUS_B_OFFSET=3300 MM_A_PORT=9740 MM_B_PORT=9840
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "starting the stack (MinIO x2, Milvus 2.3.5 x2) in $WORK/stack"
# Stops the stack and removes its data (GBs at 1M rows; the next start wipes it anyway).
stop_stack() {
    bash "$REPO/scripts/stack.sh" stop "$WORK/stack" >/dev/null 2>&1 || true
    rm -rf "$WORK/stack/stores" "$WORK/stack/milvus"
}
if [[ $KEEP == 0 ]]; then trap stop_stack EXIT; fi
trap 'exit 130' INT TERM
bash scripts/stack.sh start "$WORK/stack" >&2
# shellcheck source=/dev/null
source "$WORK/stack/stack.env"
[[ $MM_STORE_KIND == minio ]] || die "the stack runs $MM_STORE_KIND, not minio"

# One profile per side, milvus-backup's v1 backup.yaml, read as it is by both tools: Milvus,
# its MinIO and bucket (rootPath files), backups under backup/ in the same bucket.
# shellcheck source=lib.sh
source "$REPO/benches/lib.sh"
stack_profile A >"$WORK/a.yaml"
stack_profile B >"$WORK/b.yaml"
export MC_HOST_a="http://$MM_STORE_A_ACCESS_KEY:$MM_STORE_A_SECRET_KEY@127.0.0.1:$MM_STORE_A_PORT"
export MC_HOST_b="http://$MM_STORE_B_ACCESS_KEY:$MM_STORE_B_SECRET_KEY@127.0.0.1:$MM_STORE_B_PORT"
export MC_UPDATE=off
MC=("$MC_BIN" --config-dir "$WORK/.mc")

# timed NAME cmd...: runs cmd under /usr/bin/time (wall s, peak RSS KiB) with its output in
# $R/NAME.{stdout,stderr,time,cmd} and the 1-minute load average before and after it in
# $R/NAME.load; returns its exit code.
timed() {
    local name=$1; shift
    echo "$*" >"$R/$name.cmd"
    local rc=0
    cut -d' ' -f1 /proc/loadavg >"$R/$name.load"
    /usr/bin/time -f '%e %M' -o "$R/$name.time" "$@" >"$R/$name.stdout" 2>"$R/$name.stderr" || rc=$?
    cut -d' ' -f1 /proc/loadavg >>"$R/$name.load"
    echo "$rc" >"$R/$name.rc"
    return $rc
}
# timed, for milvus-backup, with its cwd in a scratch dir (it writes logs/ there).
mb_timed() { local name=$1; shift; (cd "$WORK/mb" && timed "$name" "$MILVUS_BACKUP_BIN" "$@"); }

log "seeding bench ($ROWS rows x $DIM-d, partitions p1,p2, every 100th row deleted) on A (not measured)"
"$BIN" seed --config "$WORK/a.yaml" -c bench --rows "$ROWS" --dim "$DIM" --partitions p1,p2 \
    --delete-every 100 --drop-existing --json >"$R/seed.json"

TAG="b$(date +%s)"
SEED_NAME="seed_$TAG"

# ---- 1. the seed's procedure -------------------------------------------------------------
log "seed procedure 1/3: milvus-backup create on A"
mb_timed mb_create --config "$WORK/a.yaml" create -n "$SEED_NAME" --filter bench ||
    { tail -n 20 "$R/mb_create.stderr" "$R/mb_create.stdout" >&2; die "milvus-backup create failed"; }
"${MC[@]}" du --json "a/$MM_STORE_A_BUCKET/backup/$SEED_NAME/" >"$R/mb_backup_du.json" 2>/dev/null || true
"${MC[@]}" ls --recursive "a/$MM_STORE_A_BUCKET/backup/$SEED_NAME/" 2>/dev/null | wc -l >"$R/mb_backup_objects"

if [[ $MC_MODE == mirror ]]; then
    MC_COPY=(mirror --quiet "a/$MM_STORE_A_BUCKET/backup/$SEED_NAME" "b/$MM_STORE_B_BUCKET/backup/$SEED_NAME")
else
    MC_COPY=(cp --recursive --quiet "a/$MM_STORE_A_BUCKET/backup/$SEED_NAME/" "b/$MM_STORE_B_BUCKET/backup/$SEED_NAME/")
fi
log "seed procedure 2/3: mc ${MC_COPY[0]} of the backup, MinIO A -> MinIO B"
timed mc_copy "${MC[@]}" "${MC_COPY[@]}" ||
    { tail -n 20 "$R/mc_copy.stderr" >&2; die "mc ${MC_COPY[0]} failed"; }
b_objects=$("${MC[@]}" ls --recursive "b/$MM_STORE_B_BUCKET/backup/$SEED_NAME/" | wc -l)
[[ $b_objects == "$(cat "$R/mb_backup_objects")" ]] ||
    die "mc copied $b_objects objects, the backup has $(cat "$R/mb_backup_objects")"

log "seed procedure 3/3: milvus-backup restore on B"
if mb_timed mb_restore --config "$WORK/b.yaml" restore -n "$SEED_NAME" -s _seed; then
    MB_RESTORE_OK=1
else
    MB_RESTORE_OK=0
    log "milvus-backup restore failed (rc $(cat "$R/mb_restore.rc")); its error:"
    tail -n 5 "$R/mb_restore.stderr" >&2 || true
    log "stand-in: milvus-migrate restore of the same backup (no index, no load: the same work)"
    timed standin_restore "$BIN" restore --config "$WORK/b.yaml" -n "$SEED_NAME" -s _standin \
        --json -q --state-dir "$WORK/state" || { tail -n 20 "$R/standin_restore.stderr" >&2; die "stand-in restore failed"; }
fi

# ---- 2-4. milvus-migrate migrate ---------------------------------------------------------
run_ours() { # name suffix [flags...]
    local name=$1 suffix=$2; shift 2
    log "milvus-migrate migrate ${*:-(default flags)}"
    timed "$name" "$BIN" migrate --from "$WORK/a.yaml" --to "$WORK/b.yaml" -c bench -s "$suffix" \
        -n "${name}_$TAG" --json -q --state-dir "$WORK/state" "$@" ||
        { tail -n 20 "$R/$name.stderr" >&2; die "milvus-migrate migrate $* failed"; }
}
run_ours ours_default _mm
run_ours ours_noload _mm_noload --no-load
run_ours ours_noindex _mm_noindex --no-rebuild-index

# ---- 5. milvus-backup restore --rebuild_index (last: Milvus builds the index after it returns) --
if [[ $REBUILD_VARIANT == 1 && $MB_RESTORE_OK == 1 ]]; then
    log "milvus-backup restore --rebuild_index of the same backup on B"
    mb_timed mb_restore_idx --config "$WORK/b.yaml" restore -n "$SEED_NAME" -s _seed_idx --rebuild_index ||
        { log "milvus-backup restore --rebuild_index failed:"; tail -n 5 "$R/mb_restore_idx.stderr" >&2 || true; }
fi

# ---- untimed check of the seed procedure's result -------------------------------------------
# milvus-backup restore counts nothing; B's collection cannot be loaded without an index. A
# `milvus-migrate create` of it on B reads the row counts Milvus reports for its flushed
# segments: evidence that the import brought the rows, not a count(*).
CHECK_COLL=bench_seed
[[ $MB_RESTORE_OK == 1 ]] || CHECK_COLL=bench_standin
log "untimed check: rows in the segments of $CHECK_COLL on B (milvus-migrate create reads them)"
"$BIN" create --config "$WORK/b.yaml" -c "$CHECK_COLL" -n "check_$TAG" --json -q --state-dir "$WORK/state" \
    >"$R/check_seed.stdout" 2>"$R/check_seed.stderr" || log "the check failed: $(tail -n 1 "$R/check_seed.stderr")"

# ---- report ------------------------------------------------------------------------------
{
    echo "date: $(date -u +%FT%TZ); load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg); machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' + uncommitted changes in src/Cargo'); binary built $(date -u -r "$BIN" +%FT%TZ)$([[ $BUILD == 1 ]] || echo ' (--no-build: may predate the commit)')"
    echo "milvus-migrate: $("$BIN" --version); milvus-backup: $MILVUS_BACKUP_FOR_23 ($MILVUS_BACKUP_BIN); mc: $("$MC_BIN" --version 2>/dev/null | head -1 | sed 's/^mc version //'); MinIO: $("$MINIO_BIN" --version 2>/dev/null | head -1 | sed 's/^minio version //'); Milvus 2.3.5 x2 on MinIO, data in $WORK/stack ($(stat -f -c %T "$WORK"))"
} >"$R/header.txt"

python3 - "$R" "$MC_MODE" <<'EOF'
import json, os, sys
r, mc_mode = sys.argv[1], sys.argv[2]
P = lambda f: os.path.join(r, f)
exists = lambda f: os.path.exists(P(f))
def timing(name):
    if not exists(f"{name}.time"):
        return None
    line = [l for l in open(P(f"{name}.time")) if l.strip()][-1].split()
    try:
        return {"secs": float(line[0]), "rss_mib": int(line[1]) / 1024, "rc": int(open(P(f"{name}.rc")).read())}
    except (ValueError, IndexError):  # killed: /usr/bin/time printed a status line last
        return {"secs": float("nan"), "rss_mib": float("nan"), "rc": int(open(P(f"{name}.rc")).read())}
def doc(name):
    try:
        return json.load(open(P(f"{name}.stdout")))
    except (OSError, ValueError):
        return None

print(open(P("header.txt")).read().rstrip())
seed = json.load(open(P("seed.json")))
size = 0
try:
    for l in open(P("mb_backup_du.json")):
        size = max(size, json.loads(l).get("size", 0))
except (OSError, ValueError):
    pass
objects = int(open(P("mb_backup_objects")).read() or 0)
print(f"collection: {seed['rows_inserted']:,} rows x {seed['dim']}-d, {seed['expected_rows']:,} after deletes, "
      f"partitions {', '.join(seed['per_partition'])}; milvus-backup's backup: {size / 1048576:.0f} MiB in {objects} objects")

mbc, mcc, mbr, mbri = timing("mb_create"), timing("mc_copy"), timing("mb_restore"), timing("mb_restore_idx")
standin = timing("standin_restore")
ok = mbr and mbr["rc"] == 0
if not ok:
    err = [l.rstrip() for l in open(P("mb_restore.stderr")) if l.strip()][-3:] if exists("mb_restore.stderr") else []
    print(f"\n!! milvus-backup restore FAILED on Milvus 2.3.5 (rc {mbr and mbr['rc']}): " + " | ".join(err))
    print("   its restore column is `milvus-migrate restore` of the same backup (no index, no load), a stand-in")

ours = {k: doc(k) for k in ("ours_default", "ours_noload", "ours_noindex")}
def phases(d):
    p = {x["phase"]: x["secs"] for x in d["phases"]}
    c = d["restore"]["collections"][0]
    p["import"] = c["import_secs"]; p["index_load"] = c["index_load_secs"]  # import_secs includes staging (overlapped)
    p["other"] = d["duration_secs"] - sum(x["secs"] for x in d["phases"])
    p["total"] = d["duration_secs"]
    return p
ph = {k: phases(d) for k, d in ours.items() if d}

restore_s = mbr["secs"] if ok else (standin["secs"] if standin else float("nan"))
seed_total = mbc["secs"] + mcc["secs"] + restore_s
cols = [("seed procedure" if ok else "seed proc.*", None),
        ("ours default", "ours_default"), ("ours --no-load", "ours_noload"),
        ("ours --no-rebuild-index", "ours_noindex")]
W = 26
def row(label, seedv, key, fmt="{:.1f}"):
    cells = [seedv if isinstance(seedv, str) else fmt.format(seedv)]
    for _, k in cols[1:]:
        v = ph.get(k, {}).get(key) if key else None
        cells.append("-" if v is None else (v if isinstance(v, str) else fmt.format(v)))
    print(f"{label:<30}" + "".join(f"{c:>{W}}" for c in cells))

print(f"\n{'seconds':<30}" + "".join(f"{c:>{W}}" for c, _ in cols))
row("preflight and other", "-", "other")
row("create on A", mbc["secs"], "create")
row(f"copy A -> B", mcc["secs"], "copy")
row("restore on B" + ("" if ok else " (*stand-in)"), restore_s, "restore")
row("  of which stage + import", "-", "import")
row("  of which index build + load", "not done", "index_load")
row("cleanup (backups on A and B)", "not done", "cleanup")
row("total", seed_total, "total")
def done(k):
    d = ours.get(k)
    if not d:
        return "-"
    c = d["collections"][0]
    return f"{c['rows_b'] if c['rows_b'] is not None else c['rows_imported']:,} {'verified' if c['verified'] else 'import count'}"
chk = doc("check_seed")
seed_rows = "not counted"
if chk and chk.get("collections"):
    seed_rows = f"{chk['collections'][0]['segment_rows']:,} in segments"
print(f"{'rows on B':<30}" + f"{seed_rows:>{W}}" + "".join(f"{done(k):>{W}}" for _, k in cols[1:]))
print(f"{'indexes built / loaded':<30}" + "".join(f"{c:>{W}}" for c in ("no / no", "yes / yes", "yes / no", "no / no")))
tool = "mc mirror" if mc_mode == "mirror" else "mc cp --recursive"
print(f"\ncopy: {tool} {size / 1048576 / mcc['secs']:.0f} MiB/s (peak RSS {mcc['rss_mib']:.0f} MiB)", end="")
if ours.get("ours_default") and ours["ours_default"].get("copy"):
    c = ours["ours_default"]["copy"]
    print(f"; milvus-migrate {c['bytes_total'] / 1048576 / max(c['duration_secs'], 1e-9):.0f} MiB/s "
          f"({c['bytes_total'] / 1048576:.0f} MiB, {c['objects_total']} objects)", end="")
print()
def load(name):
    try:
        v = [l.strip() for l in open(P(f"{name}.load")) if l.strip()]
        return f"{v[0]}->{v[-1]}"
    except OSError:
        return "-"
steps = [("mb_create", "milvus-backup create"), ("mc_copy", "mc"), ("mb_restore", "milvus-backup restore"),
         ("standin_restore", "stand-in restore"), ("ours_default", "ours default"), ("ours_noload", "ours --no-load"),
         ("ours_noindex", "ours --no-rebuild-index"), ("mb_restore_idx", "milvus-backup restore --rebuild_index")]
loads = [f"{l} {load(n)}" for n, l in steps if exists(f"{n}.load")]
if loads:
    print("1-min load average at start->end of each step: " + ", ".join(loads))
restore_rss = f"restore {mbr['rss_mib']:.0f} MiB" if ok else f"restore failed (stand-in {standin['rss_mib']:.0f} MiB)"
print(f"peak RSS: milvus-backup create {mbc['rss_mib']:.0f} MiB, {restore_rss}; milvus-migrate migrate "
      + ", ".join(f"{k.split('_')[1]} {timing(k)['rss_mib']:.0f} MiB" for k in ours if timing(k)))

print(f"(seed procedure's rows: the row counts Milvus B reports for the restored collection's flushed segments, "
      f"read afterwards by an untimed `milvus-migrate create` of it; A had {seed['rows_inserted']:,} inserted, "
      f"{seed['expected_rows']:,} after deletes)")
print("\nwhat each does:")
print(f"  seed procedure: milvus-backup create (A) + {tool} (A -> B) + milvus-backup restore (B, default flags):"
      " creates the collection and imports; builds no index, does not load, counts nothing; leaves both backups")
print("  ours default:   create + copy + restore + indexes built + loaded + count(*) per collection and partition"
      " checked against A + both backups removed")
print("  ours --no-load: the same without loading (indexes built and waited for); rows checked by import counts")
print("  ours --no-rebuild-index: create + copy + import, no index, no load (the work of the seed procedure);"
      " rows checked by import counts; backups removed")
if mbri:
    idx_total = mbc["secs"] + mcc["secs"] + mbri["secs"]
    st = "ok" if mbri["rc"] == 0 else f"FAILED rc {mbri['rc']}"
    print(f"\nvariant: milvus-backup restore --rebuild_index ({st}): restore {mbri['secs']:.1f} s, seed procedure "
          f"total {idx_total:.1f} s; it creates the index definitions before the import and returns without "
          f"waiting for the build (Milvus builds afterwards), so compare with ours --no-load "
          f"({ph['ours_noload']['total']:.1f} s, which waits) only as an upper bound for ours")

print("\ngoal: milvus-migrate migrate faster end to end than the seed's procedure" + ("" if ok else " (* restore by the stand-in)"))
for k, label in (("ours_default", "ours, default flags (does more: index, load, verify)"),
                 ("ours_noindex", "ours --no-rebuild-index (same work)"),
                 ("ours_noload", "ours --no-load (index built, not loaded)")):
    if k in ph:
        t = ph[k]["total"]
        print(f"  {label}: {t:.1f} s vs {seed_total:.1f} s -> {seed_total / t:.2f}x "
              f"{'faster: met' if t < seed_total else 'NOT faster'}")
EOF
log "raw outputs in $R"
