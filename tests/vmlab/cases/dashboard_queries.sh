# lab: requires=hvtel,testvmm timeout=330 kernels=6.12 files=/usr/bin/prometheus,deploy/grafana/hvtel.json
# Every query of the Grafana dashboard (deploy/grafana/hvtel.json), template variables included, run against
# a real Prometheus that scrapes hvtel on a real SVM hypervisor: the test VMM's guest making exits (paced, so
# its vCPUs sleep and wake), openvswitch.ko with ovs-vswitchd and a VIF of that instance passing traffic, a
# planted pinning violation (inventory intent the VMM's threads do not follow) and a planted dirty flow.
# Each variable must list exactly the lab's zone, rack, hypervisor and instance; each panel query, with the
# variables set to them, must return at least one sample that is not NaN.
require_bin HVTEL
require_bin TESTVMM
PROMETHEUS=$LAB_FILES/prometheus
DASH=$LAB_FILES/hvtel.json
[ -x "$PROMETHEUS" ] || fail "no prometheus in $LAB_FILES"

U=4c61622d-6876-7465-6c2d-0000000000d1
NAME=web-1
PORT=9904
URL=http://127.0.0.1:$PORT/metrics
PROM=http://127.0.0.1:9090
M=/tmp/metrics.txt
ovs_env

cleanup() {
  stop_bg ping; stop_bg vmm; stop_bg prometheus; stop_bg hvtel
  ovs_daemons_stop
}
trap cleanup EXIT

# --- the hypervisor: OVS with the instance's VIF, a dirty flow, pinning intent ------------------------------
no_ipv6
ovs_daemons_start
# Megaflows idle out after 0.5 s, so the paced ping below keeps making upcalls and flow installs.
ovs-vsctl add-br br0 -- set Open_vSwitch . other_config:max-idle=500 || fail "add-br br0"
netns_pair_on_bridge br0 no_ipv6
ovs-vsctl set Interface p1 external_ids:vm-uuid=$U external_ids:iface-id=port-web-1 || fail "VIF p1"
# Dirty: output to an OpenFlow port that does not exist (rule output_to_missing_ofport). UDP discard only,
# so the ping still takes the NORMAL flow.
ovs-ofctl add-flow br0 "priority=50,udp,tp_dst=9,actions=output:99" || fail "add-flow"
start_bg ping $IP netns exec ns1 ping -i 1 10.8.0.2

# Intent: each vCPU dedicated to one pCPU; the VMM runs unpinned, so affinity_drift holds.
cat > /tmp/inventory.yaml <<EOF
vmms:
  - uuid: $U
    policy: dedicated
    vcpu_pins: {0: "0", 1: "1"}
EOF
sysctl -qw kernel.bpf_stats_enabled=1 || fail "kernel.bpf_stats_enabled"

# --pinning-zero-series: the pinning panels must return data for a guest that has not (yet) violated.
start_bg hvtel "$HVTEL" serve --listen 127.0.0.1:$PORT --libvirt-uri "" --ovs-rundir $OVS \
  --inventory /tmp/inventory.yaml --pinning-zero-series
wait_scrape 60 hvtel "$URL" $M
start_bg vmm "$TESTVMM" -n 2 --storm 600 -d 2000 -uuid $U -name guest=$NAME,debug-threads=on
instance_seen() { scrape "$URL" $M && grep -q "^hvtel_instance_info{.*instance_name=\"$NAME\"" $M; }
wait_for 30 instance_seen || { cat $M; show_log hvtel; show_log vmm; fail "hvtel does not list $NAME"; }

# --- Prometheus, labelling the target the way the shipped scrape configurations do --------------------------
cat > /tmp/prometheus.yml <<EOF
global: {scrape_interval: 2s, evaluation_interval: 2s}
scrape_configs:
  - job_name: hvtel
    static_configs:
      - targets: ["127.0.0.1:$PORT"]
        labels: {zone: lab-z1, rack: lab-r1, hypervisor: lab-hv1}
EOF
start_bg prometheus "$PROMETHEUS" --config.file=/tmp/prometheus.yml --storage.tsdb.path=/tmp/prom \
  --web.listen-address=127.0.0.1:9090
prom_up() {
  curl -sfG --max-time 5 "$PROM/api/v1/query" --data-urlencode 'query=up{job="hvtel"} == 1' |
    jq -e '.data.result | length == 1'
}
wait_for 90 prom_up || { show_log prometheus; fail "Prometheus did not scrape hvtel"; }
# Rates over $__rate_interval (20 s here) need samples across the window: let 30 s of scrapes accumulate.
T_UP=$(cut -d. -f1 /proc/uptime)
wait_uptime $((T_UP + 30))
check "the guest still runs" kill -0 "$(cat /tmp/vmm.pid)"

