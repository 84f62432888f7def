#include "discovery/procfs.h"

#include <gtest/gtest.h>

#include "support/proc_fixture.h"

using hvtel::discovery::identity_from_cmdline;
using hvtel::discovery::ProcFs;
using hvtel::discovery::vcpu_index_from_comm;

TEST(Identity, QemuUuidAndGuestName) {
  auto id = identity_from_cmdline({"/usr/bin/qemu-system-x86_64", "-name",
                                   "guest=instance-0001c3f2,debug-threads=on", "-uuid",
                                   "3B9A7C1E-5D2F-4E8A-9C61-0F7D2A4B8E10", "-m", "64"},
                                  "qemu-system-x86", 4242);
  EXPECT_EQ(id.instance_id, "3b9a7c1e-5d2f-4e8a-9c61-0f7d2a4b8e10");
  EXPECT_EQ(id.instance_name, "instance-0001c3f2");
}

TEST(Identity, PlainNameAndEscapedComma) {
  auto id = identity_from_cmdline({"qemu", "-name", "web,,01,process=qemu:web"}, "qemu", 7);
  EXPECT_EQ(id.instance_name, "web,01");
  EXPECT_EQ(id.instance_id, "pid-7");
}

TEST(Identity, FallbacksAndBadUuid) {
  auto id = identity_from_cmdline({"myvmm", "-uuid", "not-a-uuid"}, "myvmm", 99);
  EXPECT_EQ(id.instance_id, "pid-99");
  EXPECT_EQ(id.instance_name, "myvmm");
  auto none = identity_from_cmdline({}, "", 5);
  EXPECT_EQ(none.instance_id, "pid-5");
  EXPECT_EQ(none.instance_name, "");
  // A trailing -uuid with no value is ignored, not read past the end.
  EXPECT_EQ(identity_from_cmdline({"vmm", "-uuid"}, "vmm", 3).instance_id, "pid-3");
}

TEST(Identity, VcpuIndexFromComm) {
  EXPECT_EQ(vcpu_index_from_comm("CPU 0/KVM"), 0);
  EXPECT_EQ(vcpu_index_from_comm("CPU 17/KVM"), 17);
  EXPECT_EQ(vcpu_index_from_comm("CPU 3/TCG"), 3);
  EXPECT_FALSE(vcpu_index_from_comm("qemu-system-x86"));
  EXPECT_FALSE(vcpu_index_from_comm("CPU x/KVM"));
  EXPECT_FALSE(vcpu_index_from_comm("CPU 3"));
}

TEST(ProcFs, ReadsFixtureTree) {
  hvtel::testing::ProcFixture fx;
  fx.add_process(100, {"qemu", "-uuid", "11111111-2222-3333-4444-555555555555"}, "qemu (x) y", 777);
  fx.add_thread(100, 101, "CPU 0/KVM");
  ProcFs proc(fx.root());
  auto argv = proc.cmdline(100);
  ASSERT_TRUE(argv);
  EXPECT_EQ(*argv, (std::vector<std::string>{"qemu", "-uuid", "11111111-2222-3333-4444-555555555555"}));
  EXPECT_EQ(*proc.comm(100), "qemu (x) y");
  EXPECT_EQ(*proc.start_time(100), 777u);
  EXPECT_EQ(*proc.thread_comm(100, 101), "CPU 0/KVM");
  EXPECT_TRUE(proc.thread_alive(100, 101));
  EXPECT_FALSE(proc.thread_alive(100, 102));
  EXPECT_FALSE(proc.start_time(555));
}

