# lab: requires=hvtel timeout=60
# `hvtel status --json` on a stock distro kernel sees what the production kernel offers: tp_btf, fentry and
# kprobes are available, and kvm_exit/kvm_entry pick tp_btf (the cheapest hook, resolved through module BTF).
require_bin HVTEL

"$HVTEL" status --json > "$LAB_OUT/status.json" 2> /tmp/status.err ||
  { cat /tmp/status.err; fail "hvtel status --json failed"; }
S=$LAB_OUT/status.json
jq -e . "$S" >/dev/null || { cat "$S"; fail "status output is not JSON"; }
j() { jq -r "$1" "$S"; }

check_eq "kernel.release" "$(j .kernel.release)" "$(uname -r)"
check_eq "kernel.btf_vmlinux" "$(j .kernel.btf_vmlinux)" true
for m in kvm kvm_amd openvswitch; do
  check_eq "kernel.module_btf has $m" "$(j "[.kernel.module_btf[] | select(. == \"$m\")] | length")" 1
done
for f in tp_btf raw_tp tracepoint fentry kprobe ringbuf; do
  check_eq "kernel.features.$f" "$(j ".kernel.features.$f")" true
done
for p in kvm_exit kvm_entry; do
  check_eq "probe $p available" "$(j ".probes[] | select(.probe == \"$p\") | .available")" true
  check_eq "probe $p attach" "$(j ".probes[] | select(.probe == \"$p\") | .attach")" tp_btf
done
[ "$LAB_FAILED" = 0 ] || jq . "$S"
finish
