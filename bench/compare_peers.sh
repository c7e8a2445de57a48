#!/usr/bin/env bash
# psfphot frame vs SExtractor 2.25 (calibration + extraction) vs a SEP/numpy pipeline on the
# same simulated raw frame, single core, runs alternated, median wall time and peak RSS per
# peer, the ratios, and each peer's accuracy through `psfphot score` (issue 8).
#   bash bench/compare_peers.sh [BUILD_DIR] [WORK_DIR]
#   env: SIZE (4096) STARS (8000) RUNS (5) CPU (0) SEED (11) BASELINE (an older psfphot)
# Every peer gets the same raw frame and the same master dark and flat (built once by
# `psfphot master`, not timed). psfphot: `psfphot frame --threads 1`. SExtractor: the frame
# calibrated by bench/peers/calibrate.py (numpy/astropy; SExtractor cannot), then
# `source-extractor` with a 0/1 weight map for masked pixels, FLUX_AUTO, XWIN/YWIN; its time
# is the sum of both processes, its RSS the larger. SEP: bench/peers/sep_pipeline.py. All
# under `taskset -c $CPU` with OMP_NUM_THREADS=1 (and single-threaded BLAS).
# Definitions (wall, RSS, accuracy columns) follow ../shared/peers/README.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
WORK=${2:-/tmp/psfphot-compare-peers}
P=$(realpath "$BUILD/psfphot")
PY=/usr/bin/python3
SIZE=${SIZE:-4096} STARS=${STARS:-8000} RUNS=${RUNS:-5} CPU=${CPU:-0} SEED=${SEED:-11}
SEX=$(command -v source-extractor || command -v sex || true)
[ -n "$SEX" ] || { echo "source-extractor not found (apt-get install source-extractor)" >&2; exit 2; }
$PY -c "import sep, astropy" 2>/dev/null || { echo "need python3-sep python3-astropy" >&2; exit 2; }
SEXSHARE=/usr/share/source-extractor

