#include "support/proc_fixture.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace hvtel::testing {

ProcFixture::ProcFixture() {
  char tmpl[] = "/tmp/hvtel-proc-fixture.XXXXXX";
  root_ = mkdtemp(tmpl);
}

ProcFixture::~ProcFixture() { fs::remove_all(root_); }

void ProcFixture::write(const std::string& rel, const std::string& content) {
  fs::path p = fs::path(root_) / rel;
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

void ProcFixture::add_process(pid_t pid, const std::vector<std::string>& argv,
                              const std::string& comm, uint64_t start_time) {
  std::string cmdline;
  for (const auto& a : argv) cmdline += a + '\0';
  std::string p = std::to_string(pid);
  write(p + "/cmdline", cmdline);
  write(p + "/comm", comm + "\n");
  // comm in stat may contain spaces and parentheses.
  std::string stat = p + " (" + comm + ") S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 " +
                     std::to_string(start_time) + " 0 0\n";
  write(p + "/stat", stat);
  add_thread(pid, pid, comm);
}

void ProcFixture::add_thread(pid_t pid, pid_t tid, const std::string& comm) {
  write(std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm", comm + "\n");
}

void ProcFixture::remove_thread(pid_t pid, pid_t tid) {
  fs::remove_all(fs::path(root_) / std::to_string(pid) / "task" / std::to_string(tid));
}

void ProcFixture::remove_process(pid_t pid) { fs::remove_all(fs::path(root_) / std::to_string(pid)); }

void ProcFixture::set_syscall(pid_t pid, pid_t tid, const std::string& line) {
  write(std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall", line + "\n");
}

void ProcFixture::add_fd(pid_t pid, int fd, const std::string& target) {
  fs::path dir = fs::path(root_) / std::to_string(pid) / "fd";
  fs::create_directories(dir);
  fs::create_symlink(target, dir / std::to_string(fd));
}

}  // namespace hvtel::testing
