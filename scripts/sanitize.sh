#!/bin/bash
# Builds the unit tests with AddressSanitizer and UndefinedBehaviorSanitizer into build-asan/ and runs them.
# Part of scripts/test.sh (the README's test command); alone:  ./scripts/sanitize.sh [ctest options]
# Any finding fails the test that triggered it (halt_on_error for both).
set -euo pipefail
cd "$(dirname "$0")/.."
flags="-fsanitize=address,undefined -fno-omit-frame-pointer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build build-asan -j"$(nproc)" --target unit-tests
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:strict_string_checks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
cd build-asan
exec ctest --output-on-failure --timeout 300 -L unit "$@"
