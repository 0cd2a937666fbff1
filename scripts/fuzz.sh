#!/usr/bin/env bash
# Fuzzes mwlbridge's untrusted-input parsers with cargo-fuzz (libFuzzer), each target for a
# bounded time, keeping the corpus in fuzz/corpus/<target>/ (minimized after each run).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # default: 60 s each, every target
#
# Targets (fuzz/fuzz_targets/, code paths in fuzz/src/harness.rs):
#   identifier  C-FIND identifier bytes -> wire_check::decode -> MwlQuery parse/match/response
#   command     command-set bytes -> dimse::Command::decode, Assembler, encode_message
#   mpps        N-CREATE / N-SET data sets -> mwl_scp::mpps::{create,set} on a temp store
#   pdu         PDU bytes -> dicom-ul read_pdu as the server calls it, AE policy, Assembler
#
# Each run uses libFuzzer's fork mode and goes on after a crash, an out-of-memory (a single
# allocation above 64 MB counts as one: no input here needs that much) or a timeout; every
# such input is copied to fuzz/regressions/<target>/, which the test
# crates/mwl-scp/tests/fuzz_corpus.rs replays, and the script then exits 1.
#
# MWL_FUZZ_SKIP_KNOWN=1 skips the inputs that hit the open bugs of wire_check / mpps::decode
# (see strict_lengths in fuzz/src/harness.rs), to explore past them. The corpus is always
# minimized without it, so it never holds an input that makes the code allocate much.
#
# cargo-fuzz needs nightly features: on the stable toolchain they are unlocked with
# RUSTC_BOOTSTRAP=1.
set -euo pipefail

seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(identifier command mpps pdu)
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

# Seed inputs (valid identifiers, commands, MPPS data sets, PDUs) on first use.
for t in "${targets[@]}"; do
    if [ -z "$(ls -A "fuzz/corpus/$t" 2>/dev/null)" ]; then
        MWL_FUZZ_WRITE_SEEDS=1 cargo test -q -p mwl-scp --test fuzz_corpus write_seeds
        break
    fi
done

cd fuzz
# -a: debug assertions (integer overflow checks) on, as in the test builds.
cargo fuzz build -a

failed=0
logs="$(mktemp -d)"
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t" "regressions/$t"
    before="$(ls "artifacts/$t" | wc -l)"
    echo "== $t: ${seconds}s"
    set +e
    cargo fuzz run -a "$t" "corpus/$t" -- \
        -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
        -max_total_time="$seconds" -max_len=8192 -rss_limit_mb=2048 -malloc_limit_mb=64 \
        -timeout=10 >"$logs/$t.log" 2>&1
    set -e
    # The last progress line: total executions, coverage, corpus, exec/s, failures.
    grep -E "^#[0-9]+:" "$logs/$t.log" | tail -1 || tail -5 "$logs/$t.log"
    after="$(ls "artifacts/$t" | wc -l)"
    if [ "$after" -gt "$before" ]; then
        failed=1
        echo "!! $t: $((after - before)) new failing inputs"
        for a in "artifacts/$t"/*; do
            [ -s "$a" ] || continue  # fork mode leaves empty files for jobs it lost
            cp -n "$a" "regressions/$t/"
        done
        echo "!! saved under fuzz/regressions/$t/"
    fi
    # Keep the corpus small enough to commit, and free of inputs that allocate much.
    MWL_FUZZ_SKIP_KNOWN=0 cargo fuzz cmin -a "$t" "corpus/$t" -- \
        -max_len=8192 -rss_limit_mb=2048 -malloc_limit_mb=64 -timeout=10 \
        >"$logs/$t.cmin.log" 2>&1 \
        || echo "!! $t: corpus minimization failed (see $logs/$t.cmin.log)"
    echo "   corpus: $(find "corpus/$t" -type f | wc -l) files, $(du -sh "corpus/$t" | cut -f1)"
done
echo "logs: $logs"
exit "$failed"
