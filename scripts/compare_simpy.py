#!/usr/bin/env python3
"""routesim against the project's SimPy reference model, side by side in one run.

Both simulators run the router scenario `scenarios/peer-simpy-router.toml` (4 endpoints, lognormal service,
server errors, one retry on another endpoint, lowest-EMA routing with alpha 0.1) at the same arrival rate
and the same number of requests. The SimPy side is `scripts/simpy/router_model.py`, which reads its
parameters from the same scenario file. For each rate the script prints:

* behaviour: mean, p50 and p95 latency of successful requests, successes and failure rate (median over the
  seeds), from `routesim run` and from the SimPy model, and how far apart they are;
* speed: simulated requests per second of wall time, `routesim bench` (one thread, median of 3 runs) against
  the SimPy model's `env.run()` (median over the seeds), and their ratio;
* ceilings (skipped with `--no-ceilings`): the speed of the same model as a minimal event loop with its own
  argmin, and of that loop routing through router-core as the gateway does (`sim/examples/minimal_peer_loop.rs`,
  median of 3 runs each), in multiples of the SimPy model's speed: what any simulator of this model can reach
  on the machine, without and with the production router.

One command from a fresh clone (the repository root; needs Python 3.11+ and cargo):

    python3 scripts/compare_simpy.py [--rate 5 10] [--requests 200000] [--seeds 1 2 3]

The first run creates `.venv-simpy/` and installs `scripts/simpy/requirements.txt` into it (pinned SimPy),
and builds routesim and the minimal loop in release mode (`cargo build --release -p routesim -p sim --bin
routesim --example minimal_peer_loop`, which honours CARGO_TARGET_DIR); later runs reuse both. `--python PATH` uses an
interpreter that already has SimPy instead.
routesim has no option for the arrival rate, so for each rate the script writes a copy of the scenario with
`[traffic] rate` changed into a temporary directory.
"""
import argparse
import csv
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "peer-simpy-router.toml"
MODEL = ROOT / "scripts" / "simpy" / "router_model.py"
REQUIREMENTS = ROOT / "scripts" / "simpy" / "requirements.txt"
VENV = ROOT / ".venv-simpy"


def say(msg):
    print(msg, file=sys.stderr, flush=True)


def simpy_python(explicit):
    """The interpreter that runs the SimPy model: `explicit`, or .venv-simpy/ (created and filled on first use)."""
    if explicit:
        return explicit
    py = VENV / "bin" / "python"
    stamp = VENV / ".requirements-installed"
    if not py.exists():
        say(f"creating {VENV.relative_to(ROOT)}/ for the SimPy model")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if not stamp.exists() or stamp.read_text() != REQUIREMENTS.read_text():
        say(f"installing {REQUIREMENTS.relative_to(ROOT)} into {VENV.relative_to(ROOT)}/")
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
                        str(REQUIREMENTS)], check=True)
        stamp.write_text(REQUIREMENTS.read_text())
    return str(py)


def cargo_routesim():
    return ["cargo", "run", "--quiet", "--release", "-p", "routesim", "--bin", "routesim", "--"]


def build_routesim():
    say("cargo build --release -p routesim -p sim --bin routesim --example minimal_peer_loop (the first build takes "
        "several minutes)")
    subprocess.run(["cargo", "build", "--release", "-p", "routesim", "-p", "sim", "--bin", "routesim", "--example",
                    "minimal_peer_loop"], cwd=ROOT, check=True)


def ceiling(rate, n, router):
    """Requests/s of `sim/examples/minimal_peer_loop.rs` at `rate`: the model as a minimal event loop, with its
    own argmin or (`router`) routing through router-core as the gateway does; the median of 3 runs."""
    args = ["cargo", "run", "--quiet", "--release", "-p", "sim", "--example", "minimal_peer_loop", "--",
            repr(rate), str(n)] + (["router"] if router else [])
    speeds = []
    for _ in range(3):
        done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
        found = re.search(r"; (\d+) requests/s", done.stdout)
        if done.returncode != 0 or not found:
            sys.exit(f"minimal_peer_loop failed:\n{done.stdout}{done.stderr}")
        speeds.append(int(found.group(1)))
    return statistics.median(speeds)


