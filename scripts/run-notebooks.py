#!/usr/bin/env python3
"""Executes notebooks headless with nbclient; any cell error fails. Run by scripts/test-notebooks.sh.

usage: run-notebooks.py NOTEBOOK[=RESULTS_DIR] ...

Each notebook runs in notebooks/ (so it imports routesim_nb) with ROUTESIM_RESULTS set to RESULTS_DIR when
given, else unset (the notebook then makes its own run). A committed notebook must have no outputs.
With NOTEBOOK_OUTPUT_DIR set, the executed notebooks (outputs included) are written there.
Every `plt.subplots(` in a code cell must give a figure in the outputs. Prints one line per notebook with
its time, then "N passed, N failed".
"""

import os
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def stripped(nb):
    return all(
        not cell.get("outputs") and cell.get("execution_count") is None for cell in nb.cells if cell.cell_type == "code"
    )


def main(args):
    passed, failed = 0, 0
    for arg in args:
        path, _, results = arg.partition("=")
        nb = nbformat.read(path, as_version=4)
        name = os.path.basename(path)
        if not stripped(nb):
            print(f"FAIL {name}: committed with outputs (strip them: scripts/make-notebooks.py or Jupyter's Clear All)")
            failed += 1
            continue
        if results:
            os.environ["ROUTESIM_RESULTS"] = results
        else:
            os.environ.pop("ROUTESIM_RESULTS", None)
        os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend, so figures land in the outputs
        client = NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
        start = time.monotonic()
        try:
            client.execute()
        except CellExecutionError as e:
            if os.environ.get("NOTEBOOK_OUTPUT_DIR"):
                nbformat.write(nb, os.path.join(os.environ["NOTEBOOK_OUTPUT_DIR"], name))
            print(f"FAIL {name} after {time.monotonic() - start:.1f} s:\n{e}")
            failed += 1
            continue
        if os.environ.get("NOTEBOOK_OUTPUT_DIR"):  # keep the executed notebook, for a look at its figures
            nbformat.write(nb, os.path.join(os.environ["NOTEBOOK_OUTPUT_DIR"], name))
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        if errors:  # an exception in a display hook (drawing a figure) does not stop the cell
            print(f"FAIL {name}: {errors[0].get('ename')}: {errors[0].get('evalue')}")
            failed += 1
            continue
        images = sum(1 for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
        expected = sum(c.source.count("plt.subplots(") for c in nb.cells if c.cell_type == "code")
        if images < expected:
            print(f"FAIL {name}: {images} figures drawn, {expected} expected (one per plt.subplots call)")
            failed += 1
            continue
        print(f"ok   {name}: {time.monotonic() - start:.1f} s, {images} figures"
              + (f" (results {results})" if results else " (made its own run)"))
        passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
