// `hvtel status` and `hvtel selftest`: what the kernel offers and, per probe,
// the attach point hvtel would use or why it cannot.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/bpf/kernel.h"
#include "base/bpf/object.h"
#include "discovery/procfs.h"

namespace hvtel::app {

struct Feature {
  bool available = false;
  std::string reason;  // why not
};

struct StatusReport {
  bpf::KernelInfo kernel;
  std::map<std::string, Feature> features;  // tp_btf, raw_tp, tracepoint, fentry, kprobe, ringbuf
  std::vector<bpf::ProbeStatus> probes;
  std::vector<discovery::TcgVmm> tcg_vmms;  // guests with no VM exits to observe
};

StatusReport build_status();
nlohmann::json status_json(const StatusReport& r);
std::string status_text(const StatusReport& r);

int cmd_status(bool json);
int cmd_selftest(bool json);

}  // namespace hvtel::app
