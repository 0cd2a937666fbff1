#!/usr/bin/env bash
# Builds the Debian package target/debian/mwlbridge_<version>_<arch>.deb with cargo-deb
# (`cargo install cargo-deb --locked`; scripts/test.sh installs it): the release binary,
# the systemd unit, /etc/mwlbridge/{mwlbridge.toml,credentials} as conffiles and the
# maintainer scripts of packaging/debian/. What goes in: [package.metadata.deb] in
# Cargo.toml. Prints the package's path on stdout, the last line.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null 2>&1 || {
    echo "package.sh: cargo-deb is missing: cargo install cargo-deb --locked" >&2
    exit 1
}
# cargo-deb computes the Depends line ($auto: libc6, ...) with dpkg-shlibdeps; without it
# it only warns and leaves them out.
command -v dpkg-shlibdeps >/dev/null 2>&1 || {
    echo "package.sh: dpkg-shlibdeps is missing: apt-get install dpkg-dev" >&2
    exit 1
}
# The same release build as the Quick start's (a no-op when it is up to date), then
# packaged without building again. --strip: the release profile keeps line tables (94 of
# the binary's 115 MB); the packaged binary is stripped as Debian's are (21 MB, a 6 MB
# package, packed in 13 s instead of 40).
cargo build --release --locked --quiet
cargo deb --no-build --locked --strip
