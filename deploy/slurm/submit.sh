#!/usr/bin/env bash
# Submits the sweep's job array and its merge, which waits for every array task to succeed.
#   SWEEP=scenarios/sweeps/hybrid-rate-buffer.toml OUT=results/hybrid-rate-buffer deploy/slurm/submit.sh [OPTION...]
# Options are sbatch's and override the scripts' #SBATCH lines: the array's own (--array, --cpus-per-task / -c,
# --mem, --time) go to the sweep array only; every other (--partition, --account, --qos, ...) to both jobs:
#   deploy/slurm/submit.sh --partition=short --array=0-3 --cpus-per-task=2
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
both=()
array_only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --array=* | --cpus-per-task=* | --mem=* | --time=* | -c?* | -a?* | -t?*) array_only+=("$1") ;;
    --array | --cpus-per-task | --mem | --time | -c | -a | -t)
      [ $# -ge 2 ] || { echo "submit.sh: $1 needs a value" >&2; exit 2; }
      array_only+=("$1" "$2")
      shift
      ;;
    *) both+=("$1") ;;
  esac
  shift
done
array=$(sbatch --parsable --export=ALL "${both[@]}" "${array_only[@]}" "$here/sweep.sbatch")
merge=$(sbatch --parsable --export=ALL "${both[@]}" --dependency="afterok:${array%%;*}" "$here/merge.sbatch")
echo "sweep array job $array, merge job $merge"
