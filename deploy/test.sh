#!/usr/bin/env bash
# Runs the whole test suite: installs nats-server when missing (the end-to-end tests start
# their own, one per test, on random ports), then `cargo test --workspace`.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/common.sh

ensure_nats_server
echo "nats-server: $(nats-server --version)"
cargo test --workspace --locked "$@"
