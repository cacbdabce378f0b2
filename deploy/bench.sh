#!/usr/bin/env bash
# Measures the pipeline against its yardsticks, on Debian's nats-server and on the current
# release, and writes BENCHMARKS.md (keeping its hand-written "## Analysis" section).
#
# On each server it starts, on loopback: nats-server, the ingress and a resolver (every feature
# on at its defaults), `minimal full` (the least pipeline that does exactly the work SPEC.md
# asks: headers, envelope, per-conversation subjects, dedupe id, answer cache, a durable
# consumer, a responder that decodes the envelope) and `minimal serve` (the bare hyper + HMAC +
# NATS pipeline). Then:
# - pinned: the server side (nats-server, ingress, resolver, yardsticks) on core 0, the load
#   generator on core 1; BENCH_ROUNDS (9) rounds of closed-loop runs of BENCH_SECONDS (3), each
#   round running, for pre- then post-events: the yardstick, the pipeline, the yardstick again
#   (the control) and the bare pipeline. Median throughput and CPU µs per webhook by process;
#   the median of each round's pipeline ÷ the mean of the two yardstick runs around it (so the
#   host's drift cancels); and the control ÷ the yardstick, an A/A comparison that shows the
#   noise one comparison carries on this host;
# - unpinned: the same with BENCH_UNPINNED_ROUNDS (3) rounds, every process free;
# - open loop, unpinned: first, on the fresh server, latency at 2,000 webhooks/s (the pipeline
#   and both yardsticks); at the end, at 80 % of the pipeline's unpinned maximum;
# - peak RSS of every process;
# - instructions per webhook under callgrind (BENCH_INSTRUCTIONS=0 leaves them out): the
#   ingress and resolver against the yardstick and its responder, a figure the host's load does
#   not move;
# - then the criterion micro-benchmarks.
# Takes about 20 minutes on 2 cores. BENCH_SERVERS=debian or =current runs one server only;
# BENCH_MICRO=0 leaves out the micro-benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/common.sh
ensure_nats_server
ensure_current_nats_server
command -v taskset >/dev/null 2>&1 || ensure_package taskset util-linux
[ "${BENCH_INSTRUCTIONS:-1}" = 0 ] || ensure_package callgrind_control valgrind

ROUNDS="${BENCH_ROUNDS:-9}"
UNPINNED_ROUNDS="${BENCH_UNPINNED_ROUNDS:-3}"
SECONDS_PER_RUN="${BENCH_SECONDS:-3}"
# Open-loop runs are longer: their tail needs the samples.
OPEN_SECONDS="${BENCH_OPEN_SECONDS:-5}"
# Instruction counts under callgrind (BENCH_INSTRUCTIONS=0 leaves them out).
INSTRUCTIONS="${BENCH_INSTRUCTIONS:-1}"
INSTRUCTION_SECONDS="${BENCH_INSTRUCTION_SECONDS:-5}"
SERVERS="${BENCH_SERVERS:-debian current}"
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

# Below the kernel's ephemeral range (32768 and up by default), so no client socket of the
# load generator can hold a port a server is about to bind.
free_port() {
    local port
    while :; do
        port=$(( (RANDOM % 12000) + 20000 ))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
}
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
peak_rss_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
# CPU time (user + system) a process has used so far, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Whether the admin listener on port $1 answers /readyz with 200.
ready() {
    local status
    status=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3 && head -1 <&3) 2>/dev/null || true)
    [[ $status == *" 200 "* ]]
}
# Pins every thread of the processes to the given CPU list.
pin() { local cpus=$1; shift; for pid in "$@"; do taskset -a -p -c "$cpus" "$pid" >/dev/null; done; }

echo "building release binaries..."
cargo build --release --locked --bins -q
# The load generator on the given CPUs, signing with the bench's token.
loadgen_on() { local cpus=$1; shift; taskset -c "$cpus" target/release/loadgen --token "$TOKEN" --public-url "$PUBLIC_URL" "$@"; }

