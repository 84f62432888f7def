# hvtel_core: everything but main(), so tests link the real code.
configure_file(${CMAKE_SOURCE_DIR}/include/hvtel/version.h.in
               ${CMAKE_BINARY_DIR}/include/hvtel/version.h @ONLY)

add_library(hvtel_core STATIC
  bpf/kernel.cpp
  bpf/object.cpp
  bpf/prog_stats.cpp
  bpf/probe_set.cpp
  bpf/vcpu_maps.cpp
  cli/http_client.cpp
  cli/prom_text.cpp
  cli/serve.cpp
  cli/status.cpp
  cli/top.cpp
  cli/trace.cpp
  discovery/procfs.cpp
  discovery/vcpu_tracker.cpp
  events/event_hub.cpp
  events/event_server.cpp
  events/pinning_source.cpp
  kvm/exit_probes.cpp
  kvm/exit_reasons.cpp
  kvm/vmm_timing.cpp
  metrics/agent_collector.cpp
  metrics/exit_collector.cpp
  metrics/family.cpp
  metrics/process_collector.cpp
  metrics/sched_collector.cpp
  sched/pin_sync.cpp
  sched/sched_probes.cpp)
target_include_directories(hvtel_core PUBLIC ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_BINARY_DIR}/include)
target_link_libraries(hvtel_core PUBLIC
  hvtel_util hvtel_pinning hvtel_libvirt hvtel_ovs_service hvtel_ovs_dp hvtel_web vcpu_exits_skel vcpu_sched_skel feature_probe_skel
  PkgConfig::LIBBPF prometheus-cpp::core prometheus-cpp::pull
  nlohmann_json::nlohmann_json Threads::Threads civetweb::civetweb-cpp)
hvtel_warnings(hvtel_core)

find_package(CLI11 REQUIRED)
add_executable(hvtel main.cpp)
target_link_libraries(hvtel PRIVATE hvtel_core CLI11::CLI11)
set_target_properties(hvtel PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
hvtel_warnings(hvtel)
