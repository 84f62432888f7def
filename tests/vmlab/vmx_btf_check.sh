#!/bin/bash
# Host-side check of the Intel (VMX) path, which the TCG lab cannot run (QEMU TCG emulates SVM, not VMX).
#
#   vmx_btf_check.sh [-k KERNEL] [-v bpf/kvm_types.bpf.h]
#
# hvtel reads the VMX exit reason in tp_btf/kvm_exit through a CO-RE view (preserve_access_index):
#   struct vcpu_vmx___x { struct kvm_vcpu vcpu; ...
#                         union vmx_exit_reason___x { struct { u32 basic:16; ... }; u32 full; } exit_reason; };
# libbpf matches it by field name against the target kernel's kvm_intel module BTF. This script checks that the
# kvm-intel.ko shipped in the same Debian package as the lab kernel (cached by mkimage.sh) has exactly that
# shape, so a kernel that renames or reshapes these fields fails CI here instead of on an Intel host.
#
# Exit: 0 layout as expected, 1 mismatch, 77 cannot check here (image not built) unless CI=true.
set -euo pipefail
CACHE=${HVTEL_LAB_CACHE:-/var/cache/hvtel-lab}
KERNEL=6.1
VIEWS=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/bpf/kvm_types.bpf.h
while getopts "k:v:" o; do case $o in k) KERNEL=$OPTARG ;; v) VIEWS=$OPTARG ;; *) exit 2 ;; esac; done

cannot() {
  echo "vmx_btf_check[$KERNEL]: cannot check: $*" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  exit 77
}
command -v bpftool >/dev/null || cannot "bpftool not installed"
[ -f "$CACHE/img/$KERNEL/kver" ] || cannot "no lab image for $KERNEL (run tests/vmlab/mkimage.sh -k $KERNEL)"
KVER=$(cat "$CACHE/img/$KERNEL/kver")
KD=$CACHE/k/$KVER
[ -f "$KD/vmlinux.btf" ] || cannot "no $KD/vmlinux.btf"
KO=$(find "$KD" -name 'kvm-intel.ko*' | head -1)
[ -n "$KO" ] || { echo "FAIL: no kvm-intel.ko in $KVER"; exit 1; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
case $KO in
  *.xz) xz -dc "$KO" > "$T/kvm-intel.ko" ;; *.zst) zstd -qdc "$KO" > "$T/kvm-intel.ko" ;;
  *) cp "$KO" "$T/kvm-intel.ko" ;;
esac
# Module BTF is split BTF on top of vmlinux: dump the base too, so member types can be resolved by id.
bpftool btf dump file "$KD/vmlinux.btf" format raw > "$T/all.raw"
bpftool btf dump file "$T/kvm-intel.ko" --base-btf "$KD/vmlinux.btf" format raw >> "$T/all.raw"

# Fields hvtel's own CO-RE views use (bpf/kvm_types.bpf.h): each must exist in the target type, or libbpf's
# relocation fails (or, inside a bpf_core_type_exists() guard, the Intel branch silently reads garbage).
view_members() {  # view_members KEYWORD NAME___x: member names declared in that view
  sed -n "/^$1 $2 {/,/^}/p" "$VIEWS" | sed '1d;$d' | grep ';' |
    sed -E 's/[[:space:]]*(:[[:space:]]*[0-9]+)?[[:space:]]*;.*//; s/\[.*\]$//; s/.*[ *]//' | tr '\n' ' '
}
VMX_FIELDS=""; REASON_FIELDS=""
if [ -f "$VIEWS" ]; then
  VMX_FIELDS=$(view_members struct vcpu_vmx___x)
  REASON_FIELDS=$(view_members union vmx_exit_reason___x)
  [ -n "$VMX_FIELDS" ] || { echo "FAIL: no struct vcpu_vmx___x view in $VIEWS"; exit 1; }
fi

