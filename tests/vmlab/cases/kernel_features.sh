# lab: requires=testvmm timeout=90
# Validates the lab itself, without hvtel: this stock kernel has the production paths hvtel relies on
# (kvm_amd with module BTF, the kvm/openvswitch tracepoints, kprobes), and a nested guest's exits reach
# kvm:kvm_exit with real SVM exit codes in exactly the number the VMM made.
require_bin TESTVMM

check "kvm_amd loaded" grep -q '^kvm_amd ' /proc/modules
check "kvm_amd nested=1" grep -qxE '1|Y' /sys/module/kvm_amd/parameters/nested
check "/dev/kvm is a char device" test -c /dev/kvm
for m in vmlinux kvm kvm_amd openvswitch; do
  check "BTF /sys/kernel/btf/$m" test -s /sys/kernel/btf/$m
done
for e in kvm/kvm_exit kvm/kvm_entry kvm/kvm_userspace_exit openvswitch/ovs_dp_upcall; do
  check "tracepoint $e" test -f $TRACING/events/$e/format
done
check "kprobe PMU" test -f /sys/bus/event_source/devices/kprobe/type
check "kprobe-able svm_handle_exit" grep -qw svm_handle_exit $TRACING/available_filter_functions
check "fentry target kvm_arch_vcpu_ioctl_run in kallsyms" grep -qw kvm_arch_vcpu_ioctl_run /proc/kallsyms

# 1000 OUTs in one nested vCPU: exactly 1000 SVM_EXIT_IOIO (0x7b), and the final HLT is one SVM_EXIT_HLT (0x78).
hist_on kvm/kvm_exit exit_reason
"$TESTVMM" -n 1 -k 1000 > /tmp/vmm.json 2> /tmp/vmm.err || { cat /tmp/vmm.err; fail "testvmm failed"; }
cat $TRACING/events/kvm/kvm_exit/hist > "$LAB_OUT/kvm_exit.hist"
ioio=$(hist_count kvm/kvm_exit exit_reason 0x7b)
hlt=$(hist_count kvm/kvm_exit exit_reason 0x78)
hist_off kvm/kvm_exit exit_reason
check_eq "testvmm io_exits" "$(jq '.vcpus[0].io_exits' /tmp/vmm.json)" 1000
check_eq "testvmm hlt_exits" "$(jq '.vcpus[0].hlt_exits' /tmp/vmm.json)" 1
check_eq "kvm_exit IOIO (0x7b) count" "$ioio" 1000
check_eq "kvm_exit HLT (0x78) count" "$hlt" 1
[ "$LAB_FAILED" = 0 ] || { cat /tmp/vmm.json; grep -v '^#' "$LAB_OUT/kvm_exit.hist"; }
finish
