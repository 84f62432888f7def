// What ovsdb-server sends on one connection, split into reads by the first input byte:
//  - JsonFramer, fed the stream whole and in slices: the messages (and a failure) must not depend
//    on where read(2) split the stream (a mismatch aborts, so the fuzzer reports it);
//  - Session (JSON-RPC, monitor_cond/monitor replies, update/update2, echo), the same slices, its
//    replica then built into a PortModel twice (the second carrying timestamps forward).
#include <cstdlib>
#include <deque>
#include <string>

#include "fuzz_input.h"
#include "ovs/ovsdb/json_framer.h"
#include "ovs/ovsdb/port_model.h"
#include "ovs/ovsdb/session.h"

using namespace hvtel::ovsdb;

namespace {

std::string_view as_text(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

struct Framed {
  std::deque<std::string> messages;
  bool failed = false;
  bool operator==(const Framed&) const = default;
};

Framed drain(JsonFramer& f) {
  Framed out;
  while (auto m = f.pop()) out.messages.push_back(std::move(*m));
  out.failed = f.failed();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hvtel::fuzz::Input in(data, size);
  const size_t slice = in.take_byte();
  // Small enough that inputs reach the oversized-message path.
  constexpr size_t kMaxMessage = 2048;

  JsonFramer whole(kMaxMessage), sliced(kMaxMessage);
  (void)whole.feed(in.text());
  in.in_slices(slice, [&](auto piece) { return sliced.feed(as_text(piece)).has_value(); });
  if (!(drain(whole) == drain(sliced))) std::abort();

  Session session;
  TimePoint now{};
  session.on_connect(now);
  (void)session.take_output();
  in.in_slices(slice, [&](auto piece) {
    now += std::chrono::seconds(1);
    if (!session.on_bytes(as_text(piece), now)) return false;
    (void)session.take_output();
    return session.on_tick(now + std::chrono::seconds(20)).has_value();
  });
  if (session.take_changed()) {
    PortModel first = build_port_model(session.db(), nullptr, now, 1, session.synced());
    PortModel second = build_port_model(session.db(), &first, now, 2, session.synced());
    for (const auto& b : second.bridges) (void)second.interface_by_ofport(b.name, 1);
    (void)second.instance_of("tap1");
  }
  return 0;
}
