#!/usr/bin/env bash
# One real Milvus standalone (2.3.5 or 2.2.16, the binaries scripts/install-deps.sh unpacks from
# the PyPI wheels), its data in an S3 store or on local disk, every port shifted by OFFSET so
# several run side by side.
#
#   scripts/milvus.sh start DIR NAME [OFFSET] [store flags]   fresh instance, wait until healthy
#   scripts/milvus.sh stop DIR NAME                            SIGTERM, wait, then SIGKILL
#   scripts/milvus.sh status DIR NAME     say whether it runs and is healthy (exit 0 only then)
#   scripts/milvus.sh ports OFFSET        print "component port" for every port it would use
#
# Flags (each also read from an env var; flags win):
#   --milvus-version V MM_MILVUS_VERSION        2.3.5 (default) or 2.2.16
#   --storage KIND     MM_MILVUS_STORAGE        minio (default: an S3 store) or local (data as
#                                               files under DIR/NAME/data/local; no S3 flags)
#   --s3-address HOST  MM_MILVUS_S3_ADDRESS     default 127.0.0.1
#   --s3-port PORT     MM_MILVUS_S3_PORT        required with minio storage
#   --access-key AK    MM_MILVUS_S3_ACCESS_KEY  required with minio storage
#   --secret-key SK    MM_MILVUS_S3_SECRET_KEY  required with minio storage
#   --bucket B         MM_MILVUS_S3_BUCKET      required with minio storage (Milvus creates it)
#   --root-path P      MM_MILVUS_S3_ROOT_PATH   default files
#   --auth on|off      MM_MILVUS_AUTH           off (default) or on: common.security.
#                                               authorizationEnabled, user root / password Milvus
#   --tls off|one-way|mutual  MM_MILVUS_TLS     off (default); else common.security.tlsMode 1
#                                               or 2 with a CA, a server certificate for
#                                               localhost and 127.0.0.1 and a client certificate
#                                               made by openssl in DIR/NAME/tls/ (ca.pem,
#                                               server.pem/key, client.pem/key)
#   --set KEY=VALUE    (flag only, repeatable)  one more milvus.yaml key, by its dotted path
#                                               (it must be in the template), e.g.
#                                               --set proxy.grpc.serverMaxSendSize=4194304
# OFFSET defaults to 0. Ports: proxy 19530+N (internal 19529+N), rootCoord 13100+N, queryCoord
# 19531+N, queryNode 21123+N, indexCoord 22930+N, indexNode 21121+N, dataCoord 13333+N,
# dataNode 21124+N, etcd 2379+N / 2380+N, natsmq 4222+N (unused), metrics and /healthz 9091+N.
# All stay below Linux's ephemeral range (32768-60999) for offsets below 9838, so no outgoing
# connection of another process can hold one (Milvus's own rootCoord default, 53100, is in it).
# Everything listens on 127.0.0.1 only (2.2.16 has no `<component>.ip` keys: its components
# register with the machine's own address).
#
# DIR/NAME holds configs/{milvus.yaml,embedEtcd.yaml,glog.conf}, data/ (etcd, rocksmq, local
# cache), logs/ (C++ glog files), run/, milvus.log (stdout+stderr: Go, etcd), milvus.pid and
# instance.env (the ports and store settings, shell-sourcable). start wipes DIR/NAME first (a
# fresh instance: Milvus restarted on old data fails Flush for ~30 s), unless the instance is
# already running healthy with the same settings, then start does nothing. It does not clear
# the object store: old objects under the root path stay there.
#
# Binary from $MILVUS_HOME (default $MM_TOOLS_DIR/milvus-2.3.5, MM_TOOLS_DIR defaults to
# ~/.cache/milvus-migrate/tools), for 2.2.16 from $MILVUS_22_HOME (default
# $MM_TOOLS_DIR/milvus-2.2.16). 2.2.16 runs with local storage only here: with S3 it dies in
# segcore at start-up on these machines. MM_MILVUS_START_TIMEOUT (s, default 180) bounds start,
# MM_MILVUS_STOP_TIMEOUT (s, default 30) the wait before SIGKILL. Milvus runs with a clean
# environment (env -i): it reads every environment variable as a config override (MINIO_PORT,
# PROXY_PORT, LOG_LEVEL, ...), so nothing from the caller's shell leaks into it.
set -euo pipefail

