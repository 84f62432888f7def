// VMM-timing sampler.
//
// Where kvm_entry fires (VMX, SVM) the VMM's handling time comes free: the
// first guest entry after an exit to userspace ends it. Where it does not
// (PVM), the re-entry into KVM_RUN is marked by kvm_fpu, which fires twice per
// KVM_RUN: two more tracepoint hits on every exit to the VMM, each with its
// own dispatch cost. The sampler attaches that marker for a window every
// period, so the hvtel_vcpu_vmm_handling_seconds histogram becomes a sample
// while the exit counters stay exact.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "base/util/result.h"

namespace hvtel::kvm {

// The kvm_fpu marker and the kernel's hv_vmm_timing_off switch.
class MarkerControl {
 public:
  virtual ~MarkerControl() = default;
  // Attaches the marker, then turns timing on (exits timestamp again).
  virtual Status start() = 0;
  // Turns timing off, then detaches the marker.
  virtual void stop() = 0;
};

struct VmmTimingOptions {
  std::chrono::milliseconds window{500};
  std::chrono::milliseconds period{10000};  // 0: time every exit (marker always attached)
};

class VmmTimingSampler {
 public:
  using Clock = std::chrono::steady_clock;

  // The marker is attached when this is built (ProbeSet attaches every hook
  // at load): the first window starts at the first tick.
  VmmTimingSampler(MarkerControl& marker, VmmTimingOptions opts);

  // Opens or closes the window due at `now`.
  void tick(Clock::time_point now);
  // When tick() has work next; Clock::time_point::max() when never.
  Clock::time_point next_deadline() const;

  bool sampling() const { return opts_.period.count() > 0; }
  bool active() const { return active_; }
  // Share of exits to the VMM the histogram sees, by design: window/period,
  // 1 when every exit is timed, 0 while the marker cannot be attached.
  double sample_ratio() const;
  uint64_t windows() const { return windows_; }
  uint64_t attach_errors() const { return attach_errors_; }

 private:
  MarkerControl& marker_;
  VmmTimingOptions opts_;
  bool started_ = false;
  bool active_ = true;
  std::atomic<bool> broken_{false};  // the last attach failed (read by scrapes)
  Clock::time_point window_end_{};   // valid while active_
  Clock::time_point next_start_{};   // valid while !active_
  uint64_t windows_ = 0;
  uint64_t attach_errors_ = 0;
};

}  // namespace hvtel::kvm
