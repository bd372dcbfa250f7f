#!/usr/bin/env python3
"""Writes the tiny sample logs under scenarios/logs/, one per supported format, in each format's real schema.

Deterministic (fixed seed); standard library only. Run from the repository root:

    python3 scripts/make_sample_logs.py

The generic Parquet sample is written by `routesim gen-log` instead (see docs/log-formats.md).
"""
import csv
import json
import math
import random
from datetime import datetime, timedelta, timezone

random.seed(20250303)
OUT = "scenarios/logs"
START = datetime(2025, 3, 3, 14, 0, 0, tzinfo=timezone.utc)
# (model as logged, api_base, USD per 1M input, per 1M output, median TTFT s, s per output token)
MODELS = [
    ("gpt-4o-mini", "https://api.openai.com/v1", 0.15, 0.60, 0.35, 0.009),
    ("gemini-2.5-flash", "https://generativelanguage.googleapis.com", 0.30, 2.50, 0.50, 0.005),
    ("claude-sonnet-4", "https://api.anthropic.com", 3.00, 15.00, 0.90, 0.016),
    ("gpt-4.1", "https://api.openai.com/v1", 2.00, 8.00, 0.70, 0.014),
]
TAGS = ["chat", "code", "summarize", "extract"]


def requests(n, rate=2.0):
    t = 0.0
    for i in range(n):
        t += random.expovariate(rate)
        model = random.choice(MODELS)
        tag = random.choices(TAGS, weights=[55, 20, 15, 10])[0]
        prompt = max(1, int(random.lognormvariate(math.log(600), 0.8)))
        completion = max(1, int(random.lognormvariate(math.log(250), 0.6)))
        ttft = random.lognormvariate(math.log(model[4]), 0.4)
        latency = ttft + (completion - 1) * model[5] * random.lognormvariate(0, 0.2)
        status = "success" if random.random() > 0.05 else "failure"
        yield i, t, model, tag, prompt, completion, ttft, latency, status


def iso(dt):
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def litellm():
    cols = ["request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens", "completion_tokens",
            "startTime", "endTime", "completionStartTime", "model", "model_id", "model_group", "api_base", "user",
            "metadata", "cache_hit", "cache_key", "request_tags", "team_id", "end_user", "requester_ip_address",
            "status"]
    rows = []
    for i, t, m, tag, p, c, ttft, lat, status in requests(40):
        start = START + timedelta(seconds=t)
        ok = status == "success"
        spend = (p * m[2] + c * m[3]) / 1e6 if ok else 0.0
        rows.append({
            "request_id": f"chatcmpl-{i:06d}", "call_type": "acompletion", "api_key": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
            "spend": f"{spend:.8f}", "total_tokens": p + c if ok else p, "prompt_tokens": p, "completion_tokens": c if ok else 0,
            "startTime": iso(start), "endTime": iso(start + timedelta(seconds=lat)),
            "completionStartTime": iso(start + timedelta(seconds=ttft)) if ok else "",
            "model": m[0], "model_id": f"{m[0]}-deployment", "model_group": m[0], "api_base": m[1],
            "user": f"user-{random.randint(1, 8)}", "metadata": json.dumps({"environment": "prod"}),
            "cache_hit": "False", "cache_key": "", "request_tags": json.dumps([tag, "prod"]), "team_id": "team-a",
            "end_user": "", "requester_ip_address": "10.0.0.7", "status": status,
        })
    # A gateway writes a row when the request ends.
    rows.sort(key=lambda r: r["endTime"])
    with open(f"{OUT}/litellm-spend-logs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


def portkey():
    with open(f"{OUT}/portkey-export.jsonl", "w") as f:
        for i, t, m, tag, p, c, ttft, lat, status in requests(40):
            ok = status == "success"
            code = 200 if ok else random.choice([429, 500, 503])
            row = {
                "id": f"pk-{i:06d}", "trace_id": f"trace-{i // 3:05d}", "created_at": iso(START + timedelta(seconds=t)),
                "is_success": ok, "ai_org": m[1].split("//")[1].split(".")[1], "ai_model": m[0],
                "req_units": p, "res_units": c if ok else 0, "total_units": p + (c if ok else 0),
                "cost": round((p * m[2] + c * m[3]) / 1e4, 6) if ok else 0,  # cents
                "cost_currency": "USD", "response_time": int(lat * 1000), "response_status_code": code,
                "mode": "single", "metadata": {"_user": f"user-{random.randint(1, 8)}", "task": tag},
            }
            f.write(json.dumps(row) + "\n")


def azure():
    with open(f"{OUT}/azure-llm-inference-trace.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["TIMESTAMP", "ContextTokens", "GeneratedTokens"])
        for i, t, m, tag, p, c, *_ in requests(40, rate=4.0):
            ts = (START + timedelta(seconds=t)).strftime("%Y-%m-%d %H:%M:%S.%f") + "0"
            w.writerow([ts, p * 3, c])


def burstgpt():
    with open(f"{OUT}/burstgpt.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type"])
        for i, t, m, tag, p, c, ttft, lat, status in requests(40, rate=0.5):
            model = "ChatGPT" if m[0].startswith("gpt-4o") or m[0].startswith("gemini") else "GPT-4"
            resp = c if status == "success" else 0
            log_type = "Conversation log" if random.random() < 0.7 else "API log"
            w.writerow([int(t * 1) + 5, model, p, resp, p + resp, log_type])


def custom():
    # A home-grown gateway log with its own column names and epoch-millisecond times: replayed with the
    # [replay.columns] mapping of scenarios/replay-custom.toml.
    with open(f"{OUT}/custom-gateway.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ts_ms", "backend", "in", "out", "took_ms", "http", "tenant", "kind"])
        for i, t, m, tag, p, c, ttft, lat, status in requests(40):
            ms = int((START + timedelta(seconds=t)).timestamp() * 1000)
            w.writerow([ms, m[0], p, c, int(lat * 1000), 200 if status == "success" else 503,
                        random.choice(["acme", "globex"]), tag])


if __name__ == "__main__":
    litellm()
    portkey()
    azure()
    burstgpt()
    custom()