# One closed-loop run: appends a JSON line (the run, and the CPU ticks each process spent) to
# $work/runs.jsonl.
measure() {
    local phase=$1 target=$2 kind=$3 server=$4 responder=$5 loadgen_cpus=$6
    local s0 r0 n0 out loadgen
    # CPU is counted from the end of the load generator's 1 s warm-up, as its requests are.
    loadgen_on "$loadgen_cpus" \
        --target "$target" --kind "$kind" --connections "$CONNECTIONS" --warmup 1 \
        --duration "$SECONDS_PER_RUN" --json >"$work/run.json" &
    loadgen=$!
    sleep 1
    s0=$(ticks "$server"); r0=$(ticks "$responder"); n0=$(ticks "$NATS_PID")
    wait "$loadgen"
    out=$(cat "$work/run.json")
    printf '{"server":"%s","phase":"%s","round":%s,"pipeline":"%s","run":%s,"ticks":{"server":%s,"responder":%s,"nats":%s}}\n' \
        "$SERVER_LABEL" "$phase" "$ROUND" "$PIPELINE_LABEL" "$out" \
        "$(( $(ticks "$server") - s0 ))" "$(( $(ticks "$responder") - r0 ))" "$(( $(ticks "$NATS_PID") - n0 ))" \
        >>"$work/runs.jsonl"
}

# The rounds of one phase. Each round runs, for pre then post: the yardstick, the pipeline, the
# yardstick again (the control) and the bare pipeline. The pipeline is compared with the mean of
# the two yardstick runs around it, so the host's drift within a round cancels; the control over
# the first yardstick run is an A/A comparison, the noise floor of the host.
rounds() {
    local phase=$1 count=$2 loadgen_cpus=$3
    for ROUND in $(seq 1 "$count"); do
        echo "  $phase round $ROUND/$count"
        for kind in pre post; do
            PIPELINE_LABEL=yardstick measure "$phase" "127.0.0.1:$FULL_PORT" "$kind" "$FULL_PID" "$FULL_RESPONDER_PID" "$loadgen_cpus"
            PIPELINE_LABEL=pipeline measure "$phase" "127.0.0.1:$INGRESS_PORT" "$kind" "$INGRESS_PID" "$RESOLVER_PID" "$loadgen_cpus"
            PIPELINE_LABEL=control measure "$phase" "127.0.0.1:$FULL_PORT" "$kind" "$FULL_PID" "$FULL_RESPONDER_PID" "$loadgen_cpus"
            PIPELINE_LABEL=minimal measure "$phase" "127.0.0.1:$MINIMAL_PORT" "$kind" "$MINIMAL_PID" "$MINIMAL_RESPONDER_PID" "$loadgen_cpus"
        done
    done
}

# The pipeline's two processes, every feature at its defaults (the answer cache, dedupe, metrics,
# spans): start_resolver NATS_URL ADMIN_PORT LOG [WRAPPER...], start_ingress NATS_URL PORT
# ADMIN_PORT LOG [WRAPPER...] (a wrapper such as valgrind runs the binary). Both in the
# background.
start_resolver() {
    local nats_url=$1 admin=$2 log=$3; shift 3
    NATS_URL="$nats_url" TWILIO_AUTH_TOKEN="$TOKEN" PUBLIC_URL="$PUBLIC_URL" \
        RESOLVER_ADMIN_LISTEN="127.0.0.1:$admin" CUSTOMER_DIRECTORY=file:deploy/customers.example.json \
        "$@" target/release/resolver >"$log" 2>&1 &
}
start_ingress() {
    local nats_url=$1 port=$2 admin=$3 log=$4; shift 4
    NATS_URL="$nats_url" TWILIO_AUTH_TOKEN="$TOKEN" PUBLIC_URL="$PUBLIC_URL" \
        INGRESS_LISTEN="127.0.0.1:$port" INGRESS_ADMIN_LISTEN="127.0.0.1:$admin" \
        STREAM_MAX_AGE=1h "$@" target/release/ingress >"$log" 2>&1 &
}

