#include "base/bpf/object.h"

#include <algorithm>

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdarg>
#include <deque>
#include <mutex>

#include "base/util/caps.h"
#include "base/util/log.h"
#include "base/util/strings.h"

namespace hvtel::bpf {
namespace {

std::mutex g_log_mu;
std::deque<std::string> g_log_tail;  // last libbpf warnings, for error context

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  // Verifier logs arrive as one long message: format it whole and keep its
  // last lines, where the verifier says what it rejected.
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return 0;
  std::string text(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(text.data(), text.size(), fmt, args);
  text.resize(static_cast<size_t>(n));
  for (const auto& raw : split(text, '\n')) {
    std::string line(trim(raw));
    if (line.empty()) continue;
    if (level != LIBBPF_DEBUG) {
      std::lock_guard lock(g_log_mu);
      g_log_tail.push_back(line);
      while (g_log_tail.size() > 8) g_log_tail.pop_front();
    }
    log::debug("libbpf", "{}", line);
  }
  return 0;
}

void clear_tail() {
  std::lock_guard lock(g_log_mu);
  g_log_tail.clear();
}

// Cheap checks before a trial load, so status can say *why* a variant is out.
std::optional<std::string> precheck(const Hook& h, AttachKind k, const KernelBtf& btf) {
  switch (k) {
    case AttachKind::kTpBtf:
      if (!btf.vmlinux_present()) return "no kernel BTF (/sys/kernel/btf/vmlinux)";
      if (!btf.has_type("btf_trace_" + h.target, BTF_KIND_TYPEDEF))
        return "tracepoint " + h.tp_system + ":" + h.target + " not in kernel BTF";
      return std::nullopt;
    case AttachKind::kRawTp:
      if (tracepoint_exists(h.tp_system, h.target) ||
          btf.has_type("btf_trace_" + h.target, BTF_KIND_TYPEDEF))
        return std::nullopt;
      return "tracepoint " + h.tp_system + ":" + h.target + " missing";
    case AttachKind::kTracepoint:
      if (!tracefs_root()) {
        // As a non-root user tracefs is there but closed: say so, not "not mounted".
        struct stat st;
        if (::stat("/sys/kernel/tracing/events", &st) != 0 && errno == EACCES)
          return "tracefs /sys/kernel/tracing: permission denied" +
                 needs_capability(EACCES, "CAP_DAC_READ_SEARCH, or root");
        return "tracefs not mounted";
      }
      if (!tracepoint_exists(h.tp_system, h.target))
        return "tracepoint " + h.tp_system + ":" + h.target + " missing";
      return std::nullopt;
    case AttachKind::kFentry:
      if (!btf.has_type(h.target, BTF_KIND_FUNC)) return "function " + h.target + " not in BTF";
      return std::nullopt;
    case AttachKind::kKprobe:
      if (!kallsyms_has(h.target)) return "function " + h.target + " not in kallsyms";
      return std::nullopt;
  }
  return "unknown attach kind";
}

// Opens and configures a fresh object with exactly `enabled` programs autoloaded.
Result<BpfObject> open_with(const ObjectSpec& spec, const std::vector<std::string>& enabled) {
  auto obj = BpfObject::open(spec.name, spec.elf, spec.size);
  if (!obj) return fail(obj.error());
  bpf_program* p;
  bpf_object__for_each_program(p, obj->get()) {
    bool on = false;
    for (const auto& e : enabled) on = on || e == bpf_program__name(p);
    bpf_program__set_autoload(p, on);
  }
  if (spec.configure) {
    if (auto st = spec.configure(*obj); !st) return fail(st.error().context("configure " + spec.name));
  }
  return obj;
}

}  // namespace

const char* attach_name(AttachKind k) {
  switch (k) {
    case AttachKind::kTpBtf: return "tp_btf";
    case AttachKind::kRawTp: return "raw_tp";
    case AttachKind::kTracepoint: return "tracepoint";
    case AttachKind::kFentry: return "fentry";
    case AttachKind::kKprobe: return "kprobe";
  }
  return "unknown";
}

void install_libbpf_logging() { libbpf_set_print(libbpf_print); }

std::string last_libbpf_error() {
  std::lock_guard lock(g_log_mu);
  std::string out;
  for (const auto& l : g_log_tail) out += (out.empty() ? "" : " | ") + l;
  return out;
}

Result<BpfObject> BpfObject::open(const std::string& name, const void* elf, size_t size) {
  LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name.c_str());
  bpf_object* obj = bpf_object__open_mem(elf, size, &opts);
  if (!obj) return fail_errno(errno, "open BPF object " + name);
  return BpfObject(name, obj);
}

BpfObject::BpfObject(BpfObject&& o) noexcept
    : name_(std::move(o.name_)), obj_(o.obj_), links_(std::move(o.links_)) {
  o.obj_ = nullptr;
  o.links_.clear();
}

