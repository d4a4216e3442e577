#!/usr/bin/env bash
# Hub builds compared at the same fixed rates: hub-only `latency` runs (25 % and 50 % of
# a given saturation figure), the builds interleaved, PASSES passes (2 by default), so
# the machine's drift falls on every build alike.
#
#   loadtest/scripts/ab-rates.sh OUT_DIR SATURATION_MSG_S NAME=HUB_BINARY ...
#
# e.g. `ab-rates.sh /tmp/ab 36000 before=/tmp/hub-before after=target/release/switchboard`
# runs before, after, before, after; each run's report is in OUT_DIR/NAME-PASS/. The
# harness is LOADTEST (default target/release/switchboard-loadtest).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:?usage: ab-rates.sh OUT_DIR SATURATION_MSG_S NAME=HUB ...}"
SATURATION="${2:?the saturation figure the rates are taken from}"
shift 2
[ $# -gt 0 ] || { echo "name at least one NAME=HUB build" >&2; exit 1; }
export LOADTEST="${LOADTEST:-$ROOT/target/release/switchboard-loadtest}"
for pass in $(seq "${PASSES:-2}"); do
    for build in "$@"; do
        name=${build%%=*}
        dir="$OUT/$name-$pass"
        mkdir -p "$dir"
        echo "{\"hub\":{\"messages\":{\"per_sec\":$SATURATION}}}" >"$dir/saturation.json"
        HUB="${build#*=}" RUN_FLAGS="--no-floor" "$ROOT/loadtest/scripts/bench.sh" "$dir" latency >"$dir/log" 2>&1
        for share in 25 50; do
            printf '%-12s %s %%: ' "$name-$pass" "$share"
            grep -h "CPU per delivered message: hub" "$dir/latency$share.txt" | sed 's/^ *//'
        done
    done
done
