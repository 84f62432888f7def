set(_common ${CMAKE_SOURCE_DIR}/include/hvtel/abi.h
            ${CMAKE_CURRENT_SOURCE_DIR}/common.bpf.h
            ${CMAKE_CURRENT_SOURCE_DIR}/kvm_types.bpf.h)
bpf_object(vcpu_exits vcpu_exits.bpf.c DEPENDS ${_common})
bpf_object(feature_probe feature_probe.bpf.c)
