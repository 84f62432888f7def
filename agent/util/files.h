// File helpers for procfs/sysfs reads. The agent never writes files at runtime.
#pragma once

#include <string>
#include <vector>

#include "util/result.h"

namespace hvtel {

// Reads a whole (small) file. procfs files report size 0, so this reads until EOF.
Result<std::string> read_file(const std::string& path);
// Lists directory entry names (without "." and "..").
Result<std::vector<std::string>> list_dir(const std::string& path);
// readlink(2) into a string.
Result<std::string> read_link(const std::string& path);

}  // namespace hvtel
