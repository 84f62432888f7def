#include "base/metrics/process_collector.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "base/metrics/catalog.h"
#include "base/util/files.h"
#include "base/util/log.h"
#include "base/util/strings.h"

namespace hvtel::metrics {

Result<ProcessStat> parse_process_stat(std::string_view line) {
  auto fields = proc_stat_fields(line);
  if (!fields) return fail("no ')' after comm");
  // (*fields)[i] is field i + 3; rss is field 24.
  if (fields->size() < 22) return fail("only " + std::to_string(fields->size() + 2) + " fields");
  ProcessStat st;
  const std::pair<uint64_t*, size_t> wanted[] = {{&st.utime_ticks, 14}, {&st.stime_ticks, 15},
                                                 {&st.start_ticks, 22}, {&st.vsize_bytes, 23},
                                                 {&st.rss_pages, 24}};
  for (const auto& [out, field] : wanted) {
    auto v = parse_u64((*fields)[field - 3]);
    if (!v) return fail("field " + std::to_string(field) + " '" + (*fields)[field - 3] + "'");
    *out = *v;
  }
  return st;
}

Result<uint64_t> parse_boot_time(std::string_view proc_stat) {
  for (const auto& line : split(proc_stat, '\n')) {
    if (!starts_with(line, "btime ")) continue;
    auto v = parse_u64(trim(std::string_view(line).substr(6)));
    if (!v) return fail("malformed '" + line + "'");
    return *v;
  }
  return fail("no btime line");
}

namespace {

// Reads a procfs file and parses it; a parse error names the file.
template <typename Parse>
auto read_parsed(const std::string& path, Parse parse) -> decltype(parse(std::string_view{})) {
  auto text = read_file(path);
  if (!text) return fail(text.error());
  auto v = parse(*text);
  if (!v) return fail(v.error().context(path));
  return v;
}

void add(std::vector<prometheus::MetricFamily>& out, const MetricDesc& d, double value) {
  FamilyBuilder b(d);
  b.add({}, value);
  append(out, std::move(b));
}

// Debug only: a read that fails fails at every scrape.
void skip(const char* what, const Error& e) {
  log::debug("process", "{} left out: {}", what, e.message);
}

}  // namespace

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  std::vector<prometheus::MetricFamily> out;
  // Both are fixed by the kernel ABI (USER_HZ, the page size) and never fail on Linux.
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));

  if (auto st = read_parsed(proc_root_ + "/self/stat", parse_process_stat)) {
    add(out, catalog::kProcessCpuSeconds,
        static_cast<double>(st->utime_ticks + st->stime_ticks) / ticks);
    add(out, catalog::kProcessResidentMemory, static_cast<double>(st->rss_pages) * page);
    add(out, catalog::kProcessVirtualMemory, static_cast<double>(st->vsize_bytes));
    if (auto boot = read_parsed(proc_root_ + "/stat", parse_boot_time))
      add(out, catalog::kProcessStartTime,
          static_cast<double>(*boot) + static_cast<double>(st->start_ticks) / ticks);
    else
      skip(catalog::kProcessStartTime.name, boot.error());
  } else {
    skip("process_cpu_seconds_total, process_*_memory_bytes, process_start_time_seconds",
         st.error());
  }

  if (auto fds = list_dir(proc_root_ + "/self/fd"))
    add(out, catalog::kProcessOpenFds, static_cast<double>(fds->size()));
  else
    skip(catalog::kProcessOpenFds.name, fds.error());

  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0)
    add(out, catalog::kProcessMaxFds, static_cast<double>(lim.rlim_cur));
  else
    skip(catalog::kProcessMaxFds.name, Error::sys(errno, "getrlimit(RLIMIT_NOFILE)"));
  return out;
}

}  // namespace hvtel::metrics
