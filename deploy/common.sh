# Shared by deploy/*.sh: make sure nats-server is installed (Debian/Ubuntu) and on PATH.
# shellcheck shell=bash

# Debian installs nats-server in /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/sbin:/usr/local/sbin"

ensure_nats_server() {
    ensure_package nats-server nats-server
}

# promtool (Debian package prometheus) checks deploy/prometheus/ in the test suite.
ensure_promtool() {
    command -v promtool >/dev/null 2>&1 && return
    ensure_package promtool prometheus
    # The package also starts a Prometheus server on :9090 where systemd runs; it was installed
    # only for promtool, so stop it (it would take the ingress admin port).
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
        echo "stopping and disabling the prometheus service the package started (only promtool is needed)" >&2
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
}

# cargo-nextest runs the suite (a test per process, a timeout per test: .config/nextest.toml).
NEXTEST_VERSION=0.9.143
ensure_nextest() {
    cargo nextest --version >/dev/null 2>&1 && return
    echo "cargo-nextest is missing; installing cargo-nextest $NEXTEST_VERSION from crates.io" >&2
    cargo install --locked cargo-nextest --version "$NEXTEST_VERSION"
}

# ensure_package COMMAND PACKAGE: installs PACKAGE when COMMAND is missing.
ensure_package() {
    local command=$1 package=$2
    if command -v "$command" >/dev/null 2>&1; then
        return
    fi
    echo "$command is missing; installing $package from the distribution's packages" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            echo "error: $command is not installed and this user cannot install packages" >&2
            echo "       install it with: apt-get install $package" >&2
            exit 1
        fi
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
    command -v "$command" >/dev/null 2>&1 || { echo "error: installing $package failed" >&2; exit 1; }
}
