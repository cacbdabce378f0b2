#!/usr/bin/env bash
# Builds release binaries, starts its own nats-server, resolver, ingress, a bare `hello` server
# and the `minimal` hyper + HMAC + NATS pipeline on loopback, and measures in one go: closed-loop
# maximum throughput (pre-events, post-events, hello, minimal; 64 connections, warm-up, median of
# 3 runs), open-loop latency at 2,000 and 5,000 req/s, the CPU time each process spends per
# request, pre-event throughput with one and with two resolvers, peak RSS of every process, and
# the criterion micro-benchmarks. Writes BENCHMARKS.md. Takes about 6 minutes on 2 cores.
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
MINIMAL_PORT=$(free_port)
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
# The yardstick: the least a webhook-to-NATS pipeline can do, on the same server.
target/release/minimal respond "$NATS_URL" &
MINIMAL_RESPONDER_PID=$!; pids+=("$MINIMAL_RESPONDER_PID")
target/release/minimal serve "127.0.0.1:$MINIMAL_PORT" "$NATS_URL" "$TOKEN" "$PUBLIC_URL" &
MINIMAL_PID=$!; pids+=("$MINIMAL_PID")
wait_port "$INGRESS_PORT"; wait_port "$HELLO_PORT"; wait_port "$RESOLVER_ADMIN"; wait_port "$MINIMAL_PORT"
sleep 1

loadgen() { target/release/loadgen --token "$TOKEN" --public-url "$PUBLIC_URL" "$@"; }
closed() { loadgen --target "$1" --kind "$2" --connections "$CONNECTIONS" --warmup 2 --duration "$SECONDS_PER_RUN" --runs "$RUNS" --row "$3"; }
opened() { loadgen --target "127.0.0.1:$INGRESS_PORT" --kind "$1" --rate "$2" --connections "$CONNECTIONS" --warmup 1 --duration "$SECONDS_PER_RUN" --row "$3"; }

# CPU seconds (user + system) a process has used so far, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# One closed-loop run, then the CPU time each named process spent per answered request.
cpu_row() {
    local label=$1 target=$2 kind=$3 server=$4 responder=$5
    local s0 r0 n0 out
    s0=$(ticks "$server"); r0=$(ticks "$responder"); n0=$(ticks "$NATS_PID")
    out=$(loadgen --target "$target" --kind "$kind" --connections "$CONNECTIONS" --warmup 0 --duration "$SECONDS_PER_RUN" --json)
    awk -v out="$out" -v hz="$(getconf CLK_TCK)" -v label="$label" -v kind="$kind" \
        -v s="$(( $(ticks "$server") - s0 ))" -v r="$(( $(ticks "$responder") - r0 ))" -v n="$(( $(ticks "$NATS_PID") - n0 ))" '
        BEGIN {
            match(out, /"requests":[0-9]+/); requests = substr(out, RSTART + 11, RLENGTH - 11)
            match(out, /"throughput":[0-9.]+/); rps = substr(out, RSTART + 13, RLENGTH - 13)
            us = 1e6 / hz / requests
            if (kind == "post") rcol = "–"; else rcol = sprintf("%.1f", r * us)
            printf "| %s | %.0f | %.1f | %s | %.1f | %.1f |\n", label, rps, s * us, rcol, n * us, (s + (kind == "post" ? 0 : r) + n) * us
        }'
}

rows=()
echo "closed loop: hello, pre, post, minimal pre and post"
rows+=("$(closed "127.0.0.1:$HELLO_PORT" post "hello (HTTP ceiling)")")
rows+=("$(closed "127.0.0.1:$INGRESS_PORT" pre "pre-events, 1 resolver")")
rows+=("$(closed "127.0.0.1:$INGRESS_PORT" post "post-events")")
rows+=("$(closed "127.0.0.1:$MINIMAL_PORT" pre "minimal pipeline, pre-events")")
rows+=("$(closed "127.0.0.1:$MINIMAL_PORT" post "minimal pipeline, post-events")")
echo "CPU time per request"
cpu_rows=()
cpu_rows+=("$(cpu_row "pre-events" "127.0.0.1:$INGRESS_PORT" pre "$INGRESS_PID" "$RESOLVER_PID")")
cpu_rows+=("$(cpu_row "post-events" "127.0.0.1:$INGRESS_PORT" post "$INGRESS_PID" "$RESOLVER_PID")")
cpu_rows+=("$(cpu_row "minimal pipeline, pre-events" "127.0.0.1:$MINIMAL_PORT" pre "$MINIMAL_PID" "$MINIMAL_RESPONDER_PID")")
cpu_rows+=("$(cpu_row "minimal pipeline, post-events" "127.0.0.1:$MINIMAL_PORT" post "$MINIMAL_PID" "$MINIMAL_RESPONDER_PID")")
# The runs above wrote gigabytes to the stream's files: let the kernel write them out first, so
# the latency runs measure the pipeline rather than the page cache's writeback of earlier runs.
sync
echo "open loop: 2000 and 5000 req/s"
for rate in 2000 5000; do
    rows+=("$(opened pre "$rate" "pre-events")")
    rows+=("$(opened post "$rate" "post-events")")
done
RSS_INGRESS=$(peak_rss_mb "$INGRESS_PID"); RSS_RESOLVER=$(peak_rss_mb "$RESOLVER_PID")
RSS_NATS=$(peak_rss_mb "$NATS_PID"); RSS_HELLO=$(peak_rss_mb "$HELLO_PID")
RSS_MINIMAL=$(peak_rss_mb "$MINIMAL_PID")

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
minimal_pre_rps=$(echo "${rows[3]}" | awk -F'|' '{print $4}')
minimal_post_rps=$(echo "${rows[4]}" | awk -F'|' '{print $4}')
of() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }

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
    echo "Throughput relative to \`hello\` in the same run: pre-events $(ratio "$pre_rps"), post-events $(ratio "$post_rps");"
    echo "the minimal pipeline: pre-events $(ratio "$minimal_pre_rps"), post-events $(ratio "$minimal_post_rps")."
    echo "The pipeline relative to the minimal one: pre-events $(of "$pre_rps" "$minimal_pre_rps"), post-events $(of "$post_rps" "$minimal_post_rps")."
    echo
    echo "CPU time per answered request, in microseconds (one closed-loop run of $SECONDS_PER_RUN s each; the"
    echo "load generator's own time is not counted; \"responder\" is the resolver, or the minimal"
    echo "pipeline's responder; post-events involve none):"
    echo
    echo "| traffic | req/s | ingress µs | responder µs | nats-server µs | total µs |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${cpu_rows[@]}"
    echo
    echo "Peak RSS (VmHWM) after the single-resolver runs: ingress ${RSS_INGRESS} MB, resolver ${RSS_RESOLVER} MB, nats-server ${RSS_NATS} MB, hello ${RSS_HELLO} MB, minimal ${RSS_MINIMAL} MB."
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
