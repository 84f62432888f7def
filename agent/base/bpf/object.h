// BpfObject: RAII ownership of one libbpf object and its links, and the
// attach-point fallback that picks one variant per hook at load time.
//
// libbpf headers appear only in .cpp files (the loader's, and each feature's
// probes for their skeletons); headers see maps through small interfaces such
// as vcpu_maps.h.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/bpf/kernel.h"
#include "base/util/result.h"

struct bpf_object;
struct bpf_map;
struct bpf_program;
struct bpf_link;

namespace hvtel::bpf {

enum class AttachKind { kTpBtf, kRawTp, kTracepoint, kFentry, kKprobe };
const char* attach_name(AttachKind k);  // "tp_btf", "raw_tp", "tracepoint", "fentry", "kprobe"

struct Variant {
  AttachKind kind;
  std::string program;  // program (function) name in the object
};

// One thing to observe, with its attach variants in order of preference.
struct Hook {
  std::string probe;      // public name, the `probe` label: "kvm_exit"
  std::string tp_system;  // tracepoint system ("kvm"); empty for functions
  std::string target;     // tracepoint or kernel function name
  std::vector<Variant> variants;
};

struct Rejected {
  AttachKind kind;
  std::string reason;
  bool prerequisite = false;  // rejected before loading: tracepoint/BTF/symbol absent
};

struct ProbeStatus {
  std::string probe;
  std::string object;
  std::optional<AttachKind> attach;  // the variant in use
  bool attached = false;
  std::string reason;                // why nothing is attached
  std::vector<Rejected> rejected;    // variants tried before, and why not
  std::vector<std::string> programs; // all program names of this hook (for bpf_stats)
};

class BpfObject {
 public:
  static Result<BpfObject> open(const std::string& name, const void* elf, size_t size);
  BpfObject(BpfObject&& o) noexcept;
  BpfObject& operator=(BpfObject&& o) noexcept;
  BpfObject(const BpfObject&) = delete;
  BpfObject& operator=(const BpfObject&) = delete;
  ~BpfObject();

  const std::string& name() const { return name_; }
  bpf_object* get() const { return obj_; }
  Result<bpf_map*> map(const std::string& name) const;
  Result<bpf_program*> program(const std::string& name) const;
  // Loads only the programs whose autoload is set.
  Status load();
  Status attach(bpf_program* prog);
  // Destroys the program's links; false when it had none.
  bool detach(bpf_program* prog);
  bool attached(const bpf_program* prog) const;

 private:
  BpfObject(std::string name, bpf_object* obj) : name_(std::move(name)), obj_(obj) {}
  void reset();

  std::string name_;
  bpf_object* obj_ = nullptr;
  std::vector<std::pair<const bpf_program*, bpf_link*>> links_;
};

struct ObjectSpec {
  std::string name;
  const void* elf = nullptr;
  size_t size = 0;
  std::vector<Hook> hooks;
  // Runs after open, before load: map sizes, shared map fds, rodata.
  std::function<Status(BpfObject&)> configure;
};

struct LoadedObject {
  BpfObject object;
  std::vector<ProbeStatus> probes;
};

// Opens, configures, picks one variant per hook (first that passes the
// prerequisite check and loads), loads and attaches. A hook with no usable
// variant is reported, not fatal; only a failure to load at all is an error.
Result<LoadedObject> load_object(const ObjectSpec& spec, const KernelBtf& btf);

// Route libbpf's messages to our log (debug level) and keep the last lines
// for error context. Call once at startup.
void install_libbpf_logging();
// The last libbpf warning lines (verifier messages), joined with " | ".
std::string last_libbpf_error();

}  // namespace hvtel::bpf
