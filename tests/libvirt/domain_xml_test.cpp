#include "libvirt/domain_xml.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace hvtel::libvirt {
namespace {

using model::CpuPolicy;

std::string testdata(const std::string& name) {
  std::ifstream f(std::string(HVTEL_LIBVIRT_TESTDATA) + "/" + name);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_FALSE(ss.str().empty()) << name;
  return ss.str();
}

// A minimal domain with the given extra XML inside <domain>.
std::string domain_with(const std::string& inner, const std::string& vcpu = "<vcpu>2</vcpu>") {
  return "<domain type='kvm'><name>instance-00000001</name>"
         "<uuid>11111111-2222-4333-8444-555555555555</uuid>" +
         vcpu + inner + "</domain>";
}

std::string nova11(const std::string& inner) {
  return "<metadata><nova:instance xmlns:nova='http://openstack.org/xmlns/libvirt/nova/1.1'>" +
         inner + "</nova:instance></metadata>";
}

TEST(DomainXml, Nova11FullReferenceSample) {
  auto d = parse_domain_xml(testdata("nova_1_1_full.xml"));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->type, "kvm");
  EXPECT_EQ(d->id, 57);
  EXPECT_EQ(d->name, "instance-0001c3f2");
  EXPECT_EQ(d->uuid, "3b9a7c1e-5d2f-4e8a-9c61-0f7d2a4b8e10");
  EXPECT_EQ(d->vcpus_max, 4);
  EXPECT_EQ(d->vcpus_current, 4);
  EXPECT_EQ(d->iothreads, 1);

  const auto& in = d->intent;
  EXPECT_EQ(in.vcpu_pins, (std::map<int, std::vector<int>>{{0, {6}}, {1, {30}}, {2, {7}}, {3, {31}}}));
  EXPECT_TRUE(in.vcpu_cpuset.empty());
  EXPECT_EQ(in.emulator_pin, (std::vector<int>{1, 2, 3, 25, 26, 27}));
  EXPECT_EQ(in.iothread_pins, (std::map<int, std::vector<int>>{{1, {1, 2, 3, 25, 26, 27}}}));
  EXPECT_EQ(in.numa_memnodes, (std::map<int, std::vector<int>>{{0, {0}}}));
  EXPECT_EQ(in.numa_nodeset, (std::vector<int>{0}));
  EXPECT_EQ(in.vcpu_cells, (std::map<int, int>{{0, 0}, {1, 0}, {2, 0}, {3, 0}}));
  EXPECT_EQ(in.policy, CpuPolicy::kDedicated);

  ASSERT_EQ(d->interfaces.size(), 1u);
  EXPECT_EQ(d->interfaces[0].target_dev, "tape4d3c2b1-a0");
  EXPECT_EQ(d->interfaces[0].mac, "fa:16:3e:5c:21:9a");
  EXPECT_EQ(d->interfaces[0].interface_id, "");

  ASSERT_TRUE(d->nova.has_value());
  EXPECT_FALSE(d->nova_error.has_value());
  const auto& n = *d->nova;
  EXPECT_EQ(n.ns_version, "1.1");
  EXPECT_EQ(n.display_name, "billing-db-02");
  EXPECT_EQ(n.creation_time, "2026-04-11 03:22:09");
  EXPECT_EQ(n.flavor_name, "c4.m16.pinned");
  EXPECT_EQ(n.flavor_id, "c4-m16-pinned");
  EXPECT_EQ(n.flavor_memory_mib, 16384u);
  EXPECT_EQ(n.flavor_vcpus, 4);
  EXPECT_EQ(n.extra_specs, (std::map<std::string, std::string>{
                               {"hw:cpu_policy", "dedicated"},
                               {"hw:cpu_thread_policy", "require"},
                               {"hw:emulator_threads_policy", "share"}}));
  EXPECT_EQ(n.user_id, "5f0e9a8d7c6b4a3f9e8d7c6b5a4f3e2d");
  EXPECT_EQ(n.user_name, "svc-billing");
  EXPECT_EQ(n.project_id, "0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5");
  EXPECT_EQ(n.project_name, "billing-prod");
  EXPECT_EQ(n.port_ids, (std::vector<std::string>{"e4d3c2b1-a0f9-48e7-b6d5-c4b3a2918070"}));
}

