#include "libvirt/libvirt_client.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "base/util/log.h"
#include "base/util/strings.h"

namespace hvtel::libvirt {
namespace {

constexpr std::string_view kLog = "libvirt";

std::string last_error() {
  const virError* e = virGetLastError();
  return e && e->message ? e->message : "unknown libvirt error";
}
int last_error_code() {
  const virError* e = virGetLastError();
  return e ? e->code : VIR_ERR_OK;
}

// libvirt prints every error to stderr unless told otherwise; the agent
// reports failures through Results and counters instead.
void quiet_error(void*, virErrorPtr e) {
  if (e && e->message) log::debug(kLog, "libvirt: {}", e->message);
}

// The default event implementation is process-global, so so is its loop:
// refcounted across clients, started by the first and stopped by the last.
class EventLoop {
 public:
  static Status acquire() {
    std::lock_guard lk(mu_);
    static bool registered = false;
    if (!registered) {
      virSetErrorFunc(nullptr, quiet_error);
      // A write to a libvirtd that just died raises SIGPIPE; its default
      // action would kill the agent. libvirt asks applications to ignore it.
      struct sigaction old{};
      if (sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
      if (virEventRegisterDefaultImpl() < 0)
        return fail("virEventRegisterDefaultImpl: " + last_error());
      registered = true;
    }
    if (refs_++ == 0) {
      stop_.store(false);
      thread_ = std::thread([] {
        while (!stop_.load()) {
          if (virEventRunDefaultImpl() < 0) {
            log::warn(kLog, "event loop: {}", last_error());
            std::this_thread::sleep_for(std::chrono::milliseconds(100));  // no hot spin
          }
        }
      });
    }
    return {};
  }
  static void release() {
    std::lock_guard lk(mu_);
    if (refs_ == 0 || --refs_ > 0) return;
    stop_.store(true);
    // A zero timeout makes the blocked iteration return; it removes itself.
    int id = virEventAddTimeout(0, [](int timer, void*) { virEventRemoveTimeout(timer); },
                                nullptr, nullptr);
    if (id < 0) log::warn(kLog, "cannot wake event loop: {}", last_error());
    thread_.join();
  }

 private:
  static inline std::mutex mu_;
  static inline int refs_ = 0;
  static inline std::thread thread_;
  static inline std::atomic<bool> stop_{false};
};

template <typename F>
virConnectDomainEventGenericCallback generic(F* f) {
  // libvirt's documented idiom (VIR_DOMAIN_EVENT_CALLBACK) is a C cast; go
  // through void(*)() so -Wcast-function-type accepts it.
  return reinterpret_cast<virConnectDomainEventGenericCallback>(reinterpret_cast<void (*)()>(f));
}

std::string dom_uuid(virDomainPtr dom) {
  char buf[VIR_UUID_STRING_BUFLEN] = {};
  if (virDomainGetUUIDString(dom, buf) < 0) return {};
  std::string s(buf);
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

std::optional<PinChangeEvent> parse_tunable_pin(std::string_view field, const char* value) {
  PinChangeEvent ev;
  ev.param = std::string(field);
  if (field == "cputune.emulatorpin") {
    ev.kind = PinChangeEvent::Kind::kEmulator;
  } else if (starts_with(field, "cputune.vcpupin")) {
    auto n = parse_u64(field.substr(std::strlen("cputune.vcpupin")));
    if (!n || *n >= kMaxListEntries) return std::nullopt;
    ev.kind = PinChangeEvent::Kind::kVcpu;
    ev.index = static_cast<int>(*n);
  } else if (starts_with(field, "cputune.iothreadpin")) {
    auto n = parse_u64(field.substr(std::strlen("cputune.iothreadpin")));
    if (!n || *n >= kMaxListEntries) return std::nullopt;
    ev.kind = PinChangeEvent::Kind::kIothread;
    ev.index = static_cast<int>(*n);
  } else {
    return std::nullopt;
  }
  if (value == nullptr) return std::nullopt;
  auto cpus = parse_libvirt_cpuset(value);
  if (!cpus) return std::nullopt;
  ev.cpus = std::move(*cpus);
  return ev;
}

// One open connection and what was registered on it.
struct CloseCtx {
  LibvirtClient* client;
  uint64_t epoch;
};

struct LibvirtClient::Conn {
  virConnectPtr conn = nullptr;
  uint64_t epoch = 0;
  std::vector<int> callback_ids;
  bool close_cb = false;
  // Ours, not libvirt's to free: a driver without close callbacks (the test
  // driver) accepts the registration and never calls a free function.
  std::unique_ptr<CloseCtx> close_ctx;
};

// --- C trampolines (event loop thread): count, enqueue, return. ---

namespace {
std::atomic<uint64_t> g_epoch{0};
}  // namespace

static int on_lifecycle(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque);
static void on_tunable(virConnectPtr, virDomainPtr dom, virTypedParameterPtr params, int n,
                       void* opaque);
static void on_metadata(virConnectPtr, virDomainPtr dom, int type, const char* nsuri, void* opaque);
static void on_close(virConnectPtr, int reason, void* opaque);

LibvirtClient::LibvirtClient(ClientOptions opts)
    : opts_(std::move(opts)), mapper_(opts_.threads), snap_(std::make_shared<Snapshot>()) {}

LibvirtClient::~LibvirtClient() { stop(); }

void LibvirtClient::set_change_callback(ChangeCallback cb) { on_change_ = std::move(cb); }
void LibvirtClient::set_pin_change_callback(PinChangeCallback cb) { on_pin_change_ = std::move(cb); }

Status LibvirtClient::start() {
  if (running_.load()) return {};
  if (auto st = EventLoop::acquire(); !st) return fail(st.error().context("libvirt client"));
  event_loop_held_ = true;
  running_.store(true);
  worker_ = std::thread([this] { run(); });
  return {};
}

void LibvirtClient::stop() {
  if (running_.exchange(false)) {
    Work w;
    w.kind = Work::Kind::kStop;
    enqueue(std::move(w));
    if (worker_.joinable()) worker_.join();
  }
  if (event_loop_held_) {
    EventLoop::release();
    event_loop_held_ = false;
  }
}

SnapshotPtr LibvirtClient::snapshot() const {
  std::lock_guard lk(snap_mu_);
  return snap_;
}

uint64_t LibvirtClient::generation() const {
  std::lock_guard lk(snap_mu_);
  return generation_;
}

ClientCounters LibvirtClient::counters() const {
  std::lock_guard lk(counters_mu_);
  ClientCounters c = counters_;
  return c;
}

bool LibvirtClient::wait_for_generation(uint64_t after, std::chrono::milliseconds timeout) const {
  std::unique_lock lk(snap_mu_);
  return snap_cv_.wait_for(lk, timeout, [&] { return generation_ > after; });
}

void LibvirtClient::set_dedicated_set(std::optional<std::vector<int>> set) {
  {
    std::lock_guard lk(queue_mu_);
    pending_dedicated_ = std::move(set);
  }
  queue_cv_.notify_all();
}

void LibvirtClient::enqueue(Work w) {
  {
    std::lock_guard lk(queue_mu_);
    queue_.push_back(std::move(w));
  }
  queue_cv_.notify_one();
}

static LibvirtClient* self(void* opaque) { return static_cast<LibvirtClient*>(opaque); }

static int on_lifecycle(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque) {
  LibvirtClient::Work w;
  w.kind = event == VIR_DOMAIN_EVENT_STOPPED ? LibvirtClient::Work::Kind::kRemove
                                             : LibvirtClient::Work::Kind::kRefresh;
  w.uuid = dom_uuid(dom);
  w.event = LibvirtClient::Work::Event::kLifecycle;
  log::debug(kLog, "lifecycle {} event={} detail={}", w.uuid, event, detail);
  self(opaque)->enqueue(std::move(w));
  return 0;
}

static void on_tunable(virConnectPtr, virDomainPtr dom, virTypedParameterPtr params, int n,
                       void* opaque) {
  LibvirtClient::Work w;
  w.kind = LibvirtClient::Work::Kind::kTunable;
  w.event = LibvirtClient::Work::Event::kTunable;
  w.uuid = dom_uuid(dom);
  const char* name = virDomainGetName(dom);
  for (int i = 0; i < n; ++i) {
    const virTypedParameter& p = params[i];
    if (p.type != VIR_TYPED_PARAM_STRING) continue;
    if (auto ev = parse_tunable_pin(p.field, p.value.s)) {
      ev->instance_id = w.uuid;
      ev->domain = name ? name : "";
      w.pins.push_back(std::move(*ev));
    }
  }
  self(opaque)->enqueue(std::move(w));
}

static void on_metadata(virConnectPtr, virDomainPtr dom, int type, const char* nsuri, void* opaque) {
  LibvirtClient::Work w;
  w.kind = LibvirtClient::Work::Kind::kRefresh;
  w.uuid = dom_uuid(dom);
  w.event = LibvirtClient::Work::Event::kMetadata;
  log::debug(kLog, "metadata change {} type={} ns={}", w.uuid, type, nsuri ? nsuri : "");
  self(opaque)->enqueue(std::move(w));
}

static void on_close(virConnectPtr, int reason, void* opaque) {
  auto* ctx = static_cast<CloseCtx*>(opaque);
  log::warn(kLog, "connection closed (reason {})", reason);
  LibvirtClient::Work w;
  w.kind = LibvirtClient::Work::Kind::kClosed;
  w.conn_epoch = ctx->epoch;
  ctx->client->enqueue(std::move(w));
}

bool LibvirtClient::connect_once() {
  virConnectPtr c = virConnectOpenReadOnly(opts_.uri.c_str());
  if (c == nullptr) {
    std::lock_guard lk(counters_mu_);
    if (counters_.connect_failures++ == 0 || counters_.connect_failures % 50 == 0)
      log::warn(kLog, "connect {}: {}", opts_.uri, last_error());
    return false;
  }
  auto conn = std::make_shared<Conn>();
  conn->conn = c;
  conn->epoch = ++g_epoch;
  if (virConnectSetKeepAlive(c, opts_.keepalive_interval_s, opts_.keepalive_count) < 0)
    log::debug(kLog, "keepalive not supported on {}: {}", opts_.uri, last_error());
  conn->close_ctx = std::make_unique<CloseCtx>(CloseCtx{this, conn->epoch});
  if (virConnectRegisterCloseCallback(c, on_close, conn->close_ctx.get(), nullptr) == 0) {
    conn->close_cb = true;
  } else {
    log::debug(kLog, "no close callback on {}: {}", opts_.uri, last_error());
  }
  const std::pair<int, virConnectDomainEventGenericCallback> events[] = {
      {VIR_DOMAIN_EVENT_ID_LIFECYCLE, generic(on_lifecycle)},
      {VIR_DOMAIN_EVENT_ID_TUNABLE, generic(on_tunable)},
      {VIR_DOMAIN_EVENT_ID_METADATA_CHANGE, generic(on_metadata)},
  };
  for (const auto& [id, cb] : events) {
    int rid = virConnectDomainEventRegisterAny(c, nullptr, id, cb, this, nullptr);
    if (rid < 0) {
      log::warn(kLog, "register event {} on {}: {}", id, opts_.uri, last_error());
      conn_ = conn;
      disconnect();
      std::lock_guard lk(counters_mu_);
      counters_.connect_failures++;
      return false;
    }
    conn->callback_ids.push_back(rid);
  }
  conn_ = conn;
  std::lock_guard lk(counters_mu_);
  if (counters_.connects++ > 0) counters_.reconnects++;
  log::info(kLog, "connected to {} (read-only)", opts_.uri);
  return true;
}

void LibvirtClient::disconnect(bool stopping) {
  if (!conn_) return;
  for (int id : conn_->callback_ids) virConnectDomainEventDeregisterAny(conn_->conn, id);
  if (conn_->close_cb) virConnectUnregisterCloseCallback(conn_->conn, on_close);
  virConnectClose(conn_->conn);
  conn_.reset();
  if (up_.exchange(false) && !stopping) log::warn(kLog, "libvirt down; keeping the last inventory");
  // The cached instances stay: QEMU survives a libvirtd restart.
  publish();
}

Result<model::Instance> LibvirtClient::build(void* opaque_dom, std::string* thread_problem) {
  auto dom = static_cast<virDomainPtr>(opaque_dom);
  model::Instance inst;
  inst.source = model::Source::kLibvirt;
  inst.instance_id = dom_uuid(dom);
  const char* name = virDomainGetName(dom);
  inst.domain = name ? name : "";
  inst.instance_name = inst.domain;
  char* xml = virDomainGetXMLDesc(dom, 0);
  if (xml == nullptr) {
    std::lock_guard lk(counters_mu_);
    counters_.rpc_errors++;
    return fail("virDomainGetXMLDesc " + inst.domain + ": " + last_error());
  }
  ParseOptions po;
  po.dedicated_set = opts_.dedicated_set;
  auto parsed = parse_domain_xml(xml, po);
  std::free(xml);
  if (!parsed) {
    // Keep the identity so one bad domain does not vanish from the inventory.
    log::warn(kLog, "domain {}: {}", inst.domain, parsed.error().message);
    std::lock_guard lk(counters_mu_);
    counters_.parse_errors++;
    return inst;
  }
  if (parsed->nova_error) {
    log::warn(kLog, "domain {}: {}", inst.domain, parsed->nova_error->message);
    std::lock_guard lk(counters_mu_);
    counters_.metadata_errors++;
  }
  std::optional<model::NovaInfo> nova = parsed->nova;
  if (opts_.metadata_via_api) {
    nova.reset();
    for (std::string_view ns : {kNovaNs11, kNovaNs10}) {
      const std::string uri(ns);
      char* md = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, uri.c_str(),
                                      VIR_DOMAIN_AFFECT_LIVE);
      if (md == nullptr) {
        if (last_error_code() != VIR_ERR_NO_DOMAIN_METADATA) {
          std::lock_guard lk(counters_mu_);
          counters_.rpc_errors++;
        }
        continue;
      }
      auto n = parse_nova_metadata(md, ns);
      std::free(md);
      if (n) {
        nova = std::move(*n);
        break;
      }
      std::lock_guard lk(counters_mu_);
      counters_.parse_errors++;
    }
    if (nova) parsed->intent.policy = resolve_policy(parsed->intent, parsed->vcpus_current, nova, opts_.dedicated_set);
  }
  inst.vcpus = parsed->vcpus_current;
  inst.intent = std::move(parsed->intent);
  inst.interfaces = std::move(parsed->interfaces);
  inst.nova = std::move(nova);
  if (inst.nova && !inst.nova->display_name.empty()) inst.instance_name = inst.nova->display_name;
  if (opts_.map_threads) {
    auto tm = mapper_.map(inst.domain, inst.vcpus);
    if (!tm) {
      *thread_problem = tm.error().message;
      std::lock_guard lk(counters_mu_);
      counters_.thread_map_errors++;
    } else {
      inst.pid = tm->pid;
      inst.vcpu_threads = std::move(tm->vcpus);
      inst.emulator_threads = std::move(tm->emulator);
      inst.iothreads = std::move(tm->iothreads);
      if (tm->vcpu_count_mismatch) {
        *thread_problem = tm->mismatch;
        log::warn(kLog, "domain {}: {}", inst.domain, tm->mismatch);
      }
    }
  }
  return inst;
}

void LibvirtClient::resync() {
  virDomainPtr* doms = nullptr;
  int n = virConnectListAllDomains(conn_->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
  if (n < 0) {
    log::warn(kLog, "list domains: {}", last_error());
    std::lock_guard lk(counters_mu_);
    counters_.rpc_errors++;
    return;
  }
  std::map<std::string, model::Instance> fresh;
  std::map<std::string, std::string> problems;
  for (int i = 0; i < n; ++i) {
    std::string problem;
    auto inst = build(doms[i], &problem);
    if (inst) {
      if (!problem.empty()) problems[inst->instance_id] = problem;
      std::string id = inst->instance_id;
      fresh[id] = std::move(*inst);
    } else {
      log::warn(kLog, "{}", inst.error().message);
    }
    virDomainFree(doms[i]);
  }
  std::free(doms);
  instances_ = std::move(fresh);
  thread_problems_ = std::move(problems);
  {
    std::lock_guard lk(counters_mu_);
    counters_.resyncs++;
  }
}

void LibvirtClient::refresh(const std::string& uuid) {
  virDomainPtr dom = virDomainLookupByUUIDString(conn_->conn, uuid.c_str());
  if (dom == nullptr) {
    if (last_error_code() == VIR_ERR_NO_DOMAIN) {
      instances_.erase(uuid);
      thread_problems_.erase(uuid);
    } else {
      std::lock_guard lk(counters_mu_);
      counters_.rpc_errors++;
    }
    return;
  }
  int active = virDomainIsActive(dom);
  if (active == 0) {
    instances_.erase(uuid);
    thread_problems_.erase(uuid);
  } else if (active == 1) {
    std::string problem;
    auto inst = build(dom, &problem);
    if (inst) {
      instances_[uuid] = std::move(*inst);
      if (problem.empty()) thread_problems_.erase(uuid);
      else thread_problems_[uuid] = problem;
    } else {
      log::warn(kLog, "{}", inst.error().message);
    }
  } else {
    std::lock_guard lk(counters_mu_);
    counters_.rpc_errors++;
  }
  virDomainFree(dom);
}

void LibvirtClient::publish() {
  auto s = std::make_shared<Snapshot>();
  s->instances.reserve(instances_.size());
  for (const auto& [id, inst] : instances_) s->instances.push_back(inst);
  s->thread_problems = thread_problems_;
  SnapshotPtr published;
  {
    std::lock_guard lk(snap_mu_);
    s->generation = ++generation_;
    snap_ = std::move(s);
    published = snap_;
  }
  snap_cv_.notify_all();
  if (on_change_) on_change_(published);
}

void LibvirtClient::run() {
  auto backoff = opts_.backoff_initial;
  auto last_resync = std::chrono::steady_clock::now();
  while (running_.load()) {
    bool policy_changed = false;
    {
      std::lock_guard lk(queue_mu_);
      if (pending_dedicated_) {
        opts_.dedicated_set = std::move(*pending_dedicated_);  // opts_ is the worker's
        pending_dedicated_.reset();
        policy_changed = true;
      }
    }
    if (!conn_) {
      if (connect_once()) {
        backoff = opts_.backoff_initial;
        // Events that queued up for an older connection are moot: the full
        // resync below sees the current state.
        {
          std::lock_guard lk(queue_mu_);
          std::erase_if(queue_, [](const Work& w) { return w.kind != Work::Kind::kStop; });
        }
        resync();
        last_resync = std::chrono::steady_clock::now();
        up_.store(true);
        publish();
      } else {
        std::unique_lock lk(queue_mu_);
        queue_cv_.wait_for(lk, backoff, [&] { return !running_.load(); });
        backoff = std::min(backoff * 2, opts_.backoff_max);
      }
      continue;
    }
    std::deque<Work> batch;
    {
      std::unique_lock lk(queue_mu_);
      queue_cv_.wait_for(lk, std::chrono::seconds(1), [&] {
        return !queue_.empty() || pending_dedicated_ || policy_changed || !running_.load();
      });
      batch.swap(queue_);
    }
    bool changed = false;
    std::vector<PinChangeEvent> pins;
    bool closed = false;
    for (auto& w : batch) {
      {
        std::lock_guard lk(counters_mu_);
        switch (w.event) {
          case Work::Event::kNone: break;
          case Work::Event::kLifecycle: counters_.events_lifecycle++; break;
          case Work::Event::kTunable: counters_.events_tunable++; break;
          case Work::Event::kMetadata: counters_.events_metadata++; break;
        }
      }
      switch (w.kind) {
        case Work::Kind::kStop:
          break;
        case Work::Kind::kClosed:
          if (conn_ && w.conn_epoch == conn_->epoch) closed = true;
          break;
        case Work::Kind::kRemove:
          changed |= instances_.erase(w.uuid) > 0;
          thread_problems_.erase(w.uuid);
          break;
        case Work::Kind::kRefresh:
          if (!closed) refresh(w.uuid);
          changed = true;
          break;
        case Work::Kind::kTunable:
          if (!closed) refresh(w.uuid);
          changed = true;
          for (auto& p : w.pins) pins.push_back(std::move(p));
          break;
      }
    }
    // The close callback can be missed (a daemon that dies before the
    // keepalive notices); check liveness while idle.
    if (!closed && batch.empty() && virConnectIsAlive(conn_->conn) != 1) closed = true;
    if (closed) {
      if (changed) publish();
      if (on_pin_change_)
        for (const auto& p : pins) on_pin_change_(p);
      disconnect();
      continue;
    }
    if (policy_changed || (opts_.resync_interval.count() > 0 &&
                           std::chrono::steady_clock::now() - last_resync >= opts_.resync_interval)) {
      resync();
      last_resync = std::chrono::steady_clock::now();
      changed = true;
    }
    if (changed) publish();
    if (on_pin_change_)
      for (const auto& p : pins) on_pin_change_(p);
  }
  disconnect(/*stopping=*/true);
}

}  // namespace hvtel::libvirt
