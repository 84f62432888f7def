// The instance model shared by every discovery source (procfs, libvirt,
// inventory file) and every consumer (BPF thread maps, collectors, pinning
// rules, OVS port mapping). Plain data: sources fill it, consumers read it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hvtel::model {

// Where an instance was learned from. Values are the `source` label of
// hvtel_instances{source}.
enum class Source { kProcfs, kLibvirt, kInventory };
const char* source_name(Source s);

enum class CpuPolicy { kUnknown, kShared, kDedicated, kMixed };

// Intended placement, from domain XML <cputune>/<vcpu cpuset>, Nova policy or
// the inventory file. Empty vectors mean "no pin given".
struct PinIntent {
  std::map<int, std::vector<int>> vcpu_pins;      // vCPU index -> pCPUs (vcpupin)
  std::vector<int> vcpu_cpuset;                   // <vcpu cpuset='...'> (unpinned guests)
  std::vector<int> emulator_pin;                  // <emulatorpin>
  std::map<int, std::vector<int>> iothread_pins;  // iothread id -> pCPUs
  std::map<int, std::vector<int>> numa_memnodes;  // guest cell -> host nodes (numatune memnode)
  std::vector<int> numa_nodeset;                  // <numatune><memory nodeset>: every vCPU's nodes
  std::map<int, int> vcpu_cells;                  // vCPU -> guest NUMA cell (<cpu><numa><cell cpus>)
  CpuPolicy policy = CpuPolicy::kUnknown;         // explicit (extra spec/inventory) or inferred
  std::string thread_policy;                      // inventory: prefer, require, isolate ("" unset)
};

// A guest network interface as the domain describes it (OVS joins on these).
struct Interface {
  std::string target_dev;   // tapXXXXXXXX-XX
  std::string mac;          // lower-case aa:bb:cc:dd:ee:ff
  std::string interface_id; // Neutron port UUID (virtualport interfaceid), may be empty
};

// Nova attributes from <nova:instance> metadata (namespace 1.1, else 1.0).
struct NovaInfo {
  std::string ns_version;   // "1.1" or "1.0"
  std::string display_name; // <nova:name>
  std::string flavor_name;
  std::string flavor_id;
  int flavor_vcpus = 0;
  uint64_t flavor_memory_mib = 0;
  std::map<std::string, std::string> extra_specs;
  std::string user_id, user_name, project_id, project_name;
  std::string creation_time;
  std::vector<std::string> port_ids;  // <nova:port uuid>
};

struct ThreadInfo {
  pid_t tid = 0;
  int index = -1;  // vCPU index or iothread id; -1 for the emulator
};

struct Instance {
  std::string instance_id;    // Nova/domain/-uuid UUID, else "pid-<tgid>"
  std::string instance_name;  // Nova display name, -name guest=, or process name
  std::string domain;         // libvirt domain name (instance-0000abcd), may be empty
  Source source = Source::kProcfs;
  pid_t pid = 0;              // VMM process (QEMU) pid, 0 while not running
  int vcpus = 0;              // configured vCPU count, 0 if unknown
  std::vector<ThreadInfo> vcpu_threads;
  std::vector<ThreadInfo> emulator_threads;
  std::vector<ThreadInfo> iothreads;
  PinIntent intent;
  std::optional<NovaInfo> nova;
  std::vector<Interface> interfaces;
};

}  // namespace hvtel::model