TEST(DomainXml, Nova10PreWallabyUnpinnedWithOvsPorts) {
  auto d = parse_domain_xml(testdata("nova_1_0_prewallaby.xml"));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->uuid, "9f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f");  // normalised to lower case
  ASSERT_TRUE(d->nova.has_value());
  const auto& n = *d->nova;
  EXPECT_EQ(n.ns_version, "1.0");
  EXPECT_EQ(n.display_name, "legacy-web-01");
  EXPECT_EQ(n.flavor_name, "m1.small");
  EXPECT_EQ(n.flavor_id, "");
  EXPECT_EQ(n.flavor_memory_mib, 2048u);
  EXPECT_EQ(n.flavor_vcpus, 2);
  EXPECT_TRUE(n.extra_specs.empty());
  EXPECT_EQ(n.user_name, "N/A");
  EXPECT_EQ(n.project_name, "web");
  EXPECT_EQ(n.project_id, "aaaaaaaabbbbccccddddeeeeeeeeeeee");
  EXPECT_TRUE(n.port_ids.empty());

  EXPECT_TRUE(d->intent.vcpu_pins.empty());
  EXPECT_EQ(d->intent.vcpu_cpuset, (std::vector<int>{1, 2, 3, 25, 26, 27}));
  EXPECT_EQ(d->intent.emulator_pin, (std::vector<int>{1, 2, 3, 25, 26, 27}));
  EXPECT_EQ(d->intent.policy, CpuPolicy::kShared);

  ASSERT_EQ(d->interfaces.size(), 2u);
  EXPECT_EQ(d->interfaces[0].target_dev, "tapc0ffee00-11");
  EXPECT_EQ(d->interfaces[0].mac, "fa:16:3e:01:02:03");
  EXPECT_EQ(d->interfaces[0].interface_id, "c0ffee00-1111-4222-8333-444455556666");
  EXPECT_EQ(d->interfaces[1].target_dev, "tapdeadbeef-22");
  EXPECT_EQ(d->interfaces[1].interface_id, "");
}

TEST(DomainXml, PlainLibvirtHasNoNova) {
  auto d = parse_domain_xml(testdata("plain_libvirt.xml"));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->type, "qemu");
  EXPECT_EQ(d->id, -1);
  EXPECT_EQ(d->name, "plain-vm");
  EXPECT_FALSE(d->nova.has_value());
  EXPECT_FALSE(d->nova_error.has_value());
  EXPECT_EQ(d->vcpus_max, 4);
  EXPECT_EQ(d->vcpus_current, 2);
  EXPECT_TRUE(d->intent.vcpu_pins.empty());
  EXPECT_TRUE(d->interfaces.empty());
  EXPECT_EQ(d->intent.policy, CpuPolicy::kShared);
}

TEST(DomainXml, Prefers11When10IsAlsoPresent) {
  const std::string xml = domain_with(
      "<metadata>"
      "<nova:instance xmlns:nova='http://openstack.org/xmlns/libvirt/nova/1.0'><nova:name>old</nova:name></nova:instance>"
      "<n2:instance xmlns:n2='http://openstack.org/xmlns/libvirt/nova/1.1'><n2:name>new</n2:name></n2:instance>"
      "</metadata>");
  auto d = parse_domain_xml(xml);
  ASSERT_TRUE(d) << d.error().message;
  ASSERT_TRUE(d->nova);
  EXPECT_EQ(d->nova->ns_version, "1.1");
  EXPECT_EQ(d->nova->display_name, "new");
}

TEST(NovaMetadata, GetMetadataOutputUsesRequestedNamespace) {
  // virDomainGetMetadata strips the namespace (verified against libvirt 9.0.0).
  const std::string md =
      "<instance>\n  <name>web-1</name>\n  <flavor name=\"m1\"><vcpus>2</vcpus></flavor>\n"
      "  <owner><user uuid=\"u1\">alice</user><project uuid=\"p1\">proj</project></owner>\n"
      "</instance>\n";
  auto n = parse_nova_metadata(md, kNovaNs10);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(n->ns_version, "1.0");
  EXPECT_EQ(n->display_name, "web-1");
  EXPECT_EQ(n->flavor_name, "m1");
  EXPECT_EQ(n->flavor_vcpus, 2);
  EXPECT_EQ(n->user_name, "alice");
  EXPECT_EQ(n->project_id, "p1");

  auto n11 = parse_nova_metadata(md, kNovaNs11);
  ASSERT_TRUE(n11);
  EXPECT_EQ(n11->ns_version, "1.1");
}

