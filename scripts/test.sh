#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (s3s-fs, cached under
# ~/.cache/milvus-migrate), then runs every unit and integration test. The integration tests
# start their own real s3s-fs servers on free loopback ports and stop them at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# shellcheck source=/dev/null
source scripts/env.sh
# The environment's AWS_CA_BUNDLE points object stores at TLS roots; tests use plain http.
unset AWS_CA_BUNDLE
cargo test --locked -- --test-threads="${MM_TEST_THREADS:-2}" "$@"
