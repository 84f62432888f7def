// The vcpu_sched BPF object: scheduler hooks for tracked threads, sharing the
// thread table and slots of the already loaded vcpu_exits object.
#pragma once

#include "base/bpf/object.h"

namespace hvtel::sched {

// `shared` is the loaded vcpu_exits object whose maps the programs reuse.
bpf::ObjectSpec sched_object_spec(const bpf::BpfObject& shared);

}  // namespace hvtel::sched
