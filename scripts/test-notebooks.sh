#!/usr/bin/env bash
# Tests notebooks/ and report.html: executes every notebook headless against fresh results (any cell error
# fails), then renders a run's report.html in headless Chromium to a PNG.
#
# Needs python3.11 (with venv) and Debian's `chromium` (.ci/run installs it when missing), and the routesim
# binary the tests built: $ROUTESIM_BIN, else $CARGO_TARGET_DIR/debug/routesim (default target dir:
# ./target). The virtual environment is made from notebooks/requirements.txt once and reused (outside the
# clone: $HOME/.cache/routesim/venv-notebooks, rebuilt when the requirements change).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${ROUTESIM_BIN:-${CARGO_TARGET_DIR:-target}/debug/routesim}"
[ -x "$BIN" ] || { echo "error: no routesim binary at $BIN (run cargo build -p routesim, or set ROUTESIM_BIN)" >&2; exit 1; }
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
export ROUTESIM_BIN="$BIN"
VENV="${ROUTESIM_NOTEBOOK_VENV:-$HOME/.cache/routesim/venv-notebooks}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/routesim-notebooks.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start )) s"; }

# 1. The virtual environment, keyed by the requirements' hash.
stamp="$VENV/.requirements-$(sha256sum notebooks/requirements.txt | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "-- creating $VENV from notebooks/requirements.txt"
  rm -rf "$VENV"
  python3.11 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r notebooks/requirements.txt
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
echo "-- venv ready ($(elapsed))"

# 2. The results the notebooks read (notebooks 2 and 5 are left alone: they make their own runs).
"$BIN" run scenarios/quickstart.toml --requests 20000 --replications 5 --out "$WORK/compare" >/dev/null
"$BIN" tune scenarios/hybrid-tuning.toml --method random --candidates 12 --replications 2 --requests 8000 \
  --out "$WORK/tune" >/dev/null 2>"$WORK/tune.err" || [ $? -eq 1 ]   # 1: nothing met the constraints; files written
mkdir -p "$WORK/replay-fit"
"$BIN" gen-log scenarios/quickstart.toml --rows 6000 --out "$WORK/replay-fit/log.csv" >/dev/null
"$BIN" replay scenarios/replay.toml --log "$WORK/replay-fit/log.csv" --warmup 0 --replications 2 \
  --out "$WORK/replay-fit/replay" >/dev/null
"$BIN" fit --log "$WORK/replay-fit/log.csv" --out "$WORK/replay-fit/fit/providers.toml" >/dev/null
echo "-- results ready ($(elapsed))"

# 3. Every notebook, headless.
python scripts/run-notebooks.py \
  "notebooks/01-compare-policies.ipynb=$WORK/compare" \
  notebooks/02-day-of-traffic.ipynb \
  "notebooks/03-tuning.ipynb=$WORK/tune" \
  "notebooks/04-replay-and-fit.ipynb=$WORK/replay-fit" \
  notebooks/05-replications.ipynb
echo "-- notebooks done ($(elapsed))"

# 4. report.html in headless Chromium: rendered to a PNG without error.
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
[ -n "$CHROMIUM" ] || { echo "error: no chromium (apt-get install chromium)" >&2; exit 1; }
for report in "$WORK/compare/report.html" "$WORK/tune/report.html" "$WORK/replay-fit/replay/report.html"; do
  png="${report%.html}.png"
  timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$WORK/chromium-profile" \
    --hide-scrollbars --window-size=1280,2400 --screenshot="$png" "file://$report" >"$WORK/chromium.log" 2>&1 \
    || { cat "$WORK/chromium.log" >&2; echo "error: chromium failed on $report" >&2; exit 1; }
  size=$(stat -c %s "$png" 2>/dev/null || echo 0)
  if [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" != "89504e470d0a1a0a" ] || [ "$size" -lt 20000 ]; then
    echo "error: chromium wrote no plausible PNG for $report ($size bytes)" >&2; exit 1
  fi
  echo "ok   rendered $(basename "$(dirname "$report")")/report.html to a ${size}-byte PNG"
done
echo "-- report rendering done ($(elapsed))"
