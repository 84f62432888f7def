#include "base/bpf/kernel.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <fstream>

#include "base/util/files.h"
#include "base/util/strings.h"

namespace hvtel::bpf {

KernelBtf::KernelBtf() {
  vmlinux_ = btf__load_vmlinux_btf();
  if (!vmlinux_) vmlinux_ = nullptr;
  if (auto names = list_dir("/sys/kernel/btf")) {
    for (auto& n : *names)
      if (n != "vmlinux") modules_.push_back(n);
  }
}

KernelBtf::~KernelBtf() {
  for (auto& [_, b] : module_btf_) btf__free(b);
  btf__free(vmlinux_);
}

bool KernelBtf::has_type(const std::string& name, int kind) const {
  return !type_owner(name, kind).empty();
}

std::string KernelBtf::type_owner(const std::string& name, int kind) const {
  if (vmlinux_ && btf__find_by_name_kind(vmlinux_, name.c_str(), kind) > 0) return "vmlinux";
  if (!vmlinux_) return "";
  for (const auto& m : modules_) {
    auto it = module_btf_.find(m);
    if (it == module_btf_.end()) {
      struct btf* b = btf__load_module_btf(m.c_str(), vmlinux_);
      if (!b) b = nullptr;
      it = module_btf_.emplace(m, b).first;
    }
    if (!it->second) continue;
    // Module BTF is split BTF: ids below the base count resolve to vmlinux, so
    // only a match above the base is the module's own type.
    int id = btf__find_by_name_kind(it->second, name.c_str(), kind);
    if (id > 0 && static_cast<unsigned>(id) >= btf__type_cnt(vmlinux_)) return m;
  }
  return "";
}

std::optional<std::string> tracefs_root() {
  for (const char* p : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    struct stat st;
    if (::stat((std::string(p) + "/events").c_str(), &st) == 0) return std::string(p);
  }
  return std::nullopt;
}

bool tracepoint_exists(const std::string& system, const std::string& name) {
  auto root = tracefs_root();
  if (!root) return false;
  struct stat st;
  return ::stat((*root + "/events/" + system + "/" + name).c_str(), &st) == 0;
}

bool kallsyms_has(const std::string& function) {
  std::ifstream in("/proc/kallsyms");
  std::string addr, type, sym;
  while (in >> addr >> type >> sym) {
    if (sym == function) return true;
    in.ignore(4096, '\n');
  }
  return false;
}

KernelInfo read_kernel_info(const KernelBtf& btf) {
  KernelInfo k;
  struct utsname u;
  if (::uname(&u) == 0) k.release = u.release;
  k.btf_vmlinux = btf.vmlinux_present();
  k.module_btf = btf.modules();
  if (auto s = read_file("/proc/sys/kernel/bpf_stats_enabled"))
    k.bpf_stats_enabled = trim(*s) == "1";
  if (auto s = read_file("/sys/kernel/security/lockdown")) {
    // "none [integrity] confidentiality": the bracketed one is active.
    auto b = s->find('['), e = s->find(']');
    if (b != std::string::npos && e != std::string::npos && e > b)
      k.lockdown = s->substr(b + 1, e - b - 1);
  }
  struct stat st;
  k.kvm_loaded = ::stat("/dev/kvm", &st) == 0;
  k.openvswitch_loaded = ::stat("/sys/module/openvswitch", &st) == 0;
  return k;
}

}  // namespace hvtel::bpf
