// Golden exposition text of the exit collector over fake maps.
#include "kvm/exit_collector.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "support/proc_fixture.h"
#include "support/fake_vcpu_maps.h"

using hvtel::bpf::FakeVcpuMaps;

namespace {

struct ExitCollectorTest : ::testing::Test {
  hvtel::testing::ProcFixture fx;
  FakeVcpuMaps maps{4};
  hvtel::discovery::ProcFs proc{fx.root()};
  hvtel::discovery::VcpuTracker tracker{maps, proc};

  void SetUp() override {
    maps.set_vendor(HV_VENDOR_SVM);
    fx.add_process(100, {"qemu", "-uuid", "11111111-2222-3333-4444-555555555555"}, "qemu", 5);
    fx.add_thread(100, 101, "CPU 0/KVM");
    fx.add_thread(100, 102, "CPU 1/KVM");
    uint32_t a = maps.kernel_new_thread(101, 100);
    uint32_t b = maps.kernel_new_thread(102, 100);
    tracker.poll();
    auto& s0 = maps.mutable_slot(a);
    auto& s1 = maps.mutable_slot(b);
    s0.exits[0x7b] = 1000;  // ioio
    s1.exits[0x7b] = 500;
    s0.exits[0x78] = 1;  // hlt
    s0.user_exits[2] = 1000;
    s1.user_exits[2] = 500;
    s0.handle_hist[HV_CLASS_IO][11] = 3;  // [2048, 4096) ns
    s0.handle_sum_ns[HV_CLASS_IO] = 9000;
    s1.vmm_hist[21] = 2;  // [2.1, 4.2) ms
    s1.vmm_sum_ns = 4'400'000;
  }

  std::string text(bool per_vcpu) {
    hvtel::kvm::ExitCollector c(tracker, maps, per_vcpu);
    return prometheus::TextSerializer().Serialize(c.Collect());
  }
};

}  // namespace

TEST_F(ExitCollectorTest, PerInstanceGolden) {
  const std::string id = "instance_id=\"11111111-2222-3333-4444-555555555555\"";
  std::string golden =
      "# HELP hvtel_vcpu_exits_total VM exits by vendor exit reason (kvm_exit), per instance.\n"
      "# TYPE hvtel_vcpu_exits_total counter\n"
      "hvtel_vcpu_exits_total{" + id + ",reason=\"hlt\"} 1\n"
      "hvtel_vcpu_exits_total{" + id + ",reason=\"ioio\"} 1500\n"
      "# HELP hvtel_vcpu_exit_handling_seconds Time from a VM exit to the next VM entry of the "
      "same vCPU, by exit class (halt is guest idle time).\n"
      "# TYPE hvtel_vcpu_exit_handling_seconds histogram\n"
      "hvtel_vcpu_exit_handling_seconds_count{" + id + ",class=\"io\"} 3\n"
      "hvtel_vcpu_exit_handling_seconds_sum{" + id + ",class=\"io\"} 9e-06\n"
      "hvtel_vcpu_exit_handling_seconds_bucket{" + id + ",class=\"io\",le=\"1.024e-06\"} 0\n"
      "hvtel_vcpu_exit_handling_seconds_bucket{" + id + ",class=\"io\",le=\"4.096e-06\"} 3\n";
  std::string t = text(false);
  EXPECT_EQ(t.substr(0, golden.size()), golden) << t;
  EXPECT_NE(t.find("hvtel_vcpu_userspace_exits_total{" + id + ",reason=\"io\"} 1500\n"),
            std::string::npos);
  EXPECT_NE(t.find("hvtel_vcpu_vmm_handling_seconds_bucket{" + id + ",le=\"0.001048576\"} 0\n"),
            std::string::npos);
  EXPECT_NE(t.find("hvtel_vcpu_vmm_handling_seconds_bucket{" + id + ",le=\"0.004194304\"} 2\n"),
            std::string::npos);
  EXPECT_NE(t.find("hvtel_vcpu_threads{" + id + "} 2\n"), std::string::npos);
}

TEST_F(ExitCollectorTest, PerVcpuLabels) {
  std::string t = text(true);
  EXPECT_NE(t.find("hvtel_vcpu_exits_total{instance_id=\"11111111-2222-3333-4444-555555555555\","
                   "vcpu=\"0\",reason=\"ioio\"} 1000\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("vcpu=\"1\",reason=\"ioio\"} 500\n"), std::string::npos);
  EXPECT_NE(t.find("vcpu=\"1\",reason=\"io\"} 500\n"), std::string::npos);
}

TEST_F(ExitCollectorTest, RetiredThreadKeepsCountersMonotonic) {
  const std::string series =
      "hvtel_vcpu_userspace_exits_total{instance_id=\"11111111-2222-3333-4444-555555555555\","
      "reason=\"io\"} 1500\n";
  EXPECT_NE(text(false).find(series), std::string::npos);
  fx.remove_thread(100, 102);
  tracker.poll();
  EXPECT_NE(text(false).find(series), std::string::npos) << text(false);
}
