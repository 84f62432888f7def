#!/bin/bash
# Run a command or script inside a throw-away VM-lab guest (stock Debian kernel under QEMU TCG).
#
#   run.sh [options] -c 'shell command'
#   run.sh [options] script.sh
#
#   -k KERNEL    6.1 | 6.12 | exact ABI name (default 6.1); the image comes from mkimage.sh
#   -B DIR       build dir shared read-only at the same absolute path in the guest (default: none)
#   -b BIN       project binary (relative to -B or absolute) whose shared libraries the image must carry;
#                repeatable; passed on to mkimage.sh
#   -e NAME=VAL  environment for the command (repeatable)
#   -f FILE      a host file the command needs that the image does not carry (e.g. a 50 MB Prometheus),
#                handed in through the run share as /lab/run/files/<name>, $LAB_FILES in the guest (repeatable)
#   -t SECONDS   timeout for the whole guest run (default 300)
#   -N NODES     NUMA nodes of the guest (1 or 2; default 1): with 2, vCPU n and half the memory on node n
#   -I CPULIST   boot the guest with isolcpus=CPULIST (no load balancing onto or off those CPUs)
#   -S           SMT: 4 vCPUs as two cores of two threads (cpus 0,1 and 2,3 are siblings) instead of 2 cores
#   -w DIR       work dir (default: a fresh temp dir). Holds console.log, output.log, qemu.log and run/out/
#                (whatever the command writes to $LAB_OUT; *.prom files there are linted with the host's
#                promtool). Removed on success unless -K.
#   -K           keep the work dir
#   -n           never build the image (ctest mode: the lab_image fixture built it); missing image = cannot run
#   -q           no progress lines on stderr
#
# stdout: the command's stdout+stderr. Exit code: the command's, or 124 timeout, 125 guest died, 77 cannot
# run here (no qemu/image/binary) unless CI=true, where that is 1. On failure the console log tail is printed
# and the work dir kept.
#
# Inside the guest the command runs with tests/vmlab/lib.sh sourced, in /tmp, as root, with
# LAB_KERNEL, LAB_KVER, LAB_OUT (=/lab/run/out, copied back), BUILD_DIR, IP (=/usr/bin/ip) and the -e vars.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${HVTEL_LAB_CACHE:-/var/cache/hvtel-lab}
KERNEL=6.1; BUILD=""; BINS=(); ENVS=(); FILES=(); TMO=300; WORK=""; KEEP=0; NOBUILD=0; QUIET=0; CMD=""; NODES=1
ISOL=""; SMP=(-smp 2)
while getopts "k:B:b:e:f:t:w:N:I:SKnqc:" o; do
  case $o in
    k) KERNEL=$OPTARG ;; B) BUILD=$OPTARG ;; b) BINS+=("$OPTARG") ;; e) ENVS+=("$OPTARG") ;; f) FILES+=("$OPTARG") ;;
    N) NODES=$OPTARG ;; I) ISOL=$OPTARG ;; S) SMP=(-smp 4,sockets=1,cores=2,threads=2) ;;
    t) TMO=$OPTARG ;; w) WORK=$OPTARG ;; K) KEEP=1 ;; n) NOBUILD=1 ;; q) QUIET=1 ;; c) CMD=$OPTARG ;;
    *) sed -n '2,/^set /p' "$0" | sed '$d' >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
SCRIPT=${1:-}
if [ -z "$CMD" ] && [ -z "$SCRIPT" ]; then echo "run.sh: need -c CMD or a script" >&2; exit 2; fi
# Two nodes for the NUMA scenarios (PV11): one vCPU and half the memory each, from explicit memory backends
# (QEMU no longer splits memory between nodes by itself).
NUMA=()
case $NODES in
  1) ;;
  2) NUMA=(-object memory-backend-ram,id=m0,size=512M -object memory-backend-ram,id=m1,size=512M
           -numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1) ;;
  *) echo "run.sh: -N must be 1 or 2" >&2; exit 2 ;;