# Everything on one nats-server binary.
bench_server() {
    local nats_bin=$1
    SERVER_LABEL=$("$nats_bin" --version)
    echo "== $SERVER_LABEL"
    rm -rf "$work/nats"
    NATS_PORT=$(free_port); INGRESS_PORT=$(free_port); INGRESS_ADMIN=$(free_port)
    RESOLVER_ADMIN=$(free_port); MINIMAL_PORT=$(free_port); FULL_PORT=$(free_port)
    "$nats_bin" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$work/nats" -l "$work/nats.log" &
    NATS_PID=$!; pids+=("$NATS_PID")
    wait_port "$NATS_PORT"
    local nats_url="nats://127.0.0.1:$NATS_PORT"

    start_resolver "$nats_url" "$RESOLVER_ADMIN" "$work/resolver.log"
    RESOLVER_PID=$!; pids+=("$RESOLVER_PID")
    start_ingress "$nats_url" "$INGRESS_PORT" "$INGRESS_ADMIN" "$work/ingress.log"
    INGRESS_PID=$!; pids+=("$INGRESS_PID")
    target/release/minimal respond "$nats_url" &
    MINIMAL_RESPONDER_PID=$!; pids+=("$MINIMAL_RESPONDER_PID")
    target/release/minimal serve "127.0.0.1:$MINIMAL_PORT" "$nats_url" "$TOKEN" "$PUBLIC_URL" &
    MINIMAL_PID=$!; pids+=("$MINIMAL_PID")
    target/release/minimal respond-full "$nats_url" &
    FULL_RESPONDER_PID=$!; pids+=("$FULL_RESPONDER_PID")
    target/release/minimal full "127.0.0.1:$FULL_PORT" "$nats_url" "$TOKEN" "$PUBLIC_URL" &
    FULL_PID=$!; pids+=("$FULL_PID")
    wait_port "$INGRESS_PORT"; wait_port "$RESOLVER_ADMIN"; wait_port "$MINIMAL_PORT"; wait_port "$FULL_PORT"
    for _ in $(seq 1 50); do
        ready "$INGRESS_ADMIN" && break
        sleep 0.2
    done
    # The resolvers' durable consumer on the stream, as with Twilio credentials set (nobody
    # pulls here: the yardstick's consumer is not pulled either).
    target/release/minimal consumer "$nats_url" FRONTLINE_EVENTS frontline-resolver 'frontline.post.onParticipantAdded.>'
    sleep 1
    local server_side=("$NATS_PID" "$INGRESS_PID" "$RESOLVER_PID" "$MINIMAL_PID" "$MINIMAL_RESPONDER_PID" "$FULL_PID" "$FULL_RESPONDER_PID")

    # Latency first, on a fresh server: the closed-loop runs below write gigabytes to the
    # stream's files, and their writeback and nats-server's grown state would be measured
    # instead of the pipeline (p99s of 35-70 ms for every pipeline, the bare one too, in runs
    # made after them). At 2,000/s the yardsticks too: the host's own tail for the least work.
    echo "  open loop"
    local -A port_of=([pipeline]=$INGRESS_PORT [yardstick]=$FULL_PORT [minimal]=$MINIMAL_PORT)
    open_loop() {
        loadgen_on 0,1 --target "127.0.0.1:${port_of[$1]}" --kind "$2" --rate "$3" --connections "$CONNECTIONS" \
            --warmup 1 --duration "$OPEN_SECONDS" --json |
            sed "s/^/{\"server\":\"$SERVER_LABEL\",\"pipeline\":\"$1\",\"open\":/; s/\$/}/" >>"$work/open.jsonl"
    }
    for kind in pre post; do
        for pipeline in pipeline yardstick minimal; do
            open_loop "$pipeline" "$kind" 2000
        done
    done

    pin 0 "${server_side[@]}"
    rounds pinned "$ROUNDS" 1
    pin 0,1 "${server_side[@]}"
    rounds unpinned "$UNPINNED_ROUNDS" 0,1
    # At 80 % of the unpinned maximum (queueing at the knee, after the closed-loop runs).
    sync
    local max_pre max_post
    read -r max_pre max_post < <(python3 - "$work/runs.jsonl" "$SERVER_LABEL" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def median(kind):
    return statistics.median(r["run"]["throughput"] for r in runs if r["server"] == sys.argv[2]
        and r["phase"] == "unpinned" and r["pipeline"] == "pipeline" and r["run"]["kind"] == kind)
print(int(median("pre")), int(median("post")))
PY
)
    open_loop pipeline pre $(( max_pre * 8 / 10 ))
    open_loop pipeline post $(( max_post * 8 / 10 ))
    printf '{"server":"%s","ingress":%s,"resolver":%s,"nats":%s,"yardstick":%s,"minimal":%s}\n' "$SERVER_LABEL" \
        "$(peak_rss_mb "$INGRESS_PID")" "$(peak_rss_mb "$RESOLVER_PID")" "$(peak_rss_mb "$NATS_PID")" \
        "$(peak_rss_mb "$FULL_PID")" "$(peak_rss_mb "$MINIMAL_PID")" >>"$work/rss.jsonl"
    kill "${server_side[@]:1}"
    wait "${server_side[@]:1}" 2>/dev/null || true
    [ "$INSTRUCTIONS" = 0 ] || instructions "$nats_url"
    kill "$NATS_PID"
    wait "$NATS_PID" 2>/dev/null || true
    pids=()
}

