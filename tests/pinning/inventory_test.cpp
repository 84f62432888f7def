#include "pinning/inventory.h"

#include <gtest/gtest.h>

namespace hvtel::pinning {
namespace {

using V = std::vector<int>;

constexpr const char* kValid = R"(# hvtel inventory
vmms:
  - uuid: 3B9A7C1E-5D2F-4E8A-9C61-0F7D2A4B8E10
    policy: dedicated
    vcpu_pins: {0: "2", 1: 3}
    emulator_pin: "0"
    iothread_pins: {1: "0-1,^1"}
  - name: batch-7
    policy: shared
    cpuset: "0-1"
    numa_nodeset: "1"
  - pid: 4242
    policy: dedicated
    vcpu_pins:
      0: "1"
)";

TEST(Inventory, ParsesTheDocumentedShape) {
  auto inv = parse_inventory(kValid, "inv.yaml");
  ASSERT_TRUE(inv) << inv.error().message;
  ASSERT_EQ(inv->entries.size(), 3u);
  const auto& a = inv->entries[0];
  EXPECT_EQ(a.match, MatchKind::kUuid);
  EXPECT_EQ(a.uuid, "3b9a7c1e-5d2f-4e8a-9c61-0f7d2a4b8e10");
  EXPECT_EQ(a.line, 3);
  EXPECT_EQ(a.intent.policy, model::CpuPolicy::kDedicated);
  EXPECT_EQ(a.intent.vcpu_pins, (std::map<int, V>{{0, {2}}, {1, {3}}}));
  EXPECT_EQ(a.intent.emulator_pin, (V{0}));
  EXPECT_EQ(a.intent.iothread_pins, (std::map<int, V>{{1, {0}}}));
  const auto& b = inv->entries[1];
  EXPECT_EQ(b.match, MatchKind::kName);
  EXPECT_EQ(b.name, "batch-7");
  EXPECT_EQ(b.line, 8);
  EXPECT_EQ(b.intent.policy, model::CpuPolicy::kShared);
  EXPECT_EQ(b.intent.vcpu_cpuset, (V{0, 1}));
  EXPECT_EQ(b.intent.numa_nodeset, (V{1}));
  EXPECT_TRUE(a.intent.numa_nodeset.empty());
  const auto& c = inv->entries[2];
  EXPECT_EQ(c.match, MatchKind::kPid);
  EXPECT_EQ(c.pid, 4242);
  EXPECT_EQ(c.line, 12);
  EXPECT_EQ(c.intent.vcpu_pins, (std::map<int, V>{{0, {1}}}));
}

TEST(Inventory, EmptyListIsValid) {
  auto inv = parse_inventory("vmms:\n");
  ASSERT_TRUE(inv);
  EXPECT_TRUE(inv->entries.empty());
}

struct BadCase {
  const char* yaml;
  const char* error;
};

class InventoryErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(InventoryErrors, NameTheLine) {
  auto inv = parse_inventory(GetParam().yaml, "inv.yaml");
  ASSERT_FALSE(inv);
  EXPECT_EQ(inv.error().message, GetParam().error);
}

INSTANTIATE_TEST_SUITE_P(
    Strict, InventoryErrors,
    ::testing::Values(
        BadCase{"", "inv.yaml: empty inventory (expected 'vmms:')"},
        BadCase{"hosts: []\n", "inv.yaml:1: top level: unknown key 'hosts' (known: vmms)"},
        BadCase{"vmms: {a: 1}\n", "inv.yaml:1: vmms: expected a list of VMMs"},
        BadCase{"vmms:\n  - [1, 2\n",
                "inv.yaml:3: end of sequence flow not found"},
        BadCase{"vmms:\n  - pid: 7\n    policy: dedicated\n    vcpu_pins: {0: \"1\"}\n"
                "    color: red\n",
                "inv.yaml:5: vmms[0]: unknown key 'color' (known: uuid, name, pid, policy, "
                "thread_policy, vcpu_pins, cpuset, emulator_pin, iothread_pins, numa_nodeset)"},
        BadCase{"vmms:\n  - pid: 7\n    policy: dedicated\n    thread_policy: solo\n",
                "inv.yaml:4: vmms[0].thread_policy: 'solo' is not one of prefer, require, isolate"},
        BadCase{"vmms:\n  - pid: 7\n    policy: shared\n    numa_nodeset: \"0-\"\n",
                "inv.yaml:4: vmms[0].numa_nodeset: '0-' is not a cpuset: invalid range "
                "expression '0-'"},
        BadCase{"vmms:\n  - pid: 7\n    policy: dedicated\n    vcpu_pins: {0: \"1-\"}\n",
                "inv.yaml:4: vmms[0].vcpu_pins.0: '1-' is not a cpuset: invalid range "
                "expression '1-'"},
        BadCase{"vmms:\n  - pid: 7\n    policy: shared\n    cpuset: \"3-1\"\n",
                "inv.yaml:4: vmms[0].cpuset: '3-1' is not a cpuset: invalid range expression "
                "'3-1'"},
        BadCase{"vmms:\n  - pid: 7\n    policy: shared\n    emulator_pin: [1]\n",
                "inv.yaml:4: vmms[0].emulator_pin: expected a scalar value"},
        BadCase{"vmms:\n  - pid: 7\n    policy: fast\n",
                "inv.yaml:3: vmms[0].policy: 'fast' is not one of dedicated, shared"},
        BadCase{"vmms:\n  - pid: 7\n    name: x\n    policy: shared\n",
                "inv.yaml:2: vmms[0]: needs exactly one of uuid, name, pid"},
        BadCase{"vmms:\n  - policy: shared\n",
                "inv.yaml:2: vmms[0]: needs exactly one of uuid, name, pid"},
        BadCase{"vmms:\n  - pid: 7\n", "inv.yaml:2: vmms[0]: missing 'policy' (dedicated or shared)"},
        BadCase{"vmms:\n  - pid: 0\n    policy: shared\n",
                "inv.yaml:2: vmms[0].pid: '0' is not an integer in 1..4194304"},
        BadCase{"vmms:\n  - uuid: not-a-uuid\n    policy: shared\n",
                "inv.yaml:2: vmms[0].uuid: 'not-a-uuid' is not a UUID"},
        BadCase{"vmms:\n  - pid: 7\n    pid: 8\n    policy: shared\n",
                "inv.yaml:3: vmms[0]: duplicate key 'pid'"},
        BadCase{"vmms:\n  - pid: 7\n    policy: shared\n    vcpu_pins: {0: \"1\", 0: \"2\"}\n",
                "inv.yaml:4: vmms[0].vcpu_pins: duplicate key 0"},
        BadCase{"vmms:\n  - pid: 7\n    policy: shared\n    vcpu_pins: {-1: \"1\"}\n",
                "inv.yaml:4: vmms[0].vcpu_pins: '-1' is not an integer in 0..4095"},
        BadCase{"vmms:\n  - pid: 7\n    policy: shared\n    iothread_pins: {0: \"1\"}\n",
                "inv.yaml:4: vmms[0].iothread_pins: '0' is not an integer in 1..4096"},
        BadCase{"vmms:\n  - pid: 7\n    policy: dedicated\n",
                "inv.yaml:2: vmms[0]: a dedicated VMM needs vcpu_pins"},
        BadCase{"vmms:\n  - pid: 7\n    policy: dedicated\n    vcpu_pins:\n      0: \"1\"\n"
                "      1: \"2-3\"\n",
                "inv.yaml:6: vmms[0].vcpu_pins.1: a dedicated vCPU is pinned to one pCPU, got "
                "'2-3'"},
        BadCase{"vmms:\n  - pid: 7\n    policy: dedicated\n    vcpu_pins:\n      0: \"1\"\n"
                "      1: \"1\"\n",
                "inv.yaml:6: vmms[0].vcpu_pins.1: pCPU 1 is already pinned to vCPU 0"},
        BadCase{"vmms:\n  - pid: 7\n    policy: dedicated\n    vcpu_pins: {0: \"1\"}\n"
                "    cpuset: \"0-1\"\n",
                "inv.yaml:5: vmms[0].cpuset: cpuset is for shared VMMs; use vcpu_pins"},
        BadCase{"vmms:\n  - name: a\n    policy: shared\n  - pid: 9\n    policy: shared\n"
                "  - name: a\n    policy: shared\n",
                "inv.yaml:6: vmms[2]: duplicate entry: name a already declared at line 2"},
        BadCase{"vmms:\n  - uuid: 3b9a7c1e-5d2f-4e8a-9c61-0f7d2a4b8e10\n    policy: shared\n"
                "  - uuid: 3B9A7C1E-5D2F-4E8A-9C61-0F7D2A4B8E10\n    policy: shared\n",
                "inv.yaml:4: vmms[1]: duplicate entry: uuid 3b9a7c1e-5d2f-4e8a-9c61-0f7d2a4b8e10 "
                "already declared at line 2"}));

model::Instance instance(std::string id, std::string name, pid_t pid, int vcpus = 0) {
  model::Instance i;
  i.instance_id = std::move(id);
  i.instance_name = std::move(name);
  i.pid = pid;
  i.vcpus = vcpus;
  return i;
}

TEST(InventoryApply, MatchesByUuidNameAndPid) {
  auto inv = parse_inventory(kValid, "inv.yaml").value();
  std::vector<model::Instance> instances = {
      instance("3b9a7c1e-5d2f-4e8a-9c61-0f7d2a4b8e10", "vm-a", 100, 2),
      instance("pid-4242", "qemu-system-x86", 4242, 1),
      instance("pid-555", "other", 555),
  };
  auto report = apply_inventory(inv, instances);
  EXPECT_EQ(report.applied, 2);
  EXPECT_EQ(report.unmatched, (std::vector<std::string>{"line 8: name batch-7"}));
  EXPECT_TRUE(report.conflicts.empty());
  EXPECT_TRUE(report.warnings.empty());
  EXPECT_EQ(instances[0].intent.vcpu_pins, (std::map<int, V>{{0, {2}}, {1, {3}}}));
  EXPECT_EQ(instances[0].intent.policy, model::CpuPolicy::kDedicated);
  EXPECT_EQ(instances[1].intent.vcpu_pins, (std::map<int, V>{{0, {1}}}));
  EXPECT_EQ(instances[2].intent.policy, model::CpuPolicy::kUnknown);
  EXPECT_TRUE(instances[2].intent.vcpu_pins.empty());
}

TEST(InventoryApply, ConflictsAndOutOfRangeVcpus) {
  auto inv = parse_inventory("vmms:\n  - name: vm-a\n    policy: shared\n    cpuset: \"0\"\n"
                             "  - pid: 100\n    policy: dedicated\n    vcpu_pins: {3: \"1\"}\n",
                             "inv.yaml")
                 .value();
  std::vector<model::Instance> instances = {instance("pid-100", "vm-a", 100, 2)};
  auto report = apply_inventory(inv, instances);
  EXPECT_EQ(report.applied, 1);
  EXPECT_TRUE(report.unmatched.empty());
  EXPECT_EQ(report.conflicts,
            (std::vector<std::string>{"instance pid-100 matches line 2 (name vm-a) and also line "
                                      "5 (pid 100); using line 2"}));
  EXPECT_EQ(instances[0].intent.policy, model::CpuPolicy::kShared);
  EXPECT_EQ(instances[0].intent.vcpu_cpuset, (V{0}));
  EXPECT_TRUE(report.warnings.empty());

  std::vector<model::Instance> only_pid = {instance("pid-100", "x", 100, 2)};
  report = apply_inventory(inv, only_pid);
  EXPECT_EQ(report.unmatched, (std::vector<std::string>{"line 2: name vm-a"}));
  EXPECT_EQ(report.warnings, (std::vector<std::string>{
                                 "line 5: vcpu_pins names vCPU 3 but instance pid-100 has 2 vCPUs"}));
}

TEST(Inventory, LoadMissingFile) {
  auto inv = load_inventory("/nonexistent/inv.yaml");
  ASSERT_FALSE(inv);
  EXPECT_EQ(inv.error().message.rfind("read inventory: ", 0), 0u) << inv.error().message;
}

}  // namespace
}  // namespace hvtel::pinning

