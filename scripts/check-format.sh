#!/usr/bin/env bash
# Fails when any C++ file differs from clang-format's layout (.clang-format, Google based).
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.cpp' '*.hpp' 2>/dev/null || find src include tests bench -name '*.[ch]pp')
clang-format --dry-run -Werror $files
# DESIGN.md: MPI stays in farm/.
if grep -rlE '#include *<mpi\.h>|MPI_Comm' src include | grep -v '/farm/'; then
  echo "check-format.sh: MPI used outside farm/ (see docs/architecture.md)" >&2
  exit 1
fi
echo "check-format.sh: format and layering OK"