# Instructions per webhook, counted by callgrind: the same on every run, where time on a shared
# host is not. The ingress, the resolver, the yardstick and its responder run under callgrind
# (instrumentation on only while measuring); for each path and kind, a warm-up at a low rate,
# then counters zeroed, a measured run, and a dump. nats-server (Go) is not counted.
instructions() {
    local nats_url=$1
    local port admin radmin yport
    port=$(free_port); admin=$(free_port); radmin=$(free_port); yport=$(free_port)
    echo "  instructions (callgrind)"
    local cg=(valgrind --tool=callgrind --cache-sim=yes --instr-atstart=no --callgrind-out-file="$work/cg.%p")
    start_resolver "$nats_url" "$radmin" "$work/cg-resolver.log" "${cg[@]}"
    local resolver=$!
    start_ingress "$nats_url" "$port" "$admin" "$work/cg-ingress.log" "${cg[@]}"
    local ingress=$!
    "${cg[@]}" target/release/minimal respond-full "$nats_url" 2>"$work/cg-responder.log" &
    local responder=$!
    "${cg[@]}" target/release/minimal full "127.0.0.1:$yport" "$nats_url" "$TOKEN" "$PUBLIC_URL" 2>"$work/cg-full.log" &
    local full=$!
    pids+=("$resolver" "$ingress" "$responder" "$full")
    wait_port "$port"; wait_port "$radmin"; wait_port "$yport"
    for _ in $(seq 1 100); do
        ready "$admin" && break
        sleep 0.2
    done
    sleep 2
    callgrind_control -i on "$resolver" "$ingress" "$responder" "$full" >/dev/null
    local spec label target kind server responder_pid requests
    for spec in "pipeline pre $port $ingress $resolver" "yardstick pre $yport $full $responder" \
        "pipeline post $port $ingress $resolver" "yardstick post $yport $full $responder"; do
        read -r label kind target server responder_pid <<<"$spec"
        loadgen_on 0,1 --target "127.0.0.1:$target" --kind "$kind" --rate 100 --connections 8 --warmup 0 --duration 2 >/dev/null
        callgrind_control -z "$server" "$responder_pid" >/dev/null
        # No warm-up of its own: the counters are zeroed, and only measured webhooks may count.
        requests=$(loadgen_on 0,1 --target "127.0.0.1:$target" --kind "$kind" --rate 100 --connections 8 \
            --warmup 0 --duration "$INSTRUCTION_SECONDS" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["requests"])')
        callgrind_control -d "$server" "$responder_pid" >/dev/null
        printf '{"server":"%s","pipeline":"%s","kind":"%s","requests":%s,"server_events":%s,"responder_events":%s}\n' \
            "$SERVER_LABEL" "$label" "$kind" "$requests" \
            "$(last_dump "$server")" "$(last_dump "$responder_pid")" >>"$work/instructions.jsonl"
    done
    kill "$resolver" "$ingress" "$responder" "$full"
    wait "$resolver" "$ingress" "$responder" "$full" 2>/dev/null || true
}

