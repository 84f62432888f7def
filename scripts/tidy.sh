#!/bin/bash
# Runs clang-tidy (the checks in .clang-tidy) over every agent/ source of the
# build in build/ (it needs the generated BPF skeletons and compile_commands.json).
# Part of scripts/test.sh; alone, after scripts/build.sh:  ./scripts/tidy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tidy=$(command -v clang-tidy-19 || true)
runner=$(command -v run-clang-tidy-19 || true)
if [ -z "$tidy" ] || [ -z "$runner" ]; then
  echo "tidy: clang-tidy-19 is not installed (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
[ -f build/compile_commands.json ] || { echo "tidy: build/compile_commands.json missing: run scripts/build.sh first" >&2; exit 1; }
# GCC-only warning flags in the compile commands mean nothing to clang, and
# clang 19 flags libstdc++ 12's own use of get_temporary_buffer (std::stable_sort).
exec "$runner" -clang-tidy-binary "$tidy" -p build -quiet -j "$(nproc)" \
  -extra-arg=-Wno-unknown-warning-option -extra-arg=-Wno-deprecated-declarations "$PWD/agent/.*\.cpp$"
