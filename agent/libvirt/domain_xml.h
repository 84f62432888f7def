// Pure parsers for libvirt domain XML and Nova <nova:instance> metadata.
//
// No libvirt calls: everything here takes a string and returns model data, so
// it is unit-testable and safe to feed hostile input. The input comes from
// libvirtd, but the metadata inside it is written by whoever can call
// virDomainSetMetadata, so size, element count, DTDs and entities are all
// treated as untrusted (see parse limits below).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/model/instance.h"
#include "base/util/result.h"

namespace hvtel::libvirt {

inline constexpr std::string_view kNovaNs11 = "http://openstack.org/xmlns/libvirt/nova/1.1";
inline constexpr std::string_view kNovaNs10 = "http://openstack.org/xmlns/libvirt/nova/1.0";

// Documents larger than this are rejected before libxml2 sees them. A Nova
// domain XML is a few KiB; 4 MiB leaves room for odd but legitimate guests.
inline constexpr size_t kMaxXmlBytes = 4u << 20;
// Element nodes per document; bounds the work of every walk below.
inline constexpr size_t kMaxXmlElements = 50000;
// Per-list caps (vCPU pins, interfaces, extra specs, ports).
inline constexpr size_t kMaxListEntries = 4096;

// Everything hvtel takes from one domain XML.
struct DomainXml {
  std::string type;        // <domain type=...>: kvm, qemu, test
  int id = -1;             // <domain id=...>, -1 when inactive
  std::string name;
  std::string uuid;        // lower-case
  int vcpus_max = 0;       // <vcpu>N</vcpu>
  int vcpus_current = 0;   // <vcpu current=...>, else vcpus_max
  int iothreads = 0;       // <iothreads>N</iothreads>
  model::PinIntent intent;
  std::vector<model::Interface> interfaces;
  std::optional<model::NovaInfo> nova;
  // Set when a <metadata> child looked like Nova's but could not be used
  // (wrong namespace, bad structure). The domain itself still parsed.
  std::optional<Error> nova_error;
};

struct ParseOptions {
  // Host cpu_dedicated_set, when known; used to infer the CPU policy of
  // guests whose flavor extra specs are not in the metadata (Nova < 32).
  std::optional<std::vector<int>> dedicated_set;
};

// Parses a full domain XML (virDomainGetXMLDesc). Fails on malformed or
// hostile input; a missing or unusable Nova subtree is not a failure.
Result<DomainXml> parse_domain_xml(std::string_view xml, const ParseOptions& opts = {});

// Parses a <nova:instance> subtree on its own, as returned by
// virDomainGetMetadata (which strips the namespace). `requested_ns` is the
// namespace URI the caller asked for; it decides ns_version when the document
// carries no namespace. A namespace other than Nova 1.0/1.1 is an error.
Result<model::NovaInfo> parse_nova_metadata(std::string_view xml,
                                            std::string_view requested_ns = {});

// The CPU policy: hw:cpu_policy from the extra specs when present and valid;
// otherwise inferred from the pins (see domain_xml.cpp).
model::CpuPolicy resolve_policy(const model::PinIntent& intent, int vcpus,
                                const std::optional<model::NovaInfo>& nova,
                                const std::optional<std::vector<int>>& dedicated_set);

// libvirt cpuset syntax: parse_cpu_list plus "^N" exclusions ("0-7,^3").
std::optional<std::vector<int>> parse_libvirt_cpuset(std::string_view s);

const char* policy_name(model::CpuPolicy p);

// Process-wide count of documents rejected by the parsers above.
uint64_t xml_parse_errors();

}  // namespace hvtel::libvirt
