#!/usr/bin/env bash
# Sync benchmark: `mwlbridge sync --once` against a fake Calpendo answering each request
# after 200 ms, with max_workers 1 and 5, for 50 and 500 bookings, plus a resync where
# nothing changed. Extra arguments go to the benchmark (see --help), e.g.
#   scripts/bench-sync.sh --bookings 50 --workers 1,5 --latency-ms 200
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p mwlbridge -p mwl-bench
exec target/release/bench-sync --mwlbridge target/release/mwlbridge "$@"
