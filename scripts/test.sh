#!/bin/bash
# Sets up a fresh Debian 12 machine, builds hvtel and runs the whole test
# suite: the unit tests under ASan+UBSan (scripts/sanitize.sh), a short run of
# every fuzz target (scripts/fuzz.sh), clang-tidy over agent/ (scripts/tidy.sh),
# then unit, privileged (real KVM, libvirtd, OVS, Prometheus) and the VM lab.
#   sudo ./scripts/test.sh [ctest options, e.g. -L unit]   (options: no sanitizer, fuzz or tidy stage)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
sanitize_rc=0
fuzz_rc=0
tidy_rc=0
if [ $# = 0 ]; then
  ./scripts/sanitize.sh || sanitize_rc=$?
  ./scripts/fuzz.sh 20 || fuzz_rc=$?
fi
./scripts/build.sh
if [ $# = 0 ]; then
  ./scripts/tidy.sh || tidy_rc=$?
fi
# Classic tracepoints and the lab's tracefs checks need tracefs; BPF needs bpffs.
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
cd build
# KVM scenarios append where they ran (this host or the VM lab) and their figures here.
rm -f Testing/kvm-scenarios.log
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
ctest --output-on-failure --timeout 900 "$@" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
if [ -s Testing/kvm-scenarios.log ]; then
  echo
  echo "Where each KVM scenario ran (tests/vmlab/kvm_scenario.sh): scenario, place, kernel, exit code, seconds, figures"
  cat Testing/kvm-scenarios.log
  echo
  sed -n '/tests passed, /,$p' "$log"   # ctest's summary once more, as the closing lines
fi
if [ "$sanitize_rc" != 0 ]; then
  echo "FAILED: the unit tests under ASan+UBSan (scripts/sanitize.sh, above) exited $sanitize_rc"
  [ "$rc" != 0 ] || rc=$sanitize_rc
fi
if [ "$fuzz_rc" != 0 ]; then
  echo "FAILED: the fuzz targets (scripts/fuzz.sh 20, above) exited $fuzz_rc"
  [ "$rc" != 0 ] || rc=$fuzz_rc
fi
if [ "$tidy_rc" != 0 ]; then
  echo "FAILED: clang-tidy (scripts/tidy.sh, above) exited $tidy_rc"
  [ "$rc" != 0 ] || rc=$tidy_rc
fi
exit "$rc"