usage() { sed -n '2,52p' "$0" >&2; exit 2; }
die() { echo "milvus.sh: $*" >&2; exit 1; }

START_TIMEOUT="${MM_MILVUS_START_TIMEOUT:-180}"
STOP_TIMEOUT="${MM_MILVUS_STOP_TIMEOUT:-30}"

# component base-port; the instance uses base + OFFSET.
BASE_PORTS=(
    "proxy 19530" "proxy.internal 19529" "rootCoord 13100" "queryCoord 19531"
    "queryNode 21123" "indexCoord 22930" "indexNode 21121" "dataCoord 13333"
    "dataNode 21124" "etcd.client 2379" "etcd.peer 2380" "natsmq 4222" "metrics 9091"
)

port_of() { # component offset
    local c p
    for e in "${BASE_PORTS[@]}"; do
        read -r c p <<<"$e"
        if [[ "$c" == "$1" ]]; then echo $((p + $2)); return; fi
    done
    die "unknown component $1"
}

print_ports() {
    local c p
    for e in "${BASE_PORTS[@]}"; do
        read -r c p <<<"$e"
        echo "$c $((p + $1))"
    done
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

healthy() { # metrics-port
    [[ "$(curl -fsS --noproxy '*' -m 2 "http://127.0.0.1:$1/healthz" 2>/dev/null)" == OK ]]
}

# Prints the pid in DIR/NAME/milvus.pid if that process is alive and is a milvus standalone.
running_pid() {
    local pidfile="$D/milvus.pid" pid
    [[ -f "$pidfile" ]] || return 1
    pid=$(cat "$pidfile")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"bin/milvus run standalone"* ]] || return 1
    echo "$pid"
}

# Prints a variable of DIR/NAME/instance.env (written at start).
recorded() { # variable
    [[ -f "$D/instance.env" ]] || return 1
    (
        # shellcheck source=/dev/null
        source "$D/instance.env"
        echo "${!1}"
    )
}

# The first errors and the last log lines (not the goroutine dump a crash ends with).
log_failure() {
    local log="$D/milvus.log"
    echo "--- first errors in $log:" >&2
    grep -E '\[(ERROR|FATAL)\]|^panic|^fatal error|terminate called' "$log" 2>/dev/null \
        | grep -v -E 'leader changed|find no available' | head -n 5 | cut -c1-400 >&2 || true
    echo "--- last log lines:" >&2
    grep -E '^\[|^\{|^panic|^fatal error|terminate called' "$log" 2>/dev/null | tail -n 15 \
        | cut -c1-400 >&2 || true
    echo "---" >&2
}

# Signed HEAD of the bucket: a wrong key otherwise costs ~50 s of Milvus retries before it
# aborts. 200 and 404 (Milvus creates a missing bucket) are fine.
check_store() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' -m 10 -I \
        -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
        --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
        "http://$S3_ADDRESS:$S3_PORT/$S3_BUCKET" 2>/dev/null || true)
    case "$code" in
        200|404) ;;
        403) die "milvus $NAME: the store on $S3_ADDRESS:$S3_PORT rejects access key $S3_ACCESS_KEY (HTTP 403 for bucket $S3_BUCKET); check the keys" ;;
        *) echo "milvus.sh: warning: could not check the store's credentials (HTTP '$code'); starting anyway" >&2 ;;
    esac
}