TEST(ProcFs, VcpuFdIndexFromKvmRunSyscall) {
  hvtel::testing::ProcFixture fx;
  fx.add_process(200, {"vmm"}, "vmm", 1);
  fx.add_thread(200, 201, "worker");
  fx.set_syscall(200, 201, "16 0xc 0xae80 0x0 0x0 0x0 0x0 0x7ffd 0x7f00");
  fx.add_fd(200, 12, "anon_inode:kvm-vcpu:3");
  ProcFs proc(fx.root());
  EXPECT_EQ(proc.vcpu_fd_index(200, 201), 3);
  // Another ioctl, or a thread running in userspace: unknown.
  fx.set_syscall(200, 201, "16 0xc 0xae81 0x0 0x0 0x0 0x0 0x7ffd 0x7f00");
  EXPECT_FALSE(proc.vcpu_fd_index(200, 201));
  fx.set_syscall(200, 201, "running");
  EXPECT_FALSE(proc.vcpu_fd_index(200, 201));
}

// The taps a VMM holds: fds on /dev/net/tun with an interface in their fdinfo (a
// tun fd not yet attached has none), whatever else it has open.
TEST(ProcFs, TunInterfacesAreTheTapsTheProcessHolds) {
  hvtel::testing::ProcFixture fx;
  fx.add_process(200, {"qemu-system-x86_64"}, "qemu-system-x86", 1);
  fx.add_fd(200, 3, "/dev/kvm");
  fx.add_fd(200, 20, "/dev/net/tun");
  fx.write("200/fdinfo/20", "pos:\t0\nflags:\t0104002\nmnt_id:\t25\nino:\t1061\niff:\ttap1234-ab\n");
  fx.add_fd(200, 21, "/dev/net/tun");
  fx.write("200/fdinfo/21", "pos:\t0\nflags:\t0104002\nmnt_id:\t25\nino:\t1061\niff:\ttap0\n");
  fx.add_fd(200, 22, "/dev/net/tun");  // multiqueue: the same tap again
  fx.write("200/fdinfo/22", "pos:\t0\nflags:\t0104002\nmnt_id:\t25\nino:\t1061\niff:\ttap0\n");
  fx.add_fd(200, 23, "/dev/net/tun");  // opened, no TUNSETIFF yet
  fx.write("200/fdinfo/23", "pos:\t0\nflags:\t0104002\nmnt_id:\t25\nino:\t1061\n");
  fx.add_fd(200, 24, "/tmp/iff-not-a-tun");
  fx.write("200/fdinfo/24", "iff:\tfake0\n");
  ProcFs proc(fx.root());
  EXPECT_EQ(proc.tun_interfaces(200), (std::vector<std::string>{"tap0", "tap1234-ab"}));
  EXPECT_EQ(proc.tun_interfaces(201), std::vector<std::string>{});  // gone
}

TEST(ProcFs, FindsQemuProcessesWhoseVcpusRunUnderTcg) {
  hvtel::testing::ProcFixture fx;
  fx.add_process(300, {"qemu-system-x86_64", "-uuid", "11111111-2222-3333-4444-555555555555", "-name",
                       "guest=tcg-vm,debug-threads=on"},
                 "qemu-system-x86", 5);
  fx.add_thread(300, 301, "CPU 0/TCG");
  fx.add_thread(300, 302, "CPU 1/TCG");
  fx.add_thread(300, 303, "IO mon_iothread");
  fx.add_process(200, {"qemu-system-x86_64"}, "qemu-system-x86", 6);  // KVM: not listed
  fx.add_thread(200, 201, "CPU 0/KVM");
  fx.add_process(100, {"sleep"}, "sleep", 7);
  fx.add_thread(100, 101, "CPU 0/TCG");  // not QEMU
  auto found = hvtel::discovery::find_tcg_vmms(ProcFs(fx.root()));
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].pid, 300);
  EXPECT_EQ(found[0].vcpus, 2);
  EXPECT_EQ(found[0].identity.instance_id, "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(found[0].identity.instance_name, "tcg-vm");
  EXPECT_TRUE(hvtel::discovery::is_tcg_vcpu_comm("CPU 12/TCG"));
  EXPECT_FALSE(hvtel::discovery::is_tcg_vcpu_comm("CPU 12/KVM"));
  EXPECT_FALSE(hvtel::discovery::is_tcg_vcpu_comm("IO /TCG"));
}