TEST(NovaMetadata, WrongNamespaceIsAnError) {
  const uint64_t before = xml_parse_errors();
  auto n = parse_nova_metadata(
      "<x:instance xmlns:x='http://openstack.org/xmlns/libvirt/nova/1.2'><x:name>a</x:name></x:instance>");
  ASSERT_FALSE(n);
  EXPECT_NE(n.error().message.find("nova/1.2"), std::string::npos) << n.error().message;
  EXPECT_EQ(xml_parse_errors(), before + 1);

  auto none = parse_nova_metadata("<instance><name>a</name></instance>");  // no ns, none requested
  ASSERT_FALSE(none);
  auto root = parse_nova_metadata("<flavor/>", kNovaNs11);
  ASSERT_FALSE(root);
  EXPECT_NE(root.error().message.find("not <instance>"), std::string::npos);
}

TEST(DomainXml, WrongNamespaceInDomainKeepsDomainButReportsMetadata) {
  auto d = parse_domain_xml(domain_with(
      "<metadata><nova:instance xmlns:nova='http://example.com/not-nova'>"
      "<nova:name>evil</nova:name></nova:instance></metadata>"));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_FALSE(d->nova.has_value());
  ASSERT_TRUE(d->nova_error.has_value());
  EXPECT_NE(d->nova_error->message.find("http://example.com/not-nova"), std::string::npos);
  EXPECT_EQ(d->name, "instance-00000001");
}

TEST(DomainXml, QuotesNewlinesAndUnicodeInNames) {
  // XML-escaped quote, ampersand, apostrophe, a literal newline, tabs and
  // non-ASCII: all must come back byte-exact.
  auto d = parse_domain_xml(domain_with(nova11(
      "<nova:name>a &quot;quoted&quot; name\nwith newline &amp; back\\slash\t\xc3\xbcnic\xc3\xb8"
      "de \xe5\x90\x8d\xe5\x89\x8d \xf0\x9f\x9a\x80</nova:name>"
      "<nova:flavor name='it&apos;s &lt;odd&gt;'/>"
      "<nova:owner><nova:user uuid='u'>O&apos;Brien</nova:user>"
      "<nova:project uuid='p'><![CDATA[proj \"x\" <y>]]></nova:project></nova:owner>")));
  ASSERT_TRUE(d) << d.error().message;
  ASSERT_TRUE(d->nova);
  EXPECT_EQ(d->nova->display_name,
            "a \"quoted\" name\nwith newline & back\\slash\t\xc3\xbcnic\xc3\xb8"
            "de \xe5\x90\x8d\xe5\x89\x8d \xf0\x9f\x9a\x80");
  EXPECT_EQ(d->nova->flavor_name, "it's <odd>");
  EXPECT_EQ(d->nova->user_name, "O'Brien");
  EXPECT_EQ(d->nova->project_name, "proj \"x\" <y>");
}

TEST(DomainXmlHostile, FiveMegabyteDocumentIsRejectedBeforeParsing) {
  const uint64_t before = xml_parse_errors();
  std::string big = domain_with(nova11("<nova:name>" + std::string(5u << 20, 'x') + "</nova:name>"));
  auto d = parse_domain_xml(big);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("limit 4194304"), std::string::npos) << d.error().message;
  EXPECT_EQ(xml_parse_errors(), before + 1);
}

TEST(DomainXmlHostile, TooManyElements) {
  std::string many;
  for (int i = 0; i < 60000; ++i) many += "<x/>";
  auto d = parse_domain_xml(domain_with("<metadata><junk>" + many + "</junk></metadata>"));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("more than 50000 elements"), std::string::npos) << d.error().message;
}

TEST(DomainXmlHostile, DeepNestingIsMalformedNotACrash) {
  std::string open, close;
  for (int i = 0; i < 20000; ++i) {
    open += "<a>";
    close += "</a>";
  }
  auto d = parse_domain_xml(domain_with("<metadata>" + open + close + "</metadata>"));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("malformed XML"), std::string::npos) << d.error().message;
}

