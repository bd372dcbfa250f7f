#!/usr/bin/env python3
"""Issue 32's speed targets, measured side by side in one run, as ratios that travel between machines.

For each of `--rounds` rounds (default 9; the medians are printed), in this order, one after the other:

* the peer model (`scenarios/peer-simpy-router.toml`) at 5 and 10 requests/s: `routesim bench --threads 1
  --repeat 1` on `--requests` requests (default 1,000,000), and its ceiling, the same model as a minimal event
  loop routing through router-core (`sim/examples/minimal_peer_loop.rs ... router`); target: routesim >= 0.8
  of the ceiling. Each round runs the ceiling and each build one right after the other (the ceiling first in
  even rounds, last in odd ones) and takes their ratio; the median of the rounds' ratios is printed with a
  bootstrap 95% interval. A ratio of runs a second apart cancels the machine's drift, which moves every
  figure by 20-40% within minutes on a shared virtual machine (a ratio of medians taken over minutes does
  not: it moved by 0.1 between two runs of 3 rounds);
* the quickstart (`scenarios/quickstart.toml`, its six policies, one replication, aggregates only): `routesim
  bench --threads 1 --repeat 1 --requests N` (its total requests/s), and its ceiling
  (`sim/examples/minimal_quickstart_loop.rs`: the quickstart's traffic, endpoints and policies in a minimal
  loop through router-core); target: >= 0.8 of the ceiling, measured as the peer's (a ratio per round);
* issue 30's benchmark, after the rounds: `--quality-pairs` short pairs (default 100 of `--quality-requests`
  = 50,000 requests per policy), the quickstart (whose endpoints state accuracies) and a copy without its
  `quality =` lines run one right after the other, in alternating order, each build's pair in turn; target:
  quality on costs at most 10% more per simulated request (the median of the pairs, with a bootstrap 95%
  interval). Many short pairs, not a few long ones: on a virtual machine whose speed drifts by 20-40% within
  seconds, a pair of long runs straddles the drift, while the median of a hundred short ones pins the cost
  to about two points;
* the replay of a 1,000,000-row `gen-log` CSV (`routesim replay scenarios/quickstart.toml --log LOG
  --policies hybrid --replications 1`, end to end), against `wc -l` of the same file and a plain Rust read
  and parse of it (`sim/examples/log_read_floor.rs`, `plain` and `csv`); target: <= 1 s.

Every binary comes from one release build (`cargo build --release -p routesim --no-default-features -p sim
--bin routesim --example minimal_peer_loop --example minimal_quickstart_loop --example log_read_floor`,
honouring CARGO_TARGET_DIR), or from `--bin-dir DIR` (a `release` directory holding `routesim` and
`examples/`). `--against DIR` adds another build's `routesim` (e.g. a copy of the previous commit's) to every
round, run right after this one's, so that the two are compared under the same load.

    python3 scripts/speed_targets.py [--requests 1000000] [--rounds 9] [--against OLD_RELEASE_DIR]
"""
import argparse
import json
import os
import pathlib
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
PEER = ROOT / "scenarios" / "peer-simpy-router.toml"
QUICKSTART = ROOT / "scenarios" / "quickstart.toml"
EXAMPLES = ["minimal_peer_loop", "minimal_quickstart_loop", "log_read_floor"]


def say(msg):
    print(msg, file=sys.stderr, flush=True)


def run(args, **kw):
    done = subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def timed(args):
    start = time.perf_counter()
    run(args)
    return time.perf_counter() - start


def peer_at(rate, tmp):
    """A copy of the peer scenario whose `[traffic] rate` is `rate`."""
    text = PEER.read_text()
    new, n = re.subn(r"(?m)^rate = .*$", f"rate = {rate!r}", text, count=1)
    if n != 1:
        sys.exit(f"{PEER}: no `rate =` line")
    path = pathlib.Path(tmp) / f"peer-rate-{rate:g}.toml"
    path.write_text(new)
    return path


def without_quality(tmp):
    """A copy of the quickstart without its endpoints' `quality = ...` lines (issue 30's benchmark: quality on
    costs at most 10% more per simulated request)."""
    text = QUICKSTART.read_text()
    new, n = re.subn(r"(?m)^quality = .*\n", "", text)
    if n == 0:
        sys.exit(f"{QUICKSTART}: no `quality =` line")
    path = pathlib.Path(tmp) / "quickstart-without-quality.toml"
    path.write_text(new)
    return path


def bench(routesim, scenario, n):
    out = run([routesim, "bench", scenario, "--requests", n, "--threads", 1, "--repeat", 1, "--json"])
    return json.loads(out)["requests_per_s"]


def bootstrap_median_interval(values, resamples=2000):
    """A 95% percentile-bootstrap interval of the median of `values` (seeded: the same values give the same
    interval)."""
    rng = random.Random(1)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    return medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]


