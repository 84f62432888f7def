// The vcpu_exits BPF object: its hooks (one attach variant each is chosen at
// load time) and its configuration.
#pragma once

#include <cstdint>

#include "bpf/object.h"
#include "hvtel/abi.h"

namespace hvtel::kvm {

struct ExitProbeOptions {
  uint32_t max_vcpus = HV_MAX_VCPU_SLOTS_DEFAULT;
};

bpf::ObjectSpec exit_object_spec(const ExitProbeOptions& opts);

}  // namespace hvtel::kvm
