// `hvtel trace upcalls` without the kernel: the frame decoder, the naming of one
// upcall (datapath and port through the NameCache, the instance through the
// owner lookup) and its lines. The real datapath is the lab case
// tests/vmlab/cases/hvtel_trace_upcalls.sh.
#include "ovs/datapath/upcall_trace.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "fakes.h"

namespace hvtel::ovs_dp {
namespace {

using testing::FakeDirectory;
using testing::kNetns;

std::vector<uint8_t> eth(uint16_t type, std::vector<uint8_t> payload) {
  std::vector<uint8_t> f = {0xff,
                            0xff,
                            0xff,
                            0xff,
                            0xff,
                            0xff,
                            0x52,
                            0x54,
                            0x00,
                            0x00,
                            0x00,
                            0x01,
                            static_cast<uint8_t>(type >> 8),
                            static_cast<uint8_t>(type)};
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

std::string frame(const std::vector<uint8_t>& f) { return describe_frame(f.data(), f.size()); }

TEST(UpcallFrame, EthernetArpIpv4Ipv6AndVlan) {
  EXPECT_EQ(frame(eth(0x88b5, std::vector<uint8_t>(46))),
            "52:54:00:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype 0x88b5");
  // ARP request 10.0.0.1 asks for 10.0.0.2.
  std::vector<uint8_t> arp = {0,  1, 8, 0, 6, 4, 0, 1, 0x52, 0x54, 0,  0, 0, 1,
                              10, 0, 0, 1, 0, 0, 0, 0, 0,    0,    10, 0, 0, 2};
  EXPECT_EQ(frame(eth(0x0806, arp)),
            "52:54:00:00:00:01 > ff:ff:ff:ff:ff:ff, arp who-has 10.0.0.2 tell 10.0.0.1");
  // IPv4 TCP 10.0.0.1:34567 -> 10.0.0.2:80.
  std::vector<uint8_t> ip4 = {0x45, 0, 0, 40, 0,  0, 0, 0, 64,   6,    0, 0,
                              10,   0, 0, 1,  10, 0, 0, 2, 0x87, 0x07, 0, 80};
  EXPECT_EQ(frame(eth(0x0800, ip4)),
            "52:54:00:00:00:01 > ff:ff:ff:ff:ff:ff, 10.0.0.1.34567 > 10.0.0.2.80 tcp");
  // The same behind VLAN 10.
  std::vector<uint8_t> tagged = {0x00, 0x0a, 0x08, 0x00};
  tagged.insert(tagged.end(), ip4.begin(), ip4.end());
  EXPECT_EQ(frame(eth(0x8100, tagged)),
            "52:54:00:00:00:01 > ff:ff:ff:ff:ff:ff, vlan 10, 10.0.0.1.34567 > 10.0.0.2.80 tcp");
  // IPv6 router solicitation fe80::1 -> ff02::2 (ICMPv6 133).
  std::vector<uint8_t> ip6(40, 0);
  ip6[0] = 0x60;
  ip6[6] = 58;
  ip6[8] = 0xfe, ip6[9] = 0x80, ip6[23] = 1;
  ip6[24] = 0xff, ip6[25] = 0x02, ip6[39] = 2;
  ip6.push_back(133);
  EXPECT_EQ(frame(eth(0x86dd, ip6)), "52:54:00:00:00:01 > ff:ff:ff:ff:ff:ff, fe80::1 > ff02::2 icmp6 133");
}

TEST(UpcallFrame, WhatTheBytesDoNotCoverIsLeftOut) {
  EXPECT_EQ(describe_frame(nullptr, 0), "");
  auto f = eth(0x0800, {0x45, 0, 0, 40});
  EXPECT_EQ(describe_frame(f.data(), 13), "");
  // An IPv4 header cut short: the ethertype is all that is known.
  EXPECT_EQ(frame(f), "52:54:00:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype 0x0800");
  // UDP with its ports cut off: addresses and protocol only.
  std::vector<uint8_t> ip4 = {0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x00};
  EXPECT_EQ(frame(eth(0x0800, ip4)), "52:54:00:00:00:01 > ff:ff:ff:ff:ff:ff, 10.0.0.1 > 10.0.0.2 udp");
  // A header length (IHL 15: 60 bytes) beyond the bytes there are: no ports.
  std::vector<uint8_t> long_ihl = {0x4f, 0, 0, 40, 0,  0, 0, 0, 64,   6,    0, 0,
                                   10,   0, 0, 1,  10, 0, 0, 2, 0x87, 0x07, 0, 80};
  EXPECT_EQ(frame(eth(0x0800, long_ihl)), "52:54:00:00:00:01 > ff:ff:ff:ff:ff:ff, 10.0.0.1 > 10.0.0.2 tcp");
}

hv_trace_upcall sample() {
  hv_trace_upcall e{};
  e.ts_ns = 5'123'456'789;
  e.netns = kNetns;
  e.dp_ifindex = 7;
  e.ifindex = 12;
  e.len = 60;
  e.cpu = 1;
  e.port = 2;
  e.cmd = HV_OVS_UPCALL_MISS;
  auto f = eth(0x88b5, std::vector<uint8_t>(46));  // 60 bytes: all of it fits
  std::memcpy(e.hdr, f.data(), f.size());
  e.hdr_len = static_cast<uint8_t>(f.size());
  return e;
}

std::shared_ptr<NameCache> names() {
  auto dir = std::make_unique<FakeDirectory>();
  dir->interfaces[7] = "ovs-system";
  dir->datapaths[7] = {{0, "ovs-system"}, {2, "tap1234"}};
  return std::make_shared<NameCache>(std::move(dir));
}

TEST(UpcallDescribe, NamesTheDatapathThePortAndTheInstanceBehindIt) {
  std::vector<std::string> asked;
  UpcallNamer namer(names(), [&](const std::string& iface) -> std::optional<UpcallOwner> {
    asked.push_back(iface);
    if (iface != "tap1234") return std::nullopt;
    return UpcallOwner{"1c0b3b6e-0000-4000-8000-00000000002a", "instance-0000002a", 4242};
  });
  auto r = namer.describe(sample());
  EXPECT_EQ(r.datapath, "ovs-system");
  EXPECT_EQ(r.port, "tap1234");
  EXPECT_EQ(r.port_no, 2u);
  EXPECT_EQ(r.cmd, "miss");
  EXPECT_EQ(r.len, 60u);
  EXPECT_EQ(r.instance_id, "1c0b3b6e-0000-4000-8000-00000000002a");
  EXPECT_EQ(r.instance_name, "instance-0000002a");
  EXPECT_EQ(r.packet, "52:54:00:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype 0x88b5");
  EXPECT_EQ(asked, std::vector<std::string>{"tap1234"});
  EXPECT_EQ(format_upcall_line(r, 0),
            "00:00:05.123456 instance-0000002a    tap1234         miss   cpu 1        60B  "
            "52:54:00:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype 0x88b5");
  EXPECT_EQ(
      upcall_json(r, 1'000'000'000, 3),
      "{\"type\":\"upcall\",\"time_ns\":6123456789,\"instance_id\":\"1c0b3b6e-0000-4000-8000-00000000002a\","
      "\"instance_name\":\"instance-0000002a\",\"datapath\":\"ovs-system\",\"port\":\"tap1234\",\"port_no\":"
      "2,"
      "\"cmd\":\"miss\",\"cpu\":1,\"len\":60,\"packet\":\"52:54:00:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype "
      "0x88b5\",\"dropped\":3}");
}

TEST(UpcallDescribe, AnUnknownPortOrOwnerStaysUnnamed) {
  auto e = sample();
  e.port = 9;  // not in the datapath's port list
  e.cmd = HV_OVS_UPCALL_ACTION;
  e.hdr_len = 0;
  int asked = 0;
  UpcallNamer namer(names(), [&](const std::string&) -> std::optional<UpcallOwner> {
    ++asked;
    return std::nullopt;
  });
  auto r = namer.describe(e);
  EXPECT_EQ(asked, 0);  // an unnamed port is nobody's tap: no owner lookup (no process walk)
  EXPECT_EQ(r.port, "port 9");
  EXPECT_EQ(r.cmd, "action");
  EXPECT_EQ(r.instance_id, "");
  EXPECT_EQ(r.packet, "");
  EXPECT_EQ(format_upcall_text(r), "-                    port 9          action cpu 1        60B  ");
}

}  // namespace
}  // namespace hvtel::ovs_dp
