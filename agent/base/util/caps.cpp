#include "base/util/caps.h"

#include <sys/capability.h>
#include <sys/prctl.h>

#include <cerrno>
#include <memory>

namespace hvtel {
namespace {

std::string cap_name(int c) {
  std::unique_ptr<char, decltype(&cap_free)> n(cap_to_name(static_cast<cap_value_t>(c)), cap_free);
  return n ? std::string(n.get()) : "cap_" + std::to_string(c);
}

}  // namespace

std::string needs_capability(int err, std::string_view capabilities) {
  if (err < 0) err = -err;
  if (err != EPERM && err != EACCES) return "";
  return " (needs " + std::string(capabilities) + ")";
}

std::vector<int> serve_capabilities(bool module_pending) {
  const bool has_cap_bpf = CAP_BPF < static_cast<int>(cap_max_bits());
  std::vector<int> keep{has_cap_bpf ? CAP_BPF : CAP_SYS_ADMIN, CAP_PERFMON, CAP_SYS_PTRACE,
                        CAP_DAC_READ_SEARCH};
  if (module_pending) keep.insert(keep.end(), {CAP_SYS_ADMIN, CAP_SETPCAP});
  return keep;
}

std::vector<std::string> capability_names(uint64_t mask) {
  std::vector<std::string> out;
  for (int c = 0; c < 64; ++c)
    if (mask & (uint64_t{1} << c)) out.push_back(cap_name(c));
  return out;
}

Result<std::vector<std::string>> drop_capabilities(const std::vector<int>& keep) {
  std::unique_ptr<_cap_struct, decltype(&cap_free)> now(cap_get_proc(), cap_free);
  std::unique_ptr<_cap_struct, decltype(&cap_free)> next(cap_init(), cap_free);
  if (!now || !next) return fail_errno(errno, "read the process capabilities");
  std::vector<std::string> kept;
  for (int c : keep) {
    cap_flag_value_t permitted = CAP_CLEAR;
    const cap_value_t v = c;
    if (c >= static_cast<int>(cap_max_bits()) ||
        cap_get_flag(now.get(), v, CAP_PERMITTED, &permitted) != 0 || permitted != CAP_SET)
      continue;
    cap_set_flag(next.get(), CAP_PERMITTED, 1, &v, CAP_SET);
    cap_set_flag(next.get(), CAP_EFFECTIVE, 1, &v, CAP_SET);
    kept.push_back(cap_name(c));
  }
  // The bounding set first: dropping from it needs CAP_SETPCAP, which goes next.
  for (int c = 0; c < static_cast<int>(cap_max_bits()); ++c) {
    bool wanted = false;
    for (int k : keep) wanted |= k == c;
    if (wanted || !CAP_IS_SUPPORTED(c) || cap_get_bound(static_cast<cap_value_t>(c)) != 1) continue;
    if (cap_drop_bound(static_cast<cap_value_t>(c)) != 0 && errno != EINVAL)
      return fail_errno(errno, "drop " + cap_name(c) + " from the bounding set" +
                                   needs_capability(errno, "CAP_SETPCAP"));
  }
  if (cap_reset_ambient() != 0 && errno != EINVAL) return fail_errno(errno, "clear ambient capabilities");
  if (cap_set_proc(next.get()) != 0) return fail_errno(errno, "drop capabilities");
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail_errno(errno, "set no_new_privs");
  return kept;
}

}  // namespace hvtel
