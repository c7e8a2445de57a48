#!/usr/bin/env bash
# Two builds of psfphot alternated on one night, 1 rank then 2 ranks (one thread each),
# REPS times: the whole-run wall time of each run and rank 0's masters time, one line per
# run, then medians. For a shared machine, where a single night_bench.sh run is noise:
#   bash bench/night_ab.sh OLD_BUILD NEW_BUILD NIGHT.toml [REPS] [WORK_DIR]
# (e.g. chrt -f 5 bash bench/night_ab.sh old build /tmp/psfphot-night-bench/night/night.toml 6)
set -euo pipefail
A=$(realpath "$1")/psfphot B=$(realpath "$2")/psfphot NIGHT=$3 REPS=${4:-5}
WORK=${5:-/tmp/psfphot-night-ab}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export PMIX_MCA_psec=${PMIX_MCA_psec-^munge}  # see night_bench.sh
mkdir -p "$WORK"
: > "$WORK/runs.txt"
for i in $(seq "$REPS"); do
  for p in "$A" "$B"; do
    for n in 1 2; do
      rm -rf "$WORK/cat.h5" "$WORK/cat.h5.logs"
      t0=$(date +%s.%N)
      mpirun --oversubscribe --bind-to none -n "$n" "$p" run "$NIGHT" -q --threads 1 \
        -o "$WORK/cat.h5" 2> /dev/null || true
      t1=$(date +%s.%N)
      m=$(grep -o "([0-9.]* s on" "$WORK/cat.h5.logs/rank-0.log" | grep -o "[0-9.]*" | head -1 || true)
      echo "$p ${n}x1 $(echo "$t1 - $t0" | bc -l) ${m:-na}" | tee -a "$WORK/runs.txt"
    done
  done
done
python3 - "$WORK/runs.txt" << 'PY'
import statistics as st, sys
d = {}
for line in open(sys.argv[1]):
    p, lay, wall, _ = line.split()
    d.setdefault(p, {}).setdefault(lay, []).append(float(wall))
for p, v in d.items():
    a, b = v["1x1"], v["2x1"]
    r = [x / y for x, y in zip(a, b)]
    print(f"{p}: 1x1 {st.median(a):.2f} ({min(a):.2f}-{max(a):.2f}) s, 2x1 {st.median(b):.2f} "
          f"({min(b):.2f}-{max(b):.2f}) s, 2x1 vs 1x1 {st.median(r):.2f} ({min(r):.2f}-{max(r):.2f})")
PY
