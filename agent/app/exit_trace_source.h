// The agent's side of `hvtel trace exits|runq|upcalls --agent`: the event sources
// "exits", "runq" and "upcalls", each of which loads its trace object while
// /events?source=<name> is followed and unloads it once no follower has asked
// for `idle`. Between followers nothing of it is loaded.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/bpf/trace.h"
#include "discovery/procfs.h"
#include "events/event_hub.h"
#include "kvm/exit_trace.h"

namespace hvtel::app {

// One follower session's loaded trace object, as the source sees it.
class TraceSession {
 public:
  virtual ~TraceSession() = default;
  virtual const std::string& attach_summary() const = 0;
  // Hands what the ring holds to `emit`, as events of kind "exit"/"runq"/"upcall"
  // (source, time, instance, text, fields); `dropped` is the last drop total.
  virtual Status poll(uint64_t dropped, const std::function<void(events::AgentEvent)>& emit) = 0;
  virtual Result<bpf::TraceCounts> counts() const = 0;
  virtual std::string drop_line(const bpf::TraceCounts& c) const = 0;
  virtual void every_second() {}
};

class TraceSource : public events::EventSource {
 public:
  // A session for one follower: loads and attaches, or says why not. `names` names VMMs.
  using Start = std::function<Result<std::unique_ptr<TraceSession>>(kvm::VmmNamer& names)>;

  // `hub` is the hub this source is added to (it tells whether anyone reads `name`).
  // `lookup` names VMMs the agent knows (Nova names); procfs otherwise.
  TraceSource(const events::EventHub& hub, std::string name, std::string what, bpf::TraceConfig cfg,
              Start start, kvm::VmmNamer::Lookup lookup = {},
              std::chrono::milliseconds idle = std::chrono::seconds(5));
  std::string_view name() const override { return name_; }
  events::SourceBatch since(uint64_t cursor, size_t max) override;
  bool attached() const { return session_ != nullptr; }

 private:
  void start_session();
  void stop_session();
  void report(bool closing);
  events::AgentEvent status_event(std::string kind, std::string text, nlohmann::json fields) const;

  const events::EventHub& hub_;
  const std::string name_, what_;  // "exits", "exits" / "runq", "run-queue waits"
  const bpf::TraceConfig cfg_;
  const Start start_;
  const std::chrono::milliseconds idle_;
  const kvm::VmmNamer::Lookup lookup_;
  discovery::ProcFs proc_;
  // New for each follower session: its per-pid cache must not outlive recycled pids.
  std::unique_ptr<kvm::VmmNamer> names_;
  std::unique_ptr<TraceSession> session_;
  std::chrono::steady_clock::time_point retry_at_{}, next_report_{};
  bpf::TraceCounts last_;
  std::deque<events::AgentEvent> pending_;
  uint64_t missed_ = 0;
  uint64_t cursor_ = 0;
};

// The source "exits": every VMM's exits, the default rate limit; the CLI filters.
std::unique_ptr<TraceSource> exit_trace_source(const events::EventHub& hub, kvm::VmmNamer::Lookup lookup);
// The source "runq": the run-queue waits of every VMM's vCPU threads, the default rate limit.
std::unique_ptr<TraceSource> runq_trace_source(const events::EventHub& hub, kvm::VmmNamer::Lookup lookup);
// The source "upcalls": every upcall of the OVS kernel datapath, instances named by the taps their VMMs hold.
std::unique_ptr<TraceSource> upcall_trace_source(const events::EventHub& hub, kvm::VmmNamer::Lookup lookup);

}  // namespace hvtel::app
