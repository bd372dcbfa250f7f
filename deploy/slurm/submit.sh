#!/usr/bin/env bash
# Submits the sweep's job array and its merge, which waits for every array task to succeed.
#   SWEEP=scenarios/sweeps/hybrid-rate-buffer.toml OUT=results/hybrid-rate-buffer deploy/slurm/submit.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
array=$(sbatch --parsable --export=ALL "$here/sweep.sbatch")
merge=$(sbatch --parsable --export=ALL --dependency="afterok:${array%%;*}" "$here/merge.sbatch")
echo "sweep array job $array, merge job $merge"
