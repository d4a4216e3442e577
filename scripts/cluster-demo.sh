#!/usr/bin/env bash
# Two Switchboard nodes on a local 3-master Redis Cluster, with the demo page on each.
#
#   scripts/cluster-demo.sh
#
# Starts three redis-server processes in cluster mode (ports 17000-17002, AOF on, in a
# temp dir), joins them with `redis-cli --cluster create … --cluster-replicas 0`, waits for
# cluster_state:ok, builds the hub (release) and starts node `a` on 127.0.0.1:18081 and
# node `b` on 127.0.0.1:18082 with the demo configuration (the topics, canned answers and
# agents of `switchboard demo`, with a longer admin token since `serve` requires 16
# characters), creates the demo agents alice and bob, and prints the demo page and agent
# console of each node. A customer on one node and an agent on the other chat as on one.
# Ctrl-C stops everything and removes the temp dir.
#
# Environment: HUB (a hub binary to use instead of building one), REDIS_BASE_PORT (17000),
# HUB_PORT_A (18081), HUB_PORT_B (18082), ADMIN_TOKEN (demo-admin-token-0123).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
REDIS_BASE_PORT="${REDIS_BASE_PORT:-17000}"
HUB_PORT_A="${HUB_PORT_A:-18081}"
HUB_PORT_B="${HUB_PORT_B:-18082}"
ADMIN_TOKEN="${ADMIN_TOKEN:-demo-admin-token-0123}"
REDIS_PORTS=("$REDIS_BASE_PORT" "$((REDIS_BASE_PORT + 1))" "$((REDIS_BASE_PORT + 2))")

for tool in redis-server redis-cli curl; do
    command -v "$tool" >/dev/null || { echo "cluster-demo: $tool is missing (apt-get install redis-server curl)" >&2; exit 1; }
done

WORK="$(mktemp -d)"
PIDS=()
# shellcheck disable=SC2317  # run by the EXIT trap
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap stop_all EXIT
trap 'echo; echo "cluster-demo: stopping"; exit 130' INT TERM

# wait_for WHAT SECONDS CMD…: polls CMD every 0.1 s until it succeeds or SECONDS pass.
wait_for() {
    local what=$1 seconds=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "cluster-demo: $what not ready within ${seconds} s" >&2
            return 1
        fi
        sleep 0.1
    done
}

# shellcheck disable=SC2317  # run through wait_for
cluster_ok() {
    redis-cli -p "${REDIS_PORTS[0]}" cluster info | grep -q '^cluster_state:ok'
}

# 1. Three Redis masters in cluster mode.
for port in "${REDIS_PORTS[@]}"; do
    mkdir -p "$WORK/redis-$port"
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
        --appendonly yes --save "" --dir "$WORK/redis-$port" \
        --logfile "$WORK/redis-$port/redis.log" &
    PIDS+=("$!")
done
for port in "${REDIS_PORTS[@]}"; do
    wait_for "redis on port $port" 10 redis-cli -p "$port" ping
done
SEEDS=()
for port in "${REDIS_PORTS[@]}"; do
    SEEDS+=("127.0.0.1:$port")
done
redis-cli --cluster create "${SEEDS[@]}" --cluster-replicas 0 --cluster-yes >"$WORK/cluster-create.log"
wait_for "the Redis Cluster (cluster_state:ok)" 30 cluster_ok
REDIS_URL="$(printf 'redis://%s,' "${SEEDS[@]}")"
REDIS_URL="${REDIS_URL%,}"
echo "cluster-demo: Redis Cluster up: $REDIS_URL"

# 2. The hub.
if [ -z "${HUB:-}" ]; then
    (cd "$ROOT" && cargo build --release -p switchboard --bin switchboard)
    HUB="$TARGET/release/switchboard"
fi

cat >"$WORK/demo.toml" <<TOML
admin_token = "$ADMIN_TOKEN"
identity_secret = "demo-identity-secret"

[[topic]]
name = "general"
default = true
offer_timeout_ms = 30000

[[topic]]
name = "billing"
skills = ["billing"]
priority = 5

[[topic]]
name = "billing_fr"
skills = ["billing", "fr"]
priority = 5
expand = [{ after_ms = 30000, drop_skills = ["fr"] }]

[[topic]]
name = "tier2"
skills = ["tier2"]
priority = 10
escalation_priority_boost = 5

[[canned_responses]]
shortcut = "hi"
text = "Hi! Thanks for reaching out, how can I help?"

[[canned_responses]]
shortcut = "bye"
text = "Glad I could help. Have a great day!"
TOML

start_node() { # node-id port
    local node=$1 port=$2
    SWITCHBOARD_LOG=info "$HUB" serve --listen "127.0.0.1:$port" --redis-url "$REDIS_URL" \
        --config "$WORK/demo.toml" --node-id "$node" >"$WORK/hub-$node.log" 2>&1 &
    local pid=$! deadline=$((SECONDS + 30))
    PIDS+=("$pid")
    until grep -q "listening on" "$WORK/hub-$node.log"; do
        if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            echo "cluster-demo: node $node did not start:" >&2
            tail -n 20 "$WORK/hub-$node.log" >&2
            exit 1
        fi
        sleep 0.1
    done
}
start_node a "$HUB_PORT_A"
start_node b "$HUB_PORT_B"

# 3. The demo agents (fresh tokens on every start), created through node a.
create_agent() { # id name skills capacity supervisor
    curl -sS -X DELETE -H "Authorization: Bearer $ADMIN_TOKEN" \
        "http://127.0.0.1:$HUB_PORT_A/v1/agents/$1" >/dev/null || true
    local answer
    answer="$(curl -sS -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
        -H 'content-type: application/json' \
        -d "{\"id\":\"$1\",\"name\":\"$2\",\"skills\":$3,\"capacity\":$4,\"supervisor\":$5}" \
        "http://127.0.0.1:$HUB_PORT_A/v1/agents")" || answer="not created"
    echo "demo agent $1: $answer"
}
create_agent alice Alice '{"billing":5,"fr":4,"tier2":3}' 3 true
create_agent bob Bob '{"billing":3}' 2 false

cat <<TEXT

node a: demo page http://127.0.0.1:$HUB_PORT_A/demo   agent console http://127.0.0.1:$HUB_PORT_A/console/
node b: demo page http://127.0.0.1:$HUB_PORT_B/demo   agent console http://127.0.0.1:$HUB_PORT_B/console/
admin token: $ADMIN_TOKEN   live nodes: curl -H "Authorization: Bearer $ADMIN_TOKEN" http://127.0.0.1:$HUB_PORT_A/v1/nodes
logs: $WORK   Ctrl-C stops everything.
TEXT

# Until Ctrl-C, or until a process of the demo exits on its own.
wait -n "${PIDS[@]}" || true
echo "cluster-demo: a process of the demo exited; see the logs above" >&2
for node in a b; do
    tail -n 5 "$WORK/hub-$node.log" >&2
done
exit 1
