#!/usr/bin/env bash
# Exit-path benchmark: exit-storm throughput of hvtel-testvmm with nothing attached (baseline),
# with `hvtel serve` attached, and with an equivalent bpftrace script attached, in alternating
# rounds; plus per-program ns/run from bpf_stats in a dedicated extra round.
# Method and results: docs/performance.md. Needs root, /dev/kvm, bpftrace, bpftool, curl, awk.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: sudo bench/exits/run.sh [options]
  -r, --rounds N            alternating rounds (default 5)
  -s, --seconds S           storm length per measurement, seconds (default 3)
  -n, --vcpus LIST          vCPU counts, comma-separated (default 1,2)
  -o, --output FILE         write the machine-readable result (JSON) to FILE
  -B, --build DIR           build directory with hvtel and tests/vmm/hvtel-testvmm
                            (default: <repo>/build)
      --helper-cpu CPU      CPU for hvtel serve, bpftrace, the scraper and the VMM main thread
                            (default 0; 1-vCPU runs put the vCPU on the other CPU)
      --scrape-interval S   scrape hvtel's /metrics every S seconds during a storm, like a
                            Prometheus; 0 = only the final scrape (default 1)
      --no-stats            skip the bpf_stats round
      --exact               add the configuration hvtel_exact: hvtel serve --vmm-timing-period-ms 0
                            (every exit to the VMM timed, also where that needs the kvm_fpu marker)
      --max-load L          first wait (up to 10 min) until the 1-minute load average is below L
      --keep-logs DIR       keep every log and scrape in DIR
  -h, --help
EOF
}

die() { echo "run.sh: $*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
rounds=5
storm_s=3
vcpu_list=1,2
out_json=
build=$repo/build
helper_cpu=0
scrape_interval=1
do_stats=1
configs=(baseline hvtel bpftrace)
keep_dir=
max_load=
settle_s=0.5   # after attach, before the storm; applied to every configuration alike

while (($#)); do
  case $1 in
    -r|--rounds) rounds=$2; shift 2 ;;
    -s|--seconds) storm_s=$2; shift 2 ;;
    -n|--vcpus) vcpu_list=$2; shift 2 ;;
    -o|--output) out_json=$2; shift 2 ;;
    -B|--build) build=$2; shift 2 ;;
    --helper-cpu) helper_cpu=$2; shift 2 ;;
    --scrape-interval) scrape_interval=$2; shift 2 ;;
    --no-stats) do_stats=0; shift ;;
    --exact) configs+=(hvtel_exact); shift ;;
    --keep-logs) keep_dir=$2; shift 2 ;;
    --max-load) max_load=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "bad --rounds: $rounds"
