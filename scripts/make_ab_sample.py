#!/usr/bin/env python3
"""Writes sim/tests/data/ab-sample.jsonl: a small gateway request log of a 50% canary (control `latency`,
canary `cost`) in the gateway's JSONL schema with the `policy` and `arm` columns, for the golden test of
`routesim ab` (cli/tests/ab.rs).

Deterministic (fixed seed, values rounded to microseconds); standard library only. Run from the repository
root:

    python3 scripts/make_ab_sample.py

The log holds 400 routed requests, 6 cache hits (no arm, no policy) and 2 malformed rows (a truncated line
and a row without `latency_s`), so the test also covers what `ab` skips and counts.
"""
import json
import random

random.seed(31)
OUT = "sim/tests/data/ab-sample.jsonl"
# arm -> (policy, median latency s, TTFT share, success probability, cost per request USD, quality p)
ARMS = {
    "control": ("latency", 1.2, 0.25, 0.985, 0.0021, 0.90),
    "canary": ("cost", 1.6, 0.30, 0.975, 0.0009, 0.88),
}
STATUSES = ["rate_limited", "server", "timeout"]

rows = []
t = 0.0
for i in range(400):
    t += random.expovariate(4.0)
    arm = "canary" if random.random() < 0.5 else "control"
    policy, median, ttft_share, p_ok, cost, p_quality = ARMS[arm]
    ok = random.random() < p_ok
    latency = random.lognormvariate(0.0, 0.45) * median
    inp, out = random.randint(200, 2000), random.randint(50, 600)
    row = {
        "request_id": i + 1,
        "arrival_s": round(t, 6),
        "time_unix_s": round(1_780_000_000 + t, 6),
        "class": "default",
        "input_tokens": inp,
        "output_tokens": out if ok else 0,
        "endpoint": "ep-a" if random.random() < 0.6 else "ep-b",
        "ttft_s": round(latency * ttft_share, 6) if ok else None,
        "latency_s": round(latency if ok else latency * 0.4, 6),
        "status": "ok" if ok else random.choice(STATUSES),
        "cost_usd": round(cost * random.uniform(0.5, 1.5), 8) if ok else 0.0,
        "attempts": 1,
        "http_status": 200 if ok else 502,
        "streaming": False,
        "cache_hit": False,
        "cancelled": False,
        "policy": policy,
        "arm": arm,
        "quality": 1 if random.random() < p_quality else 0,
    }
    rows.append(json.dumps(row, separators=(",", ":")))
    if i % 70 == 35:
        hit = dict(row, request_id=10_000 + i, endpoint="", latency_s=0.002, ttft_s=0.002, cost_usd=0.0,
                   cache_hit=True, status="ok")
        del hit["policy"], hit["arm"], hit["quality"]
        rows.append(json.dumps(hit, separators=(",", ":")))
rows.insert(120, rows[119][:57])  # a truncated line
at = next(i for i in range(250, len(rows)) if '"arm"' in rows[i])
bad = json.loads(rows[at])
del bad["latency_s"]
rows.insert(at, json.dumps(bad, separators=(",", ":")))
with open(OUT, "w") as f:
    f.write("\n".join(rows) + "\n")
print(f"wrote {len(rows)} lines to {OUT}")
