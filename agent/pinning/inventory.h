// The inventory file: declared pinning intent for VMMs on hosts without
// libvirt (--inventory FILE). Discovery (procfs) finds the VMM processes; this
// file says how each one was meant to be placed.
//
// Format (YAML). Every key is checked; unknown keys are errors.
//
//   # hvtel inventory
//   vmms:
//     - uuid: 3b9a7c1e-5d2f-4e8a-9c61-0f7d2a4b8e10  # the VMM's -uuid argument
//       policy: dedicated                          # dedicated | shared (required)
//       vcpu_pins: {0: "2", 1: "3"}                # vCPU index -> cpuset; one pCPU each
//       emulator_pin: "0"                          # optional
//       iothread_pins: {1: "0"}                    # optional, iothread id -> cpuset
//       numa_nodeset: "0"                          # optional, like <numatune><memory nodeset>
//     - name: batch-7                              # -name guest=batch-7 (or -name batch-7)
//       policy: shared
//       cpuset: "0-1,^1"                           # optional, like <vcpu cpuset>
//     - pid: 4242                                  # a VMM process id
//       policy: dedicated
//       vcpu_pins: {0: "1"}
//
// Rules:
// - each entry has exactly one of uuid (8-4-4-4-12 hex, case-insensitive),
//   name (non-empty) or pid (> 0); no two entries may name the same VMM;
// - cpusets use Nova/libvirt syntax (ranges, commas, ^ exclusions);
// - `dedicated` needs vcpu_pins, each a single pCPU, no two vCPUs on the same
//   pCPU, and no `cpuset`;
// - `shared` may have vcpu_pins (NUMA-style multi-CPU pins) and/or cpuset.
// - vCPU indexes are 0..4095, iothread ids 1..4096.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/model/instance.h"
#include "base/util/result.h"

namespace hvtel::pinning {

enum class MatchKind { kUuid, kName, kPid };

struct InventoryEntry {
  MatchKind match = MatchKind::kUuid;
  std::string uuid;  // lower-case, for kUuid
  std::string name;  // for kName
  pid_t pid = 0;     // for kPid
  int line = 0;      // 1-based line of the entry in the file
  model::PinIntent intent;
};

// "uuid 3b9a...", "name batch-7", "pid 4242".
std::string describe(const InventoryEntry& e);

struct Inventory {
  std::string origin;  // file path (or a label), prefixed to error messages
  std::vector<InventoryEntry> entries;
};

// Parses and validates inventory YAML. Errors read
// "<origin>:<line>: vmms[1].vcpu_pins.0: '3-' is not a cpuset: invalid range expression '3-'".
Result<Inventory> parse_inventory(std::string_view yaml, std::string_view origin = "inventory");
Result<Inventory> load_inventory(const std::string& path);

struct InventoryApplyReport {
  int applied = 0;                     // instances whose intent was set
  std::vector<std::string> unmatched;  // entries that matched no instance: "line 7: name batch-7"
  std::vector<std::string> conflicts;  // instances matched by more than one entry (first wins)
  std::vector<std::string> warnings;   // e.g. a pin for a vCPU index the VMM does not have
};

// Sets `intent` (and its policy) of every instance an entry matches, replacing
// whatever intent it had; the inventory is the operator's word. Match order:
// an instance takes the first entry (file order) that matches it by uuid
// (against instance_id), name (against instance_name) or pid.
InventoryApplyReport apply_inventory(const Inventory& inventory,
                                     std::vector<model::Instance>& instances);

}  // namespace hvtel::pinning
