#!/usr/bin/env bash
# The DICOMweb worklist search next to the C-FIND of the same name, on the same items
# and the same running mwlbridge (docs/benchmarks.md, "DICOMweb search against C-FIND").
#
#   scripts/bench-dicomweb.sh                 # 10,000 items, 3 rounds of 5 s per query
#   BENCH_ITEMS=100000 BENCH_SECONDS=10 scripts/bench-dicomweb.sh
#
# Builds the release binaries, serves BENCH_ITEMS synthetic bookings from the fake
# Calpendo, syncs them once (`mwlbridge sync --once`), then runs `mwlbridge serve` with
# the admin interface and no source (nothing writes during the load). Each round runs
# every query once over C-FIND (`mwl-loadgen`, persistent associations) and once over
# DICOMweb (`mwl-webload`, kept-alive HTTP connections), interleaved; the table pools
# the rounds. Not a test: nothing is asserted.
set -euo pipefail
cd "$(dirname "$0")/.."

items=${BENCH_ITEMS:-10000}
seconds=${BENCH_SECONDS:-5}
rounds=${BENCH_ROUNDS:-3}
clients=${BENCH_CLIENTS:-8}
mix=${BENCH_MIX:-busy-station,today-station-modality,patient-id,universal}
work=target/bench/dicomweb-n$items
bin=target/release

say() { echo "bench-dicomweb.sh: $*" >&2; }

say "building (cargo build --release -p mwlbridge -p mwl-bench -p calpendo-fake)"
cargo build --release --locked -p mwlbridge -p mwl-bench -p calpendo-fake

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    say "nothing listens on port $1"; return 1
}

rm -rf "$work"
mkdir -p "$work"
chmod 700 "$work"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

fake_port=$(free_port)
"$bin/calpendo-fake" --synthetic "$items" --busy-today 100 --bind "127.0.0.1:$fake_port" >"$work/calpendo-fake.log" 2>&1 &
pids+=($!)
wait_port "$fake_port"

dicom_port=$(free_port)
admin_port=$(free_port)
config() {
    cat <<TOML
[server]
ae_title = "MWLBRIDGE"
bind = "127.0.0.1"
port = $dicom_port
max_associations = 64
max_associations_per_peer = 64
max_associations_per_ae = 64

[admin]
enabled = true
bind = "127.0.0.1"
port = $admin_port

[store]
path = "$PWD/$work/worklist.db"
retention_days = 30

[site]
timezone = "America/Edmonton"

[[sources]]
name = "calpendo01"
type = "calpendo"
enabled = $1
base_url = "http://127.0.0.1:$fake_port"
resources = ["3T", "EEG", "Mock"]
resource_modality_mapping = { "3T" = "MR", "EEG" = "EEG", "Mock" = "OT" }
station_aet_mapping = { "3T Busy" = "MRI_BUSY", "3T Diagnostic" = "MRI_DIAG_01", "3T Research" = "MRI_RES_01", "EEG" = "EEG_01", "Mock" = "MOCK_01" }
window_future_days = 366
max_workers = 32
sync_interval = 86400
sync_deadline = 3600

[sources.field_mapping]
patient_id = { source_field = "title", _extract = { pattern = "^([A-Za-z0-9]+)_", group = 1 } }
patient_name = { source_field = "title", _extract = { pattern = "^[A-Za-z0-9]+_([^_]+)_(.+)\$", template = "\$1^\$2" } }
TOML
}
config true >"$work/sync.toml"
config false >"$work/serve.toml"
export CALPENDO_USERNAME=mwlbridge CALPENDO_PASSWORD=secret

say "syncing $items bookings (mwlbridge sync --once)"
"$bin/mwlbridge" --log-level warn sync --once --config "$work/sync.toml"
MWL_WEBLOAD_TOKEN=$("$bin/mwlbridge" token create --config "$work/serve.toml" --name bench --role read)
export MWL_WEBLOAD_TOKEN

"$bin/mwlbridge" --log-level warn serve --config "$work/serve.toml" >"$work/serve.log" 2>&1 &
pids+=($!)
wait_port "$dicom_port"
wait_port "$admin_port"
base="http://127.0.0.1:$admin_port/dicomweb"

# The offered PatientIDs, for patient-id, read over DICOMweb page by page.
python3 - "$base" "$work/patient-ids.txt" <<'PY'
import json, os, sys, urllib.request
base, out = sys.argv[1], sys.argv[2]
ids, offset = set(), 0
while True:
    req = urllib.request.Request(
        f"{base}/modality-scheduled-procedure-steps?limit=5000&offset={offset}",
        headers={"Authorization": "Bearer " + os.environ["MWL_WEBLOAD_TOKEN"]})
    page = json.load(urllib.request.urlopen(req))
    if not page:
        break
    ids.update(r["00100020"]["Value"][0] for r in page if r.get("00100020", {}).get("Value"))
    offset += len(page)
open(out, "w").write("\n".join(sorted(ids)) + "\n")
print(f"{offset} items offered, {len(ids)} PatientIDs", file=sys.stderr)
PY

for round in $(seq 1 "$rounds"); do
    say "round $round of $rounds"
    for q in ${mix//,/ }; do
        "$bin/mwl-loadgen" --port "$dicom_port" --clients "$clients" --duration "$seconds" \
            --mix "$q" --patient-ids "$work/patient-ids.txt" --json >"$work/cfind-$q-$round.json"
        "$bin/mwl-webload" --base "$base" --clients "$clients" --duration "$seconds" \
            --mix "$q" --patient-ids "$work/patient-ids.txt" --json >"$work/web-$q-$round.json"
    done
done

python3 - "$work" "$mix" "$rounds" "$items" <<'PY'
import json, sys
work, mix, rounds, items = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), sys.argv[4]
def pooled(kind, q):
    ps = [json.load(open(f"{work}/{kind}-{q}-{r}.json"))["phases"][0] for r in range(1, rounds + 1)]
    wall = sum(p["wall_s"] for p in ps)
    ok = sum(p["queries_ok"] for p in ps)
    return {
        "clients": ps[0]["clients"],
        "qps": ok / wall,
        "items": sum(p["items_per_s"] * p["wall_s"] for p in ps) / wall,
        "matches": sum(p["matches_mean"] * p["queries_ok"] for p in ps) / max(ok, 1),
        "p50": sorted(p["latency_ms"]["p50"] for p in ps)[len(ps) // 2],
        "p99": max(p["latency_ms"]["p99"] for p in ps),
        "errors": sum(p["errors"] for p in ps),
    }
print(f"{items} items; {rounds} rounds; C-FIND: mwl-loadgen, DICOMweb: mwl-webload (DICOM JSON)\n")
print("| query | clients | matches/query | C-FIND q/s | DICOMweb q/s | C-FIND items/s | DICOMweb items/s | C-FIND p50 / p99 ms | DICOMweb p50 / p99 ms | DICOMweb / C-FIND items/s | errors |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for q in mix:
    c, w = pooled("cfind", q), pooled("web", q)
    print(f"| {q} | {c['clients']} | {c['matches']:.0f} / {w['matches']:.0f} | {c['qps']:,.0f} | {w['qps']:,.0f} "
          f"| {c['items']:,.0f} | {w['items']:,.0f} | {c['p50']:.2f} / {c['p99']:.2f} | {w['p50']:.2f} / {w['p99']:.2f} "
          f"| {w['items'] / max(c['items'], 1e-9):.2f} | {c['errors'] + w['errors']} |")
PY
