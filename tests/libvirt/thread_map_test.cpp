#include "libvirt/thread_map.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace hvtel::libvirt {
namespace {

namespace fs = std::filesystem;
using model::ThreadInfo;

std::vector<std::pair<pid_t, int>> pairs(const std::vector<ThreadInfo>& v) {
  std::vector<std::pair<pid_t, int>> out;
  for (const auto& t : v) out.emplace_back(t.tid, t.index);
  return out;
}

// A throwaway root filesystem with /proc, /sys/fs/cgroup and /run pieces.
class FakeRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hvtel-threadmap-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }

  void write(const std::string& rel, const std::string& content) {
    fs::path p = fs::path(root_) / rel.substr(1);
    fs::create_directories(p.parent_path());
    std::ofstream(p) << content;
  }
  ThreadMapper mapper() {
    ThreadMapOptions o;
    o.root = root_;
    return ThreadMapper(o);
  }
  // QEMU pid 4242 with its task list and names (used by every fixture so
  // the tests prove cgroups win over names when both exist).
  void qemu_tasks(const std::vector<std::pair<int, std::string>>& tasks) {
    write("/run/libvirt/qemu/instance-00000001.pid", "4242\n");
    for (const auto& [tid, comm] : tasks)
      write("/proc/4242/task/" + std::to_string(tid) + "/comm", comm + "\n");
  }

  std::string root_;
};

const std::string kV1Mountinfo =
    "25 1 0:23 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
    "26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    "27 25 0:25 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
    "30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
    "31 25 0:29 / /sys/fs/cgroup/cpuset rw shared:9 - cgroup cgroup rw,cpuset\n";

TEST_F(FakeRoot, CgroupV1MachineLayoutFoundViaProcCgroup) {
  qemu_tasks({{4242, "qemu-system-x86"}, {4250, "CPU 0/KVM"}, {4251, "CPU 1/KVM"},
              {4255, "kvm-nx-lpage-re"}});
  write("/proc/self/mountinfo", kV1Mountinfo);
  // As on the development machine: no systemd, libvirt's own /machine tree.
  write("/proc/4242/cgroup",
        "12:cpuset:/machine/qemu-3-instance-00000001.libvirt-qemu/emulator\n"
        "4:cpu,cpuacct:/machine/qemu-3-instance-00000001.libvirt-qemu/emulator\n"
        "1:name=systemd:/\n0::/\n");
  const std::string d = "/sys/fs/cgroup/cpuset/machine/qemu-3-instance-00000001.libvirt-qemu";
  // KVM's NX-recovery worker joins the cgroup of the first vCPU to run.
  write(d + "/vcpu0/tasks", "4250\n4255\n");
  write(d + "/vcpu1/tasks", "4251\n");
  write(d + "/emulator/tasks", "4243\n4242\n");
  write(d + "/iothread1/tasks", "4260\n");
  write(d + "/tasks", "");
  write(d + "/cpuset.cpus", "0-1\n");

  auto tm = mapper().map("instance-00000001", 2);
  ASSERT_TRUE(tm) << tm.error().message;
  EXPECT_EQ(tm->pid, 4242);
  EXPECT_EQ(tm->method, ThreadMapMethod::kCgroupV1);
  EXPECT_EQ(tm->cgroup_dir, root_ + d);
  EXPECT_EQ(pairs(tm->vcpus), (std::vector<std::pair<pid_t, int>>{{4250, 0}, {4251, 1}}));
  EXPECT_EQ(pairs(tm->emulator), (std::vector<std::pair<pid_t, int>>{{4242, -1}, {4243, -1}}));
  EXPECT_EQ(pairs(tm->iothreads), (std::vector<std::pair<pid_t, int>>{{4260, 1}}));
  EXPECT_EQ(pairs(tm->others), (std::vector<std::pair<pid_t, int>>{{4255, 0}}));
  EXPECT_FALSE(tm->vcpu_count_mismatch);
}

