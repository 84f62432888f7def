// Clients that try to starve an HTTP server: connections that send nothing,
// and a slowloris that sends a request header a byte at a time, forever.
#pragma once

#include <atomic>
#include <thread>
#include <vector>

namespace hvtel::testing {

class HostileClients {
 public:
  // Opens `idle` silent connections and `slowloris` slow ones to 127.0.0.1:port.
  HostileClients(int port, int idle, int slowloris);
  ~HostileClients();  // closes them all
  HostileClients(const HostileClients&) = delete;
  HostileClients& operator=(const HostileClients&) = delete;

  int connected() const { return connected_; }

 private:
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::thread drip_;
  int connected_ = 0;
};

}  // namespace hvtel::testing
