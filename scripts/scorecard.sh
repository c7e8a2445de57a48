#!/usr/bin/env bash
# The scorecard of docs/scorecard.md on several simulated 4096^2 frames (one per seed):
# simulate, build the masters, run `psfphot frame`, score against the truth, and print one
# line per seed (false detections, completeness of clean stars with S/N > 20, S/N at 50%
# completeness, centroid rms / bound and flux scatter / bound in the bins 20-50, 50-100,
# 100-300, 300-1000, >= 1000). The targets of issue 3: completeness >= 0.995, false
# detections <= 2, rms/bound <= 1.15, scatter/bound <= 1.10.
#
#   bash scripts/scorecard.sh [seed ...]          (default seeds 11 12 13; ~20 s per seed)
#   PSFPHOT=build-other/psfphot WORK=/tmp/sc bash scripts/scorecard.sh 11
#
# The frames are kept in $WORK (default ./scorecard-work) and reused when present.
set -euo pipefail
cd "$(dirname "$0")/.."
P=${PSFPHOT:-./build/psfphot}
WORK=${WORK:-scorecard-work}
SIZE=${SIZE:-4096}
STARS=${STARS:-8000}
[ -x "$P" ] || { echo "scorecard.sh: $P not found (bash scripts/build.sh first)" >&2; exit 2; }
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(11 12 13)
mkdir -p "$WORK"
printf '%-5s %6s %7s %6s  %-29s  %s\n' seed false compl S/N50 "rms/bound 20-50 .. >=1000" \
  "scatter/bound 20-50 .. >=1000"
for s in "${seeds[@]}"; do
  d="$WORK/sim$s"
  if [ ! -f "$d/science/sci_0000.fits" ]; then
    "$P" simulate --overwrite --out "$d" --frames 1 --size "$SIZE" --stars "$STARS" --seed "$s" \
      >"$WORK/simulate$s.log" 2>&1 || { cat "$WORK/simulate$s.log" >&2; exit 1; }
  fi
  [ -f "$d/mdark.fits" ] || "$P" master dark "$d"/darks/*.fits -o "$d/mdark.fits" >/dev/null
  [ -f "$d/mflat.fits" ] ||
    "$P" master flat "$d"/flats/*.fits --dark "$d/mdark.fits" -o "$d/mflat.fits" >/dev/null
  "$P" frame "$d/science/sci_0000.fits" --dark "$d/mdark.fits" --flat "$d/mflat.fits" \
    -o "$d/stars.csv" --overwrite >/dev/null
  "$P" score "$d/stars.csv" "$d/truth/sci_0000.csv" --json "$d/score.json" >/dev/null
  /usr/bin/python3 - "$s" "$d/score.json" <<'PY'
import json, sys
seed, path = sys.argv[1], sys.argv[2]
j = json.load(open(path))
bins = [b for b in j["bins"] if b["snr_min"] >= 20]
r = "/".join(f"{b['centroid_rms_over_bound']:.2f}" for b in bins)
f = "/".join(f"{b['flux_scatter_over_bound']:.2f}" for b in bins)
print(f"{seed:<5} {j['counts']['n_false']:6d} {j['headline']['completeness_clean']:7.3f} "
      f"{j['snr_at_50pct_completeness']:6.2f}  {r:<29}  {f}")
PY
done
