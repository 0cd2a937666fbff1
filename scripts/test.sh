#!/usr/bin/env bash
# The one test command (README, CI): installs what the tests need, then runs the format
# check, clippy and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# DCMTK (findscu, echoscu, dump2dcm, wlmscpfs): the end-to-end tests' DICOM peers;
# openssl makes the certificates of the DICOM TLS tests; Chromium and chromedriver run
# the status page's browser test (admin_page_e2e).
missing=""
command -v findscu >/dev/null 2>&1 && command -v wlmscpfs >/dev/null 2>&1 || missing="$missing dcmtk"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"
# dpkg-dev: dpkg-shlibdeps, which the Debian package's build needs (scripts/package.sh).
command -v dpkg-shlibdeps >/dev/null 2>&1 || missing="$missing dpkg-dev"
if [ -n "$missing" ]; then
    echo "==> installing$missing"
    as_root apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq $missing >/dev/null
fi

# cargo-deb builds the Debian package that tests/package_e2e.rs checks (scripts/package.sh).
if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "==> installing cargo-deb"
    cargo install cargo-deb --locked --quiet
fi

# dicomweb-client (PyPI) and pydicom: the DICOMweb user agent of
# tests/dicomweb_client_e2e.rs, in a virtualenv of their own under target/.
requirements=tests/fixtures/dicomweb/requirements.txt
venv=target/test-venv
if ! cmp -s "$requirements" "$venv/requirements.txt" 2>/dev/null; then
    echo "==> making $venv ($requirements)"
    command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' 2>/dev/null ||
        { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >/dev/null; }
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --workspace --locked

echo "==> README Quick start: cargo run --release -- demo"
bash scripts/quickstart.sh
