#include "libvirt/domain_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <set>
#include <string>

#include "base/util/log.h"
#include "base/util/strings.h"

namespace hvtel::libvirt {
namespace {

std::atomic<uint64_t> g_parse_errors{0};

struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
struct CtxtFree {
  void operator()(xmlParserCtxt* c) const { xmlFreeParserCtxt(c); }
};
using DocPtr = std::unique_ptr<xmlDoc, DocFree>;

// Every rejected document goes through here so the counter cannot be missed.
std::unexpected<Error> reject(std::string why) {
  g_parse_errors.fetch_add(1, std::memory_order_relaxed);
  return fail("parse domain xml: " + std::move(why));
}

std::string_view local(const xmlNode* n) {
  return n->name ? std::string_view(reinterpret_cast<const char*>(n->name)) : std::string_view();
}

std::string_view ns_href(const xmlNode* n) {
  if (n->ns == nullptr || n->ns->href == nullptr) return {};
  return reinterpret_cast<const char*>(n->ns->href);
}

bool is_elem(const xmlNode* n, std::string_view name) {
  return n != nullptr && n->type == XML_ELEMENT_NODE && local(n) == name;
}

const xmlNode* child(const xmlNode* parent, std::string_view name) {
  for (const xmlNode* c = parent->children; c != nullptr; c = c->next)
    if (is_elem(c, name)) return c;
  return nullptr;
}

template <typename F>
void for_children(const xmlNode* parent, std::string_view name, F&& f) {
  for (const xmlNode* c = parent->children; c != nullptr; c = c->next)
    if (is_elem(c, name)) f(c);
}

// Attribute lookup by local name, ignoring the attribute's namespace.
std::optional<std::string> attr(const xmlNode* n, const char* name) {
  for (const xmlAttr* a = n->properties; a != nullptr; a = a->next) {
    if (a->name == nullptr || std::string_view(reinterpret_cast<const char*>(a->name)) != name)
      continue;
    std::string out;
    for (const xmlNode* t = a->children; t != nullptr; t = t->next)
      if ((t->type == XML_TEXT_NODE || t->type == XML_CDATA_SECTION_NODE) && t->content)
        out += reinterpret_cast<const char*>(t->content);
    return out;
  }
  return std::nullopt;
}

// Direct text content (text and CDATA children only). DTDs are refused, so
// there are no entity references left to expand.
std::string text(const xmlNode* n) {
  std::string out;
  if (n == nullptr) return out;
  for (const xmlNode* t = n->children; t != nullptr; t = t->next)
    if ((t->type == XML_TEXT_NODE || t->type == XML_CDATA_SECTION_NODE) && t->content)
      out += reinterpret_cast<const char*>(t->content);
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::optional<int> to_index(std::string_view s) {
  auto v = parse_u64(trim(s));
  if (!v || *v >= kMaxListEntries) return std::nullopt;
  return static_cast<int>(*v);
}

// Parses `xml` with network access, DTD loading and entity substitution all
// off, and refuses any document that has a DTD at all: libvirt never emits
// one, and it is the only way to declare entities (billion laughs, XXE).
Result<DocPtr> read_doc(std::string_view xml) {
  if (xml.size() > kMaxXmlBytes)
    return reject("document is " + std::to_string(xml.size()) + " bytes, limit " +
                  std::to_string(kMaxXmlBytes));
  if (xml.empty()) return reject("empty document");
  if (xml.find("<!DOCTYPE") != std::string_view::npos ||
      xml.find("<!ENTITY") != std::string_view::npos)
    return reject("DTDs and entity declarations are not accepted");

  std::unique_ptr<xmlParserCtxt, CtxtFree> ctxt(xmlNewParserCtxt());
  if (!ctxt) return reject("out of memory creating parser");
  const int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;
  DocPtr doc(xmlCtxtReadMemory(ctxt.get(), xml.data(), static_cast<int>(xml.size()),
                               "domain.xml", nullptr, opts));
  if (!doc || !ctxt->wellFormed) {
    std::string why = "malformed XML";
    if (const xmlError* e = xmlCtxtGetLastError(ctxt.get()); e && e->message) {
      why += " at line " + std::to_string(e->line) + ": ";
      why += trim(e->message);
    }
    return reject(why);
  }
  if (doc->intSubset != nullptr || doc->extSubset != nullptr)
    return reject("DTDs are not accepted");

  // Bound every later walk.
  size_t elements = 0;
  std::vector<const xmlNode*> stack{xmlDocGetRootElement(doc.get())};
  while (!stack.empty()) {
    const xmlNode* n = stack.back();
    stack.pop_back();
    for (; n != nullptr; n = n->next) {
      if (n->type == XML_ENTITY_REF_NODE) return reject("entity references are not accepted");
      if (n->type != XML_ELEMENT_NODE) continue;
      if (++elements > kMaxXmlElements)
        return reject("more than " + std::to_string(kMaxXmlElements) + " elements");
      if (n->children) stack.push_back(n->children);
    }
  }
  return doc;
}

Result<model::NovaInfo> nova_from_node(const xmlNode* inst, std::string_view requested_ns) {
  std::string_view href = ns_href(inst);
  if (href.empty()) href = requested_ns;
  model::NovaInfo nova;
  if (href == kNovaNs11) {
    nova.ns_version = "1.1";
  } else if (href == kNovaNs10) {
    nova.ns_version = "1.0";
  } else {
    return fail("not Nova metadata: namespace '" + std::string(href) + "'");
  }
  nova.display_name = text(child(inst, "name"));
  nova.creation_time = std::string(trim(text(child(inst, "creationTime"))));
  if (const xmlNode* f = child(inst, "flavor")) {
    nova.flavor_name = attr(f, "name").value_or("");
    nova.flavor_id = attr(f, "id").value_or("");
    if (auto v = parse_u64(trim(text(child(f, "memory"))))) nova.flavor_memory_mib = *v;
    if (auto v = parse_u64(trim(text(child(f, "vcpus")))); v && *v <= 65536)
      nova.flavor_vcpus = static_cast<int>(*v);
    if (const xmlNode* es = child(f, "extraSpecs")) {
      for_children(es, "extraSpec", [&](const xmlNode* s) {
        auto key = attr(s, "name");
        if (key && !key->empty() && nova.extra_specs.size() < kMaxListEntries)
          nova.extra_specs[*key] = std::string(trim(text(s)));
      });
    }
  }
  if (const xmlNode* o = child(inst, "owner")) {
    if (const xmlNode* u = child(o, "user")) {
      nova.user_id = attr(u, "uuid").value_or("");
      nova.user_name = text(u);
    }
    if (const xmlNode* p = child(o, "project")) {
      nova.project_id = attr(p, "uuid").value_or("");
      nova.project_name = text(p);
    }
  }
  if (const xmlNode* ports = child(inst, "ports")) {
    for_children(ports, "port", [&](const xmlNode* p) {
      auto id = attr(p, "uuid");
      if (id && !id->empty() && nova.port_ids.size() < kMaxListEntries)
        nova.port_ids.push_back(lower(*id));
    });
  }
  return nova;
}

Result<std::vector<int>> cpuset_attr(const xmlNode* n, const char* what) {
  auto v = attr(n, "cpuset");
  if (!v) return fail(std::string(what) + " without cpuset");
  auto cpus = parse_libvirt_cpuset(*v);
  if (!cpus) return fail(std::string(what) + " has a bad cpuset '" + *v + "'");
  return *cpus;
}

Status parse_cputune(const xmlNode* ct, model::PinIntent& intent) {
  for (const xmlNode* c = ct->children; c != nullptr; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    std::string_view n = local(c);
    if (n == "vcpupin") {
      auto idx = to_index(attr(c, "vcpu").value_or(""));
      if (!idx) return fail("vcpupin with a bad vcpu attribute");
      auto cpus = cpuset_attr(c, "vcpupin");
      if (!cpus) return fail(cpus.error());
      intent.vcpu_pins[*idx] = std::move(*cpus);
    } else if (n == "emulatorpin") {
      auto cpus = cpuset_attr(c, "emulatorpin");
      if (!cpus) return fail(cpus.error());
      intent.emulator_pin = std::move(*cpus);
    } else if (n == "iothreadpin") {
      auto cpus = cpuset_attr(c, "iothreadpin");
      if (!cpus) return fail(cpus.error());
      auto id_attr = attr(c, "iothread");
      if (!id_attr) {
        // Nova bug LP #2140537 (F15) renders <iothreadpin> without the
        // attribute. Nova only ever creates IOThread 1, so that is what it means.
        if (!intent.iothread_pins.contains(1)) intent.iothread_pins[1] = std::move(*cpus);
        continue;
      }
      auto id = to_index(*id_attr);
      if (!id) return fail("iothreadpin with a bad iothread attribute '" + *id_attr + "'");
      intent.iothread_pins[*id] = std::move(*cpus);
    }
    // vcpusched, shares, period, quota, ...: not pinning, ignored.
  }
  return {};
}

// <numatune>: <memory nodeset> binds the whole guest, <memnode cellid nodeset>
// one guest cell (Nova writes both for NUMA-topology flavors). A nodeset that
// is absent is placement='auto' (numad decides): nothing to check against.
Status parse_numatune(const xmlNode* nt, model::PinIntent& intent) {
  auto nodeset = [](const xmlNode* n, const char* what) -> Result<std::optional<std::vector<int>>> {
    auto v = attr(n, "nodeset");
    if (!v) return std::optional<std::vector<int>>{};
    auto nodes = parse_libvirt_cpuset(*v);
    if (!nodes || nodes->empty()) return fail(std::string(what) + " has a bad nodeset '" + *v + "'");
    return std::optional<std::vector<int>>{std::move(*nodes)};
  };
  if (const xmlNode* m = child(nt, "memory")) {
    auto nodes = nodeset(m, "memory");
    if (!nodes) return fail(nodes.error());
    if (*nodes) intent.numa_nodeset = std::move(**nodes);
  }
  Status st;
  for_children(nt, "memnode", [&](const xmlNode* m) {
    if (!st) return;
    auto cellid = attr(m, "cellid");
    auto cell = to_index(cellid.value_or(""));
    if (!cell) {
      st = fail("memnode with a bad cellid '" + cellid.value_or("") + "'");
      return;
    }
    auto nodes = nodeset(m, "memnode");
    if (!nodes) {
      st = fail(nodes.error());
    } else if (!*nodes) {
      st = fail("memnode " + std::to_string(*cell) + " without nodeset");
    } else if (!intent.numa_memnodes.emplace(*cell, std::move(**nodes)).second) {
      st = fail("memnode " + std::to_string(*cell) + " given twice");
    }
  });
  return st;
}

// <cpu><numa><cell id='N' cpus='...'/>: which guest cell each vCPU is in.
Status parse_guest_cells(const xmlNode* numa, model::PinIntent& intent) {
  Status st;
  std::set<int> ids;
  for_children(numa, "cell", [&](const xmlNode* c) {
    if (!st) return;
    auto id_attr = attr(c, "id");
    auto id = to_index(id_attr.value_or(""));
    if (!id) {
      st = fail("cell with a bad id '" + id_attr.value_or("") + "'");
      return;
    }
    if (!ids.insert(*id).second) {
      st = fail("cell " + std::to_string(*id) + " given twice");
      return;
    }
    auto cpus_attr = attr(c, "cpus");
    auto cpus = parse_libvirt_cpuset(cpus_attr.value_or(""));
    if (!cpus || cpus->empty()) {
      st = fail("cell " + std::to_string(*id) + " has bad cpus '" + cpus_attr.value_or("") + "'");
      return;
    }
    for (int v : *cpus) {
      if (v >= static_cast<int>(kMaxListEntries) || !intent.vcpu_cells.emplace(v, *id).second) {
        st = fail("vCPU " + std::to_string(v) + " of cell " + std::to_string(*id) +
                  " is out of range or in two cells");
        return;
      }
    }
  });
  return st;
}

}  // namespace

std::optional<std::vector<int>> parse_libvirt_cpuset(std::string_view s) {
  std::string include, exclude;
  for (const auto& part : split(s, ',')) {
    std::string_view p = trim(part);
    if (!p.empty() && p.front() == '^') {
      if (p.size() == 1) return std::nullopt;
      if (!exclude.empty()) exclude += ',';
      exclude += p.substr(1);
    } else {
      if (!include.empty()) include += ',';
      include += p;
    }
  }
  auto in = parse_cpu_list(include);
  auto ex = parse_cpu_list(exclude);
  if (!in || !ex) return std::nullopt;
  std::vector<int> out;
  std::set_difference(in->begin(), in->end(), ex->begin(), ex->end(), std::back_inserter(out));
  return out;
}

const char* policy_name(model::CpuPolicy p) {
  switch (p) {
    case model::CpuPolicy::kUnknown: return "unknown";
    case model::CpuPolicy::kShared: return "shared";
    case model::CpuPolicy::kDedicated: return "dedicated";
    case model::CpuPolicy::kMixed: return "mixed";
  }
  return "unknown";
}

model::CpuPolicy resolve_policy(const model::PinIntent& intent, int vcpus,
                                const std::optional<model::NovaInfo>& nova,
                                const std::optional<std::vector<int>>& dedicated_set) {
  if (nova) {
    if (auto it = nova->extra_specs.find("hw:cpu_policy"); it != nova->extra_specs.end()) {
      if (it->second == "dedicated") return model::CpuPolicy::kDedicated;
      if (it->second == "shared") return model::CpuPolicy::kShared;
      if (it->second == "mixed") return model::CpuPolicy::kMixed;
    }
  }
  if (vcpus <= 0) return model::CpuPolicy::kUnknown;
  // Nova < 32 leaves no extra specs on the host: a dedicated guest is one
  // whose every vCPU has a single-pCPU pin (inside cpu_dedicated_set, when the
  // caller knows it). Without the set, "mixed" cannot be told from a shared
  // guest pinned to a one-CPU shared set, so it is only inferred with it.
  int dedicated = 0;
  for (int v = 0; v < vcpus; ++v) {
    auto it = intent.vcpu_pins.find(v);
    if (it == intent.vcpu_pins.end() || it->second.size() != 1) continue;
    if (dedicated_set &&
        !std::binary_search(dedicated_set->begin(), dedicated_set->end(), it->second[0]))
      continue;
    ++dedicated;
  }
  if (dedicated == vcpus) return model::CpuPolicy::kDedicated;
  if (dedicated > 0 && dedicated_set) return model::CpuPolicy::kMixed;
  return model::CpuPolicy::kShared;
}

uint64_t xml_parse_errors() { return g_parse_errors.load(std::memory_order_relaxed); }

Result<model::NovaInfo> parse_nova_metadata(std::string_view xml, std::string_view requested_ns) {
  auto doc = read_doc(xml);
  if (!doc) return fail(doc.error().context("nova metadata"));
  const xmlNode* root = xmlDocGetRootElement(doc->get());
  if (!is_elem(root, "instance"))
    return reject("nova metadata: root element is <" + std::string(root ? local(root) : "") +
                  ">, not <instance>");
  auto nova = nova_from_node(root, requested_ns);
  if (!nova) return reject("nova metadata: " + nova.error().message);
  return nova;
}

Result<DomainXml> parse_domain_xml(std::string_view xml, const ParseOptions& opts) {
  auto doc = read_doc(xml);
  if (!doc) return fail(doc.error());
  const xmlNode* root = xmlDocGetRootElement(doc->get());
  if (!is_elem(root, "domain")) return reject("root element is not <domain>");

  DomainXml d;
  d.type = attr(root, "type").value_or("");
  if (auto id = attr(root, "id")) {
    if (auto v = parse_i64(trim(*id)); v && *v >= -1 && *v < (1LL << 31)) d.id = static_cast<int>(*v);
  }
  d.name = text(child(root, "name"));
  d.uuid = lower(std::string(trim(text(child(root, "uuid")))));
  if (d.name.empty()) return reject("domain without <name>");
  if (d.uuid.empty()) return reject("domain '" + d.name + "' without <uuid>");

  if (const xmlNode* v = child(root, "vcpu")) {
    auto n = parse_u64(trim(text(v)));
    if (!n || *n == 0 || *n > kMaxListEntries)
      return reject("domain '" + d.name + "': bad <vcpu> count '" + text(v) + "'");
    d.vcpus_max = static_cast<int>(*n);
    d.vcpus_current = d.vcpus_max;
    if (auto cur = attr(v, "current")) {
      auto c = parse_u64(trim(*cur));
      if (!c || *c == 0 || *c > *n)
        return reject("domain '" + d.name + "': bad <vcpu current> '" + *cur + "'");
      d.vcpus_current = static_cast<int>(*c);
    }
    if (auto cs = attr(v, "cpuset")) {
      auto cpus = parse_libvirt_cpuset(*cs);
      if (!cpus) return reject("domain '" + d.name + "': bad <vcpu cpuset> '" + *cs + "'");
      d.intent.vcpu_cpuset = std::move(*cpus);
    }
  }
  if (const xmlNode* io = child(root, "iothreads")) {
    if (auto n = parse_u64(trim(text(io))); n && *n <= kMaxListEntries) d.iothreads = static_cast<int>(*n);
  }
  if (const xmlNode* ct = child(root, "cputune")) {
    if (auto st = parse_cputune(ct, d.intent); !st)
      return reject("domain '" + d.name + "': cputune: " + st.error().message);
  }
  if (const xmlNode* nt = child(root, "numatune")) {
    if (auto st = parse_numatune(nt, d.intent); !st)
      return reject("domain '" + d.name + "': numatune: " + st.error().message);
  }
  if (const xmlNode* cpu = child(root, "cpu")) {
    if (const xmlNode* numa = child(cpu, "numa")) {
      if (auto st = parse_guest_cells(numa, d.intent); !st)
        return reject("domain '" + d.name + "': cpu numa: " + st.error().message);
    }
  }
  if (const xmlNode* dev = child(root, "devices")) {
    for_children(dev, "interface", [&](const xmlNode* i) {
      if (d.interfaces.size() >= kMaxListEntries) return;
      model::Interface iface;
      if (const xmlNode* t = child(i, "target")) iface.target_dev = attr(t, "dev").value_or("");
      if (const xmlNode* m = child(i, "mac")) iface.mac = lower(attr(m, "address").value_or(""));
      if (const xmlNode* vp = child(i, "virtualport"))
        if (const xmlNode* p = child(vp, "parameters"))
          iface.interface_id = lower(attr(p, "interfaceid").value_or(""));
      d.interfaces.push_back(std::move(iface));
    });
  }
  if (const xmlNode* md = child(root, "metadata")) {
    // libvirt keeps one element per namespace; prefer 1.1 as Ceilometer does.
    const xmlNode* best = nullptr;
    for_children(md, "instance", [&](const xmlNode* inst) {
      std::string_view h = ns_href(inst);
      if (h == kNovaNs11 || (h == kNovaNs10 && best == nullptr)) best = inst;
      else if (best == nullptr && !d.nova_error)
        d.nova_error = Error::msg("metadata <instance> in foreign namespace '" + std::string(h) + "'");
    });
    if (best != nullptr) {
      auto nova = nova_from_node(best, {});
      if (nova) {
        d.nova = std::move(*nova);
        d.nova_error.reset();
      } else {
        d.nova_error = nova.error();
      }
    }
  }
  d.intent.policy = resolve_policy(d.intent, d.vcpus_current, d.nova, opts.dedicated_set);
  return d;
}

}  // namespace hvtel::libvirt
