#!/usr/bin/env bash
# Runs the whole test suite: installs nats-server when missing (the end-to-end tests start
# their own, one per test, on random ports), the current nats-server release (pinned and
# hash-checked, into .tools/), promtool (which checks deploy/prometheus/), the validators of the
# deploy files (hadolint, docker-compose, systemd-analyze, kubernetes-validate) and cargo-nextest;
# then `cargo nextest run --workspace` on Debian's nats-server (2.9, the oldest we support), and
# the end-to-end tests again on the current release. Each test runs in its own process, with the
# per-test timeout of .config/nextest.toml, so a hang fails with the test's name. Arguments go
# to both nextest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/common.sh

ensure_nats_server
ensure_current_nats_server
ensure_promtool
ensure_deploy_validators
ensure_nextest
export PATH="$PWD/.tools/bin:$PATH"

debian_nats=$(command -v nats-server)
echo "== every test, on Debian's $("$debian_nats" --version)"
NATS_SERVER_BIN="$debian_nats" cargo nextest run --workspace --locked "$@"
echo "== the end-to-end tests, on the current release: $("$NATS_CURRENT_BIN" --version)"
NATS_SERVER_BIN="$PWD/$NATS_CURRENT_BIN" cargo nextest run -p frontline-tests --locked "$@"
