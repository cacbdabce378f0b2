#!/usr/bin/env bash
# Runs the whole test suite: installs nats-server when missing (the end-to-end tests start
# their own, one per test, on random ports), promtool (which checks deploy/prometheus/) and
# cargo-nextest, then `cargo nextest run --workspace` (each test in its own process, with the
# per-test timeout of .config/nextest.toml, so a hang fails with the test's name).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/common.sh

ensure_nats_server
ensure_promtool
ensure_nextest
echo "nats-server: $(nats-server --version)"
cargo nextest run --workspace --locked "$@"
