#!/usr/bin/env bash
# Builds release binaries, starts its own nats-server, resolver, ingress and a bare `hello`
# server on loopback, and measures in one go: closed-loop maximum throughput (pre-events,
# post-events, hello; 64 connections, warm-up, median of 3 runs), open-loop latency at 2,000 and
# 5,000 req/s, pre-event throughput with one and with two resolvers, peak RSS of every process,
# and the criterion micro-benchmarks. Writes BENCHMARKS.md. Takes about 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/common.sh
ensure_nats_server

RUNS="${BENCH_RUNS:-3}"
SECONDS_PER_RUN="${BENCH_SECONDS:-5}"
CONNECTIONS=64
TOKEN="bench-token-$(date +%s)"
PUBLIC_URL="https://hooks.example.com"
work=$(mktemp -d)
pids=()
cleanup() {
    [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
    local port
    while :; do
        port=$(( (RANDOM % 20000) + 30000 ))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
}
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
peak_rss_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

echo "building release binaries..."
cargo build --release --locked --bins -q

NATS_PORT=$(free_port); INGRESS_PORT=$(free_port); INGRESS_ADMIN=$(free_port)
RESOLVER_ADMIN=$(free_port); RESOLVER2_ADMIN=$(free_port); HELLO_PORT=$(free_port)
nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$work/nats" -l "$work/nats.log" &
NATS_PID=$!; pids+=("$NATS_PID")
wait_port "$NATS_PORT"

export NATS_URL="nats://127.0.0.1:$NATS_PORT" RUST_LOG=warn TWILIO_AUTH_TOKEN="$TOKEN" PUBLIC_URL
RESOLVER_ADMIN_LISTEN="127.0.0.1:$RESOLVER_ADMIN" CUSTOMER_DIRECTORY=file:deploy/customers.example.json \
    target/release/resolver &
RESOLVER_PID=$!; pids+=("$RESOLVER_PID")
INGRESS_LISTEN="127.0.0.1:$INGRESS_PORT" INGRESS_ADMIN_LISTEN="127.0.0.1:$INGRESS_ADMIN" \
    STREAM_MAX_AGE=1h target/release/ingress &
INGRESS_PID=$!; pids+=("$INGRESS_PID")
target/release/hello "127.0.0.1:$HELLO_PORT" &
HELLO_PID=$!; pids+=("$HELLO_PID")
wait_port "$INGRESS_PORT"; wait_port "$HELLO_PORT"; wait_port "$RESOLVER_ADMIN"
sleep 1

loadgen() { target/release/loadgen --token "$TOKEN" --public-url "$PUBLIC_URL" "$@"; }
closed() { loadgen --target "$1" --kind "$2" --connections "$CONNECTIONS" --warmup 2 --duration "$SECONDS_PER_RUN" --runs "$RUNS" --row "$3"; }
opened() { loadgen --target "127.0.0.1:$INGRESS_PORT" --kind "$1" --rate "$2" --connections "$CONNECTIONS" --warmup 1 --duration "$SECONDS_PER_RUN" --row "$3"; }

rows=()
echo "closed loop: hello, pre, post"
rows+=("$(closed "127.0.0.1:$HELLO_PORT" post "hello (HTTP ceiling)")")
rows+=("$(closed "127.0.0.1:$INGRESS_PORT" pre "pre-events, 1 resolver")")
rows+=("$(closed "127.0.0.1:$INGRESS_PORT" post "post-events")")
echo "open loop: 2000 and 5000 req/s"
for rate in 2000 5000; do
    rows+=("$(opened pre "$rate" "pre-events")")
    rows+=("$(opened post "$rate" "post-events")")
done
RSS_INGRESS=$(peak_rss_mb "$INGRESS_PID"); RSS_RESOLVER=$(peak_rss_mb "$RESOLVER_PID")
RSS_NATS=$(peak_rss_mb "$NATS_PID"); RSS_HELLO=$(peak_rss_mb "$HELLO_PID")

echo "closed loop: pre-events with two resolvers"
RESOLVER_ADMIN_LISTEN="127.0.0.1:$RESOLVER2_ADMIN" CUSTOMER_DIRECTORY=file:deploy/customers.example.json \
    target/release/resolver &
pids+=("$!")
wait_port "$RESOLVER2_ADMIN"; sleep 1
rows+=("$(closed "127.0.0.1:$INGRESS_PORT" pre "pre-events, 2 resolvers")")

echo "criterion micro-benchmarks"
micro=$(cargo bench --locked -q -p frontline-ingress --bench hot_paths -- --warm-up-time 1 --measurement-time 3 2>/dev/null | awk '/time:/ { if ($1 == "time:") print prev, $0; else print $0 } { prev = $0 }' | sed -E 's/ +/ /g')

hello_rps=$(echo "${rows[0]}" | awk -F'|' '{print $4}')
ratio() { awk -v a="$1" -v b="$hello_rps" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
pre_rps=$(echo "${rows[1]}" | awk -F'|' '{print $4}')
post_rps=$(echo "${rows[2]}" | awk -F'|' '{print $4}')

{
    echo "# Benchmarks"
    echo
    echo "Written by \`deploy/bench.sh\` on $(date -u +%Y-%m-%d). Everything ran on this one machine over loopback:"
    echo "the load generator, nats-server, the resolver(s), the ingress and \`hello\`."
    echo
    echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
    echo "- $(rustc --version), $(nats-server --version)"
    echo "- closed loop: $CONNECTIONS connections, 2 s warm-up, median of $RUNS runs of $SECONDS_PER_RUN s; open loop: $SECONDS_PER_RUN s, latency from each request's due time"
    echo "- every request is a signed webhook with its own idempotency token (post-events are all stored)"
    echo
    echo "| traffic | mode | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Throughput relative to \`hello\` in the same run: pre-events $(ratio "$pre_rps"), post-events $(ratio "$post_rps")."
    echo
    echo "Peak RSS (VmHWM) after the single-resolver runs: ingress ${RSS_INGRESS} MB, resolver ${RSS_RESOLVER} MB, nats-server ${RSS_NATS} MB, hello ${RSS_HELLO} MB."
    echo
    echo "Micro-benchmarks (criterion, \`ingress/benches/hot_paths.rs\`):"
    echo
    echo '```'
    echo "$micro"
    echo '```'
} > BENCHMARKS.md.new
# Keep the hand-written analysis below the generated part.
if [ -f BENCHMARKS.md ] && grep -q '^## Analysis' BENCHMARKS.md; then
    { echo; sed -n '/^## Analysis/,$p' BENCHMARKS.md; } >> BENCHMARKS.md.new
fi
mv BENCHMARKS.md.new BENCHMARKS.md
cat BENCHMARKS.md
