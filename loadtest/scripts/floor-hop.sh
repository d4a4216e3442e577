#!/usr/bin/env bash
# The floor of the cross-node hop (issue 19): in each round, interleaved, the durable
# floor on one relay node and on two (`floor --durable --two-nodes`: each pair's agent end
# on one node and its customer end on the other, every frame appended and published to
# the other node in one round trip: by a pipeline, then by a script that publishes only
# once stored), each on a fresh Redis; then the hub on one node and on
# two (nodes-bench.sh: agents on node a, customers on node b). Every run has the load of
# nodes-bench.sh: the `latency` scenario at RATE msg/s. floor-hop.py puts the rounds in
# one table: CPU per delivered message in the steady load, one node against two, for the
# floor and for the hub.
#
#   loadtest/scripts/floor-hop.sh OUT_DIR
#
# Environment: HUB, LOADTEST (binaries; default target/release/…), ROUNDS (3), RATE
# (8000), SPLIT (1, the default: one node gets one worker per core and each of two nodes
# half as many, the machine's cores split between them; 0: every node one per core),
# HUBS (1, the default: also the hubs; 0: the floors only).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
HUB="${HUB:-$TARGET/release/switchboard}"
LOADTEST="${LOADTEST:-$TARGET/release/switchboard-loadtest}"
ROUNDS="${ROUNDS:-3}"
RATE="${RATE:-8000}"
SPLIT="${SPLIT:-1}"
HUBS="${HUBS:-1}"
REDIS_PORT=16510
OUT="${1:?usage: floor-hop.sh OUT_DIR}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
CORES=$(nproc)
ONE=$CORES
TWO=$CORES
[ "$SPLIT" = 1 ] && TWO=$(( CORES / 2 > 0 ? CORES / 2 : 1 ))

# shellcheck source=fresh-redis.sh
. "$ROOT/loadtest/scripts/fresh-redis.sh"

floor() { # report name, threads per node, extra flags…
    local name=$1 threads=$2
    shift 2
    start_redis "$REDIS_PORT"
    "$LOADTEST" floor --durable --relay-threads "$threads" "$@" \
        --redis-url "redis://127.0.0.1:$REDIS_PORT/0" --redis-pid "$redis" \
        --scenario "$ROOT/loadtest/scenarios/latency.toml" --total-rate "$RATE" \
        --no-progress --report-json "$dir/$name.json" >"$dir/$name.txt" 2>&1
    stop_redis
}

for round in $(seq "$ROUNDS"); do
    dir="$OUT/round-$round"
    mkdir -p "$dir"
    echo "== round $round: durable floor, one node ($(cut -d' ' -f1-3 /proc/loadavg) load before)"
    floor floor-one "$ONE"
    echo "== round $round: durable floor, two nodes"
    floor floor-two "$TWO" --two-nodes pipeline
    echo "== round $round: durable floor, two nodes, publishing by script"
    floor floor-two-script "$TWO" --two-nodes script
    if [ "$HUBS" = 1 ]; then
        echo "== round $round: hub, one node"
        HUB="$HUB" LOADTEST="$LOADTEST" OUT="$dir" SCENARIOS=latency HUB_WORKERS="$ONE" \
            "$ROOT/loadtest/scripts/nodes-bench.sh" one >/dev/null
        echo "== round $round: hub, two nodes"
        HUB="$HUB" LOADTEST="$LOADTEST" OUT="$dir" SCENARIOS=latency HUB_WORKERS="$TWO" \
            "$ROOT/loadtest/scripts/nodes-bench.sh" two >/dev/null
    fi
done
python3 "$ROOT/loadtest/scripts/floor-hop.py" "$OUT" | tee "$OUT/hop.md"