def routesim(args):
    done = subprocess.run(cargo_routesim() + args, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"routesim {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def scenario_at(rate, tmp):
    """A copy of the scenario whose `[traffic] rate` is `rate`."""
    lines, section, changed = [], None, False
    for line in SCENARIO.read_text().splitlines(keepends=True):
        header = re.match(r"\s*\[+([^\]]+)\]+", line)
        if header:
            section = header.group(1).strip()
        elif section == "traffic" and re.match(r"\s*rate\s*=", line):
            line, changed = f"rate = {rate!r}\n", True
        lines.append(line)
    if not changed:
        sys.exit(f"{SCENARIO}: no `rate =` line in [traffic]")
    path = pathlib.Path(tmp) / f"{SCENARIO.stem}-rate-{rate:g}.toml"
    path.write_text("".join(lines))
    return path


def routesim_behaviour(path, n, seed, tmp):
    out = pathlib.Path(tmp) / f"run-{path.stem}-seed-{seed}"
    routesim(["run", str(path), "--requests", str(n), "--seed", str(seed), "--replications", "1",
              "--out", str(out)])
    with open(out / "summary.csv") as f:
        row = next(csv.DictReader(f))
    requests = float(row["requests"])
    success = float(row["success_rate"])
    return {
        "latency_mean_s": float(row["latency_mean_s"]),
        "latency_p50_s": float(row["latency_p50_s"]),
        "latency_p95_s": float(row["latency_p95_s"]),
        "succeeded": round(requests * success),
        "failure_rate": 1.0 - success,
    }


def routesim_speed(path, n, seed):
    out = routesim(["bench", str(path), "--requests", str(n), "--seed", str(seed), "--threads", "1", "--json"])
    return json.loads(out)["requests_per_s"]


def simpy_run(python, rate, n, seed):
    done = subprocess.run([python, str(MODEL), "--scenario", str(SCENARIO), "--rate", repr(rate),
                           "--requests", str(n), "--seed", str(seed), "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the SimPy model failed:\n{done.stderr}")
    line = next(l for l in done.stdout.splitlines() if l.startswith("JSON "))
    r = json.loads(line[len("JSON "):])
    r["failure_rate"] = 1.0 - r["success_rate"]
    return r


def median(rows, key):
    return statistics.median(r[key] for r in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", "--lam", type=float, nargs="+", default=[5.0, 10.0],
                    help="arrival rates in requests/s, each run by both simulators (default 5 10)")
    ap.add_argument("--requests", "--n", type=int, default=200_000,
                    help="requests per run, for both simulators (default 200000)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--bench-requests", type=int,
                    help="requests per `routesim bench` run (default: --requests)")
    ap.add_argument("--python", help="Python with SimPy installed, instead of creating .venv-simpy/")
    ap.add_argument("--no-ceilings", dest="ceilings", action="store_false",
                    help="skip the speed ceilings (sim/examples/minimal_peer_loop.rs, with and without router-core)")
    a = ap.parse_args()
    bench_n = a.bench_requests or a.requests

    python = simpy_python(a.python)
    build_routesim()
    version = subprocess.run([python, "-c", "import simpy, sys; print(simpy.__version__, sys.version.split()[0])"],
                             capture_output=True, text=True, check=True).stdout.split()
    print(f"{SCENARIO.relative_to(ROOT)}: {a.requests} requests per run, seeds {a.seeds} (medians over seeds); "
          f"SimPy {version[0]} on Python {version[1]}; routesim bench: {bench_n} requests, 1 thread")
    print(f"{'rate':>5} {'sim':>9} {'mean s':>8} {'p50 s':>8} {'p95 s':>8} {'succeeded':>10} {'fail %':>8} "
          f"{'requests/s':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for rate in a.rate:
            path = scenario_at(rate, tmp)
            rs = [routesim_behaviour(path, a.requests, s, tmp) for s in a.seeds]
            rs_speed = routesim_speed(path, bench_n, a.seeds[0])
            ps = [simpy_run(python, rate, a.requests, s) for s in a.seeds]
            ps_speed = median(ps, "requests_per_s")
            for name, rows, speed in (("routesim", rs, rs_speed), ("simpy", ps, ps_speed)):
                print(f"{rate:>5g} {name:>9} {median(rows, 'latency_mean_s'):>8.3f} "
                      f"{median(rows, 'latency_p50_s'):>8.3f} {median(rows, 'latency_p95_s'):>8.3f} "
                      f"{median(rows, 'succeeded'):>10.0f} {100 * median(rows, 'failure_rate'):>8.4f} "
                      f"{speed:>12,.0f}")
            ratio = [median(rs, k) / median(ps, k) for k in ("latency_mean_s", "latency_p50_s", "latency_p95_s")]
            print(f"{'':>5} {'ratio':>9} {ratio[0]:>8.3f} {ratio[1]:>8.3f} {ratio[2]:>8.3f} {'':>10} {'':>8} "
                  f"{rs_speed / ps_speed:>11.1f}x")
            spread = max(abs(x - 1) for x in ratio)
            print(f"{'':>5} {'':>9} behaviour: mean, p50 and p95 within {100 * spread:.1f}% of each other; "
                  f"routesim is {rs_speed / ps_speed:.1f}x faster than SimPy per core")
            if a.ceilings:
                loop_n = max(bench_n, 1_000_000)
                bare, routed = ceiling(rate, loop_n, False), ceiling(rate, loop_n, True)
                print(f"{'':>5} {'':>9} ceilings ({loop_n} requests, median of 3): the model as a minimal loop "
                      f"{bare:,.0f} requests/s ({bare / ps_speed:.0f}x SimPy); the same loop routing through "
                      f"router-core {routed:,.0f} ({routed / ps_speed:.0f}x); 100x SimPy is {100 * ps_speed:,.0f}")


if __name__ == "__main__":
    main()
