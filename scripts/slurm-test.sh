#!/usr/bin/env bash
# A one-node Slurm cluster on this machine runs deploy/slurm/submit.sh unchanged (the sweep's job array,
# then its merge job), and the merged output must equal a single-process `routesim sweep` byte for byte.
#
#   scripts/slurm-test.sh            # needs root: installs slurm-wlm and munge with apt-get when missing
#
# Environment: ROUTESIM (a routesim binary; default: built with cargo into $CARGO_TARGET_DIR or target/),
# SLURM_TEST_REQUESTS (requests per run of the sweep; default the sweep file's 20000), SLURM_TEST_TIMEOUT (seconds to wait for
# the jobs, default 600). The cluster (munged, slurmctld, slurmd) lives in a temporary folder with its own
# slurm.conf (SLURM_CONF), listens on 127.0.0.1 only, and is stopped on exit; /etc/slurm is not touched.
# Exit status 0 when every file matches; 1 with the differing files named otherwise.
set -euo pipefail
started=$(date +%s)
repo="$(cd "$(dirname "$0")/.." && pwd)"
requests="${SLURM_TEST_REQUESTS:-}"
timeout="${SLURM_TEST_TIMEOUT:-600}"

say() { echo "slurm-test: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it starts munged, slurmctld and slurmd, and may apt-get install them)"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
  || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge (apt-get)"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >&2
fi

# The routesim binary the jobs run.
if [ -z "${ROUTESIM:-}" ]; then
  (cd "$repo" && cargo build --quiet --locked -p routesim --bin routesim) >&2
  ROUTESIM="${CARGO_TARGET_DIR:-$repo/target}/debug/routesim"
fi
[ -x "$ROUTESIM" ] || die "no routesim binary at $ROUTESIM"
export ROUTESIM

work="$(mktemp -d /tmp/routesim-slurm.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$work"/slurmctld.pid "$work"/slurmd.pid "$work"/munged.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  sleep 1
  rm -rf "$work"
}
trap cleanup EXIT

# munge: a private socket, key, pid and log (the packaged key is reused when readable).
mkdir -p "$work/munge"
chown munge:munge "$work/munge"
chmod 755 "$work/munge"   # munged wants its socket folder searchable by all, writable by itself only
if [ -r /etc/munge/munge.key ]; then
  install -o munge -g munge -m 400 /etc/munge/munge.key "$work/munge/munge.key"
else
  dd if=/dev/urandom bs=1 count=1024 status=none of="$work/munge/munge.key"
  chown munge:munge "$work/munge/munge.key"
  chmod 400 "$work/munge/munge.key"
fi
socket="$work/munge/munge.socket"
runuser -u munge -- munged --key-file="$work/munge/munge.key" --socket="$socket" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" --seed-file="$work/munge/seed" \
  || die "munged did not start"
cp "$work/munge/munged.pid" "$work/munged.pid"

# slurm.conf: this host as the one node, with the CPUs and memory it has.
host="$(hostname -s)"
cpus="$(nproc)"
mem_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
mkdir -p "$work/spool/ctld" "$work/spool/d" "$work/log"
cat >"$work/slurm.conf" <<EOF
ClusterName=routesimtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$work/spool/ctld
SlurmdSpoolDir=$work/spool/d
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$work/slurm.conf"
say "$(slurmctld -V)"
slurmctld -f "$SLURM_CONF" || die "slurmctld did not start: $(tail -5 "$work/log/slurmctld.log" 2>/dev/null)"
slurmd -f "$SLURM_CONF" || die "slurmd did not start: $(tail -5 "$work/log/slurmd.log" 2>/dev/null)"
for _ in $(seq 60); do
  state="$(sinfo -h -N -o '%t' 2>/dev/null | head -1 || true)"
  case "$state" in idle*|mix*|alloc*) break ;; esac
  sleep 1
done
case "${state:-}" in idle*|mix*|alloc*) ;; *) die "the node did not come up (state '${state:-none}'): $(tail -5 "$work/log/slurmd.log")" ;; esac
say "one-node cluster up: $host, $cpus CPUs, $mem_mb MB ($(( $(date +%s) - started )) s since start)"

# The shipped sweep (its scenario by absolute path; SLURM_TEST_REQUESTS shortens the runs).
mkdir -p "$work/job"
sed -e "s|^scenarios = .*|scenarios = [\"$repo/scenarios/hybrid-tuning.toml\"]|" \
  -e "${requests:+s|^requests = .*|requests = $requests|}" \
  "$repo/scenarios/sweeps/hybrid-rate-buffer.toml" >"$work/job/sweep.toml"
export SWEEP="$work/job/sweep.toml" OUT="$work/job/slurm-out"
submitted="$(cd "$work/job" && "$repo/deploy/slurm/submit.sh")"
say "$submitted"
merge_id="$(sed -n 's/.*merge job \([0-9]*\).*/\1/p' <<<"$submitted")"
[ -n "$merge_id" ] || die "submit.sh did not name the merge job: $submitted"

deadline=$(( $(date +%s) + timeout ))
while squeue -h -j "$merge_id" 2>/dev/null | grep -q .; do
  [ "$(date +%s)" -lt "$deadline" ] || { squeue >&2; die "the jobs did not finish within $timeout s"; }
  sleep 2
done
merge_state="$(scontrol show job "$merge_id" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')"
[ "$merge_state" = COMPLETED ] || {
  tail -n 20 "$work"/job/*.log >&2 || true
  die "the merge job ended $merge_state"
}
say "array and merge done ($(( $(date +%s) - started )) s since start)"

# The same sweep in one process.
"$ROUTESIM" sweep "$SWEEP" --out "$work/job/single" --threads "$cpus" >/dev/null
(cd "$work/job/single" && find . -type f | sort) >"$work/files"
total=$(wc -l <"$work/files")
[ "$total" -gt 0 ] || die "the single-process sweep wrote no file"
differ=0
while read -r f; do
  cmp -s "$work/job/single/$f" "$OUT/$f" || { say "differs or missing: $f"; differ=$((differ + 1)); }
done <"$work/files"
extra=$( (cd "$OUT" && find . -type f | sort) | comm -13 "$work/files" - | wc -l)
[ "$differ" = 0 ] && [ "$extra" = 0 ] || die "$differ of $total files differ, $extra extra files in the Slurm output"
say "OK: the merged Slurm output equals the single-process sweep byte for byte ($total of $total files), \
$(( $(date +%s) - started )) s in all"
