// Domain XML as virDomainGetXMLDesc returns it, Nova metadata included: parse_domain_xml (with a
// host dedicated set, so policy inference runs), and the same bytes as a <nova:instance> subtree
// (virDomainGetMetadata) and as a libvirt cpuset.
#include "fuzz_input.h"
#include "libvirt/domain_xml.h"

using namespace hvtel::libvirt;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hvtel::fuzz::Input in(data, size);
  static const ParseOptions opts{.dedicated_set = std::vector<int>{2, 3, 4, 5}};
  if (auto d = parse_domain_xml(in.text(), opts)) {
    (void)resolve_policy(d->intent, d->vcpus_current, d->nova, opts.dedicated_set);
    (void)policy_name(d->intent.policy);
  }
  (void)parse_nova_metadata(in.text(), kNovaNs11);
  (void)parse_libvirt_cpuset(in.text());
  return 0;
}