TEST(DomainXmlHostile, BillionLaughs) {
  std::string doc = "<?xml version='1.0'?>\n<!DOCTYPE domain [\n <!ENTITY lol 'lol'>\n";
  doc += " <!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>\n";
  for (int i = 2; i <= 9; ++i) {
    doc += " <!ENTITY lol" + std::to_string(i) + " '";
    for (int j = 0; j < 10; ++j) doc += "&lol" + std::to_string(i - 1) + ";";
    doc += "'>\n";
  }
  doc += "]>\n<domain><name>&lol9;</name><uuid>u</uuid></domain>";
  const uint64_t before = xml_parse_errors();
  auto d = parse_domain_xml(doc);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("DTD"), std::string::npos) << d.error().message;
  EXPECT_EQ(xml_parse_errors(), before + 1);
}

TEST(DomainXmlHostile, ExternalEntityAndUndeclaredEntity) {
  auto xxe = parse_domain_xml(
      "<!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/shadow'>]><domain><name>&x;</name></domain>");
  ASSERT_FALSE(xxe);
  EXPECT_NE(xxe.error().message.find("DTD"), std::string::npos);
  // Without a DTD an undeclared entity is a well-formedness error.
  auto undeclared = parse_domain_xml(domain_with(nova11("<nova:name>&x;</nova:name>")));
  ASSERT_FALSE(undeclared);
  EXPECT_NE(undeclared.error().message.find("malformed XML"), std::string::npos)
      << undeclared.error().message;
}

TEST(DomainXmlHostile, MalformedAndOddInputs) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty document"},
      {"<domain><name>x</name>", "malformed XML"},
      {"<domain><name>a\x01</name></domain>", "malformed XML"},  // control char
      {"not xml at all", "malformed XML"},
      {std::string("<domain>\0</domain>", 18), "malformed XML"},
      {"<notdomain/>", "root element is not <domain>"},
      {"<domain><uuid>u</uuid></domain>", "without <name>"},
      {"<domain><name>n</name></domain>", "without <uuid>"},
      {domain_with("", "<vcpu>lots</vcpu>"), "bad <vcpu> count"},
      {domain_with("", "<vcpu>999999</vcpu>"), "bad <vcpu> count"},
      {domain_with("", "<vcpu current='3'>2</vcpu>"), "bad <vcpu current>"},
      {domain_with("", "<vcpu cpuset='1-x'>2</vcpu>"), "bad <vcpu cpuset>"},
      {domain_with("<cputune><vcpupin vcpu='0' cpuset='3-1'/></cputune>"), "bad cpuset '3-1'"},
      {domain_with("<cputune><vcpupin vcpu='-1' cpuset='1'/></cputune>"), "bad vcpu attribute"},
      {domain_with("<cputune><vcpupin vcpu='0'/></cputune>"), "vcpupin without cpuset"},
      {domain_with("<cputune><iothreadpin iothread='x' cpuset='1'/></cputune>"), "bad iothread attribute"},
      {domain_with("<numatune><memory mode='strict' nodeset='0-'/></numatune>"),
       "numatune: memory has a bad nodeset '0-'"},
      {domain_with("<numatune><memory mode='strict' nodeset=''/></numatune>"),
       "numatune: memory has a bad nodeset ''"},
      {domain_with("<numatune><memnode cellid='x' mode='strict' nodeset='0'/></numatune>"),
       "numatune: memnode with a bad cellid 'x'"},
      {domain_with("<numatune><memnode mode='strict' nodeset='0'/></numatune>"),
       "numatune: memnode with a bad cellid ''"},
      {domain_with("<numatune><memnode cellid='0' mode='strict'/></numatune>"),
       "numatune: memnode 0 without nodeset"},
      {domain_with("<numatune><memnode cellid='0' nodeset='0'/><memnode cellid='0' nodeset='1'/></numatune>"),
       "numatune: memnode 0 given twice"},
      {domain_with("<cpu><numa><cell id='0' cpus='0-1' memory='1024'/><cell id='0' cpus='2'/></numa></cpu>"),
       "cpu numa: cell 0 given twice"},
      {domain_with("<cpu><numa><cell cpus='0'/></numa></cpu>"), "cpu numa: cell with a bad id ''"},
      {domain_with("<cpu><numa><cell id='0' cpus='1-a'/></numa></cpu>"),
       "cpu numa: cell 0 has bad cpus '1-a'"},
      {domain_with("<cpu><numa><cell id='0' cpus='0-1'/><cell id='1' cpus='1'/></numa></cpu>"),
       "cpu numa: vCPU 1 of cell 1 is out of range or in two cells"},
      {domain_with("<cpu><numa><cell id='0' cpus='0,9999'/></numa></cpu>"),
       "cpu numa: vCPU 9999 of cell 0 is out of range or in two cells"},
  };
  for (const auto& [xml, want] : cases) {
    const uint64_t before = xml_parse_errors();
    auto d = parse_domain_xml(xml);
    ASSERT_FALSE(d) << "accepted: " << xml;
    EXPECT_NE(d.error().message.find(want), std::string::npos)
        << "input " << xml << " gave: " << d.error().message;
    EXPECT_EQ(xml_parse_errors(), before + 1) << xml;
  }
}

