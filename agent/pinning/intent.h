// Effective pinning intent per instance: the policy (declared or inferred),
// the dedicated pCPUs D(I) and, per tracked thread, the CPUs it may run on.
// This is what the static checks compare with and what the kernel side's pin
// bitmaps should be built from.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/model/instance.h"
#include "pinning/host_policy.h"

namespace hvtel::pinning {

enum class ThreadRole { kVcpu, kEmulator, kIothread };
std::string_view role_name(ThreadRole r);  // "vcpu", "emulator", "iothread"

// Where a thread's allowed set came from, most specific first.
enum class AllowedSource {
  kPin,         // its own vcpupin / emulatorpin / iothreadpin
  kVcpuCpuset,  // <vcpu cpuset> (libvirt applies it to every thread without a pin)
  kHostCpus,    // nothing declared: all online host CPUs
  kUnknown,     // nothing declared and the host CPUs are unknown; not checkable
};

struct ThreadIntent {
  pid_t tid = 0;
  ThreadRole role = ThreadRole::kVcpu;
  int index = -1;             // vCPU index or iothread id; -1 for the emulator
  std::vector<int> allowed;   // sorted; empty for kUnknown
  AllowedSource source = AllowedSource::kUnknown;
  // vCPUs only: the host NUMA nodes numatune binds it to (its cell's memnode,
  // else <memory nodeset>); empty when nothing binds it (PV11 skips it).
  std::vector<int> numa_nodes;
};

// A named, declared CPU set of an instance that is not one of its dedicated
// pCPUs: "vcpu cpuset", "vcpupin 2", "emulatorpin", "iothreadpin 1".
struct PinPart {
  std::string what;
  std::vector<int> cpus;
};

struct ResolvedIntent {
  std::string instance_id;
  pid_t pid = 0;
  model::CpuPolicy policy = model::CpuPolicy::kUnknown;  // effective
  bool inferred = false;            // policy derived from the pins, not declared
  std::map<int, int> dedicated_vcpus;  // vCPU -> its dedicated pCPU
  std::vector<int> dedicated;          // D(I), sorted
  std::vector<PinPart> floating;       // every declared set besides D(I)
  std::string emulator_policy;         // hw:emulator_threads_policy ("" when unknown)
  std::string thread_policy;           // hw:cpu_thread_policy or inventory ("" when unknown)
  std::vector<ThreadIntent> threads;   // vCPU, emulator and iothreads, in that order
};

// True when the instance declares anything pinning-related: a policy, a pin or
// a cpuset. Only such instances are tracked (checked and exported).
bool has_intent(const model::Instance& inst);

// Resolves one instance. Policy precedence: intent.policy (libvirt source or
// inventory) > Nova extra spec hw:cpu_policy > inference. Inference: every
// vCPU (all of them when the count is known) has a single-pCPU pin, no two
// share a pCPU, and, when cpu_dedicated_set is known, all lie inside it ->
// dedicated; otherwise any pin or cpuset -> shared.
// D(I): the single-pCPU vcpupins of a dedicated instance; for `mixed`, those
// inside cpu_dedicated_set (all single-pCPU pins when the set is unknown).
// host_cpus: the online CPUs, used for threads with nothing declared.
ResolvedIntent resolve_intent(const model::Instance& inst, const HostPolicy& policy,
                              const std::vector<int>& host_cpus);

// resolve_intent for every instance with has_intent(), in input order.
std::vector<ResolvedIntent> resolve_intents(const std::vector<model::Instance>& instances,
                                            const HostPolicy& policy,
                                            const std::vector<int>& host_cpus);

}  // namespace hvtel::pinning
