// A fake /proc tree in a temporary directory, for discovery tests.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace hvtel::testing {

class ProcFixture {
 public:
  ProcFixture();
  ~ProcFixture();
  const std::string& root() const { return root_; }

  void add_process(pid_t pid, const std::vector<std::string>& argv, const std::string& comm,
                   uint64_t start_time);
  void add_thread(pid_t pid, pid_t tid, const std::string& comm);
  void remove_thread(pid_t pid, pid_t tid);
  void remove_process(pid_t pid);
  void set_syscall(pid_t pid, pid_t tid, const std::string& line);
  void add_fd(pid_t pid, int fd, const std::string& target);
  void write(const std::string& rel, const std::string& content);

 private:
  std::string root_;
};

}  // namespace hvtel::testing
