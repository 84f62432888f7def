#include "support/hostile_clients.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

namespace hvtel::testing {

HostileClients::HostileClients(int port, int idle, int slowloris) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<int> slow;
  for (int i = 0; i < idle + slowloris; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      continue;
    }
    ++connected_;
    fds_.push_back(fd);
    if (i >= idle) slow.push_back(fd);
  }
  // A byte every 100 ms: never a complete request, never silent for long.
  drip_ = std::thread([this, slow] {
    const std::string header = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    size_t at = 0;
    while (!stop_) {
      for (int fd : slow) {
        const char c = at < header.size() ? header[at] : 'a';
        (void)::send(fd, &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      ++at;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
}

HostileClients::~HostileClients() {
  stop_ = true;
  drip_.join();
  for (int fd : fds_) ::close(fd);
}

}  // namespace hvtel::testing
