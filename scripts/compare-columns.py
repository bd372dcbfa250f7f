#!/usr/bin/env python3
"""Checks that an output directory differs from a baseline only by added columns and files.

    scripts/compare-columns.py BASELINE NEW

For every file of both trees (scripts/byte-identity.sh's layout): identical bytes pass; a CSV that differs must
have every baseline column, in the same rows, with the same cells (columns may be added), or, in a long
table (same header, one row per metric, as paired.csv), every baseline row in order (rows may be added); a printed `.log`
that differs (after the normalisation byte-identity.sh applies) must keep, on each line, the baseline line's whitespace-separated fields in order (columns may
be inserted); files only in NEW are listed as added; a file only in BASELINE fails. Parquet files cannot be
read here (no pyarrow): one that differs is reported with its CSV twin's verdict. `manifest.json` and
`report.html` (wall times, dates, paths) are skipped, as byte-identity.sh skips them. Exit status 1 on any
failure.
"""
import csv
import os
import sys

SKIP = {"manifest.json", "report.html"}


def rel_files(root):
    out = set()
    for d, _, files in os.walk(root):
        for f in files:
            out.add(os.path.relpath(os.path.join(d, f), root))
    return out


def csv_ok(a, b):
    with open(a, newline="") as fa, open(b, newline="") as fb:
        ra, rb = list(csv.reader(fa)), list(csv.reader(fb))
    if not ra:
        return None
    ha, hb = ra[0], rb[0]
    if len(ra) != len(rb):
        # A long table (one row per metric, as paired.csv): rows may be added, every old row kept in order.
        if ha != hb:
            return f"{len(ra)} rows, now {len(rb)}, and the header changed"
        it = iter(rb[1:])
        gone = [r for r in ra[1:] if r not in it]
        return f"{len(gone)} old rows gone, e.g. {gone[0]}" if gone else None
    missing = [c for c in ha if c not in hb]
    if missing:
        return f"columns gone: {missing}"
    for c in ha:
        i, j = ha.index(c), hb.index(c)
        for n, (x, y) in enumerate(zip(ra[1:], rb[1:]), start=2):
            if x[i] != y[j]:
                return f"column {c}, line {n}: {x[i]!r} now {y[j]!r}"
    return None


def log_ok(a, b, root_a, root_b):
    la = open(a).read().replace(os.path.realpath(root_a), "OUT").splitlines()
    lb = open(b).read().replace(os.path.realpath(root_b), "OUT").splitlines()
    skip = ("wall time", "validation took", "written to", "Read the log in")
    la = [l for l in la if not any(s in l for s in skip)]
    lb = [l for l in lb if not any(s in l for s in skip)]
    if la == lb:
        return "same"
    # Lines may be added (a quality note under a table): each baseline line must match, in order, a later line.
    j = 0
    for n, x in enumerate(la, start=1):
        fx = x.split()
        while j < len(lb):
            fy = lb[j].split()
            j += 1
            it = iter(fy)
            if all(t in it for t in fx) and (not fx or fy[0] == fx[0]):
                break
        else:
            return f"line {n} not found: {x!r}"
    return None


def main():
    base, new = sys.argv[1], sys.argv[2]
    fa, fb = rel_files(base), rel_files(new)
    failed, changed, added = [], [], sorted(fb - fa)
    for f in sorted(fa - fb):
        failed.append(f"{f}: only in the baseline")
    for f in sorted(fa & fb):
        if os.path.basename(f) in SKIP:
            continue
        a, b = os.path.join(base, f), os.path.join(new, f)
        if open(a, "rb").read() == open(b, "rb").read():
            continue
        if f.endswith(".csv"):
            why = csv_ok(a, b)
        elif f.endswith(".log"):
            why = log_ok(a, b, base, new)
            if why == "same":
                continue
        elif f.endswith(".parquet"):
            twin = f[: -len(".parquet")] + ".csv"
            why = None if twin in fa & fb else "no CSV twin to check it by"
        elif f.endswith("scenario.toml"):
            why = None  # the scenario copied into the output: the file changed on purpose
        else:
            why = "differs (not a CSV, log or parquet)"
        changed.append(f)
        if why:
            failed.append(f"{f}: {why}")
    print(f"{len(changed)} changed files, every old column and line kept: {len(changed) - len(failed)}")
    for f in changed:
        print(f"  changed {f}")
    for f in added:
        print(f"  added   {f}")
    for f in failed:
        print(f"FAIL {f}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
