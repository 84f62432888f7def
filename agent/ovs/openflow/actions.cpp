#include "ovs/openflow/actions.h"

#include <fmt/core.h>

#include <algorithm>
#include <optional>

#include "ovs/openflow/legacy_actions.h"
#include "ovs/openflow/nxm.h"
#include "ovs/openflow/ofp_format.h"

namespace hvtel::ovs {
namespace {

constexpr int kMaxNesting = 8;

// Nicira action subtypes (NXAST_*).
enum NxSubtype : uint16_t {
  kNxResubmit = 1, kNxSetTunnel = 2, kNxSetQueue = 4, kNxPopQueue = 5, kNxRegMove = 6,
  kNxRegLoad = 7, kNxNote = 8, kNxSetTunnel64 = 9, kNxMultipath = 10, kNxBundle = 12,
  kNxBundleLoad = 13, kNxResubmitTable = 14, kNxOutputReg = 15, kNxLearn = 16, kNxExit = 17,
  kNxDecTtl = 18, kNxFinTimeout = 19, kNxController = 20, kNxDecTtlCntIds = 21,
  kNxWriteMetadata = 22, kNxPushMpls = 23, kNxPopMpls = 24, kNxSetMplsTtl = 25,
  kNxDecMplsTtl = 26, kNxStackPush = 27, kNxStackPop = 28, kNxSample = 29,
  kNxSetMplsLabel = 30, kNxSetMplsTc = 31, kNxOutputReg2 = 32, kNxRegLoad2 = 33,
  kNxConjunction = 34, kNxCt = 35, kNxNat = 36, kNxController2 = 37, kNxSample2 = 38,
  kNxOutputTrunc = 39, kNxGroup = 40, kNxSample3 = 41, kNxClone = 42, kNxCtClear = 43,
  kNxResubmitTableCt = 44, kNxLearn2 = 45, kNxDecNshTtl = 48, kNxDebugSlow = 254,
  kNxDebugRecirc = 255,
};

Action raw_action(ByteView b) {
  Action a;
  a.kind = ActionKind::kUnknown;
  a.text = "raw:" + hex_bytes(b);
  a.raw.assign(b.begin(), b.end());
  return a;
}

std::string hex0x(uint64_t v) { return v ? fmt::format("{:#x}", v) : "0"; }

// Thrown-free "malformed" signal inside one action's decoder.
struct Bad {
  std::string why;
};

// A field reference (header + offset + width) as used by load/move/output_reg.
struct SubfieldRef {
  FieldId id;
  unsigned ofs;
  unsigned n_bits;
  std::string text() const { return fmtx::subfield(id, ofs, n_bits); }
};

std::optional<FieldId> ref_field(ByteReader& r) {
  auto h = read_tlv_header(r);
  if (!h) return std::nullopt;
  return field_by_header(*h);
}

// Validates ofs/n_bits against the field width, as OVS does on decode.
std::optional<SubfieldRef> make_ref(std::optional<FieldId> id, unsigned ofs, unsigned n_bits) {
  if (!id) return std::nullopt;
  if (n_bits == 0 || ofs + n_bits > field_info(*id).n_bits) return std::nullopt;
  return SubfieldRef{*id, ofs, n_bits};
}

// The NX hash fields of multipath() and bundle(), by their wire number.
const char* nx_hash_fields(uint16_t fields) {
  static const char* kFields[] = {"eth_src", "symmetric_l4", "symmetric_l3l4", "symmetric_l3l4+udp",
                                  "nw_src", "nw_dst", "symmetric_l3"};
  return fields < 7 ? kFields[fields] : "<unknown>";
}

// controller() as ovs-ofctl prints it, for NXAST_CONTROLLER and NXAST_CONTROLLER2.
struct ControllerSpec {
  uint16_t max_len = 0xffff, id = 0;
  uint8_t reason = 1;  // OFPR_ACTION
  std::string userdata;
  bool pause = false;
  std::optional<uint32_t> meter;
};

std::string render_controller(const ControllerSpec& c) {
  if (c.reason == 1 && !c.id && c.userdata.empty() && !c.pause && !c.meter)
    return fmt::format("CONTROLLER:{}", c.max_len);
  static const char* kReasons[] = {"no_match", "action", "invalid_ttl", "action_set", "group",
                                   "packet_out"};
  std::string text = "controller(";
  if (c.reason != 1)
    text += c.reason < 6 ? fmt::format("reason={},", kReasons[c.reason]) : fmt::format("reason={},", c.reason);
  if (c.max_len != 0xffff) text += fmt::format("max_len={},", c.max_len);
  if (c.id) text += fmt::format("id={},", c.id);
  if (!c.userdata.empty()) text += "userdata=" + c.userdata + ",";
  if (c.pause) text += "pause,";
  if (c.meter) text += fmt::format("meter_id={},", *c.meter);
  if (text.back() == ',') text.pop_back();
  return text + ')';
}

// NXAST_CONTROLLER2's properties; nullopt when one is malformed or unknown.
std::optional<ControllerSpec> controller2_spec(const uint8_t* p, size_t n) {
  ControllerSpec c;
  size_t off = 16;
  while (off + 4 <= n) {
    uint16_t pt = load_be16(p + off), pl = load_be16(p + off + 2);
    if (pl < 4 || off + pl > n) return std::nullopt;
    const uint8_t* v = p + off + 4;
    size_t vl = pl - 4u;
    if (pt == 0 && vl >= 2) c.max_len = load_be16(v);
    else if (pt == 1 && vl >= 2) c.id = load_be16(v);
    else if (pt == 2 && vl >= 1) c.reason = v[0];
    else if (pt == 3) c.userdata = fmtx::hex_dotted(v, vl);
    else if (pt == 4) c.pause = true;
    else if (pt == 5 && vl >= 4) c.meter = load_be32(v);
    else return std::nullopt;
    off += (pl + 7u) / 8u * 8u;
  }
  return c;
}

class Decoder {
 public:
  explicit Decoder(ActionDialect dialect, bool fold_enqueue = true)
      : dialect_(dialect), fold_enqueue_(fold_enqueue) {}
  std::vector<Action> decode_list(ByteView data, int depth, std::string& error);
  std::vector<Action> decode_instructions(ByteView data, std::string& error);

