#!/usr/bin/env bash
# Two local S3 stores like the user's minio_A and minio_B, for demos, tests and manual runs:
# s3s-fs by default, real MinIO servers with MM_STORE=minio.
#
#   scripts/s3-stores.sh start DIR    start both in the background, wait until they answer
#   scripts/s3-stores.sh stop DIR     stop both
#   scripts/s3-stores.sh status DIR   say whether each is running
#
# MM_STORE=minio|s3s-fs chooses the server; MM_CREATE_BUCKETS=0 leaves the buckets uncreated.
# Store A: http://127.0.0.1:${MM_A_PORT:-9100}, key minio-a-key / minio-a-secret,
#          data DIR/a, bucket bucket-a, log DIR/a.log, pid DIR/a.pid
# Store B: http://127.0.0.1:${MM_B_PORT:-9200}, key minio-b-key / minio-b-secret,
#          data DIR/b, bucket bucket-b, log DIR/b.log, pid DIR/b.pid
#
# s3s-fs keeps each bucket as a directory of its data dir (the script pre-creates them) and
# objects as plain files under it. MinIO (single drive) keeps its own format in the data dir;
# the script creates the buckets with `mc mb` once the servers answer, and its consoles listen
# on the store port + 1. MinIO's root user and password are the access and secret keys above.
# Binaries: $S3S_FS_BIN, $MINIO_BIN and $MC_BIN, else the cache paths scripts/install-deps.sh
# installs to.
set -euo pipefail

usage() { sed -n '2,21p' "$0" >&2; exit 2; }
die() { echo "s3-stores: $*" >&2; exit 1; }

[[ $# -eq 2 ]] || usage
CMD=$1
DIR=$2
A_PORT="${MM_A_PORT:-9100}"
B_PORT="${MM_B_PORT:-9200}"
# shellcheck source=versions.sh
source "$(dirname "$0")/versions.sh"
KIND="${MM_STORE:-s3s-fs}"
# MM_CREATE_BUCKETS=0 leaves the buckets to their first user (scripts/stack.sh lets Milvus
# create them).
CREATE_BUCKETS="${MM_CREATE_BUCKETS:-1}"
case "$KIND" in
    s3s-fs) BIN="${S3S_FS_BIN:-$DEFAULT_S3S_FS_BIN}"; PROC=s3s-fs ;;
    minio) BIN="${MINIO_BIN:-$DEFAULT_MINIO_BIN}"; PROC=minio; MC="${MC_BIN:-$DEFAULT_MC_BIN}" ;;
    *) die "MM_STORE must be s3s-fs or minio, got '$KIND'" ;;
esac

# name port access-key secret-key bucket
STORES=(
    "a $A_PORT minio-a-key minio-a-secret bucket-a"
    "b $B_PORT minio-b-key minio-b-secret bucket-b"
)

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Ready to serve: s3s-fs when its port accepts, MinIO when its liveness endpoint answers 200.
ready() {
    if [[ "$KIND" == minio ]]; then
        curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$1/minio/health/live"
    else
        port_open "$1"
    fi
}

# Prints the pid in DIR/NAME.pid if that process is alive and is a store server.
running_pid() {
    local pidfile="$DIR/$1.pid" pid
    [[ -f "$pidfile" ]] || return 1
    pid=$(cat "$pidfile")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE 's3s-fs|minio' || return 1
    echo "$pid"
}

stop_one() {
    local name=$1 pid
    if pid=$(running_pid "$name"); then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
        echo "store $name: stopped (pid $pid)"
    else
        echo "store $name: not running"
    fi
    rm -f "$DIR/$name.pid"
}

start() {
    [[ -x "$BIN" ]] || die "$KIND not found at $BIN; run scripts/install-deps.sh"
    [[ "$KIND" != minio || -x "$MC" ]] || die "mc not found at $MC; run scripts/install-deps.sh"
    [[ "$A_PORT" != "$B_PORT" ]] || die "MM_A_PORT and MM_B_PORT must differ"
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    local name port ak sk bucket pid
    for s in "${STORES[@]}"; do
        read -r name port ak sk bucket <<<"$s"
        if pid=$(running_pid "$name"); then
            die "store $name already running (pid $pid); run: $0 stop $DIR"
        fi
        if port_open "$port"; then
            die "port $port (store $name) is already in use; free it or set MM_$(tr a-z A-Z <<<"$name")_PORT"
        fi
    done
    for s in "${STORES[@]}"; do
        read -r name port ak sk bucket <<<"$s"
        if [[ "$KIND" == minio || "$CREATE_BUCKETS" != 1 ]]; then
            mkdir -p "$DIR/$name"
        else
            mkdir -p "$DIR/$name/$bucket"
        fi
        if [[ "$KIND" == minio ]]; then
            MINIO_ROOT_USER="$ak" MINIO_ROOT_PASSWORD="$sk" MINIO_BROWSER=off \
                MINIO_UPDATE=off MINIO_CI_CD=1 \
                nohup "$BIN" server --quiet --address "127.0.0.1:$port" \
                --console-address "127.0.0.1:$((port + 1))" "$DIR/$name" \
                </dev/null >"$DIR/$name.log" 2>&1 &
        else
            nohup "$BIN" --host 127.0.0.1 --port "$port" --access-key "$ak" --secret-key "$sk" \
                "$DIR/$name" </dev/null >"$DIR/$name.log" 2>&1 &
        fi
        echo $! >"$DIR/$name.pid"
    done
    for s in "${STORES[@]}"; do
        read -r name port ak sk bucket <<<"$s"
        local ok=0
        pid=$(cat "$DIR/$name.pid")
        for _ in $(seq 300); do
            if ready "$port"; then ok=1; break; fi
            # Alive, not running_pid: until nohup has exec'd the server, its command line is
            # still this script's.
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if [[ $ok != 1 ]]; then
            echo "s3-stores: store $name did not come up on port $port; log tail:" >&2
            tail -n 20 "$DIR/$name.log" >&2 || true
            for n in a b; do stop_one "$n" >/dev/null; done
            exit 1
        fi
        if [[ "$KIND" == minio && "$CREATE_BUCKETS" == 1 ]]; then
            MC_HOST_s="http://$ak:$sk@127.0.0.1:$port" "$MC" --config-dir "$DIR/.mc" mb --quiet \
                --ignore-existing "s/$bucket" >/dev/null ||
                { for n in a b; do stop_one "$n" >/dev/null; done; die "store $name: mc mb $bucket failed"; }
        fi
        echo "store $name ($KIND): http://127.0.0.1:$port  access key $ak  secret $sk  bucket $bucket" \
             " data $DIR/$name  pid $(cat "$DIR/$name.pid")"
    done
}

case "$CMD" in
    start) start ;;
    stop) for n in a b; do stop_one "$n"; done ;;
    status)
        for s in "${STORES[@]}"; do
            read -r name port _ <<<"$s"
            if pid=$(running_pid "$name"); then echo "store $name: running (pid $pid, port $port)"
            else echo "store $name: not running"; fi
        done ;;
    *) usage ;;
esac
