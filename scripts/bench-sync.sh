#!/usr/bin/env bash
# Sync benchmark against a fake Calpendo answering each request after 200 ms, with
# max_workers 1 and 5, for 50 and 500 bookings: `mwlbridge sync --once` run twice (process
# mode), and one CalpendoSource fetching three times in one process (library mode: the
# unchanged resync served by the detail cache, then a title change that must show).
# Extra arguments go to the benchmark (see --help; --mode all|process|library), e.g.
#   scripts/bench-sync.sh --bookings 50 --workers 1,5 --latency-ms 200
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p mwlbridge -p mwl-bench
exec target/release/bench-sync --mwlbridge target/release/mwlbridge "$@"
