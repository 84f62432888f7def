// Debug tool (not a test): connects to a bridge's .mgmt socket, waits for the
// INITIAL snapshot and prints the mirror in canonical form, one flow a line,
// next to the identities parsed from `ovs-ofctl dump-flows --no-names` text
// given on stdin. Usage: hvtel_ovs_probe <bridge> <sock>  < dump.txt
#include <chrono>
#include <iostream>
#include <iterator>
#include <set>
#include <thread>

#include "dump_flows_parser.h"
#include "ovs/openflow/flow_mirror.h"
#include "ovs/openflow/flow_monitor.h"

int main(int argc, char** argv) {
  using namespace hvtel::ovs;
  if (argc != 3) {
    std::cerr << "usage: hvtel_ovs_probe <bridge> <mgmt-socket> < dump.txt\n";
    return 2;
  }
  FlowMirror mirror(argv[1]);
  FlowMonitorClient client(argv[1], argv[2], mirror);
  if (!client.start()) return 1;
  for (int i = 0; i < 500 && !mirror.view_complete(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  client.stop();
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  auto dump = parse_dump_flows(text);
  std::set<std::string> a, b;
  for (const auto& id : mirror.identities()) a.insert(id.to_string());
  for (const auto& f : dump.flows) b.insert(f.id.to_string());
  for (const auto& e : dump.errors) std::cout << "PARSE ERROR " << e << "\n";
  for (const auto& s : a) std::cout << (b.contains(s) ? "  = " : "  M ") << s << "\n";
  for (const auto& s : b) {
    if (!a.contains(s)) std::cout << "  D " << s << "\n";
  }
  std::cout << "mirror " << a.size() << " dump " << b.size() << "\n";
  return a == b ? 0 : 1;
}
