#!/usr/bin/env python3
"""Writes notebooks/*.ipynb, outputs stripped, from the cell sources below.

The notebooks are committed without outputs. Edit them here and run `python3 scripts/make-notebooks.py`
(or edit them in Jupyter, then clear every output before committing: scripts/test-notebooks.sh fails on a
notebook with outputs).
"""

import json
import pathlib

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"

PARAMS_DOC = (
    "# Parameters (papermill-style cell, tagged `parameters`). RESULTS_DIR: a results directory to read;\n"
    "# None reads $ROUTESIM_RESULTS, else runs the small command below first into results/notebook-{name}/.\n"
)


def md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text.strip("\n")}


def code(text, tags=None):
    meta = {"tags": tags} if tags else {}
    return {"cell_type": "code", "execution_count": None, "metadata": meta, "outputs": [], "source": text.strip("\n")}


def params(name, default="None"):
    return code(PARAMS_DOC.format(name=name) + f"RESULTS_DIR = {default}", tags=["parameters"])


SETUP = """
import matplotlib.pyplot as plt
import polars as pl
import routesim_nb as nb

pl.Config.set_tbl_rows(40)
pl.Config.set_tbl_cols(20)
"""

# ----- 1. compare policies -----------------------------------------------------------------------------------
COMPARE = [
    md("""
# 1. Compare policies

Reads the files of a `routesim run`: the summary with 95% intervals, the paired differences against the
baseline as a forest plot, the latency CDFs, and cost against p95 latency with the Pareto frontier.

Left alone it runs the quickstart scenario, shortened to 20,000 requests per run and 5 replications (a few
seconds); point `RESULTS_DIR` at a full run for the real figures.
"""),
    params("compare"),
    code(SETUP + """
results = nb.results_dir(RESULTS_DIR, "compare", [
    ["run", "scenarios/quickstart.toml", "--requests", "20000", "--replications", "5", "--out", "{out}"],
])
summary = pl.read_parquet(results / "summary.parquet")
paired = pl.read_parquet(results / "paired.parquet")
cdf = pl.read_parquet(results / "latency_cdf.parquet")
policies = summary["policy"].to_list()
colour = {p: nb.COLOURS[i % len(nb.COLOURS)] for i, p in enumerate(policies)}
print(results)
"""),
    md("## The summary\n\nMean over replications ± the 95% confidence half-width of the mean."),
    code("""
headline = ["success_rate", "latency_p50_s", "latency_p95_s", "latency_p99_s", "cost_per_1k_usd", "errors_429", "fallbacks"]
nb.with_interval(summary, headline).with_columns(summary["on_pareto_frontier"])
"""),
    md("""
## Paired differences (forest plot)

Each policy minus the baseline, replication by replication (every policy sees the same traffic and provider
luck, so the differences are much tighter than the intervals above). A bar that does not cross zero (filled
dot) is a difference the replications support; a hollow dot's interval includes zero.
"""),
    code("""
metrics = ["latency_p95_s", "cost_per_1k_usd", "success_rate"]
baseline = paired["baseline"][0] if paired.height else policies[0]
fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 0.5 + 0.45 * len(policies)), sharey=True)
for ax, metric in zip(axes, metrics):
    rows = paired.filter(pl.col("metric") == metric)
    for y, row in enumerate(rows.iter_rows(named=True)):
        ax.errorbar(row["mean_diff"], y, xerr=row["ci95"] or 0.0, fmt="o", capsize=4, color=colour[row["policy"]],
                    mfc="white" if not row["significant"] else colour[row["policy"]])
    ax.axvline(0.0, color="grey", lw=1, ls="--")
    ax.set_yticks(range(rows.height), rows["policy"].to_list())
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(f"{metric}\\n(policy - {baseline})")
fig.tight_layout()
"""),
    md("## Latency CDFs\n\nEnd-to-end latency of successful requests, pooled over replications."),
    code("""
fig, ax = plt.subplots(figsize=(8, 4.5))
for p in policies:
    rows = cdf.filter(pl.col("policy") == p)
    ax.step(rows["latency_s"], rows["cum_prob"], where="post", label=p, color=colour[p])
ax.set_xscale("log")
ax.set_xlabel("latency (s, log scale)")
ax.set_ylabel("fraction of requests")
ax.axhline(0.95, color="grey", lw=0.8, ls=":")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
"""),
    md("## Cost against p95 latency\n\nBoth minimised; the line joins the policies no other beats on both."),
    code("""
fig, ax = plt.subplots(figsize=(7, 5))
for row in summary.iter_rows(named=True):
    ax.errorbar(row["latency_p95_s"], row["cost_per_1k_usd"], xerr=row["latency_p95_s_ci95"] or 0.0,
                yerr=row["cost_per_1k_usd_ci95"] or 0.0, fmt="o", capsize=3, color=colour[row["policy"]],
                label=row["policy"])
front = summary.filter(pl.col("on_pareto_frontier")).sort("latency_p95_s")
ax.plot(front["latency_p95_s"], front["cost_per_1k_usd"], color="black", lw=1, ls="--", label="Pareto frontier")
ax.set_xlabel("p95 latency (s)")
ax.set_ylabel("cost per 1k requests (USD)")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
"""),
]

