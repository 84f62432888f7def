# Helpers for VM-lab cases (busybox sh inside the guest; sourced before every case by run.sh).
#
# Failing: `fail MSG` exits 1 at once; the `check_*` helpers record a failure, print it and carry on so one run
# reports every mismatch; `finish` (call it last) exits 1 if any check failed. `skip MSG` exits 77 (a skip on a
# developer machine, a failure in CI).

LAB_FAILED=0
TRACING=/sys/kernel/tracing

fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
note() { echo "-- $*"; }

check() {  # check DESCRIPTION COMMAND...   (passes when the command succeeds)
  _d=$1; shift
  if "$@" >/dev/null 2>&1; then echo "ok:   $_d"; else echo "FAIL: $_d"; LAB_FAILED=1; fi
}
check_eq() {  # check_eq DESCRIPTION GOT WANT
  if [ "$2" = "$3" ]; then echo "ok:   $1 = $3"; else echo "FAIL: $1: got '$2', want '$3'"; LAB_FAILED=1; fi
}
check_gt() {  # check_gt DESCRIPTION GOT MIN   (integers or floats)
  if awk -v g="$2" -v m="$3" 'BEGIN { exit !(g + 0 > m + 0) }'; then echo "ok:   $1 = $2 > $3"
  else echo "FAIL: $1: got '$2', want > $3"; LAB_FAILED=1; fi
}
finish() {
  if [ "$LAB_FAILED" = 0 ]; then echo "PASS"; exit 0; fi
  echo "FAILED"; exit 1
}

# require_bin VAR: the binary named by $VAR must be executable (run.sh checked it on the host already).
require_bin() {
  eval "_b=\${$1:-}"
  [ -n "$_b" ] || fail "\$$1 is not set"
  [ -x "$_b" ] || fail "\$$1=$_b is not executable in the guest"
}

# wait_for SECONDS COMMAND...: retry the command until it succeeds or SECONDS of wall time pass. (Counted on
# /proc/uptime, not in iterations: under TCG one iteration can take a second when the guest is busy.)
wait_for() {
  _end=$(awk -v t="$1" '{ print $1 + t }' /proc/uptime); shift
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    awk -v e="$_end" '{ exit !($1 >= e) }' /proc/uptime && return 1
    sleep 0.2
  done
}

# wait_uptime SECONDS: until the guest has been up that long.
wait_uptime() {
  while [ "$(cut -d. -f1 /proc/uptime)" -lt "$1" ]; do sleep 0.2; done
}

# --- tracefs hist triggers: exact kernel-side counts, independent of hvtel -----------------------------------
# hist_on EVENT KEY / hist_off EVENT KEY, e.g. hist_on kvm/kvm_exit exit_reason
hist_on()  { echo "hist:keys=$2:vals=hitcount" > "$TRACING/events/$1/trigger"; }
hist_off() { echo "!hist:keys=$2:vals=hitcount" > "$TRACING/events/$1/trigger" 2>/dev/null; }
# hist_count EVENT KEY VALUE: hitcount of one key value (0 if absent). Values are matched numerically, so
# 0x7b and 123 are the same key. hist_total EVENT: sum over every key.
hist_count() {
  awk -v key="$2" -v want="$3" '
    function num(s,   i, n, d) {   # busybox awk has no strtonum
      if (s !~ /^0x/) return s + 0
      n = 0; s = tolower(substr(s, 3))
      for (i = 1; i <= length(s); i++) { d = index("0123456789abcdef", substr(s, i, 1)) - 1; n = n * 16 + d }
      return n
    }
    $0 ~ "^{ *" key ":" {
      v = $0; sub("^{ *" key ": *", "", v); sub(" *}.*", "", v)
      h = $0; sub(".*hitcount: *", "", h); sub(" .*", "", h)
      if (num(v) == num(want)) n += h
    }
    END { print n + 0 }' "$TRACING/events/$1/hist"
}
# tracing_map counts an event whose new key it could not insert (two CPUs racing to add the same key, seen
# with both vCPUs halting at once) under Dropped, not Hits: the event still fired, so the total is both.
hist_total() {
  awk '/^ *Hits:/ { h = $2 } /^ *Dropped:/ { d = $2 } END { print h + d }' "$TRACING/events/$1/hist"
}

