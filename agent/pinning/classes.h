// Pinning-violation classes and intruder kinds, with their stable label values.
//
// Enum values are the PV numbers of nova-libvirt-pinning.md §4, so the kernel
// side can hand over a class as a small integer without a translation table.
// Never renumber; add new classes with their PV number.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace hvtel::pinning {

enum class ViolationClass : uint8_t {
  kOffpinRun = 1,               // PV1, kernel
  kAffinityDrift = 2,           // PV2, agent (static)
  kDedicatedOverlap = 3,        // PV3, agent (static)
  kDedicatedCorun = 4,          // PV4, kernel
  kIntruder = 5,                // PV5, kernel
  kEmulatorPolicyMismatch = 6,  // PV6-lite, agent (static)
  kSharedOnDedicated = 7,       // PV7, agent (static part) + kernel (runtime part)
  kDedicatedMigration = 8,      // PV8, kernel
  kPinChanged = 12,             // PV12, kernel
};

// Every class the registry exports, in exposition order.
inline constexpr std::array<ViolationClass, 9> kAllClasses = {
    ViolationClass::kOffpinRun,          ViolationClass::kAffinityDrift,
    ViolationClass::kDedicatedOverlap,   ViolationClass::kDedicatedCorun,
    ViolationClass::kIntruder,           ViolationClass::kEmulatorPolicyMismatch,
    ViolationClass::kSharedOnDedicated,  ViolationClass::kDedicatedMigration,
    ViolationClass::kPinChanged,
};

// The classes the agent evaluates itself; only these have an `active` gauge.
inline constexpr std::array<ViolationClass, 4> kStaticClasses = {
    ViolationClass::kAffinityDrift, ViolationClass::kDedicatedOverlap,
    ViolationClass::kEmulatorPolicyMismatch, ViolationClass::kSharedOnDedicated,
};

// The `class` label value: offpin_run, affinity_drift, ...
std::string_view class_name(ViolationClass c);
std::optional<ViolationClass> class_from_name(std::string_view name);
// From the PV number (the kernel side's encoding); nullopt for unknown numbers.
std::optional<ViolationClass> class_from_number(unsigned pv);
bool is_static_class(ViolationClass c);

// Who ran on a dedicated pCPU that was not its owner (PV5 attribution).
enum class IntruderKind : uint8_t {
  kKthread = 0,
  kHost = 1,
  kVmVcpu = 2,
  kVmEmulator = 3,
  kVmIothread = 4,
  kVhost = 5,
};
inline constexpr int kIntruderKindCount = 6;

// The `intruder` label value: kthread, host, vm_vcpu, vm_emulator, vm_iothread, vhost.
std::string_view intruder_name(IntruderKind k);
std::optional<IntruderKind> intruder_from_name(std::string_view name);

}  // namespace hvtel::pinning