# The events counted in the newest callgrind dump of process $1, as a JSON object: Ir
# (instructions), Dr/Dw (data reads, writes), I1mr/D1mr/D1mw (first-level cache misses),
# ILmr/DLmr/DLmw (last-level misses), from callgrind's cache simulation.
last_dump() {
    local dump
    dump=$(ls -t "$work/cg.$1".* | head -1)
    awk '/^events:/ { for (i = 2; i <= NF; i++) name[i] = $i }
        /^totals:/ { printf "{"; for (i = 2; i <= NF; i++) printf "%s\"%s\":%s", (i > 2 ? "," : ""), name[i], $i; print "}"; exit }' "$dump"
}

: >"$work/runs.jsonl"; : >"$work/open.jsonl"; : >"$work/rss.jsonl"; : >"$work/instructions.jsonl"
for server in $SERVERS; do
    case $server in
        debian) bench_server "$(command -v nats-server)" ;;
        current) bench_server "$PWD/$NATS_CURRENT_BIN" ;;
        *) echo "unknown server $server (debian, current)" >&2; exit 2 ;;
    esac
done

micro="(skipped: BENCH_MICRO=0)"
[ "${BENCH_MICRO:-1}" = 0 ] || { echo "criterion micro-benchmarks"; micro=$(cargo bench --locked -q -p frontline-ingress --bench hot_paths -- --warm-up-time 1 --measurement-time 3 2>/dev/null | awk '/time:/ { if ($1 == "time:") print prev, $0; else print $0 } { prev = $0 }' | sed -E 's/ +/ /g'); }
cp "$work/runs.jsonl" "$work/open.jsonl" "$work/rss.jsonl" "$work/instructions.jsonl" /tmp/ 2>/dev/null || true

python3 - "$work" "$ROUNDS" "$UNPINNED_ROUNDS" "$SECONDS_PER_RUN" "$CONNECTIONS" "$(getconf CLK_TCK)" \
    "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)" \
    "$(rustc --version)" "$micro" >BENCHMARKS.md.new <<'PY'
import json, statistics, sys, datetime
work, rounds, unpinned, seconds, connections, hz, machine, rustc, micro = sys.argv[1:]
hz = int(hz)
runs = [json.loads(l) for l in open(f"{work}/runs.jsonl")]
opens = [json.loads(l) for l in open(f"{work}/open.jsonl")]
rss = [json.loads(l) for l in open(f"{work}/rss.jsonl")]
instructions = [json.loads(l) for l in open(f"{work}/instructions.jsonl")]
servers = list(dict.fromkeys(r["server"] for r in runs))
NAMES = {"pipeline": "pipeline (ingress + resolver)", "yardstick": "yardstick (`minimal full`)", "control": "yardstick again (control)", "minimal": "bare (`minimal serve`)"}
out = []
w = out.append
w("# Benchmarks\n")
w(f"Written by `deploy/bench.sh` on {datetime.date.today()}. Everything ran on this one machine over loopback.\n")
w(f"- machine: {machine}; {rustc}")
w(f"- closed loop: {connections} connections, 1 s warm-up, {seconds} s per run; each round runs, for pre- then post-events, the yardstick, the pipeline, the yardstick again (the control) and the bare pipeline")
w(f"- pinned: nats-server, the ingress, the resolver and the yardsticks on core 0, the load generator on core 1; median of {rounds} rounds. Unpinned: every process free, median of {unpinned} rounds")
w("- \"× yardstick\" is the ratio of the medians; \"× yardstick, paired\" the median of each round's ratio (the run over the mean of the two yardstick runs just before and after it), which cancels the host's drift over the minutes of a bench; \"paired, middle half\" the quartiles of those ratios. The control row is the yardstick over itself: the noise a single comparison carries on this host")
w("- instructions per webhook: callgrind counts every instruction the ingress and the resolver (the yardstick and its responder) run in user space over a 100/s open-loop run after a warm-up, divided by the webhooks answered; it does not vary with the host's load. Its cache simulation (first-level 32 KiB instruction and data caches, the host's last level) counts the misses those instructions would take. nats-server is not counted")
w("- every request is a signed webhook with its own idempotency token (post-events are all stored); the pipeline runs with every feature at its defaults")
w("- CPU µs per webhook: user + system time of each process over a run, divided by the webhooks answered (medians over the rounds; 10 ms ticks); the load generator is not counted. \"× yardstick, by CPU\" is the yardstick's total CPU per webhook over this pipeline's: pinned, throughput is that ratio when nothing else varies\n")
def paired_ratios(sel, kind, pipeline):
    """Round by round: the run over the mean of the two yardstick runs around it (the control over
    the first yardstick run). Every round has all four runs."""
    by_round = {}
    for r in sel:
        if r["run"]["kind"] == kind:
            by_round.setdefault(r["round"], {})[r["pipeline"]] = r["run"]["throughput"]
    if pipeline == "control":
        return [got["control"] / got["yardstick"] for got in by_round.values()]
    return [got[pipeline] / ((got["yardstick"] + got["control"]) / 2) for got in by_round.values()]