TEST(Cputune, EmulatorIsolateWithVcpusched) {
  auto d = parse_domain_xml(domain_with(
      "<cputune><vcpupin vcpu='0' cpuset='4'/><vcpupin vcpu='1' cpuset='28'/>"
      "<emulatorpin cpuset='8'/>"
      "<vcpusched vcpus='1' scheduler='fifo' priority='1'/>"
      "<vcpusched vcpus='1-3' scheduler='fifo' priority='1'/></cputune>"));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->intent.vcpu_pins, (std::map<int, std::vector<int>>{{0, {4}}, {1, {28}}}));
  EXPECT_EQ(d->intent.emulator_pin, (std::vector<int>{8}));
  EXPECT_EQ(d->intent.policy, CpuPolicy::kDedicated);
}

TEST(Cputune, IothreadpinWithoutIothreadAttributeF15) {
  auto d = parse_domain_xml(domain_with(
      "<iothreads>1</iothreads><cputune><emulatorpin cpuset='1-3'/>"
      "<iothreadpin cpuset='1-3'/></cputune>"));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->intent.iothread_pins, (std::map<int, std::vector<int>>{{1, {1, 2, 3}}}));

  // An explicit pin for IOThread 1 wins over the attribute-less one.
  auto both = parse_domain_xml(domain_with(
      "<cputune><iothreadpin iothread='1' cpuset='5'/><iothreadpin cpuset='1-3'/>"
      "<iothreadpin iothread='2' cpuset='6'/></cputune>"));
  ASSERT_TRUE(both) << both.error().message;
  EXPECT_EQ(both->intent.iothread_pins, (std::map<int, std::vector<int>>{{1, {5}}, {2, {6}}}));
}

TEST(Cputune, UnpinnedVcpuCpusetWithExclusion) {
  auto d = parse_domain_xml(domain_with("", "<vcpu placement='static' cpuset='0-7,^3,^5-6'>2</vcpu>"));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->intent.vcpu_cpuset, (std::vector<int>{0, 1, 2, 4, 7}));
  EXPECT_TRUE(d->intent.vcpu_pins.empty());
  EXPECT_EQ(d->intent.policy, CpuPolicy::kShared);
}

TEST(Cputune, NumaGuestSharedPinsPerCell) {
  auto d = parse_domain_xml(domain_with(
      "<cputune><vcpupin vcpu='0' cpuset='1-3'/><vcpupin vcpu='1' cpuset='25-27'/>"
      "<emulatorpin cpuset='1-3,25-27'/></cputune>"
      "<numatune><memnode cellid='0' mode='strict' nodeset='0'/>"
      "<memnode cellid='1' mode='strict' nodeset='1'/></numatune>"));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->intent.numa_memnodes, (std::map<int, std::vector<int>>{{0, {0}}, {1, {1}}}));
  EXPECT_EQ(d->intent.policy, CpuPolicy::kShared);
}

// Nova's shape for a two-cell NUMA-topology flavor: the guest-wide <memory> and one memnode per cell,
// with <cpu><numa> saying which vCPUs are in which cell.
TEST(Numatune, MemoryMemnodesAndGuestCells) {
  auto d = parse_domain_xml(domain_with(
      "<numatune><memory mode='strict' nodeset='0-1'/>"
      "<memnode cellid='0' mode='strict' nodeset='0'/><memnode cellid='1' mode='strict' nodeset='1'/>"
      "</numatune>"
      "<cpu mode='host-model'><topology sockets='2' cores='2' threads='1'/><numa>"
      "<cell id='0' cpus='0-1' memory='1048576' unit='KiB'/>"
      "<cell id='1' cpus='2-3' memory='1048576' unit='KiB'/></numa></cpu>",
      "<vcpu>4</vcpu>"));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->intent.numa_nodeset, (std::vector<int>{0, 1}));
  EXPECT_EQ(d->intent.numa_memnodes, (std::map<int, std::vector<int>>{{0, {0}}, {1, {1}}}));
  EXPECT_EQ(d->intent.vcpu_cells, (std::map<int, int>{{0, 0}, {1, 0}, {2, 1}, {3, 1}}));
}

