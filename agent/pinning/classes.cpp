#include "pinning/classes.h"

namespace hvtel::pinning {

namespace {

const ClassSpec* spec_of(ViolationClass c) {
  for (const ClassSpec& s : kClassSpecs)
    if (s.cls == c) return &s;
  return nullptr;
}

}  // namespace

std::string_view class_name(ViolationClass c) {
  const ClassSpec* s = spec_of(c);
  return s ? s->name : "unknown";
}

std::optional<ViolationClass> class_from_name(std::string_view name) {
  for (const ClassSpec& s : kClassSpecs)
    if (s.name == name) return s.cls;
  return std::nullopt;
}

std::optional<ViolationClass> class_from_number(unsigned pv) {
  for (const ClassSpec& s : kClassSpecs)
    if (static_cast<unsigned>(s.cls) == pv) return s.cls;
  return std::nullopt;
}

std::optional<ViolationClass> class_from_kernel(uint32_t hv_pv_class) {
  for (const ClassSpec& s : kClassSpecs)
    if (s.kernel != kNotInKernel && static_cast<uint32_t>(s.kernel) == hv_pv_class) return s.cls;
  return std::nullopt;
}

bool is_static_class(ViolationClass c) {
  const ClassSpec* s = spec_of(c);
  return s && s->is_static;
}

std::string_view intruder_name(IntruderKind k) {
  switch (k) {
    case IntruderKind::kKthread: return "kthread";
    case IntruderKind::kHost: return "host";
    case IntruderKind::kVmVcpu: return "vm_vcpu";
    case IntruderKind::kVmEmulator: return "vm_emulator";
    case IntruderKind::kVmIothread: return "vm_iothread";
    case IntruderKind::kVhost: return "vhost";
  }
  return "unknown";
}

std::optional<IntruderKind> intruder_from_name(std::string_view name) {
  for (int i = 0; i < kIntruderKindCount; ++i) {
    auto k = static_cast<IntruderKind>(i);
    if (intruder_name(k) == name) return k;
  }
  return std::nullopt;
}

}  // namespace hvtel::pinning
