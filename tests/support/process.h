// Child processes for integration tests: spawn, read output, stop by pid.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace hvtel::testing {

class Process {
 public:
  // Starts argv[0] with argv; stdout and stderr go to files in a temp dir.
  explicit Process(std::vector<std::string> argv);
  ~Process();  // SIGTERM, then SIGKILL after 5 s
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Waits up to timeout_ms; returns the exit code, or -1 on timeout.
  int wait(int timeout_ms);
  void terminate();
  std::string out() const;  // stdout so far
  std::string err() const;  // stderr so far
  // Polls stdout/stderr until `needle` appears; false on timeout.
  bool wait_output(const std::string& needle, int timeout_ms, bool in_stderr = false);

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  bool reaped_ = false;
  std::string dir_, out_path_, err_path_;
};

// A free TCP port on 127.0.0.1 (bound then released).
int free_port();
// HTTP GET on 127.0.0.1:port with the agent's client; the body of a 200, or empty with *ok=false.
std::string http_get(int port, const std::string& path, bool* ok = nullptr);
// Runs a shell command, returns its exit code and stdout.
int run_command(const std::string& cmd, std::string* out = nullptr);
// The first thread of `pid` whose name starts with `prefix` ("CPU 0/"), 0 if none.
pid_t thread_named(pid_t pid, const std::string& prefix);
// Directory of the test executable's build tree (CMAKE_BINARY_DIR), from env HVTEL_BUILD_DIR.
std::string build_dir();

}  // namespace hvtel::testing
