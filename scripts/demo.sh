#!/usr/bin/env bash
# Demo on a fresh Debian 12 machine, no data needed: install, build, simulate a small
# night (raw frames + darks + flats + truth), run the main job on two MPI ranks into one
# HDF5 catalogue, then show what is in it and score one of its frames against the truth.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
DEMO=${DEMO_DIR:-demo-night}
P=./build/psfphot
$P --version
if [ ! -f "$DEMO/night.toml" ]; then
  $P simulate --out "$DEMO" --frames 8 --size 1024 --stars 600 --seed 1
fi
# PMIx's munge plugin retries ~2.3 s when munge is installed but munged is not running
# (docs/clusters.md); one node needs no munge.
export PMIX_MCA_psec=${PMIX_MCA_psec-^munge}
mpirun --oversubscribe -n 2 $P run "$DEMO/night.toml" --overwrite --threads 1
echo
echo "== the catalogue ($DEMO/catalogue.h5), read back with Python's h5py =="
/usr/bin/python3 - "$DEMO/catalogue.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    fr, st = f["frames"][:], f["stars"]
    print(f"{len(fr)} frames, {st.shape[0]} stars")
    for r in fr:
        print(f"  frame {r['frame_id']:2d} {r['status_name'].decode():<8} {r['n_stars']:5d} stars  "
              f"PSF sigma {r['psf_sigma_px']:.2f} px  sky {r['sky_adu']:.1f} ADU  {r['total_ms']:.0f} ms")
PY
echo
echo "== frame 0 of the catalogue against the simulator's truth (psfphot score) =="
$P score "$DEMO/catalogue.h5" "$DEMO/truth/sci_0000.csv" --frame sci_0000
