#include "match_builders.h"

#include "ovs/openflow/openflow_wire.h"

namespace hvtel::ovs {

Bytes encode_nxm(const Match& m) {
  Bytes out;
  for (const auto& f : m.fields) {
    auto hdr = preferred_header(f.id);
    if (!hdr) continue;
    bool masked = !f.exact();
    size_t len = f.value.size() * (masked ? 2 : 1);
    put_be32(out, (*hdr & 0xfffffe00u) | (masked ? 0x100u : 0u) | static_cast<uint32_t>(len));
    out.insert(out.end(), f.value.begin(), f.value.end());
    if (masked) out.insert(out.end(), f.mask.begin(), f.mask.end());
  }
  for (const auto& u : m.unknown) {
    put_be32(out, u.header);
    if ((u.header >> 16) == 0xffff) put_be32(out, u.experimenter);
    out.insert(out.end(), u.payload.begin(), u.payload.end());
  }
  return out;
}

void match_set(Match& m, FieldId id, uint64_t value, std::optional<uint64_t> mask) {
  size_t n = field_info(id).n_bytes;
  Bytes mk = mask ? be_bytes(*mask, n) : Bytes(n, 0xff);
  match_set_bytes(m, id, be_bytes(value, n), mk);
}

void match_set_bytes(Match& m, FieldId id, Bytes value, std::optional<Bytes> mask) {
  Bytes mk = mask ? *mask : Bytes(value.size(), 0xff);
  mk.resize(value.size(), 0);
  for (size_t i = 0; i < value.size(); ++i) value[i] &= mk[i];
  std::erase_if(m.fields, [&](const MatchField& f) { return f.id == id; });
  if (!all_zero(mk)) m.fields.push_back(MatchField{id, std::move(value), std::move(mk)});
  std::sort(m.fields.begin(), m.fields.end(),
            [](const MatchField& a, const MatchField& b) { return a.id < b.id; });
}

}  // namespace hvtel::ovs
