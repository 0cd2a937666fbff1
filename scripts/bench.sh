#!/usr/bin/env bash
# Query benchmark: mwlbridge against DCMTK wlmscpfs and Pylantir on the same synthetic
# worklists (1,000, 10,000 and 100,000 bookings from calpendo-fake), queried by
# mwl-loadgen in interleaved rounds. Prints a Markdown report, rewrites the
# "Query benchmark" section of docs/benchmarks.md (between its markers) and draws
# docs/benchmarks-queries.png. About 10-15 minutes with the defaults on 2 cores.
#
# Installs what is missing, saying so: DCMTK (apt-get install dcmtk), gnuplot
# (apt-get install gnuplot-nox), and Pylantir in a virtual environment under
# target/bench/ (pip install pylantir). A peer that cannot be installed is skipped with
# the reason in the report.
#
# Settings (environment):
#   BENCH_SIZES="1000 10000 100000"   worklist sizes
#   BENCH_SECONDS=5                   seconds per server, query and round
#   BENCH_ROUNDS=2                    rounds (A B C A B C ...)
#   BENCH_CLIENTS=8                   clients (universal: 1)
#   BENCH_SERVERS=mwlbridge,wlmscpfs,pylantir,replay   (replay: mwl-replay, the client's ceiling)
#   BENCH_MIX=busy-station,today-station-modality,patient-id,universal   (also: date-range, name-wildcard)
#   BENCH_PYLANTIR_VERSION=0.4.6      version installed into the venv
#   BENCH_PYLANTIR_MAX=10000          largest size Pylantir is run at
#   BENCH_DOC=docs/benchmarks.md      document to update ("" : none)
#   BENCH_PLOT=docs/benchmarks-queries.png   plot ("" : none)
# Extra arguments go to bench-query (see target/release/bench-query --help).
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=${BENCH_SIZES:-1000 10000 100000}
seconds=${BENCH_SECONDS:-5}
rounds=${BENCH_ROUNDS:-2}
clients=${BENCH_CLIENTS:-8}
servers=${BENCH_SERVERS:-mwlbridge,wlmscpfs,pylantir,replay}
mix=${BENCH_MIX:-busy-station,today-station-modality,patient-id,universal}
pylantir_version=${BENCH_PYLANTIR_VERSION:-0.4.6}
pylantir_max=${BENCH_PYLANTIR_MAX:-10000}
doc=${BENCH_DOC-docs/benchmarks.md}
plot=${BENCH_PLOT-docs/benchmarks-queries.png}
work=target/bench
mkdir -p "$work"

say() { echo "bench.sh: $*" >&2; }

apt_updated=
apt_install() {
    if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
        return 1
    fi
    local sudo=
    [ "$(id -u)" = 0 ] || sudo=sudo
    if [ -z "$apt_updated" ]; then
        $sudo apt-get update -qq >/dev/null && apt_updated=1 || return 1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

say "building (cargo build --release -p mwlbridge -p mwl-bench -p calpendo-fake)"
cargo build --release --locked -p mwlbridge -p mwl-bench -p calpendo-fake

# DCMTK's wlmscpfs.
if [[ ",$servers," == *",wlmscpfs,"* ]] && ! command -v wlmscpfs >/dev/null; then
    say "wlmscpfs not found: installing dcmtk (apt-get install dcmtk)"
    if ! apt_install dcmtk || ! command -v wlmscpfs >/dev/null; then
        say "could not install dcmtk: wlmscpfs is skipped"
        servers=$(echo ",$servers," | sed 's/,wlmscpfs,/,/; s/^,//; s/,$//')
    fi
fi

# gnuplot, for the plot.
if [ -n "$plot" ] && ! command -v gnuplot >/dev/null; then
    say "gnuplot not found: installing gnuplot-nox (apt-get install gnuplot-nox)"
    if ! apt_install gnuplot-nox || ! command -v gnuplot >/dev/null; then
        say "could not install gnuplot: no plot"
        plot=
    fi
fi

# Pylantir, in a virtual environment.
pylantir_args=()
venv=$PWD/$work/pylantir-venv
if [[ ",$servers," == *",pylantir,"* ]]; then
    reason=
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import pylantir" 2>/dev/null; then
        say "creating a Python virtual environment for Pylantir: python3 -m venv $venv"
        if ! python3 -m venv "$venv" >"$work/pylantir-install.log" 2>&1; then
            reason="python3 -m venv failed (see $work/pylantir-install.log)"
        else
            say "installing Pylantir: $venv/bin/pip install pylantir==$pylantir_version"
            if ! "$venv/bin/pip" install -q "pylantir==$pylantir_version" >>"$work/pylantir-install.log" 2>&1; then
                reason="pip install pylantir==$pylantir_version failed (see $work/pylantir-install.log)"
            fi
        fi
    else
        say "Pylantir already installed in $venv ($("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("pylantir"))'))"
    fi
    if [ -z "$reason" ]; then
        say "checking that Pylantir loads: import pylantir.cli.run, pylantir.data_sources.calpendo_plugin"
        if ! (cd "$work" && "$venv/bin/python" -c "import pylantir.cli.run, pylantir.data_sources.calpendo_plugin") \
            >>"$work/pylantir-install.log" 2>&1; then
            reason="Pylantir does not import (see $work/pylantir-install.log)"
        fi
    fi
    if [ -n "$reason" ]; then
        say "Pylantir is skipped: $reason"
        pylantir_args=(--pylantir-unavailable "$reason")
    fi
fi

doc_args=()
[ -n "$doc" ] && doc_args+=(--doc "$doc")
[ -n "$plot" ] && doc_args+=(--plot "$PWD/$plot")

command_line="scripts/bench.sh"
[ -n "${BENCH_SIZES:-}" ] && command_line="BENCH_SIZES=\"$sizes\" $command_line"
[ -n "${BENCH_SECONDS:-}" ] && command_line="BENCH_SECONDS=$seconds $command_line"
[ -n "${BENCH_ROUNDS:-}" ] && command_line="BENCH_ROUNDS=$rounds $command_line"
[ -n "${BENCH_SERVERS:-}" ] && command_line="BENCH_SERVERS=$servers $command_line"
[ -n "${BENCH_MIX:-}" ] && command_line="BENCH_MIX=$mix $command_line"

say "sizes: $sizes; $seconds s per run, $rounds rounds, $clients clients; servers: $servers"
exec target/release/bench-query \
    --sizes "$(echo $sizes | tr ' ' ',')" \
    --seconds "$seconds" \
    --rounds "$rounds" \
    --clients "$clients" \
    --servers "$servers" \
    --mix "$mix" \
    --pylantir-python "$venv/bin/python" \
    --pylantir-max "$pylantir_max" \
    --work-dir "$work" \
    --command-line "$command_line" \
    "${pylantir_args[@]}" "${doc_args[@]}" "$@"
