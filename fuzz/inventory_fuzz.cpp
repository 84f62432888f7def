// Inventory YAML: parse_inventory, and an inventory it accepts applied to a fixed set of instances
// (matched by uuid, name and pid, with fewer vCPUs than some pins name).
#include "fuzz_input.h"
#include "pinning/inventory.h"

using namespace hvtel;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hvtel::fuzz::Input in(data, size);
  auto inv = pinning::parse_inventory(in.text(), "fuzz");
  if (!inv) return 0;
  std::vector<model::Instance> instances(3);
  instances[0].instance_id = "3b9a7c1e-5d2f-4e8a-9c61-0f7d2a4b8e10";
  instances[0].vcpus = 2;
  instances[1].instance_name = "batch-7";
  instances[1].vcpus = 1;
  instances[2].pid = 4242;
  (void)pinning::apply_inventory(*inv, instances);
  for (const auto& e : inv->entries) (void)pinning::describe(e);
  return 0;
}
