#!/usr/bin/env bash
# Runs the whole test suite: installs nats-server when missing (the end-to-end tests start
# their own, one per test, on random ports) and promtool (which checks deploy/prometheus/),
# then `cargo test --workspace`.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/common.sh

ensure_nats_server
ensure_promtool
echo "nats-server: $(nats-server --version)"
cargo test --workspace --locked "$@"