# --- template variables -----------------------------------------------------------------------------------
SUBST=/tmp/subst.sed   # the chosen variable values, applied to every later query
: > $SUBST
# Longest names first would matter only if one name prefixed another; none does.
jq -r '.templating.list[] | select(.type == "query") | "\(.name)\t\(.definition)"' "$DASH" > /tmp/vars.tsv
check_eq "template variables" "$(cut -f1 /tmp/vars.tsv | tr '\n' ' ')" "zone rack hypervisor instance "
while IFS="$(printf '\t')" read -r var def; do
  q=$(echo "$def" | sed -f $SUBST)
  sel=$(echo "$q" | sed -n 's/^label_values(\(.*\), *\([a-z_]*\))$/\1/p')
  label=$(echo "$q" | sed -n 's/^label_values(\(.*\), *\([a-z_]*\))$/\2/p')
  [ -n "$sel" ] && [ -n "$label" ] || { check_eq "variable $var: label_values(SELECTOR, LABEL)" "$def" "?"; continue; }
  values=$(curl -sfG "$PROM/api/v1/label/$label/values" --data-urlencode "match[]=$sel" | jq -r '.data[]')
  case $var in
    zone) want=lab-z1 ;; rack) want=lab-r1 ;; hypervisor) want=lab-hv1 ;; instance) want=$NAME ;;
  esac
  check_eq "variable $var" "$(echo $values)" "$want"
  echo "s/\\\$$var\\b/$want/g" >> $SUBST
done < /tmp/vars.tsv
echo 's/\$__rate_interval/20s/g' >> $SUBST

# --- every panel query --------------------------------------------------------------------------------------
NOW=$(date +%s)
jq -r '.panels[] | select(.targets) | .title as $t | .targets[] |
       "\($t) [\(.refId)]\t\(if .instant then "instant" else "range" end)\t\(.expr)"' "$DASH" > /tmp/queries.tsv
N=0
while IFS="$(printf '\t')" read -r what kind expr; do
  N=$((N + 1))
  q=$(echo "$expr" | sed -f $SUBST)
  case $q in *'$'[a-z_]*) check_eq "$what: unresolved variable" "$q" "?"; continue ;; esac
  if [ "$kind" = instant ]; then
    curl -sfG "$PROM/api/v1/query" --data-urlencode "query=$q" --data-urlencode "time=$NOW" > /tmp/r.json
    n=$(jq '[.data.result[] | select(.value[1] != "NaN")] | length' /tmp/r.json)
  else
    curl -sfG "$PROM/api/v1/query_range" --data-urlencode "query=$q" --data-urlencode "start=$((NOW - 10))" \
      --data-urlencode "end=$NOW" --data-urlencode "step=2" > /tmp/r.json
    n=$(jq '[.data.result[].values[] | select(.[1] != "NaN")] | length' /tmp/r.json)
  fi
  status=$(jq -r .status /tmp/r.json 2>/dev/null)
  printf '%s\t%s\t%s\n' "$what" "${n:-error}" "$q" >> "$LAB_OUT/dashboard-queries.tsv"
  if [ "$status" = success ] && [ "${n:-0}" -gt 0 ]; then echo "ok:   $what: $n samples"
  else echo "FAIL: $what: ${n:-no} samples (status ${status:-none}): $q"; cat /tmp/r.json; echo; LAB_FAILED=1; fi
done < /tmp/queries.tsv
check_gt "panel queries run" $N 30

# The planted problems are what the panels show, by name.
inst() { curl -sfG "$PROM/api/v1/query" --data-urlencode "query=$1" | jq -r "$2"; }
check_eq "pinning panel: the violation, by Nova name" \
  "$(inst 'hvtel_pinning_violation_active{class="affinity_drift"} * on (hypervisor, instance_id) group_left (instance_name) hvtel_instance_info == 1' \
     '.data.result[] | "\(.metric.instance_name) \(.metric.class)"')" "$NAME affinity_drift"
check_eq "dirty-flow panel: the planted flow" \
  "$(inst 'sum by (bridge, rule) (hvtel_ovs_dirty_flows) > 0' '.data.result[] | "\(.metric.bridge) \(.metric.rule) \(.value[1])"')" \
  "br0 output_to_missing_ofport 1"

if [ "$LAB_FAILED" != 0 ]; then
  scrape "$URL" $M; show_log hvtel; show_log vmm; show_log prometheus
  cp $OVS/*.log "$LAB_OUT/" 2>/dev/null
fi
finish