export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
D="$WORK/sim_${SIZE}_${STARS}_${SEED}"
if [ ! -f "$D/mflat.fits" ]; then
  rm -rf "$D"
  "$P" simulate --out "$D" --frames 1 --size "$SIZE" --stars "$STARS" --seed "$SEED" -q >/dev/null
  "$P" master dark "$D"/darks/*.fits -o "$D/mdark.fits" >/dev/null
  "$P" master flat "$D"/flats/*.fits --dark "$D/mdark.fits" -o "$D/mflat.fits" >/dev/null
fi
SCI="$D/science/sci_0000.fits" TRUTH="$D/truth/sci_0000.csv"
OUT="$WORK/out"
mkdir -p "$OUT"

# SExtractor's configuration: defaults except the catalogue, a Gaussian filter matched to
# the PSF (sigma 2 px: FWHM 4.7 px), the gain/saturation keys of the raw frame, and the
# weight map.
cat > "$OUT/sex.conv" < "$SEXSHARE/gauss_4.0_7x7.conv"
SEXCMD=("$SEX" "$OUT/cal.fits" -c "$SEXSHARE/default.sex"
  -PARAMETERS_NAME "$HERE/peers/sextractor.param" -FILTER_NAME "$OUT/sex.conv"
  -STARNNW_NAME "$SEXSHARE/default.nnw" -CATALOG_TYPE ASCII_HEAD -CATALOG_NAME "$OUT/sex.cat"
  -WEIGHT_TYPE MAP_WEIGHT -WEIGHT_IMAGE "$OUT/weight.fits" -GAIN_KEY GAIN
  -SATUR_KEY SATURATE -DETECT_MINAREA 5 -VERBOSE_TYPE QUIET -NTHREADS 1)

# timed NAME CMD...: appends "wall_s rss_kb user_s sys_s" to $OUT/NAME.times. The wall time
# is taken from bash's EPOCHREALTIME (microseconds) around the command: /usr/bin/time's %e has
# 10 ms steps, +-4% of psfphot's ~0.26 s, as much as the margins being measured. It includes
# starting /usr/bin/time and taskset (~1-2 ms per process, for every peer alike; SExtractor's
# two processes pay it twice). CPU times and RSS come from /usr/bin/time.
timed() {
  local name=$1
  shift
  local t0=$EPOCHREALTIME
  /usr/bin/time -f "%M %U %S" -o "$OUT/$name.t" taskset -c "$CPU" "$@" >"$OUT/$name.log" 2>&1 ||
    { echo "$name failed:" >&2; tail -5 "$OUT/$name.log" >&2; exit 1; }
  local t1=$EPOCHREALTIME
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }') $(tail -1 "$OUT/$name.t")" \
    >>"$OUT/$name.times"
}

rm -f "$OUT"/*.times "$OUT"/*.json
echo "frame ${SIZE}x${SIZE}, ${STARS} stars, $RUNS runs alternated on CPU $CPU; load: $(cut -d' ' -f1-3 /proc/loadavg)"
# psfphot_thp: the same psfphot run with glibc asked to back its large allocations with
# transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1): on VMs where a page fault
# is expensive, first-touching fresh frame-sized images dominates (docs/performance.md).
# BASELINE=/path/to/older/psfphot adds that binary as one more peer (before/after in one run).
# psfphot_deep: configs/deep.toml (the 5-sigma threshold, S/N ~7 at 50% completeness): the
# defaults detect to S/N ~12 (0-2 false detections per frame), SExtractor to ~10, SEP to ~6,
# so the speed ratios are given at both depths.
peers=(psfphot sextractor sep psfphot_thp psfphot_deep)
[ -n "${BASELINE:-}" ] && peers+=(baseline)
np=${#peers[@]}
for ((r = 0; r < RUNS; r++)); do
  # Rotate the order each run so no peer always follows the same one (caches, turbo, load).
  for ((k = 0; k < np; k++)); do
    case ${peers[$(((k + r) % np))]} in
      psfphot)
        timed psfphot "$P" frame "$SCI" --dark "$D/mdark.fits" --flat "$D/mflat.fits" \
          --threads 1 -o "$OUT/psfphot.csv" --overwrite ;;
      psfphot_deep)
        timed psfphot_deep "$P" frame "$SCI" --dark "$D/mdark.fits" --flat "$D/mflat.fits" \
          --config "$HERE/../configs/deep.toml" --threads 1 -o "$OUT/psfphot_deep.csv" --overwrite ;;
      baseline)
        timed baseline "$BASELINE" frame "$SCI" --dark "$D/mdark.fits" --flat "$D/mflat.fits" \
          --threads 1 -o "$OUT/baseline.csv" --overwrite ;;
      psfphot_thp)
        timed psfphot_thp env GLIBC_TUNABLES=glibc.malloc.hugetlb=1 "$P" frame "$SCI" \
          --dark "$D/mdark.fits" --flat "$D/mflat.fits" --threads 1 -o "$OUT/psfphot_thp.csv" \
          --overwrite ;;
      sextractor)
        timed sex_cal "$PY" "$HERE/peers/calibrate.py" "$SCI" "$D/mdark.fits" "$D/mflat.fits" \
          "$OUT/cal.fits" "$OUT/weight.fits"
        timed sex_extract "${SEXCMD[@]}" ;;
      sep)
        timed sep "$PY" "$HERE/peers/sep_pipeline.py" "$SCI" "$D/mdark.fits" "$D/mflat.fits" \
          -o "$OUT/sep.csv" ;;
    esac
  done
  echo "  run $((r + 1))/$RUNS done; load $(cut -d' ' -f1 /proc/loadavg)"
done

# SExtractor ASCII_HEAD -> CSV (1-based XWIN/YWIN; score is told --one-based).
awk '/^#/ {n[++k] = $3; next} !h {for (i = 1; i <= k; i++) printf "%s%s", n[i], (i < k ? "," : "\n"); h = 1}
     {for (i = 1; i <= NF; i++) printf "%s%s", $i, (i < NF ? "," : "\n")}' "$OUT/sex.cat" >"$OUT/sex.csv"
"$P" score "$OUT/psfphot.csv" "$TRUTH" --json "$OUT/psfphot.json" >/dev/null
"$P" score "$OUT/psfphot_deep.csv" "$TRUTH" --json "$OUT/psfphot_deep.json" >/dev/null
"$P" score "$OUT/sex.csv" "$TRUTH" --one-based --json "$OUT/sex.json" >/dev/null
"$P" score "$OUT/sep.csv" "$TRUTH" --json "$OUT/sep.json" >/dev/null

"$PY" "$HERE/peers/summarise.py" "$OUT"
