#!/usr/bin/env bash
# Keeps the walls of the workspace where the README's "How the code is laid out" puts them:
# the two binaries never depend on each other, and the wire contract that other services depend
# on (frontline-shared) pulls in serde and serde_json only.
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0
for pair in "frontline-resolver frontline-ingress" "frontline-ingress frontline-resolver"; do
    set -- $pair
    if out=$(cargo tree --locked -q -e normal -p "$1" -i "$2" 2>&1); then
        echo "layout: $1 depends on $2; the binaries stand side by side on shared/:" >&2
        echo "$out" >&2
        failed=1
    elif ! grep -q "did not match any packages" <<<"$out"; then
        echo "layout: cargo tree failed: $out" >&2
        exit 1
    fi
done

deps=$(cargo tree --locked -e normal -p frontline-shared --depth 1 --prefix none \
    | tail -n +2 | awk '{print $1}' | sort -u | paste -sd' ')
if [ "$deps" != "serde serde_json" ]; then
    echo "layout: frontline-shared may depend on serde and serde_json only, found: $deps" >&2
    failed=1
fi
[ "$failed" -eq 0 ] && echo "layout: ok (ingress and resolver apart; frontline-shared on serde, serde_json)"
exit "$failed"
