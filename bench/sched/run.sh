#!/usr/bin/env bash
# Context-switch benchmark: `perf bench sched pipe` (two threads ping-ponging
# over pipes, i.e. a wakeup and two context switches per message) with
# nothing attached, with `hvtel serve` attached (its sched_switch/wakeup
# programs run on every switch of the host), and with libbpf-tools' runqlat
# attached alone, in alternating rounds. Reports ops/s and the ratio to the
# baseline measured in the same run. Method and results: docs/performance.md.
#
#   sudo bench/sched/run.sh [-r ROUNDS] [-l LOOPS] [-B BUILD_DIR] [--with-vmm]
#
# --with-vmm also runs a test VMM (pinned, tracked by hvtel) during every
# round, so hvtel's tracked-thread path is exercised, not only its filter.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
rounds=7 loops=200000 build=$repo/build with_vmm=0
while (($#)); do
  case $1 in
    -r) rounds=$2; shift 2 ;;
    -l) loops=$2; shift 2 ;;
    -B) build=$2; shift 2 ;;
    --with-vmm) with_vmm=1; shift ;;
    *) echo "usage: $0 [-r ROUNDS] [-l LOOPS] [-B BUILD] [--with-vmm]" >&2; exit 2 ;;
  esac
done
hvtel=$build/hvtel
testvmm=$build/tests/vmm/hvtel-testvmm
runqlat=$(command -v runqlat || echo /usr/sbin/runqlat)
[[ -x $hvtel && -x $runqlat ]] || { echo "need $hvtel and $runqlat" >&2; exit 1; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if ((with_vmm)) && ! [[ -c /dev/kvm && -w /dev/kvm ]]; then
  echo "bench/sched --with-vmm: this host has no usable /dev/kvm ($(dmesg 2>/dev/null | grep -m1 -o 'kvm-pvm: this kernel is itself a kvm-pvm guest; not binding' || echo 'absent or not writable')). --with-vmm measures host KVM; the VM lab cannot stand in (under TCG a BPF program run costs 10-40 us, so its ratios say nothing about production). Run it on a host with KVM; see docs/performance.md; without --with-vmm it needs no KVM" >&2
  exit 1
fi
vmm_pid=
if ((with_vmm)); then
  # A halted 1-vCPU guest with a slot: hvtel tracks its threads.
  "$testvmm" -n 1 -k 1 --hold 100000 -uuid 5e5e5e5e-0000-4000-8000-000000000001 >/dev/null 2>&1 &
  vmm_pid=$!; pids+=("$vmm_pid")
fi

attach() {  # $1 = config; echoes the attached tool's pid
  case $1 in
    baseline) echo "" ;;
    hvtel)
      local log; log=$(mktemp)
      "$hvtel" serve --listen 127.0.0.1:0 --events-listen "" --libvirt-uri "" >"$log" 2>&1 &
      local p=$!
      for _ in $(seq 100); do grep -q "serving /metrics" "$log" && break; sleep 0.05; done
      rm -f "$log"; echo "$p" ;;
    runqlat)
      "$runqlat" 3600 1 >/dev/null 2>&1 &
      local p=$!; sleep 1.0; echo "$p" ;;
  esac
}

measure() {  # ops/s of one perf bench run
  perf bench sched pipe -l "$loops" 2>/dev/null | awk '/ops\/sec/ {print $1}'
}

declare -A sum sumsq n
configs=(baseline hvtel runqlat)
for ((r = 0; r < rounds; r++)); do
  # rotate the order every round to cancel drift
  for ((k = 0; k < 3; k++)); do
    c=${configs[$(((r + k) % 3))]}
    p=$(attach "$c")
    [[ -n $p ]] && pids+=("$p")
    v=$(measure)
    [[ -n $p ]] && { kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; }
    sum[$c]=$(echo "${sum[$c]:-0} + $v" | bc -l)
    sumsq[$c]=$(echo "${sumsq[$c]:-0} + $v * $v" | bc -l)
    n[$c]=$(( ${n[$c]:-0} + 1 ))
    printf 'round %d %-9s %s ops/s\n' "$r" "$c" "$v"
  done
done

base=$(echo "${sum[baseline]} / ${n[baseline]}" | bc -l)
echo
printf '%-9s %12s %10s %7s\n' config mean_ops/s stddev ratio
for c in "${configs[@]}"; do
  m=$(echo "${sum[$c]} / ${n[$c]}" | bc -l)
  sd=$(echo "sqrt(${sumsq[$c]} / ${n[$c]} - $m * $m)" | bc -l 2>/dev/null || echo 0)
  printf '%-9s %12.0f %10.0f %7.3f\n' "$c" "$m" "$sd" "$(echo "$m / $base" | bc -l)"
done
