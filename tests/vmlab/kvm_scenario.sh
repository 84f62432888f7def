#!/bin/bash
# Runs one KVM scenario where there is KVM: on this host when its /dev/kvm runs a guest, else the same command,
# unchanged, inside a VM-lab guest (a stock Debian kernel whose kvm_amd runs on QEMU TCG's nested SVM, 2 vCPUs).
# The assertions are the test's own, so exact counts stay exact in both places.
#
#   kvm_scenario.sh -B BUILD_DIR -v TESTVMM [-k KERNEL] [-t SECONDS] [-N NODES] [-I CPULIST] [-S] [-b BIN]... -- CMD [ARGS...]
#
#   -B  the build dir (shared read-only into the guest at the same path; CMD must live under it or be a tool)
#   -v  hvtel-testvmm, used to check that the host's KVM really runs a guest
#   -k  lab kernel (default 6.12); -t guest timeout in seconds (default 300); -b project binaries the guest needs
#       (their libraries are in the image built by lab/<kernel>/setup_image; CMD itself is added when it is one)
#   -N  NUMA nodes the scenario needs (default 1): a host with fewer runs it in the lab, on a guest with that many
#   -I  CPUs the scenario needs isolated from the scheduler's load balancing (isolcpus=CPULIST): a host whose
#       /sys/devices/system/cpu/isolated differs runs it in the lab, on a guest booted with isolcpus=CPULIST
#   -S  cpus 2 and 3 must be SMT siblings of one core: a host where they are not runs it in the lab, on a guest
#       with 4 vCPUs as two cores of two threads
#
# HVTEL_KVM_SCENARIO=lab runs the scenario in the lab even where the host has KVM (to check the lab path there);
# =host never uses the lab. `CMD --gtest_list_tests` (test discovery) always runs here.
#
# Prints where the scenario ran, and appends one line per run to BUILD_DIR/Testing/kvm-scenarios.log with the
# place, the result and every "FIGURE name=value" line the scenario printed; scripts/test.sh shows that log.
# Exit: CMD's exit code (in the lab: run.sh's, so 124 timeout, 125 guest died).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=""; VMM=""; KERNEL=6.12; TMO=300; BINS=(); NODES=1; ISOL=""; SMT=0
while getopts "B:v:k:t:b:N:I:S" o; do
  case $o in
    B) BUILD=$OPTARG ;; v) VMM=$OPTARG ;; k) KERNEL=$OPTARG ;; t) TMO=$OPTARG ;; b) BINS+=("$OPTARG") ;;
    N) NODES=$OPTARG ;; I) ISOL=$OPTARG ;; S) SMT=1 ;;
    *) sed -n '2,/^set /p' "$0" | sed '$d' >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
if [ -z "$BUILD" ] || [ -z "$VMM" ] || [ $# = 0 ]; then echo "kvm_scenario.sh: need -B, -v and a command" >&2; exit 2; fi

for a in "$@"; do
  [ "$a" = "--gtest_list_tests" ] && exec "$@"
done

name=$(basename "$1")
case $name in sh|bash) name=$(basename "${2:-$1}") ;; esac
for a in "$@"; do
  case $a in --gtest_filter=*) name=${a#--gtest_filter=} ;; esac
done

# Why the host cannot run KVM guests, or "" when it can.
host_kvm_missing() {
  if [ ! -e /dev/kvm ]; then
    local why
    why=$(dmesg 2>/dev/null | grep -m1 -o 'kvm[-a-z_]*: this kernel is itself a kvm-pvm guest; not binding')
    echo "no /dev/kvm${why:+ ($why)}"
  elif [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "/dev/kvm is not readable and writable"
  elif ! out=$("$VMM" -n 1 -k 1 2>&1); then
    echo "/dev/kvm does not run a guest: $(tail -1 <<<"$out")"
  fi
}

place=host; why=""
case ${HVTEL_KVM_SCENARIO:-} in
  lab) place=lab; why="HVTEL_KVM_SCENARIO=lab" ;;
  host) why="HVTEL_KVM_SCENARIO=host" ;;
  "") why=$(host_kvm_missing); if [ -n "$why" ]; then place=lab; else why="/dev/kvm runs a guest"; fi
      host_nodes=$(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l)
      if [ "$place" = host ] && [ "${host_nodes:-0}" -lt "$NODES" ]; then
        place=lab; why="needs $NODES NUMA nodes, the host has ${host_nodes:-0}"
      fi
      host_isol=$(cat /sys/devices/system/cpu/isolated 2>/dev/null)
      if [ "$place" = host ] && [ -n "$ISOL" ] && [ "$host_isol" != "$ISOL" ]; then
        place=lab; why="needs isolcpus=$ISOL, the host isolates '${host_isol}'"
      fi
      host_sibs=$(cat /sys/devices/system/cpu/cpu3/topology/thread_siblings_list 2>/dev/null)
      if [ "$place" = host ] && [ "$SMT" = 1 ] && [ "$host_sibs" != "2-3" ]; then
        place=lab; why="needs cpus 2,3 as SMT siblings, the host's cpu3 has '${host_sibs}'"
      fi ;;
  *) echo "kvm_scenario.sh: HVTEL_KVM_SCENARIO must be host or lab" >&2; exit 2 ;;
esac

out=$(mktemp)
trap 'rm -f "$out"' EXIT
t0=$(date +%s.%N)
if [ "$place" = host ]; then
  echo "kvm-scenario $name: on this host, $(uname -r) ($why)"
  "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  where="host $(uname -r)"
else
  kver=$(cat "${HVTEL_LAB_CACHE:-/var/cache/hvtel-lab}/img/$KERNEL/kver" 2>/dev/null || echo "$KERNEL")
  echo "kvm-scenario $name: in the VM lab, Debian $kver under TCG with nested SVM ($why)"
  args=(-n -q -k "$KERNEL" -B "$BUILD" -t "$TMO" -N "$NODES" ${ISOL:+-I "$ISOL"} $([ "$SMT" = 1 ] && echo -S) -w "$BUILD/tests/vmlab/runs/kvm/${name//[^A-Za-z0-9._-]/_}")
  for b in "${BINS[@]}"; do args+=(-b "$b"); done
  [[ $1 == "$BUILD"/* ]] && args+=(-b "$1")
  "$HERE/run.sh" "${args[@]}" -c "$(printf '%q ' "$@")" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  where="lab $kver"
fi
secs=$(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)")
figures=$(sed -n 's/^FIGURE \([A-Za-z0-9_.:-]*=[^ ]*\)$/\1/p' "$out" | tr '\n' ' ')
mkdir -p "$BUILD/Testing"
printf '%-82s %-6s %-28s rc=%-3s %6ss %s\n' "$name" "${where%% *}" "${where#* }" "$rc" "$secs" "$figures" \
  >> "$BUILD/Testing/kvm-scenarios.log"
exit "$rc"
