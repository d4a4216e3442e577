#!/usr/bin/env bash
# The issue-6 benchmarks on this machine, against a release build of the hub.
#
#   cargo build --release -p switchboard -p switchboard-loadtest
#   loadtest/scripts/bench.sh OUT_DIR [saturation] [latency] [idle] [soak]
#
# With no benchmark named it runs saturation, latency and idle (the soak takes 10 min;
# name it). Each benchmark gets a fresh redis-server (AOF on, appendfsync everysec, in a
# temp dir) and a fresh hub, so memory figures start from a clean process. Reports land
# in OUT_DIR as <bench>.json / <bench>.html plus the terminal summary in <bench>.txt.
# `latency` and `soak` read the saturation throughput from OUT_DIR/saturation.json (run
# `saturation` first) and load the hub at 25 % / 50 % of it.
# Every run with a floor also measures the durable floor (issue 19), after the raw floor,
# on a fresh redis-server of its own with the same settings (port REDIS_PORT + 1): the
# hub's Redis holds the hub's run by then, which slowed the floor's tail latency (seventh
# stop). FLOOR_ON_HUB_REDIS=1 puts it on the hub's Redis as before.
# RUN_FLAGS="--no-durable-floor" skips it.
#
# Environment: HUB (hub binary, default target/release/switchboard), LOADTEST (harness
# binary), REDIS_PORT (16400), HUB_PORT (18400), IDLE_CONNECTIONS (15000), REDIS_ARGS
# (extra redis-server flags, e.g. "--auto-aof-rewrite-percentage 0" to see what the AOF
# rewrites cost), HUB_WORKERS (the hub's tokio worker threads, and the floors' relay
# threads, FLOOR_RELAY_THREADS, so both get the same; default: one per core),
# LATENCY_SHARES (the shares of saturation `latency` runs at; "25 50" by default), RATE
# (messages/s in total: `latency` runs once at this fixed rate instead, as latency-at-RATE,
# without a saturation run),
# RUN_FLAGS (extra `switchboard-loadtest run` flags for every run, e.g. "--no-floor
# --window 64" for a hub-only run with another load shape), ROUNDS (saturation runs, 1 by
# default: with more, each round is kept as saturation-K.* and the round with the median
# hub ÷ floor ratio becomes saturation.*; runs on this machine vary by ±8 % or more, so one
# round cannot show a smaller effect).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
HUB="${HUB:-$TARGET/release/switchboard}"
LOADTEST="${LOADTEST:-$TARGET/release/switchboard-loadtest}"
SCENARIOS="$ROOT/loadtest/scenarios"
REDIS_PORT="${REDIS_PORT:-16400}"
HUB_PORT="${HUB_PORT:-18400}"
IDLE_CONNECTIONS="${IDLE_CONNECTIONS:-15000}"
ADMIN=bench-admin-0123456789