TEST_F(FakeRoot, CgroupV1WithNamespacedMountRootAndNoMountinfoFallback) {
  qemu_tasks({{4242, "qemu-system-x86"}});
  // Mount root "/machine": the hierarchy is mounted from a sub-directory.
  write("/proc/self/mountinfo",
        "31 25 0:29 /machine /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n");
  write("/proc/4242/cgroup", "5:cpuset:/machine/qemu-9-instance-00000001.libvirt-qemu/vcpu0\n");
  const std::string d = "/sys/fs/cgroup/cpuset/qemu-9-instance-00000001.libvirt-qemu";
  write(d + "/vcpu0/tasks", "4250\n");
  auto tm = mapper().map("instance-00000001", 1);
  ASSERT_TRUE(tm) << tm.error().message;
  EXPECT_EQ(tm->method, ThreadMapMethod::kCgroupV1);
  EXPECT_EQ(tm->cgroup_dir, root_ + d);
  EXPECT_EQ(pairs(tm->vcpus), (std::vector<std::pair<pid_t, int>>{{4250, 0}}));

  // Without mountinfo the conventional /sys/fs/cgroup/<controller> is used.
  fs::remove(fs::path(root_) / "proc/self/mountinfo");
  write("/proc/4242/cgroup", "5:cpuset:/machine/qemu-9-instance-00000001.libvirt-qemu/emulator\n");
  const std::string conv = "/sys/fs/cgroup/cpuset/machine/qemu-9-instance-00000001.libvirt-qemu";
  write(conv + "/vcpu0/tasks", "4250\n");
  write(conv + "/vcpu1/tasks", "4251\n");
  auto tm2 = mapper().map("instance-00000001", 2);
  ASSERT_TRUE(tm2) << tm2.error().message;
  EXPECT_EQ(tm2->cgroup_dir, root_ + conv);
  EXPECT_EQ(pairs(tm2->vcpus), (std::vector<std::pair<pid_t, int>>{{4250, 0}, {4251, 1}}));
}

