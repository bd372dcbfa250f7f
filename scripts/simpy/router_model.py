#!/usr/bin/env python3
"""routesim's SimPy reference model: the lowest-EMA router of `scenarios/peer-simpy-router.toml`.

An independent implementation, in SimPy, of the router scenario `scenarios/peer-simpy-router.toml`. Both
simulators are given the same model; if they agree on latency and failures, neither has a modelling bug the
other lacks, and their wall times compare an event-driven Python simulator with routesim on the same work.
`scripts/compare_simpy.py` runs the two side by side.

What is modelled
----------------
* Arrivals: a Poisson process at `rate` requests/s; exactly N requests arrive, and the run ends when the
  last one has finished (no warm-up: every request is measured).
* Endpoints: each has `slots` servers behind one FIFO queue (a `simpy.Resource`). An attempt's service time
  is lognormal, ln S ~ Normal(ln median, sigma^2).
* Failures: an attempt fails with the endpoint's probability of a server error. A failed attempt holds its
  slot for `fail_after` times its service-time draw and then frees it.
* Routing: every attempt goes to the endpoint with the lowest exponential moving average (EMA) of observed
  latency, EMA <- alpha * x + (1 - alpha) * EMA. x is the time from dispatch to the end of a *successful*
  attempt, so queue wait plus service; failed attempts do not update it. Every EMA starts at `initial`
  (0 s here). Ties, which happen only while several EMAs are still at their initial value, are broken at
  random, as routesim's router does.
* Retries: a request whose attempt fails is sent again at once (no back-off) to the lowest-EMA endpoint it
  has not tried yet, up to `max_attempts` attempts in all. If its last attempt fails, the request fails.
* Latency: from arrival to the end of the request's last attempt, including any failed attempt before it.

How it maps to the scenario
---------------------------
The model reads its parameters from the scenario file itself, so the two cannot drift apart:

    scenario field                                   model
    -----------------------------------------------  -------------------------------------------------
    [traffic] rate                                   Poisson arrival rate (--rate overrides it)
    requests                                         N (--requests overrides it)
    [[endpoints]] slots                              simpy.Resource capacity
    [[endpoints]] ttft = lognormal(median, sigma)    service time; tpot is 0 and output_tokens 1, so
                                                     ttft is the whole service time
    [[endpoints]] errors.server                      probability that an attempt fails
    [[endpoints]] fail_after                         share of the draw a failed attempt holds its slot
    [[policies]] kind = "latency"                    lowest-EMA routing
    tracking.latency.alpha / .initial                EMA weight / starting value
    retry.max_attempts, same_endpoint = false        attempts per request, each on a new endpoint
    [health] interval = "0s", circuit.enabled=false  no health checks and no circuit breaker (the model
                                                     has neither)

The model refuses a scenario that uses something it does not implement (other error classes, quotas,
timeouts, a traffic profile, several traffic classes, a non-zero tpot, a retry back-off, ...), rather than
silently simulating something else.

Output: latency of successful requests (mean, p50, p95, p99), successes and failures, failed attempts,
retries, each endpoint's share of first attempts, and speed (requests and SimPy events per second of wall
time spent in `env.run()`). `--json` adds one line `JSON {...}` for scripts.

Usage (needs `pip install -r scripts/simpy/requirements.txt`):
    python scripts/simpy/router_model.py [--scenario scenarios/peer-simpy-router.toml] [--rate 10]
        [--requests 200000] [--seed 1] [--json]
"""
import argparse
import json
import math
import pathlib
import random
import re
import sys
import time
import tomllib

import simpy

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_SCENARIO = ROOT / "scenarios" / "peer-simpy-router.toml"

_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class Unsupported(ValueError):
    """The scenario uses a feature this model does not implement."""


