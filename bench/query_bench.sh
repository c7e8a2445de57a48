#!/usr/bin/env bash
# Query benchmark (issue 6): `psfphot query --frame` on a 10-million-row catalogue.
# Builds the catalogue once with `query_bench make` (CatalogueWriter directly, 5000 frames
# of 2000 stars, finalized = compressed like a finished night), then times the real
# command (process start, open, /frames index, the frame's rows, CSV out) for frames at
# the start, middle and end, first run and warm repeats; plus a --where query and the
# in-process Google Benchmark. Results: docs/query.md.
#   bash bench/query_bench.sh [BUILD_DIR] [WORK_DIR]      ROWS=... PER_FRAME=... to change
set -euo pipefail
BUILD=${1:-build}
WORK=${2:-/tmp/psfphot-query-bench}
ROWS=${ROWS:-10000000} PER_FRAME=${PER_FRAME:-2000}
cmake --build "$BUILD" --target psfphot query_bench > /dev/null
P=$(realpath "$BUILD/psfphot")
Q=$(realpath "$BUILD/bench/query_bench")
CAT="$WORK/query_${ROWS}.h5"
mkdir -p "$WORK"
if [ ! -f "$CAT" ]; then
  "$Q" make "$CAT" "$ROWS" "$PER_FRAME"
fi
frames=$(( (ROWS + PER_FRAME - 1) / PER_FRAME ))
echo "catalogue: $CAT ($(du -m "$CAT" | cut -f1) MB, $ROWS rows, $frames frames)"
ms() {  # wall time of one command, ms
  local t0 t1
  t0=$(date +%s%N); "$@" > /dev/null; t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
printf "%-46s %8s %s\n" query first_ms "warm_ms (5 runs)"
for f in 0 $(( frames / 2 )) $(( frames - 1 )); do
  args="--frame $f --format csv"
  first=$(ms "$P" query "$CAT" $args)
  warm=""
  for _ in 1 2 3 4 5; do warm="$warm $(ms "$P" query "$CAT" $args)"; done
  printf "%-46s %8s %s\n" "query $args" "$first" "$warm"
done
mid=$(( frames / 2 ))
warm=""
for _ in 1 2 3 4 5; do
  warm="$warm $(ms "$P" query "$CAT" --frame "$mid" --where "psf_flux > 50000 and (flags & crowded) == 0" --sort snr:desc --format json)"
done
printf "%-46s %8s %s\n" "query --frame $mid --where ... --sort snr:desc" "-" "$warm"
"$P" query "$CAT" --frame "$mid" --format csv --stats -o /dev/null
warm=""
for _ in 1 2 3; do warm="$warm $(ms "$P" info "$CAT")"; done
printf "%-46s %8s %s\n" "info (reads /frames only)" "-" "$warm"
PSFPHOT_QUERY_CAT="$CAT" "$Q" --benchmark_min_time=0.5
