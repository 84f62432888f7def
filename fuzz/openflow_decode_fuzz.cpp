// OpenFlow bodies a switch sends, one decoder per input: the first byte picks which, the rest is
// what that decoder gets: NXM/OXM matches, OF1.0 and OF1.3+ action lists, OF1.3+ instruction lists
// (also rewritten into the OF1.0 form), flow-monitor reply bodies (Nicira, OF1.4/1.5, ONF), and a
// raw message stream through the framer into every message decoder. Whatever decodes is rendered
// as dump-flows text.
#include "fuzz_input.h"
#include "openflow_sink.h"
#include "ovs/openflow/actions.h"
#include "ovs/openflow/flow_monitor.h"
#include "ovs/openflow/legacy_actions.h"
#include "ovs/openflow/nxm.h"

using namespace hvtel::ovs;

namespace {

void messages(ByteView stream) {
  of::Framer framer;
  framer.feed(stream);
  while (true) {
    auto m = framer.next();
    if (!m || !*m) return;
    const of::Message& msg = **m;
    (void)of::type_name(msg.header.version, msg.header.type);
    if (auto h = of::decode_hello(msg)) {
      (void)of::negotiate_version(of::Hello{of::kVersion15, kMonitorVersions}, *h);
    }
    if (auto e = of::decode_error(msg)) (void)e->describe();
    (void)of::decode_features_reply(msg);
    (void)of::decode_nx_stats(msg);
    (void)of::decode_nxt(msg);
    (void)of::decode_experimenter(msg, of::kOnfExperimenter);
    if (auto mp = of::decode_multipart(msg)) (void)of::decode_experimenter_multipart(*mp);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hvtel::fuzz::Input in(data, size);
  const uint8_t which = in.take_byte();
  const ByteView b = in.bytes;
  hvtel::fuzz::RenderingSink sink;
  switch (which % 10) {
    case 0:
      if (auto m = decode_nxm(b)) (void)render_match(*m);
      break;
    case 1: {
      size_t padded = 0;
      if (auto m = decode_ofp_match(b, padded)) {
        if (padded > b.size()) __builtin_trap();
        (void)render_match(*m);
      }
      break;
    }
    case 2:
      (void)render_actions(decode_actions(b, ActionDialect::kOf10).actions);
      break;
    case 3:
      (void)render_actions(decode_actions(b, ActionDialect::kOf13).actions);
      break;
    case 4:
      (void)render_actions(decode_instructions(b, which & 0x80).actions);
      (void)legacy::of10_instruction(b);
      (void)legacy::of10_actions(b);
      break;
    case 5:
      (void)decode_flow_updates(b, which & 0x80, sink);
      break;
    case 6:
      (void)decode_flow_updates14(b, which & 0x80, sink, which & 0x40);
      break;
    case 7:
      (void)decode_flow_updates_onf(b, which & 0x80, sink, which & 0x40);
      break;
    default:
      messages(b);
      break;
  }
  return 0;
}
