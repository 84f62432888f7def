// Pinning-violation classes and intruder kinds, with their stable label values.
//
// kClassSpecs is the one definition of the classes: PV number (the catalogue
// in nova-libvirt-pinning.md §4 and docs/pinning.md), label value, whether the
// agent evaluates it (static) and which enum hv_pv_class the BPF side reports
// it as. Never renumber; add new classes with their PV number.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "hvtel/abi.h"

namespace hvtel::pinning {

// Values are the PV numbers.
enum class ViolationClass : uint8_t {
  kOffpinRun = 1,
  kAffinityDrift = 2,
  kDedicatedOverlap = 3,
  kDedicatedCorun = 4,
  kIntruder = 5,
  kEmulatorPolicyMismatch = 6,
  kSharedOnDedicated = 7,
  kDedicatedMigration = 8,
  kThreadPolicy = 9,
  kFloatingStacking = 10,
  kNumaMisplaced = 11,
  kPinChanged = 12,
  kPinnedCpuUnavailable = 13,
};

inline constexpr int kNotInKernel = -1;

struct ClassSpec {
  ViolationClass cls;
  std::string_view name;  // the `class` label
  bool is_static;         // evaluated by the agent (intent vs. affinity); has an `active` gauge
  int kernel;             // enum hv_pv_class it arrives as from the BPF side, or kNotInKernel
};

// In exposition order.
inline constexpr ClassSpec kClassSpecs[] = {
    {ViolationClass::kOffpinRun, "offpin_run", false, HV_PV_OFFPIN},
    {ViolationClass::kAffinityDrift, "affinity_drift", true, kNotInKernel},
    {ViolationClass::kDedicatedOverlap, "dedicated_overlap", true, kNotInKernel},
    {ViolationClass::kDedicatedCorun, "dedicated_corun", false, HV_PV_CORUN},
    // Counted from per-pCPU foreign runtime (hv_pcpu.foreign_ns), not as a hv_pv_class.
    {ViolationClass::kIntruder, "intruder", false, kNotInKernel},
    {ViolationClass::kEmulatorPolicyMismatch, "emulator_policy_mismatch", true, kNotInKernel},
    // Static part (a shared instance's affinity allows a dedicated pCPU) and runtime part.
    {ViolationClass::kSharedOnDedicated, "shared_on_dedicated", true, HV_PV_SHARED_ON_DEDICATED},
    {ViolationClass::kDedicatedMigration, "dedicated_migration", false, HV_PV_MIGRATION},
    // Static part only: require/isolate against sysfs SMT siblings.
    {ViolationClass::kThreadPolicy, "thread_policy", true, kNotInKernel},
    // Once a second: per-vCPU run-queue wait (hv_sched) and per-pCPU idle time (/proc/stat) over
    // the second since the previous judgement.
    {ViolationClass::kFloatingStacking, "floating_stacking", true, kNotInKernel},
    // At every reconcile: the pCPU a vCPU last ran on (hv_sched.cpu, from sched_switch) against
    // the NUMA nodes numatune binds it to.
    {ViolationClass::kNumaMisplaced, "numa_misplaced", true, kNotInKernel},
    {ViolationClass::kPinChanged, "pin_changed", false, HV_PV_PIN_CHANGED},
    // Read from sysfs at every reconcile: a dedicated pCPU offline or on the powersave governor.
    {ViolationClass::kPinnedCpuUnavailable, "pinned_cpu_unavailable", true, kNotInKernel},
};

namespace detail {
template <bool kStaticOnly>
constexpr auto classes() {
  constexpr size_t n = kStaticOnly ? static_cast<size_t>(std::ranges::count_if(
                                         kClassSpecs, [](const ClassSpec& s) { return s.is_static; }))
                                   : std::size(kClassSpecs);
  std::array<ViolationClass, n> out{};
  size_t i = 0;
  for (const ClassSpec& s : kClassSpecs)
    if (!kStaticOnly || s.is_static) out[i++] = s.cls;
  return out;
}
}  // namespace detail

// Every class the registry exports, in exposition order.
inline constexpr auto kAllClasses = detail::classes<false>();
// The classes the agent evaluates itself; only these have an `active` gauge.
inline constexpr auto kStaticClasses = detail::classes<true>();

// The `class` label value: offpin_run, affinity_drift, ...
std::string_view class_name(ViolationClass c);
std::optional<ViolationClass> class_from_name(std::string_view name);
// From the PV number; nullopt for numbers hvtel does not detect.
std::optional<ViolationClass> class_from_number(unsigned pv);
// From the BPF side's enum hv_pv_class; nullopt for indices no class uses.
std::optional<ViolationClass> class_from_kernel(uint32_t hv_pv_class);
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
// The kernel indexes hv_pcpu.foreign_ns by enum hv_intruder; vhost has no kernel
// index yet (vhost workers are counted as host).
static_assert(static_cast<int>(IntruderKind::kKthread) == HV_INTRUDER_KTHREAD);
static_assert(static_cast<int>(IntruderKind::kHost) == HV_INTRUDER_HOST);
static_assert(static_cast<int>(IntruderKind::kVmVcpu) == HV_INTRUDER_VM_VCPU);
static_assert(static_cast<int>(IntruderKind::kVmEmulator) == HV_INTRUDER_VM_EMULATOR);
static_assert(static_cast<int>(IntruderKind::kVmIothread) == HV_INTRUDER_VM_IOTHREAD);
static_assert(kIntruderKindCount <= HV_INTRUDERS);

// The `intruder` label value: kthread, host, vm_vcpu, vm_emulator, vm_iothread, vhost.
std::string_view intruder_name(IntruderKind k);
std::optional<IntruderKind> intruder_from_name(std::string_view name);

}  // namespace hvtel::pinning
