#!/usr/bin/env python3
"""The cross-node hop, the floor's and the hub's, from floor-hop.sh's rounds (issue 19).

Usage: floor-hop.py OUT_DIR

For each round: CPU per delivered message in the steady load, on one node and on two;
each hop cell reads "relay or hubs, with Redis".
- The durable floor (`floor-one.json`; `floor-two.json` publishing by a pipeline,
  `floor-two-script.json` by a script): the relay threads (both nodes' when there are
  two) and Redis, from the reports' one-second samples, as steady-cpu.py
  reads them; Redis's AOF-rewrite children are known for the whole run only and are
  left out, as the hubs' figures leave them out.
- The hub (`one-latency.*`, `two-latency.*` of nodes-bench.sh): the hubs' and Redis's
  CPU ticks over 20 s from 8 s into the run, against the messages delivered in that
  window (the report's one-second series).
The hop is two nodes' figure over one node's, minus one.
"""
import importlib.util
import json
import os
import re
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("steady_cpu", os.path.join(HERE, "steady-cpu.py"))
steady_cpu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(steady_cpu)

WINDOW = (8, 28)
TICK_US = 10_000


def floor(path):
    """(relay µs, Redis µs) per message in the steady load."""
    with open(path) as f:
        figures = steady_cpu.steady(json.load(f)["durable_floor"])
    return figures["relay"]["steady_us"], figures.get("redis", {"steady_us": 0.0})["steady_us"]


def hub(report_json, report_txt, two):
    """(hubs µs, Redis µs) per message in nodes-bench.sh's steady window."""
    with open(report_json) as f:
        series = json.load(f)["hub"]["series"]
    delivered = sum(s["delivered"] for s in series if WINDOW[0] <= round(s["t_s"]) < WINDOW[1])
    with open(report_txt) as f:
        line = next(l for l in f if l.startswith("steady cpu ticks"))
    a, b, redis = (int(x) for x in re.findall(r"(?:hub a|hub b|redis) (\d+)", line))
    hubs = a + b if two else a
    return hubs * TICK_US / delivered, redis * TICK_US / delivered


def hop(one, two):
    return two / one - 1


def cell(figures):
    """A setup's figures as a table cell: `process (Redis)`."""
    return f"{figures[0]:.1f} ({figures[1]:.1f})"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    rounds = sorted(d for d in os.listdir(out) if d.startswith("round-"))
    print("| round | floor, one node: relay (Redis) µs | two nodes, pipeline | hop | "
          "two nodes, script | hop | hub, one node: hub (Redis) µs | two nodes | hop |")
    print("|---|---|---|---|---|---|---|---|---|")
    # Each hop: its name, then (process, process + Redis) per round.
    hops = {"floor": [], "script": [], "hub": []}

    def hop_cells(name, one, two):
        """Records the hop from `one` to `two` and gives its cells: two's figures, the hop."""
        hops[name].append((hop(one[0], two[0]), hop(sum(one), sum(two))))
        process, with_redis = hops[name][-1]
        return f" {cell(two)} | {process:+.0%}, {with_redis:+.0%} |"

    for r in rounds:
        d = os.path.join(out, r)
        path = lambda name: os.path.join(d, name)
        one = floor(path("floor-one.json"))
        row = f"| {r} | {cell(one)} |" + hop_cells("floor", one, floor(path("floor-two.json")))
        if os.path.exists(path("floor-two-script.json")):
            row += hop_cells("script", one, floor(path("floor-two-script.json")))
        else:
            row += " | |"
        if os.path.exists(path("two-latency.txt")):
            hub_one = hub(path("one-latency.json"), path("one-latency.txt"), False)
            hub_two = hub(path("two-latency.json"), path("two-latency.txt"), True)
            row += f" {cell(hub_one)} |" + hop_cells("hub", hub_one, hub_two)
        else:
            row += " | | |"
        print(row)

    def median(name):
        if not hops[name]:
            return ""
        process, with_redis = zip(*hops[name])
        return f"**{statistics.median(process):+.0%}**, {statistics.median(with_redis):+.0%}"

    print(f"| **median** | | | {median('floor')} | | {median('script')} | | | {median('hub')} |")


if __name__ == "__main__":
    main()
