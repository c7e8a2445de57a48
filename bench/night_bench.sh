#!/usr/bin/env bash
# Night benchmark (issue: the night runner, "Speed"): frames per second of `psfphot run`
# on a simulated 32-frame 2048^2 night with 1 rank x 1 thread, 1 rank x 2 threads and
# 2 ranks x 1 thread, measured in one go (ratios, not absolute times, are the result),
# with each layout's peak RSS per rank and the catalogue writer's share of rank 0's time.
#   bash bench/night_bench.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
BUILD=${1:-build}
WORK=${2:-/tmp/psfphot-night-bench}
P=$(realpath "$BUILD/psfphot")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Open MPI 4.1's PMIx tries the munge security plugin first; with munge installed (the Slurm
# tests install it) but munged not running it retries for ~2.3 s at every mpirun, in every
# layout, before falling back to the native one (docs/performance.md, night section). The
# benchmark measures psfphot, not that: the native plugin unless the caller chose one
# (PMIX_MCA_psec= keeps PMIx's default).
export PMIX_MCA_psec=${PMIX_MCA_psec-^munge}
echo "PMIX_MCA_psec=${PMIX_MCA_psec:-(default)}"
FRAMES=${FRAMES:-32} SIZE=${SIZE:-2048} STARS=${STARS:-2000}
if [ ! -f "$WORK/night/night.toml" ]; then
  mkdir -p "$WORK"
  "$P" simulate --out "$WORK/night" --frames "$FRAMES" --size "$SIZE" --stars "$STARS" --seed 7 -q
fi
frame_mib=$(( SIZE * SIZE * 4 / 1048576 ))
printf "%-14s %8s %10s %8s %14s %12s\n" layout wall_s frames/s speedup peak_RSS_MiB writer_s
base=""
for layout in "1 1" "1 2" "2 1"; do
  set -- $layout
  ranks=$1 threads=$2
  rm -rf "$WORK/cat.h5" "$WORK/cat.h5.logs"
  t0=$(date +%s.%N)
  # mpirun binds each rank to one core by default: give a rank as many cores as threads.
  /usr/bin/time -f "%M" -o "$WORK/rss.txt" mpirun --oversubscribe --bind-to none -n "$ranks" \
    /usr/bin/time -a -f "%M" -o "$WORK/rss_ranks.txt" "$P" run "$WORK/night/night.toml" -q \
    --threads "$threads" -o "$WORK/cat.h5" 2> "$WORK/run.log" || true
  t1=$(date +%s.%N)
  wall=$(echo "$t1 - $t0" | bc -l)
  fps=$(echo "$FRAMES / $wall" | bc -l)
  [ -z "$base" ] && base=$fps
  rss=$(sort -n "$WORK/rss_ranks.txt" | tail -1); rm -f "$WORK/rss_ranks.txt"
  writer=$(grep -o "writer on rank 0: [0-9.]* s appending" "$WORK/cat.h5.logs/rank-0.log" | grep -o "[0-9.]* s" | head -1)
  printf "%-14s %8.2f %10.2f %8.2f %14d %12s\n" "${ranks}x${threads}" "$wall" "$fps" \
    "$(echo "$fps / $base" | bc -l)" "$(( rss / 1024 ))" "$writer"
done
echo "(one frame is $frame_mib MiB as float; masters add 2 such images + masks per rank)"