echo "checking struct vcpu_vmx / union vmx_exit_reason in kvm-intel.ko of $KVER"
awk -v vmx_fields="$VMX_FIELDS" -v reason_fields="$REASON_FIELDS" -v views="$(basename "$VIEWS")" '
  # [ID] KIND '\''NAME'\'' key=val...   then members: <tab>'\''NAME'\'' type_id=N bits_offset=N [bitfield_size=N]
  /^\[/ {
    id = substr($1, 2, length($1) - 2); kind[id] = $2; nm = $3; gsub("'\''", "", nm); name[id] = nm
    for (i = 4; i <= NF; i++) { split($i, kv, "="); attr[id, kv[1]] = kv[2] }
    if (nm != "(anon)" && !(($2, nm) in byname)) byname[$2, nm] = id
    cur = id; nmem[id] = 0; next
  }
  /^\t'\''/ {
    m = $1; gsub("[\t'\'']", "", m); k = ++nmem[cur]; mname[cur, k] = m
    for (i = 2; i <= NF; i++) { split($i, kv, "="); mattr[cur, k, kv[1]] = kv[2] }
    next
  }
  function resolve(t) {  # strip typedef/const/volatile
    while (kind[t] == "TYPEDEF" || kind[t] == "CONST" || kind[t] == "VOLATILE") t = attr[t, "type_id"]
    return t
  }
  function member(t, m,   k) { for (k = 1; k <= nmem[t]; k++) if (mname[t, k] == m) return k; return 0 }
  function bad(msg) { print "FAIL: " msg; failed = 1 }
  function ok(msg) { print "ok:   " msg }
  END {
    s = byname["STRUCT", "vcpu_vmx"]
    if (s == "") { bad("no struct vcpu_vmx"); exit 1 }
    ok("struct vcpu_vmx (size " attr[s, "size"] ")")
    k = member(s, "vcpu")
    if (!k) bad("vcpu_vmx has no member vcpu")
    else {
      t = resolve(mattr[s, k, "type_id"])
      if (kind[t] != "STRUCT" || name[t] != "kvm_vcpu" || mattr[s, k, "bits_offset"] != 0)
        bad("vcpu_vmx.vcpu is not struct kvm_vcpu at offset 0")
      else ok("vcpu_vmx.vcpu: struct kvm_vcpu at offset 0")
    }
    k = member(s, "exit_reason")
    if (!k) { bad("vcpu_vmx has no member exit_reason"); exit 1 }
    u = resolve(mattr[s, k, "type_id"])
    if (kind[u] != "UNION" || attr[u, "size"] != 4) { bad("vcpu_vmx.exit_reason is " kind[u] " size " attr[u, "size"] ", want a 4-byte union"); exit 1 }
    ok("vcpu_vmx.exit_reason: union " name[u] " at byte " mattr[s, k, "bits_offset"] / 8)
    f = member(u, "full")
    if (!f) bad("exit_reason has no member full")
    else {
      t = resolve(mattr[u, f, "type_id"])
      if (kind[t] != "INT" || attr[t, "size"] != 4 || mattr[u, f, "bits_offset"] != 0) bad("exit_reason.full is not a 4-byte int at 0")
      else ok("exit_reason.full: 4-byte int")
    }
    found = 0
    for (j = 1; j <= nmem[u]; j++) {
      t = resolve(mattr[u, j, "type_id"])
      if (mname[u, j] != "(anon)" || kind[t] != "STRUCT") continue
      b = member(t, "basic")
      if (!b) continue
      found = 1
      if (mattr[t, b, "bits_offset"] != 0 || mattr[t, b, "bitfield_size"] != 16)
        bad("exit_reason.basic is at bit " mattr[t, b, "bits_offset"] " with " mattr[t, b, "bitfield_size"] " bits, want 0 and 16")
      else ok("exit_reason.basic: bits 0-15")
      fv = member(t, "failed_vmentry")
      if (fv && mattr[t, fv, "bits_offset"] == 31) ok("exit_reason.failed_vmentry: bit 31")
    }
    if (!found) bad("exit_reason has no anonymous struct with member basic")
    n = split(vmx_fields, vf, " ")
    for (j = 1; j <= n; j++)
      if (member(s, vf[j])) ok(views ": vcpu_vmx___x." vf[j] " exists"); else bad(views ": vcpu_vmx has no member " vf[j])
    n = split(reason_fields, rf, " ")
    for (j = 1; j <= n; j++) {
      hit = member(u, rf[j])
      for (i = 1; !hit && i <= nmem[u]; i++)   # members of the anonymous struct count as union members
        if (mname[u, i] == "(anon)") hit = member(resolve(mattr[u, i, "type_id"]), rf[j])
      if (hit) ok(views ": vmx_exit_reason___x." rf[j] " exists"); else bad(views ": vmx_exit_reason has no member " rf[j])
    }
    exit failed
  }' "$T/all.raw"
