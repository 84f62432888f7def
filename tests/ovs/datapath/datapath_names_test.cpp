// NameCache (when the system is asked) and the OVS_VPORT_CMD_GET dump parser.
#include "ovs/datapath/datapath_names.h"

#include <gtest/gtest.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/openvswitch.h>

#include <cstring>

#include "fakes.h"

using namespace std::chrono_literals;
using hvtel::ovs_dp::DatapathRef;
using hvtel::ovs_dp::NameCache;
using namespace hvtel::ovs_dp::testing;

namespace {

struct NameCacheTest : ::testing::Test {
  FakeClock clock;
  FakeDirectory* dir = nullptr;
  std::unique_ptr<NameCache> cache;
  const DatapathRef sys{kNetns, 5};

  void SetUp() override {
    auto d = std::make_unique<FakeDirectory>();
    d->interfaces = {{5, "ovs-system"}, {9, "dp0"}};
    d->datapaths[5] = {{0, "ovs-system"}, {1, "br-int"}, {2, "tap1"}};
    dir = d.get();
    cache = std::make_unique<NameCache>(std::move(d), clock.fn());
  }
};

}  // namespace

TEST_F(NameCacheTest, DatapathNameIsResolvedOnceAndCached) {
  EXPECT_EQ(cache->datapath(sys), "ovs-system");
  EXPECT_EQ(cache->datapath(sys), "ovs-system");
  EXPECT_EQ(cache->datapath({kNetns, 9}), "dp0");
  EXPECT_EQ(dir->name_calls, 2);
}

TEST_F(NameCacheTest, DatapathsThatCannotBeNamed) {
  EXPECT_EQ(cache->datapath({kNetns, 0}), "unknown");
  EXPECT_EQ(cache->datapath({kNetns + 1, 5}), "ifindex:5@netns:4026531841");
  EXPECT_EQ(cache->datapath({kNetns, 77}), "ifindex:77@netns:4026531840");
  EXPECT_EQ(cache->port({kNetns + 1, 5}, 1), "");  // another netns: never dumped
  EXPECT_EQ(dir->name_calls, 1);                   // only ifindex 77 was asked
  EXPECT_EQ(dir->dump_calls, 0);
  // An unknown name is retried, but not before kRetryUnknown.
  dir->interfaces[77] = "late";
  clock.now += 9s;
  EXPECT_EQ(cache->datapath({kNetns, 77}), "ifindex:77@netns:4026531840");
  clock.now += 1s;
  EXPECT_EQ(cache->datapath({kNetns, 77}), "late");
  EXPECT_EQ(dir->name_calls, 2);
}

TEST_F(NameCacheTest, PortsComeFromOneDumpPerDatapath) {
  EXPECT_EQ(cache->port(sys, 2), "tap1");
  EXPECT_EQ(cache->port(sys, 1), "br-int");
  EXPECT_EQ(cache->port(sys, 0), "ovs-system");
  EXPECT_EQ(dir->dump_calls, 1);
  EXPECT_EQ(cache->stats().dumps, 1u);
}

TEST_F(NameCacheTest, UnknownPortRedumpsAtMostEveryRetryInterval) {
  EXPECT_EQ(cache->port(sys, 3), "");
  EXPECT_EQ(dir->dump_calls, 1);
  dir->datapaths[5][3] = "tap2";  // the port appears
  for (int i = 0; i < 5; ++i) EXPECT_EQ(cache->port(sys, 3), "");  // scrapes within 10 s
  EXPECT_EQ(dir->dump_calls, 1);
  clock.now += NameCache::kRetryUnknown;
  EXPECT_EQ(cache->port(sys, 3), "tap2");
  EXPECT_EQ(dir->dump_calls, 2);
  EXPECT_EQ(cache->port(sys, 2), "tap1");
  EXPECT_EQ(dir->dump_calls, 2);
}

TEST_F(NameCacheTest, KnownPortsAreRefreshedAfterMaxAge) {
  EXPECT_EQ(cache->port(sys, 2), "tap1");
  dir->datapaths[5][2] = "tap9";  // port 2 deleted and its number reused
  clock.now += NameCache::kMaxAge - 1s;
  EXPECT_EQ(cache->port(sys, 2), "tap1");
  clock.now += 1s;
  EXPECT_EQ(cache->port(sys, 2), "tap9");
  EXPECT_EQ(dir->dump_calls, 2);
}

TEST_F(NameCacheTest, FailedDumpKeepsWhatWasKnown) {
  EXPECT_EQ(cache->port(sys, 2), "tap1");
  dir->fail_dumps = true;
  clock.now += NameCache::kMaxAge;
  EXPECT_EQ(cache->port(sys, 2), "tap1");
  EXPECT_EQ(cache->stats().dump_errors, 1u);
  EXPECT_EQ(cache->port({kNetns, 9}, 1), "");  // dp0 has no dump at all
  EXPECT_EQ(cache->stats().dump_errors, 2u);
}