[[ $storm_s =~ ^[1-9][0-9]*$ ]] || die "bad --seconds: $storm_s"
[[ $vcpu_list =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "bad --vcpus: $vcpu_list"
[[ $helper_cpu =~ ^[0-9]+$ ]] || die "bad --helper-cpu: $helper_cpu"
[[ $scrape_interval =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "bad --scrape-interval: $scrape_interval"
[[ -z $max_load || $max_load =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "bad --max-load: $max_load"
IFS=, read -r -a vcpus <<<"$vcpu_list"

hvtel=$build/hvtel
vmm=$build/tests/vmm/hvtel-testvmm
[[ $EUID -eq 0 ]] || die "needs root (BPF, /dev/kvm, sysctl)"
[[ -x $hvtel && -x $vmm ]] ||
  die "build first: cmake --build $build --target hvtel hvtel-testvmm"
[[ -c /dev/kvm && -w /dev/kvm ]] || die "this host has no usable /dev/kvm ($(dmesg 2>/dev/null | grep -m1 -o 'kvm-pvm: this kernel is itself a kvm-pvm guest; not binding' || echo 'absent or not writable')). This benchmark measures host KVM; the VM lab cannot stand in (under TCG a BPF program run costs 10-40 us, so its ratios say nothing about production). Run it on a host with KVM; see docs/performance.md"
for t in bpftrace bpftool curl awk taskset; do
  command -v "$t" >/dev/null || die "$t not found"
done
ncpu=$(nproc)
((helper_cpu < ncpu)) || die "--helper-cpu $helper_cpu: only $ncpu CPUs"

# The bpftrace equivalent of what hvtel's tp_btf programs do on this host (kvm_exit/kvm_entry
# never fire under PVM): per exit to the VMM a count by (thread, reason) and a timestamp; per
# KVM_RUN entry (kvm_fpu load=1) the VMM handling time into a per-thread log2 histogram and sum.
# bpftrace 0.17 can read tracepoint args only through classic tracepoints (no fentry here).
read -r -d '' bt_prog <<'EOF' || true
tracepoint:kvm:kvm_userspace_exit { @exits[tid, args->reason] = count(); @ts[tid] = nsecs; }
tracepoint:kvm:kvm_fpu /args->load == 1/ { $s = @ts[tid]; if ($s != 0) { $d = nsecs - $s; @vmm_hist[tid] = hist($d); @vmm_sum[tid] = sum($d); @ts[tid] = 0; } }
EOF

# This script's own polling and forks stay on the helper CPU, with the tools under test.
taskset -cp "$helper_cpu" $$ >/dev/null
hvtel_build="$(date -u -r "$hvtel" +%Y-%m-%dT%H:%M:%SZ) $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"

work=$(mktemp -d /tmp/hvtel-bench-exits.XXXXXX)
pids=()            # every background process this script started
stats_prev=        # kernel.bpf_stats_enabled before we touched it

stop_pid() {       # stop_pid PID [SIGNAL]: SIGNAL, then SIGTERM, then SIGKILL, 5 s apart
  local pid=$1 sig i
  for sig in "${2:-TERM}" TERM KILL; do
    kill -0 "$pid" 2>/dev/null || break
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
  done
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local p
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do stop_pid "$p"; done
  if [[ -n $stats_prev ]]; then
    sysctl -qw kernel.bpf_stats_enabled="$stats_prev" || true
  fi
  if [[ -n $keep_dir ]]; then
    mkdir -p "$keep_dir" && cp -a "$work"/. "$keep_dir"/
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM

forget_pid() {     # drop a stopped pid from the cleanup list
  local p keep=()
  for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  pids=("${keep[@]}")
}

wait_for() {       # wait_for FILE PATTERN TIMEOUT_S PID [POLL_S]: until PATTERN is in FILE or PID dies
  local file=$1 pat=$2 pid=$4 poll=${5:-0.05} i n
  n=$(awk -v t="$3" -v p="$poll" 'BEGIN { printf "%d", t / p }')
  for ((i = 0; i < n; i++)); do
    grep -q -- "$pat" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { grep -q -- "$pat" "$file" 2>/dev/null; return; }
    sleep "$poll"
  done
  return 1
}

vcpu_cpus() {      # vCPU pinning: 1 vCPU away from the helper CPU, N vCPUs spread round-robin
  local n=$1 i list=
  if ((n == 1 && ncpu > 1)); then
    echo $(((helper_cpu + 1) % ncpu))
    return
  fi
  for ((i = 0; i < n; i++)); do list+=${list:+,}$((i % ncpu)); done
  echo "$list"
}

json_num() { grep -o "\"$2\":[-0-9.e+]*" "$1" | tail -n1 | cut -d: -f2; }
json_all() { grep -o "\"$2\":[-0-9.e+]*" "$1" | cut -d: -f2; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# bpf_stats of the programs held by PID's fds: lines "name run_cnt run_time_ns"
prog_stats_of_pid() {
  local pid=$1 fd id
  for fd in /proc/"$pid"/fd/*; do
    [[ $(readlink "$fd" 2>/dev/null) == anon_inode:bpf-prog ]] || continue
    id=$(awk '/^prog_id:/ {print $2}' /proc/"$pid"/fdinfo/"${fd##*/}" 2>/dev/null) || continue
    [[ -n $id ]] || continue
    bpftool prog show id "$id" 2>/dev/null | awk '
      NR == 1 { for (i = 1; i < NF; i++) if ($i == "name") name = $(i + 1) }
      { for (i = 1; i < NF; i++) { if ($i == "run_time_ns") t = $(i + 1); if ($i == "run_cnt") c = $(i + 1) } }
      END { if (name != "") print name, (c == "" ? 0 : c), (t == "" ? 0 : t) }'
  done
}

# hvtel's own bpf_stats export: lines "name run_cnt run_time_ns"
prog_stats_of_metrics() {
  awk '
    match($0, /^hvtel_bpf_program_runs_total\{program="[^"]*"\}/) {
      split($0, a, "\""); runs[a[2]] = $NF + 0 }
    match($0, /^hvtel_bpf_program_run_seconds_total\{program="[^"]*"\}/) {
      split($0, a, "\""); secs[a[2]] = $NF + 0 }
    END { for (p in runs) printf "%s %.0f %.0f\n", p, runs[p], secs[p] * 1e9 }' "$1"
}

# One measurement, run in this shell (so that cleanup knows its pids). Sets m_eps, m_total,
# m_tp (tracepoint hits = total + intr exits) and m_counted (exits the attached tool counted for
# this VMM, "null" for baseline); stats rounds also write $work/stats.<cfg>.<n>.
measure() {
  local cfg=$1 n=$2 tag=$3 stats=${4:-0}
  local log=$work/$tag.log vout=$work/$tag.vmm.json verr=$work/$tag.vmm.err
  local agent_pid= scraper_pid= vmm_pid port= counted=null

  case $cfg in
    hvtel|hvtel_exact)
      local extra=()
      [[ $cfg == hvtel_exact ]] && extra=(--vmm-timing-period-ms 0)
      taskset -c "$helper_cpu" "$hvtel" serve --listen 127.0.0.1:0 "${extra[@]}" >"$log" 2>&1 &
      agent_pid=$!; pids+=("$agent_pid")
      wait_for "$log" 'serving /metrics' 30 "$agent_pid" || { cat "$log" >&2; die "hvtel serve did not start"; }
      port=$(grep -o 'serving /metrics on .*(port [0-9]*)' "$log" | grep -o '[0-9]*)$' | tr -d ')')
      [[ -n $port ]] || die "no port in: $(cat "$log")"
      ;;
    bpftrace)
      taskset -c "$helper_cpu" bpftrace -e "$bt_prog" >"$log" 2>"$log.err" &
      agent_pid=$!; pids+=("$agent_pid")
      wait_for "$log" 'Attaching' 60 "$agent_pid" || { cat "$log" "$log.err" >&2; die "bpftrace did not start"; }
      ;;
  esac
  sleep "$settle_s"   # "Attaching" is printed before the attach itself; same pause for all

  if [[ $cfg == hvtel* && $scrape_interval != 0 ]]; then
    # One curl for the whole storm, like a Prometheus: a scrape every interval over a kept-alive
    # connection (--rate paces serial transfers), no process started per scrape.
    local per_hour
    per_hour=$(awk -v s="$scrape_interval" 'BEGIN { printf "%d", 3600 / s }')
    taskset -c "$helper_cpu" curl -s --rate "$per_hour/h" \
      "http://127.0.0.1:$port/metrics?scrape=[1-1000000]" >/dev/null &
    scraper_pid=$!; pids+=("$scraper_pid")
  fi

  # Not polled during the storm. --hold would keep the VMM's instance alive in hvtel for the final
  # scrape, but the test VMM skips the hold after --storm, so the scrape follows the summary line
  # closely (the agent drops an exited instance at its next discovery poll, 250 ms).
  "$vmm" --storm "$storm_s" -n "$n" -a "$(vcpu_cpus "$n")" -A "$helper_cpu" --hold 60 \
    >"$vout" 2>"$verr" &
  vmm_pid=$!; pids+=("$vmm_pid")
  sleep "$storm_s"
  wait_for "$vout" '"ok":' 30 "$vmm_pid" 0.01 || { cat "$verr" >&2; die "the VMM did not report"; }
  grep -q '"ok":true' "$vout" || die "VMM run not ok: $(cat "$vout")"

  if [[ -n $scraper_pid ]]; then stop_pid "$scraper_pid"; forget_pid "$scraper_pid"; fi
  if [[ $cfg == hvtel* ]]; then
    curl -sf "http://127.0.0.1:$port/metrics" >"$work/$tag.metrics" || die "final scrape failed"
    counted=$(awk -v inst="pid-$vmm_pid" '
      index($0, "hvtel_vcpu_userspace_exits_total{") == 1 && index($0, "instance_id=\"" inst "\"") { s += $NF; f = 1 }
      END { if (f) printf "%.0f", s; else print "null" }' "$work/$tag.metrics")
    ((stats)) && prog_stats_of_metrics "$work/$tag.metrics" >"$work/stats.$cfg.$n"
  fi
  if [[ $cfg == bpftrace ]] && ((stats)); then
    prog_stats_of_pid "$agent_pid" >"$work/stats.$cfg.$n"
  fi
  stop_pid "$vmm_pid"; forget_pid "$vmm_pid"

  if [[ -n $agent_pid ]]; then
    # bpftrace prints its maps on SIGINT (its handler overrides the ignored SIGINT of a
    # background job); hvtel serve stops on SIGTERM.
    stop_pid "$agent_pid" "$([[ $cfg == bpftrace ]] && echo INT || echo TERM)"; forget_pid "$agent_pid"
  fi
  if [[ $cfg == bpftrace ]]; then
    # @exits[tid, reason]: count, for this VMM's vCPU threads only
    local tids
    tids=$(json_all "$vout" tid | paste -sd, -)
    counted=$(awk -v tids="$tids" '
      BEGIN { n = split(tids, t, ","); for (i = 1; i <= n; i++) want[t[i]] = 1 }
      /^@exits\[/ { k = $1; sub(/^@exits\[/, "", k); sub(/,.*/, "", k); if (k in want) s += $NF }
      END { printf "%.0f", s }' "$log")
  fi

  local intr
  m_eps=$(json_num "$vout" exits_per_second)
  m_total=$(json_num "$vout" total_exits)
  intr=$(json_all "$vout" intr_exits | awk '{s += $1} END {print s + 0}')
  m_tp=$((m_total + intr))
  m_counted=$counted
}

# Orders: every rotation of the configuration list and of its reverse, so each configuration
# takes every position equally often (for three configurations: all 6 permutations).
perms=()
nc=${#configs[@]}
for ((i = 0; i < nc; i++)); do
  fwd= rev=
  for ((j = 0; j < nc; j++)); do
    fwd+="${configs[(i + j) % nc]} "
    rev+="${configs[(nc - 1 - i - j + 2 * nc) % nc]} "
  done
  perms+=("${fwd% }" "${rev% }")
done

if [[ -n $max_load ]]; then
  for ((i = 0; i < 60; i++)); do
    awk -v l="$(load1)" -v m="$max_load" 'BEGIN { exit !(l < m) }' && break
    echo "waiting for load average < $max_load (now $(load1))" >&2
    sleep 10
  done
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t0=$SECONDS
echo "exit-storm benchmark: $rounds rounds x ${storm_s}s, vCPUs ${vcpus[*]}, helper CPU $helper_cpu," \
     "scrape every ${scrape_interval}s; load average $load_before"
awk -v l="${load_before%% *}" 'BEGIN { exit !(l > 1.0) }' &&
  echo "WARNING: load average $load_before: the machine is busy, expect noisy numbers" >&2

results=$work/results.tsv   # round vcpus config position eps total tp_exits counted load1
: >"$results"
slot=0
for ((r = 1; r <= rounds; r++)); do
  for n in "${vcpus[@]}"; do
    order=${perms[slot % ${#perms[@]}]}; slot=$((slot + 1))
    pos=0
    for cfg in $order; do
      l=$(load1)
      measure "$cfg" "$n" "r$r.n$n.$cfg"
      printf '%d\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n' "$r" "$n" "$cfg" "$pos" "$m_eps" "$m_total" \
        "$m_tp" "$m_counted" "$l" >>"$results"
      printf '  round %d  %d vCPU  %-11s %10.0f exits/s  (load %s)\n' "$r" "$n" "$cfg" "$m_eps" "$l"
      pos=$((pos + 1))
    done
  done
done

statsfile=$work/stats.tsv   # vcpus config eps tp_exits name runs run_time_ns
: >"$statsfile"
if ((do_stats)); then
  stats_prev=$(cat /proc/sys/kernel/bpf_stats_enabled)
  sysctl -qw kernel.bpf_stats_enabled=1
  for n in "${vcpus[@]}"; do
    for cfg in hvtel bpftrace; do
      measure "$cfg" "$n" "stats.n$n.$cfg" 1
      while read -r name runs ns; do
        printf '%d\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$cfg" "$m_eps" "$m_tp" "$name" "$runs" "$ns" >>"$statsfile"
      done <"$work/stats.$cfg.$n"
      printf '  stats  %d vCPU  %-8s %10.0f exits/s  (bpf_stats on)\n' "$n" "$cfg" "$m_eps"
    done
  done
  sysctl -qw kernel.bpf_stats_enabled="$stats_prev"
  stats_prev=
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$((SECONDS - t0))

# ---- summary table ----
summary=$work/summary.tsv   # vcpus config n mean sd min max ratio pr_mean pr_min pr_max cov_min
awk -F'\t' -v cfglist="${configs[*]}" '
  { k = $2 SUBSEP $3; n[k]++; s[k] += $5; ss[k] += $5 * $5
    if (!(k in mn) || $5 < mn[k]) mn[k] = $5
    if (!(k in mx) || $5 > mx[k]) mx[k] = $5
    eps[$1, $2, $3] = $5; vc[$2] = 1; rd[$1] = 1
    if ($8 != "null" && $7 > 0) { c = $8 / $7; if (!(k in cov) || c < cov[k]) cov[k] = c } }
  END {
    nc = split(cfglist, cfgs, " ")
    for (v in vc) {
      b = s[v, "baseline"] / n[v, "baseline"]
      for (i = 1; i <= nc; i++) {
        c = cfgs[i]; k = v SUBSEP c; if (!(k in n)) continue
        m = s[k] / n[k]; var = n[k] > 1 ? (ss[k] - n[k] * m * m) / (n[k] - 1) : 0
        if (var < 0) var = 0
        pn = 0; ps = 0; pmn = ""; pmx = ""
        for (r in rd) if ((r, v, c) in eps && (r, v, "baseline") in eps) {
          p = eps[r, v, c] / eps[r, v, "baseline"]; pn++; ps += p
          if (pmn == "" || p < pmn) pmn = p
          if (pmx == "" || p > pmx) pmx = p }
        printf "%d\t%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.4f\t%.4f\t%.4f\t%.4f\t%s\n", v, c, n[k], m,
          sqrt(var), mn[k], mx[k], m / b, ps / pn, pmn, pmx, (k in cov) ? sprintf("%.6f", cov[k]) : "null"
      } } }' "$results" | sort -t$'\t' -k1,1n -k2,2 >"$summary"

echo
echo "Exit-storm throughput ($rounds rounds x ${storm_s}s, ratio = mean / same-run baseline mean;"
echo "paired = per-round config/baseline; coverage = exits counted by the tool / tracepoint hits)"
printf '%-5s %-11s %11s %9s %11s %11s %7s %19s %9s\n' vCPUs config "mean ex/s" stddev min max ratio \
  "paired mean [range]" coverage
while IFS=$'\t' read -r v c k m sd mn mx ra pm pl ph cov; do
  printf '%-5s %-11s %11.0f %9.0f %11.0f %11.0f %7.3f %6.3f [%.3f-%.3f] %9s\n' "$v" "$c" "$m" "$sd" \
    "$mn" "$mx" "$ra" "$pm" "$pl" "$ph" "$cov"
done <"$summary"

if [[ -s $statsfile ]]; then
  echo
  echo "bpf_stats (dedicated round, kernel.bpf_stats_enabled=1; ns include the ~20 ns stats overhead)"
  printf '%-5s %-9s %-18s %10s %9s %9s %10s\n' vCPUs config program runs ns/run runs/exit ns/exit
  awk -F'\t' '{ printf "%-5s %-9s %-18s %10d %9.1f %9.3f %10.1f\n", $1, $2, $5, $6,
                 ($6 > 0 ? $7 / $6 : 0), ($4 > 0 ? $6 / $4 : 0), ($4 > 0 ? $7 / $4 : 0) }' "$statsfile"
  awk -F'\t' '{ k = $1 "\t" $2; t[k] += $7; x[k] = $4 }
    END { for (k in t) { split(k, a, "\t"); printf "%-5s %-9s %-18s %10s %9s %9s %10.1f\n", a[1], a[2],
          "(all programs)", "", "", "", (x[k] > 0 ? t[k] / x[k] : 0) } }' "$statsfile" | sort
fi
echo
echo "load average before: $load_before  after: $load_after  elapsed: ${elapsed}s"

# ---- JSON ----
if [[ -n $out_json ]]; then
  {
    printf '{"benchmark":"exits","started":"%s","elapsed_s":%d,' "$started" "$elapsed"
    printf '"host":{"kernel":"%s","cpus":%d,"cpu_model":"%s"},' "$(uname -r)" "$ncpu" \
      "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    printf '"hvtel":{"binary":"%s","built_and_commit":"%s","probes":[%s]},' "$hvtel" "$hvtel_build" \
      "$(grep -ho 'probe [a-z_]* attached via [a-z_]*' "$work"/r1.*.hvtel.log 2>/dev/null | sort -u |
         awk '{ printf "%s\"%s:%s\"", (NR > 1 ? "," : ""), $2, $5 }')"
    printf '"params":{"rounds":%d,"seconds":%d,"vcpus":[%s],"helper_cpu":%d,"scrape_interval_s":%s,' \
      "$rounds" "$storm_s" "$vcpu_list" "$helper_cpu" "$scrape_interval"
    printf '"settle_s":%s,"vcpu_pinning":{' "$settle_s"
    sep=; for n in "${vcpus[@]}"; do printf '%s"%d":"%s"' "$sep" "$n" "$(vcpu_cpus "$n")"; sep=,; done
    printf '},"bpftrace_program":"%s"},' "$(printf '%s' "$bt_prog" | sed 's/\\/\\\\/g; s/"/\\"/g' | awk '{printf "%s\\n", $0}')"
    printf '"loadavg":{"before":"%s","after":"%s"},"runs":[' "$load_before" "$load_after"
    awk -F'\t' '{ printf "%s{\"round\":%d,\"vcpus\":%d,\"config\":\"%s\",\"position\":%d,\"exits_per_second\":%s,\"total_exits\":%s,\"tracepoint_exits\":%s,\"counted_by_tool\":%s,\"load1\":%s}",
                  (NR > 1 ? "," : ""), $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$results"
    printf '],"summary":['
    awk -F'\t' '{ printf "%s{\"vcpus\":%d,\"config\":\"%s\",\"n\":%d,\"mean\":%s,\"stddev\":%s,\"min\":%s,\"max\":%s,\"ratio\":%s,\"paired_ratio_mean\":%s,\"paired_ratio_min\":%s,\"paired_ratio_max\":%s,\"min_coverage\":%s}",
                  (NR > 1 ? "," : ""), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 }' "$summary"
    printf '],"bpf_stats":['
    awk -F'\t' '{ k = $1 "\t" $2 "\t" $3 "\t" $4; if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
                  progs[k] = progs[k] (progs[k] == "" ? "" : ",") sprintf("{\"name\":\"%s\",\"runs\":%s,\"run_time_ns\":%s,\"ns_per_run\":%.1f,\"runs_per_exit\":%.4f}",
                    $5, $6, $7, ($6 > 0 ? $7 / $6 : 0), ($4 > 0 ? $6 / $4 : 0)); tot[k] += $7 }
      END { for (i = 1; i <= nk; i++) { k = order[i]; split(k, a, "\t")
              printf "%s{\"vcpus\":%d,\"config\":\"%s\",\"exits_per_second\":%s,\"tracepoint_exits\":%s,\"ns_per_exit\":%.1f,\"programs\":[%s]}",
                (i > 1 ? "," : ""), a[1], a[2], a[3], a[4], (a[4] > 0 ? tot[k] / a[4] : 0), progs[k] } }' "$statsfile"
    printf ']}\n'
  } >"$out_json"
  echo "wrote $out_json"
fi
