#include "pinning/classes.h"

namespace hvtel::pinning {

std::string_view class_name(ViolationClass c) {
  switch (c) {
    case ViolationClass::kOffpinRun: return "offpin_run";
    case ViolationClass::kAffinityDrift: return "affinity_drift";
    case ViolationClass::kDedicatedOverlap: return "dedicated_overlap";
    case ViolationClass::kDedicatedCorun: return "dedicated_corun";
    case ViolationClass::kIntruder: return "intruder";
    case ViolationClass::kEmulatorPolicyMismatch: return "emulator_policy_mismatch";
    case ViolationClass::kSharedOnDedicated: return "shared_on_dedicated";
    case ViolationClass::kDedicatedMigration: return "dedicated_migration";
    case ViolationClass::kPinChanged: return "pin_changed";
  }
  return "unknown";
}

std::optional<ViolationClass> class_from_name(std::string_view name) {
  for (ViolationClass c : kAllClasses) {
    if (class_name(c) == name) return c;
  }
  return std::nullopt;
}

std::optional<ViolationClass> class_from_number(unsigned pv) {
  for (ViolationClass c : kAllClasses) {
    if (static_cast<unsigned>(c) == pv) return c;
  }
  return std::nullopt;
}

bool is_static_class(ViolationClass c) {
  for (ViolationClass s : kStaticClasses) {
    if (s == c) return true;
  }
  return false;
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
