#!/usr/bin/env bash
# Benchmarks of issue 7's targets: a 1,000,000-row CSV log read, mapped and replayed through one policy
# (target: under 3 s end to end), and a 20,000,000-row Parquet log replayed with bounded memory. Prints the
# wall time and the peak heap (RssAnon) and file-backed (RssFile: polars maps the file) resident memory.
#
#   CARGO_TARGET_DIR=... scripts/bench-logs.sh [ROWS_CSV] [ROWS_PARQUET] [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
rows_csv="${1:-1000000}"
rows_parquet="${2:-20000000}"
work="${3:-${TMPDIR:-/tmp}/routesim-bench-logs}"
mkdir -p "$work"
cargo build --release -q -p routesim
bin="${CARGO_TARGET_DIR:-target}/release/routesim"

# Runs a command and reports its wall time and peak RssAnon / RssFile (sampled every 50 ms).
measure() {
  local start end pid anon=0 file=0 a f
  start=$(date +%s.%N)
  "$@" >"$work/last.out" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    a=$(awk '/RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    f=$(awk '/RssFile/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [[ -n "$a" && "$a" -gt "$anon" ]] && anon=$a
    [[ -n "$f" && "$f" -gt "$file" ]] && file=$f
    sleep 0.05
  done
  wait "$pid"
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v a="$anon" -v f="$file" 'BEGIN { printf "  wall %.2f s, peak heap %d MiB, peak file-backed %d MiB\n", e - s, a / 1024, f / 1024 }'
}

echo "gen-log: $rows_csv rows (CSV), $rows_parquet rows (Parquet) of scenarios/quickstart.toml"
"$bin" gen-log scenarios/quickstart.toml --rows "$rows_csv" --out "$work/log.csv" >/dev/null
"$bin" gen-log scenarios/quickstart.toml --rows "$rows_parquet" --out "$work/log.parquet" >/dev/null
for i in 1 2 3; do
  echo "replay $rows_csv-row CSV through one policy (run $i):"
  measure "$bin" replay scenarios/quickstart.toml --log "$work/log.csv" --policies hybrid --replications 1 --out "$work/out-csv"
done
echo "replay $rows_parquet-row Parquet through one policy:"
measure "$bin" replay scenarios/quickstart.toml --log "$work/log.parquet" --policies hybrid --replications 1 --out "$work/out-parquet"
grep "Read the log" "$work/last.out"
