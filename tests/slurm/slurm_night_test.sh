#!/usr/bin/env bash
# ctest slurm.night (labels slurm, integration): jobs/psfphot.slurm through a real
# single-node Slurm (scripts/start-slurm.sh brings it up).
#
#   bash tests/slurm/slurm_night_test.sh PSFPHOT_EXE SOURCE_DIR
#
# 1. A 6-frame night with `sbatch --wait` (2 ranks x 1 thread, srun launcher): exit 0,
#    /frames holds frames 0..5 all ok, /stars non-empty and consistent.
# 2. Stop and resume: a longer night is stopped mid-run with
#    `scancel --batch --signal=TERM` (what `--signal=B:TERM@T` does at the time limit):
#    exit 4 and a consistent partial catalogue; resubmitted with the mpirun launcher and
#    stopped again (exit 4); resubmitted once more (srun): exit 0, every frame exactly
#    once, no duplicate (frame_id, star_id).
# Exit 77 (skipped) only when Slurm cannot run here at all (not installed, not root);
# a Slurm that is installed but does not come up is a failure.
set -uo pipefail

EXE=${1:?usage: slurm_night_test.sh PSFPHOT_EXE SOURCE_DIR}
SRC=${2:?usage: slurm_night_test.sh PSFPHOT_EXE SOURCE_DIR}
JOB_SCRIPT="$SRC/jobs/psfphot.slurm"
CHECK="/usr/bin/python3 $SRC/tests/slurm/check_catalogue.py"
export PATH="$PATH:/usr/sbin:/sbin"

skip() {
  echo "SKIP slurm.night: $*"
  exit 77
}
for exe in sbatch slurmctld slurmd munged; do
  command -v "$exe" >/dev/null ||
    skip "$exe not installed (Debian packages slurm-wlm and munge: bash scripts/setup.sh)"
done
if [ "$(id -u)" -ne 0 ] && ! timeout 15 sinfo -h >/dev/null 2>&1; then
  skip "no running Slurm and not root, so scripts/start-slurm.sh cannot start one"
fi

