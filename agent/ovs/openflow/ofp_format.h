// Value formatting shared by the match and action renderers. Each helper
// produces exactly the text `ovs-ofctl --no-names` (Open vSwitch 3.1) prints for
// the same value, because the mirror is compared against dump-flows output.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ovs/openflow/nxm.h"

namespace hvtel::ovs::fmtx {

// 16-bit OpenFlow 1.0 port: reserved names (IN_PORT, NORMAL, LOCAL, ANY...) or decimal.
std::string port(uint32_t port16);
// 32-bit OpenFlow 1.1+ port mapped to the 16-bit space first.
std::string port11(uint32_t port32);
std::optional<uint32_t> port11_to_port10(uint32_t port32);

std::string eth(const uint8_t* mac);
std::string eth_masked(const Bytes& v, const Bytes* mask);  // mask nullptr/all-ones = exact
std::string ipv4(uint32_t ip);
std::string ipv4_masked(uint32_t ip, uint32_t mask);
std::string ipv6(const uint8_t* addr16);
std::string ipv6_masked(const Bytes& v, const Bytes* mask);

// "0x" + hex with leading zero bytes dropped, or "0" (OVS ds_put_hex).
std::string hex_trimmed(const uint8_t* data, size_t n);
// "01.02.03" (OVS format_hex_arg).
std::string hex_dotted(const uint8_t* data, size_t n);

// ct_state / tcp_flags / tunnel flags: "+trk-est" or "trk|est" forms.
std::string flags_masked(const char* (*bit_name)(uint32_t), uint32_t flags, uint32_t mask,
                         uint32_t max_mask);
std::string flags_plain(const char* (*bit_name)(uint32_t), uint32_t flags, char sep);
const char* ct_state_bit(uint32_t bit);
const char* tcp_flag_bit(uint32_t bit);
const char* tun_flag_bit(uint32_t bit);

// mf_format: a field value (and optional mask) in the field's own syntax,
// as used by set_field and learn.
std::string field_value(FieldId id, const Bytes& value, const Bytes* mask);

// Subfield reference "NXM_NX_REG6[0..15]" / "NXM_NX_REG5[]" / "NXM_NX_REG0[3]".
std::string subfield(FieldId id, unsigned ofs, unsigned n_bits);

}  // namespace hvtel::ovs::fmtx
