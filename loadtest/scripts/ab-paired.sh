#!/usr/bin/env bash
# Two hub builds compared side by side: both run a hub-only saturation load at the same
# time, each with its own Redis, hub port and harness, so whatever the machine does
# meanwhile (another tenant, frequency, a noisy minute) falls on both alike. Runs taken
# one after the other on this machine drift by ±10 % from minute to minute; pairs taken
# together agree within 2 % (issue 19, thirteenth stop). Each build gets about half the
# machine, so the absolute figures are not a solo run's: read the ratio.
#
#   loadtest/scripts/ab-paired.sh OUT_DIR BEFORE_HUB AFTER_HUB
#
# PAIRS pairs (3 by default); the builds swap slots (ports) every pair. Prints, per pair,
# the hub's and the server's (hub + Redis + its children) µs per delivered message in the
# steady load (`steady-cpu.py`'s window) and AFTER ÷ BEFORE. The harness is LOADTEST
# (default target/release/switchboard-loadtest). Every run is verified as usual.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:?usage: ab-paired.sh OUT_DIR BEFORE_HUB AFTER_HUB}"
BEFORE="${2:?the hub binary before}"
AFTER="${3:?the hub binary after}"
export LOADTEST="${LOADTEST:-$ROOT/target/release/switchboard-loadtest}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

run() { # name hub redis_port hub_port
    mkdir -p "$OUT/$1"
    REDIS_PORT="$3" HUB_PORT="$4" HUB="$2" RUN_FLAGS="--no-floor" \
        "$ROOT/loadtest/scripts/bench.sh" "$OUT/$1" saturation >"$OUT/$1/log" 2>&1
}

for pair in $(seq "${PAIRS:-3}"); do
    if ((pair % 2)); then slots=(16400 18400 16600 18600); else slots=(16600 18600 16400 18400); fi
    run "before-$pair" "$BEFORE" "${slots[0]}" "${slots[1]}" &
    first=$!
    run "after-$pair" "$AFTER" "${slots[2]}" "${slots[3]}" &
    second=$!
    failed=0
    wait "$first" || failed=1
    wait "$second" || failed=1
    ((failed == 0)) || { echo "pair $pair: a run failed (see $OUT/*-$pair/log)" >&2; exit 1; }
    python3 - "$ROOT/loadtest/scripts/steady-cpu.py" "$OUT/before-$pair/saturation.json" \
        "$OUT/after-$pair/saturation.json" "$pair" <<'EOF'
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("steady_cpu", sys.argv[1])
steady_cpu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(steady_cpu)
figures = []
for path in sys.argv[2:4]:
    with open(path) as f:
        report = json.load(f)
    hub = steady_cpu.steady(report["hub"])
    figures.append((hub["hub"]["steady_us"], steady_cpu.server(hub, "hub")[0],
                    report["hub"]["messages"]["per_sec"]))
(b_hub, b_server, b_rate), (a_hub, a_server, a_rate) = figures
print(f"pair {sys.argv[4]}: hub {b_hub:.2f} → {a_hub:.2f} µs ({a_hub / b_hub:.3f}×), "
      f"server {b_server:.2f} → {a_server:.2f} µs ({a_server / b_server:.3f}×), "
      f"{b_rate:.0f} and {a_rate:.0f} msg/s")
EOF
done