# ----- 2. a day of traffic -----------------------------------------------------------------------------------
DAY = [
    md("""
# 2. A day of traffic

Reads the time series of a `routesim run` over a day: each endpoint's share of the traffic, p95 latency and
cost over time, with the scenario's faults (the outage) shaded, so the failover shows as traffic leaving the
failed endpoint and coming back.

Left alone it runs the quickstart's 24-hour day (office-hours profile, a 30-minute outage of `claude-sonnet`
at 11:00) for three policies, at a twentieth of its rate and two replications so that it takes seconds: the
shape of the day and the failover are the same, the queues are shorter. Point `RESULTS_DIR` at a full run of
`scenarios/quickstart.toml` for the real figures.
"""),
    params("day"),
    code(SETUP + """
import re

DAY_SCENARIO = nb.REPO / "results" / "notebook-day.toml"

def write_small_day():
    # The quickstart at a twentieth of its rate: the same day, the same outage, fewer requests.
    text = (nb.REPO / "scenarios/quickstart.toml").read_text()
    text = re.sub(r"^rate = ([0-9.]+)", lambda m: f"rate = {float(m.group(1)) / 20}", text, count=1, flags=re.M)
    DAY_SCENARIO.write_text(text)

results = nb.results_dir(RESULTS_DIR, "day", [
    ["run", str(DAY_SCENARIO), "--policies", "round-robin,latency,hybrid", "--replications", "2", "--out", "{out}"],
], before=write_small_day)
ts = pl.read_parquet(results / "timeseries.parquet")
shares = pl.read_parquet(results / "shares.parquet")
scenario = nb.scenario(results)
policies = ts["policy"].unique(maintain_order=True).to_list()
faults = [(f["endpoint"], f["kind"], nb.seconds(f["start"]), nb.seconds(f["start"]) + nb.seconds(f["duration"]))
          for f in scenario.get("faults", [])]
print(results, faults)

def shade(ax):
    for endpoint, kind, start, end in faults:
        ax.axvspan(start / 3600, end / 3600, color="red", alpha=0.12)
        ax.text(start / 3600, 1.0, f" {kind}: {endpoint}", transform=ax.get_xaxis_transform(), fontsize=7,
                va="top", color="darkred")
"""),
    md("## Traffic shares per endpoint\n\nShare of attempts per interval, mean over replications; the outage shaded."),
    code("""
mean_shares = (shares.group_by("policy", "t_start_s", "endpoint", maintain_order=True).agg(pl.col("share").mean())
               .sort("t_start_s"))
endpoints = mean_shares["endpoint"].unique(maintain_order=True).to_list()
fig, axes = plt.subplots(len(policies), 1, figsize=(10, 2.6 * len(policies)), sharex=True, squeeze=False)
for ax, p in zip(axes[:, 0], policies):
    wide = mean_shares.filter(pl.col("policy") == p).pivot("endpoint", index="t_start_s", values="share").sort("t_start_s")
    ax.stackplot(wide["t_start_s"] / 3600, *[wide[e].fill_null(0.0) for e in endpoints], labels=endpoints, alpha=0.85)
    shade(ax)
    ax.set_ylabel(p)
    ax.set_ylim(0, 1)
axes[0, 0].legend(fontsize=7, ncol=len(endpoints), loc="lower left", bbox_to_anchor=(0, 1.08))
axes[-1, 0].set_xlabel("hour of the day")
fig.tight_layout()
"""),
    md("## Latency, errors and cost over time\n\nMean over replications and over 10-minute buckets of intervals (`BUCKET_S`); the drain after the last arrival left out."),
    code("""
BUCKET_S = 600
series = (ts.filter(~pl.col("drain")).with_columns((pl.col("t_start_s") // BUCKET_S * BUCKET_S).alias("t_start_s"))
          .group_by("policy", "t_start_s", maintain_order=True)
          .agg(pl.col("p95_s").mean(), pl.col("cost_usd").sum() / pl.col("replication").n_unique(),
               pl.col("throughput_rps").mean(), pl.col("error_rate").mean()).sort("t_start_s"))
fig, axes = plt.subplots(4, 1, figsize=(10, 10), sharex=True)
for i, p in enumerate(policies):
    rows = series.filter(pl.col("policy") == p)
    hours = rows["t_start_s"] / 3600
    c = nb.COLOURS[i % len(nb.COLOURS)]
    axes[0].plot(hours, rows["throughput_rps"], label=p, color=c)
    axes[1].plot(hours, rows["p95_s"], label=p, color=c)
    axes[2].plot(hours, rows["error_rate"], label=p, color=c)
    axes[3].plot(hours, rows["cost_usd"].cum_sum(), label=p, color=c)
for ax, label in zip(axes, ["completed / s", "p95 latency (s)", "error rate", "cumulative cost (USD)"]):
    shade(ax)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
axes[0].legend(fontsize=8)
axes[-1].set_xlabel("hour of the day")
fig.tight_layout()
"""),
    md("## The failover, up close\n\nThe failed endpoint's share from an hour before the first fault to an hour after it."),
    code("""
if faults:
    endpoint, kind, start, end = faults[0]
    window = mean_shares.filter((pl.col("endpoint") == endpoint) & pl.col("t_start_s").is_between(start - 3600, end + 3600))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for i, p in enumerate(policies):
        rows = window.filter(pl.col("policy") == p)
        ax.plot(rows["t_start_s"] / 3600, rows["share"], label=p, color=nb.COLOURS[i % len(nb.COLOURS)], marker=".")
    shade(ax)
    ax.set_ylabel(f"share of {endpoint}")
    ax.set_xlabel("hour of the day")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
else:
    print("the scenario has no fault")
"""),
]

