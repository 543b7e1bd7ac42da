#!/usr/bin/env bash
# The local pair the demo and the tests migrate between: two S3 stores (scripts/s3-stores.sh:
# s3s-fs, or real MinIO servers with MM_STORE=minio) and a real Milvus 2.3.5 on each
# (scripts/milvus.sh), like the user's Milvus A on minio_A and Milvus B on minio_B.
#
#   scripts/stack.sh start DIR    start all four (both Milvus in parallel), wait until healthy,
#                                 write DIR/stack.env
#   scripts/stack.sh stop DIR     stop all four
#   scripts/stack.sh status DIR   say what runs (exit 0 only when all four are up and healthy)
#
# Store A:  http://127.0.0.1:${MM_A_PORT:-9100}, minio-a-key / minio-a-secret, bucket bucket-a,
#           data DIR/stores/a (the bucket is the directory DIR/stores/a/bucket-a, created by
#           Milvus A at its start: start checks it appears, which proves the wiring)
# Store B:  http://127.0.0.1:${MM_B_PORT:-9200}, minio-b-key / minio-b-secret, bucket bucket-b,
#           data DIR/stores/b
# Milvus A: offset ${MM_MILVUS_A_OFFSET:-0}: proxy 127.0.0.1:19530, metrics/healthz 9091; its data
#           in store A, bucket-a, rootPath files; dir DIR/milvus/a (log DIR/milvus/a/milvus.log)
# Milvus B: offset ${MM_MILVUS_B_OFFSET:-100}: proxy 19630, metrics 9191; store B, bucket-b,
#           rootPath files; dir DIR/milvus/b
# (configs/a.yaml and configs/b.yaml describe the default stack.) Every Milvus port is its base
# port plus the offset (scripts/milvus.sh ports OFFSET lists them); start refuses offsets and
# store ports whose port sets overlap. A second stack beside this one needs other offsets and
# store ports, e.g. the tests' MM_MILVUS_A_OFFSET=1000 MM_MILVUS_B_OFFSET=1100 MM_A_PORT=9300
# MM_B_PORT=9400.
#
# start is a no-op when the stack in DIR already runs healthy with the same settings; otherwise
# it stops whatever of it runs, wipes DIR/stores and DIR/milvus and starts everything fresh.
# DIR/stack.env (shell-sourcable, KEY=value lines, no quoting) describes the running stack:
# MM_MILVUS_{A,B}_{ADDRESS,PORT,METRICS,OFFSET,DIR},
# MM_STORE_KIND (s3s-fs or minio),
# MM_STORE_{A,B}_{ADDRESS,PORT,ENDPOINT,ACCESS_KEY,SECRET_KEY,BUCKET,ROOT_PATH,DATA_DIR}.
# With MinIO, each store's console takes its port + 1 as well.
set -euo pipefail

usage() { sed -n '2,30p' "$0" >&2; exit 2; }
die() { echo "stack.sh: $*" >&2; exit 1; }

