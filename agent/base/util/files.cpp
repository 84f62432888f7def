#include "base/util/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <memory>

namespace hvtel {

namespace {

// Reads fd to EOF (procfs files report size 0), at most max_bytes; closes fd.
Result<std::string> read_all(int fd, const std::string& path, size_t max_bytes) {
  std::unique_ptr<int, void (*)(int*)> guard(&fd, [](int* f) { ::close(*f); });
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(errno, "read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes)
      return fail(path + ": more than the limit of " + std::to_string(max_bytes) + " bytes");
  }
  return out;
}

}  // namespace

Result<std::string> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail_errno(errno, "open " + path);
  return read_all(fd, path, SIZE_MAX);
}

Result<std::string> read_config_file(const std::string& path, size_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fail_errno(errno, "open " + path);
  struct stat st {};
  const bool ok = ::fstat(fd, &st) == 0;
  const int err = errno;
  if (!ok || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    if (!ok) return fail_errno(err, "stat " + path);
    if (!S_ISREG(st.st_mode)) return fail(path + ": not a regular file");
    return fail(path + ": " + std::to_string(st.st_size) + " bytes, more than the limit of " +
                std::to_string(max_bytes));
  }
  return read_all(fd, path, max_bytes);  // the limit again: it may grow while we read
}

FileStamp file_stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {true,
          static_cast<uint64_t>(st.st_dev),
          static_cast<uint64_t>(st.st_ino),
          static_cast<uint64_t>(st.st_size),
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
          static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec};
}

void FileWatch::loaded(const std::vector<std::string>& paths) {
  paths_ = paths;
  loaded_.clear();
  for (const auto& p : paths_) loaded_.push_back(file_stamp(p));
  last_seen_ = loaded_;
}

bool FileWatch::changed() {
  std::vector<FileStamp> now;
  for (const auto& p : paths_) now.push_back(file_stamp(p));
  const bool settled = now == last_seen_;
  last_seen_ = std::move(now);
  return settled && last_seen_ != loaded_;
}

Result<std::vector<std::string>> list_dir(const std::string& path) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(path.c_str()), ::closedir);
  if (!d) return fail_errno(errno, "opendir " + path);
  std::vector<std::string> out;
  while (dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    out.push_back(std::move(name));
  }
  return out;
}

Result<std::string> read_link(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return fail_errno(errno, "readlink " + path);
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace hvtel
