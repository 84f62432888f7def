#include "ovs/datapath/datapath_names.h"

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/openvswitch.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/util/log.h"

namespace hvtel::ovs_dp {
namespace {

constexpr size_t kAlign = NLMSG_ALIGNTO;
size_t align(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }

// A netlink attribute walk over [p, p+len).
template <typename F>
void for_each_attr(const uint8_t* p, size_t len, F&& f) {
  while (len >= sizeof(nlattr)) {
    nlattr a;
    std::memcpy(&a, p, sizeof(a));
    if (a.nla_len < sizeof(nlattr) || a.nla_len > len) return;
    f(static_cast<uint16_t>(a.nla_type & NLA_TYPE_MASK), p + NLA_HDRLEN, a.nla_len - NLA_HDRLEN);
    size_t step = align(a.nla_len);
    if (step >= len) return;
    p += step;
    len -= step;
  }
}

class Socket {
 public:
  Socket() : fd_(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC)) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// One genetlink request: nlmsghdr + genlmsghdr + fixed header + attributes.
std::vector<uint8_t> request(uint16_t type, uint16_t flags, uint32_t seq, uint8_t cmd,
                             uint8_t version, const void* fixed, size_t fixed_len,
                             const std::vector<std::pair<uint16_t, std::string>>& str_attrs) {
  std::vector<uint8_t> buf(NLMSG_HDRLEN + GENL_HDRLEN + align(fixed_len));
  for (const auto& [t, s] : str_attrs) buf.resize(buf.size() + align(NLA_HDRLEN + s.size() + 1));
  auto* nh = reinterpret_cast<nlmsghdr*>(buf.data());
  nh->nlmsg_len = static_cast<uint32_t>(buf.size());
  nh->nlmsg_type = type;
  nh->nlmsg_flags = flags;
  nh->nlmsg_seq = seq;
  auto* gh = reinterpret_cast<genlmsghdr*>(buf.data() + NLMSG_HDRLEN);
  gh->cmd = cmd;
  gh->version = version;
  size_t off = NLMSG_HDRLEN + GENL_HDRLEN;
  if (fixed_len) std::memcpy(buf.data() + off, fixed, fixed_len);
  off += align(fixed_len);
  for (const auto& [t, s] : str_attrs) {
    nlattr a{static_cast<uint16_t>(NLA_HDRLEN + s.size() + 1), t};
    std::memcpy(buf.data() + off, &a, sizeof(a));
    std::memcpy(buf.data() + off + NLA_HDRLEN, s.c_str(), s.size() + 1);
    off += align(a.nla_len);
  }
  return buf;
}

Status send_all(int fd, const std::vector<uint8_t>& msg) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof(kernel)) < 0)
    return fail_errno(errno, "netlink send");
  return {};
}