TEST_F(FakeRoot, CgroupV2MachineSliceScope) {
  qemu_tasks({{4242, "qemu-system-x86"}, {4250, "CPU 0/KVM"}, {4251, "CPU 1/KVM"}});
  write("/proc/self/mountinfo",
        "25 1 0:23 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
  const std::string scope = "/machine.slice/machine-qemu\\x2d7\\x2dinstance\\x2d00000001.scope";
  write("/proc/4242/cgroup", "0::" + scope + "/libvirt/emulator\n");
  const std::string d = "/sys/fs/cgroup" + scope + "/libvirt";
  write(d + "/vcpu0/cgroup.threads", "4250\n");
  write(d + "/vcpu1/cgroup.threads", "4251\n");
  write(d + "/vcpu1/cgroup.procs", "");
  write(d + "/emulator/cgroup.threads", "4242\n4244\n");
  write(d + "/iothread1/cgroup.threads", "4260\n");
  write(d + "/iothread2/cgroup.threads", "4261\n");

  auto tm = mapper().map("instance-00000001", 2);
  ASSERT_TRUE(tm) << tm.error().message;
  EXPECT_EQ(tm->method, ThreadMapMethod::kCgroupV2);
  EXPECT_EQ(tm->cgroup_dir, root_ + d);
  EXPECT_EQ(pairs(tm->vcpus), (std::vector<std::pair<pid_t, int>>{{4250, 0}, {4251, 1}}));
  EXPECT_EQ(pairs(tm->emulator), (std::vector<std::pair<pid_t, int>>{{4242, -1}, {4244, -1}}));
  EXPECT_EQ(pairs(tm->iothreads), (std::vector<std::pair<pid_t, int>>{{4260, 1}, {4261, 2}}));
  EXPECT_FALSE(tm->vcpu_count_mismatch);
}

TEST_F(FakeRoot, CgroupCountMismatchIsReported) {
  qemu_tasks({{4242, "qemu-system-x86"}});
  write("/proc/self/mountinfo", kV1Mountinfo);
  write("/proc/4242/cgroup", "12:cpuset:/machine/qemu-1-x.libvirt-qemu/emulator\n");
  const std::string d = "/sys/fs/cgroup/cpuset/machine/qemu-1-x.libvirt-qemu";
  write(d + "/vcpu0/tasks", "4250\n");
  write(d + "/vcpu1/tasks", "4251\n");
  auto tm = mapper().map("instance-00000001", 4);
  ASSERT_TRUE(tm) << tm.error().message;
  EXPECT_TRUE(tm->vcpu_count_mismatch);
  EXPECT_EQ(tm->mismatch, "found 2 vCPU threads (2 distinct indexes) via cgroup-v1, configured 4");
}

TEST_F(FakeRoot, ThreadNameFallbackKvm) {
  // No libvirt cgroups (cgroup_controllers excludes cpuset/cpu).
  qemu_tasks({{4242, "qemu-system-x86"},
              {4250, "CPU 0/KVM"},
              {4251, "CPU 1/KVM"},
              {4260, "IO iothread1"},
              {4261, "IO mon_iothread"},
              {4270, "vnc_worker"},
              {4271, "call_rcu"}});
  write("/proc/self/mountinfo", kV1Mountinfo);
  write("/proc/4242/cgroup", "12:cpuset:/\n0::/init.scope\n");
  auto tm = mapper().map("instance-00000001", 2);
  ASSERT_TRUE(tm) << tm.error().message;
  EXPECT_EQ(tm->method, ThreadMapMethod::kThreadNames);
  EXPECT_EQ(pairs(tm->vcpus), (std::vector<std::pair<pid_t, int>>{{4250, 0}, {4251, 1}}));
  EXPECT_EQ(pairs(tm->iothreads), (std::vector<std::pair<pid_t, int>>{{4260, 1}}));
  EXPECT_EQ(pairs(tm->emulator), (std::vector<std::pair<pid_t, int>>{
                                     {4242, -1}, {4261, -1}, {4270, -1}, {4271, -1}}));
  EXPECT_FALSE(tm->vcpu_count_mismatch);
}

TEST_F(FakeRoot, ThreadNameFallbackTcgAndMismatch) {
  qemu_tasks({{4242, "qemu-system-x86"}, {4250, "CPU 0/TCG"}, {4251, "CPU 1/TCG"}, {4252, "CPU 2/TCG"}});
  // No /proc/<pid>/cgroup at all.
  auto tm = mapper().map("instance-00000001", 2);
  ASSERT_TRUE(tm) << tm.error().message;
  EXPECT_EQ(tm->method, ThreadMapMethod::kThreadNames);
  EXPECT_EQ(pairs(tm->vcpus), (std::vector<std::pair<pid_t, int>>{{4250, 0}, {4251, 1}, {4252, 2}}));
  EXPECT_TRUE(tm->vcpu_count_mismatch);
  EXPECT_EQ(tm->mismatch, "found 3 vCPU threads (3 distinct indexes) via thread-names, configured 2");
}

TEST_F(FakeRoot, NoDebugThreadsMeansNoVcpusAndAMismatch) {
  qemu_tasks({{4242, "qemu-system-x86"}, {4250, "qemu-system-x86"}});
  auto tm = mapper().map("instance-00000001", 1);
  ASSERT_TRUE(tm) << tm.error().message;
  EXPECT_TRUE(tm->vcpus.empty());
  EXPECT_EQ(tm->emulator.size(), 2u);
  EXPECT_TRUE(tm->vcpu_count_mismatch);
}

TEST_F(FakeRoot, PidfileErrors) {
  auto missing = mapper().map("instance-00000001", 1);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/run/libvirt/qemu/instance-00000001.pid"), std::string::npos)
      << missing.error().message;

  write("/run/libvirt/qemu/instance-00000001.pid", "garbage\n");
  auto bad = mapper().read_pid("instance-00000001");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("not a pid: 'garbage'"), std::string::npos) << bad.error().message;

  write("/run/libvirt/qemu/instance-00000001.pid", "999999\n");
  auto stale = mapper().read_pid("instance-00000001");
  ASSERT_FALSE(stale);
  EXPECT_NE(stale.error().message.find("stale, process 999999 is gone"), std::string::npos)
      << stale.error().message;

  EXPECT_FALSE(mapper().read_pid("../../etc/passwd"));
}

TEST_F(FakeRoot, ExplicitPidSkipsPidfile) {
  write("/proc/77/task/77/comm", "qemu-system-x86\n");
  write("/proc/77/task/78/comm", "CPU 0/KVM\n");
  auto tm = mapper().map("whatever", 1, 77);
  ASSERT_TRUE(tm) << tm.error().message;
  EXPECT_EQ(tm->pid, 77);
  EXPECT_EQ(pairs(tm->vcpus), (std::vector<std::pair<pid_t, int>>{{78, 0}}));
}

}  // namespace
}  // namespace hvtel::libvirt
