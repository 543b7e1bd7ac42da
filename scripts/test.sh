#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (s3s-fs and Milvus
# 2.3.5, cached under ~/.cache/milvus-migrate), then runs every unit and integration test.
#
#   scripts/test.sh [TEST-ARGS...]     arguments go to the test binaries (after `--`)
#
# The integration tests start their own real s3s-fs servers on free loopback ports and stop
# them at the end. The tests that need real Milvus use the pair this script starts with
# scripts/stack.sh in target/mm-test-stack (Milvus A/B at offsets 1000/1100: proxies 20530 and
# 20630; stores on 9300 and 9400, so a demo stack on the default ports may run at the same
# time) and find through MM_TEST_STACK; it is stopped when the script exits.
# MM_TEST_THREADS (default 2) sets --test-threads.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# shellcheck source=/dev/null
source scripts/env.sh
# The environment's AWS_CA_BUNDLE points object stores at TLS roots; tests use plain http.
unset AWS_CA_BUNDLE

# Build first: no stack is started for a build that fails.
cargo test --locked --no-run
stack=target/mm-test-stack
trap 'bash scripts/stack.sh stop "$stack" >/dev/null || true' EXIT
MM_MILVUS_A_OFFSET=1000 MM_MILVUS_B_OFFSET=1100 MM_A_PORT=9300 MM_B_PORT=9400 \
    bash scripts/stack.sh start "$stack"
MM_TEST_STACK="$PWD/$stack"
export MM_TEST_STACK

cargo test --locked -- --test-threads="${MM_TEST_THREADS:-2}" "$@"