BpfObject& BpfObject::operator=(BpfObject&& o) noexcept {
  if (this != &o) {
    reset();
    name_ = std::move(o.name_);
    obj_ = o.obj_;
    links_ = std::move(o.links_);
    o.obj_ = nullptr;
    o.links_.clear();
  }
  return *this;
}

BpfObject::~BpfObject() { reset(); }

void BpfObject::reset() {
  for (auto& [prog, link] : links_) bpf_link__destroy(link);
  links_.clear();
  if (obj_) bpf_object__close(obj_);
  obj_ = nullptr;
}

Result<bpf_map*> BpfObject::map(const std::string& n) const {
  bpf_map* m = bpf_object__find_map_by_name(obj_, n.c_str());
  if (!m) return fail("BPF object " + name_ + " has no map " + n);
  return m;
}

Result<bpf_program*> BpfObject::program(const std::string& n) const {
  bpf_program* p = bpf_object__find_program_by_name(obj_, n.c_str());
  if (!p) return fail("BPF object " + name_ + " has no program " + n);
  return p;
}

Status BpfObject::load() {
  clear_tail();
  if (int err = bpf_object__load(obj_); err) {
    std::string detail = last_libbpf_error();
    Error e = Error::sys(err, "load " + name_);
    e.message += needs_capability(err, "CAP_BPF and CAP_PERFMON, or root");
    if (!detail.empty()) e.message += " (" + detail + ")";
    return fail(std::move(e));
  }
  return {};
}

Status BpfObject::attach(bpf_program* prog) {
  bpf_link* link = bpf_program__attach(prog);
  if (!link) {
    const int err = errno;
    Error e = Error::sys(err, std::string("attach ") + bpf_program__name(prog));
    e.message += needs_capability(err, "CAP_BPF and CAP_PERFMON, or root");
    return fail(std::move(e));
  }
  links_.emplace_back(prog, link);
  return {};
}

bool BpfObject::detach(bpf_program* prog) {
  bool had = false;
  std::erase_if(links_, [&](const auto& pl) {
    if (pl.first != prog) return false;
    bpf_link__destroy(pl.second);
    had = true;
    return true;
  });
  return had;
}

bool BpfObject::attached(const bpf_program* prog) const {
  return std::ranges::any_of(links_, [&](const auto& pl) { return pl.first == prog; });
}

Result<LoadedObject> load_object(const ObjectSpec& spec, const KernelBtf& btf) {
  std::vector<ProbeStatus> status;
  std::vector<std::vector<Variant>> candidates;  // per hook, variants that passed precheck
  for (const auto& h : spec.hooks) {
    ProbeStatus s{.probe = h.probe, .object = spec.name};
    std::vector<Variant> ok;
    for (const auto& v : h.variants) {
      s.programs.push_back(v.program);
      if (auto why = precheck(h, v.kind, btf)) {
        s.rejected.push_back({v.kind, *why, true});
      } else {
        ok.push_back(v);
      }
    }
    status.push_back(std::move(s));
    candidates.push_back(std::move(ok));
  }

  // Fast path: the first candidate of every hook together, one load.
  std::vector<size_t> pick(spec.hooks.size(), 0);
  auto enabled_set = [&]() {
    std::vector<std::string> names;
    for (size_t i = 0; i < candidates.size(); ++i)
      if (pick[i] < candidates[i].size()) names.push_back(candidates[i][pick[i]].program);
    return names;
  };
  auto obj = open_with(spec, enabled_set());
  if (!obj) return fail(obj.error());
  if (auto st = obj->load(); !st) {
    // Slow path: trial-load each hook's candidates alone to find one that the
    // verifier and the kernel accept, then load the survivors together.
    log::debug("bpf", "{}: combined load failed ({}); probing variants one by one", spec.name,
              st.error().message);
    for (size_t i = 0; i < candidates.size(); ++i) {
      while (pick[i] < candidates[i].size()) {
        const Variant& v = candidates[i][pick[i]];
        auto trial = open_with(spec, {v.program});
        if (!trial) return fail(trial.error());
        auto lst = trial->load();
        if (lst) break;
        status[i].rejected.push_back({v.kind, lst.error().message});
        ++pick[i];
      }
    }
    obj = open_with(spec, enabled_set());
    if (!obj) return fail(obj.error());
    if (auto st2 = obj->load(); !st2) return fail(st2.error());
  }

  for (size_t i = 0; i < candidates.size(); ++i) {
    ProbeStatus& s = status[i];
    if (pick[i] >= candidates[i].size()) {
      s.reason = s.rejected.empty() ? "no variant" : s.rejected.back().reason;
      continue;
    }
    const Variant& v = candidates[i][pick[i]];
    s.attach = v.kind;
    auto prog = obj->program(v.program);
    if (!prog) return fail(prog.error());
    if (auto st = obj->attach(*prog); !st) {
      s.reason = st.error().message;
      s.rejected.push_back({v.kind, s.reason});
      continue;
    }
    s.attached = true;
  }
  return LoadedObject{std::move(*obj), std::move(status)};
}

}  // namespace hvtel::bpf