 private:
  // Appends the action(s) one wire action stands for.
  void decode_one(ByteView a, int depth, std::string& error, std::vector<Action>& out);
  Action decode_wire(ByteView a, int depth, std::string& error);
  void decode_of13(ByteView a, int depth, std::string& error, std::vector<Action>& out);
  Action decode_legacy(ByteView wire, const Bytes& of10, int depth, std::string& error);
  void decode_instruction(ByteView in, std::string& error, std::vector<Action>& out);
  bool decode_of10(ByteView a, uint16_t type, Action& out);
  bool decode_nx(ByteView a, uint16_t subtype, int depth, Action& out, std::string& error);
  bool decode_reg_load(ByteView a, bool v2, Action& out);
  bool decode_bundle(ByteView a, bool load, Action& out);
  bool decode_learn(ByteView a, bool v2, Action& out);
  bool decode_ct(ByteView a, int depth, Action& out, std::string& error);
  static bool decode_nat(ByteView a, Action& out);

  ActionDialect dialect_;
  bool fold_enqueue_;
};

// Walks 8-byte-aligned TLVs (actions or instructions), calling 'each' for every
// well-framed one; a framing error ends the walk with a trailing raw action.
template <typename Each>
std::vector<Action> walk_tlvs(ByteView data, const char* what, std::string& error, Each each) {
  std::vector<Action> out;
  size_t off = 0;
  while (off < data.size()) {
    ByteView rest = data.subspan(off);
    if (rest.size() < 8) {
      error = fmt::format("{} trailing bytes after last {}", rest.size(), what);
      out.push_back(raw_action(rest));
      break;
    }
    uint16_t len = load_be16(rest.data() + 2);
    if (len < 8 || len % 8 != 0 || len > rest.size()) {
      error = fmt::format("{} at offset {} has bad length {}", what, off, len);
      out.push_back(raw_action(rest));
      break;
    }
    off += each(rest, len, out);
  }
  return out;
}

std::vector<Action> Decoder::decode_list(ByteView data, int depth, std::string& error) {
  return walk_tlvs(data, "action", error, [&](ByteView rest, size_t len, std::vector<Action>& out) {
    // OVS's OpenFlow 1.1+ form of enqueue spans three actions.
    if (dialect_ == ActionDialect::kOf13 && fold_enqueue_ && rest.size() >= 40) {
      if (auto enq = legacy::of10_enqueue(rest.subspan(0, 8), rest.subspan(8, 16),
                                          rest.subspan(24, 16))) {
        out.push_back(decode_legacy(rest.subspan(0, 40), *enq, depth, error));
        return size_t{40};
      }
    }
    decode_one(rest.subspan(0, len), depth, error, out);
    return len;
  });
}

void Decoder::decode_one(ByteView a, int depth, std::string& error, std::vector<Action>& out) {
  if (dialect_ == ActionDialect::kOf13 && load_be16(a.data()) != 0xffff) {
    decode_of13(a, depth, error, out);
  } else {
    out.push_back(decode_wire(a, depth, error));
  }
}

Action Decoder::decode_wire(ByteView a, int depth, std::string& error) {
  Action act;
  act.raw.assign(a.begin(), a.end());
  uint16_t type = load_be16(a.data());
  bool ok;
  if (type == 0xffff) {
    if (a.size() >= 10 && load_be32(a.data() + 4) == of::kNiciraVendor) {
      ok = decode_nx(a, load_be16(a.data() + 8), depth, act, error);
    } else {
      ok = false;
    }
  } else {
    ok = decode_of10(a, type, act);
  }
  if (!ok) {
    act.kind = ActionKind::kUnknown;
    act.text = "raw:" + hex_bytes(a);
    act.nested.clear();
    if (error.empty()) error = "undecodable action " + act.text;
  }
  return act;
}

// A standard OpenFlow 1.3/1.4 action: through its OpenFlow 1.0 form, so the
// text is what dump-flows prints for it.
void Decoder::decode_of13(ByteView a, int depth, std::string& error, std::vector<Action>& out) {
  auto hidden = [&](ActionKind kind, std::string text) {
    Action act = raw_action(a);
    act.kind = kind;
    act.text = std::move(text);
    act.canonical = false;
    out.push_back(std::move(act));
  };
  switch (load_be16(a.data())) {
    // OpenFlow 1.0 has no push_vlan: OVS drops it there and lets the
    // mod_vlan_vid that follows imply the tag.
    case legacy::kPushVlan13:
      return hidden(ActionKind::kPushVlan, fmt::format("push_vlan:0x{:04x}", load_be16(a.data() + 4)));
    // OpenFlow 1.5 made meter an action (an instruction before); 1.0 has neither.
    case legacy::kMeter15:
      return hidden(ActionKind::kMeter, fmt::format("meter:{}", load_be32(a.data() + 4)));
    default: break;
  }
  auto of10 = legacy::of10_actions(a);
  if (!of10) {
    out.push_back(raw_action(a));
    if (error.empty()) error = "undecodable action " + out.back().text;
    return;
  }
  for (const Bytes& b : *of10) out.push_back(decode_legacy(a, b, depth, error));
}

// Decodes the OpenFlow 1.0 form 'of10' of the wire action(s) 'wire'; errors
// and raw bytes refer to what was on the wire.
Action Decoder::decode_legacy(ByteView wire, const Bytes& of10, int depth, std::string& error) {
  std::string ignored;
  Action act = decode_wire(of10, depth, ignored);
  if (act.kind == ActionKind::kUnknown) {
    act = raw_action(wire);
    if (error.empty()) error = "undecodable action " + act.text;
  }
  act.raw.assign(wire.begin(), wire.end());
  return act;
}

std::vector<Action> Decoder::decode_instructions(ByteView data, std::string& error) {
  return walk_tlvs(data, "instruction", error,
                   [&](ByteView rest, size_t len, std::vector<Action>& out) {
                     decode_instruction(rest.subspan(0, len), error, out);
                     return len;
                   });
}

void Decoder::decode_instruction(ByteView in, std::string& error, std::vector<Action>& out) {
  auto hidden = [&](ActionKind kind, std::string text) {
    Action act = raw_action(in);
    act.kind = kind;
    act.text = std::move(text);
    act.canonical = false;
    return act;
  };
  switch (load_be16(in.data())) {
    case legacy::kApplyActions: {
      auto list = decode_list(in.subspan(8), 0, error);
      out.insert(out.end(), std::make_move_iterator(list.begin()),
                 std::make_move_iterator(list.end()));
      return;
    }
    case legacy::kWriteActions: {
      Action act = hidden(ActionKind::kWriteActions, "");
      act.nested = decode_list(in.subspan(8), 1, error);
      act.text = "write_actions(" + (act.nested.empty() ? "" : render_actions(act.nested)) + ")";
      out.push_back(std::move(act));
      return;
    }
    case legacy::kClearActions: out.push_back(hidden(ActionKind::kClearActions, "clear_actions")); return;
    case legacy::kMeter:
      out.push_back(hidden(ActionKind::kMeter, fmt::format("meter:{}", load_be32(in.data() + 4))));
      return;
    default: break;
  }
  if (auto of10 = legacy::of10_instruction(in)) {
    Action act = decode_legacy(in, *of10, 0, error);
    if (act.kind == ActionKind::kResubmit) act.kind = ActionKind::kGotoTable;
    out.push_back(std::move(act));
    return;
  }
  out.push_back(raw_action(in));
  if (error.empty()) error = "undecodable instruction " + out.back().text;
}

bool Decoder::decode_of10(ByteView a, uint16_t type, Action& out) {
  const uint8_t* p = a.data();
  size_t n = a.size();
  switch (type) {
    case 0: {  // OFPAT10_OUTPUT
      uint16_t port = load_be16(p + 4), max_len = load_be16(p + 6);
      out.port = port;
      if (port == 0xfffd) {
        out.kind = ActionKind::kController;
        out.text = fmt::format("CONTROLLER:{}", max_len);
      } else {
        out.kind = ActionKind::kOutput;
        out.text = port < 0xff00 ? fmt::format("output:{}", port) : fmtx::port(port);
      }
      return true;
    }
    case 1:  // OFPAT10_SET_VLAN_VID: OVS decodes it as "push a tag if needed".
      out.kind = ActionKind::kSetVlanVid;
      out.vlan_vid = load_be16(p + 4);
      out.sets_vlan_vid = true;
      if (out.vlan_vid > 0xfff) return false;
      out.text = fmt::format("mod_vlan_vid:{}", out.vlan_vid);
      return true;
    case 2:
      out.kind = ActionKind::kSetVlanPcp;
      if (p[4] > 7) return false;
      out.text = fmt::format("mod_vlan_pcp:{}", p[4]);
      return true;
    case 3:
      out.kind = ActionKind::kStripVlan;
      out.text = "strip_vlan";
      return true;
    case 4:
    case 5:
      if (n < 16) return false;
      out.kind = type == 4 ? ActionKind::kSetDlSrc : ActionKind::kSetDlDst;
      out.text = (type == 4 ? "mod_dl_src:" : "mod_dl_dst:") + fmtx::eth(p + 4);
      return true;
    case 6:
    case 7:
      out.kind = type == 6 ? ActionKind::kSetNwSrc : ActionKind::kSetNwDst;
      out.text = (type == 6 ? "mod_nw_src:" : "mod_nw_dst:") + fmtx::ipv4(load_be32(p + 4));
      return true;
    case 8:
      out.kind = ActionKind::kSetNwTos;
      out.text = fmt::format("mod_nw_tos:{}", p[4]);
      return true;
    case 9:
    case 10:
      out.kind = type == 9 ? ActionKind::kSetTpSrc : ActionKind::kSetTpDst;
      out.text = fmt::format("{}:{}", type == 9 ? "mod_tp_src" : "mod_tp_dst", load_be16(p + 4));
      return true;
    case 11:  // OFPAT10_ENQUEUE
      if (n < 16) return false;
      out.kind = ActionKind::kEnqueue;
      out.port = load_be16(p + 4);
      out.text = fmt::format("enqueue:{}:{}", fmtx::port(out.port), load_be32(p + 12));
      return true;
    default:
      return false;
  }
}

bool Decoder::decode_nx(ByteView a, uint16_t subtype, int depth, Action& out,
                        std::string& error) {
  const uint8_t* p = a.data();
  size_t n = a.size();
  auto need = [&](size_t len) { return n >= len; };
  switch (subtype) {
    case kNxResubmit:
    case kNxResubmitTable:
    case kNxResubmitTableCt: {
      if (!need(16)) return false;
      uint16_t in_port = load_be16(p + 10);
      uint8_t table = subtype == kNxResubmit ? 0xff : p[12];
      bool ct = subtype == kNxResubmitTableCt;
      out.kind = ActionKind::kResubmit;
      out.table = table;
      if (in_port != 0xfff8 && table == 0xff && !ct) {
        out.text = "resubmit:" + fmtx::port(in_port);
      } else {
        out.text = "resubmit(";
        if (in_port != 0xfff8) out.text += fmtx::port(in_port);
        out.text += ',';
        if (table != 0xff) out.text += std::to_string(table);
        if (ct) out.text += ",ct";
        out.text += ')';
      }
      return true;
    }
    case kNxSetTunnel:
      if (!need(16)) return false;
      out.kind = ActionKind::kSetTunnel;
      out.text = "set_tunnel:" + hex0x(load_be32(p + 12));
      return true;
    case kNxSetTunnel64:
      if (!need(24)) return false;
      out.kind = ActionKind::kSetTunnel;
      out.text = "set_tunnel64:" + hex0x(load_be64(p + 16));
      return true;
    case kNxSetQueue:
      if (!need(16)) return false;
      out.kind = ActionKind::kSetQueue;
      out.text = fmt::format("set_queue:{}", load_be32(p + 12));
      return true;
    case kNxPopQueue:
      out.kind = ActionKind::kPopQueue;
      out.text = "pop_queue";
      return true;
    case kNxRegLoad:
    case kNxRegLoad2:
      return decode_reg_load(a, subtype == kNxRegLoad2, out);
    case kNxRegMove: {
      if (!need(24)) return false;
      unsigned n_bits = load_be16(p + 10), src_ofs = load_be16(p + 12), dst_ofs = load_be16(p + 14);
      ByteReader r(a.subspan(16));
      auto src = make_ref(ref_field(r), src_ofs, n_bits);
      auto dst = make_ref(ref_field(r), dst_ofs, n_bits);
      if (!src || !dst) return false;
      out.kind = ActionKind::kMove;
      out.text = "move:" + src->text() + "->" + dst->text();
      return true;
    }
    case kNxNote:
      out.kind = ActionKind::kNote;
      out.text = "note:" + fmtx::hex_dotted(p + 10, n - 10);
      return true;
    case kNxMultipath: {
      if (!need(32)) return false;
      static const char* kAlgs[] = {"modulo_n", "hash_threshold", "hrw", "iter_hash"};
      uint16_t fields = load_be16(p + 10), basis = load_be16(p + 12), alg = load_be16(p + 16);
      uint16_t max_link = load_be16(p + 18);
      uint32_t arg = load_be32(p + 20);
      uint16_t ofs_nbits = load_be16(p + 26);
      ByteReader r(a.subspan(28, 4));
      auto dst = make_ref(ref_field(r), ofs_nbits >> 6, (ofs_nbits & 63) + 1u);
      if (!dst) return false;
      out.kind = ActionKind::kMultipath;
      out.text = fmt::format("multipath({},{},{},{},{},{})",
                             nx_hash_fields(fields), basis,
                             alg < 4 ? kAlgs[alg] : "<unknown>", max_link + 1, arg, dst->text());
      return true;
    }
    case kNxBundle:
    case kNxBundleLoad:
      return decode_bundle(a, subtype == kNxBundleLoad, out);
    case kNxOutputReg:
    case kNxOutputReg2: {
      if (!need(24)) return false;
      uint16_t ofs_nbits = load_be16(p + 10);
      ByteReader r(subtype == kNxOutputReg ? a.subspan(12) : a.subspan(14));
      auto src = make_ref(ref_field(r), ofs_nbits >> 6, (ofs_nbits & 63) + 1u);
      if (!src) return false;
      out.kind = ActionKind::kOutputReg;
      out.text = "output:" + src->text();
      return true;
    }
    case kNxLearn:
    case kNxLearn2:
      return decode_learn(a, subtype == kNxLearn2, out);
    case kNxExit:
      out.kind = ActionKind::kExit;
      out.text = "exit";
      return true;
    case kNxDecTtl:
      out.kind = ActionKind::kDecTtl;
      out.text = "dec_ttl";
      return true;
    case kNxDecTtlCntIds: {
      uint16_t cnt = load_be16(p + 10);
      if (n < 16u + 2u * cnt) return false;
      out.kind = ActionKind::kDecTtl;
      out.text = "dec_ttl(";
      for (uint16_t i = 0; i < cnt; ++i) {
        if (i) out.text += ',';
        out.text += std::to_string(load_be16(p + 16 + 2 * i));
      }
      out.text += ')';
      return true;
    }
    case kNxFinTimeout: {
      uint16_t idle = load_be16(p + 10), hard = load_be16(p + 12);
      out.kind = ActionKind::kFinTimeout;
      out.text = "fin_timeout(";
      if (idle) out.text += fmt::format("idle_timeout={},", idle);
      if (hard) out.text += fmt::format("hard_timeout={},", hard);
      if (out.text.back() == ',') out.text.pop_back();
      out.text += ')';
      return true;
    }
    case kNxController: {
      ControllerSpec c;
      c.max_len = load_be16(p + 10);
      c.id = load_be16(p + 12);
      c.reason = p[14];
      out.kind = ActionKind::kController;
      out.port = 0xfffd;
      out.text = render_controller(c);
      return true;
    }
    case kNxController2: {
      auto c = controller2_spec(p, n);
      if (!c) return false;
      out.kind = ActionKind::kController;
      out.port = 0xfffd;
      out.text = render_controller(*c);
      return true;
    }
    case kNxWriteMetadata: {
      if (!need(32)) return false;
      uint64_t md = load_be64(p + 16), mask = load_be64(p + 24);
      out.kind = ActionKind::kWriteMetadata;
      out.text = "write_metadata:" + hex0x(md);
      if (mask != ~0ull) out.text += "/" + hex0x(mask);
      return true;
    }
    case kNxPushMpls:
    case kNxPopMpls:
      out.kind = subtype == kNxPushMpls ? ActionKind::kPushMpls : ActionKind::kPopMpls;
      out.text = fmt::format("{}:0x{:04x}", subtype == kNxPushMpls ? "push_mpls" : "pop_mpls",
                             load_be16(p + 10));
      return true;
    case kNxSetMplsTtl:
      out.kind = ActionKind::kSetMpls;
      out.text = fmt::format("set_mpls_ttl({})", p[10]);
      return true;
    case kNxDecMplsTtl:
      out.kind = ActionKind::kSetMpls;
      out.text = "dec_mpls_ttl";
      return true;
    case kNxSetMplsLabel:
      out.kind = ActionKind::kSetMpls;
      out.text = fmt::format("set_mpls_label({})", load_be32(p + 12));
      return true;
    case kNxSetMplsTc:
      out.kind = ActionKind::kSetMpls;
      out.text = fmt::format("set_mpls_tc({})", p[10]);
      return true;
    case kNxStackPush:
    case kNxStackPop: {
      uint16_t ofs = load_be16(p + 10);
      ByteReader r(a.subspan(12));
      auto id = ref_field(r);
      auto n_bits = r.u16();
      if (!n_bits) return false;
      auto ref = make_ref(id, ofs, *n_bits);
      if (!ref) return false;
      out.kind = subtype == kNxStackPush ? ActionKind::kStackPush : ActionKind::kStackPop;
      out.text = (subtype == kNxStackPush ? "push:" : "pop:") + ref->text();
      return true;
    }
    case kNxSample:
    case kNxSample2:
    case kNxSample3: {
      if (!need(24)) return false;
      out.kind = ActionKind::kSample;
      out.text = fmt::format("sample(probability={},collector_set_id={},obs_domain_id={},obs_point_id={}",
                             load_be16(p + 10), load_be32(p + 12), load_be32(p + 16),
                             load_be32(p + 20));
      if (subtype != kNxSample) {
        if (!need(32)) return false;
        uint16_t sport = load_be16(p + 24);
        if (sport != 0xffff) out.text += ",sampling_port=" + fmtx::port(sport);
        if (subtype == kNxSample3) {
          if (p[26] == 1) out.text += ",ingress";
          else if (p[26] == 2) out.text += ",egress";
        }
      }
      out.text += ')';
      return true;
    }
    case kNxConjunction: {
      uint8_t clause = p[10], n_clauses = p[11];
      if (n_clauses < 2 || n_clauses > 64 || clause >= n_clauses) return false;
      out.kind = ActionKind::kConjunction;
      out.text = fmt::format("conjunction({},{}/{})", load_be32(p + 12), clause + 1, n_clauses);
      return true;
    }
    case kNxCt:
      return decode_ct(a, depth, out, error);
    case kNxNat:
      return decode_nat(a, out);
    case kNxOutputTrunc:
      out.kind = ActionKind::kOutputTrunc;
      out.port = load_be16(p + 10);
      out.text = fmt::format("output(port={},max_len={})", fmtx::port(out.port), load_be32(p + 12));
      return true;
    case kNxGroup:
      out.kind = ActionKind::kGroup;
      out.text = fmt::format("group:{}", load_be32(p + 12));
      return true;
    case kNxClone: {
      if (!need(16) || depth >= kMaxNesting) return false;
      out.kind = ActionKind::kClone;
      out.nested = decode_list(a.subspan(16), depth + 1, error);
      out.text = "clone(" + render_actions(out.nested) + ")";
      return true;
    }
    case kNxCtClear:
      out.kind = ActionKind::kCtClear;
      out.text = "ct_clear";
      return true;
    case kNxDecNshTtl:
      out.kind = ActionKind::kDebug;
      out.text = "dec_nsh_ttl";
      return true;
    case kNxDebugSlow:
    case kNxDebugRecirc:
      out.kind = ActionKind::kDebug;
      out.text = subtype == kNxDebugSlow ? "debug_slow" : "debug_recirc";
      return true;
    default:
      return false;
  }
}

// bundle() and bundle_load(): the members are outputs the rules see.
bool Decoder::decode_bundle(ByteView a, bool load, Action& out) {
  const uint8_t* p = a.data();
  size_t n = a.size();
  if (n < 32) return false;
  uint16_t alg = load_be16(p + 10), fields = load_be16(p + 12), basis = load_be16(p + 14);
  uint16_t n_members = load_be16(p + 20), ofs_nbits = load_be16(p + 22);
  if (n < 32u + 2u * n_members) return false;
  out.kind = ActionKind::kBundle;
  out.text = fmt::format("{}({},{},{},ofport,", load ? "bundle_load" : "bundle", nx_hash_fields(fields),
                         basis, alg == 0 ? "active_backup" : alg == 1 ? "hrw" : "<unknown>");
  if (load) {
    ByteReader r(a.subspan(24, 4));
    auto dst = make_ref(ref_field(r), ofs_nbits >> 6, (ofs_nbits & 63) + 1u);
    if (!dst) return false;
    out.text += dst->text() + ",";
  }
  out.text += "members:";
  for (uint16_t i = 0; i < n_members; ++i) {
    if (i) out.text += ',';
    uint16_t m = load_be16(p + 32 + 2 * i);
    out.text += fmtx::port(m);
    Action member;
    member.kind = ActionKind::kOutput;
    member.port = m;
    out.nested.push_back(std::move(member));
  }
  out.text += ')';
  return true;
}

// load: (NXAST_REG_LOAD) and set_field: (NXAST_REG_LOAD2); the VLAN they set is a rule input.
bool Decoder::decode_reg_load(ByteView a, bool v2, Action& out) {
  const uint8_t* p = a.data();
  if (!v2) {
    if (a.size() < 24) return false;
    uint16_t ofs_nbits = load_be16(p + 10);
    ByteReader r(a.subspan(12, 4));
    auto ref = make_ref(ref_field(r), ofs_nbits >> 6, (ofs_nbits & 63) + 1u);
    uint64_t value = load_be64(p + 16);
    if (!ref || (ref->n_bits < 64 && (value >> ref->n_bits) != 0)) return false;
    out.kind = ActionKind::kLoad;
    out.text = "load:" + hex0x(value) + "->" + ref->text();
    if ((ref->id == FieldId::kVlanTci && ref->ofs == 0 && ref->n_bits >= 12) ||
        (ref->id == FieldId::kVlanVid && ref->ofs == 0)) {
      out.vlan_vid = static_cast<uint16_t>(value & 0xfff);
      out.sets_vlan_vid = true;
    }
    return true;
  }
  if (a.size() < 16) return false;
  ByteReader r(a.subspan(16));
  auto h = read_tlv_header(r);
  if (!h) return false;
  auto id = field_by_header(*h);
  size_t vlen = h->value_len();
  auto value = r.bytes(vlen);
  auto mask = h->hasmask ? r.bytes(vlen) : std::optional<ByteView>(ByteView{});
  if (!id || !value || !mask) return false;
  Bytes v(value->begin(), value->end());
  Bytes m(mask->begin(), mask->end());
  out.kind = ActionKind::kSetField;
  out.text = "set_field:" + fmtx::field_value(*id, v, h->hasmask ? &m : nullptr) + "->" + field_info(*id).name;
  if ((*id == FieldId::kVlanVid || *id == FieldId::kVlanTci) && v.size() == 2) {
    out.vlan_vid = static_cast<uint16_t>(load_be16(v.data()) & 0xfff);
    out.sets_vlan_vid = true;
  }
  return true;
}

bool Decoder::decode_learn(ByteView a, bool v2, Action& out) {
  const uint8_t* p = a.data();
  if (a.size() < (v2 ? 40u : 32u)) return false;
  uint16_t idle = load_be16(p + 10), hard = load_be16(p + 12), prio = load_be16(p + 14);
  uint64_t cookie = load_be64(p + 16);
  uint16_t flags = load_be16(p + 24);
  uint8_t table = p[26];
  uint16_t fin_idle = load_be16(p + 28), fin_hard = load_be16(p + 30);
  std::string s = fmt::format("learn(table={}", table);
  if (idle) s += fmt::format(",idle_timeout={}", idle);
  if (hard) s += fmt::format(",hard_timeout={}", hard);
  if (fin_idle) s += fmt::format(",fin_idle_timeout={}", fin_idle);
  if (fin_hard) s += fmt::format(",fin_hard_timeout={}", fin_hard);
  if (prio != 32768) s += fmt::format(",priority={}", prio);
  if (flags & 1) s += ",send_flow_rem";
  if (flags & 2) s += ",delete_learned";
  if (cookie) s += ",cookie=" + hex0x(cookie);
  ByteReader r(a.subspan(v2 ? 40 : 32));
  if (v2) {
    uint32_t limit = load_be32(p + 32);
    uint16_t result_ofs = load_be16(p + 36);
    if (limit) s += fmt::format(",limit={}", limit);
    if (flags & 4) {
      auto ref = make_ref(ref_field(r), result_ofs, 1);
      if (!ref) return false;
      s += ",result_dst=" + ref->text();
    }
  }
  while (r.remaining() >= 2) {
    uint16_t header = *r.u16();
    if (header == 0) break;  // padding
    unsigned n_bits = header & 0x3ff;
    bool src_imm = header & (1u << 13);
    unsigned dst_type = (header >> 11) & 3;
    if (dst_type == 3 || (dst_type == 2 && src_imm) || n_bits == 0) return false;
    std::optional<SubfieldRef> src, dst;
    Bytes imm;
    if (!src_imm) {
      auto id = ref_field(r);
      auto ofs = r.u16();
      if (!ofs) return false;
      src = make_ref(id, *ofs, n_bits);
      if (!src) return false;
    } else {
      size_t p_bytes = 2 * ((n_bits + 15) / 16);
      auto b = r.bytes(p_bytes);
      if (!b) return false;
      size_t imm_bytes = (n_bits + 7) / 8;
      imm.assign(b->end() - static_cast<std::ptrdiff_t>(imm_bytes), b->end());
    }
    if (dst_type == 0 || dst_type == 1) {
      auto id = ref_field(r);
      auto ofs = r.u16();
      if (!ofs) return false;
      dst = make_ref(id, *ofs, n_bits);
      if (!dst) return false;
    }
    s += ',';
    if (src_imm && dst_type == 0) {
      const FieldInfo& fi = field_info(dst->id);
      if (dst->ofs == 0 && dst->n_bits == fi.n_bits) {
        Bytes value(fi.n_bytes, 0);
        size_t k = std::min(imm.size(), value.size());
        std::copy(imm.end() - static_cast<std::ptrdiff_t>(k), imm.end(),
                  value.end() - static_cast<std::ptrdiff_t>(k));
        s += std::string(fi.name) + "=" + fmtx::field_value(dst->id, value, nullptr);
      } else {
        s += dst->text() + "=" + fmtx::hex_trimmed(imm.data(), imm.size());
      }
    } else if (!src_imm && dst_type == 0) {
      s += dst->text();
      if (src->id != dst->id || src->ofs != dst->ofs) s += "=" + src->text();
    } else if (src_imm && dst_type == 1) {
      s += "load:" + fmtx::hex_trimmed(imm.data(), imm.size()) + "->" + dst->text();
    } else if (!src_imm && dst_type == 1) {
      s += "load:" + src->text() + "->" + dst->text();
    } else {
      s += "output:" + src->text();
    }
  }
  if (!r.ok()) return false;
  out.kind = ActionKind::kLearn;
  out.table = table;
  out.text = s + ")";
  return true;
}

bool Decoder::decode_nat(ByteView a, Action& out) {
  const uint8_t* p = a.data();
  if (a.size() < 16) return false;
  uint16_t flags = load_be16(p + 12), present = load_be16(p + 14);
  ByteReader r(a.subspan(16));
  std::string s = "nat";
  if (flags & 3) {
    s += (flags & 1) ? "(src" : "(dst";
    std::optional<uint32_t> v4min, v4max;
    std::optional<ByteView> v6min, v6max;
    std::optional<uint16_t> pmin, pmax;
    if (present & 1) v4min = r.u32();
    if (present & 2) v4max = r.u32();
    if (present & 4) v6min = r.bytes(16);
    if (present & 8) v6max = r.bytes(16);
    if (present & 16) pmin = r.u16();
    if (present & 32) pmax = r.u16();
    if (!r.ok()) return false;
    bool has_range = v4min || v6min;
    if (has_range) {
      s += '=';
      if (v4min) {
        s += fmtx::ipv4(*v4min);
        if (v4max && *v4max && *v4max != *v4min) s += "-" + fmtx::ipv4(*v4max);
      } else {
        bool bracket = pmin && *pmin;
        auto addr = [&](ByteView v) {
          std::string t = fmtx::ipv6(v.data());
          return bracket ? "[" + t + "]" : t;
        };
        s += addr(*v6min);
        if (v6max && !std::equal(v6max->begin(), v6max->end(), v6min->begin())) {
          bool any = std::all_of(v6max->begin(), v6max->end(), [](uint8_t c) { return c == 0; });
          if (!any) s += "-" + addr(*v6max);
        }
      }
      if (pmin && *pmin) {
        s += fmt::format(":{}", *pmin);
        if (pmax && *pmax && *pmax != *pmin) s += fmt::format("-{}", *pmax);
      }
      s += ',';
      if (flags & 4) s += "persistent,";
      if (flags & 8) s += "hash,";
      if (flags & 16) s += "random,";
    }
    if (s.back() == ',') s.pop_back();
    s += ')';
  }
  out.kind = ActionKind::kNat;
  out.text = s;
  return true;
}

bool Decoder::decode_ct(ByteView a, int depth, Action& out, std::string& error) {
  const uint8_t* p = a.data();
  if (a.size() < 24 || depth >= kMaxNesting) return false;
  uint16_t flags = load_be16(p + 10);
  uint32_t zone_src = load_be32(p + 12);
  uint16_t zone = load_be16(p + 16);
  uint8_t recirc = p[18];
  uint16_t alg = load_be16(p + 22);
  std::string s = "ct(";
  if (flags & 1) s += "commit,";
  if (flags & 2) s += "force,";
  if (recirc != 0xff) s += fmt::format("table={},", recirc);
  if (zone_src) {
    ByteReader r(a.subspan(12, 4));
    auto ref = make_ref(ref_field(r), zone >> 6, (zone & 63) + 1u);
    if (!ref || ref->n_bits != 16) return false;
    s += "zone=" + ref->text() + ",";
  } else if (zone) {
    s += fmt::format("zone={},", zone);
  }
  out.nested = decode_list(a.subspan(24), depth + 1, error);
  size_t i = 0;
  if (!out.nested.empty() && out.nested[0].kind == ActionKind::kNat) {
    s += out.nested[0].text + ",";
    i = 1;
  }
  if (i < out.nested.size()) {
    std::vector<Action> rest(out.nested.begin() + static_cast<std::ptrdiff_t>(i), out.nested.end());
    s += "exec(" + render_actions(rest) + "),";
  }
  if (alg == 21) s += "alg=ftp,";
  else if (alg == 69) s += "alg=tftp,";
  else if (alg) s += fmt::format("alg={},", alg);
  if (s.back() == ',') s.pop_back();
  s += ')';
  out.kind = ActionKind::kCt;
  out.table = recirc;
  out.text = s;
  return true;
}

void collect_facts(const std::vector<Action>& list, ActionFacts& f) {
  for (const auto& a : list) {
    switch (a.kind) {
      case ActionKind::kOutput:
      case ActionKind::kEnqueue:
      case ActionKind::kOutputTrunc:
        if (a.port < 0xff00) f.output_ports.push_back(a.port);
        else if (a.port == 0xfffa) f.outputs_normal = true;
        else if (a.port == 0xfffb || a.port == 0xfffc) f.outputs_flood = true;
        else if (a.port == 0xfffe) f.outputs_local = true;
        else if (a.port == 0xfff8) f.outputs_in_port = true;
        else if (a.port == 0xfffd) f.outputs_controller = true;
        break;
      case ActionKind::kController: f.outputs_controller = true; break;
      case ActionKind::kOutputReg: f.outputs_via_register = true; break;
      case ActionKind::kResubmit:
      case ActionKind::kGotoTable:
        if (a.table != 0xff) f.resubmit_tables.push_back(a.table);
        break;
      case ActionKind::kCt:
        f.has_ct = true;
        if (a.table != 0xff) f.resubmit_tables.push_back(a.table);
        break;
      case ActionKind::kStripVlan: f.strips_vlan = true; break;
      case ActionKind::kPushVlan: f.pushes_vlan = true; break;
      case ActionKind::kLearn: f.has_learn = true; break;
      case ActionKind::kConjunction: f.has_conjunction = true; break;
      case ActionKind::kUnknown: f.has_unknown = true; break;
      default: break;
    }
    if (a.sets_vlan_vid) f.vlan_vids_set.push_back(a.vlan_vid);
    // Bundle members are recorded as nested outputs; ct/clone nest real actions.
    if (!a.nested.empty()) collect_facts(a.nested, f);
  }
}

ActionList finish_list(ByteView data, std::vector<Action> actions, std::string error) {
  ActionList out;
  out.raw.assign(data.begin(), data.end());
  out.actions = std::move(actions);
  out.error = std::move(error);
  out.facts.is_drop = std::none_of(out.actions.begin(), out.actions.end(), [](const Action& a) {
    return a.canonical || a.kind == ActionKind::kWriteActions;
  });
  collect_facts(out.actions, out.facts);
  return out;
}

}  // namespace

ActionList decode_actions(ByteView data, ActionDialect dialect) {
  std::string error;
  auto actions = Decoder(dialect).decode_list(data, 0, error);
  return finish_list(data, std::move(actions), std::move(error));
}

ActionList decode_instructions(ByteView data, bool fold_enqueue) {
  std::string error;
  auto actions = Decoder(ActionDialect::kOf13, fold_enqueue).decode_instructions(data, error);
  return finish_list(data, std::move(actions), std::move(error));
}

std::string render_actions(const std::vector<Action>& actions) {
  std::string s;
  for (const auto& a : actions) {
    if (!a.canonical) continue;
    if (!s.empty()) s += ',';
    s += a.text;
  }
  return s.empty() ? "drop" : s;
}

}  // namespace hvtel::ovs
