#!/usr/bin/env bash
# The protocol's obligations one step at a time (issue 19): in each round, interleaved,
# the hub, then the durable floor (`relay`), the durable floor that also acks each stored
# message to its author (`acks`), and the one that also gives each message its seq in one
# task per pair and delivers an `event` frame (`sequenced`), each on a fresh Redis (AOF on,
# everysec) and with the same load. floor-steps.py puts the rounds in one table: msg/s,
# server CPU per delivered message (server + Redis + Redis's children) and p99
# customer→agent, each beside the durable floor's of the same round, and the medians.
#
#   loadtest/scripts/floor-steps.sh OUT_DIR
#
# Environment: HUB, LOADTEST (binaries; default target/release/…), ROUNDS (3), RATE
# (messages/s in total: the `latency` scenario at that fixed rate; without it, saturation).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
HUB="${HUB:-$TARGET/release/switchboard}"
LOADTEST="${LOADTEST:-$TARGET/release/switchboard-loadtest}"
ROUNDS="${ROUNDS:-3}"
REDIS_PORT=16500
OUT="${1:?usage: floor-steps.sh OUT_DIR}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

if [ -n "${RATE:-}" ]; then
    [[ "$RATE" =~ ^[0-9]+$ ]] || { echo "RATE: a whole number of messages/s" >&2; exit 1; }
    hub_run=latency hub_report=latency-at-$RATE
    load=(--scenario "$ROOT/loadtest/scenarios/latency.toml" --total-rate "$RATE")
else
    hub_run=saturation hub_report=saturation
    load=(--scenario "$ROOT/loadtest/scenarios/saturation.toml")
fi

# shellcheck source=fresh-redis.sh
. "$ROOT/loadtest/scripts/fresh-redis.sh"

for round in $(seq "$ROUNDS"); do
    dir="$OUT/round-$round"
    mkdir -p "$dir/hub"
    echo "== round $round: hub ($(cut -d' ' -f1-3 /proc/loadavg) load before)"
    HUB="$HUB" LOADTEST="$LOADTEST" RUN_FLAGS=--no-floor \
        "$ROOT/loadtest/scripts/bench.sh" "$dir/hub" "$hub_run" >"$dir/hub.log" 2>&1
    cp "$dir/hub/$hub_report.json" "$dir/hub.json"
    for step in relay acks sequenced; do
        echo "== round $round: durable floor, $step ($(cut -d' ' -f1-3 /proc/loadavg) load before)"
        start_redis "$REDIS_PORT"
        "$LOADTEST" floor --durable --obligations "$step" \
            --redis-url "redis://127.0.0.1:$REDIS_PORT/0" --redis-pid "$redis" "${load[@]}" \
            --no-progress --report-json "$dir/$step.json" >"$dir/$step.txt" 2>&1
        stop_redis
    done
done
python3 "$ROOT/loadtest/scripts/floor-steps.py" "$OUT" | tee "$OUT/steps.md"
