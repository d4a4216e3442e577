#!/usr/bin/env bash
# What one stored message costs Redis, command by command: Redis CPU per operation
# (user + system, read from /proc) for pipelined redis-benchmark runs against a fresh
# redis-server with AOF on (appendfsync everysec, automatic rewrites off so they do not
# blur the figures). The last two rows run the Redis calls of the hub's append script
# before issue 19 (src/store/append.rs holds today's, without the claim) for a batch of one message, in a shortened script
# without its state checks, with and without the client_msg_id claim. The rows after them
# run the calls per conversation before the stream fence (HMGET, XADD, HSET last_seq,
# PUBLISH; one message each) for 1, 2, 4, 8 and 16 conversations per script call, as a
# group commit of many conversations' appends would send them (tried in issue 19 and not
# kept: on a quiet Redis it pays, in the hub it did not; docs/decisions.md); they are per
# message. The last rows compare a batch of one message before and after the stream
# fence (HGET state, XADD, PUBLISH: the stream's last id is the fence, so no last_seq
# read or write), with a subscriber on the live channel as in the hub; the fenced row's
# XADD takes `*` where the hub gives the explicit next id (the same work in Redis). The
# next row is a node alone (issue 19, third stop): the listeners are read, nobody
# else listens, nothing is published. The last two rows are the plain append (fourth
# stop): its XADD and its SMEMBERS, without a script. The rows after them put a batch of
# 1 and of 6 plain messages through the append script (read from src/store), as one
# entry by one XADD (tenth stop), and through the plain script publishing to another
# node (eighth stop, read from src/store).
#
#   loadtest/scripts/redis-append-cost.sh [REQUESTS]      (default 500000 per row)
#
# Environment: REDIS_PORT (16600).
set -euo pipefail

PORT="${REDIS_PORT:-16600}"
REQUESTS="${1:-500000}"
WORK="$(mktemp -d)"
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
    --auto-aof-rewrite-percentage 0 --dir "$WORK" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
trap 'kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

# A stored event as the hub writes it (64-byte text, as in the benchmarks).
EVENT='{"ts":1764028800000,"kind":"message","from":{"role":"customer","id":"v_12345678"},"text":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","client_msg_id":"m-1234567-1234"}'

