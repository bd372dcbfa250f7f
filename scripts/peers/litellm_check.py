#!/usr/bin/env python3
"""Drives the real LiteLLM Router (issue 29) over configs that `routesim export litellm` wrote.

Usage: litellm_check.py REQUESTS CONFIG.yaml...   Prints one JSON object per config on stdout:
  load:   the config exactly as exported given to `litellm.Router(model_list=..., **router_settings)`: how many
          deployments the router kept (`deployments`) of the `model_list` (`listed`), or the error it raised.
  groups: per model group, REQUESTS requests through a Router over the same config whose deployments point at a
          loopback mock (`openai/<model_info.id>` at the mock's `api_base`, everything else kept): the requests
          each deployment received (`hits`), the deployment that answered (`served`), failed requests (`errors`).
          Under latency-based-routing the mock answers deployment k of the group after 30 ms x k.
  failover: for groups with `order` tiers, the same with every order-1 deployment answering 500.
Python's `random` is seeded, so a run is reproducible.
"""
import asyncio
import copy
import json
import os
import random
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import litellm  # noqa: E402
import yaml  # noqa: E402
from mock_upstream import Mock  # noqa: E402

litellm.suppress_debug_info = True
ROUTER_KEYS = {
    "routing_strategy", "routing_strategy_args", "num_retries", "retry_after", "timeout", "stream_timeout",
    "fallbacks", "allowed_fails", "cooldown_time", "disable_cooldowns",
}


def router(cfg, model_list):
    settings = {k: v for k, v in (cfg.get("router_settings") or {}).items() if k in ROUTER_KEYS}
    return litellm.Router(model_list=model_list, **settings)


def on_mock(model_list, mock):
    out = copy.deepcopy(model_list)
    for d in out:
        p = d["litellm_params"]
        p["model"] = "openai/" + d["model_info"]["id"]
        p["api_base"] = mock.url
        p["api_key"] = "sk-mock"
    return out


def drive(r, group, n, mock):
    """`n` requests one after the other (the proxy's async path, `Router.acompletion`)."""
    served, errors = {}, 0

    async def run():
        nonlocal errors
        for _ in range(n):
            try:
                resp = await r.acompletion(model=group, messages=[{"role": "user", "content": "hi"}])
                dep = resp._hidden_params.get("model_id")
                served[dep] = served.get(dep, 0) + 1
            except Exception:  # noqa: BLE001 - a failed request is counted, not fatal
                errors += 1
            await asyncio.sleep(0.005)  # lets the router's success callbacks record the call

    asyncio.run(run())
    return {"hits": dict(mock.hits), "served": served, "errors": errors}


def check(path, n, mock):
    with open(path) as f:
        cfg = yaml.safe_load(f)
    model_list = cfg["model_list"]
    out = {"file": path, "load": {"listed": len(model_list)}}
    try:
        out["load"]["deployments"] = len(router(cfg, copy.deepcopy(model_list)).registry().all())
    except Exception as e:  # noqa: BLE001 - reported to the test
        out["load"]["error"] = f"{type(e).__name__}: {e}"[:500]
        return out
    strategy = (cfg.get("router_settings") or {}).get("routing_strategy", "simple-shuffle")
    groups = {}
    for d in model_list:
        groups.setdefault(d["model_name"], []).append(d)
    out["groups"], out["failover"] = {}, {}
    if n == 0:
        return out
    for g, deps in groups.items():
        delay = {}
        if strategy == "latency-based-routing":
            delay = {d["model_info"]["id"]: 0.03 * k for k, d in enumerate(deps)}
        mock.reset(delay=delay)
        random.seed(1)
        out["groups"][g] = drive(router(cfg, on_mock(model_list, mock)), g, n, mock)
        orders = [d["litellm_params"].get("order") for d in deps]
        if any(o is not None for o in orders):
            low = min(o for o in orders if o is not None)
            mock.reset(fail={d["model_info"]["id"]: 500 for d, o in zip(deps, orders) if o == low})
            random.seed(1)
            out["failover"][g] = drive(router(cfg, on_mock(model_list, mock)), g, max(n // 4, 10), mock)
    return out


def main():
    n = int(sys.argv[1])
    mock = Mock()
    try:
        for path in sys.argv[2:]:
            print(json.dumps(check(path, n, mock)), flush=True)
    finally:
        mock.close()


main()
