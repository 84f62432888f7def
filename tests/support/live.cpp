#include "support/live.h"

#include <bpf/bpf.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

namespace hvtel::testing {

OnCpu::OnCpu(int cpu) {
  if (sched_getaffinity(0, sizeof(saved_), &saved_) != 0) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  ok_ = sched_setaffinity(0, sizeof(one), &one) == 0;
}

void OnCpu::restore() {
  if (ok_) sched_setaffinity(0, sizeof(saved_), &saved_);
  ok_ = false;
}

int programs_named(const std::string& prefix) {
  int n = 0;
  __u32 id = 0;
  while (bpf_prog_get_next_id(id, &id) == 0) {
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) continue;
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && std::string(info.name).rfind(prefix, 0) == 0) ++n;
    close(fd);
  }
  return n;
}

std::string first_line(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

double hog(int cpu, double seconds) {
  pid_t pid = fork();
  if (pid == 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof(set), &set);
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    volatile uint64_t x = 0;
    while (std::chrono::steady_clock::now() < end) x = x + 1;
    _exit(0);
  }
  int status;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) v.push_back(std::move(j));
  }
  return v;
}

namespace {

bool write_file(const std::string& path, const std::string& s) {
  std::ofstream f(path, std::ios::app);
  f << s << "\n";
  f.flush();
  return static_cast<bool>(f);
}

}  // namespace

HistCount::HistCount(std::string event, std::string key, std::string filter)
    : dir_("/sys/kernel/tracing/events/" + event),
      trigger_("hist:keys=" + key + ":vals=hitcount:size=256 if " + filter) {
  ok_ = write_file(dir_ + "/trigger", trigger_);
}

HistCount::~HistCount() {
  if (ok_) write_file(dir_ + "/trigger", "!" + trigger_);
}

std::map<uint64_t, uint64_t> HistCount::counts(uint64_t* dropped) const {
  // "{ next_pid:       1234 } hitcount:        567", and "    Dropped: 0" at the end.
  std::map<uint64_t, uint64_t> out;
  std::ifstream f(dir_ + "/hist");
  std::string line;
  while (std::getline(f, line)) {
    auto open = line.find('{'), close = line.find('}'), hits = line.find("hitcount:");
    if (open != std::string::npos && close != std::string::npos && hits != std::string::npos) {
      auto colon = line.find(':', open);
      out[std::stoull(line.substr(colon + 1, close - colon - 1))] = std::stoull(line.substr(hits + 9));
    }
    auto d = line.find("Dropped:");
    if (d != std::string::npos && dropped) *dropped = std::stoull(line.substr(d + 8));
  }
  return out;
}

}  // namespace hvtel::testing
