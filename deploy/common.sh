# Shared by deploy/*.sh: make sure nats-server is installed (Debian/Ubuntu) and on PATH.
# shellcheck shell=bash

# Debian installs nats-server in /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/sbin:/usr/local/sbin"

ensure_nats_server() {
    if command -v nats-server >/dev/null 2>&1; then
        return
    fi
    echo "nats-server is missing; installing it from the distribution's packages" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            echo "error: nats-server is not installed and this user cannot install packages" >&2
            echo "       install it with: apt-get install nats-server" >&2
            exit 1
        fi
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
    command -v nats-server >/dev/null 2>&1 || { echo "error: installing nats-server failed" >&2; exit 1; }
}
