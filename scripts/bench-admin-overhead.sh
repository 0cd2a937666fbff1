#!/usr/bin/env bash
# What the admin HTTP interface costs the DICOM side: the same database served by two
# `mwlbridge serve` processes, one with [admin] off and one with it on while a monitor
# scrapes /metrics and /readyz and lists the worklist through the API twice a second.
# Rounds alternate between the two; the C-FIND figures come from mwl-loadgen.
#
#   scripts/bench-admin-overhead.sh            # 10,000 bookings, 5 rounds of 10 s each
#   BOOKINGS=2000 ROUNDS=3 SECONDS_PER_ROUND=5 scripts/bench-admin-overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BOOKINGS=${BOOKINGS:-10000}
ROUNDS=${ROUNDS:-5}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-10}
CLIENTS=${CLIENTS:-8}

cargo build --release -q -p mwlbridge -p mwl-bench -p calpendo-fake
bin=target/release
work=$(mktemp -d -t mwlbridge-admin-bench-XXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fake_port=$(free_port)
"$bin/calpendo-fake" --bind "127.0.0.1:$fake_port" --synthetic "$BOOKINGS" >"$work/fake.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$fake_port/" && break; sleep 0.1; done

write_config() { # $1: file, $2: admin table
    cat >"$1" <<EOF
[server]
ae_title = "MWLBRIDGE"
max_associations = 64
max_associations_per_peer = 64
max_associations_per_ae = 64

$2

[store]
path = "$work/worklist.db"

[site]
timezone = "America/Edmonton"

[[sources]]
name = "calpendo"
type = "calpendo"
base_url = "http://127.0.0.1:$fake_port"
resources = ["3T", "EEG", "Mock"]
resource_modality_mapping = { "3T" = "MR", "EEG" = "EEG", "Mock" = "OT" }
station_aet_mapping = { "3T Diagnostic" = "MRI_DIAG_01", "3T Research" = "MRI_RES_01", "EEG" = "EEG_01", "Mock" = "MOCK_01" }
window_future_days = 366
max_workers = 32
sync_interval = 86400
sync_deadline = 3600

[sources.field_mapping]
patient_id = { source_field = "title", _extract = { pattern = "^([A-Za-z0-9]+)_", group = 1 } }
patient_name = { source_field = "title", _extract = { pattern = "^[A-Za-z0-9]+_([^_]+)_(.+)$", template = "\$1^\$2" } }
EOF
}
admin_port=$(free_port)
write_config "$work/off.toml" $'[admin]\nenabled = false'
write_config "$work/on.toml" $'[admin]\nenabled = true\nbind = "127.0.0.1"\nport = '"$admin_port"
export CALPENDO_USERNAME=mwlbridge CALPENDO_PASSWORD=secret
echo "==> syncing $BOOKINGS bookings"
"$bin/mwlbridge" --log-level warn sync --once --config "$work/off.toml"
token=$("$bin/mwlbridge" --log-level warn token create --config "$work/on.toml" --name bench --role read 2>/dev/null)

off_port=$(free_port)
on_port=$(free_port)
"$bin/mwlbridge" --log-level warn serve --config "$work/off.toml" --port "$off_port" >"$work/off.log" 2>&1 &
pids+=($!)
"$bin/mwlbridge" --log-level warn serve --config "$work/on.toml" --port "$on_port" >"$work/on.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$admin_port/healthz" && break; sleep 0.1; done

# The monitor: what Prometheus, a load balancer and a dashboard would do, 2x per second.
(
    while true; do
        curl -s -o /dev/null "http://127.0.0.1:$admin_port/metrics"
        curl -s -o /dev/null "http://127.0.0.1:$admin_port/readyz"
        curl -s -o /dev/null -H "Authorization: Bearer $token" \
            "http://127.0.0.1:$admin_port/api/v1/worklist?date=today&station=MRI_DIAG_01"
        sleep 0.5
    done
) &
pids+=($!)

run() { # $1: port → "q/s p99_ms"
    "$bin/mwl-loadgen" --port "$1" --clients "$CLIENTS" --duration "$SECONDS_PER_ROUND" \
        --mix today-station-modality --station MRI_DIAG_01 --json 2>/dev/null |
        python3 -c 'import json,sys
p=json.load(sys.stdin)["phases"][0]
print(p["qps"], p["latency_ms"]["p99"])'
}

echo "==> $ROUNDS rounds of ${SECONDS_PER_ROUND} s, $CLIENTS clients, today+station+modality"
printf "%-6s %14s %10s %14s %10s\n" round "off q/s" "off p99" "on q/s" "on p99"
off_all=() on_all=()
for r in $(seq "$ROUNDS"); do
    read -r oq op < <(run "$off_port")
    read -r nq np < <(run "$on_port")
    printf "%-6s %14.0f %10.3f %14.0f %10.3f\n" "$r" "$oq" "$op" "$nq" "$np"
    off_all+=("$oq $op") on_all+=("$nq $np")
done
python3 - "${off_all[@]}" -- "${on_all[@]}" <<'EOF'
import statistics, sys
args = sys.argv[1:]
cut = args.index("--")
off = [tuple(map(float, a.split())) for a in args[:cut]]
on = [tuple(map(float, a.split())) for a in args[cut + 1:]]
mq = lambda xs, i: statistics.median(x[i] for x in xs)
print(f"median q/s: off {mq(off,0):.0f}, on {mq(on,0):.0f} (on/off {mq(on,0)/mq(off,0):.3f})")
print(f"median p99: off {mq(off,1):.3f} ms, on {mq(on,1):.3f} ms (on/off {mq(on,1)/mq(off,1):.3f})")
EOF
