# lab: requires=hvtel timeout=120
# A real QEMU (-accel kvm on the lab's kvm_amd) boots SeaBIOS in a 2-vCPU L2 guest for about 4 s under
# `hvtel serve --per-vcpu`: its exits are attributed to its -uuid, on both vCPUs (threads "CPU n/KVM").
require_bin HVTEL

U2=4c61622d-6876-7465-6c2d-000000000002
PORT=9901
URL=http://127.0.0.1:$PORT/metrics
M=/tmp/metrics.txt

start_bg hvtel "$HVTEL" serve --listen 127.0.0.1:$PORT --per-vcpu
trap 'stop_bg hvtel; stop_bg qemu' EXIT
wait_scrape 30 hvtel "$URL" $M

start_bg qemu qemu-system-x86_64 -accel kvm -m 64 -smp 2 -nodefaults -display none -monitor none \
  -serial none -name guest=l2,debug-threads=on -uuid $U2 -L /usr/share/seabios -L /usr/share/qemu
# Scrape while QEMU runs (its instance may leave the metrics once it is gone); give hvtel's discovery time.
sleep 2
both_vcpus_seen() {
  scrape "$URL" $M && [ "$(metric_label_values $M hvtel_vcpu_exits_total vcpu instance_id=$U2 | tr '\n' ' ')" = "0 1 " ]
}
wait_for 10 both_vcpus_seen
scrape "$URL" $M || fail "scrape failed"
kill -0 "$(cat /tmp/qemu.pid)" 2>/dev/null || { show_log qemu; fail "QEMU died"; }
stop_bg qemu

check_gt "exits for instance $U2" "$(metric_sum $M hvtel_vcpu_exits_total instance_id=$U2)" 0
check_eq "vcpu labels" "$(metric_label_values $M hvtel_vcpu_exits_total vcpu instance_id=$U2 | tr '\n' ' ')" "0 1 "
if [ "$LAB_FAILED" != 0 ]; then
  grep "$U2" $M; show_log qemu; show_log hvtel
  echo "--- threads"; for t in /proc/[0-9]*/task/*/comm; do echo "$t $(cat $t)"; done | grep -i 'cpu\|qemu'
fi
finish
