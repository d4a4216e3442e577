#!/usr/bin/env bash
# Where the hub's CPU goes per delivered message at saturation (or at a fixed RATE),
# beside the durable floor's relay: `perf record` with DWARF call graphs, 8 s into a
# hub-only run and 8 s into a durable floor run of the same load alone on a fresh Redis
# (AOF on, everysec), then every sample is put in one row (the task it ran in, read from
# its stack) and one column (the kind of work at the top of its stack) by
# profile-split.py, scaled to the run's CPU per delivered message. Needs perf (Debian's
# linux-perf) and a release build.
#
#   loadtest/scripts/profile-split.sh OUT_DIR
#
# Environment: HUB, LOADTEST (binaries; default target/release/…), FREQ (299 Hz), RATE
# (messages/s in total: the `latency` scenario at that fixed rate instead of saturation).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
HUB="${HUB:-$TARGET/release/switchboard}"
LOADTEST="${LOADTEST:-$TARGET/release/switchboard-loadtest}"
FREQ="${FREQ:-299}"
OUT="${1:?usage: profile-split.sh OUT_DIR}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
record() { # pid file
    perf record -e cpu-clock -F "$FREQ" --call-graph dwarf,16384 -p "$1" -o "$2" -- sleep 8 \
        >"$2.log" 2>&1
}
cpu_per_message() { # report label: the µs after "label " on its CPU line
    grep -h "CPU per delivered message" "$1" | grep -o "$2 [0-9.]* µs" | grep -o '[0-9.]*' | head -1
}

if [ -n "${RATE:-}" ]; then
    # bench.sh checks RATE and runs `latency` once at it.
    hub_run=latency report="$OUT/hub/latency-at-$RATE.txt"
    floor_load=(--scenario "$ROOT/loadtest/scenarios/latency.toml" --total-rate "$RATE")
else
    hub_run=saturation report="$OUT/hub/saturation.txt"
    floor_load=(--scenario "$ROOT/loadtest/scenarios/saturation.toml")
fi
HUB="$HUB" LOADTEST="$LOADTEST" RUN_FLAGS=--no-floor \
    "$ROOT/loadtest/scripts/bench.sh" "$OUT/hub" "$hub_run" >"$OUT/hub.log" 2>&1 &
bench=$!
hub_pid=""
for _ in $(seq 100); do
    hub_pid=$(pgrep -f "$HUB serve" | head -1 || true)
    [ -n "$hub_pid" ] && break
    sleep 0.2
done
[ -n "$hub_pid" ] || { echo "the hub did not start" >&2; exit 1; }
sleep 14 # past the ramp-up, into the steady state
record "$hub_pid" "$OUT/hub.data"
wait "$bench"

redis_dir=$(mktemp -d)
redis-server --port 16500 --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
    --dir "$redis_dir" >"$redis_dir/log" 2>&1 &
redis=$!
trap 'kill $redis 2>/dev/null || true; rm -rf "$redis_dir"' EXIT
for _ in $(seq 50); do redis-cli -p 16500 ping >/dev/null 2>&1 && break; sleep 0.1; done
"$LOADTEST" floor --durable --redis-url redis://127.0.0.1:16500/0 --redis-pid "$redis" \
    "${floor_load[@]}" >"$OUT/floor.txt" 2>&1 &
floor=$!
sleep 14
record "$floor" "$OUT/floor.data"
wait "$floor"

perf script -i "$OUT/hub.data" -F comm,tid,ip,sym,dso 2>/dev/null >"$OUT/hub.stacks"
perf script -i "$OUT/floor.data" -F comm,tid,ip,sym,dso 2>/dev/null >"$OUT/floor.stacks"
split="$ROOT/loadtest/scripts/profile-split.py"
echo "== hub ($(grep -o 'at [0-9]*/s' "$report" | head -1))"
python3 "$split" "$OUT/hub.stacks" "$(cpu_per_message "$report" hub)" | tee "$OUT/hub.md"
echo "== durable floor's relay threads ($(grep -o 'at [0-9]*/s' "$OUT/floor.txt" | head -1))"
python3 "$split" "$OUT/floor.stacks" "$(cpu_per_message "$OUT/floor.txt" "of which relay")" floor-relay |
    tee "$OUT/floor.md"
