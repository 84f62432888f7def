// What a switch sends on a flow-monitor connection, into FlowMonitorSession: the first input byte
// picks the versions our HELLO offers (so every monitor protocol gets negotiated), the second how
// the stream is split into reads; the rest is the stream (HELLO, then replies, echoes, errors,
// PAUSED/RESUMED). The session's own output is drained after every read, as the client does.
#include "fuzz_input.h"
#include "openflow_sink.h"
#include "ovs/openflow/flow_monitor.h"

using namespace hvtel::ovs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hvtel::fuzz::Input in(data, size);
  uint32_t versions = kMonitorVersions & (uint32_t{in.take_byte()} << 1);
  if (versions == 0) versions = kMonitorVersions;
  const size_t slice = in.take_byte();
  hvtel::fuzz::RenderingSink sink;
  FlowMonitorSession session(sink, versions);
  session.start();
  (void)session.take_output();
  in.in_slices(slice, [&](ByteView piece) {
    auto st = session.feed(piece);
    (void)session.take_output();
    return st.has_value();
  });
  return 0;
}
