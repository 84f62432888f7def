#include "kvm/vmm_timing.h"

#include "base/util/log.h"

namespace hvtel::kvm {

VmmTimingSampler::VmmTimingSampler(MarkerControl& marker, VmmTimingOptions opts)
    : marker_(marker), opts_(opts) {
  if (opts_.window >= opts_.period) opts_.period = {};  // a window as long as the period: always on
}

void VmmTimingSampler::tick(Clock::time_point now) {
  if (!started_) {
    started_ = true;
    windows_ = 1;
    window_end_ = now + opts_.window;
    next_start_ = now + opts_.period;
  }
  if (!sampling()) return;  // attached at load, stays attached
  if (active_ && now >= window_end_) {
    marker_.stop();
    active_ = false;
  }
  if (!active_ && now >= next_start_) {
    // Keep the schedule: a late tick shortens this window, it does not drift.
    window_end_ = next_start_ + opts_.window;
    while (next_start_ <= now) next_start_ += opts_.period;
    if (now >= window_end_) return;  // missed this window entirely
    if (auto st = marker_.start(); !st) {
      if (!broken_) log::warn("kvm", "VMM timing window: {}", st.error().message);
      broken_ = true;
      ++attach_errors_;
      return;
    }
    broken_ = false;
    active_ = true;
    ++windows_;
  }
}

VmmTimingSampler::Clock::time_point VmmTimingSampler::next_deadline() const {
  if (!sampling()) return Clock::time_point::max();
  if (!started_) return Clock::time_point::min();
  return active_ ? window_end_ : next_start_;
}

double VmmTimingSampler::sample_ratio() const {
  if (broken_) return 0;
  if (!sampling()) return 1;
  return std::chrono::duration<double>(opts_.window) / std::chrono::duration<double>(opts_.period);
}

}  // namespace hvtel::kvm
