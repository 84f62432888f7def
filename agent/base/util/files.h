// File helpers for procfs/sysfs reads. The agent never writes files at runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/util/result.h"

namespace hvtel {

// Reads a whole (small) file. procfs files report size 0, so this reads until EOF.
Result<std::string> read_file(const std::string& path);

// An operator's configuration file is at most this large.
inline constexpr size_t kMaxConfigBytes = 4 << 20;
// Reads a configuration file: a regular file (after symlinks) of at most
// `max_bytes`. A FIFO, device or directory is refused without blocking.
Result<std::string> read_config_file(const std::string& path, size_t max_bytes = kMaxConfigBytes);

// What identifies a file's content without reading it: a change of any field
// (edit, replace by rename, ConfigMap symlink swap, deletion) is a change.
struct FileStamp {
  bool exists = false;
  uint64_t dev = 0, ino = 0, size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};
FileStamp file_stamp(const std::string& path);

// Tells when configuration files changed and settled: different from what was
// loaded, and the same on two polls in a row, so a file caught mid-write is
// not loaded half-written.
class FileWatch {
 public:
  // Records the files' state as the one loaded. Call before reading them: an
  // edit made while they are read then shows as a change at the next poll.
  void loaded(const std::vector<std::string>& paths);
  bool changed();

 private:
  std::vector<std::string> paths_;
  std::vector<FileStamp> loaded_, last_seen_;
};
// Lists directory entry names (without "." and "..").
Result<std::vector<std::string>> list_dir(const std::string& path);
// readlink(2) into a string.
Result<std::string> read_link(const std::string& path);

}  // namespace hvtel
