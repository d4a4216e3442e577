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


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    rounds = sorted(d for d in os.listdir(out) if d.startswith("round-"))
    print("| round | floor, one node: relay (Redis) µs | two nodes, pipeline | hop | "
          "two nodes, script | hop | hub, one node: hub (Redis) µs | two nodes | hop |")
    print("|---|---|---|---|---|---|---|---|---|")
    hops = {k: [] for k in ("floor", "floor+redis", "script", "script+redis", "hub", "hub+redis")}
    for r in rounds:
        d = os.path.join(out, r)
        f1, f2 = floor(os.path.join(d, "floor-one.json")), floor(os.path.join(d, "floor-two.json"))
        hops["floor"].append(hop(f1[0], f2[0]))
        hops["floor+redis"].append(hop(sum(f1), sum(f2)))
        row = (f"| {r} | {f1[0]:.1f} ({f1[1]:.1f}) | {f2[0]:.1f} ({f2[1]:.1f}) | "
               f"{hops['floor'][-1]:+.0%}, {hops['floor+redis'][-1]:+.0%} |")
        script = os.path.join(d, "floor-two-script.json")
        if os.path.exists(script):
            f3 = floor(script)
            hops["script"].append(hop(f1[0], f3[0]))
            hops["script+redis"].append(hop(sum(f1), sum(f3)))
            row += (f" {f3[0]:.1f} ({f3[1]:.1f}) | "
                    f"{hops['script'][-1]:+.0%}, {hops['script+redis'][-1]:+.0%} |")
        else:
            row += " | |"
        if os.path.exists(os.path.join(d, "two-latency.txt")):
            h1 = hub(os.path.join(d, "one-latency.json"), os.path.join(d, "one-latency.txt"), False)
            h2 = hub(os.path.join(d, "two-latency.json"), os.path.join(d, "two-latency.txt"), True)
            hops["hub"].append(hop(h1[0], h2[0]))
            hops["hub+redis"].append(hop(sum(h1), sum(h2)))
            row += (f" {h1[0]:.1f} ({h1[1]:.1f}) | {h2[0]:.1f} ({h2[1]:.1f}) | "
                    f"{hops['hub'][-1]:+.0%}, {hops['hub+redis'][-1]:+.0%} |")
        else:
            row += " | | |"
        print(row)
    med = {k: (f"{statistics.median(v):+.0%}" if v else "") for k, v in hops.items()}
    print(f"| **median** | | | **{med['floor']}**, {med['floor+redis']} | | "
          f"**{med['script']}**, {med['script+redis']} | | | **{med['hub']}**, {med['hub+redis']} |")


if __name__ == "__main__":
    main()