W=$(mktemp -d /tmp/psfphot-slurm-test.XXXXXX)
chmod 0755 "$W"
JOBS=()
cleanup() {
  local j
  for j in "${JOBS[@]}"; do scancel "$j" 2>/dev/null; done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

fail() {
  echo "FAIL slurm.night: $*"
  local f j
  for f in "$W"/*.out; do
    [ -f "$f" ] || continue
    echo "===== $f"
    cat "$f"
  done
  for j in "${JOBS[@]}"; do timeout 15 scontrol show job "$j" 2>&1 | head -n 40; done
  timeout 15 sinfo 2>&1
  KEEP=1
  exit 1
}
step() { echo "--- $(date +%T) $*"; }

# The job runs as this user; mpirun refuses root without these (CI runs as root).
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export PSFPHOT="$EXE"

step "starting Slurm (scripts/start-slurm.sh)"
if [ "$(id -u)" -eq 0 ]; then
  START_SLURM_TIMEOUT=${START_SLURM_TIMEOUT:-90} bash "$SRC/scripts/start-slurm.sh" ||
    fail "scripts/start-slurm.sh could not bring Slurm up"
fi

# job_state JOBID -> "STATE EXITCODE" (e.g. "COMPLETED 0:0"), empty when unknown.
job_state() {
  timeout 15 scontrol show job "$1" 2>/dev/null |
    awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); if (kv[1] == "JobState") s = kv[2];
          if (kv[1] == "ExitCode") e = kv[2]}} END {if (s != "") print s, e}'
}

# submit NAME [sbatch/script args...]: submits; the id goes to JOBS and SUBMITTED.
SUBMITTED=""
submit() {
  local name=$1 id
  shift
  id=$(sbatch --parsable --ntasks-per-node=2 --cpus-per-task=1 --time=10 \
    --job-name="psfphot-test-$name" -o "$W/$name.out" "$@") || fail "sbatch $name failed"
  SUBMITTED=${id%%;*}
  JOBS+=("$SUBMITTED")
}

# wait_done JOBID SECONDS: until the job has left the queue; prints "STATE EXITCODE".
wait_done() {
  local id=$1 limit=$((SECONDS + $2)) st
  while :; do
    st=$(job_state "$id")
    case "$st" in
      COMPLETED* | FAILED* | CANCELLED* | TIMEOUT* | NODE_FAIL* | OUT_OF_MEMORY* | PREEMPTED*)
        echo "$st"
        return 0
        ;;
    esac
    [ "$SECONDS" -lt "$limit" ] || fail "job $id not finished after $2 s (state '$st')"
    sleep 0.5
  done
}

# wait_for_line FILE REGEX SECONDS JOBID
wait_for_line() {
  local limit=$((SECONDS + $3))
  until grep -qE "$2" "$1" 2>/dev/null; do
    case "$(job_state "$4")" in
      PENDING* | RUNNING* | CONFIGURING* | "") ;;
      *) fail "job $4 ended before printing /$2/" ;;
    esac
    [ "$SECONDS" -lt "$limit" ] || fail "no /$2/ in $1 after $3 s"
    sleep 0.2
  done
}

# ---- 1. a whole small night -----------------------------------------------------------
step "simulating a 6-frame night"
"$EXE" simulate --out "$W/small" --frames 6 --size 512 --stars 150 --seed 11 >"$W/simulate-small.log" 2>&1 ||
  fail "psfphot simulate failed: $(tail -n 5 "$W/simulate-small.log")"

step "sbatch --wait jobs/psfphot.slurm (2 ranks x 1 thread)"
timeout 240 sbatch --wait --parsable --ntasks-per-node=2 --cpus-per-task=1 --time=10 \
  --job-name=psfphot-test-whole -o "$W/whole.out" \
  "$JOB_SCRIPT" "$W/small/night.toml" "$W/small.h5" >"$W/whole.id"
rc=$?
JOBS+=("$(head -n 1 "$W/whole.id" | cut -d';' -f1)")
[ "$rc" -eq 0 ] || fail "whole night: sbatch --wait returned $rc, expected 0"
$CHECK "$W/small.h5" 6 complete || fail "whole night: catalogue check"
grep -q "2 rank(s)" "$W/whole.out" || fail "whole night: psfphot did not run on 2 ranks"

# ---- 2. stop with SIGTERM, resume ----------------------------------------------------
# Long enough that two stops, each landing ~0.3-0.5 s after the job's first frame (the poll,
# scancel, the batch shell's trap), leave frames for the resume: at 1024^2 / 400 stars two
# ranks ran ~90 frames/s, and once the second job found only 17 of 48 frames left and
# finished them before its SIGTERM arrived (COMPLETED instead of the stop's exit 4). At
# 2048^2 / 1500 stars a frame takes ~4x as long.
N=64
step "simulating a $N-frame night"
"$EXE" simulate --out "$W/long" --frames $N --size 2048 --stars 1500 --seed 12 >"$W/simulate-long.log" 2>&1 ||
  fail "psfphot simulate failed: $(tail -n 5 "$W/simulate-long.log")"
NIGHT="$W/long/night.toml"
CAT="$W/long.h5"

# stop_mid_run NAME LAUNCHER: submits, signals the batch shell as --signal=B:TERM would
# once a frame has been written, expects exit 4.
stop_mid_run() {
  local name=$1 id st
  submit "$name" --export="ALL,PSFPHOT_LAUNCHER=$2" "$JOB_SCRIPT" "$NIGHT" "$CAT"
  id=$SUBMITTED
  step "$name: job $id ($2), waiting for the first frame"
  wait_for_line "$W/$name.out" "\[[0-9]+/$N\] frame" 180 "$id"
  step "$name: scancel --batch --signal=TERM $id"
  scancel --batch --signal=TERM "$id" || fail "scancel $id failed"
  st=$(wait_done "$id" 120)
  [ "$st" = "FAILED 4:0" ] || fail "$name: job ended '$st', expected exit 4 (FAILED 4:0)"
  grep -q "^psfphot.slurm: $2 " "$W/$name.out" || fail "$name: the job did not launch with $2"
  grep -q "stop requested" "$W/$name.out" || fail "$name: psfphot did not see the stop request"
  $CHECK "$CAT" $N partial || fail "$name: catalogue check after the stop"
}
stop_mid_run stop1 srun
stop_mid_run stop2 mpirun

step "resume: sbatch --wait (srun)"
timeout 240 sbatch --wait --parsable --ntasks-per-node=2 --cpus-per-task=1 --time=10 \
  --job-name=psfphot-test-resume -o "$W/resume.out" "$JOB_SCRIPT" "$NIGHT" "$CAT" >"$W/resume.id"
rc=$?
JOBS+=("$(head -n 1 "$W/resume.id" | cut -d';' -f1)")
[ "$rc" -eq 0 ] || fail "resume: sbatch --wait returned $rc, expected 0"
grep -qE "[1-9][0-9]* already in" "$W/resume.out" || fail "resume: did not continue the catalogue"
$CHECK "$CAT" $N complete || fail "resume: catalogue check"
step "PASS"