def per_s(stdout):
    found = re.search(r"(\d+) requests/s", stdout)
    if not found:
        sys.exit(f"no requests/s in:\n{stdout}")
    return int(found.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1_000_000, help="requests per bench run and per loop")
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the replayed log")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--bin-dir", help="a release directory with routesim and examples/ (default: build one)")
    ap.add_argument("--against", help="another build's release directory, whose routesim runs in every round too")
    ap.add_argument("--quality-pairs", type=int, default=100, help="pairs of issue 30's benchmark")
    ap.add_argument("--quality-requests", type=int, default=50_000, help="requests per policy in each of them")
    ap.add_argument("--skip", nargs="*", default=[], choices=["peer", "quickstart", "quality", "replay"])
    a = ap.parse_args()
    if a.bin_dir:
        release = pathlib.Path(a.bin_dir)
    else:
        say("building routesim and the examples in release mode (the first build takes several minutes)")
        cmd = ["cargo", "build", "--release", "-p", "routesim", "--no-default-features", "-p", "sim", "--bin",
               "routesim"]
        for e in EXAMPLES:
            cmd += ["--example", e]
        subprocess.run(cmd, cwd=ROOT, check=True)
        release = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
    builds = [("routesim", release / "routesim")]
    if a.against:
        builds.append(("against", pathlib.Path(a.against) / "routesim"))
    example = lambda name: release / "examples" / name
    n = a.requests
    figures = {}

    def note(key, value):
        figures.setdefault(key, []).append(value)

    ratios = {}

    def paired(what, round_no, ceiling, measure):
        """One round of `what`: the ceiling and each build one right after the other (the ceiling first in even
        rounds, last in odd ones), noting each figure and each build's ratio to this round's ceiling."""
        if round_no % 2 == 0:
            top = ceiling()
            speeds = [(name, measure(binary)) for name, binary in builds]
        else:
            speeds = [(name, measure(binary)) for name, binary in builds]
            top = ceiling()
        note(f"{what} ceiling", top)
        for name, speed in speeds:
            note(f"{what} {name}", speed)
            ratios.setdefault(f"{what} {name}", []).append(speed / top)

    with tempfile.TemporaryDirectory() as tmp:
        peers = {rate: peer_at(rate, tmp) for rate in (5.0, 10.0)}
        plain = without_quality(tmp)
        log = pathlib.Path(tmp) / "log.csv"
        if "replay" not in a.skip:
            run([release / "routesim", "gen-log", QUICKSTART, "--rows", a.rows, "--out", log])
        for r in range(a.rounds):
            say(f"round {r + 1} of {a.rounds}")
            if "peer" not in a.skip:
                for rate, path in peers.items():
                    ceiling = lambda: per_s(run([example("minimal_peer_loop"), rate, n, "router"]))
                    paired(f"peer {rate:g}/s", r, ceiling, lambda binary: bench(binary, path, n))
            if "quickstart" not in a.skip:
                ceiling = lambda: per_s(run([example("minimal_quickstart_loop"), n]))
                paired("quickstart", r, ceiling, lambda binary: bench(binary, QUICKSTART, n))
            if "replay" not in a.skip:
                for name, binary in builds:
                    out = pathlib.Path(tmp) / f"out-{name}"
                    note(f"replay {name} s", timed([binary, "replay", QUICKSTART, "--log", log, "--policies",
                                                    "hybrid", "--replications", 1, "--out", out]))
                note("replay wc -l s", timed(["wc", "-l", log]))
                note("replay plain read+parse s", timed([example("log_read_floor"), log, "plain"]))
                note("replay csv read+parse s", timed([example("log_read_floor"), log, "csv"]))
        if "quality" not in a.skip:
            say(f"issue 30's benchmark: {a.quality_pairs} pairs of {a.quality_requests} requests per policy")
            for i in range(a.quality_pairs):
                # Each build's own pair, one right after the other, in alternating order.
                for name, binary in builds:
                    order = [("on", QUICKSTART), ("off", plain)]
                    for side, scenario in order if i % 2 == 0 else order[::-1]:
                        note(f"quality {side} {name}", bench(binary, scenario, a.quality_requests))
    quality_costs = {}
    for name, _ in builds:
        if f"quality on {name}" in figures:
            pairs = zip(figures.pop(f"quality off {name}"), figures.pop(f"quality on {name}"))
            quality_costs[name] = [off / on - 1 for off, on in pairs]

    med = {k: statistics.median(v) for k, v in figures.items()}
    print(f"medians of {a.rounds} rounds; {n} requests per bench and loop, {a.rows}-row log")
    for k, v in med.items():
        unit = "s" if k.endswith(" s") else "requests/s"
        print(f"  {k:<34} {v:>14,.3f} {unit}" if unit == "s" else f"  {k:<34} {v:>14,.0f} {unit}")

    def ratio_line(key):
        values = sorted(ratios[key])
        low, high = bootstrap_median_interval(values)
        return (f"{statistics.median(values):.2f} (median of {len(values)} rounds' ratios, 95% interval "
                f"{low:.2f} to {high:.2f}, rounds {values[0]:.2f} to {values[-1]:.2f}; target 0.8)")

    for name, _ in builds:
        if "peer" not in a.skip:
            for rate in (5, 10):
                print(f"{name}: peer at {rate}/s, routesim / ceiling through router-core = "
                      f"{ratio_line(f'peer {rate}/s {name}')}")
        if "quickstart" not in a.skip:
            print(f"{name}: quickstart, routesim / ceiling = {ratio_line(f'quickstart {name}')}")
        if name in quality_costs:
            costs = sorted(quality_costs[name])
            low, high = bootstrap_median_interval(costs)
            print(f"{name}: quality on costs {statistics.median(costs):+.1%} per simulated request "
                  f"(median of {len(costs)} pairs, 95% interval {low:+.1%} to {high:+.1%}, pairs "
                  f"{costs[0]:+.1%} to {costs[-1]:+.1%}; target at most +10%)")
        if "replay" not in a.skip:
            t = med[f"replay {name} s"]
            print(f"{name}: replay {t:.2f} s (target 1 s) = {t / med['replay wc -l s']:.0f}x wc -l, "
                  f"{t / med['replay plain read+parse s']:.1f}x a plain read+parse, "
                  f"{t / med['replay csv read+parse s']:.1f}x a csv-crate read+parse")


if __name__ == "__main__":
    main()