# ----- 3. tuning ---------------------------------------------------------------------------------------------
TUNE = [
    md("""
# 3. Tuning

Reads the files of a `routesim tune`: every candidate configuration (the cloud), the frontier of the two
objectives, the scenario's own policies for reference, the chosen configuration, and how each objective
responds to each tuned parameter.

Left alone it tunes the hybrid policy of `scenarios/hybrid-tuning.toml` with 12 random candidates, 2
replications of 8,000 requests each (a few seconds; the search is far too small to trust: point `RESULTS_DIR`
at a real tuning).
"""),
    params("tune"),
    code(SETUP + """
# tune exits 1 (after writing every file) when no candidate meets the constraints: still worth a look.
results = nb.results_dir(RESULTS_DIR, "tune", [
    ["tune", "scenarios/hybrid-tuning.toml", "--method", "random", "--candidates", "12", "--replications", "2",
     "--requests", "8000", "--out", "{out}"],
], allowed_exit=(0, 1))
cands = pl.read_parquet(results / "candidates.parquet")
baselines = pl.read_csv(results / "baselines.csv")
params = cands.columns[cands.columns.index("status") + 1 : cands.columns.index("policy")]
print(results, "parameters:", params)
"""),
    md("## The frontier\n\nCandidates that no other beats on both cost and p95, best first; the chosen one flagged."),
    code("""
cols = ["candidate", *params, "latency_p95_s", "cost_per_1k_usd", "success_rate", "feasible", "chosen"]
cands.filter(pl.col("on_frontier")).sort("latency_p95_s").select(cols)
"""),
    md("## The candidate cloud"),
    code("""
fig, ax = plt.subplots(figsize=(8, 5.5))
complete = cands.filter(pl.col("status") == "complete")
dropped = cands.filter(pl.col("status") != "complete")
for feasible, marker, label in [(True, "o", "meets the constraints"), (False, "x", "misses a constraint")]:
    rows = complete.filter(pl.col("feasible") == feasible)
    ax.scatter(rows["latency_p95_s"], rows["cost_per_1k_usd"], marker=marker, alpha=0.7, label=label)
if dropped.height:
    ax.scatter(dropped["latency_p95_s"], dropped["cost_per_1k_usd"], marker=".", color="grey", alpha=0.5,
               label="dropped early (successive halving)")
front = cands.filter(pl.col("on_frontier")).sort("latency_p95_s")
ax.plot(front["latency_p95_s"], front["cost_per_1k_usd"], color="black", lw=1, ls="--", label="frontier")
for row in baselines.iter_rows(named=True):
    ax.scatter(row["latency_p95_s"], row["cost_per_1k_usd"], marker="s", color="tab:red")
    ax.annotate(row["policy"], (row["latency_p95_s"], row["cost_per_1k_usd"]), fontsize=7, xytext=(4, 4),
                textcoords="offset points")
chosen = cands.filter(pl.col("chosen"))
if chosen.height:
    ax.scatter(chosen["latency_p95_s"], chosen["cost_per_1k_usd"], marker="*", s=250, color="gold",
               edgecolor="black", zorder=5, label="chosen")
ax.set_xlabel("p95 latency (s)")
ax.set_ylabel("cost per 1k requests (USD)")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
"""),
    md("## How cost and p95 respond to each parameter\n\nOne column per tuned parameter (weights included); complete candidates only."),
    code("""
fig, axes = plt.subplots(2, len(params), figsize=(3.2 * len(params), 6), squeeze=False, sharey="row")
for j, param in enumerate(params):
    for i, metric in enumerate(["cost_per_1k_usd", "latency_p95_s"]):
        ax = axes[i, j]
        ax.scatter(complete[param], complete[metric], alpha=0.7, c=complete["feasible"].cast(pl.Int8), cmap="coolwarm_r",
                   vmin=0, vmax=1)
        if chosen.height:
            ax.scatter(chosen[param], chosen[metric], marker="*", s=160, color="gold", edgecolor="black")
        ax.set_xlabel(param)
        ax.grid(alpha=0.3)
    axes[0, j].set_title(param, fontsize=9)
axes[0, 0].set_ylabel("cost per 1k (USD)")
axes[1, 0].set_ylabel("p95 latency (s)")
fig.tight_layout()
"""),
    code("""
best = results / "best-policy.toml"
print(best.read_text() if best.exists() else "no candidate met the constraints (no best-policy.toml)")
"""),
]

