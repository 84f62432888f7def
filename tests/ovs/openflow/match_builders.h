// Test-only: building matches by hand and encoding them as NXM, for fixtures
// and benchmarks (the agent only decodes matches). In hvtel::ovs beside the
// types they build so fixtures read as before.
#pragma once

#include <cstdint>
#include <optional>

#include "ovs/openflow/nxm.h"

namespace hvtel::ovs {

// Encodes a Match to NXM: fields in FieldId order with the NXM header when one exists.
Bytes encode_nxm(const Match& m);

// Sets (replaces) a field; the value is ANDed with the mask, an all-zero mask removes it.
void match_set(Match& m, FieldId id, uint64_t value, std::optional<uint64_t> mask = std::nullopt);
void match_set_bytes(Match& m, FieldId id, Bytes value, std::optional<Bytes> mask = std::nullopt);

}  // namespace hvtel::ovs