stop_instance() {
    local pid
    if pid=$(running_pid); then
        kill -TERM "$pid" 2>/dev/null || true
        local waited=0
        while kill -0 "$pid" 2>/dev/null && ((waited < STOP_TIMEOUT * 10)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            echo "milvus $NAME: killed (pid $pid, no exit ${STOP_TIMEOUT}s after SIGTERM)"
        else
            echo "milvus $NAME: stopped (pid $pid)"
        fi
    else
        echo "milvus $NAME: not running"
    fi
    rm -f "$D/milvus.pid"
}

status_instance() {
    local pid metrics proxy
    if pid=$(running_pid); then
        metrics=$(recorded MILVUS_METRICS_PORT || echo "?")
        proxy=$(recorded MILVUS_PORT || echo "?")
        if [[ "$metrics" != "?" ]] && healthy "$metrics"; then
            echo "milvus $NAME: running, healthy (pid $pid, proxy 127.0.0.1:$proxy, metrics $metrics)"
            return 0
        fi
        echo "milvus $NAME: running, NOT healthy (pid $pid, proxy 127.0.0.1:$proxy, metrics $metrics)"
        return 1
    fi
    echo "milvus $NAME: not running"
    return 1
}

# Writes DIR/NAME/tls/: a CA, a server certificate for localhost and 127.0.0.1, and a client
# certificate (for mutual TLS), all signed by the CA.
write_tls() {
    local t="$D/tls"
    mkdir -p "$t"
    (
        cd "$t"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=milvus-test-ca" \
            -keyout ca.key -out ca.pem
        for who in server client; do
            openssl req -newkey rsa:2048 -nodes -subj "/CN=$who" -keyout "$who.key" -out "$who.csr"
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=%s\n' \
                "$([[ $who == server ]] && echo serverAuth || echo clientAuth)" >"$who.ext"
            openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
                -days 3650 -extfile "$who.ext" -out "$who.pem"
        done
    ) >"$D/tls.log" 2>&1 || die "milvus $NAME: openssl could not make the TLS files: $(tail -3 "$D/tls.log")"
}

# Writes DIR/NAME/configs/milvus.yaml from the wheel's template: every {{ ... }} placeholder
# filled, then single keys (dotted paths) set in place, keeping the template's comments.
write_config() {
    local cfg="$D/configs" o=$OFFSET
    mkdir -p "$cfg" "$D/data" "$D/logs" "$D/run"
    # Where the data go: an S3 store (the `minio` block) or files under localStorage.path.
    local store_args=("=common.storageType=local")
    if [[ "$STORAGE" == minio ]]; then
        store_args=("=common.storageType=minio"
            "=minio.address=$S3_ADDRESS" "=minio.port=$S3_PORT" "=minio.accessKeyID=$S3_ACCESS_KEY"
            "=minio.secretAccessKey=$S3_SECRET_KEY" "=minio.useSSL=false" "=minio.bucketName=$S3_BUCKET"
            "=minio.rootPath=$S3_ROOT_PATH" "=minio.useIAM=false" "=minio.cloudProvider=aws"
            "=minio.region=" "=minio.useVirtualHost=false")
    fi
    # Arguments: template, output, then {}name=value (placeholders), =dotted.key=value (set)
    # and +dotted.key=value (insert).
    python3 - "$MILVUS_HOME/config.yaml.template" "$cfg/milvus.yaml" \
        "{}etcd_port=$(port_of etcd.client "$o")" "{}etcd_log_level=warn" "{}etcd_log_path=stdout" \
        "{}etcd_data_dir=$D/data/etcd" "{}local_storage_dir=$D/data/local" \
        "{}rocksmq_data_dir=$D/data/rdb_data" "{}rocketmq_data_dir=$D/data/rdb_data" \
        "{}system_log_path=\"\"" "{}log_stdout=true" "{}system_log_level=info" \
        "{}root_coord_port=$(port_of rootCoord "$o")" "{}proxy_port=$(port_of proxy "$o")" \
        "{}proxy_internal_port=$(port_of proxy.internal "$o")" \
        "{}query_coord_port=$(port_of queryCoord "$o")" "{}query_node_port=$(port_of queryNode "$o")" \
        "{}index_coord_port=$(port_of indexCoord "$o")" "{}index_node_port=$(port_of indexNode "$o")" \
        "{}data_coord_port=$(port_of dataCoord "$o")" "{}data_node_port=$(port_of dataNode "$o")" \
        "{}server_pem_path=$D/tls/server.pem" "{}server_key_path=$D/tls/server.key" \
        "{}ca_pem_path=$D/tls/ca.pem" \
        "{}authorization_enabled=$AUTH_ENABLED" "{}tls_mode=$TLS_MODE" \
        "?etcd.endpoints=127.0.0.1:$(port_of etcd.client "$o")" \
        "=indexCoord.bindIndexNodeMode.address=127.0.0.1:$(port_of indexCoord "$o")" \
        "=common.gracefulStopTimeout=10" "${store_args[@]}" \
        "?natsmq.server.port=$(port_of natsmq "$o")" "?natsmq.server.storeDir=$D/data/nats" \
        "?natsmq.server.monitor.logFile=$D/logs/nats.log" \
        "?rootCoord.ip=127.0.0.1" "?proxy.ip=127.0.0.1" "?queryCoord.ip=127.0.0.1" \
        "?queryNode.ip=127.0.0.1" "?indexNode.ip=127.0.0.1" "?dataCoord.ip=127.0.0.1" \
        "?dataNode.ip=127.0.0.1" "+etcd.config.path=$cfg/embedEtcd.yaml" \
        "${EXTRA_SETTINGS[@]/#/=}" <<'PY'
# Fills the template's {{ name(type): default }} placeholders (every one must be given), sets
# =dotted.keys in place (the key must exist; the template's comment is kept; the value goes
# in as a YAML string unless it is a number, true/false or a host:port), sets ?dotted.keys
# likewise where the template has them as plain values (keys of one release only), and inserts
# +parent.key.leaf keys the template lacks right under the existing parent block. Placeholder
# values the template does not use are ignored (the releases name some differently).
import json, re, sys
src, dst, *args = sys.argv[1:]
placeholders, settings, inserts, optional = {}, {}, {}, set()
for a in args:
    if a.startswith("{}"):
        k, v = a[2:].split("=", 1); placeholders[k] = v
    elif a.startswith("="):
        k, v = a[1:].split("=", 1); settings[k] = v
    elif a.startswith("?"):
        k, v = a[1:].split("=", 1); settings[k] = v; optional.add(k)
    elif a.startswith("+"):
        k, v = a[1:].split("=", 1); inserts[k] = v
def value(v):
    plain = re.fullmatch(r"[0-9]+|true|false|127\.0\.0\.1:[0-9]+|[A-Za-z0-9_/.-]+", v)
    return v if plain and v else json.dumps(v)
text = open(src, encoding="utf-8").read()
def fill(m):
    name = re.match(r"\s*([A-Za-z0-9_]+)", m.group(1)).group(1)
    if name not in placeholders:
        sys.exit(f"milvus.sh: no value for placeholder {m.group(0)} of {src}")
    return placeholders[name]
text = re.sub(r"\{\{(.*?)\}\}", fill, text)
out, stack, done = [], [], set()
for line in text.splitlines():
    m = re.match(r"^( *)([A-Za-z0-9_]+):([^#]*)(#.*)?$", line)
    if not m:
        out.append(line)
        continue
    indent, key, comment = m.group(1), m.group(2), m.group(4)
    stack = stack[: len(indent) // 2] + [key]
    path = ".".join(stack)
    # An optional key whose value is a block (2.2's etcd.endpoints list) stays as it is.
    if path in settings and not (path in optional and not m.group(3).strip()):
        line = f"{indent}{key}: {value(settings[path])}" + (f" {comment}" if comment else "")
        done.add(path)
    out.append(line)
    for k, v in inserts.items():
        parent, *rest = k.split(".")
        if parent == path and not indent:
            for i, part in enumerate(rest[:-1]):
                out.append("  " * (i + 1) + part + ":")
            out.append("  " * len(rest) + f"{rest[-1]}: {value(v)}")
            done.add(k)
missing = (set(settings) | set(inserts)) - done - optional
if missing:
    sys.exit(f"milvus.sh: keys not found in {src}: {sorted(missing)}")
open(dst, "w", encoding="utf-8").write("\n".join(out) + "\n")
PY

    local client peer
    client=$(port_of etcd.client "$OFFSET")
    peer=$(port_of etcd.peer "$OFFSET")
    cat >"$cfg/embedEtcd.yaml" <<YAML
# Embedded etcd of milvus $NAME (written by scripts/milvus.sh).
name: "$NAME"
data-dir: $D/data/etcd
listen-client-urls: http://127.0.0.1:$client
advertise-client-urls: http://127.0.0.1:$client
listen-peer-urls: http://127.0.0.1:$peer
initial-advertise-peer-urls: http://127.0.0.1:$peer
initial-cluster: "$NAME=http://127.0.0.1:$peer"
initial-cluster-state: new
YAML
    if [[ -f "$MILVUS_HOME/glog.conf" ]]; then
        sed "s|^--log_dir=.*|--log_dir=$D/logs/|" "$MILVUS_HOME/glog.conf" >"$cfg/glog.conf"
    fi
    # 2.2's segcore asserts that this file exists (2.3 does not read it).
    cat >"$cfg/easylogging.yaml" <<YAML
* GLOBAL:
    FORMAT = "[%datetime][%level]%msg"
    ENABLED = true
    TO_FILE = false
    TO_STANDARD_OUTPUT = true
* DEBUG:
    ENABLED = false
YAML
}

write_instance_env() {
    {
        echo "# milvus $NAME, written by scripts/milvus.sh start"
        echo "MILVUS_NAME=$NAME"
        echo "MILVUS_DIR=$D"
        echo "MILVUS_OFFSET=$OFFSET"
        echo "MILVUS_ADDRESS=127.0.0.1"
        echo "MILVUS_PORT=$(port_of proxy "$OFFSET")"
        echo "MILVUS_METRICS_PORT=$(port_of metrics "$OFFSET")"
        echo "MILVUS_ETCD_PORT=$(port_of etcd.client "$OFFSET")"
        echo "MILVUS_VERSION=$VERSION"
        echo "MILVUS_STORAGE=$STORAGE"
        # Only when on, so instances started before the flag existed keep matching.
        if [[ "$AUTH" == on ]]; then echo "MILVUS_AUTH=on"; fi
        if [[ "$TLS" != off ]]; then echo "MILVUS_TLS=$TLS"; echo "MILVUS_TLS_DIR=$D/tls"; fi
        if ((${#EXTRA_SETTINGS[@]})); then echo "MILVUS_SET=$(printf %q "${EXTRA_SETTINGS[*]}")"; fi
        echo "MILVUS_LOCAL_PATH=$D/data/local"
        echo "MILVUS_S3_ADDRESS=$S3_ADDRESS"
        echo "MILVUS_S3_PORT=$S3_PORT"
        echo "MILVUS_S3_ACCESS_KEY=$(printf %q "$S3_ACCESS_KEY")"
        echo "MILVUS_S3_SECRET_KEY=$(printf %q "$S3_SECRET_KEY")"
        echo "MILVUS_S3_BUCKET=$(printf %q "$S3_BUCKET")"
        echo "MILVUS_S3_ROOT_PATH=$(printf %q "$S3_ROOT_PATH")"
        echo "MILVUS_BIN=$BIN"
    } >"$1"
}

start_instance() {
    [[ -x "$BIN" && -f "$MILVUS_HOME/config.yaml.template" ]] \
        || die "Milvus not found under $MILVUS_HOME; run scripts/install-deps.sh"
    if [[ "$STORAGE" == minio ]]; then
        [[ -n "$S3_PORT" && -n "$S3_ACCESS_KEY" && -n "$S3_SECRET_KEY" && -n "$S3_BUCKET" ]] \
            || die "start needs --s3-port, --access-key, --secret-key and --bucket (or MM_MILVUS_S3_* env vars), or --storage local"
        [[ "$S3_PORT" =~ ^[0-9]+$ ]] || die "bad S3 port: $S3_PORT"
    fi
    local metrics pid
    metrics=$(port_of metrics "$OFFSET")

    # Already running? Keep it when healthy with the same settings.
    if pid=$(running_pid); then
        local want have
        want=$(write_instance_env /dev/stdout | grep -v '^#')
        have=$(grep -v '^#' "$D/instance.env" 2>/dev/null || true)
        if [[ "$want" != "$have" ]]; then
            die "milvus $NAME already runs (pid $pid) with other settings; run: $0 stop $DIR $NAME"
        fi
        if healthy "$metrics"; then
            echo "milvus $NAME: already running, healthy (pid $pid, proxy 127.0.0.1:$(port_of proxy "$OFFSET"), metrics $metrics)"
            return 0
        fi
        echo "milvus $NAME: running but not healthy; restarting it fresh" >&2
        stop_instance >&2
    fi

    local c p busy=()
    while read -r c p; do
        if port_open 127.0.0.1 "$p"; then busy+=("$p ($c)"); fi
    done < <(print_ports "$OFFSET")
    ((${#busy[@]} == 0)) || die "milvus $NAME (offset $OFFSET): ports in use: ${busy[*]}; stop what holds them or pick another offset"
    if [[ "$STORAGE" == minio ]]; then
        port_open "$S3_ADDRESS" "$S3_PORT" \
            || die "milvus $NAME: no S3 store answers on $S3_ADDRESS:$S3_PORT; start it first (scripts/s3-stores.sh)"
        check_store
    fi

    # Fresh instance: nothing of an earlier run survives.
    rm -rf "$D"
    mkdir -p "$D"
    if [[ "$TLS" != off ]]; then write_tls; fi
    write_config
    write_instance_env "$D/instance.env"

    # setsid: its own session, so a Ctrl-C in the caller's terminal does not reach it.
    (
        cd "$D"
        exec setsid env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$HOME" LANG=C.UTF-8 \
            MILVUSCONF="$D/configs/" DEPLOY_MODE=STANDALONE METRICS_PORT="$metrics" \
            MILVUS_RUN_DIR="$D/run" LD_LIBRARY_PATH="$MILVUS_HOME/bin" \
            "$BIN" run standalone </dev/null >"$D/milvus.log" 2>&1
    ) &
    pid=$!
    disown "$pid" # no "Aborted" job notice from this shell if it crashes
    echo "$pid" >"$D/milvus.pid"

    local t0=$SECONDS
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$D/milvus.pid"
            echo "milvus.sh: milvus $NAME exited during start-up" >&2
            log_failure
            exit 1
        fi
        if healthy "$metrics"; then break; fi
        if ((SECONDS - t0 >= START_TIMEOUT)); then
            echo "milvus.sh: milvus $NAME not healthy on http://127.0.0.1:$metrics/healthz after ${START_TIMEOUT}s" >&2
            log_failure
            stop_instance >&2
            exit 1
        fi
        sleep 0.25
    done
    local where="store $S3_ADDRESS:$S3_PORT bucket $S3_BUCKET rootPath $S3_ROOT_PATH"
    if [[ "$STORAGE" == local ]]; then where="local storage $D/data/local"; fi
    echo "milvus $NAME $VERSION: healthy in $((SECONDS - t0))s (pid $pid, proxy 127.0.0.1:$(port_of proxy "$OFFSET")," \
         "metrics $metrics, $where, dir $D)"
}

[[ $# -ge 1 ]] || usage
CMD=$1
shift
if [[ "$CMD" == ports ]]; then
    [[ $# -eq 1 && "$1" =~ ^[0-9]+$ ]] || usage
    print_ports "$1"
    exit 0
fi
[[ $# -ge 2 ]] || usage
DIR=$1
NAME=$2
shift 2
[[ "$NAME" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "bad instance name: $NAME"
OFFSET=0
if [[ $# -gt 0 && "$1" != -* ]]; then OFFSET=$1; shift; fi
[[ "$OFFSET" =~ ^[0-9]+$ ]] || die "bad offset: $OFFSET"
S3_ADDRESS="${MM_MILVUS_S3_ADDRESS:-127.0.0.1}"
S3_PORT="${MM_MILVUS_S3_PORT:-}"
S3_ACCESS_KEY="${MM_MILVUS_S3_ACCESS_KEY:-}"
S3_SECRET_KEY="${MM_MILVUS_S3_SECRET_KEY:-}"
S3_BUCKET="${MM_MILVUS_S3_BUCKET:-}"
S3_ROOT_PATH="${MM_MILVUS_S3_ROOT_PATH:-files}"
VERSION="${MM_MILVUS_VERSION:-2.3.5}"
STORAGE="${MM_MILVUS_STORAGE:-minio}"
AUTH="${MM_MILVUS_AUTH:-off}"
TLS="${MM_MILVUS_TLS:-off}"
EXTRA_SETTINGS=()
while [[ $# -gt 0 ]]; do
    [[ $# -ge 2 ]] || die "flag $1 needs a value"
    case "$1" in
        --milvus-version) VERSION=$2 ;;
        --storage) STORAGE=$2 ;;
        --auth) AUTH=$2 ;;
        --tls) TLS=$2 ;;
        --s3-address) S3_ADDRESS=$2 ;;
        --s3-port) S3_PORT=$2 ;;
        --access-key) S3_ACCESS_KEY=$2 ;;
        --secret-key) S3_SECRET_KEY=$2 ;;
        --bucket) S3_BUCKET=$2 ;;
        --root-path) S3_ROOT_PATH=$2 ;;
        --set)
            [[ "$2" =~ ^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+=.*$ ]] || die "--set wants KEY=VALUE with a dotted milvus.yaml key, got '$2'"
            EXTRA_SETTINGS+=("$2") ;;
        *) die "unknown flag: $1" ;;
    esac
    shift 2
done

[[ "$STORAGE" == minio || "$STORAGE" == local ]] || die "--storage must be minio or local, got '$STORAGE'"
[[ "$AUTH" == on || "$AUTH" == off ]] || die "--auth must be on or off, got '$AUTH'"
AUTH_ENABLED=false
if [[ "$AUTH" == on ]]; then AUTH_ENABLED=true; fi
case "$TLS" in
    off) TLS_MODE=0 ;;
    one-way) TLS_MODE=1 ;;
    mutual) TLS_MODE=2 ;;
    *) die "--tls must be off, one-way or mutual, got '$TLS'" ;;
esac
TOOLS="${MM_TOOLS_DIR:-$HOME/.cache/milvus-migrate/tools}"
case "$VERSION" in
    2.3.5) MILVUS_HOME="${MILVUS_HOME:-$TOOLS/milvus-2.3.5}" ;;
    2.2.16) MILVUS_HOME="${MILVUS_22_HOME:-$TOOLS/milvus-2.2.16}" ;;
    *) die "--milvus-version must be 2.3.5 or 2.2.16 (what scripts/install-deps.sh installs), got '$VERSION'" ;;
esac
BIN="$MILVUS_HOME/bin/milvus"

if [[ "$CMD" == start ]]; then mkdir -p "$DIR"; fi
if [[ -d "$DIR" ]]; then DIR=$(cd "$DIR" && pwd); fi
D="$DIR/$NAME"

case "$CMD" in
    start) start_instance ;;
    stop) stop_instance ;;
    status) status_instance ;;
    *) usage ;;
esac