# ----- 4. replay and fit -------------------------------------------------------------------------------------
REPLAY = [
    md("""
# 4. Replay against "as logged", and the fitted provider models

Reads the files of a `routesim replay` (each policy on the log's own traffic, next to the "as logged" row:
what really happened to those requests) and of a `routesim fit` on the same log (`providers.toml` and
`qq.parquet`, the quantile-quantile data of every fitted latency distribution).

Left alone it makes a log first (`routesim gen-log`, 6,000 requests of the quickstart's traffic), replays it
through `scenarios/replay.toml` (2 replications) into `replay/` and fits it into `fit/`. Point `RESULTS_DIR` at
a directory holding `replay/` and `fit/` made from your own gateway's log.
"""),
    params("replay"),
    code(SETUP + """
results = nb.results_dir(RESULTS_DIR, "replay", [
    ["gen-log", "scenarios/quickstart.toml", "--rows", "6000", "--out", "{out}/log.csv"],
    ["replay", "scenarios/replay.toml", "--log", "{out}/log.csv", "--warmup", "0", "--replications", "2",
     "--out", "{out}/replay"],
    ["fit", "--log", "{out}/log.csv", "--out", "{out}/fit/providers.toml"],
])
summary = pl.read_parquet(results / "replay" / "summary.parquet")
qq = pl.read_parquet(results / "fit" / "qq.parquet")
print(results)
"""),
    md("## Policies against the log\n\nThe last row, \"as logged\", is one observation (no interval)."),
    code("""
nb.with_interval(summary, ["requests", "success_rate", "latency_p50_s", "latency_p95_s", "cost_per_1k_usd"])
"""),
    code("""
metrics = [("latency_p50_s", "p50 latency (s)"), ("latency_p95_s", "p95 latency (s)"), ("cost_per_1k_usd", "USD per 1k requests")]
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
names = summary["policy"].to_list()
for ax, (metric, label) in zip(axes, metrics):
    colours = ["black" if n == "as logged" else nb.COLOURS[i % len(nb.COLOURS)] for i, n in enumerate(names)]
    ax.bar(names, summary[metric].fill_nan(None).fill_null(0.0), yerr=summary[f"{metric}_ci95"].fill_null(0.0),
           color=colours, capsize=3)
    ax.set_title(label)
    ax.tick_params(axis="x", rotation=45, labelsize=8)
fig.tight_layout()
"""),
    md("## Fit: QQ plots\n\nFitted quantile against the log's quantile per endpoint and fitted quantity; on the diagonal is a perfect fit."),
    code("""
panels = qq.select("endpoint", "panel").unique(maintain_order=True)
n = panels.height
cols = min(n, 3)
rows_n = (n + cols - 1) // cols
fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.8 * rows_n), squeeze=False)
for ax, (endpoint, panel) in zip(axes.flat, panels.iter_rows()):
    pts = qq.filter((pl.col("endpoint") == endpoint) & (pl.col("panel") == panel))
    ax.scatter(pts["fitted"], pts["observed"], s=8)
    hi = max(pts["fitted"].max(), pts["observed"].max())
    ax.plot([0, hi], [0, hi], color="grey", lw=1, ls="--")
    ax.set_title(f"{endpoint}\\n{panel}", fontsize=8)
    ax.set_xlabel("fitted quantile")
    ax.set_ylabel("log quantile")
for ax in list(axes.flat)[n:]:
    ax.axis("off")
fig.tight_layout()
"""),
    code("""
print((results / "fit" / "providers.toml").read_text()[:3000])
"""),
]

