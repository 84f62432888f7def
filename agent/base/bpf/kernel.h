// What the running kernel offers to BPF: BTF (vmlinux and modules), tracefs,
// tracepoints and the program types hvtel can use. Facts are probed at run
// time, never assumed from the version: bpftool's feature probe says "tracing
// not available" on kernels that refuse fentry yet accept tp_btf.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/util/result.h"

struct btf;

namespace hvtel::bpf {

class KernelBtf {
 public:
  KernelBtf();
  ~KernelBtf();
  KernelBtf(const KernelBtf&) = delete;
  KernelBtf& operator=(const KernelBtf&) = delete;

  bool vmlinux_present() const { return vmlinux_ != nullptr; }
  // Names of the modules that have BTF under /sys/kernel/btf.
  const std::vector<std::string>& modules() const { return modules_; }
  // True when vmlinux or any module BTF has a type of this name and kind
  // (BTF_KIND_*), e.g. ("btf_trace_kvm_exit", BTF_KIND_TYPEDEF).
  bool has_type(const std::string& name, int kind) const;
  // The module (or "vmlinux") defining a type, empty when none does.
  std::string type_owner(const std::string& name, int kind) const;

 private:
  struct btf* vmlinux_ = nullptr;
  std::vector<std::string> modules_;
  mutable std::map<std::string, struct btf*> module_btf_;  // loaded lazily
};

// tracefs mount point ("/sys/kernel/tracing" or the debugfs one), if mounted.
std::optional<std::string> tracefs_root();
bool tracepoint_exists(const std::string& system, const std::string& name);
// Whether a kernel function is listed in /proc/kallsyms (for kprobes).
bool kallsyms_has(const std::string& function);

struct KernelInfo {
  std::string release;
  bool btf_vmlinux = false;
  std::vector<std::string> module_btf;
  std::optional<bool> bpf_stats_enabled;
  std::string lockdown;  // "none", "integrity", "confidentiality" or "" if unknown
  bool kvm_loaded = false;
  bool openvswitch_loaded = false;
};

KernelInfo read_kernel_info(const KernelBtf& btf);

}  // namespace hvtel::bpf
