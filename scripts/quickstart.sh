#!/usr/bin/env bash
# Proves the README's Quick start as written: `cargo run --release -- demo` starts, answers
# C-ECHO, the findscu command its banner prints with today's sample bookings, and the
# DICOMweb search it prints with the same items, and stops
# cleanly (exit 0) on SIGTERM, as on Ctrl-C. Run by scripts/test.sh after the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
demo_pid=""
cleanup() {
    [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT
fail() {
    echo "quickstart: $*" >&2
    echo "--- demo output ---" >&2
    cat "$log" >&2
    exit 1
}

# Compile first, so that the wait below is for the demo, not for the compiler.
cargo build --release --locked --quiet

cargo run --release -- demo >"$log" 2>&1 &
cargo_pid=$!
for _ in $(seq 300); do
    grep -q "mwlbridge demo is running" "$log" && break
    kill -0 "$cargo_pid" 2>/dev/null || fail "the demo exited before it was ready"
    sleep 0.1
done
grep -q "mwlbridge demo is running" "$log" || fail "no banner within 30 s"
# cargo runs the program in its own process on Unix (exec); older versions as a child.
demo_pid=$(pgrep -P "$cargo_pid" mwlbridge || echo "$cargo_pid")

echoscu -aet CONSOLE -aec MWLBRIDGE 127.0.0.1 11112 || fail "C-ECHO failed"

# The banner's findscu command, as a user would paste it.
cmd=$(sed -n '/^  findscu /,/ 11112$/p' "$log" | sed 's/\\$//' | tr '\n' ' ')
[ -n "$cmd" ] || fail "the banner has no findscu command"
answers=$(eval "$cmd" 2>&1) || fail "findscu failed: $answers"
pending=$(grep -c "Find Response.*(Pending)" <<<"$answers" || true)
[ "$pending" -gt 0 ] || fail "findscu found nothing for today: $answers"
grep -q "Find Response.*(Success)" <<<"$answers" || fail "no final success: $answers"

# The banner's DICOMweb search, as a user would paste it: today's steps as DICOM JSON.
web=$(sed -n 's/^DICOMweb worklist search (PS3.18): //p' "$log")
[ -n "$web" ] || fail "the banner has no DICOMweb search"
found=$(eval "${web/curl /curl -sf }") || fail "the DICOMweb search failed: $web"
web_items=$(grep -o '"00100020"' <<<"$found" | wc -l)
[ "$web_items" -eq "$pending" ] || fail "DICOMweb found $web_items items, C-FIND $pending: $found"

kill -TERM "$demo_pid"
status=0
wait "$cargo_pid" || status=$?
demo_pid=""
[ "$status" -eq 0 ] || fail "the demo exited with $status on SIGTERM"
echo "quickstart: demo answered C-ECHO, today's C-FIND ($pending items) and its DICOMweb search, stopped cleanly"
