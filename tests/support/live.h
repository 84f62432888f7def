// Helpers of the live (privileged and KVM-scenario) tests that look at the
// host itself: loaded BPF programs, a CPU hog, tracefs hist triggers, NDJSON output,
// the test's own CPU affinity.
#pragma once

#include <sched.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hvtel::testing {

// Runs this test (and what it starts meanwhile, which inherits the affinity) on
// `cpu` until restore() or destruction, then on the CPUs it had before.
class OnCpu {
 public:
  explicit OnCpu(int cpu);
  ~OnCpu() { restore(); }
  OnCpu(const OnCpu&) = delete;
  OnCpu& operator=(const OnCpu&) = delete;
  bool ok() const { return ok_; }
  void restore();

 private:
  cpu_set_t saved_{};
  bool ok_ = false;
};

// Loaded BPF programs whose name starts with `prefix` (names are cut at 15 chars).
int programs_named(const std::string& prefix);

// The first line of a (sysfs, procfs) file, "" when unreadable.
std::string first_line(const std::string& path);

// Busy-loops on `cpu` for `seconds` in a child; returns the child's CPU time.
double hog(int cpu, double seconds);

// The JSON objects among the lines of `out` (other lines are skipped).
std::vector<nlohmann::json> json_lines(const std::string& out);

// A tracefs hist trigger on one event, counting hits per value of `key`
// among those `filter` passes; removed on destruction.
class HistCount {
 public:
  HistCount(std::string event, std::string key, std::string filter);  // event: "sched/sched_switch"
  ~HistCount();
  HistCount(const HistCount&) = delete;
  HistCount& operator=(const HistCount&) = delete;
  bool ok() const { return ok_; }
  // Hits per key, and the hits tracing_map dropped (must be 0 for exact counts).
  std::map<uint64_t, uint64_t> counts(uint64_t* dropped = nullptr) const;

 private:
  std::string dir_, trigger_;
  bool ok_ = false;
};

}  // namespace hvtel::testing