def quartiles(xs):
    xs = sorted(xs)
    if len(xs) < 4:
        return xs[0], xs[-1]
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]

def header(*columns):
    """A Markdown table's header and rule."""
    w("| " + " | ".join(columns) + " |")
    w("|" + "---|" * len(columns))

ORDER = ["pipeline", "yardstick", "control", "minimal"]
for server in servers:
    w(f"## {server}\n")
    for phase in ["pinned", "unpinned"]:
        sel = [r for r in runs if r["server"] == server and r["phase"] == phase]
        if not sel:
            continue
        w(f"### {phase.capitalize()}\n")
        header("traffic", "pipeline", "req/s (median)", "runs", "× yardstick", "× yardstick, paired", "paired, middle half",
               "× bare", "server µs", "responder µs", "nats-server µs", "total µs", "× yardstick, by CPU")
        controls = {}
        for kind in ["pre", "post"]:
            med = {}
            total = {}
            for pipeline in ORDER:
                rs = [r for r in sel if r["pipeline"] == pipeline and r["run"]["kind"] == kind]
                if rs:
                    med[pipeline] = statistics.median(r["run"]["throughput"] for r in rs)
                    keys = ["server", "nats"] + (["responder"] if kind == "pre" else [])
                    total[pipeline] = statistics.median(
                        sum(r["ticks"][k] for k in keys) * 1e6 / hz / r["run"]["requests"] for r in rs)
            for pipeline in ORDER:
                rs = [r for r in sel if r["pipeline"] == pipeline and r["run"]["kind"] == kind]
                if not rs:
                    continue
                paired = paired_ratios(sel, kind, pipeline) if pipeline != "yardstick" else []
                paired_txt = f"{statistics.median(paired):.2f}" if paired else "–"
                spread_txt = "{:.2f}–{:.2f}".format(*quartiles(paired)) if paired else "–"
                if pipeline == "control" and paired:
                    controls[kind] = paired
                def us(key):
                    return statistics.median(r["ticks"][key] * 1e6 / hz / r["run"]["requests"] for r in rs)
                s, n = us("server"), us("nats")
                resp = us("responder") if kind == "pre" else 0.0
                runs_txt = " ".join(f"{r['run']['throughput']:.0f}" for r in rs)
                ratio_y = f"{med[pipeline] / med['yardstick']:.2f}" if "yardstick" in med else "–"
                ratio_b = f"{med[pipeline] / med['minimal']:.2f}" if "minimal" in med else "–"
                resp_txt = f"{resp:.1f}" if kind == "pre" else "–"
                cpu_y = f"{total['yardstick'] / total[pipeline]:.2f}" if "yardstick" in total else "–"
                w(f"| {kind} | {NAMES[pipeline]} | {med[pipeline]:.0f} | {runs_txt} | {ratio_y} | {paired_txt} | {spread_txt} | {ratio_b} | {s:.1f} | {resp_txt} | {n:.1f} | {total[pipeline]:.1f} | {cpu_y} |")
        w("")
        for kind, ratios in controls.items():
            lo, hi = quartiles(ratios)
            w(f"- the host's noise, {kind}: the yardstick against itself (control ÷ yardstick, round by round) gave a median of {statistics.median(ratios):.2f}, a middle half of {lo:.2f}–{hi:.2f} and a range of {min(ratios):.2f}–{max(ratios):.2f}; a difference inside that spread cannot be told from noise by this phase")
        if controls:
            w("")
    sel = [o for o in opens if o["server"] == server]
    if sel:
        w("### Open loop (unpinned)\n")
        header("traffic", "pipeline", "rate req/s", "achieved", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors",
               "host: wake-up p99 ms", "host: worst wake-up ms", "host: time over 1 ms late")
        for o in sel:
            r = o["open"]
            errors = sum(r["errors"].values())
            rate = r["mode"].split()[2]
            w(f"| {r['kind']} | {NAMES[o['pipeline']]} | {rate} | {r['throughput']:.0f} | {r['p50_ms']:.3f} | {r['p90_ms']:.3f} | {r['p99_ms']:.3f} | {r['p999_ms']:.3f} | {r['max_ms']:.3f} | {errors} | {r['wake_p99_ms']:.3f} | {r['wake_max_ms']:.3f} | {r['wake_over_1ms_share'] * 100:.2f} % |")
        w("")
        w("- host: how late a thread beside the load generator woke from 0.5 ms sleeps during the same run (the host's own stalls, which every hop of a request can meet). \"Time over 1 ms late\" is the share of the run a request arriving at a random moment would have waited over 1 ms for that thread to run: above 1 %, no p99 on this host can be under 1 ms, and as a request crosses several threads, less already shows in its tail\n")
    sel = [i for i in instructions if i["server"] == server]
    if sel:
        w("### Instructions and cache misses per webhook (callgrind)\n")
        header("traffic", "pipeline", "webhooks", "server instructions", "responder instructions", "total", "× yardstick",
               "L1i misses", "L1d misses", "last-level misses")
        per = {}
        for i in sel:
            n = i["requests"]
            procs = [i["server_events"]] + ([i["responder_events"]] if i["kind"] == "pre" else [])
            def ev(*names):
                return sum(p.get(k, 0) for p in procs for k in names) / n
            per[(i["kind"], i["pipeline"])] = {
                "n": n, "server": i["server_events"]["Ir"] / n,
                "responder": i["responder_events"]["Ir"] / n if i["kind"] == "pre" else None,
                "total": ev("Ir"), "i1": ev("I1mr"), "d1": ev("D1mr", "D1mw"),
                "ll": ev("ILmr", "DLmr", "DLmw")}
        for kind in ["pre", "post"]:
            for pipeline in ["pipeline", "yardstick"]:
                if (kind, pipeline) not in per:
                    continue
                p = per[(kind, pipeline)]
                yard = per.get((kind, "yardstick"))
                ratio = f"{yard['total'] / p['total']:.3f}" if yard else "–"
                resp = f"{p['responder']:,.0f}" if p["responder"] is not None else "–"
                w(f"| {kind} | {NAMES[pipeline]} | {p['n']} | {p['server']:,.0f} | {resp} | {p['total']:,.0f} | {ratio} | {p['i1']:,.0f} | {p['d1']:,.0f} | {p['ll']:,.0f} |")
        w("")
    for m in [m for m in rss if m["server"] == server]:
        w(f"Peak RSS (VmHWM) after every run: ingress {m['ingress']} MB, resolver {m['resolver']} MB, nats-server {m['nats']} MB, yardstick {m['yardstick']} MB, bare {m['minimal']} MB.\n")
w("## Micro-benchmarks\n")
w("criterion, `ingress/benches/hot_paths.rs`:\n")
w("```")
w(micro)
w("```")
print("\n".join(out))
PY
# Keep the hand-written analysis below the generated part.
if [ -f BENCHMARKS.md ] && grep -q '^## Analysis' BENCHMARKS.md; then
    { echo; sed -n '/^## Analysis/,$p' BENCHMARKS.md; } >>BENCHMARKS.md.new
fi
mv BENCHMARKS.md.new BENCHMARKS.md
cat BENCHMARKS.md
