#!/usr/bin/env python3
"""CPU per delivered message during the load only, from `run` reports (issue 19, eighth stop).

Usage: steady-cpu.py REPORT.json [REPORT.json ...]

A `run` report's "CPU per delivered message" divides each process's CPU over the whole
run by the messages delivered. For the hub, the whole run also holds what follows the
load: every chat closes at once, each with its ticket, and every customer reads its
whole history back through the hub for verification; since the eleventh stop the run
waits for every ticket before it reads the CPU. With the benchmark's chats of ~10,000
messages that is seconds of the hub's and Redis's CPU in which nothing is delivered
(docs/performance.md, issue 19, eighth and eleventh stops). The
durable floor has no such tail. This prints both figures for the hub and the durable
floor from the reports' one-second samples: the mean CPU share over seconds 6-27 of the
sampler (which starts with the agents' logins, about a second before the load) against
the mean delivery rate over seconds 5-28 of the load, so both windows lie inside the
steady load. Redis's AOF-rewrite children are only known for the whole run, and count
per message of the whole run in both figures.
"""
import json
import statistics
import sys

CPU_WINDOW = (6, 27)
RATE_WINDOW = (5, 28)


def steady(section):
    """µs of CPU per delivered message in the steady load, by process, and the CPU
    seconds each spent after the last delivery."""
    series = section["series"]
    rate = statistics.mean(
        s["delivered"] for s in series if RATE_WINDOW[0] <= round(s["t_s"]) < RATE_WINDOW[1]
    )
    total = sum(s["delivered"] for s in series)
    out = {}
    for proc in section["processes"]:
        samples = [(round(s["t_s"]), s["cpu_pct"]) for s in proc["samples"]]
        share = statistics.mean(c for t, c in samples if CPU_WINDOW[0] <= t <= CPU_WINDOW[1])
        after_load = sum(c for t, c in samples if t > len(series)) / 100
        out[proc["name"]] = {
            "steady_us": share / 100 / rate * 1e6,
            "whole_us": proc["cpu_s"] / total * 1e6,
            "children_us": proc.get("children_cpu_s", 0.0) / total * 1e6,
            "after_load_s": after_load,
        }
    return out


def server(figures, own):
    """The server side's µs per message: `own` (hub or relay) + Redis + its children."""
    redis = figures.get("redis", {"steady_us": 0, "whole_us": 0, "children_us": 0})
    steady_us = figures[own]["steady_us"] + redis["steady_us"] + redis["children_us"]
    whole_us = figures[own]["whole_us"] + redis["whole_us"] + redis["children_us"]
    return steady_us, whole_us


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print("| report | hub µs/msg, load only (whole run) | hub CPU after the load | "
          "durable floor µs/msg | ratio, load only | ratio, whole run |")
    print("|---|---|---|---|---|---|")
    for path in sys.argv[1:]:
        with open(path) as f:
            report = json.load(f)
        if not report.get("durable_floor"):
            print(f"| {path} | no durable floor in this report | | | | |")
            continue
        hub = steady(report["hub"])
        floor = steady(report["durable_floor"])
        hub_steady, hub_whole = server(hub, "hub")
        floor_steady, floor_whole = server(floor, "relay")
        print(f"| {path} | {hub_steady:.1f} ({hub_whole:.1f}) | {hub['hub']['after_load_s']:.1f} s | "
              f"{floor_steady:.1f} ({floor_whole:.1f}) | {hub_steady / floor_steady:.2f}× | "
              f"{hub_whole / floor_whole:.2f}× |")


if __name__ == "__main__":
    main()
