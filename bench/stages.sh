#!/usr/bin/env bash
# Per-stage benchmark (bench/stages_bench.cpp) on one core, with each pixel-pass stage's time
# as a multiple of the memory-copy pass measured in the same run (target: <= 4x, issue 8).
#   bash bench/stages.sh [BUILD_DIR] [extra Google Benchmark flags, e.g. --benchmark_filter=4096]
#   env: CPU (0), REPS (3: repetitions, the median is used)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
shift || true
CPU=${CPU:-0} REPS=${REPS:-3}
EXE=$(realpath "$BUILD/bench/stages_bench")
JSON=$(mktemp /tmp/psfphot-stages-XXXXXX.json)
trap 'rm -f "$JSON"' EXIT
echo "stages_bench on CPU $CPU, $REPS repetitions (median); load: $(cut -d' ' -f1-3 /proc/loadavg)"
OMP_NUM_THREADS=1 taskset -c "$CPU" "$EXE" --benchmark_repetitions="$REPS" \
  --benchmark_report_aggregates_only=true --benchmark_out="$JSON" --benchmark_out_format=json \
  --benchmark_format=console "$@" >&2
/usr/bin/python3 "$HERE/peers/stages_table.py" "$JSON"