Result<ssize_t> recv_some(int fd, std::vector<uint8_t>& buf) {
  ssize_t n;
  do {
    n = ::recv(fd, buf.data(), buf.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno(errno, "netlink recv");
  return n;
}

Result<uint16_t> resolve_family(int fd, const char* name, uint32_t seq) {
  auto msg = request(GENL_ID_CTRL, NLM_F_REQUEST, seq, CTRL_CMD_GETFAMILY, 1, nullptr, 0,
                     {{CTRL_ATTR_FAMILY_NAME, name}});
  if (auto st = send_all(fd, msg); !st) return fail(st.error());
  std::vector<uint8_t> buf(16384);
  auto n = recv_some(fd, buf);
  if (!n) return fail(n.error());
  const uint8_t* p = buf.data();
  size_t len = static_cast<size_t>(*n);
  if (len < NLMSG_HDRLEN) return fail("short netlink reply");
  nlmsghdr nh;
  std::memcpy(&nh, p, sizeof(nh));
  if (nh.nlmsg_type == NLMSG_ERROR) {
    nlmsgerr e;
    if (len < NLMSG_HDRLEN + sizeof(e)) return fail("short netlink error");
    std::memcpy(&e, p + NLMSG_HDRLEN, sizeof(e));
    return fail_errno(e.error, std::string("genetlink family ") + name);
  }
  if (nh.nlmsg_len > len || nh.nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN)
    return fail("malformed genetlink reply");
  std::optional<uint16_t> id;
  for_each_attr(p + NLMSG_HDRLEN + GENL_HDRLEN, nh.nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN,
                [&](uint16_t type, const uint8_t* data, size_t dlen) {
                  if (type == CTRL_ATTR_FAMILY_ID && dlen >= 2) {
                    uint16_t v;
                    std::memcpy(&v, data, 2);
                    id = v;
                  }
                });
  if (!id) return fail(std::string("genetlink family ") + name + ": no id in reply");
  return *id;
}

}  // namespace

Result<bool> parse_vport_dump(const uint8_t* buf, size_t len, uint32_t seq,
                              std::map<uint32_t, std::string>& out) {
  const size_t fixed = NLMSG_HDRLEN + GENL_HDRLEN + align(sizeof(ovs_header));
  while (len >= NLMSG_HDRLEN) {
    nlmsghdr nh;
    std::memcpy(&nh, buf, sizeof(nh));
    if (nh.nlmsg_len < NLMSG_HDRLEN || nh.nlmsg_len > len) return fail("malformed netlink message");
    if (nh.nlmsg_seq == seq) {
      if (nh.nlmsg_type == NLMSG_DONE) return true;
      if (nh.nlmsg_type == NLMSG_ERROR) {
        nlmsgerr e;
        if (nh.nlmsg_len < NLMSG_HDRLEN + sizeof(e)) return fail("short netlink error");
        std::memcpy(&e, buf + NLMSG_HDRLEN, sizeof(e));
        if (e.error) return fail_errno(e.error, "OVS_VPORT_CMD_GET");
      } else if (nh.nlmsg_len >= fixed) {
        std::optional<uint32_t> port;
        std::string name;
        for_each_attr(buf + fixed, nh.nlmsg_len - fixed,
                      [&](uint16_t type, const uint8_t* data, size_t dlen) {
                        if (type == OVS_VPORT_ATTR_PORT_NO && dlen >= 4) {
                          uint32_t v;
                          std::memcpy(&v, data, 4);
                          port = v;
                        } else if (type == OVS_VPORT_ATTR_NAME && dlen > 0) {
                          name.assign(reinterpret_cast<const char*>(data), strnlen(
                                          reinterpret_cast<const char*>(data), dlen));
                        }
                      });
        if (port && !name.empty()) out[*port] = name;
      }
    }
    size_t step = align(nh.nlmsg_len);
    if (step >= len) break;
    buf += step;
    len -= step;
  }
  return false;
}

SystemDatapathDirectory::SystemDatapathDirectory() {
  struct stat st;
  if (::stat("/proc/self/ns/net", &st) == 0) netns_ = static_cast<uint32_t>(st.st_ino);
}

std::optional<std::string> SystemDatapathDirectory::interface_name(int32_t ifindex) const {
  char name[IF_NAMESIZE] = {};
  if (ifindex <= 0 || !::if_indextoname(static_cast<unsigned>(ifindex), name)) return std::nullopt;
  return std::string(name);
}

Result<std::map<uint32_t, std::string>> SystemDatapathDirectory::vports(int32_t dp_ifindex) const {
  Socket sock;
  if (sock.fd() < 0) return fail_errno(errno, "genetlink socket");
  // A wedged kernel must not hang a scrape.
  timeval tv{.tv_sec = 2, .tv_usec = 0};
  ::setsockopt(sock.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  auto family = resolve_family(sock.fd(), OVS_VPORT_FAMILY, 1);
  if (!family) return fail(family.error());
  ovs_header hdr{.dp_ifindex = dp_ifindex};
  auto msg = request(*family, NLM_F_REQUEST | NLM_F_DUMP, 2, OVS_VPORT_CMD_GET, OVS_VPORT_VERSION,
                     &hdr, sizeof(hdr), {});
  if (auto st = send_all(sock.fd(), msg); !st) return fail(st.error());
  std::map<uint32_t, std::string> out;
  std::vector<uint8_t> buf(32768);
  while (true) {
    auto n = recv_some(sock.fd(), buf);
    if (!n) return fail(n.error());
    if (*n == 0) return fail("netlink socket closed");
    auto done = parse_vport_dump(buf.data(), static_cast<size_t>(*n), 2, out);
    if (!done) return fail(done.error());
    if (*done) return out;
  }
}

NameCache::NameCache(std::unique_ptr<DatapathDirectory> dir, Clock clock)
    : dir_(std::move(dir)), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return std::chrono::steady_clock::now(); };
}

std::string NameCache::datapath(const DatapathRef& dp) {
  if (dp.ifindex <= 0) return "unknown";
  std::string fallback =
      "ifindex:" + std::to_string(dp.ifindex) + "@netns:" + std::to_string(dp.netns);
  if (!local(dp)) return fallback;
  std::lock_guard lock(mu_);
  Entry& e = entries_[dp];
  if (e.name) return *e.name;
  auto now = clock_();
  if (!e.name_tried || now - *e.name_tried >= kRetryUnknown) {
    e.name_tried = now;
    e.name = dir_->interface_name(dp.ifindex);
    if (e.name) return *e.name;
  }
  return fallback;
}

void NameCache::refresh_ports(const DatapathRef& dp, Entry& e, TimePoint now) {
  e.ports_tried = now;
  ++stats_.dumps;
  auto ports = dir_->vports(dp.ifindex);
  if (!ports) {
    ++stats_.dump_errors;
    log::debug("ovs_dp", "datapath ifindex {}: vport dump: {}", dp.ifindex, ports.error().message);
    return;  // keep what we had
  }
  e.ports = std::move(*ports);
}

std::string NameCache::port(const DatapathRef& dp, uint32_t port_no) {
  if (!local(dp)) return "";
  std::lock_guard lock(mu_);
  Entry& e = entries_[dp];
  auto now = clock_();
  bool known = e.ports.contains(port_no);
  bool due = !e.ports_tried || (known ? now - *e.ports_tried >= kMaxAge
                                      : now - *e.ports_tried >= kRetryUnknown);
  if (due) refresh_ports(dp, e, now);
  auto it = e.ports.find(port_no);
  return it == e.ports.end() ? "" : it->second;
}

NameCache::Stats NameCache::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace hvtel::ovs_dp
