// nova.conf text: parse_nova_conf, a policy it accepts cross-checked against a fixed host
// topology, and the same bytes as one Nova CPU set spec.
#include "fuzz_input.h"
#include "pinning/host_policy.h"

using namespace hvtel::pinning;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hvtel::fuzz::Input in(data, size);
  if (auto policy = parse_nova_conf(in.text())) {
    static const HostTopology topo{
        .online = {0, 1, 2, 3, 4, 5, 6, 7},
        .siblings = {{0, {0, 4}}, {4, {0, 4}}},
        .numa_node = {{0, 0}, {1, 0}, {2, 1}, {3, 1}},
    };
    (void)check_policy_against_topology(*policy, topo);
  }
  (void)parse_nova_cpu_set(in.text());
  return 0;
}
