#!/usr/bin/env bash
# Fuzzes the input parsers (webhook forms and signatures, envelopes, replies) with libFuzzer,
# each for a bounded time, and prints how many inputs each target ran. Not part of CI.
#   deploy/fuzz.sh            # 60 s per target
#   FUZZ_SECONDS=600 deploy/fuzz.sh webhook
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(webhook envelope reply signature_settings)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi
# cargo-fuzz needs nightly-only flags; a stable toolchain accepts them with RUSTC_BOOTSTRAP.
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi

for target in "${targets[@]}"; do
    echo "== $target ($seconds s)"
    log=$(mktemp)
    cargo fuzz run "$target" -- -max_total_time="$seconds" -print_final_stats=1 2>&1 | tee "$log" | grep -E "^#[0-9]+.*(DONE|pulse)|CRASH|panicked" || true
    runs=$(grep -E "stat::number_of_executed_units" "$log" | awk '{print $2}')
    echo "$target: ${runs:-?} executions"
    rm -f "$log"
done
