#include "ovs/datapath/upcall_trace.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/core.h>

#include <algorithm>
#include <cerrno>

#include "ovs/datapath/ovs_dp_collector.h"
#include "trace_upcalls.skel.h"

namespace hvtel::ovs_dp {
namespace {

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

std::string mac(const uint8_t* p) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", p[0], p[1], p[2], p[3], p[4], p[5]);
}

std::string addr(int family, const uint8_t* p) {
  char buf[INET6_ADDRSTRLEN] = {};
  return inet_ntop(family, p, buf, sizeof(buf)) ? buf : "?";
}

const char* proto_name(uint8_t proto) {
  switch (proto) {
    case 1:
      return "icmp";
    case 6:
      return "tcp";
    case 17:
      return "udp";
    case 58:
      return "icmp6";
    default:
      return nullptr;
  }
}

// "10.0.0.1.34567 > 10.0.0.2.80 tcp", "10.0.0.1 > 10.0.0.2 icmp 8", "… proto 47".
std::string l4(int family, const uint8_t* src, const uint8_t* dst, uint8_t proto, const uint8_t* l4,
               size_t l4_len) {
  const char* name = proto_name(proto);
  std::string s = addr(family, src), d = addr(family, dst);
  std::string what = name ? name : fmt::format("proto {}", proto);
  if ((proto == 6 || proto == 17) && l4_len >= 4)
    return fmt::format("{}.{} > {}.{} {}", s, be16(l4), d, be16(l4 + 2), what);
  if ((proto == 1 || proto == 58) && l4_len >= 1) return fmt::format("{} > {} {} {}", s, d, what, l4[0]);
  return fmt::format("{} > {} {}", s, d, what);
}

}  // namespace

std::string describe_frame(const uint8_t* p, size_t n) {
  if (n < 14) return "";
  std::string out = mac(p + 6) + " > " + mac(p);
  uint16_t type = be16(p + 12);
  size_t off = 14;
  while ((type == 0x8100 || type == 0x88a8) && off + 4 <= n) {
    out += fmt::format(", vlan {}", be16(p + off) & 0xfff);
    type = be16(p + off + 2);
    off += 4;
  }
  const uint8_t* l3 = p + off;
  const size_t left = n - off;
  if (type == 0x0806 && left >= 28) {
    const uint16_t op = be16(l3 + 6);
    if (op == 1)
      return out + fmt::format(", arp who-has {} tell {}", addr(AF_INET, l3 + 24), addr(AF_INET, l3 + 14));
    if (op == 2) return out + fmt::format(", arp reply {} is-at {}", addr(AF_INET, l3 + 14), mac(l3 + 8));
    return out + fmt::format(", arp op {}", op);
  }
  if (type == 0x0800 && left >= 20 && (l3[0] >> 4) == 4) {
    const size_t ihl = (l3[0] & 0xf) * 4u;
    // A header longer than the bytes leaves no L4, and no pointer past them.
    const size_t l4_off = std::min(ihl, left);
    return out + ", " + l4(AF_INET, l3 + 12, l3 + 16, l3[9], l3 + l4_off, left - l4_off);
  }
  if (type == 0x86dd && left >= 40)
    return out + ", " + l4(AF_INET6, l3 + 8, l3 + 24, l3[6], l3 + 40, left - 40);
  return out + fmt::format(", ethertype 0x{:04x}", type);
}

UpcallRecord UpcallNamer::describe(const hv_trace_upcall& e) {
  UpcallRecord r;
  r.ts_ns = e.ts_ns;
  const DatapathRef dp{e.netns, e.dp_ifindex};
  r.datapath = names_ ? names_->datapath(dp) : fmt::format("ifindex:{}", e.dp_ifindex);
  r.port_no = e.port;
  r.port = names_ ? names_->port(dp, e.port) : "";
  // Only a named interface can be a tap someone holds: an unnamed port asks no owner
  // (a miss there would walk every process's fds).
  const bool named = !r.port.empty();
  if (!named) r.port = fmt::format("port {}", e.port);
  r.cmd = upcall_cmd_name(e.cmd);
  r.len = e.len;
  r.cpu = e.cpu;
  r.packet = describe_frame(e.hdr, std::min<size_t>(e.hdr_len, sizeof(e.hdr)));
  if (owner_ && named)
    if (auto o = owner_(r.port)) {
      r.instance_id = o->instance_id;
      r.instance_name = o->instance_name;
    }
  return r;
}

