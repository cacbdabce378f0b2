#!/usr/bin/env bash
# Runs the whole stack on this machine: nats-server with JetStream (unless NATS_URL already
# answers), one resolver and the ingress on :8080, with the example customer directory.
# Prints the webhook URL and a signed curl example. Ctrl-C stops everything it started.
#
# Settings (environment): NATS_URL, PUBLIC_URL (default http://localhost:8080),
# TWILIO_AUTH_TOKEN (default: a local development token), CUSTOMER_DIRECTORY, and every other
# variable of the README's configuration table. The ingress listens on loopback only; to expose
# it (a tunnel, another machine), set INGRESS_LISTEN=0.0.0.0:8080 and your own TWILIO_AUTH_TOKEN:
# the development token is published in this repository, so anyone could sign with it.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/common.sh

export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
export PUBLIC_URL="${PUBLIC_URL:-http://localhost:8080}"
export TWILIO_AUTH_TOKEN="${TWILIO_AUTH_TOKEN:-local-dev-token}"
export CUSTOMER_DIRECTORY="${CUSTOMER_DIRECTORY:-file:deploy/customers.example.json}"
export INGRESS_LISTEN="${INGRESS_LISTEN:-127.0.0.1:8080}"
case "$INGRESS_LISTEN" in
    127.*|localhost:*|"[::1]:"*) ;;
    *)
        if [ "$TWILIO_AUTH_TOKEN" = "local-dev-token" ]; then
            echo "error: INGRESS_LISTEN=$INGRESS_LISTEN exposes the ingress beyond this machine, but" >&2
            echo "       TWILIO_AUTH_TOKEN is the development token published in this repository." >&2
            echo "       Set TWILIO_AUTH_TOKEN to your account's auth token (or listen on 127.0.0.1)." >&2
            exit 1
        fi
        ;;
esac
export INGRESS_ADMIN_LISTEN="${INGRESS_ADMIN_LISTEN:-127.0.0.1:9090}"
export RESOLVER_ADMIN_LISTEN="${RESOLVER_ADMIN_LISTEN:-127.0.0.1:9091}"
export RUST_LOG="${RUST_LOG:-info}"

pids=()      # ingress and resolver
nats_pid=""  # the nats-server this script started, if any
cleanup() {
    trap - INT TERM EXIT
    echo
    # The services first, so they drain into a live NATS; then the server.
    if [ ${#pids[@]} -gt 0 ]; then
        kill -TERM "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
    if [ -n "$nats_pid" ]; then
        kill -TERM "$nats_pid" 2>/dev/null || true
        wait "$nats_pid" 2>/dev/null || true
    fi
    echo "stopped"
}
trap cleanup INT TERM EXIT

# host:port of the first NATS URL.
first_url="${NATS_URL%%,*}"
hostport="${first_url#*://}"
hostport="${hostport##*@}"
nats_host="${hostport%:*}"
nats_port="${hostport##*:}"
[ "$nats_port" = "$hostport" ] && nats_port=4222

answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

http_ok() {
    # GET http://$1:$2$3 without curl; succeeds on a 200.
    local reply
    exec 4<>"/dev/tcp/$1/$2" || return 1
    printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$3" "$1" >&4
    read -r reply <&4 || true
    exec 4>&-
    [[ "$reply" == *" 200 "* ]]
}

wait_ready() {
    local name=$1 addr=$2
    local host="${addr%:*}" port="${addr##*:}"
    [ "$host" = "0.0.0.0" ] && host=127.0.0.1
    for _ in $(seq 1 100); do
        if http_ok "$host" "$port" /readyz 2>/dev/null; then
            echo "$name ready"
            return
        fi
        sleep 0.2
    done
    echo "error: $name did not become ready (http://$addr/readyz)" >&2
    exit 1
}

echo "building (release)..."
cargo build --release --locked -p frontline-ingress -p frontline-resolver -p frontline-tests --bins

if answers "$nats_host" "$nats_port"; then
    echo "using the NATS server already answering at $NATS_URL"
else
    ensure_nats_server
    mkdir -p .data/nats
    echo "starting nats-server with JetStream on $nats_host:$nats_port (store: .data/nats)"
    nats-server -a "$nats_host" -p "$nats_port" -js -sd .data/nats -l .data/nats-server.log &
    nats_pid=$!
    for _ in $(seq 1 50); do answers "$nats_host" "$nats_port" && break; sleep 0.1; done
fi

target/release/resolver &
pids+=($!)
target/release/ingress &
pids+=($!)
wait_ready resolver "$RESOLVER_ADMIN_LISTEN"
wait_ready ingress "$INGRESS_ADMIN_LISTEN"

listen_port="${INGRESS_LISTEN##*:}"
cat <<INFO

The pipeline is running.
  Webhook URL (Pre-Event and Post-Event): ${PUBLIC_URL%/}/webhooks/conversations
  Frontline callbacks: ${PUBLIC_URL%/}/callbacks/crm  /callbacks/outgoing-conversation
                       ${PUBLIC_URL%/}/callbacks/templates  /callbacks/routing
  Ingress admin:  http://$INGRESS_ADMIN_LISTEN/metrics  /readyz
  Resolver admin: http://$RESOLVER_ADMIN_LISTEN/metrics  /readyz

A signed onConversationAdd for a customer in the example directory (paste it in another shell):

INFO
target/release/twilio-sim --target "http://127.0.0.1:$listen_port" \
    EventType=onConversationAdd AccountSid=AC00000000000000000000000000000001 Source=SMS \
    MessagingBinding.Address=+14155550101 MessagingBinding.ProxyAddress=+18005550100 \
    'Attributes={}'
cat <<INFO

And a Frontline CRM callback: the customer list of the worker alice@example.com:

INFO
target/release/twilio-sim --target "http://127.0.0.1:$listen_port" --path /callbacks/crm \
    Location=GetCustomersList Worker=alice@example.com PageSize=30
echo
echo "Ctrl-C stops everything."
wait -n "${pids[@]}" ${nats_pid:+"$nats_pid"}