TEST(Numatune, AutoPlacementHasNothingToCheck) {
  auto d = parse_domain_xml(domain_with("<numatune><memory mode='strict' placement='auto'/></numatune>"));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_TRUE(d->intent.numa_nodeset.empty());
  EXPECT_TRUE(d->intent.numa_memnodes.empty());
  EXPECT_TRUE(d->intent.vcpu_cells.empty());
}

TEST(Policy, InferredWithAndWithoutDedicatedSet) {
  model::PinIntent pins;
  pins.vcpu_pins = {{0, {6}}, {1, {30}}};
  const std::vector<int> dedicated = {4, 5, 6, 7, 28, 29, 30, 31};
  EXPECT_EQ(resolve_policy(pins, 2, std::nullopt, std::nullopt), CpuPolicy::kDedicated);
  EXPECT_EQ(resolve_policy(pins, 2, std::nullopt, dedicated), CpuPolicy::kDedicated);
  // vCPU 1 pinned outside the dedicated set: mixed, only knowable with the set.
  pins.vcpu_pins[1] = {2};
  EXPECT_EQ(resolve_policy(pins, 2, std::nullopt, dedicated), CpuPolicy::kMixed);
  EXPECT_EQ(resolve_policy(pins, 2, std::nullopt, std::nullopt), CpuPolicy::kDedicated);
  // Single pins, none inside the dedicated set: shared.
  pins.vcpu_pins = {{0, {1}}, {1, {2}}};
  EXPECT_EQ(resolve_policy(pins, 2, std::nullopt, dedicated), CpuPolicy::kShared);
  // A vCPU without a pin makes the guest not dedicated.
  pins.vcpu_pins = {{0, {6}}};
  EXPECT_EQ(resolve_policy(pins, 2, std::nullopt, std::nullopt), CpuPolicy::kShared);
  EXPECT_EQ(resolve_policy(pins, 0, std::nullopt, std::nullopt), CpuPolicy::kUnknown);
}

TEST(Policy, ExtraSpecWinsOverInference) {
  model::PinIntent pins;
  pins.vcpu_pins = {{0, {6}}, {1, {30}}};
  model::NovaInfo nova;
  nova.extra_specs["hw:cpu_policy"] = "shared";
  EXPECT_EQ(resolve_policy(pins, 2, nova, std::nullopt), CpuPolicy::kShared);
  nova.extra_specs["hw:cpu_policy"] = "mixed";
  EXPECT_EQ(resolve_policy(pins, 2, nova, std::nullopt), CpuPolicy::kMixed);
  nova.extra_specs["hw:cpu_policy"] = "bogus";  // unknown value: infer
  EXPECT_EQ(resolve_policy(pins, 2, nova, std::nullopt), CpuPolicy::kDedicated);
  model::PinIntent none;
  nova.extra_specs["hw:cpu_policy"] = "dedicated";
  EXPECT_EQ(resolve_policy(none, 2, nova, std::nullopt), CpuPolicy::kDedicated);
}

TEST(Policy, DedicatedSetFromParseOptions) {
  ParseOptions po;
  po.dedicated_set = std::vector<int>{4, 5};
  auto d = parse_domain_xml(
      domain_with("<cputune><vcpupin vcpu='0' cpuset='4'/><vcpupin vcpu='1' cpuset='1'/></cputune>"), po);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->intent.policy, CpuPolicy::kMixed);
  EXPECT_STREQ(policy_name(d->intent.policy), "mixed");
}

TEST(Cpuset, LibvirtSyntax) {
  EXPECT_EQ(parse_libvirt_cpuset("0-3,^1"), (std::vector<int>{0, 2, 3}));
  EXPECT_EQ(parse_libvirt_cpuset(" 5 "), (std::vector<int>{5}));
  EXPECT_EQ(parse_libvirt_cpuset(""), (std::vector<int>{}));
  EXPECT_FALSE(parse_libvirt_cpuset("^"));
  EXPECT_FALSE(parse_libvirt_cpuset("1,,x"));
}

}  // namespace
}  // namespace hvtel::libvirt
