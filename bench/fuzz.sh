#!/usr/bin/env bash
# Fuzz psfphot's FITS reader and config parser with libFuzzer for a set time each.
#
#   bash bench/fuzz.sh [SECONDS_PER_TARGET=60] [TARGET...]     (targets: fits config)
#
# Builds the "fuzz" preset (clang, -fsanitize=fuzzer,address,undefined) in build-fuzz/,
# seeds each corpus (FITS files of every BITPIX, compressed, multi-extension, written
# with astropy; the repo's configs/*.toml and the regression inputs), runs each target
# with -max_total_time, then replays the crash inputs. A crash leaves
# build-fuzz/crashes/<target>/crash-* : fix it and copy the input to
# tests/fuzz/regressions/<target>/ (replayed by ctest fuzz.replay.<target>).
# Needs clang and libclang-rt-14-dev (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(fits config)
B=build-fuzz

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target "${TARGETS[@]/#/fuzz_}"

mkdir -p "$B/corpus/fits" "$B/corpus/config"
if [ ! -e "$B/corpus/fits/.seeded" ]; then
  /usr/bin/python3 - "$B/corpus/fits" <<'PY'
import sys, numpy as np
from astropy.io import fits
d = sys.argv[1]
rng = np.random.default_rng(1)
img = rng.normal(100, 5, (16, 12))
for bp, dt in ((8, np.uint8), (16, np.int16), (32, np.int32), (64, np.int64), (-32, np.float32), (-64, np.float64)):
    fits.PrimaryHDU(img.astype(dt)).writeto(f"{d}/bitpix{bp}.fits", overwrite=True)
h = fits.PrimaryHDU(img.astype(np.uint16)); h.header["EXPTIME"] = 30.0; h.header["GAIN"] = 1.5
h.header["DATE-OBS"] = "2026-11-23T19:00:00"; h.writeto(f"{d}/uint16-keys.fits", overwrite=True)
fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(img.astype(np.float32), name="SCI")]).writeto(f"{d}/ext.fits", overwrite=True)
fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(img.astype(np.int16), compression_type="RICE_1")]).writeto(f"{d}/rice.fits", overwrite=True)
fits.PrimaryHDU(np.zeros((2, 3, 4), np.float32)).writeto(f"{d}/cube.fits", overwrite=True)
PY
  touch "$B/corpus/fits/.seeded"
fi
cp -n configs/*.toml "$B/corpus/config/" 2>/dev/null || true

# The targets write each input to a scratch file in TMPDIR: keep it in memory.
[ -d /dev/shm ] && export TMPDIR=/dev/shm
status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "$B/crashes/$t"
  echo "== fuzz_$t for ${SECS} s"
  # malloc_limit_mb: a single allocation above 2 GiB is reported (a header must not make
  # psfphot allocate what the file cannot hold). One job on one core.
  if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=halt_on_error=1 \
      "$B/tests/fuzz/fuzz_$t" -max_total_time="$SECS" -malloc_limit_mb=2048 -rss_limit_mb=4096 \
      -timeout=20 -print_final_stats=1 -artifact_prefix="$B/crashes/$t/" \
      "$B/corpus/$t" "tests/fuzz/regressions/$t" 2>"$B/fuzz_$t.log"; then
    echo "fuzz_$t: FAILED, see $B/fuzz_$t.log and $B/crashes/$t/"
    tail -40 "$B/fuzz_$t.log"
    status=1
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|cov:" "$B/fuzz_$t.log" | tail -3
done
exit $status
