// The frame bytes of an upcall: what a guest sent, as the kernel hands its first
// bytes to `hvtel trace upcalls`. The first byte is the header length the record
// claims (the kernel's is at most 64, a corrupt one anything), the rest the bytes.
#include <cstring>

#include "fuzz_input.h"
#include "ovs/datapath/upcall_trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hvtel::fuzz::Input in(data, size);
  const uint8_t claimed = in.take_byte();
  (void)hvtel::ovs_dp::describe_frame(in.bytes.data(), in.bytes.size());
  hv_trace_upcall e{};
  std::memcpy(e.hdr, in.bytes.data(), std::min(in.bytes.size(), sizeof(e.hdr)));
  e.hdr_len = claimed;
  e.cmd = claimed;
  hvtel::ovs_dp::UpcallNamer namer(nullptr, {});
  auto r = namer.describe(e);
  (void)hvtel::ovs_dp::format_upcall_text(r);
  (void)hvtel::ovs_dp::upcall_json(r, 0, 0);
  return 0;
}
