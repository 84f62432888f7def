// The agent's side of `hvtel trace exits --agent`: the event source "exits",
// which loads the trace_exits BPF object while /events?source=exits is
// followed and unloads it once no follower has asked for `idle`. Between
// followers nothing of it is loaded.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string_view>

#include "discovery/procfs.h"
#include "events/event_hub.h"
#include "kvm/exit_trace.h"

namespace hvtel::app {

class ExitTraceSource : public events::EventSource {
 public:
  // `hub` is the hub this source is added to (it tells whether anyone reads "exits").
  // `lookup` names VMMs the agent knows (Nova names); procfs otherwise.
  ExitTraceSource(const events::EventHub& hub, kvm::ExitTraceConfig cfg, kvm::VmmNamer::Lookup lookup = {},
                  std::chrono::milliseconds idle = std::chrono::seconds(5));
  std::string_view name() const override { return "exits"; }
  events::SourceBatch since(uint64_t cursor, size_t max) override;
  bool attached() const { return tracer_ != nullptr; }

 private:
  void start_tracer();
  void stop_tracer();
  void report(bool closing);

  const events::EventHub& hub_;
  const kvm::ExitTraceConfig cfg_;
  const std::chrono::milliseconds idle_;
  const kvm::VmmNamer::Lookup lookup_;
  discovery::ProcFs proc_;
  // New for each follower session: its per-pid cache must not outlive recycled pids.
  std::unique_ptr<kvm::VmmNamer> names_;
  std::unique_ptr<kvm::ExitTracer> tracer_;
  std::chrono::steady_clock::time_point retry_at_{}, next_report_{};
  kvm::ExitTraceCounts last_;
  int64_t wall_offset_ns_ = 0;
  std::deque<events::AgentEvent> pending_;
  uint64_t missed_ = 0;
  uint64_t cursor_ = 0;
};

}  // namespace hvtel::app
