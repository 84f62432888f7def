# lab: requires=hvtel timeout=240
# hvtel's Open vSwitch kernel-datapath metrics (bpf/ovs_dp.bpf.c, agent/ovs/datapath/) against the kernel's own counts.
#   0. openvswitch.ko absent when hvtel starts: probes reported not attached, no OVS series, nothing else breaks;
#      the module loaded later is picked up by the 30 s re-probe.
#   A. A bare datapath driven by ovs-dpctl (no daemons, so no upcall listener): every upcall is lost, so
#      hvtel's miss upcalls and failures must both equal `ovs-dpctl show` missed and lost; a scripted sequence of
#      flow commands gives exact expected new/set/del successes and errors.
#   B. ovsdb-server + ovs-vswitchd, br0 on the system datapath, two netns pinging through it: upcalls per port
#      named p1/p2, summed = missed, failures = lost; flows installed and (max-idle 1 s) deleted.
# IPv6 is disabled on every interface the case creates: router solicitations and MLD reports would otherwise
# keep making upcalls at random times. Counts are compared only while `ovs-dpctl show` is stable around a scrape.
require_bin HVTEL

PORT=9902
URL=http://127.0.0.1:$PORT/metrics
M=/tmp/metrics.txt
ovs_env

cleanup() {
  stop_bg hvtel
  ovs_daemons_stop
}
trap cleanup EXIT

# dp_stat DP FIELD: hit|missed|lost of `ovs-dpctl show DP` ("lookups: hit:H missed:M lost:L").
dp_stat() { ovs-dpctl show "$1" | sed -n "s/.*lookups:.* $2:\([0-9]*\).*/\1/p" | head -1; }
dp_flows() { ovs-dpctl show "$1" | sed -n 's/.*flows: *\([0-9]*\).*/\1/p' | head -1; }

# settle DP: scrape into $M while the datapath's missed/lost counts do not move, so the scrape and the kernel
# counts describe the same moment; sets MISSED and LOST.
settle() {
  _end=$(awk '{ print $1 + 20 }' /proc/uptime)
  while :; do
    _m1=$(dp_stat "$1" missed); _l1=$(dp_stat "$1" lost)
    scrape "$URL" $M || fail "scrape failed"
    _m2=$(dp_stat "$1" missed); _l2=$(dp_stat "$1" lost)
    if [ "$_m1" = "$_m2" ] && [ "$_l1" = "$_l2" ]; then MISSED=$_m2; LOST=$_l2; return 0; fi
    awk -v e="$_end" '{ exit !($1 >= e) }' /proc/uptime && fail "datapath $1 never went quiet"
    sleep 0.5
  done
}

attached() { grep -q "^hvtel_probe_attached{probe=\"$1\",.*} 1" $M; }

# --- 0. module absent at start, loaded later ---------------------------------------------------------------
no_ipv6
# Which other probes attach here does not depend on openvswitch.ko: compare with it present and absent.
others() {  # attached non-OVS probes in a status JSON, one line
  jq -r '[.probes[] | select(.available == true and (.probe | startswith("ovs_") | not)) | .probe] | sort | join(" ")' "$1"
}
"$HVTEL" status --json > "$LAB_OUT/status-module.json" 2>/tmp/status.err || { cat /tmp/status.err; fail "status"; }
OTHERS=$(others "$LAB_OUT/status-module.json")
check "some other probes attach on this kernel ($OTHERS)" test -n "$OTHERS"
KO=$(grep '/openvswitch\.ko' /etc/modules.order | head -1)
[ -n "$KO" ] || fail "openvswitch.ko not in /etc/modules.order"
rmmod openvswitch || fail "rmmod openvswitch (something holds it?)"
check "openvswitch unloaded" sh -c "! grep -q '^openvswitch ' /proc/modules"

"$HVTEL" status --json > "$LAB_OUT/status-nomodule.json" 2>/tmp/status.err || { cat /tmp/status.err; fail "status"; }
S=$LAB_OUT/status-nomodule.json
check_eq "status: ovs_dp_upcall available without the module" \
  "$(jq -r '.probes[] | select(.probe == "ovs_dp_upcall") | .available' "$S")" false
check "status: reason names the missing tracepoint" sh -c \
  "jq -r '.probes[] | select(.probe == \"ovs_dp_upcall\") | .reason' $S | grep -q 'tracepoint openvswitch:ovs_dp_upcall missing'"
check_eq "status: other probes attached without the module" "$(others "$S")" "$OTHERS"

