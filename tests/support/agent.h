// An `hvtel serve` child process for integration tests, and test VMM helpers.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/exposition.h"
#include "support/process.h"

namespace hvtel::testing {

// How long `hvtel serve` may take to serve: it loads and verifies every BPF
// program, ~0.1 s on a host and ~2 s in a quiet VM-lab guest, whose TCG slows
// down with the host's load. A wait, not a measure: it ends once serving.
inline constexpr int kAgentStartMs = 60000;

class Agent {
 public:
  explicit Agent(std::vector<std::string> extra = {}) : port_(free_port()) {
    std::vector<std::string> argv{HVTEL_BIN, "serve", "--listen",
                                  "127.0.0.1:" + std::to_string(port_), "--poll-interval-ms",
                                  "100", "--libvirt-uri", ""};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<Process>(argv);
    ready_ = proc_->wait_output("serving /metrics", kAgentStartMs, /*in_stderr=*/true);
  }
  bool ready() const { return ready_; }
  Process& process() { return *proc_; }
  int port() const { return port_; }
  Scrape scrape() const {
    bool ok = false;
    std::string body = http_get(port_, "/metrics", &ok);
    return Scrape(ok ? body : "");
  }
  // Scrapes until pred holds or the timeout passes; returns the last scrape.
  Scrape wait_for(const std::function<bool(const Scrape&)>& pred, int timeout_ms) const {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      Scrape s = scrape();
      if (pred(s) || std::chrono::steady_clock::now() > deadline) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

 private:
  int port_;
  std::unique_ptr<Process> proc_;
  bool ready_ = false;
};

// Waits for the test VMM's JSON summary (printed once every vCPU halted).
inline nlohmann::json vmm_summary(Process& vmm, int timeout_ms = 30000) {
  if (!vmm.wait_output("\"ok\"", timeout_ms)) return nlohmann::json::object();
  return nlohmann::json::parse(vmm.out());
}

}  // namespace hvtel::testing