[[ $# -eq 2 ]] || usage
CMD=$1
DIR=$2
HERE="$(cd "$(dirname "$0")" && pwd)"
A_PORT="${MM_A_PORT:-9100}"
B_PORT="${MM_B_PORT:-9200}"
A_OFFSET="${MM_MILVUS_A_OFFSET:-0}"
B_OFFSET="${MM_MILVUS_B_OFFSET:-100}"
ROOT_PATH=files
STORE_KIND="${MM_STORE:-s3s-fs}"
[[ "$STORE_KIND" == s3s-fs || "$STORE_KIND" == minio ]] || die "MM_STORE must be s3s-fs or minio, got '$STORE_KIND'"

for v in "$A_PORT" "$B_PORT" "$A_OFFSET" "$B_OFFSET"; do
    [[ "$v" =~ ^[0-9]+$ ]] || die "ports and offsets must be numbers, got '$v'"
done
[[ "$DIR" =~ ^[A-Za-z0-9_./+@:,=-]+$ ]] || die "DIR must not contain spaces, quotes or shell specials: $DIR"
if [[ "$CMD" == start ]]; then mkdir -p "$DIR"; fi
if [[ -d "$DIR" ]]; then DIR=$(cd "$DIR" && pwd); fi
STORES="$DIR/stores"
MILVUS="$DIR/milvus"

# side store-port access-key secret-key bucket offset
SIDES=(
    "a $A_PORT minio-a-key minio-a-secret bucket-a $A_OFFSET"
    "b $B_PORT minio-b-key minio-b-secret bucket-b $B_OFFSET"
)

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Refuses settings under which two of the stack's servers would want the same port; fills
# owner[port] = "who" for check_free.
declare -A owner=()
check_ports() {
    local c p side port ak sk bucket offset
    for s in "${SIDES[@]}"; do
        read -r side port ak sk bucket offset <<<"$s"
        if [[ -n "${owner[$port]:-}" ]]; then
            die "port $port wanted by store $side and ${owner[$port]}; change MM_A_PORT / MM_B_PORT"
        fi
        owner[$port]="store $side"
        if [[ "$STORE_KIND" == minio ]]; then owner[$((port + 1))]="store $side (console)"; fi
    done
    for s in "${SIDES[@]}"; do
        read -r side port ak sk bucket offset <<<"$s"
        while read -r c p; do
            if [[ -n "${owner[$p]:-}" ]]; then
                die "port $p wanted by milvus $side ($c, offset $offset) and ${owner[$p]};" \
                    "pick offsets further apart (MM_MILVUS_A_OFFSET / MM_MILVUS_B_OFFSET) or other store ports"
            fi
            owner[$p]="milvus $side ($c)"
        done < <(bash "$HERE/milvus.sh" ports "$offset")
    done
}

# Refuses to start anything while another process (another stack?) holds one of our ports.
check_free() {
    local p busy=()
    for p in $(printf "%s\n" "${!owner[@]}" | sort -n); do
        if port_open "$p"; then busy+=("$p (${owner[$p]})"); fi
    done
    ((${#busy[@]} == 0)) || die "ports in use: ${busy[*]}; another stack may run there" \
        "(scripts/stack.sh status OTHER_DIR), or choose MM_A_PORT / MM_B_PORT / MM_MILVUS_{A,B}_OFFSET"
}

write_env() {
    local side port ak sk bucket offset S
    {
        echo "# The local stack in $DIR, written by scripts/stack.sh start; source it or read KEY=value lines."
        echo "MM_STACK_DIR=$DIR"
        echo "MM_STORE_KIND=$STORE_KIND"
        for s in "${SIDES[@]}"; do
            read -r side port ak sk bucket offset <<<"$s"
            S=${side^^}
            echo "MM_MILVUS_${S}_ADDRESS=127.0.0.1"
            echo "MM_MILVUS_${S}_PORT=$((19530 + offset))"
            echo "MM_MILVUS_${S}_METRICS=$((9091 + offset))"
            echo "MM_MILVUS_${S}_OFFSET=$offset"
            echo "MM_MILVUS_${S}_DIR=$MILVUS/$side"
            echo "MM_STORE_${S}_ADDRESS=127.0.0.1"
            echo "MM_STORE_${S}_PORT=$port"
            echo "MM_STORE_${S}_ENDPOINT=http://127.0.0.1:$port"
            echo "MM_STORE_${S}_ACCESS_KEY=$ak"
            echo "MM_STORE_${S}_SECRET_KEY=$sk"
            echo "MM_STORE_${S}_BUCKET=$bucket"
            echo "MM_STORE_${S}_ROOT_PATH=$ROOT_PATH"
            echo "MM_STORE_${S}_DATA_DIR=$STORES/$side"
        done
    } >"$1"
}

# True when all four run healthy with exactly the settings of this invocation.
all_up() {
    [[ -f "$DIR/stack.env" ]] || return 1
    [[ "$(grep -v '^#' "$DIR/stack.env")" == "$(write_env /dev/stdout | grep -v '^#')" ]] || return 1
    local side port rest stores
    stores=$(bash "$HERE/s3-stores.sh" status "$STORES")
    for s in "${SIDES[@]}"; do
        read -r side port rest <<<"$s"
        grep -q "^store $side: running" <<<"$stores" || return 1
        port_open "$port" || return 1
        bash "$HERE/milvus.sh" status "$MILVUS" "$side" >/dev/null || return 1
    done
}

stop_all() {
    local pids=() side
    for side in a b; do
        bash "$HERE/milvus.sh" stop "$MILVUS" "$side" &
        pids+=($!)
    done
    local rc=0
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    bash "$HERE/s3-stores.sh" stop "$STORES" || rc=1
    return $rc
}

start_all() {
    check_ports
    if all_up; then
        echo "stack in $DIR: already running"
        status_all
        return 0
    fi
    stop_all >/dev/null 2>&1 || true
    check_free
    rm -rf "$STORES" "$MILVUS" "$DIR/stack.env"
    mkdir -p "$MILVUS"
    # Each Milvus creates its own bucket, so that the bucket appearing in the right store's data
    # dir proves the wiring.
    MM_CREATE_BUCKETS=0 bash "$HERE/s3-stores.sh" start "$STORES"

    # Both Milvus at once (5-9 s together instead of 2-3 s each, one after the other).
    local side port ak sk bucket offset t0=$SECONDS
    local -A pid=()
    local failed=()
    for s in "${SIDES[@]}"; do
        read -r side port ak sk bucket offset <<<"$s"
        bash "$HERE/milvus.sh" start "$MILVUS" "$side" "$offset" --s3-address 127.0.0.1 \
            --s3-port "$port" --access-key "$ak" --secret-key "$sk" --bucket "$bucket" \
            --root-path "$ROOT_PATH" >"$MILVUS/$side.start.out" 2>&1 &
        pid[$side]=$!
    done
    for s in "${SIDES[@]}"; do
        read -r side _ <<<"$s"
        wait "${pid[$side]}" || failed+=("$side")
        cat "$MILVUS/$side.start.out"
        rm -f "$MILVUS/$side.start.out"
    done
    if ((${#failed[@]})); then
        echo "stack.sh: milvus ${failed[*]} did not start; stopping the stack" >&2
        stop_all >&2 || true
        exit 1
    fi
    for s in "${SIDES[@]}"; do
        read -r side port ak sk bucket offset <<<"$s"
        if [[ ! -d "$STORES/$side/$bucket" ]]; then
            echo "stack.sh: milvus $side is healthy but did not create $bucket in store $side ($STORES/$side)" >&2
            stop_all >&2 || true
            exit 1
        fi
    done
    write_env "$DIR/stack.env"
    echo "stack in $DIR: up in $((SECONDS - t0))s after the stores; settings in $DIR/stack.env"
}

status_all() {
    local rc=0 side stores
    stores=$(bash "$HERE/s3-stores.sh" status "$STORES")
    echo "$stores"
    for side in a b; do
        grep -q "^store $side: running" <<<"$stores" || rc=1
        bash "$HERE/milvus.sh" status "$MILVUS" "$side" || rc=1
    done
    return $rc
}

case "$CMD" in
    start) start_all ;;
    stop) stop_all; rm -f "$DIR/stack.env" ;;
    status) status_all ;;
    *) usage ;;
esac