namespace hvtel::pinning {
namespace {

TEST(Inventory, HostileYamlGivesErrorsNotCrashes) {
  EXPECT_EQ(parse_inventory("vmms: *nope\n", "inv.yaml").error().message,
            "inv.yaml:1: the referenced anchor is not defined");
  // An alias repeats an entry: the duplicate is caught like any other. The
  // alias is the anchored node itself, so yaml-cpp reports the anchor's line.
  EXPECT_EQ(parse_inventory("vmms:\n  - &a {pid: 1, policy: shared}\n  - *a\n", "inv.yaml")
                .error()
                .message,
            "inv.yaml:2: vmms[1]: duplicate entry: pid 1 already declared at line 2");
  std::string deep = "vmms: " + std::string(5000, '[') + std::string(5000, ']') + "\n";
  EXPECT_FALSE(parse_inventory(deep, "inv.yaml"));
  EXPECT_FALSE(parse_inventory("vmms:\n  - pid: 99999999999999999999999\n    policy: shared\n"));
  EXPECT_FALSE(parse_inventory(std::string("vmms:\n  - name: \"a\0b\"\n", 21)));
  EXPECT_FALSE(parse_inventory("\t\x01\xff", "inv.yaml"));
}

}  // namespace
}  // namespace hvtel::pinning
