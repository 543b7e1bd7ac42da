#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (s3s-fs, Milvus 2.3.5,
# MinIO, mc and milvus-backup, cached under ~/.cache/milvus-migrate), then runs every unit and
# integration test.
#
#   scripts/test.sh [TEST-ARGS...]     arguments go to the test binaries (after `--`)
#
# The copy tests start their own real s3s-fs and MinIO servers on free loopback ports and stop
# them at the end. The tests that need real Milvus run in two rounds, one stack at a time (two
# Milvus at once is what the 2-core machine carries well):
#   1. everything but `minio_stack::` (single Milvus on local disk also start, in
#      target/mm-test-versions: 2.2.16 and 2.3.5 for `versions::` at offsets 1400 and 1500,
#      2.3.5 with authentication at 1800, 2.3.5 for the `migrate --all` test at 1900, 2.3.5
#      with TLS at 2000 and 2100, and 2.3.5 with a 2 MiB answer limit at 2300), with the
#      s3s-fs stack this script starts with
#      scripts/stack.sh in target/mm-test-stack (Milvus A/B at offsets 1000/1100: proxies 20530
#      and 20630; stores on 9300 and 9400, so a demo stack on the default ports may run at the
#      same time), found through MM_TEST_STACK;
#   2. `minio_stack::` (a full migrate on MinIO stores, and milvus-backup's own create and
#      restore against ours), with the same ports on a MinIO stack in
#      target/mm-test-stack-minio, found through MM_TEST_STACK_MINIO.
# Each stack is stopped when its round ends (or the script exits).
# MM_TEST_THREADS (default 2) sets --test-threads.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
# The tools build (s3s-fs with cargo; MinIO, mc and milvus-backup with go) while cargo builds
# the tests: on a fresh machine each alone leaves a core idle much of the time (links, long
# dependency chains), so together they take little more than the longer one.
deps_log=target/install-deps.log
bash scripts/install-deps.sh >"$deps_log" 2>&1 &
deps_pid=$!
# Build first: no stack is started for a build that fails.
if ! cargo test --locked --no-run; then
    wait "$deps_pid" || true
    exit 1
fi
if ! wait "$deps_pid"; then
    cat "$deps_log" >&2
    echo "test.sh: scripts/install-deps.sh failed (log above, and in $deps_log)" >&2
    exit 1
fi
grep -E '^install-deps: (building|the |going on)' "$deps_log" >&2 || true
# shellcheck source=/dev/null
source scripts/env.sh
# The environment's AWS_CA_BUNDLE points object stores at TLS roots; tests use plain http.
unset AWS_CA_BUNDLE
ports=(MM_MILVUS_A_OFFSET=1000 MM_MILVUS_B_OFFSET=1100 MM_A_PORT=9300 MM_B_PORT=9400)
stack=target/mm-test-stack
minio_stack=target/mm-test-stack-minio
# The version matrix's single instances (tests/it/support/single.rs starts them on first use).
versions=target/mm-test-versions
stop_versions() {
    for m in m22local m22b m23local m23auth m23whole m23tls m23mtls m23small; do bash scripts/milvus.sh stop "$versions" "$m" >/dev/null 2>&1 || true; done
}
trap 'bash scripts/stack.sh stop "$stack" >/dev/null 2>&1 || true
      stop_versions
      MM_STORE=minio bash scripts/stack.sh stop "$minio_stack" >/dev/null 2>&1 || true' EXIT
threads="--test-threads=${MM_TEST_THREADS:-2}"

env "${ports[@]}" bash scripts/stack.sh start "$stack"
export MM_TEST_STACK="$PWD/$stack"
cargo test --locked -- "$threads" --skip minio_stack:: "$@"
bash scripts/stack.sh stop "$stack" >/dev/null
stop_versions

env "${ports[@]}" MM_STORE=minio bash scripts/stack.sh start "$minio_stack"
export MM_TEST_STACK_MINIO="$PWD/$minio_stack"
cargo test --locked --test it -- "$threads" minio_stack:: "$@"