OUT="${1:?usage: bench.sh OUT_DIR [saturation] [latency] [idle] [soak]}"
shift
BENCHES=("$@")
[ ${#BENCHES[@]} -gt 0 ] || BENCHES=(saturation latency idle)
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d)"
REDIS_PID=""
FLOOR_REDIS_PID=""
HUB_PID=""

stop_all() {
    [ -n "$HUB_PID" ] && kill "$HUB_PID" 2>/dev/null && wait "$HUB_PID" 2>/dev/null || true
    [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null || true
    [ -n "$FLOOR_REDIS_PID" ] && kill "$FLOOR_REDIS_PID" 2>/dev/null &&
        wait "$FLOOR_REDIS_PID" 2>/dev/null || true
    HUB_PID=""
    REDIS_PID=""
    FLOOR_REDIS_PID=""
}
trap 'stop_all; rm -rf "$WORK"' EXIT

start_all() {
    stop_all
    rm -rf "$WORK/redis" "$WORK/floor-redis" && mkdir -p "$WORK/redis" "$WORK/floor-redis"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes \
        --appendfsync everysec --dir "$WORK/redis" ${REDIS_ARGS:-} >"$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    redis-server --port "$((REDIS_PORT + 1))" --bind 127.0.0.1 --save "" --appendonly yes \
        --appendfsync everysec --dir "$WORK/floor-redis" ${REDIS_ARGS:-} >"$WORK/floor-redis.log" 2>&1 &
    FLOOR_REDIS_PID=$!
    for port in "$REDIS_PORT" "$((REDIS_PORT + 1))"; do
        for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    done
    SWITCHBOARD_LOG=warn TOKIO_WORKER_THREADS="${HUB_WORKERS:-$(nproc)}" "$HUB" serve --listen "127.0.0.1:$HUB_PORT" \
        --redis-url "redis://127.0.0.1:$REDIS_PORT/0" --config "$SCENARIOS/hub.toml" >"$WORK/hub.log" 2>&1 &
    HUB_PID=$!
    for _ in $(seq 100); do grep -qs "listening on" "$WORK/hub.log" && break; sleep 0.1; done
    grep -q "listening on" "$WORK/hub.log" || { cat "$WORK/hub.log"; exit 1; }
}

run_scenario() { # name scenario-file [extra flags]
    local name=$1 file=$2
    shift 2
    echo "== $name ($(cut -d' ' -f1-3 /proc/loadavg) load before)"
    start_all
    local floor_redis=(--floor-redis-url "redis://127.0.0.1:$((REDIS_PORT + 1))/0"
        --floor-redis-pid "$FLOOR_REDIS_PID")
    [ -n "${FLOOR_ON_HUB_REDIS:-}" ] && floor_redis=()
    FLOOR_RELAY_THREADS="${HUB_WORKERS:-$(nproc)}" \
    "$LOADTEST" run --hub "http://127.0.0.1:$HUB_PORT" --admin-token "$ADMIN" \
        --hub-pid "$HUB_PID" --redis-pid "$REDIS_PID" --redis-url "redis://127.0.0.1:$REDIS_PORT/0" \
        "${floor_redis[@]}" --scenario "$file" "$@" ${RUN_FLAGS:-} \
        --report-json "$OUT/$name.json" --report-html "$OUT/$name.html" | tee "$OUT/$name.txt"
}

# Lists each round's figures and copies the round with the median ratio (hub ÷ raw floor)
# to saturation.*.
median_round() {
    local median
    echo "== saturation rounds (hub msg/s, floor msg/s, ratio, durable floor msg/s, ratio)" |
        tee "$OUT/saturation-rounds.txt"
    for report in "$OUT"/saturation-[0-9]*.json; do
        jq -r --arg f "$(basename "$report" .json)" \
            '"\($f) \(.hub.messages.per_sec | floor) \(.floor.messages.per_sec // 0 | floor) \(.ratios.throughput // 0 | . * 1000 | round / 1000) \(.durable_floor.messages.per_sec // 0 | floor) \(.durable_ratios.throughput // 0 | . * 1000 | round / 1000)"' \
            "$report"
    done | sort -k4 -n | tee -a "$OUT/saturation-rounds.txt" >"$WORK/rounds"
    median=$(awk '{ line[NR] = $1 } END { print line[int((NR + 1) / 2)] }' "$WORK/rounds")
    echo "median round: $median" | tee -a "$OUT/saturation-rounds.txt"
    for ext in json html txt; do cp "$OUT/$median.$ext" "$OUT/saturation.$ext"; done
}

saturation_rate() {
    jq -e '.hub.messages.per_sec' "$OUT/saturation.json" 2>/dev/null ||
        { echo "run the saturation benchmark first" >&2; exit 1; }
}

for bench in "${BENCHES[@]}"; do
    case "$bench" in
    saturation)
        rounds=${ROUNDS:-1}
        if [ "$rounds" -le 1 ]; then
            run_scenario saturation "$SCENARIOS/saturation.toml"
        else
            for round in $(seq "$rounds"); do
                run_scenario "saturation-$round" "$SCENARIOS/saturation.toml"
            done
            median_round
        fi
        ;;
    latency)
        if [ -n "${RATE:-}" ]; then
            [[ "$RATE" =~ ^[0-9]+$ ]] || { echo "RATE: a whole number of messages/s" >&2; exit 1; }
            run_scenario "latency-at-$RATE" "$SCENARIOS/latency.toml" --total-rate "$RATE"
            continue
        fi
        sat=$(saturation_rate)
        for share in ${LATENCY_SHARES:-25 50}; do
            rate=$(awk -v s="$sat" -v p="$share" 'BEGIN { printf "%.0f", s * p / 100 }')
            run_scenario "latency$share" "$SCENARIOS/latency.toml" --total-rate "$rate"
        done
        ;;
    soak)
        sat=$(saturation_rate)
        rate=$(awk -v s="$sat" 'BEGIN { printf "%.0f", s / 2 }')
        run_scenario soak "$SCENARIOS/soak.toml" --total-rate "$rate" --no-floor
        # Flat memory is read off the samples: RSS once a minute, per process.
        jq -r '.hub.processes[] | "\(.name) RSS by minute (MB): " +
            ([.samples[] | select((.t_s | floor) % 60 == 0) | .rss_mb | floor | tostring]
             | join(" "))' "$OUT/soak.json" | tee -a "$OUT/soak.txt"
        ;;
    idle)
        echo "== idle $IDLE_CONNECTIONS ($(cut -d' ' -f1-3 /proc/loadavg) load before)"
        start_all
        "$LOADTEST" idle --hub "http://127.0.0.1:$HUB_PORT" --hub-pid "$HUB_PID" \
            --connections "$IDLE_CONNECTIONS" --hold 10 \
            --report-json "$OUT/idle.json" --report-html "$OUT/idle.html" | tee "$OUT/idle.txt"
        ;;
    *)
        echo "unknown benchmark: $bench" >&2
        exit 1
        ;;
    esac
done
stop_all
