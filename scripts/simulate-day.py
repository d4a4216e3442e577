#!/usr/bin/env python3
"""A generated day for `switchboard simulate` (docs/simulate.md, "Speed").

    scripts/simulate-day.py OUT_DIR [CHATS] [AGENTS]

Writes OUT_DIR/routing.toml (5 topics with skills, priorities, widening and SLA
targets), OUT_DIR/agents.json (AGENTS agents, 200 by default, in 5 teams with counts),
OUT_DIR/agents-more-billing.json (the same plus 10 billing agents) and
OUT_DIR/traffic.jsonl (CHATS chats, 20000 by default, over 24 h with a daytime peak;
a fifth of the customers give up after 1-6 minutes). Seeded: the same files every time.
"""
import json
import math
import os
import random
import sys

out = sys.argv[1]
chats = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
agents = int(sys.argv[3]) if len(sys.argv) > 3 else 200
rng = random.Random(17)
os.makedirs(out, exist_ok=True)

ROUTING = """\
[[topic]]
name = "general"
default = true
sla = { wait_ms = 60000 }

[[topic]]
name = "billing"
skills = ["billing"]
priority = 5
sla = { wait_ms = 60000, first_response_ms = 90000 }

[[topic]]
name = "billing_fr"
skills = ["billing", "fr"]
priority = 5
expand = [{ after_ms = 60000, drop_skills = ["fr"] }]
sla = { wait_ms = 90000 }

[[topic]]
name = "tech"
skills = ["tech"]
priority = 3
sla = { wait_ms = 120000 }

[[topic]]
name = "tech_de"
skills = ["tech", "de"]
priority = 3
expand = [{ after_ms = 45000, drop_skills = ["de"] }]
sla = { wait_ms = 120000 }
"""
with open(os.path.join(out, "routing.toml"), "w") as f:
    f.write(ROUTING)

teams = [
    ("gen", {}, 1, 0.30),
    ("bill", {"billing": 3}, 1, 0.25),
    ("billfr", {"billing": 2, "fr": 3}, 1, 0.10),
    ("tech", {"tech": 3}, 1, 0.25),
    ("techde", {"tech": 2, "de": 3, "billing": 1}, 1, 0.10),
]


def team_file(extra_billing):
    entries = []
    for name, skills, capacity, share in teams:
        count = max(1, round(agents * share))
        if name == "bill":
            count += extra_billing
        entries.append({"id": name, "skills": skills, "capacity": capacity, "count": count})
    return entries


with open(os.path.join(out, "agents.json"), "w") as f:
    json.dump(team_file(0), f, indent=1)
with open(os.path.join(out, "agents-more-billing.json"), "w") as f:
    json.dump(team_file(10), f, indent=1)

topics = [("general", 0.35), ("billing", 0.25), ("billing_fr", 0.08), ("tech", 0.25), ("tech_de", 0.07)]
handle_mean = {"general": 300000, "billing": 420000, "billing_fr": 480000, "tech": 540000, "tech_de": 600000}
lines = []
while len(lines) < chats:
    # Arrivals follow a daytime curve: thinned uniform times over the day.
    at = rng.randrange(86_400_000)
    hour = at / 3_600_000
    if rng.random() > 0.25 + 0.75 * math.exp(-((hour - 14) ** 2) / 18):
        continue
    r = rng.random()
    for topic, weight in topics:
        r -= weight
        if r <= 0:
            break
    line = {"at_ms": at, "topic": topic, "handle_ms": int(rng.expovariate(1 / handle_mean[topic]))}
    if rng.random() < 0.2:
        line["patience_ms"] = rng.randrange(60_000, 360_000)
    lines.append(line)
lines.sort(key=lambda l: l["at_ms"])
with open(os.path.join(out, "traffic.jsonl"), "w") as f:
    for line in lines:
        f.write(json.dumps(line) + "\n")
print(f"{out}: {len(lines)} chats, {sum(e['count'] for e in team_file(0))} agents")
