# lab: requires=hvtel,testvmm timeout=240
# `hvtel trace upcalls` on a real kernel datapath (openvswitch.ko), against the kernel's own miss count.
# Two test VMMs each hold a tap (as QEMU holds a guest NIC's tap) on a bare datapath with no upcall listener,
# so every frame their "guests" write misses and makes exactly one upcall:
#   A. standalone, --instance vif1: the kernel filter is vif1's tap. vif1 sends N frames and vif2 M: the trace
#      shows exactly N upcalls, all miss, all from t1, all vif1's, with the frames' headers; the datapath's missed
#      count grew by N + M.
#   B. through the agent (--agent): the agent loads the object while followed; both VMMs send again and the
#      follower of vif1 sees exactly its N upcalls (the CLI filters by instance), a follower of every instance
#      N of vif1 and M of vif2, named by the taps the VMMs hold.
#   C. nothing is left attached once the followers are gone.
# IPv6 is off on every interface the case creates: router solicitations would make upcalls at random times.
require_bin HVTEL
require_bin TESTVMM
ovs_env

U1=4c61622d-6876-7465-6c2d-0000000000a1
U2=4c61622d-6876-7465-6c2d-0000000000a2
N=25
M=7
EVPORT=9479

cleanup() {
  stop_bg trace
  stop_bg agent_trace
  stop_bg raw
  stop_bg hvtel
  stop_bg vmm1
  stop_bg vmm2
  ovs-dpctl del-dp dp0 2>/dev/null
}
trap cleanup EXIT

dp_missed() { ovs-dpctl show dp0 | sed -n 's/.*lookups:.* missed:\([0-9]*\).*/\1/p' | head -1; }
# send VMM: SIGUSR2 makes the test VMM write its frames; wait for its "TAP <name> <count>" line.
send() {
  _before=$(grep -c '^TAP ' "/tmp/$1.log")
  kill -USR2 "$(cat "/tmp/$1.pid")"
  wait_for 20 sh -c "[ \$(grep -c '^TAP ' /tmp/$1.log) -gt $_before ]" || { show_log "$1"; fail "$1 sent no frames"; }
}
# upcalls FILE: the JSON lines of type upcall in FILE.
upcalls() { grep '"type":"upcall"' "$1" 2>/dev/null || true; }
count_upcalls() { upcalls "$1" | wc -l; }

no_ipv6
grep -q "^openvswitch " /proc/modules || fail "openvswitch.ko not loaded"
ovs-dpctl add-dp dp0 || fail "ovs-dpctl add-dp dp0"
start_bg vmm1 "$TESTVMM" -n 1 -k 1 --hold 200 --tap t1 --tap-frames $N -uuid $U1 -name guest=vif1,debug-threads=on
start_bg vmm2 "$TESTVMM" -n 1 -k 1 --hold 200 --tap t2 --tap-frames $M -uuid $U2 -name guest=vif2,debug-threads=on
wait_for 30 grep -q '"ok"' /tmp/vmm1.log || { show_log vmm1; fail "vmm1 did not run"; }
wait_for 30 grep -q '"ok"' /tmp/vmm2.log || { show_log vmm2; fail "vmm2 did not run"; }
for t in t1 t2; do
  $IP link set $t up || fail "ip link set $t up"
  ovs-dpctl add-if dp0 $t || fail "ovs-dpctl add-if dp0 $t"
done
sleep 1

