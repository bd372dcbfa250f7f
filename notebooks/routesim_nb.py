"""Helpers shared by the routesim notebooks: find (or make) a results directory and read its tables.

Each notebook has a parameter cell with ``RESULTS_DIR = None``. When it stays ``None`` (and the environment
variable ``ROUTESIM_RESULTS`` is unset), the notebook runs its own small routesim command on a shipped
scenario first, with the binary named by ``ROUTESIM_BIN``, else ``$CARGO_TARGET_DIR/{release,debug}/routesim``
or ``target/{release,debug}/routesim``, else ``cargo run``. Its results go to ``results/notebook-<name>/``.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tomllib

import matplotlib.pyplot as plt
import polars as pl

REPO = pathlib.Path(__file__).resolve().parent.parent

# One colour per policy, in the order the results list them (as routesim's own plots do).
COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def routesim_command() -> list[str]:
    """The command that runs routesim (see the module's doc for the search order)."""
    given = os.environ.get("ROUTESIM_BIN")
    if given:
        return [given]
    targets = [pathlib.Path(os.environ["CARGO_TARGET_DIR"])] if os.environ.get("CARGO_TARGET_DIR") else []
    targets.append(REPO / "target")
    for target in targets:
        for profile in ("release", "debug"):
            binary = target / profile / "routesim"
            if binary.is_file():
                return [str(binary)]
    if shutil.which("cargo"):
        return ["cargo", "run", "--quiet", "-p", "routesim", "--bin", "routesim", "--"]
    raise RuntimeError("no routesim binary: build it (cargo build -p routesim) or set ROUTESIM_BIN")


def run_routesim(args: list[str], allowed_exit: tuple[int, ...] = (0,)) -> None:
    """Runs ``routesim ARGS`` in the repository's root; fails with its output on another exit status."""
    proc = subprocess.run(routesim_command() + args, cwd=REPO, capture_output=True, text=True)
    if proc.returncode not in allowed_exit:
        raise RuntimeError(f"routesim {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")


def results_dir(given, name, commands, allowed_exit=(0,), before=None) -> pathlib.Path:
    """The results directory to read: ``given``, else ``$ROUTESIM_RESULTS``, else a fresh one made by calling
    ``before`` (if any) and running ``commands`` (each a routesim argument list, where ``{out}`` stands for
    ``results/notebook-<name>``); ``allowed_exit`` lists the exit statuses that still mean "results written"."""
    chosen = given or os.environ.get("ROUTESIM_RESULTS")
    if chosen:
        path = pathlib.Path(chosen)
        if not path.is_dir():
            raise FileNotFoundError(f"results directory {path} does not exist")
        return path
    out = REPO / "results" / f"notebook-{name}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if before is not None:
        before()
    for args in commands:
        run_routesim([a.replace("{out}", str(out)) for a in args], allowed_exit)
    return out


def scenario(results: pathlib.Path) -> dict:
    """The scenario the results were made with (``scenario.toml``)."""
    return tomllib.loads((results / "scenario.toml").read_text())


def with_interval(df: pl.DataFrame, metrics: list[str], digits: int = 4) -> pl.DataFrame:
    """``policy`` and one ``mean ± half-width`` text column per metric (the half-width left out when null)."""

    def cell(metric: str) -> pl.Expr:
        mean = pl.col(metric).round_sig_figs(digits).cast(pl.String)
        ci = pl.col(f"{metric}_ci95").round_sig_figs(2).cast(pl.String)
        return pl.when(pl.col(f"{metric}_ci95").is_null()).then(mean).otherwise(mean + " ± " + ci).alias(metric)

    return df.select(pl.col("policy"), *[cell(m) for m in metrics])


def seconds(duration) -> float:
    """A scenario duration ("20m", "1h30m", "90s", "250ms" or a number of seconds) in seconds."""
    if isinstance(duration, (int, float)):
        return float(duration)
    units = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    total, number, text, i = 0.0, "", duration.strip(), 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if text.startswith("ms", i) else ch
        total += float(number) * units[unit]
        number, i = "", i + len(unit)
    return total + (float(number) if number else 0.0)
