#!/usr/bin/env python3
"""Puts floor-steps.sh's rounds in one table (see that script).

For each round and each run: delivered msg/s, the server side's CPU per delivered
message (the hub or the relay threads, plus Redis and Redis's children, in µs) and the
p99 customer→agent latency, each also as a ratio to the durable floor (`relay`) of the
same round; then the median of each ratio over the rounds.

    floor-steps.py OUT_DIR
"""
import json
import statistics
import sys
from pathlib import Path

RUNS = ["relay", "acks", "sequenced", "hub"]
SERVER = {"hub": "hub"}  # the floors' server is their relay threads


def figures(path, run):
    report = json.loads(path.read_text())
    load = report["hub"] if run == "hub" else report["durable_floor"]
    delivered = load["messages"]["delivered"]
    server = SERVER.get(run, "relay")
    cpu = 0.0
    for proc in load["processes"]:
        if proc["name"] in (server, "redis"):
            cpu += proc["cpu_s"] + proc["children_cpu_s"]
    return {
        "per_sec": load["messages"]["per_sec"],
        "us": cpu / delivered * 1e6 if delivered else float("nan"),
        "p99": load["latency"]["customer_to_agent"]["p99_ms"],
        "lost": load["replies_missing"] + len(load["client_failures"]),
    }


def main():
    out = Path(sys.argv[1])
    rounds = sorted(out.glob("round-*"), key=lambda p: int(p.name.split("-")[1]))
    ratios = {run: {"per_sec": [], "us": [], "p99": []} for run in RUNS}
    print("| round | run | msg/s | ×relay | server µs/msg | ×relay | p99 c→a ms | ×relay | missing |")
    print("|---|---|---|---|---|---|---|---|---|")
    for rnd in rounds:
        found = {}
        for run in RUNS:
            path = rnd / f"{run}.json"
            if path.exists():
                found[run] = figures(path, run)
        base = found.get("relay")
        for run, f in found.items():
            cells = []
            for key, fmt in (("per_sec", "{:.0f}"), ("us", "{:.1f}"), ("p99", "{:.1f}")):
                ratio = f[key] / base[key] if base and base[key] else float("nan")
                ratios[run][key].append(ratio)
                cells += [fmt.format(f[key]), f"{ratio:.2f}"]
            print(f"| {rnd.name} | {run} | " + " | ".join(cells) + f" | {f['lost']} |")
    print()
    print("| run | msg/s ×relay | server µs/msg ×relay | p99 c→a ×relay | (medians) |")
    print("|---|---|---|---|---|")
    for run in RUNS:
        r = ratios[run]
        if r["us"]:
            cells = [f"{statistics.median(r[k]):.2f}" for k in ("per_sec", "us", "p99")]
            print(f"| {run} | " + " | ".join(cells) + f" | {len(r['us'])} rounds |")


if __name__ == "__main__":
    main()
