#!/bin/bash
# Builds the libFuzzer targets of fuzz/ into build-fuzz/ and runs each for a bounded time, one at a
# time, from a copy of its seed corpus (the tree is never written to). Any crash, leak, UBSan report,
# timeout or out-of-memory fails the run; the input is kept and its path printed.
#   ./scripts/fuzz.sh [SECONDS per target, default 30] [TARGET...]   (TARGET: nova_conf, domain_xml, ...)
# Part of scripts/test.sh (20 s per target). docs/testing.md, "Fuzzing", lists the targets.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
shift || true

# clang >= 16 with its libFuzzer runtime: clang 14 cannot compile libstdc++'s std::expected (see
# fuzz/instrument.cmake). Debian 12 packages, installed here until scripts/install-deps.sh lists them.
if ! command -v clang++-16 >/dev/null || [ ! -e /usr/lib/llvm-16/lib/clang/16/lib/linux/libclang_rt.fuzzer-x86_64.a ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends clang-16 libclang-rt-16-dev >/dev/null
fi
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16 \
  -DHVTEL_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz-targets

targets=("$@")
if [ ${#targets[@]} = 0 ]; then
  for f in fuzz/*_fuzz.cpp; do
    f=${f#fuzz/}
    targets+=("${f%_fuzz.cpp}")
  done
fi

rc=0
summary=()
for t in "${targets[@]}"; do
  work=$(mktemp -d "/tmp/hvtel-fuzz-$t.XXXXXX")
  cp -r "fuzz/corpus/$t" "$work/corpus"
  args=(-max_total_time="$secs" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 -artifact_prefix="$work/")
  for dict in "fuzz/$t.dict" "fuzz/${t%%_*}.dict"; do  # the target's, else its area's (ovsdb.dict)
    if [ -f "$dict" ]; then
      args+=(-dict="$dict")
      break
    fi
  done
  echo "== $t: ${secs} s"
  t_rc=0
  "build-fuzz/fuzz/${t}_fuzz" "${args[@]}" "$work/corpus" >"$work/log" 2>&1 || t_rc=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: //p' "$work/log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: //p' "$work/log")
  cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\).*/cov \1, ft \2, corpus \3/p' <<<"$done_line")
  if [ "$t_rc" = 0 ]; then
    summary+=("$(printf '%-18s %4s s  %10s execs  %6s exec/s  %s  no finding' "$t" "$secs" "$execs" "$rate" "$cov")")
    rm -rf "$work"
  else
    rc=1
    grep -E -A30 '^==[0-9]+==ERROR|runtime error|^SUMMARY' "$work/log" | head -60 || tail -40 "$work/log"
    summary+=("$(printf '%-18s FINDING (exit %s): %s' "$t" "$t_rc" "$(ls "$work" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | sed "s|^|$work/|" | tr '\n' ' ')")")
  fi
  echo "   ${summary[-1]}"
done

echo
echo "Fuzzing (scripts/fuzz.sh, $secs s per target):"
printf '  %s\n' "${summary[@]}"
exit "$rc"
