// The ovs_dp object's hooks, and OvsDpProbes' load / re-probe decisions with a
// fake loader and module check (the real load is the lab case's job).
#include "ovs/datapath/ovs_dp_probes.h"

#include <gtest/gtest.h>

#include <set>

using hvtel::bpf::AttachKind;
using namespace std::chrono_literals;

TEST(OvsDpSpec, HooksAndVariantsInPreferenceOrder) {
  auto spec = hvtel::ovs_dp::object_spec();
  EXPECT_EQ(spec.name, "ovs_dp");
  ASSERT_NE(spec.elf, nullptr);
  EXPECT_GT(spec.size, 0u);
  ASSERT_EQ(spec.hooks.size(), 5u);
  const auto& up = spec.hooks[0];
  EXPECT_EQ(up.probe, "ovs_dp_upcall");
  EXPECT_EQ(up.tp_system, "openvswitch");
  ASSERT_EQ(up.variants.size(), 3u);
  EXPECT_EQ(up.variants[0].kind, AttachKind::kTpBtf);
  EXPECT_EQ(up.variants[1].kind, AttachKind::kRawTp);
  EXPECT_EQ(up.variants[2].kind, AttachKind::kTracepoint);
  EXPECT_EQ(spec.hooks[1].probe, "ovs_dp_upcall_ret");
  EXPECT_EQ(spec.hooks[1].target, "ovs_dp_upcall");
  const char* fns[] = {"ovs_flow_cmd_new", "ovs_flow_cmd_set", "ovs_flow_cmd_del"};
  for (int i = 0; i < 3; ++i) {
    const auto& h = spec.hooks[2 + i];
    EXPECT_EQ(h.probe, fns[i]);
    EXPECT_EQ(h.target, fns[i]);
    EXPECT_EQ(h.tp_system, "");
    ASSERT_EQ(h.variants.size(), 2u);
    EXPECT_EQ(h.variants[0].kind, AttachKind::kFentry);
    EXPECT_EQ(h.variants[0].program, std::string("hv_") + fns[i] + "_fexit");
    EXPECT_EQ(h.variants[1].kind, AttachKind::kKprobe);
    EXPECT_EQ(hvtel::ovs_dp::companion_of(h.variants[1].program),
              std::string("hv_") + fns[i] + "_kretprobe");
    EXPECT_EQ(hvtel::ovs_dp::companion_of(h.variants[0].program), "");
  }
  EXPECT_EQ(hvtel::ovs_dp::companion_of("hv_upcall_ret_kretprobe"), "");
}

TEST(OvsDpSpec, EveryVariantProgramIsInTheObject) {
  // Opening the real ELF: a renamed program would otherwise only fail at load.
  auto spec = hvtel::ovs_dp::object_spec();
  auto obj = hvtel::bpf::BpfObject::open(spec.name, spec.elf, spec.size);
  ASSERT_TRUE(obj) << obj.error().message;
  for (const auto& h : spec.hooks) {
    for (const auto& v : h.variants) {
      EXPECT_TRUE(obj->program(v.program)) << v.program;
      std::string c = hvtel::ovs_dp::companion_of(v.program);
      if (!c.empty()) {
        EXPECT_TRUE(obj->program(c)) << c;
      }
    }
  }
  for (const char* m : {"hv_ovs_upcalls", "hv_ovs_flows", "hv_ovs_counters"})
    EXPECT_TRUE(obj->map(m)) << m;
}

namespace {

struct ProbesTest : ::testing::Test {
  bool module = false;
  int loads = 0;
  std::chrono::steady_clock::time_point now{std::chrono::seconds(500)};

  hvtel::ovs_dp::OvsDpOptions opts() {
    return {.load = [this](const hvtel::bpf::ObjectSpec&) -> hvtel::Result<hvtel::bpf::LoadedObject> {
              ++loads;
              return hvtel::fail("load ovs_dp: Operation not permitted");
            },
            .module_loaded = [this] { return module; },
            .clock = [this] { return now; }};
  }
};

}  // namespace

TEST_F(ProbesTest, ModuleAbsentReportsEveryHookWithoutLoading) {
  hvtel::ovs_dp::OvsDpProbes p(opts());
  EXPECT_EQ(loads, 0);
  EXPECT_FALSE(p.loaded());
  EXPECT_EQ(p.reader(), nullptr);
  EXPECT_TRUE(p.attached_programs().empty());
  auto st = p.status();
  ASSERT_EQ(st.size(), 5u);
  EXPECT_EQ(st[0].probe, "ovs_dp_upcall");
  EXPECT_FALSE(st[0].attached);
  EXPECT_FALSE(st[0].attach.has_value());
  EXPECT_EQ(st[0].reason,
            "tracepoint openvswitch:ovs_dp_upcall missing (openvswitch module not loaded)");
  EXPECT_EQ(st[2].reason, "function ovs_flow_cmd_new missing (openvswitch module not loaded)");
  EXPECT_EQ(st[2].programs,
            (std::vector<std::string>{"hv_ovs_flow_cmd_new_fexit", "hv_ovs_flow_cmd_new_kprobe"}));
}

TEST_F(ProbesTest, ReprobesEveryThirtySecondsUntilTheModuleAppears) {
  hvtel::ovs_dp::OvsDpProbes p(opts());
  module = true;
  now += 29s;
  p.poll();
  EXPECT_EQ(loads, 0);
  now += 1s;
  p.poll();
  EXPECT_EQ(loads, 1);
  // The load failed: reported per hook, and retried at the next interval.
  auto st = p.status();
  ASSERT_EQ(st.size(), 5u);
  for (const auto& s : st) {
    EXPECT_FALSE(s.attached);
    EXPECT_EQ(s.reason, "load ovs_dp: Operation not permitted");
  }
  p.poll();
  EXPECT_EQ(loads, 1);
  now += 30s;
  p.poll();
  EXPECT_EQ(loads, 2);
}