load() { redis-cli -p "$PORT" script load "$1"; }
EMPTY=$(load "return 1")
XADD_ONLY=$(load "return redis.call('XADD', KEYS[1], '*', 'e', ARGV[1])")
APPEND_NO_CLAIM=$(load "
local h = redis.call('HMGET', KEYS[1], 'state', 'last_seq')
local last = (tonumber(h[2]) or 0) + 1
local s = string.format('%d', last)
redis.call('XADD', KEYS[2], s .. '-0', 'e', ARGV[1])
redis.call('HSET', KEYS[1], 'last_seq', s)
return {1, last}")
APPEND=$(load "
local h = redis.call('HMGET', KEYS[1], 'state', 'last_seq')
local last = (tonumber(h[2]) or 0) + 1
local s = string.format('%d', last)
if redis.call('HSETNX', KEYS[3], ARGV[2], s) == 0 then return {0, 0} end
redis.call('XADD', KEYS[2], s .. '-0', 'e', ARGV[1])
redis.call('HSET', KEYS[1], 'last_seq', s)
return {1, last}")

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$REDIS_PID/stat"; }
row() { # label, then redis-benchmark arguments [-- messages per call]
    local label=$1
    shift
    local per_call=1 args=()
    while [ $# -gt 0 ]; do
        if [ "$1" = "--" ]; then per_call=$2; break; fi
        args+=("$1")
        shift
    done
    local before after
    before=$(cpu_ticks)
    redis-benchmark -p "$PORT" -c 20 -n $((REQUESTS / per_call)) -P 32 -q "${args[@]}" >/dev/null 2>&1
    after=$(cpu_ticks)
    # ticks are 1/100 s: ns per op = ticks * 10^7 / requests
    printf '%-52s %6.2f µs\n' "$label" "$(awk -v t=$((after - before)) -v n="$REQUESTS" 'BEGIN { print t * 1e4 / n }')"
}

echo "Redis CPU per operation, pipelined (-P 32, 20 connections, $REQUESTS requests each):"
row "PING (the per-request floor)" PING
row "XADD" XADD 'c:{x}:s' '*' e "$EVENT"
row "HSET" HSET 'c:{x}:h' last_seq 12345
row "HSETNX, a new field each time" -r 100000000 HSETNX 'c:{x}:d' m-__rand_int__ 12345
row "EVALSHA of an empty script" EVALSHA "$EMPTY" 0
row "EVALSHA: XADD" EVALSHA "$XADD_ONLY" 1 'c:{y}:s' "$EVENT"
row "EVALSHA: append, no client_msg_id claim" EVALSHA "$APPEND_NO_CLAIM" 2 'c:{z}:h' 'c:{z}:s' "$EVENT"
row "EVALSHA: append as the hub runs it" -r 100000000 \
    EVALSHA "$APPEND" 3 'c:{w}:h' 'c:{w}:s' 'c:{w}:d' "$EVENT" m-__rand_int__

GROUPED=$(load "
local a = 1
local out = {}
for k = 1, #KEYS, 2 do
  local h = redis.call('HMGET', KEYS[k], 'state', 'last_seq')
  local last = (tonumber(h[2]) or 0) + 1
  local s = string.format('%d', last)
  redis.call('XADD', KEYS[k + 1], s .. '-0', 'e', ARGV[a])
  redis.call('HSET', KEYS[k], 'last_seq', s)
  redis.call('PUBLISH', ARGV[a + 1], s .. ' 0 ' .. #ARGV[a] .. ' ' .. ARGV[a])
  out[#out + 1] = {1, last}
  a = a + 2
end
return out")
for n in 1 2 4 8 16; do
    keys=() args=()
    for k in $(seq "$n"); do
        keys+=("c:{g$k}:h" "c:{g$k}:s")
        args+=("$EVENT" "live:{g$k}")
    done
    # A call carries n messages: REQUESTS / n calls, so the row reads per message.
    row "EVALSHA: calls before the fence, $n conversation(s) per call" EVALSHA "$GROUPED" $((2 * n)) "${keys[@]}" "${args[@]}" -- "$n"
done

FENCED=$(load "
local state = redis.call('HGET', KEYS[1], 'state')
local added = redis.pcall('XADD', KEYS[2], '*', 'e', ARGV[1])
if type(added) == 'table' and added.err then return {-3, 0} end
redis.call('PUBLISH', ARGV[2], '1 0 ' .. #ARGV[1] .. ' ' .. ARGV[1])
return {1, 1}")
redis-cli -p "$PORT" hset 'c:{f}:h' state open >/dev/null
redis-cli -p "$PORT" hset 'c:{g1}:h' state open >/dev/null
redis-cli -p "$PORT" subscribe 'live:{f}' 'live:{g1}' >/dev/null &
SUBSCRIBER=$!
row "EVALSHA: one message, before the fence (subscribed)" EVALSHA "$GROUPED" 2 'c:{g1}:h' 'c:{g1}:s' "$EVENT" 'live:{g1}'
row "EVALSHA: one message, stream fence (subscribed)" EVALSHA "$FENCED" 2 'c:{f}:h' 'c:{f}:s' "$EVENT" 'live:{f}'
# Today's calls for a node alone: the listeners are read and nobody else is published to.
ALONE=$(load "
local state = redis.call('HGET', KEYS[1], 'state')
local others = {}
for _, n in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if n ~= ARGV[2] then others[#others + 1] = n end
end
local added = redis.pcall('XADD', KEYS[2], '*', 'e', ARGV[1])
if type(added) == 'table' and added.err then return {-3, 0} end
for _, n in ipairs(others) do redis.call('PUBLISH', 'live:{a}:' .. n, ARGV[1]) end
return {1, 1}")
redis-cli -p "$PORT" hset 'c:{a}:h' state open >/dev/null
redis-cli -p "$PORT" sadd 'c:{a}:l' node-a >/dev/null
row "EVALSHA: one message, fence, node alone (no publish)" EVALSHA "$ALONE" 3 'c:{a}:h' 'c:{a}:s' 'c:{a}:l' "$EVENT" node-a
# The plain append (issue 19, fourth stop): no script, two commands per message, the
# XADD on a stream that exists (NOMKSTREAM) and the SMEMBERS of a node alone. Their sum
# is the plain append's Redis cost; each row here is one command per request.
row "plain append: XADD NOMKSTREAM" XADD 'c:{a}:s' NOMKSTREAM '*' e "$EVENT"
row "plain append: SMEMBERS (one listener)" SMEMBERS 'c:{a}:l'
kill "$SUBSCRIBER"
# A batch of plain messages (issue 19, seventh stop): the hub's append script as it is in
# src/store/append.rs, and the plain batch script of src/store/plain_append.rs, each
# read from the source with the explicit ids `<seq>-0` replaced by `*` (the same work in
# Redis; repeated calls cannot reuse one id). Per message, for batches of 1 and 6.
script_of() { # file: the text between the first r#" and "# of a Rust source
    python3 -c 'import sys; s = open(sys.argv[1]).read(); b = s[s.index("r#\"") + 3:]; print(b[:b.index("\"#")])' "$1" |
        sed -e "s/seq_text \.\. '-0'/'*'/" -e "s/string.format('%d', expected + [0-9i -]*) \.\. '-0'/'*'/"
}
SRC="$(cd "$(dirname "$0")/../.." && pwd)/src/store"
FULL=$(load "$(script_of "$SRC/append.rs")")
LEAN=$(load "$(script_of "$SRC/plain_append.rs")")
redis-cli -p "$PORT" hset 'c:{b}:h' state open >/dev/null
redis-cli -p "$PORT" sadd 'c:{b}:l' node-a >/dev/null
redis-cli -p "$PORT" xadd 'c:{b}:s' '*' e x >/dev/null
redis-cli -p "$PORT" sadd 'c:{p}:l' node-a node-b >/dev/null
redis-cli -p "$PORT" xadd 'c:{p}:s' '*' e x >/dev/null
for n in 1 6; do
    full=() lean=()
    for _ in $(seq "$n"); do full+=("$EVENT" open "" 0); lean+=("$EVENT"); done
    row "EVALSHA: the append script, $n plain message(s)" EVALSHA "$FULL" 3 'c:{b}:h' 'c:{b}:s' 'c:{b}:l' \
        '' 'live:' node-a 0 "${full[@]}" -- "$n"
    # Issue 19, tenth stop: a plain batch is one entry by one XADD (plus the SMEMBERS
    # row above, once per round trip); the script only for a node that knows others listen.
    fields=(e "$EVENT")
    for k in $(seq 1 $((n - 1))); do fields+=("e$k" "$EVENT"); done
    row "plain append: one XADD of one entry, $n message(s)" XADD 'c:{e}:s' '*' "${fields[@]}" -- "$n"
    # Issue 19, eighth stop: the same, publishing its hint to one other listening node.
    row "EVALSHA: the plain batch script publishing to one other node, $n message(s)" EVALSHA \
        "$LEAN" 2 'c:{p}:s' 'c:{p}:l' 0 PUBLISH 'live:' node-a "$EVENT" "${lean[@]}" -- "$n"
done
echo "stream entries written by the batch rows: $(redis-cli -p "$PORT" xlen 'c:{b}:s')"
