#!/usr/bin/env bash
# Writes every output the architecture redesign (issue 27) must leave byte-identical, for one build of
# `routesim`, into OUT. Run it with the binary before and after a change, then compare the two directories
# with `scripts/byte-identity.sh --compare A B` (run manifests and timestamps aside).
#
#   scripts/byte-identity.sh BIN OUT      # BIN: a built routesim binary
#   scripts/byte-identity.sh --compare A B
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--compare" ]]; then
    a=$2 b=$3
    # The manifests and report.html carry wall times, dates and output paths; everything else must match.
    diff -r -q -x manifest.json -x report.html -x '*.log' "$a" "$b"
    # The printed output, with the output directory's path and the wall-time figures left out.
    norm() { sed -e "s#$2#OUT#g" "$1" | grep -v -e 'wall time' -e '^validation took' -e 'written to' -e 'Read the log in' || true; }
    for f in "$a"/*.log; do
        n=$(basename "$f")
        if ! diff <(norm "$f" "$(realpath "$a")") <(norm "$b/$n" "$(realpath "$b")") > /dev/null; then
            echo "printed output differs: $n"
            diff <(norm "$f" "$(realpath "$a")") <(norm "$b/$n" "$(realpath "$b")") | head -20
            exit 1
        fi
    done
    echo "byte-identical: $(find "$a" -type f | wc -l) files"
    exit 0
fi

bin=$(realpath "$1") out=$2
mkdir -p "$out"
out=$(realpath "$out")
for s in scenarios/*.toml scenarios/validation/*.toml; do
    n=$(basename "$s" .toml)
    [[ "$s" == */validation/* ]] && n="validation-$n"
    "$bin" run "$s" --requests 100000 --replications 2 --threads 2 --out "$out/run-$n" > "$out/run-$n.log" 2>&1 \
        || echo "exit $? (kept)" >> "$out/run-$n.log"
done
"$bin" tune scenarios/hybrid-tuning.toml --threads 2 --out "$out/tune" > "$out/tune.log" 2>&1 || echo "exit $? (kept)" >> "$out/tune.log"
for kind in litellm portkey; do
    "$bin" export "$kind" "$out/tune/best-policy.toml" --scenario scenarios/hybrid-tuning.toml --out "$out/export-$kind" \
        > "$out/export-$kind.log" 2>&1 || echo "exit $? (kept)" >> "$out/export-$kind.log"
done
"$bin" sweep scenarios/sweeps/hybrid-rate-buffer.toml --threads 2 --out "$out/sweep" > "$out/sweep.log" 2>&1 || echo "exit $? (kept)" >> "$out/sweep.log"
for log in scenarios/logs/*; do
    n=$(basename "$log"); n=${n%.*}
    "$bin" replay scenarios/replay.toml --log "$log" --threads 2 --out "$out/replay-$n" > "$out/replay-$n.log" 2>&1 \
        || echo "exit $? (kept)" >> "$out/replay-$n.log"
    "$bin" fit --log "$log" --out "$out/fit-$n/providers.toml" > "$out/fit-$n.log" 2>&1 || echo "exit $? (kept)" >> "$out/fit-$n.log"
done
for cfg in sim/tests/fixtures/gateways/*; do
    n=$(basename "$cfg"); kind=litellm
    [[ "$n" == *.json ]] && kind=portkey
    "$bin" import "$kind" "$cfg" --out "$out/import-$n.toml" > "$out/import-$n.log" 2>&1 || echo "exit $? (kept)" >> "$out/import-$n.log"
done
"$bin" gen-log scenarios/quickstart.toml --rows 20000 --format csv --out "$out/gen-log.csv" > "$out/gen-log.log" 2>&1
"$bin" validate --quick > "$out/validate.log" 2>&1 || echo "exit $? (kept)" >> "$out/validate.log"
"$bin" policies > "$out/policies.log" 2>&1
echo "outputs of $bin in $out"
