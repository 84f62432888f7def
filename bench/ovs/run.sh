#!/usr/bin/env bash
# OVS flow-mirror benchmark at N (default 100 000) OpenFlow flows, in a private
# OVS (ovsdb-server + ovs-vswitchd under `unshare --net`, netdev bridge br0,
# fail_mode=secure) in a temp dir:
#   1. full resync time: `hvtel serve` start -> Σ hvtel_ovs_flows{bridge="br0"} = N
#      (3 starts), and kill -9 + restart of ovs-vswitchd with the N flows re-added;
#   2. change-to-metric latency at 1 000 flow mods/s (batches of 100 every 100 ms,
#      add -> mod -> del cycles) via the /events stream and via /metrics;
#   3. ovs-vswitchd CPU in W-second windows: nothing attached, hvtel attached,
#      `ovs-ofctl dump-flows br0 --no-names` every 15 s; idle and under the load.
# Method and results: docs/performance.md §3.
#
#   sudo bench/ovs/run.sh [-o OUT.json] [-n FLOWS] [-w WINDOW_S] [-l LATENCY_S] [-B BUILD] [--keep]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
flows=100000 window=45 latency=20 build=$repo/build out='' keep=0
while (($#)); do
  case $1 in
    -o|--output) out=$2; shift 2 ;;
    -n|--flows) flows=$2; shift 2 ;;
    -w|--window) window=$2; shift 2 ;;
    -l|--latency-seconds) latency=$2; shift 2 ;;
    -B|--build) build=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [-o OUT.json] [-n FLOWS] [-w WINDOW_S] [-l LATENCY_S] [-B BUILD] [--keep]" >&2; exit 2 ;;
  esac
done
hvtel=$build/hvtel
vswitchd=/usr/lib/openvswitch-switch/ovs-vswitchd
[[ -x $hvtel && -x $vswitchd ]] || { echo "need $hvtel and $vswitchd" >&2; exit 1; }
for c in ovsdb-tool ovsdb-server ovs-vsctl ovs-ofctl unshare python3; do
  command -v $c >/dev/null || { echo "need $c" >&2; exit 1; }
done
load=$(cut -d' ' -f1 /proc/loadavg)
awk -v l="$load" 'BEGIN { exit !(l > 1) }' && echo "WARNING: load average $load > 1; numbers will be noisy" >&2

dir=$(mktemp -d /tmp/hvtel-ovsbench-XXXXXX)
export OVS_RUNDIR=$dir OVS_DBDIR=$dir OVS_LOGDIR=$dir OVS_SYSCONFDIR=$dir OVS_PKGDATADIR=/usr/share/openvswitch
helper_pid=""