start_bg hvtel "$HVTEL" serve --listen 127.0.0.1:$PORT --ovs-module-reprobe-s 2 --libvirt-uri ""
wait_for 60 scrape "$URL" $M || { show_log hvtel; fail "hvtel serve did not answer on $URL"; }
check "no module: hvtel_probe_attached{probe=ovs_dp_upcall} 0" grep -q '^hvtel_probe_attached{probe="ovs_dp_upcall",attach="none"} 0' $M
check "no module: no datapath series" sh -c "! grep -qE '^hvtel_ovs_(upcall|datapath)' $M"
serve_others() {
  grep '^hvtel_probe_attached{' $M | grep -v 'probe="ovs_' | grep ' 1$' |
    sed 's/.*probe="\([^"]*\)".*/\1/' | sort | tr '\n' ' ' | sed 's/ $//'
}
check_eq "no module: serve attached the other probes" "$(serve_others)" "$OTHERS"
T_LOAD=$(cut -d' ' -f1 /proc/uptime)
insmod "$KO" || fail "insmod $KO"
# The agent re-probes every 30 s.
upcall_probe_attached() { scrape "$URL" $M && attached ovs_dp_upcall; }
wait_for 60 upcall_probe_attached ||
  { cat $M; show_log hvtel; fail "ovs_dp_upcall not attached 60 s after the module was loaded"; }
note "probes attached $(awk -v t="$T_LOAD" '{ printf "%.1f", $1 - t }' /proc/uptime) s after insmod"
for p in ovs_dp_upcall ovs_dp_upcall_ret ovs_flow_cmd_new ovs_flow_cmd_set ovs_flow_cmd_del; do
  check "probe $p attached" attached $p
done
check "ovs_dp_upcall via tp_btf" grep -q '^hvtel_probe_attached{probe="ovs_dp_upcall",attach="tp_btf"} 1' $M
check "ovs_flow_cmd_new via fentry (fexit)" grep -q '^hvtel_probe_attached{probe="ovs_flow_cmd_new",attach="fentry"} 1' $M
# Least privilege: cap_sys_admin (module BTF) and cap_setpcap were kept only until the module's programs were
# attached; then the agent keeps bpf, perfmon, sys_ptrace and dac_read_search (0xc000080004), bounding set too.
caps() { grep "^$1:" "/proc/$(cat /tmp/hvtel.pid)/status" | cut -f2; }
caps_reduced() { [ "$(caps CapEff)" = 000000c000080004 ]; }
wait_for 5 caps_reduced
check_eq "capabilities after the module: CapEff" "$(caps CapEff)" 000000c000080004
check_eq "capabilities after the module: CapPrm" "$(caps CapPrm)" 000000c000080004
check_eq "capabilities after the module: CapBnd" "$(caps CapBnd)" 000000c000080004

# --- A. bare datapath, no listener: exact upcall and flow-command counts ------------------------------------
$IP link add a0 type veth peer name a1 && $IP link set a0 up && $IP link set a1 up || fail "veth a0/a1"
$IP addr add 10.9.0.1/24 dev a0
ovs-dpctl add-dp dp0 || fail "ovs-dpctl add-dp dp0"
ovs-dpctl add-if dp0 a1 || fail "ovs-dpctl add-if dp0 a1"
# ARP for an absent host: each request misses in dp0 and its upcall is lost (no listener: portid 0).
ping -c 4 -i 0.3 -W 1 10.9.0.2 >/dev/null 2>&1
settle dp0
check_gt "dp0 missed (kernel)" "$MISSED" 0
check_eq "dp0: every upcall lost (kernel)" "$LOST" "$MISSED"
check_eq "dp0 upcalls{cmd=miss} = missed" "$(metric_sum $M hvtel_ovs_upcalls_total datapath=dp0 cmd=miss)" "$MISSED"
check_eq "dp0 upcalls{cmd=action}" "$(metric_sum $M hvtel_ovs_upcalls_total datapath=dp0 cmd=action)" 0
check_eq "dp0 upcall failures = lost" "$(metric_sum $M hvtel_ovs_upcall_failures_total datapath=dp0)" "$LOST"
check_eq "dp0 upcalls come from port a1" "$(metric_label_values $M hvtel_ovs_upcalls_total port datapath=dp0)" a1