# --- Prometheus text format -------------------------------------------------------------------------------
# metric_sum FILE NAME [LABEL=VALUE]...: sum of every sample of NAME whose labels include all the given
# pairs (other labels are ignored). Prints 0 when no sample matches; metric_has tells those apart.
metric_sum() {
  _f=$1; _m=$2; shift 2
  awk -v name="$_m" -v want="$*" '
    BEGIN { nw = split(want, w, " ") }
    $0 ~ /^#/ { next }
    {
      series = $1; val = $2
      if (series ~ /\{/) { base = series; sub(/\{.*/, "", base); labels = series; sub(/^[^{]*\{/, "", labels) }
      else { base = series; labels = "" }
      if (base != name) next
      # the value is the last field: labels may contain spaces in quoted values
      val = $NF
      for (i = 1; i <= nw; i++) {
        split(w[i], kv, "="); pat = kv[1] "=\"" kv[2] "\""
        if (index("," labels, "," pat) == 0 && index(labels, pat) != 1) next
      }
      s += val; found = 1
    }
    END { if (found) printf "%.17g\n", s; else print 0 }' "$_f"
}
metric_has() {
  _f=$1; _m=$2; shift 2
  _pat=$_m; [ $# -gt 0 ] && _pat="$_m{"
  grep -q "^$_pat" "$_f" || return 1
  for _kv in "$@"; do grep "^$_m{" "$_f" | grep -q "${_kv%%=*}=\"${_kv#*=}\"" || return 1; done
}
# metric_label_values FILE NAME LABEL [LABEL=VALUE]...: sorted distinct values of LABEL among matching samples.
metric_label_values() {
  _f=$1; _m=$2; _l=$3; shift 3
  grep "^$_m{" "$_f" | while read -r _line; do
    _ok=1
    for _kv in "$@"; do case $_line in *"${_kv%%=*}=\"${_kv#*=}\""*) ;; *) _ok=0 ;; esac; done
    [ $_ok = 1 ] && echo "$_line" | sed -n "s/.*[{,]$_l=\"\([^\"]*\)\".*/\1/p"
  done | sort -u
}

# scrape URL FILE: fetch /metrics into FILE. The last scrape of each FILE is also saved as $LAB_OUT/<name>.prom:
# run.sh lints it with the host's promtool, and keeps it with the console log when the case fails.
scrape() {
  curl -sf --max-time 10 "$1" -o "$2" || return 1
  if [ -n "${LAB_OUT:-}" ]; then _b=$(basename "$2"); cp "$2" "$LAB_OUT/${_b%.*}.prom"; fi
  return 0
}

# wait_scrape SECONDS NAME URL FILE: until URL answers (scraped into FILE); fails at once, with NAME's log, if the
# background process NAME (see start_bg) exits first.
wait_scrape() {
  _end=$(awk -v t="$1" '{ print $1 + t }' /proc/uptime)
  while :; do
    scrape "$3" "$4" && return 0
    _p=$(cat "/tmp/$2.pid" 2>/dev/null)
    if ! kill -0 "$_p" 2>/dev/null; then
      wait "$_p" 2>/dev/null; _st=$?   # 128+N: killed by signal N (139 SIGSEGV, 134 SIGABRT)
      show_log "$2"; fail "$2 exited with status $_st before $3 answered"
    fi
    awk -v e="$_end" '{ exit !($1 >= e) }' /proc/uptime && { show_log "$2"; fail "$3 did not answer within $1 s"; }
    sleep 0.2
  done
}

# start_bg NAME CMD...: start a daemon in the background, remember its pid in /tmp/NAME.pid; stop_bg NAME.
start_bg() {
  _n=$1; shift
  "$@" > "/tmp/$_n.log" 2>&1 &
  echo $! > "/tmp/$_n.pid"
}
stop_bg() {
  [ -f "/tmp/$1.pid" ] || return 0
  _p=$(cat "/tmp/$1.pid")
  kill "$_p" 2>/dev/null
  wait_for 5 sh -c "! kill -0 $_p" || kill -9 "$_p" 2>/dev/null
  rm -f "/tmp/$1.pid"
}
# show_log NAME: print a daemon's log (on failure).
show_log() { echo "--- /tmp/$1.log"; cat "/tmp/$1.log" 2>/dev/null; }

# ovs_start_vswitchd ARGS...: start /usr/lib/openvswitch-switch/ovs-vswitchd ARGS (use --detach) in a time
# namespace whose CLOCK_MONOTONIC runs 100 s ahead. OVS 3.1 counts 0 CPU cores while its monotonic clock is
# below 10 s, so an ovs-vswitchd started early in a fresh guest gets 0 upcall handler threads and installs no
# flows; the offset makes it behave as if started later, instead of idling until uptime passes 11 s.
ovs_start_vswitchd() {
  /usr/bin/unshare --time --monotonic 100 --fork /usr/lib/openvswitch-switch/ovs-vswitchd "$@"
}

# OVS daemons in a private directory ($OVS, default /tmp/ovs): ovs_env exports the OVS_*DIR variables (call it
# before any ovs-* tool), ovs_daemons_start creates the database and starts ovsdb-server and ovs-vswitchd
# (through ovs_start_vswitchd), ovs_daemons_stop stops both (for a trap).
ovs_env() {
  OVS=${OVS:-/tmp/ovs}
  export OVS OVS_RUNDIR=$OVS OVS_DBDIR=$OVS OVS_LOGDIR=$OVS OVS_SYSCONFDIR=$OVS
  mkdir -p "$OVS"
}
ovs_daemons_start() {
  ovsdb-tool create $OVS/conf.db /usr/share/openvswitch/vswitch.ovsschema || fail "ovsdb-tool create"
  ovsdb-server $OVS/conf.db --remote=punix:$OVS/db.sock --pidfile --detach --log-file 2>/dev/null ||
    fail "ovsdb-server"
  ovs-vsctl --no-wait init || fail "ovs-vsctl init"
  ovs_start_vswitchd unix:$OVS/db.sock --pidfile --detach --log-file 2>/dev/null || fail "ovs-vswitchd"
}
ovs_daemons_stop() {
  ovs-appctl -t ovs-vswitchd exit 2>/dev/null
  ovs-appctl -t ovsdb-server exit 2>/dev/null
}

no_ipv6() {  # no_ipv6 [NETNS]: for the interfaces created from now on (and the existing ones)
  for k in all default; do
    if [ -n "${1:-}" ]; then $IP netns exec "$1" sysctl -qw net.ipv6.conf.$k.disable_ipv6=1
    else sysctl -qw net.ipv6.conf.$k.disable_ipv6=1; fi
  done
}

# netns_pair_on_bridge BRIDGE [no_ipv6]: network namespaces ns1 and ns2 with 10.8.0.1/24 and 10.8.0.2/24 on
# veths v1 and v2, whose peers p1 and p2 become ports of BRIDGE. With no_ipv6, IPv6 is off in both
# namespaces before the veths move in.
netns_pair_on_bridge() {
  for n in 1 2; do
    $IP netns add ns$n
    if [ "${2:-}" = no_ipv6 ]; then no_ipv6 ns$n; fi
    $IP link add v$n type veth peer name p$n
    $IP link set v$n netns ns$n
    $IP -n ns$n addr add 10.8.0.$n/24 dev v$n
    $IP -n ns$n link set v$n up
    $IP -n ns$n link set lo up
    $IP link set p$n up
    ovs-vsctl add-port "$1" p$n || fail "add-port p$n"
  done
}