stop_pid() {  # pid: SIGTERM, then SIGKILL after 5 s
  local p=$1
  [[ -n $p ]] && kill -0 "$p" 2>/dev/null || return 0
  kill "$p" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
}
cleanup() {
  set +e
  stop_pid "$helper_pid"
  # hvtel is started by the helper; its pid file is here in case the helper died first
  [[ -f $dir/hvtel.pid ]] && stop_pid "$(cat "$dir/hvtel.pid")"
  for f in ovs-vswitchd ovsdb-server; do
    [[ -f $dir/$f.pid ]] && stop_pid "$(cat "$dir/$f.pid")"
  done
  if ((keep)); then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== OVS sandbox in $dir"
ovsdb-tool create "$dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$dir/conf.db" --remote="punix:$dir/db.sock" --pidfile="$dir/ovsdb-server.pid" \
  --log-file="$dir/ovsdb-server.log" --detach --no-chdir
ovs-vsctl --db="unix:$dir/db.sock" --no-wait init
unshare --net "$vswitchd" "unix:$dir/db.sock" --pidfile="$dir/ovs-vswitchd.pid" \
  --log-file="$dir/ovs-vswitchd.log" --detach --no-chdir
ovs-vsctl --db="unix:$dir/db.sock" --timeout=20 add-br br0 -- set bridge br0 datapath_type=netdev \
  -- set bridge br0 fail_mode=secure
for _ in $(seq 200); do [[ -S $dir/br0.mgmt ]] && break; sleep 0.05; done

echo "== loading $flows flows"
python3 "$here/ovsbench.py" gen "$flows" >"$dir/flows.txt"
t0=$(date +%s.%N)
ovs-ofctl --bundle add-flows br0 "$dir/flows.txt"
t1=$(date +%s.%N)
n=$(ovs-ofctl dump-aggregate br0 | sed -n 's/.*flow_count=\([0-9]*\).*/\1/p')
printf 'loaded %s flows in %.1f s (--bundle)\n' "$n" "$(echo "$t1 - $t0" | bc -l)"
[[ $n == "$flows" ]] || { echo "expected $flows flows, vswitchd has $n" >&2; exit 1; }

json=${out:-$dir/result.json}
python3 "$here/ovsbench.py" run --rundir "$dir" --hvtel "$hvtel" --flows "$flows" \
  --flows-file "$dir/flows.txt" --window "$window" --latency-seconds "$latency" -o "$json" &
helper_pid=$!
wait "$helper_pid"
helper_pid=""

python3 - "$json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
f = lambda x, d=2: "-" if x is None else f"{x:.{d}f}"
print("\n== resync")
for i, s in enumerate(r["resync"]["hvtel_start"]):
    print(f"hvtel start #{i + 1}: {f(s['seconds'])} s to {r['params']['flows']} flows, vswitchd cpu {f(s['vswitchd_cpu_s'])} s, "
          f"hvtel cpu {f(s['hvtel_cpu_s'])} s, hvtel rss {s['hvtel_rss_kb'] / 1024:.0f} MiB")
d = r["resync"]["one_dump_flows"]
print(f"one dump-flows: {f(d['seconds'])} s wall, vswitchd cpu {f(d['vswitchd_cpu_s'])} s")
v = r["vswitchd_restart"]
print(f"vswitchd kill -9 + restart: hvtel reconnected {f(v['reconnect_s'])} s; add-flows {f(v['add_flows_s'])} s, "
      f"hvtel at {r['params']['flows']} flows {f(v['lag_after_add_flows_s'])} s after add-flows returned")
L = r["latency"]
print(f"\n== change-to-metric latency, {L['changes_applied']} changes at {L['achieved_rate_per_s']:.0f}/s "
      f"(events {L['events_received']}, missed {L['events_missed']}, kinds match {L['event_kinds_match']}, "
      f"counter delta {L['metrics_changes_delta']:.0f})")
print(f"{'path':44s} {'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s}")
for k, name in (("latency_ms_agent_time", "agent receive (event time_ms - ofctl return)"),
                ("latency_ms_event_stream", "/events client arrival - ofctl return"),
                ("latency_ms_metrics_batch", "/metrics counter (per batch, 20 ms poll)"),
                ("ofctl_ms", "ovs-ofctl call itself (batch of 100)")):
    s = L[k]
    print(f"{name:44s} {f(s.get('p50'), 1):>8s} {f(s.get('p99'), 1):>8s} {f(s.get('max'), 1):>8s}")
print(f"hvtel cpu during load {f(L['hvtel_cpu_s'])} s over {f(L['elapsed_s'], 1)} s; vswitchd {f(L['vswitchd_cpu_s'])} s")
C = r["cpu"]
print(f"\n== ovs-vswitchd CPU per {r['params']['window_s']:.0f} s window")
print(f"{'config':11s} {'load':7s} {'vswitchd s':>10s} {'hvtel s':>8s} {'dumps':>5s}")
for w in C["windows"]:
    print(f"{w['config']:11s} {w['load']:7s} {f(w['vswitchd_cpu_s']):>10s} {f(w.get('hvtel_cpu_s')):>8s} {w.get('dumps', ''):>5}")
for load, q in C["ratios"].items():
    print(f"ratios {load:7s}: hvtel/baseline {f(q['hvtel/baseline'], 3)}  dump-flows/baseline {f(q['dump-flows/baseline'], 3)}  "
          f"hvtel/dump-flows {f(q['hvtel/dump-flows'], 3)}")
EOF
[[ -n $out ]] && echo "JSON: $out"
