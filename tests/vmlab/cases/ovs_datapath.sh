# lab: timeout=120
# Open vSwitch on the kernel datapath (openvswitch.ko), the environment hvtel's OVS datapath metrics will be
# tested in: a bare datapath driven by ovs-dpctl, then ovsdb-server + ovs-vswitchd with bridge br0 and two
# network namespaces pinging each other through it.
#
# Template for OVS datapath cases: add hvtel before the traffic (`start_bg hvtel "$HVTEL" serve --listen
# 127.0.0.1:PORT`, `requires=hvtel` in the header), then scrape and compare with `ovs-dpctl show` /
# `ovs-appctl upcall/show` and the openvswitch tracepoints (hist_on openvswitch/ovs_dp_upcall ...).
# Gotchas: busybox sh runs its own applets first, and busybox ip has no veth/netns: use $IP (/usr/bin/ip).
# OVS 3.1's ovs-vswitchd started before ~10 s of uptime gets 0 upcall handler threads and installs no flows:
# start it with ovs_start_vswitchd (lib.sh: a time namespace with CLOCK_MONOTONIC 100 s ahead) rather than
# /usr/lib/openvswitch-switch/ovs-vswitchd, or `wait_uptime 11` first (costs ~7 s per boot).
ovs_env

check "openvswitch module loaded" grep -q '^openvswitch ' /proc/modules

# --- 1. bare kernel datapath, no daemons
$IP link add a0 type veth peer name a1 && $IP link set a0 up && $IP link set a1 up
check "ovs-dpctl add-dp dp0" ovs-dpctl add-dp dp0
check "ovs-dpctl add-if dp0 a1" ovs-dpctl add-if dp0 a1
check_eq "dp0 ports" "$(ovs-dpctl show dp0 | grep -c 'port [0-9]')" 2   # the internal port + a1
check "ovs-dpctl del-dp dp0" ovs-dpctl del-dp dp0
$IP link del a0

# --- 2. ovsdb-server + ovs-vswitchd, br0 on the system datapath, ns1 <-> ns2
ovs_daemons_start
note "ovs-vswitchd started at uptime $(cut -d' ' -f1 /proc/uptime) s"
trap ovs_daemons_stop EXIT
ovs-vsctl add-br br0 || fail "add-br br0"
netns_pair_on_bridge br0
check "br0 is on the system (kernel) datapath" sh -c "ovs-dpctl show | grep -q 'system@ovs-system'"
check "ns1 pings ns2 through br0" $IP netns exec ns1 ping -c 3 -i 0.2 -W 2 10.8.0.2
# Flows exist only if ovs-vswitchd's upcall handlers ran (the 11 s gotcha above would leave none).
check_gt "kernel datapath flows installed by ovs-vswitchd" "$(ovs-dpctl dump-flows | grep -c .)" 0
if [ "$LAB_FAILED" != 0 ]; then
  ovs-vsctl show; ovs-dpctl show; ovs-appctl upcall/show
  cp $OVS/*.log "$LAB_OUT/" 2>/dev/null
fi
finish
