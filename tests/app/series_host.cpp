#include "series_host.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "app/agent_collector.h"
#include "base/metrics/family.h"
#include "kvm/exit_collector.h"
#include "libvirt/libvirt_collector.h"
#include "ovs/datapath/fakes.h"
#include "ovs/datapath/ovs_dp_collector.h"
#include "ovs/ovsdb/metrics.h"
#include "pinning/violations.h"
#include "sched/sched_collector.h"

namespace fs = std::filesystem;

namespace hvtel::testing {
namespace {

void write(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

// What `perf kvm stat` shows for a busy virtio Linux guest on VMX: ten exit
// reasons, two kinds of exit to the VMM.
constexpr uint32_t kBusyReasons[] = {1 /* external_interrupt */,
                                     10 /* cpuid */,
                                     12 /* hlt */,
                                     30 /* io_instruction */,
                                     31 /* msr_read */,
                                     32 /* msr_write */,
                                     40 /* pause_instruction */,
                                     48 /* ept_violation */,
                                     49 /* ept_misconfig */,
                                     52 /* preemption_timer */};
constexpr uint32_t kUserExits[] = {2 /* KVM_EXIT_IO */, 6 /* KVM_EXIT_MMIO */};

void busy_guest(hv_vcpu& v, hv_sched& s) {
  for (uint32_t r : kBusyReasons) v.exits[r] = 1000 + r;
  for (uint32_t r : kUserExits) v.user_exits[r] = 10 + r;
  for (uint32_t cls = 0; cls < HV_EXIT_CLASSES; ++cls) {
    v.handle_hist[cls][12] = 5;  // [4, 8) us
    v.handle_sum_ns[cls] = 5 * 5000;
  }
  v.vmm_hist[14] = 3;  // [16, 32) us
  v.vmm_sum_ns = 3 * 20000;
  s.run_ns = 2'000'000'000;
  s.wait_ns = 10'000'000;
  s.preemptions = 7;
  s.migrations = 3;
  s.rq_hist[13] = 9;
  s.rq_sum_ns = 9 * 10000;
}

struct SnapshotStub : libvirt::SnapshotSource {
  libvirt::SnapshotPtr snap;
  libvirt::SnapshotPtr snapshot() const override { return snap; }
  bool up() const override { return true; }
  libvirt::ClientCounters counters() const override { return {}; }
};

// A collector of fixed families (the OVSDB ones take explicit inputs).
struct Fixed : prometheus::Collectable {
  std::function<std::vector<prometheus::MetricFamily>()> f;
  std::vector<prometheus::MetricFamily> Collect() const override { return f(); }
};

}  // namespace

std::string SeriesHost::instance_id(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "3b9a7c1e-5d2f-4e8a-9c61-%012d", i);
  return buf;
}

SeriesHost::SeriesHost(int instances, int vcpus) : instances_(instances) {
  char tmpl[] = "/tmp/hvtel-series-host.XXXXXX";
  root_ = ::mkdtemp(tmpl);
  // Room for each VMM's main (emulator) thread too: discovery gives it a slot for pinning.
  maps_ = std::make_unique<CountingMaps>(static_cast<uint32_t>(instances * (vcpus + 1)));
  maps_->set_vendor(HV_VENDOR_VMX);
  // The agent drains the kernel's discovery hash every poll; here every thread appears before the first.
  maps_->set_new_capacity(static_cast<size_t>(instances) * vcpus);
  auto snap = std::make_shared<libvirt::Snapshot>();
  ovsdb::PortModel ports;
  ports.synced = true;
  ovsdb::BridgeInfo br_int;
  br_int.name = "br-int";
  auto reader = std::make_shared<ovs_dp::testing::FakeReader>();
  auto dir = std::make_unique<ovs_dp::testing::FakeDirectory>();
  const ovs_dp::DatapathRef dp{ovs_dp::testing::kNetns, 1};
  dir->interfaces[1] = "ovs-system";

  for (int i = 0; i < instances; ++i) {
    const int pid = 10000 + i * 100;
    const std::string p = root_ + "/" + std::to_string(pid);
    const std::string id = instance_id(i);
    std::string cmdline;
    for (std::string a : {"qemu-system-x86_64", "-uuid", id.c_str()}) cmdline += a + '\0';
    write(p + "/cmdline", cmdline);
    write(p + "/comm", "qemu-system-x86\n");
    write(p + "/stat",
          std::to_string(pid) + " (qemu-system-x86) S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0\n");
    write(p + "/task/" + std::to_string(pid) + "/comm", "qemu-system-x86\n");
    for (int v = 0; v < vcpus; ++v) {
      const int tid = pid + 1 + v;
      write(p + "/task/" + std::to_string(tid) + "/comm", "CPU " + std::to_string(v) + "/KVM\n");
      uint32_t slot = maps_->kernel_new_thread(tid, pid);
      busy_guest(maps_->mutable_slot(slot), maps_->mutable_sched(slot));
    }
    model::Instance inst;
    inst.instance_id = id;
    inst.instance_name = "vm-" + std::to_string(i);
    inst.domain = "instance-" + std::to_string(i);
    inst.source = model::Source::kLibvirt;
    inst.pid = pid;
    inst.vcpus = vcpus;
    snap->instances.push_back(inst);
    // One VIF per instance (os-vif tap on br-int): an OVSDB row and datapath upcalls.
    char tap_name[32];  // os-vif: "tap" + the first 11 characters of the Neutron port id
    std::snprintf(tap_name, sizeof tap_name, "tap5f%06d-aa", i);
    const std::string tap = tap_name;
    ovsdb::PortInfo port;
    port.name = tap;
    ovsdb::InterfaceInfo iface;
    iface.name = tap;
    iface.ofport = i + 1;
    iface.iface_id = "port-" + std::to_string(i);
    iface.instance_id = id;
    port.interfaces.push_back(iface);
    br_int.ports.push_back(port);
    const uint32_t dp_port = static_cast<uint32_t>(i + 2);
    dir->datapaths[1][dp_port] = tap;
    reader->up.push_back({dp, dp_port, HV_OVS_UPCALL_MISS, 100, 0});
  }
  ports.bridges.push_back(br_int);
  reader->flows.push_back({dp, HV_OVS_OP_NEW, true, 50});
  proc_ = std::make_unique<discovery::ProcFs>(root_);
  tracker_ = std::make_unique<discovery::VcpuTracker>(*maps_, *proc_);
  tracker_->poll();

  auto source = std::make_shared<SnapshotStub>();
  source->snap = snap;
  auto lv = std::make_shared<libvirt::LibvirtCollector>(*source);
  // Pinning with every instance tracked and a clean baseline: no violation
  // series, as `hvtel serve` runs it (without --pinning-zero-series).
  auto registry =
      std::make_shared<pinning::ViolationRegistry>(pinning::RegistryOptions{.zero_series = false});
  auto zero_registry = std::make_shared<pinning::ViolationRegistry>();
  std::vector<std::string> tracked;
  for (const auto& inst : snap->instances) tracked.push_back(inst.instance_id);
  registry->reconcile(tracked, {});
  zero_registry->reconcile(tracked, {});
  pinning_ = registry;
  pinning_zero_ = zero_registry;
  auto ovsdb = std::make_shared<Fixed>();
  ovsdb->f = [ports] { return ovsdb::collect_ovsdb(ports, true, {}); };
  std::map<std::string, std::string> vif_owner;
  for (const auto& b : ports.bridges)
    for (const auto& port : b.ports) vif_owner[port.name] = port.interfaces[0].instance_id;
  auto names = std::make_shared<ovs_dp::NameCache>(std::move(dir));
  auto dpc =
      std::make_shared<ovs_dp::OvsDpCollector>([reader] { return reader; }, names,
                                               [vif_owner](const std::string& ifname) {
                                                 auto it = vif_owner.find(ifname);
                                                 return it == vif_owner.end() ? std::string() : it->second;
                                               });
  // The stub must outlive the collector that refers to it.
  snapshot_source_ = source;
  fixed_ = {lv, ovsdb, dpc};
}

SeriesHost::~SeriesHost() { fs::remove_all(root_); }

std::string SeriesHost::render(const SeriesFlags& flags) const {
  // As MetricsServer::render(): into a buffer the size of the last text.
  std::string text = metrics::serialize_text(collect(flags), last_render_bytes_);
  last_render_bytes_ = text.size();
  return text;
}

std::vector<prometheus::MetricFamily> SeriesHost::collect(const SeriesFlags& flags) const {
  auto sel = metrics::Selection::disable(flags.metrics_disable);
  EXPECT_TRUE(sel.has_value()) << (sel ? "" : sel.error().message);
  if (!sel) return {};
  // Composed as Agent::add_kernel_collectors() does.
  kvm::ExitCollector exits(*tracker_, *maps_,
                           kvm::ExitSeries{.per_vcpu = flags.per_vcpu,
                                           .handling_per_instance = flags.exit_handling_per_instance,
                                           .selection = *sel});
  exits.set_vmm_sample_ratio([] { return 1.0; });
  sched::SchedCollector sched(*tracker_, *maps_, flags.per_vcpu, *sel);
  std::vector<bpf::ProbeStatus> probes;
  for (const char* p : {"kvm_exit", "kvm_entry", "kvm_userspace_exit", "sched_switch"})
    probes.push_back({.probe = p, .object = "", .attach = bpf::AttachKind::kTpBtf, .attached = true});
  app::AgentCollector agent(probes, {}, *maps_, *tracker_);
  agent.set_selection(*sel);
  std::vector<prometheus::MetricFamily> all;
  auto add = [&](const prometheus::Collectable& c) {
    for (auto& f : sel->filter(c.Collect())) all.push_back(std::move(f));
  };
  add(exits);
  add(sched);
  add(agent);
  add(flags.pinning_zero_series ? *pinning_zero_ : *pinning_);
  for (const auto& c : fixed_) add(*c);
  return all;
}

}  // namespace hvtel::testing