std::string format_upcall_text(const UpcallRecord& r) {
  const std::string& who = !r.instance_name.empty() ? r.instance_name
                           : !r.instance_id.empty() ? r.instance_id
                                                    : "-";
  return fmt::format("{:<20} {:<15} {:<6} cpu {:<4} {:>6}B  {}", who, r.port, r.cmd, r.cpu, r.len, r.packet);
}

std::string format_upcall_line(const UpcallRecord& r, int64_t wall_offset_ns) {
  return bpf::format_wall_time(r.ts_ns, wall_offset_ns) + " " + format_upcall_text(r);
}

nlohmann::ordered_json upcall_fields(const UpcallRecord& r, uint64_t dropped) {
  nlohmann::ordered_json j;
  j["instance_id"] = r.instance_id;
  j["instance_name"] = r.instance_name;
  j["datapath"] = r.datapath;
  j["port"] = r.port;
  j["port_no"] = r.port_no;
  j["cmd"] = r.cmd;
  j["cpu"] = r.cpu;
  j["len"] = r.len;
  j["packet"] = r.packet;
  j["dropped"] = dropped;
  return j;
}

std::string upcall_json(const UpcallRecord& r, int64_t wall_offset_ns, uint64_t dropped) {
  return bpf::trace_json("upcall", r.ts_ns, wall_offset_ns, upcall_fields(r, dropped));
}

std::string format_upcall_drop_line(const bpf::TraceCounts& c, const bpf::TraceConfig& cfg) {
  // Nothing in the upcall object has to be timed.
  return bpf::format_drop_line(c, cfg, "upcalls not timed");
}

// ---- the BPF side --------------------------------------------------------------

Result<std::unique_ptr<UpcallTracer>> UpcallTracer::start(bpf::TraceConfig cfg,
                                                          std::optional<std::set<uint32_t>> ifindexes) {
  bpf::ObjectSpec spec;
  spec.name = "trace_upcalls";
  spec.elf = trace_upcalls::elf_bytes(&spec.size);
  spec.hooks = {
      bpf::trace_hook("openvswitch", "ovs_dp_upcall", "hv_trace_upcall_btf", "hv_trace_upcall_raw")};
  cfg.filter_map = ifindexes.has_value();
  auto object = bpf::TraceObject::start(std::move(spec), cfg, sizeof(hv_trace_upcall), "ovs_dp_upcall");
  if (!object) return fail(object.error());
  auto map = (*object)->object().map("hv_upcall_ifindex");
  if (!map) return fail(map.error());
  std::unique_ptr<UpcallTracer> t(new UpcallTracer(std::move(*object), bpf_map__fd(*map)));
  if (ifindexes)
    if (auto st = t->follow(*ifindexes); !st) return fail(st.error());
  return t;
}

Status UpcallTracer::follow(const std::set<uint32_t>& ifindexes) {
  if (ifindexes.size() > HV_TRACE_UPCALL_IFACES)
    return fail(fmt::format("trace_upcalls: more than {} interfaces to follow", HV_TRACE_UPCALL_IFACES));
  for (uint32_t gone : followed_) {
    if (ifindexes.count(gone)) continue;
    bpf_map_delete_elem(ifindex_fd_, &gone);  // ENOENT is fine: it is gone either way
  }
  for (uint32_t ifindex : ifindexes) {
    const __u8 one = 1;
    if (bpf_map_update_elem(ifindex_fd_, &ifindex, &one, BPF_ANY) != 0)
      return fail_errno(errno, fmt::format("trace_upcalls: follow ifindex {}", ifindex));
  }
  followed_ = ifindexes;
  return {};
}

Status UpcallTracer::poll(int timeout_ms, const std::function<void(const hv_trace_upcall&)>& on_event) {
  return object_->poll_as<hv_trace_upcall>(timeout_ms, on_event);
}

}  // namespace hvtel::ovs_dp
