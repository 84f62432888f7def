// Hand-built OpenFlow byte fixtures for the ovs unit tests.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "ovs/openflow/openflow_wire.h"

namespace hvtel::ovs::testbytes {

struct B {
  Bytes b;
  B& u8(uint8_t v) { b.push_back(v); return *this; }
  B& u16(uint16_t v) { put_be16(b, v); return *this; }
  B& u32(uint32_t v) { put_be32(b, v); return *this; }
  B& u64(uint64_t v) { put_be64(b, v); return *this; }
  B& raw(std::initializer_list<uint8_t> v) { b.insert(b.end(), v); return *this; }
  B& raw(const Bytes& v) { b.insert(b.end(), v.begin(), v.end()); return *this; }
  B& zeros(size_t n) { b.insert(b.end(), n, 0); return *this; }
  B& pad8() { while (b.size() % 8) b.push_back(0); return *this; }
  // NXM header: class, field, hasmask, length.
  B& nxm(uint16_t cls, uint8_t field, bool mask, uint8_t len) {
    return u32((uint32_t{cls} << 16) | (uint32_t{field} << 9) | (mask ? 0x100u : 0u) | len);
  }
  // OpenFlow 1.2+ OXM basic-class header.
  B& oxm(uint8_t field, bool mask, uint8_t len) { return nxm(0x8000, field, mask, len); }
  // Nicira action header (type 0xffff, len, vendor, subtype).
  B& nx(uint16_t len, uint16_t subtype) { return u16(0xffff).u16(len).u32(0x2320).u16(subtype); }
  // OpenFlow 1.1+ instruction wrapping an action list (apply/write_actions).
  B& instruction(uint16_t type, const Bytes& actions) {
    return u16(type).u16(static_cast<uint16_t>(8 + actions.size())).u32(0).raw(actions);
  }
  operator Bytes() const { return b; }
  operator ByteView() const { return b; }
};

}  // namespace hvtel::ovs::testbytes