// ---- parse_vport_dump ----

namespace {

struct Msg {
  std::vector<uint8_t> bytes;
  void u32_attr(uint16_t type, uint32_t v) { attr(type, &v, 4); }
  void str_attr(uint16_t type, const std::string& s) { attr(type, s.c_str(), s.size() + 1); }
  void attr(uint16_t type, const void* data, size_t len) {
    nlattr a{static_cast<uint16_t>(NLA_HDRLEN + len), type};
    append(&a, sizeof(a));
    append(data, len);
    bytes.resize(NLA_ALIGN(bytes.size()));
  }
  void append(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
};

// One nlmsghdr + genlmsghdr + ovs_header + attrs.
std::vector<uint8_t> vport_msg(uint32_t seq, uint32_t port, const std::string& name) {
  Msg m;
  nlmsghdr nh{};
  nh.nlmsg_type = 0x20;  // the family id does not matter to the parser
  nh.nlmsg_flags = NLM_F_MULTI;
  nh.nlmsg_seq = seq;
  m.append(&nh, sizeof(nh));
  genlmsghdr gh{OVS_VPORT_CMD_NEW, OVS_VPORT_VERSION, 0};
  m.append(&gh, sizeof(gh));
  ovs_header oh{5};
  m.append(&oh, sizeof(oh));
  m.u32_attr(OVS_VPORT_ATTR_TYPE, OVS_VPORT_TYPE_NETDEV);
  m.u32_attr(OVS_VPORT_ATTR_PORT_NO, port);
  m.str_attr(OVS_VPORT_ATTR_NAME, name);
  uint32_t len = static_cast<uint32_t>(m.bytes.size());
  std::memcpy(m.bytes.data(), &len, 4);
  return m.bytes;
}

std::vector<uint8_t> control_msg(uint32_t seq, uint16_t type, int error) {
  Msg m;
  nlmsghdr nh{};
  nh.nlmsg_type = type;
  nh.nlmsg_seq = seq;
  nh.nlmsg_len = NLMSG_HDRLEN + (type == NLMSG_ERROR ? sizeof(nlmsgerr) : 4);
  m.append(&nh, sizeof(nh));
  nlmsgerr e{};
  e.error = error;
  if (type == NLMSG_ERROR) m.append(&e, sizeof(e));
  else m.append(&error, 4);
  return m.bytes;
}

std::vector<uint8_t> cat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace

TEST(ParseVportDump, PortsUntilDone) {
  auto buf = cat({vport_msg(7, 0, "ovs-system"), vport_msg(7, 3, "tap-abc"),
                  vport_msg(8, 4, "other-seq"), control_msg(7, NLMSG_DONE, 0)});
  std::map<uint32_t, std::string> ports;
  auto done = hvtel::ovs_dp::parse_vport_dump(buf.data(), buf.size(), 7, ports);
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_TRUE(*done);
  EXPECT_EQ(ports, (std::map<uint32_t, std::string>{{0, "ovs-system"}, {3, "tap-abc"}}));
}

TEST(ParseVportDump, ContinuesAcrossBuffers) {
  std::map<uint32_t, std::string> ports;
  auto first = vport_msg(7, 1, "p1");
  auto r1 = hvtel::ovs_dp::parse_vport_dump(first.data(), first.size(), 7, ports);
  ASSERT_TRUE(r1);
  EXPECT_FALSE(*r1);
  auto second = cat({vport_msg(7, 2, "p2"), control_msg(7, NLMSG_DONE, 0)});
  auto r2 = hvtel::ovs_dp::parse_vport_dump(second.data(), second.size(), 7, ports);
  ASSERT_TRUE(r2);
  EXPECT_TRUE(*r2);
  EXPECT_EQ(ports.size(), 2u);
}

TEST(ParseVportDump, KernelErrorIsAnError) {
  auto buf = control_msg(7, NLMSG_ERROR, -ENODEV);
  std::map<uint32_t, std::string> ports;
  auto r = hvtel::ovs_dp::parse_vport_dump(buf.data(), buf.size(), 7, ports);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().err, ENODEV);
}

TEST(ParseVportDump, TruncatedInputIsRejectedNotRead) {
  auto buf = vport_msg(7, 1, "p1");
  std::map<uint32_t, std::string> ports;
  auto r = hvtel::ovs_dp::parse_vport_dump(buf.data(), buf.size() - 3, 7, ports);
  EXPECT_FALSE(r);
  EXPECT_TRUE(ports.empty());
  // An attribute whose length runs past its message is ignored, not followed.
  buf = vport_msg(7, 1, "p1");
  buf[buf.size() - 8] = 0xff;  // the NAME attribute's nla_len
  ports.clear();
  ASSERT_TRUE(hvtel::ovs_dp::parse_vport_dump(buf.data(), buf.size(), 7, ports));
  EXPECT_TRUE(ports.empty());
}