def seconds(value, where):
    """A scenario duration (`"250ms"`, `"1.5s"`, `"2h30m"` or a number of seconds) in seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|ms|s|m|h|d)", value)
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s+", "", value):
        raise ValueError(f"{where}: not a duration: {value!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _only(table, allowed, where):
    extra = sorted(set(table) - set(allowed))
    if extra:
        raise Unsupported(f"{where}: the SimPy model does not implement {', '.join(extra)}")


def _constant(dist, where):
    if not isinstance(dist, dict) or dist.get("dist") != "constant":
        raise Unsupported(f"{where}: the SimPy model needs a constant here")
    return dist["value"]


def load_scenario(path, policy_name=None):
    """Reads the parameters of the model from a routesim scenario, refusing what the model cannot do."""
    with open(path, "rb") as f:
        sc = tomllib.load(f)
    _only(sc, {"name", "description", "seed", "requests", "replications", "traffic", "endpoints", "health",
               "policies"}, "scenario")

    traffic = sc.get("traffic", {})
    _only(traffic, {"rate", "classes"}, "[traffic]")
    classes = traffic.get("classes", [])
    if len(classes) > 1:
        raise Unsupported("[traffic]: the SimPy model has a single request class")
    output_tokens = 1
    for c in classes:
        _only(c, {"name", "weight", "input_tokens", "output_tokens"}, f"class {c.get('name')!r}")
        _constant(c.get("input_tokens", {"dist": "constant", "value": 1}), "input_tokens")
        output_tokens = _constant(c.get("output_tokens", {"dist": "constant", "value": 1}), "output_tokens")

    if seconds(sc.get("health", {}).get("interval", "0s"), "[health] interval") != 0:
        raise Unsupported("[health]: the SimPy model has no health checks (set interval = \"0s\")")

    endpoints = []
    for e in sc.get("endpoints", []):
        where = f"endpoint {e.get('id')!r}"
        _only(e, {"id", "provider", "model", "slots", "ttft", "tpot", "errors", "fail_after"}, where)
        ttft = e["ttft"]
        if ttft.get("dist") != "lognormal":
            raise Unsupported(f"{where}: ttft must be lognormal")
        tpot = seconds(_constant(e.get("tpot"), f"{where} tpot"), f"{where} tpot")
        if tpot != 0 and output_tokens != 1:
            raise Unsupported(f"{where}: service must be ttft alone (tpot 0 or one output token)")
        errors = e.get("errors", {})
        _only(errors, {"server"}, f"{where} errors")
        endpoints.append({
            "id": e["id"],
            "slots": int(e.get("slots", 64)),
            "median_s": seconds(ttft["median"], f"{where} ttft median"),
            "sigma": float(ttft["sigma"]),
            "p_fail": float(errors.get("server", 0.0)),
            "fail_after": float(e.get("fail_after", 0.5)),
        })
    if not endpoints:
        raise Unsupported("the scenario has no [[endpoints]]")

    policies = sc.get("policies", [])
    if policy_name is not None:
        policies = [p for p in policies if p.get("name") == policy_name]
    if not policies:
        raise Unsupported(f"no policy {policy_name!r} in the scenario" if policy_name else "no [[policies]]")
    pol = policies[0]
    where = f"policy {pol.get('name')!r}"
    _only(pol, {"name", "kind", "retry", "tracking"}, where)
    if pol.get("kind") != "latency":
        raise Unsupported(f"{where}: only kind = \"latency\" (lowest EMA) is modelled")
    retry = pol.get("retry", {})
    _only(retry, {"max_attempts", "retry_on", "base_delay", "same_endpoint"}, f"{where} retry")
    if seconds(retry.get("base_delay", "0s"), "base_delay") != 0 or retry.get("same_endpoint", False):
        raise Unsupported(f"{where}: retries must go at once to an endpoint not tried yet")
    if set(retry.get("retry_on", ["server"])) - {"server"}:
        raise Unsupported(f"{where}: only server errors occur in the SimPy model")
    tracking = pol.get("tracking", {})
    _only(tracking, {"latency", "circuit"}, f"{where} tracking")
    if tracking.get("circuit", {}).get("enabled", True):
        raise Unsupported(f"{where}: the SimPy model has no circuit breaker (set circuit.enabled = false)")
    latency = tracking.get("latency", {})
    _only(latency, {"alpha", "initial"}, f"{where} tracking.latency")

    return {
        "scenario": sc.get("name", pathlib.Path(path).stem),
        "policy": pol.get("name"),
        "rate": float(traffic["rate"]),
        "requests": int(sc.get("requests", 0)),
        "endpoints": endpoints,
        "max_attempts": int(retry.get("max_attempts", 1)),
        "alpha": float(latency["alpha"]),
        "initial_s": seconds(latency.get("initial", "0s"), "tracking.latency.initial"),
    }


def quantile(sorted_xs, q):
    """The q-quantile of a sorted list, interpolating linearly between order statistics."""
    if not sorted_xs:
        return float("nan")
    pos = q * (len(sorted_xs) - 1)
    i = int(pos)
    j = min(i + 1, len(sorted_xs) - 1)
    return sorted_xs[i] + (sorted_xs[j] - sorted_xs[i]) * (pos - i)


def simulate(model, rate, n, seed):
    """Runs the model for n requests at `rate` per second; returns the figures as a dict."""
    eps = model["endpoints"]
    k_eps = len(eps)
    alpha = model["alpha"]
    keep = 1.0 - alpha
    max_attempts = min(model["max_attempts"], k_eps)

    # One random stream per purpose, so changing one part of the model leaves the others' draws alone.
    streams = random.Random(seed)
    arrivals_rng, service_rng, error_rng, tie_rng = (random.Random(streams.getrandbits(64)) for _ in range(4))
    next_gap = arrivals_rng.expovariate
    draw_lognormal = service_rng.lognormvariate
    uniform = error_rng.random

    env = simpy.Environment()
    slots = [simpy.Resource(env, capacity=e["slots"]) for e in eps]
    mu = [math.log(e["median_s"]) for e in eps]
    sigma = [e["sigma"] for e in eps]
    p_fail = [e["p_fail"] for e in eps]
    hold_on_fail = [e["fail_after"] for e in eps]
    ema = [model["initial_s"]] * k_eps

    ok_latency = []
    failed = 0
    failed_attempts = 0
    retries = 0
    first_choice = [0] * k_eps

    def lowest_ema(tried):
        best = math.inf
        tied = []
        for k in range(k_eps):
            if k in tried:
                continue
            v = ema[k]
            if v < best:
                best = v
                tied = [k]
            elif v == best:
                tied.append(k)
        return tied[0] if len(tied) == 1 else tie_rng.choice(tied)

    def request():
        nonlocal failed, failed_attempts, retries
        arrived = env.now
        tried = []
        for attempt in range(max_attempts):
            k = lowest_ema(tried)
            if attempt == 0:
                first_choice[k] += 1
            else:
                retries += 1
            tried.append(k)
            dispatched = env.now
            with slots[k].request() as slot:
                yield slot
                service = draw_lognormal(mu[k], sigma[k])
                if uniform() < p_fail[k]:
                    yield env.timeout(hold_on_fail[k] * service)
                    failed_attempts += 1
                    continue
                yield env.timeout(service)
            ema[k] = alpha * (env.now - dispatched) + keep * ema[k]
            ok_latency.append(env.now - arrived)
            return
        failed += 1

    def source():
        for _ in range(n):
            yield env.timeout(next_gap(rate))
            env.process(request())

    env.process(source())
    start = time.perf_counter()
    env.run()
    wall = time.perf_counter() - start
    events = next(env._eid)  # SimPy's event counter: every event it scheduled

    ok_latency.sort()
    done = len(ok_latency) + failed
    return {
        "scenario": model["scenario"],
        "policy": model["policy"],
        "rate": rate,
        "requests": n,
        "seed": seed,
        "completed": done,
        "succeeded": len(ok_latency),
        "failed": failed,
        "success_rate": len(ok_latency) / max(done, 1),
        "failed_attempts": failed_attempts,
        "retries": retries,
        "latency_mean_s": math.fsum(ok_latency) / max(len(ok_latency), 1),
        "latency_p50_s": quantile(ok_latency, 0.50),
        "latency_p95_s": quantile(ok_latency, 0.95),
        "latency_p99_s": quantile(ok_latency, 0.99),
        "first_attempt_share": {e["id"]: c / max(n, 1) for e, c in zip(eps, first_choice)},
        "final_ema_s": {e["id"]: v for e, v in zip(eps, ema)},
        "simulated_s": env.now,
        "wall_s": wall,
        "events": events,
        "requests_per_s": done / wall if wall > 0 else float("nan"),
        "events_per_s": events / wall if wall > 0 else float("nan"),
        "simpy": simpy.__version__,
        "python": sys.version.split()[0],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--scenario", default=str(DEFAULT_SCENARIO), help="routesim scenario (TOML) to model")
    ap.add_argument("--policy", help="policy of the scenario to model (default: its first)")
    ap.add_argument("--rate", type=float, help="arrival rate, requests/s (default: the scenario's)")
    ap.add_argument("--requests", type=int, default=200_000, help="requests to simulate (default 200000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="also print one line `JSON {...}`")
    a = ap.parse_args()
    try:
        model = load_scenario(a.scenario, a.policy)
    except (Unsupported, ValueError, KeyError) as e:
        sys.exit(f"router_model: {a.scenario}: {e}")
    rate = a.rate if a.rate is not None else model["rate"]
    r = simulate(model, rate, a.requests, a.seed)

    print(f"SimPy {r['simpy']} (Python {r['python']}): {r['scenario']}, policy {r['policy']}, "
          f"rate {rate:g}/s, {a.requests} requests, seed {a.seed}")
    print(f"latency of successes  mean {r['latency_mean_s']:.4f} s  p50 {r['latency_p50_s']:.4f}  "
          f"p95 {r['latency_p95_s']:.4f}  p99 {r['latency_p99_s']:.4f}")
    print(f"succeeded {r['succeeded']}  failed {r['failed']} ({100 * (1 - r['success_rate']):.4f}%)  "
          f"failed attempts {r['failed_attempts']}  retries {r['retries']}")
    print("first attempts: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in r["first_attempt_share"].items()))
    print(f"wall {r['wall_s']:.3f} s in env.run(): {r['requests_per_s']:,.0f} requests/s, "
          f"{r['events_per_s']:,.0f} SimPy events/s ({r['events'] / max(r['completed'], 1):.2f} per request)")
    if a.json:
        print("JSON " + json.dumps(r))


if __name__ == "__main__":
    main()
