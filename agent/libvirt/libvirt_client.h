// Read-only libvirt client that keeps an immutable snapshot of the running
// domains, refreshed by events and full resyncs, never by scrapes.
//
// Threads (all owned by the client or the shared event loop):
//   - the libvirt event loop: one per process (virEventRegisterDefaultImpl is
//     process-global), refcounted across clients, runs virEventRunDefaultImpl;
//     event and close callbacks only enqueue work;
//   - the worker: connects (exponential backoff, capped), registers events,
//     does full resyncs and per-domain refreshes, publishes snapshots and runs
//     the user callbacks. It is the only thread that makes libvirt RPCs, so
//     the client never has more than one RPC in flight.
// Readers (the /metrics path) call snapshot(): a mutex-guarded shared_ptr
// copy, no libvirt call, no allocation beyond the refcount.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "libvirt/domain_xml.h"
#include "libvirt/thread_map.h"
#include "base/model/instance.h"
#include "base/util/result.h"

namespace hvtel::libvirt {

struct ClientOptions {
  std::string uri = "qemu:///system";
  // Host cpu_dedicated_set, for policy inference on pre-Flamingo guests.
  std::optional<std::vector<int>> dedicated_set;
  // Map vCPU/emulator/IOThread tids (cgroups, else thread names). Off for the
  // test driver, which has no processes.
  bool map_threads = true;
  ThreadMapOptions threads;
  // Read Nova metadata with virDomainGetMetadata (1.1, then 1.0) instead of
  // from the <metadata> already in the domain XML. Costs 1-2 RPCs per domain.
  bool metadata_via_api = false;
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  // Full resync even without events, as a safety net; 0 disables.
  std::chrono::milliseconds resync_interval{std::chrono::minutes(5)};
  int keepalive_interval_s = 5;
  unsigned keepalive_count = 3;
};

// What the scrape path sees. Immutable once published.
struct Snapshot {
  uint64_t generation = 0;                 // bumps on every publish
  std::vector<model::Instance> instances;  // active domains, sorted by instance_id
  // Per instance_id: why threads could not be mapped or did not add up
  // (pid missing, vCPU count mismatch). Diagnostics for logs and the CLI.
  std::map<std::string, std::string> thread_problems;
};
using SnapshotPtr = std::shared_ptr<const Snapshot>;

// A pin change reported by libvirt (VIR_DOMAIN_EVENT_ID_TUNABLE), e.g. from
// `virsh vcpupin` or Nova. Feeds PIN_CHANGED_OUT_OF_BAND (PV12).
struct PinChangeEvent {
  enum class Kind { kVcpu, kEmulator, kIothread };
  std::string instance_id;  // domain UUID
  std::string domain;
  Kind kind = Kind::kVcpu;
  int index = -1;           // vCPU index or IOThread id; -1 for the emulator
  std::vector<int> cpus;    // new cpuset
  std::string param;        // raw typed-param name (cputune.vcpupin1)
};

// One TUNABLE typed parameter ("cputune.vcpupin2" = "4-5") as a pin change;
// nullopt for parameters that are not pins or carry a bad cpuset.
std::optional<PinChangeEvent> parse_tunable_pin(std::string_view field, const char* value);

struct ClientCounters {
  uint64_t connects = 0;         // successful opens
  uint64_t reconnects = 0;       // successful opens after a lost connection
  uint64_t connect_failures = 0;
  uint64_t resyncs = 0;          // full inventories
  uint64_t parse_errors = 0;     // domain XML / metadata rejected
  uint64_t metadata_errors = 0;  // Nova subtree present but unusable
  uint64_t thread_map_errors = 0;
  uint64_t rpc_errors = 0;       // libvirt calls that failed on a live connection
  uint64_t events_lifecycle = 0;
  uint64_t events_tunable = 0;
  uint64_t events_metadata = 0;
};

// What the collector needs; LibvirtClient implements it, tests can fake it.
class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  virtual SnapshotPtr snapshot() const = 0;
  virtual bool up() const = 0;
  virtual ClientCounters counters() const = 0;
};

class LibvirtClient final : public SnapshotSource {
 public:
  using ChangeCallback = std::function<void(const SnapshotPtr&)>;
  using PinChangeCallback = std::function<void(const PinChangeEvent&)>;

  explicit LibvirtClient(ClientOptions opts = {});
  ~LibvirtClient() override;
  LibvirtClient(const LibvirtClient&) = delete;
  LibvirtClient& operator=(const LibvirtClient&) = delete;

  // Set before start(). Both run on the worker thread; keep them short.
  void set_change_callback(ChangeCallback cb);
  void set_pin_change_callback(PinChangeCallback cb);

  // Starts the event loop and the worker. Returns at once: the first
  // connection is attempted in the background (up() tells when it worked).
  // Fails only if the libvirt event implementation cannot be registered.
  Status start();
  // Stops the worker, closes the connection and releases the event loop.
  void stop();

  // nova.conf's cpu_dedicated_set changed (a reload): domains whose policy
  // is inferred from it are rebuilt, on the worker, before the next snapshot.
  void set_dedicated_set(std::optional<std::vector<int>> set);

  SnapshotPtr snapshot() const override;
  bool up() const override { return up_.load(); }
  ClientCounters counters() const override;
  uint64_t generation() const;
  size_t instance_count() const { return snapshot()->instances.size(); }

  // Blocks until generation() > `after` or the timeout; for tests and for
  // `hvtel serve` startup (wait for the first inventory).
  bool wait_for_generation(uint64_t after, std::chrono::milliseconds timeout) const;

  // Internal: called from libvirt callbacks (public for the C trampolines).
  struct Work;
  void enqueue(Work w);

 private:
  struct Conn;
  void run();
  bool connect_once();
  void disconnect(bool stopping = false);
  void resync();
  void refresh(const std::string& uuid);
  Result<model::Instance> build(void* dom, std::string* thread_problem);
  void publish();

  ClientOptions opts_;
  ThreadMapper mapper_;
  ChangeCallback on_change_;
  PinChangeCallback on_pin_change_;

  std::atomic<bool> up_{false};
  std::atomic<bool> running_{false};
  std::thread worker_;
  bool event_loop_held_ = false;

  mutable std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Work> queue_;
  std::optional<std::optional<std::vector<int>>> pending_dedicated_;  // set_dedicated_set, not yet applied
  std::shared_ptr<Conn> conn_;  // worker thread only

  // Worker-owned model, published as copies.
  std::map<std::string, model::Instance> instances_;
  std::map<std::string, std::string> thread_problems_;

  mutable std::mutex snap_mu_;
  mutable std::condition_variable snap_cv_;
  SnapshotPtr snap_;
  uint64_t generation_ = 0;

  mutable std::mutex counters_mu_;
  ClientCounters counters_;
};

struct LibvirtClient::Work {
  enum class Kind { kRefresh, kRemove, kClosed, kTunable, kStop };
  enum class Event { kNone, kLifecycle, kTunable, kMetadata };  // for the counters
  Kind kind = Kind::kRefresh;
  Event event = Event::kNone;
  std::string uuid;
  std::vector<PinChangeEvent> pins;  // kTunable
  uint64_t conn_epoch = 0;           // kClosed: which connection closed
};

}  // namespace hvtel::libvirt
