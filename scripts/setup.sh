#!/usr/bin/env bash
# Installs every Debian package psfphot's build, tests, demo and benchmarks need.
# Idempotent: does nothing when all are present. Needs root (or sudo) on Debian 12.
set -euo pipefail

PACKAGES=(
  # build
  cmake ninja-build g++ pkg-config git
  libcfitsio-dev libhdf5-openmpi-dev hdf5-tools openmpi-bin libopenmpi-dev
  libeigen3-dev libspdlog-dev libgtest-dev libtomlplusplus-dev libcli11-dev
  libpng-dev wcslib-dev libbenchmark-dev
  # checks
  clang-format clang-tidy
  # fuzzing (bench/fuzz.sh: clang + libFuzzer + LLVM's OpenMP runtime)
  clang libclang-rt-14-dev libomp-14-dev
  # tests: reading the catalogue from Python (Debian's python3, /usr/bin/python3)
  python3 python3-numpy python3-h5py python3-astropy python3-pandas
  # tests: a real single-node Slurm for jobs/
  slurm-wlm munge
  # benchmarks: peers side by side
  source-extractor python3-sep
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup.sh: done"
