#!/usr/bin/env bash
# The main job on a local default, on a fresh machine (Rust toolchain and Python 3 only):
#  1. installs what is missing (s3s-fs and Milvus 2.3.5, cached under ~/.cache/milvus-migrate;
#     a second run reuses them; with MM_STORE=minio also MinIO and mc, which need Go) and builds
#     the release binary;
#  2. starts the local stack (scripts/stack.sh) in target/demo-stack: two S3 stores on loopback
#     with different credentials and buckets, like minio_A and minio_B, and a real Milvus 2.3.5
#     on each: A on 127.0.0.1:19530 over store :9100, B on 127.0.0.1:19630 over store :9200, as
#     configs/a.yaml and configs/b.yaml describe them;
#  3. checks both profiles (resolve, probe the stores) and seeds `coll` on A: 20000 rows,
#     128-dim vectors, partitions p1 and p2, a dynamic field, every 10th row deleted;
#  4. runs `milvus-migrate migrate --from configs/a.yaml --to configs/b.yaml -c coll --suffix _bak`
#     and shows its summary;
#  5. stops the stack, if this script started it.
#
# MM_STORE=minio runs the two stores as real MinIO servers (root users and passwords are the
# profiles' keys) instead of s3s-fs; everything else is the same.
# MM_DEMO_DIR sets the stack directory (default target/demo-stack). The stack uses the default
# ports, which the profiles name; another stack on them (scripts/stack.sh status OTHER_DIR)
# must be stopped first, or reused by pointing MM_DEMO_DIR at its directory.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
dir=${MM_DEMO_DIR:-target/demo-stack}

store=${MM_STORE:-s3s-fs}
case $store in
    s3s-fs) bash scripts/install-deps.sh --without-go ;;
    minio) bash scripts/install-deps.sh ;;
    *) echo "demo.sh: MM_STORE must be s3s-fs or minio, got '$store'" >&2; exit 2 ;;
esac
# shellcheck source=/dev/null
source scripts/env.sh 2>/dev/null
# The environment's AWS_CA_BUNDLE points object stores at TLS roots; the demo uses plain http.
unset AWS_CA_BUNDLE
# configs/a.yaml and configs/b.yaml describe the default stack: no port offsets, and none of the
# environment overrides a profile reads (e.g. the MILVUS_PORT=tcp://... Kubernetes injects).
unset MM_A_PORT MM_B_PORT MM_MILVUS_A_OFFSET MM_MILVUS_B_OFFSET
for v in $(compgen -e); do
    case $v in
        MILVUS_HOME | MILVUS_BACKUP_BIN | MILVUS_BACKUP_SRC | MINIO_BIN) ;;
        MILVUS_* | MINIO_* | BACKUP_* | GCP_KEY_JSON) unset "$v" ;;
    esac
done
cargo build --release --locked
bin=${CARGO_TARGET_DIR:-$top/target}/release/milvus-migrate
mm() { "$bin" "$@"; }

echo
export MM_STORE=$store
if bash scripts/stack.sh status "$dir" >/dev/null 2>&1 &&
    grep -qx "MM_STORE_KIND=$store" "$dir/stack.env" 2>/dev/null; then
    echo "== reusing the stack already running in $dir (left running at the end)"
    started=0
else
    echo "== starting the stack in $dir ($store stores)"
    rm -rf "$dir/state"
    trap 'echo "== stopping the stack"; bash "$top/scripts/stack.sh" stop "$dir" >/dev/null || true' EXIT
    bash scripts/stack.sh start "$dir"
    started=1
fi
# Copy ledgers beside the stack, so that runs of the demo share no state with other work.
export MILVUS_MIGRATE_STATE_DIR="$top/$dir/state"
[[ "$dir" == /* ]] && MILVUS_MIGRATE_STATE_DIR="$dir/state"

echo
for side in a b; do
    out=$(mm check --config "configs/$side.yaml" 2>&1) || { echo "$out"; exit 1; }
    echo "== milvus-migrate check --config configs/$side.yaml: $(tail -n1 <<<"$out")"
done

echo
echo "== milvus-migrate seed --config configs/a.yaml -c coll --rows 20000 --dim 128 --partitions p1,p2 --dynamic --delete-every 10 --drop-existing"
mm seed --config configs/a.yaml -c coll --rows 20000 --dim 128 --partitions p1,p2 --dynamic \
    --delete-every 10 --drop-existing

# A stack this script started is fresh (start wipes its stores and Milvus data), so B holds no
# `coll_bak` and the command is exactly the one a user types; a rerun starts a fresh stack again.
# On a stack found running, an earlier demo's `coll_bak` may be on B: --drop-existing replaces
# it (without it migrate refuses to touch an existing collection).
extra=()
((started)) || extra=(--drop-existing)
echo
echo "== milvus-migrate migrate --from configs/a.yaml --to configs/b.yaml -c coll --suffix _bak${extra[*]/#/ }"
mm migrate --from configs/a.yaml --to configs/b.yaml -c coll --suffix _bak "${extra[@]}"

echo
echo "== left in the stores: Milvus's data, no backup copies and no staged binlogs"
# shellcheck source=/dev/null
source "$dir/stack.env"
for side in A B; do
    eval "port=\$MM_STORE_${side}_PORT ak=\$MM_STORE_${side}_ACCESS_KEY sk=\$MM_STORE_${side}_SECRET_KEY bucket=\$MM_STORE_${side}_BUCKET"
    if [[ $store == minio ]]; then
        keys=$(MC_HOST_s="http://$ak:$sk@127.0.0.1:$port" "$MC_BIN" --config-dir "$(mktemp -d)" \
            ls --recursive "s/$bucket" | awk '{print $NF}')
    else
        keys=$(cd "$dir/stores/${side,,}/$bucket" && find . -type f | sed 's|^\./||')
    fi
    awk -v b="$bucket" '/^files\//{f++} NF && !/^files\//{o++}
        END{printf "%s: %d objects under files/, %d elsewhere\n", b, f, o}' <<<"$keys"
done
