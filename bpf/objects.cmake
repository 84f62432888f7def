set(_common ${CMAKE_SOURCE_DIR}/include/hvtel/abi.h
            ${CMAKE_CURRENT_SOURCE_DIR}/common.bpf.h
            ${CMAKE_CURRENT_SOURCE_DIR}/kvm_types.bpf.h)
bpf_object(vcpu_exits vcpu_exits.bpf.c DEPENDS ${_common} ${CMAKE_CURRENT_SOURCE_DIR}/vcpu_slot.bpf.h)
bpf_object(feature_probe feature_probe.bpf.c)
bpf_object(vcpu_sched vcpu_sched.bpf.c DEPENDS ${_common} ${CMAKE_CURRENT_SOURCE_DIR}/core_fixes.bpf.h)
bpf_object(ovs_dp ovs_dp.bpf.c DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/ovs_types.bpf.h ${CMAKE_SOURCE_DIR}/agent/ovs_dp/ovs_dp_abi.h)
