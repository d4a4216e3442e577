#!/usr/bin/env bash
# Multi-node measurements for docs/performance.md (issue 16). Usage: nodes-bench.sh SETUP
# SETUP: one | two | cluster | kill-b
# Environment: OUT (reports), SCENARIOS ("saturation latency"), RATE (msg/s of the
# latency scenario, 8000), HUB and LOADTEST (the binaries; default target/release/…),
# HUB_WORKERS (each hub's tokio worker threads, as TOKIO_WORKER_THREADS; default: one per
# core per hub, so two hubs on one machine have twice as many workers as cores). Each
# run's .txt ends with the CPU ticks of each hub and of Redis (single Redis only) in the
# steady state (20 s from 8 s into the run) and over the whole run; beside it, Redis's
# INFO commandstats of the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
T=target/release; B=${LOADTEST:-$T/switchboard-loadtest}; HUB_BIN=${HUB:-$T/switchboard}; S=loadtest/scenarios
ADMIN=bench-admin-0123456789; W=$(mktemp -d); OUT=${OUT:-$(pwd)/nodes-bench-out}; mkdir -p "$OUT"
setup=$1
case $setup in one) n=0;; two) n=1;; cluster) n=2;; kill-b) n=3;; esac
RPORT=$((16400 + n)); HA=$((18401 + 10 * n)); HB=$((18402 + 10 * n))
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
if [ "$setup" = cluster ]; then
  for p in 17000 17001 17002; do mkdir -p $W/$p
    redis-server --port $p --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes.conf \
      --save "" --appendonly yes --appendfsync everysec --dir $W/$p >/dev/null & pids+=($!); done
  for p in 17000 17001 17002; do until redis-cli -p $p ping >/dev/null 2>&1; do sleep 0.1; done; done
  redis-cli --cluster create 127.0.0.1:17000 127.0.0.1:17001 127.0.0.1:17002 --cluster-replicas 0 --cluster-yes >/dev/null
  until redis-cli -p 17000 cluster info | grep -q cluster_state:ok; do sleep 0.1; done
  R=redis://127.0.0.1:17000,redis://127.0.0.1:17001,redis://127.0.0.1:17002
  RP=""
else
  redis-server --port $RPORT --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec --dir $W >/dev/null & pids+=($!)
  RPID=$!; until redis-cli -p $RPORT ping >/dev/null 2>&1; do sleep 0.1; done
  R=redis://127.0.0.1:$RPORT/0; RP="--redis-pid $RPID"
fi
start_hub() { SWITCHBOARD_ADMIN_TOKEN=$ADMIN SWITCHBOARD_LOG=warn env ${HUB_WORKERS:+TOKIO_WORKER_THREADS=$HUB_WORKERS} $HUB_BIN serve --listen 127.0.0.1:$1 --redis-url "$R" --config $S/hub.toml --node-id $2 > $W/hub-$2.log 2>&1 & pids+=($!); }
start_hub $HA a; A_PID=$!
until curl -sf http://127.0.0.1:$HA/readyz >/dev/null; do sleep 0.1; done
if [ "$setup" = one ]; then
  HUB="--hub http://127.0.0.1:$HA --admin-token $ADMIN --hub-pid $A_PID $RP"
else
  start_hub $HB b; B_PID=$!
  until curl -sf http://127.0.0.1:$HB/readyz >/dev/null; do sleep 0.1; done
  HUB="--hub http://127.0.0.1:$HA,http://127.0.0.1:$HB --admin-token $ADMIN --hub-pid $A_PID $RP"
fi
if [ "$setup" = kill-b ]; then
  $B run $HUB --scenario $S/latency.toml --total-rate 8000 --duration 30 --no-floor \
     --kill-node-after 10 --kill-pid $B_PID --report-json $OUT/$setup.json > $OUT/$setup.txt 2>&1 || echo "exit $?" >> $OUT/$setup.txt
  exit 0
fi
ticks() { awk '{print $14+$15}' /proc/$1/stat 2>/dev/null || echo 0; }
# CPU ticks of hub a, hub b (hub a again with one node) and Redis (single Redis only: its
# own, not its AOF children's).
all_ticks() { echo "$(ticks $A_PID) $(ticks ${B_PID:-$A_PID}) ${RPID:+$(ticks $RPID)}"; }
spent() { # label, ticks before, ticks after
  local -a x=($2) y=($3)
  echo "$1: hub a $((y[0]-x[0])), hub b $((y[1]-x[1]))${RPID:+, redis $((y[2]-x[2]))}"
}
# The steady state alone: 20 s from 8 s into the run, after the ramp-up and before the
# chats close (their tickets and history reads count in the whole run's figure only).
steady() { sleep 8; local t0; t0=$(all_ticks); sleep 20; spent "steady cpu ticks (20 s from 8 s)" "$t0" "$(all_ticks)"; }
for scenario in ${SCENARIOS:-saturation latency}; do
  extra=""; [ $scenario = latency ] && extra="--total-rate ${RATE:-8000} --no-floor"
  before=$(all_ticks)
  steady > $OUT/$setup-$scenario.steady & STEADY=$!
  $B run $HUB --scenario $S/$scenario.toml $extra --report-json $OUT/$setup-$scenario.json > $OUT/$setup-$scenario.txt 2>&1 || echo "exit $?" >> $OUT/$setup-$scenario.txt
  after=$(all_ticks)
  wait $STEADY || true; cat $OUT/$setup-$scenario.steady >> $OUT/$setup-$scenario.txt
  spent "cpu ticks (1/100 s)" "$before" "$after" >> $OUT/$setup-$scenario.txt
  # What Redis ran for it, command by command (single Redis only; reset for the next).
  if [ -n "${RPID:-}" ]; then
    redis-cli -p $RPORT info commandstats > $OUT/$setup-$scenario.commandstats
    redis-cli -p $RPORT config resetstat >/dev/null
  fi
done