esac
[[ -z $ISOL || $ISOL =~ ^[0-9,-]+$ ]] || { echo "run.sh: -I takes a cpu list" >&2; exit 2; }

say() { [ "$QUIET" = 1 ] || echo "lab[$KERNEL]: $*" >&2; }
cannot() {
  echo "lab[$KERNEL]: cannot run: $*" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  exit 77
}

command -v qemu-system-x86_64 >/dev/null || cannot "qemu-system-x86_64 not installed"
[ -n "$BUILD" ] && BUILD=$(realpath "$BUILD")
ABS_BINS=()
for b in "${BINS[@]}"; do
  [[ $b == /* ]] || b=$BUILD/$b
  [ -x "$b" ] || cannot "$b is not built"
  ABS_BINS+=("$b")
done

IMG=$CACHE/img/$KERNEL
if [ "$NOBUILD" = 0 ]; then
  margs=(-k "$KERNEL"); [ "$QUIET" = 1 ] && margs+=(-q)
  for b in "${ABS_BINS[@]}"; do margs+=(-b "$b"); done
  "$HERE/mkimage.sh" "${margs[@]}" >/dev/null
  rc=$?; [ $rc = 0 ] || exit $rc
fi
[ -f "$IMG/initrd" ] && [ -f "$IMG/vmlinux" ] || cannot "no lab image in $IMG (run tests/vmlab/mkimage.sh -k $KERNEL)"

if [ -n "$WORK" ]; then rm -rf "$WORK"; mkdir -p "$WORK"; else WORK=$(mktemp -d "${TMPDIR:-/tmp}/hvlab.XXXXXX"); fi
WORK=$(realpath "$WORK")
RUN=$WORK/run
mkdir -p "$RUN/out"
cp "$HERE/lib.sh" "$RUN/lib.sh"
if [ ${#FILES[@]} -gt 0 ]; then
  mkdir -p "$RUN/files"
  for f in "${FILES[@]}"; do
    [ -f "$f" ] || cannot "$f not found"
    cp "$f" "$RUN/files/" || cannot "cannot copy $f"   # a copy: the share is writable
  done
fi
if [ -n "$SCRIPT" ]; then cp "$SCRIPT" "$RUN/case.sh"; else printf '%s\n' "$CMD" > "$RUN/case.sh"; fi
# The guest's /init runs cmd.sh in its own sh: a case may simply `exit`, init still reports the code.
printf '. /lab/run/lib.sh\n. /lab/run/case.sh\n' > "$RUN/cmd.sh"
{
  q() { printf "%s=%q\n" "$1" "$2"; }   # bash quoting busybox sh understands for plain strings
  q LAB_KERNEL "$KERNEL"; q LAB_KVER "$(cat "$IMG/kver")"; q LAB_OUT /lab/run/out; q LAB_FILES /lab/run/files
  q HVLAB_BUILD_DIR "$BUILD"; q BUILD_DIR "$BUILD"; q IP /usr/bin/ip; q CI "${CI:-}"
  for e in "${ENVS[@]}"; do q "${e%%=*}" "${e#*=}"; done
  echo "export LAB_KERNEL LAB_KVER LAB_OUT LAB_FILES BUILD_DIR IP CI"
  for e in "${ENVS[@]}"; do echo "export ${e%%=*}"; done
} > "$RUN/guest.env"

# Hard links (a copy across file systems) under a shared lock: mkimage.sh, run concurrently by another job with
# the exclusive lock, may replace the image, and this run keeps the one it checked.
(
  flock -s 9
  ln -f "$IMG/vmlinux" "$WORK/vmlinux" 2>/dev/null || cp "$IMG/vmlinux" "$WORK/vmlinux"
  ln -f "$IMG/initrd" "$WORK/initrd" 2>/dev/null || cp "$IMG/initrd" "$WORK/initrd"
) 9>"$CACHE/lock" || cannot "cannot take the image from $IMG"

SHARES=(-virtfs "local,path=$RUN,mount_tag=run,security_model=none,id=run")
[ -n "$BUILD" ] && SHARES+=(-virtfs "local,path=$BUILD,mount_tag=build,security_model=none,readonly=on,id=build")

say "booting $(cat "$IMG/kver") (timeout ${TMO}s, work dir $WORK)"
T0=$(date +%s.%N)
# TCG thread mode: "single" by default. On the 2-core CI machine it was as fast as "multi" or faster (hvtel_exits
# 13 s vs 16-24 s with other jobs running), and it avoids a multi-threaded TCG race seen once in ~50 boots: a
# guest oops "int3" in an arbitrary kernel function while the kernel live-patches its text (static keys,
# text_poke_bp). HVTEL_LAB_TCG_THREAD=multi switches back.
timeout --kill-after=5 "$TMO" qemu-system-x86_64 \
  -accel tcg,thread=${HVTEL_LAB_TCG_THREAD:-single} -cpu max "${SMP[@]}" -m 1024 "${NUMA[@]}" \
  -nographic -nodefaults -no-user-config -no-reboot -monitor none -net none \
  -name guest=hvlab,debug-threads=on \
  -serial "file:$WORK/console.log" -serial "file:$WORK/output.log" "${SHARES[@]}" \
  -kernel "$WORK/vmlinux" -initrd "$WORK/initrd" \
  -append "console=ttyS0 quiet loglevel=4 panic=-1 oops=panic rdinit=/init${ISOL:+ isolcpus=$ISOL}" > "$WORK/qemu.log" 2>&1
QRC=$?
WALL=$(printf '%.1f' "$(echo "$(date +%s.%N) - $T0" | bc)")

tr -d '\r' < "$WORK/output.log" > "$WORK/output.txt"
RCLINE=$(grep -a '^HVLAB-RC=' "$WORK/output.txt" | tail -1)
grep -av '^HVLAB-RC=' "$WORK/output.txt"
if [ -n "$RCLINE" ]; then
  RC=$(sed 's/^HVLAB-RC=\([0-9]*\).*/\1/' <<<"$RCLINE")
elif [ $QRC = 124 ] || [ $QRC = 137 ]; then
  RC=124
else
  RC=125
fi
UP=$(sed -n 's/.*uptime=\([0-9.]*\).*/\1/p' <<<"$RCLINE")
say "rc=$RC wall=${WALL}s guest-uptime=${UP:-?}s"
# promtool (48 MB) stays out of the image: scrapes a case saved as $LAB_OUT/*.prom are linted here instead.
if [ "$RC" = 0 ] && command -v promtool >/dev/null; then
  for f in "$RUN"/out/*.prom; do
    [ -f "$f" ] || continue
    if lint=$(promtool check metrics < "$f" 2>&1); then say "promtool check metrics $(basename "$f"): ok"
    else echo "FAIL: promtool check metrics $(basename "$f"):"; echo "$lint"; RC=1; fi
  done
fi
if [ "$RC" = 77 ] && [ "${CI:-}" = "true" ]; then
  echo "lab[$KERNEL]: the command skipped (77), which is a failure in CI" >&2
  RC=1
fi
if [ "$RC" != 0 ] && [ "$RC" != 77 ]; then
  case $RC in 124) why="timeout after ${TMO}s" ;; 125) why="guest died without reporting (qemu rc=$QRC)" ;;
              *) why="command failed" ;; esac
  echo "lab[$KERNEL]: FAILED rc=$RC: $why; console tail ($WORK/console.log):" >&2
  tr -d '\r' < "$WORK/console.log" | tail -25 >&2
  [ -s "$WORK/qemu.log" ] && { echo "--- qemu.log" >&2; cat "$WORK/qemu.log" >&2; }
  KEEP=1
fi
rm -f "$WORK/vmlinux" "$WORK/initrd"
if [ "$KEEP" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
exit "$RC"