# Flow commands, each one's outcome counted from the command's own exit status.
NEW_OK=0; NEW_ERR=0; SET_OK=0; SET_ERR=0; DEL_OK=0; DEL_ERR=0
flow() { echo "in_port(1),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:$1),eth_type(0x1234)"; }
run_op() {  # run_op OP ovs-dpctl-args...
  _op=$1; shift
  if ovs-dpctl "$@" >/dev/null 2>&1; then eval "${_op}_OK=\$((${_op}_OK + 1))"
  else eval "${_op}_ERR=\$((${_op}_ERR + 1))"; fi
}
for i in 11 12 13 14 15; do run_op NEW add-flow dp0 "$(flow $i)" ''; done
run_op NEW add-flow dp0 "$(flow 11)" ''          # exists: EEXIST
run_op SET mod-flow dp0 "$(flow 12)" '1'         # actions -> output:1
run_op SET mod-flow dp0 "$(flow 99)" '1'         # no such flow: ENOENT
for i in 13 14; do run_op DEL del-flow dp0 "$(flow $i)"; done
run_op DEL del-flow dp0 "$(flow 99)"             # no such flow: ENOENT
check_eq "script: add-flow ok/err" "$NEW_OK/$NEW_ERR" 5/1
check_eq "script: mod-flow ok/err" "$SET_OK/$SET_ERR" 1/1
check_eq "script: del-flow ok/err" "$DEL_OK/$DEL_ERR" 2/1
check_eq "dp0 flows (kernel) = adds - deletes" "$(dp_flows dp0)" $((NEW_OK - DEL_OK))
run_op DEL del-flows dp0                         # flush: one OVS_FLOW_CMD_DEL without a key
check_eq "dp0 flows after flush (kernel)" "$(dp_flows dp0)" 0
scrape "$URL" $M || fail "scrape failed"
fc() { metric_sum $M hvtel_ovs_datapath_flow_changes_total datapath=dp0 op=$1; }
fe() { metric_sum $M hvtel_ovs_datapath_flow_change_errors_total datapath=dp0 op=$1; }
check_eq "dp0 flow_changes{op=new}" "$(fc new)" $NEW_OK
check_eq "dp0 flow_changes{op=set}" "$(fc set)" $SET_OK
check_eq "dp0 flow_changes{op=del}" "$(fc del)" $DEL_OK
check_eq "dp0 flow_change_errors{op=new}" "$(fe new)" $NEW_ERR
check_eq "dp0 flow_change_errors{op=set}" "$(fe set)" $SET_ERR
check_eq "dp0 flow_change_errors{op=del}" "$(fe del)" $DEL_ERR
ovs-dpctl del-dp dp0
$IP link del a0

# --- B. ovs-vswitchd on the system datapath, ns1 <-> ns2 through br0 ----------------------------------------
# ovs-vswitchd runs in a time namespace 100 s ahead (lib.sh: ovs_start_vswitchd).
ovs_daemons_start

ovs-vsctl add-br br0 -- set Open_vSwitch . other_config:max-idle=1000 || fail "add-br br0"
netns_pair_on_bridge br0 no_ipv6
check "br0 on the system datapath" sh -c "ovs-dpctl show | grep -q 'system@ovs-system'"
check "ns1 pings ns2 through br0" $IP netns exec ns1 ping -c 3 -i 0.2 -W 2 10.8.0.2
$IP netns exec ns2 ping -c 2 -i 0.2 -W 2 10.8.0.1 >/dev/null 2>&1
# Right away: max-idle 1 s expires them soon after the traffic stops.
FLOWS_LIVE=$(ovs-dpctl dump-flows | grep -c .)
settle ovs-system
check_gt "ovs-system missed (kernel)" "$MISSED" 0
check_gt "megaflows installed by ovs-vswitchd" "$FLOWS_LIVE" 0
check_eq "ovs-system upcalls{cmd=miss} = missed" \
  "$(metric_sum $M hvtel_ovs_upcalls_total datapath=ovs-system cmd=miss)" "$MISSED"
check_eq "ovs-system upcall failures = lost" \
  "$(metric_sum $M hvtel_ovs_upcall_failures_total datapath=ovs-system)" "$LOST"
ports=$(metric_label_values $M hvtel_ovs_upcalls_total port datapath=ovs-system | tr '\n' ' ')
check "upcalls from port p1 ($ports)" sh -c "echo '$ports' | grep -qw p1"
check "upcalls from port p2 ($ports)" sh -c "echo '$ports' | grep -qw p2"
check_gt "ovs-system flow_changes{op=new}" \
  "$(metric_sum $M hvtel_ovs_datapath_flow_changes_total datapath=ovs-system op=new)" "$((FLOWS_LIVE - 1))"
# max-idle 1 s: the revalidators delete every idle megaflow, one OVS_FLOW_CMD_DEL each.
wait_for 15 sh -c "[ \"\$(ovs-dpctl dump-flows | grep -c .)\" = 0 ]" || note "flows still present after 15 s"
scrape "$URL" $M || fail "scrape failed"
check_gt "ovs-system flow_changes{op=del} after idle expiry" \
  "$(metric_sum $M hvtel_ovs_datapath_flow_changes_total datapath=ovs-system op=del)" "$((FLOWS_LIVE - 1))"
check_eq "lost events" "$(metric_sum $M hvtel_ovs_datapath_lost_events_total)" 0

if [ "$LAB_FAILED" != 0 ]; then
  ovs-vsctl show; ovs-dpctl show; ovs-appctl upcall/show
  echo "--- hvtel OVS series"; grep '^hvtel_ovs_\|^hvtel_probe_attached{probe="ovs' $M
  show_log hvtel
  cp $OVS/*.log "$LAB_OUT/" 2>/dev/null
fi
finish
