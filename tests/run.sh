#!/usr/bin/env bash
# Configure a build directory (default: build), build with warnings as
# errors, and run the whole test suite. Extra arguments go to meson setup.
#   tests/run.sh [BUILDDIR] [meson setup options...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [ -d "$dir" ]; then
  meson setup --reconfigure "$dir" -Dwerror=true "$@"
else
  meson setup "$dir" -Dwerror=true "$@"
fi
meson compile -C "$dir"
meson test -C "$dir" --print-errorlogs --num-processes 2
