#!/usr/bin/env bash
# Sync benchmark against a fake Calpendo answering each request after 200 ms, with
# max_workers 1 and 5, for 50 and 500 bookings, fetch_mode bulk and details side by side:
# `mwlbridge sync --once` run twice (process mode), and one CalpendoSource fetching three
# times in one process (library mode: the unchanged resync, then a title change that must
# show). Extra arguments go to the benchmark (see --help; --mode all|process|library,
# --fetch-modes bulk,details), e.g.
#   scripts/bench-sync.sh --bookings 50 --workers 1,5 --latency-ms 200
#   scripts/bench-sync.sh --bookings 10000 --workers 5 --fetch-modes bulk --mode process
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p mwlbridge -p mwl-bench
exec target/release/bench-sync --mwlbridge target/release/mwlbridge "$@"
