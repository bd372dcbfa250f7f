#!/usr/bin/env python3
"""routesim against the SimPy peer model, side by side in one run.

Runs the same model (4 providers, lognormal service, failures, one retry on another provider, lowest-EMA
routing with alpha 0.1) in both simulators at the same arrival rate and request count, and prints:

* speed: simulated requests per second of wall time (routesim `bench`, one thread, vs SimPy's env.run());
* behaviour: mean and p95 latency of successful requests, failure rate, first-attempt shares.

Usage (from the repository root):
    python3 scripts/compare_simpy.py [--lam 5 10] [--n 200000] [--seeds 1 2 3]

Needs the SimPy peer script (../shared/peers/simpy_router.py, or --peer PATH) and the `simpy` package
(`pip install simpy==4.1.2`); builds routesim in release mode with cargo.
"""
import argparse
import csv
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "peer-simpy-router.toml"


def routesim(args):
    cmd = ["cargo", "run", "--quiet", "--release", "-p", "sim", "--bin", "routesim", "--"] + args
    return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout


def scenario_at(lam, tmp):
    text = SCENARIO.read_text().replace("rate = 5.0", f"rate = {lam}")
    path = pathlib.Path(tmp) / f"peer-{lam}.toml"
    path.write_text(text)
    return path


def routesim_speed(path, n, seed):
    out = routesim(["bench", str(path), "--requests", str(n), "--seed", str(seed), "--json"])
    return json.loads(out)["requests_per_s"]


def routesim_behaviour(path, n, seeds, tmp):
    rows = []
    for seed in seeds:
        out_dir = pathlib.Path(tmp) / f"run-{path.stem}-{seed}"
        routesim(["run", str(path), "--requests", str(n), "--seed", str(seed), "--out", str(out_dir)])
        with open(out_dir / "summary.csv") as f:
            row = next(csv.DictReader(f))
        rows.append((float(row["latency_mean_s"]), float(row["latency_p95_s"]), 1 - float(row["success_rate"])))
    return rows


def simpy_run(peer, lam, n, seed):
    out = subprocess.run([sys.executable, str(peer), "--lam", str(lam), "--n", str(n), "--seed", str(seed), "--json"],
                         check=True, capture_output=True, text=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("JSON "))
    return json.loads(line[len("JSON "):])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lam", type=float, nargs="+", default=[5.0, 10.0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--peer", default=str(ROOT.parent / "shared" / "peers" / "simpy_router.py"))
    a = ap.parse_args()
    peer = pathlib.Path(a.peer)
    have_peer = peer.exists()
    if not have_peer:
        print(f"note: {peer} not found; showing routesim only", file=sys.stderr)
    print(f"{'lam':>5} {'sim':>9} {'mean s':>8} {'p95 s':>8} {'fail %':>8} {'requests/s':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for lam in a.lam:
            path = scenario_at(lam, tmp)
            rs = routesim_behaviour(path, a.n, a.seeds, tmp)
            speed = routesim_speed(path, a.n * 5, a.seeds[0])
            mean = statistics.median(r[0] for r in rs)
            p95 = statistics.median(r[1] for r in rs)
            fail = statistics.median(r[2] for r in rs)
            print(f"{lam:>5} {'routesim':>9} {mean:>8.3f} {p95:>8.3f} {fail * 100:>8.4f} {speed:>12,.0f}")
            if have_peer:
                ps = [simpy_run(peer, lam, a.n, s) for s in a.seeds]
                mean_p = statistics.median(p["mean_latency_ok"] for p in ps)
                p95_p = statistics.median(p["p95_ok"] for p in ps)
                fail_p = statistics.median(p["failure_rate"] for p in ps)
                speed_p = statistics.median(p["requests_per_s"] for p in ps)
                print(f"{lam:>5} {'simpy':>9} {mean_p:>8.3f} {p95_p:>8.3f} {fail_p * 100:>8.4f} {speed_p:>12,.0f}")
                print(f"{'':>5} {'ratio':>9} {mean / mean_p:>8.3f} {p95 / p95_p:>8.3f} {'':>8} {speed / speed_p:>11.1f}x")


if __name__ == "__main__":
    main()