# --- A. standalone, --instance vif1 --------------------------------------------------------------------------
start_bg trace "$HVTEL" trace upcalls --instance vif1 --json --stats-interval 0.5
wait_for 30 grep -q 'tracing pid' /tmp/trace.log || { show_log trace; fail "trace upcalls did not start"; }
check "standalone: ovs_dp_upcall attached" grep -q 'ovs_dp_upcall=tp_btf\|ovs_dp_upcall=raw_tp' /tmp/trace.log
m0=$(dp_missed)
send vmm1
send vmm2
m1=$(dp_missed)
check_eq "dp0 missed grew by N + M (kernel)" $((m1 - m0)) $((N + M))
want_n() { [ "$(count_upcalls /tmp/trace.log)" -ge $N ]; }
wait_for 20 want_n
sleep 1  # anything more (vif2's, a stray one) would have arrived by now
stop_bg trace
cp /tmp/trace.log "$LAB_OUT/trace-standalone.log"
check_eq "standalone: upcalls traced" "$(count_upcalls /tmp/trace.log)" $N
check_eq "standalone: all of vif1" "$(upcalls /tmp/trace.log | jq -r .instance_id | sort -u)" $U1
check_eq "standalone: instance_name" "$(upcalls /tmp/trace.log | jq -r .instance_name | sort -u)" vif1
check_eq "standalone: port" "$(upcalls /tmp/trace.log | jq -r .port | sort -u)" t1
check_eq "standalone: datapath" "$(upcalls /tmp/trace.log | jq -r .datapath | sort -u)" dp0
check_eq "standalone: cmd" "$(upcalls /tmp/trace.log | jq -r .cmd | sort -u)" miss
check_eq "standalone: len" "$(upcalls /tmp/trace.log | jq -r .len | sort -u)" 60
check_eq "standalone: packet" "$(upcalls /tmp/trace.log | jq -r .packet | sort -u)" \
  "52:54:00:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype 0x88b5"
check_eq "standalone: summary: events" "$(grep '"type":"summary"' /tmp/trace.log | jq .events)" $N
check_eq "standalone: summary: dropped" "$(grep '"type":"summary"' /tmp/trace.log | jq .dropped)" 0

# --- B. through the agent -------------------------------------------------------------------------------------
start_bg hvtel "$HVTEL" serve --listen 127.0.0.1:9903 --events-listen 127.0.0.1:$EVPORT --libvirt-uri ""
wait_for 60 curl -sf http://127.0.0.1:9903/metrics || { show_log hvtel; fail "hvtel serve did not answer"; }
# Two followers: every instance's upcalls, and the CLI's view of vif1.
start_bg raw "$HVTEL" trace upcalls --agent 127.0.0.1:$EVPORT --json
start_bg agent_trace "$HVTEL" trace upcalls --agent 127.0.0.1:$EVPORT --instance vif1 --json
agent_attached() { grep -q '"kind":"attached"' /tmp/agent_trace.log; }
wait_for 30 agent_attached || { show_log agent_trace; show_log hvtel; fail "the agent did not attach the upcall trace"; }
check "agent: trace_upcalls loaded while followed" sh -c "bpftool prog show | grep -q hv_trace_upcal"
m0=$(dp_missed)
send vmm1
send vmm2
m1=$(dp_missed)
check_eq "agent: dp0 missed grew by N + M (kernel)" $((m1 - m0)) $((N + M))
want_n_agent() { [ "$(grep -c '"upcall"' /tmp/agent_trace.log)" -ge $N ]; }
wait_for 20 want_n_agent
want_all_raw() { [ "$(grep -c '"kind":"upcall"' /tmp/raw.log)" -ge $((N + M)) ]; }
wait_for 20 want_all_raw
sleep 1
stop_bg agent_trace
stop_bg raw
cp /tmp/agent_trace.log "$LAB_OUT/trace-agent.log"
cp /tmp/raw.log "$LAB_OUT/events-raw.log"
check_eq "agent: upcalls the follower saw" "$(grep -c '"upcall"' /tmp/agent_trace.log)" $N
check_eq "agent: all of vif1" \
  "$(grep '"upcall"' /tmp/agent_trace.log | jq -r .instance_id | sort -u)" $U1
check_eq "agent: event stream, vif1's" "$(grep '"kind":"upcall"' /tmp/raw.log | grep -c "\"$U1\"")" $N
check_eq "agent: event stream, vif2's" "$(grep '"kind":"upcall"' /tmp/raw.log | grep -c "\"$U2\"")" $M
check_eq "agent: event stream, port of vif2's" \
  "$(grep '"kind":"upcall"' /tmp/raw.log | grep "\"$U2\"" | grep -c '"port":"t2"')" $M

# --- C. nothing left attached -----------------------------------------------------------------------------------
detached() { grep -q 'upcalls trace detached' /tmp/hvtel.log; }
wait_for 30 detached
check "agent: trace object unloaded once nobody follows" detached
check "no trace_upcalls program left loaded" sh -c "! bpftool prog show 2>/dev/null | grep -q hv_trace_upcal"

if [ "$LAB_FAILED" != 0 ]; then
  show_log trace; show_log agent_trace; show_log raw; show_log hvtel
  ovs-dpctl show dp0
fi
finish