# ----- 5. replications ---------------------------------------------------------------------------------------
REPS = [
    md("""
# 5. How many replications does a decision need?

Reads `replications.parquet` (every metric of every replication of every policy) of a `routesim run` and
recomputes the 95% interval with the first *n* replications, for every *n*: how the half-width of each
policy's p95 and cost shrinks (about as 1/√n), and how the paired difference against the baseline (common
random numbers) needs far fewer replications to exclude zero than the two separate intervals would.

Left alone it runs the quickstart for three policies, 12 replications of 5,000 requests (a few seconds).
"""),
    params("replications"),
    code(SETUP + """
import numpy as np
from scipy import stats

results = nb.results_dir(RESULTS_DIR, "replications", [
    ["run", "scenarios/quickstart.toml", "--policies", "round-robin,latency,hybrid", "--requests", "5000",
     "--replications", "12", "--out", "{out}"],
])
reps = pl.read_parquet(results / "replications.parquet").sort("policy", "replication")
summary = pl.read_parquet(results / "summary.parquet")
policies = summary["policy"].to_list()
baseline = policies[0]
print(results, reps.height, "rows")

def half_width(xs):
    n = len(xs)
    return float(stats.t.ppf(0.975, n - 1) * np.std(xs, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
"""),
    md("The per-replication rows reproduce the summary: their mean and interval are the summary's."),
    code("""
for p in policies:
    xs = reps.filter(pl.col("policy") == p)["latency_p95_s"].to_numpy()
    row = summary.filter(pl.col("policy") == p)
    assert np.isclose(xs.mean(), row["latency_p95_s"][0]), p
    assert np.isclose(half_width(xs), row["latency_p95_s_ci95"][0]), p
print("summary.parquet = mean and t-interval of replications.parquet for every policy")
"""),
    md("## Interval half-width against replications"),
    code("""
metrics = [("latency_p95_s", "p95 latency (s)"), ("cost_per_1k_usd", "cost per 1k (USD)")]
N = reps["replication"].n_unique()
ns = np.arange(2, N + 1)
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
for ax, (metric, label) in zip(axes, metrics):
    for i, p in enumerate(policies):
        xs = reps.filter(pl.col("policy") == p)[metric].to_numpy()
        widths = [half_width(xs[:n]) for n in ns]
        ax.plot(ns, widths, marker="o", label=p, color=nb.COLOURS[i % len(nb.COLOURS)])
        ax.plot(ns, widths[-1] * np.sqrt(N) / np.sqrt(ns), ls=":", color=nb.COLOURS[i % len(nb.COLOURS)], alpha=0.6)
    ax.set_xlabel("replications")
    ax.set_ylabel(f"95% half-width of {label}")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
axes[0].legend(fontsize=8, title="dotted: 1/sqrt(n) from the last")
fig.tight_layout()
"""),
    md("""
## Paired differences against the baseline

With n replications, the difference `policy - baseline` of p95 latency: its mean and interval. The decision is
made once the interval leaves zero. The table estimates, from all replications, how many the interval needs
to exclude zero: n ≈ (t · sd / |mean difference|)².
"""),
    code("""
base = reps.filter(pl.col("policy") == baseline).sort("replication")
fig, ax = plt.subplots(figsize=(9, 4.2))
needed = []
for i, p in enumerate(policies[1:], start=1):
    d = (reps.filter(pl.col("policy") == p).sort("replication")["latency_p95_s"] - base["latency_p95_s"]).to_numpy()
    means = np.array([d[:n].mean() for n in ns])
    widths = np.array([half_width(d[:n]) for n in ns])
    c = nb.COLOURS[i % len(nb.COLOURS)]
    ax.plot(ns, means, color=c, label=f"{p} - {baseline}")
    ax.fill_between(ns, means - widths, means + widths, color=c, alpha=0.2)
    sd, m = d.std(ddof=1), abs(d.mean())
    est = int(np.ceil((1.96 * sd / m) ** 2)) if m > 0 else None
    first = next((int(n) for n, mu, w in zip(ns, means, widths) if abs(mu) > w), None)
    needed.append({"policy": p, "mean_diff_s": d.mean(), "sd_s": sd, "replications_estimated": est,
                   "first_n_excluding_zero": first})
ax.axhline(0.0, color="grey", lw=1, ls="--")
ax.set_xlabel("replications")
ax.set_ylabel("p95 difference (s)")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
pl.DataFrame(needed)
"""),
]

NOTEBOOK_LIST = {
    "01-compare-policies.ipynb": COMPARE,
    "02-day-of-traffic.ipynb": DAY,
    "03-tuning.ipynb": TUNE,
    "04-replay-and-fit.ipynb": REPLAY,
    "05-replications.ipynb": REPS,
}


def main():
    for name, cells in NOTEBOOK_LIST.items():
        doc = {
            "cells": cells,
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        for i, cell in enumerate(cells):
            cell["id"] = f"c{i:02d}"
        (NOTEBOOKS / name).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        print("wrote", NOTEBOOKS / name)


if __name__ == "__main__":
    main()
