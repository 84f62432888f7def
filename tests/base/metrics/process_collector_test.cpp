// The standard process_* metrics: /proc/<pid>/stat parsing, a fake /proc, and the live process.
#include "base/metrics/process_collector.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <ctime>

#include "support/proc_fixture.h"
#include "support/exposition.h"

using hvtel::metrics::parse_boot_time;
using hvtel::metrics::parse_process_stat;
using hvtel::metrics::ProcessCollector;

namespace {

// comm "hv) (tel 1 2": parsing from the first ')' or splitting on spaces would shift every field.
const char* kStat =
    "4242 (hv) (tel 1 2) S 1 4242 4242 0 -1 4194560 2000 0 3 0 1234 566 7 8 20 0 3 0 98765 "
    "123457536 2345 18446744073709551615 94715411214336 94715411234217 140733881453296 0 0 0 0 "
    "0 0 0 0 0 17 1 0 0 0 0 0 94715411250224 94715411251840 94716068794368 140733881457095 "
    "140733881457115 140733881457115 140733881458667 0\n";

std::string serialize(const ProcessCollector& c) {
  return prometheus::TextSerializer().Serialize(c.Collect());
}

}  // namespace

TEST(ProcessStat, ParsesFieldsAfterTheLastParenthesis) {
  auto st = parse_process_stat(kStat);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->utime_ticks, 1234u);
  EXPECT_EQ(st->stime_ticks, 566u);
  EXPECT_EQ(st->start_ticks, 98765u);
  EXPECT_EQ(st->vsize_bytes, 123457536u);
  EXPECT_EQ(st->rss_pages, 2345u);
}

TEST(ProcessStat, RejectsMalformedLines) {
  auto no_paren = parse_process_stat("4242 hvtel S 1 4242");
  ASSERT_FALSE(no_paren);
  EXPECT_EQ(no_paren.error().message, "no ')' after comm");
  auto short_line = parse_process_stat("4242 (hvtel) S 1 4242 4242 0 -1 4194560 2000 0 3 0 1234");
  ASSERT_FALSE(short_line);
  EXPECT_EQ(short_line.error().message, "only 14 fields");
  std::string bad_rss = kStat;
  bad_rss.replace(bad_rss.find(" 2345 "), 6, " -5 ");
  auto negative = parse_process_stat(bad_rss);
  ASSERT_FALSE(negative);
  EXPECT_EQ(negative.error().message, "field 24 '-5'");
}

TEST(ProcessStat, BootTimeIsTheBtimeLine) {
  auto t = parse_boot_time("cpu  1 2 3\nintr 5 6\nctxt 99\nbtime 1796396952\nprocesses 7\n");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(*t, 1796396952u);
  ASSERT_FALSE(parse_boot_time("cpu  1 2 3\nctxt 99\n"));
  auto bad = parse_boot_time("btime soon\n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "malformed 'btime soon'");
}

// Every value from a fake /proc: the units (ticks, pages) are converted exactly.
TEST(ProcessCollector, ExactValuesFromAFakeProc) {
  hvtel::testing::ProcFixture fx;
  fx.write("self/stat", kStat);
  fx.write("stat", "cpu  1 2 3\nbtime 1796396952\nprocesses 7\n");
  for (const char* fd : {"0", "1", "2", "7"}) fx.write(std::string("self/fd/") + fd, "");
  hvtel::testing::Scrape s(serialize(ProcessCollector(fx.root())));

  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  EXPECT_DOUBLE_EQ(*s.value("process_cpu_seconds_total"), 1800 / ticks) << s.text();
  EXPECT_DOUBLE_EQ(*s.value("process_resident_memory_bytes"), 2345 * page);
  EXPECT_DOUBLE_EQ(*s.value("process_virtual_memory_bytes"), 123457536);
  EXPECT_DOUBLE_EQ(*s.value("process_start_time_seconds"), 1796396952 + 98765 / ticks);
  EXPECT_EQ(*s.value("process_open_fds"), 4);
  rlimit lim{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
  EXPECT_EQ(*s.value("process_max_fds"), static_cast<double>(lim.rlim_cur));
  // The Go client's types and help texts, so its dashboards and rules apply unchanged.
  for (const char* line : {
           "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
           "# TYPE process_cpu_seconds_total counter\n",
           "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
           "# TYPE process_resident_memory_bytes gauge\n",
           "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
           "# TYPE process_virtual_memory_bytes gauge\n",
           "# HELP process_open_fds Number of open file descriptors.\n"
           "# TYPE process_open_fds gauge\n",
           "# HELP process_max_fds Maximum number of open file descriptors.\n"
           "# TYPE process_max_fds gauge\n",
           "# HELP process_start_time_seconds Start time of the process since unix epoch in "
           "seconds.\n# TYPE process_start_time_seconds gauge\n"})
    EXPECT_NE(s.text().find(line), std::string::npos) << line << "\nin:\n" << s.text();
}

// What cannot be read is left out; the rest is still served.
TEST(ProcessCollector, LeavesOutWhatItCannotRead) {
  hvtel::testing::ProcFixture fx;
  fx.write("self/stat", "4242 (hvtel) S 1\n");  // truncated: cpu, memory, start time go
  for (const char* fd : {"0", "1"}) fx.write(std::string("self/fd/") + fd, "");
  hvtel::testing::Scrape s(serialize(ProcessCollector(fx.root())));
  EXPECT_EQ(s.count("process_cpu_seconds_total"), 0u) << s.text();
  EXPECT_EQ(s.count("process_resident_memory_bytes"), 0u);
  EXPECT_EQ(s.count("process_virtual_memory_bytes"), 0u);
  EXPECT_EQ(s.count("process_start_time_seconds"), 0u);
  EXPECT_EQ(*s.value("process_open_fds"), 2);
  EXPECT_EQ(s.count("process_max_fds"), 1u);

  // A valid stat without /proc/stat: only the start time goes.
  fx.write("self/stat", kStat);
  hvtel::testing::Scrape no_btime(serialize(ProcessCollector(fx.root())));
  EXPECT_EQ(no_btime.count("process_start_time_seconds"), 0u) << no_btime.text();
  EXPECT_EQ(no_btime.count("process_cpu_seconds_total"), 1u);

  hvtel::testing::Scrape nothing(serialize(ProcessCollector(fx.root() + "/missing")));
  EXPECT_EQ(nothing.count("process_open_fds"), 0u) << nothing.text();
  EXPECT_EQ(nothing.count("process_max_fds"), 1u);
}

// This test process, through the real /proc.
TEST(ProcessCollector, LiveProcessHasSaneValues) {
  ProcessCollector c;
  const auto families = c.Collect();
  ASSERT_EQ(families.size(), 6u);
  hvtel::testing::Scrape s(prometheus::TextSerializer().Serialize(families));
  EXPECT_GE(*s.value("process_cpu_seconds_total"), 0) << s.text();
  EXPECT_GT(*s.value("process_resident_memory_bytes"), 0);
  // Virtual size counts at least every resident page.
  EXPECT_GE(*s.value("process_virtual_memory_bytes"), *s.value("process_resident_memory_bytes"));
  EXPECT_GE(*s.value("process_open_fds"), 1);
  EXPECT_GE(*s.value("process_max_fds"), *s.value("process_open_fds"));
  const double now = static_cast<double>(std::time(nullptr));
  const double start = *s.value("process_start_time_seconds");
  EXPECT_LE(start, now + 1);  // + 1: btime is rounded to a second
  EXPECT_GT(start, now - 86400);
}

TEST(ProcessCollector, LiveOpenFdsCountsANewDescriptor) {
  ProcessCollector c;
  auto open_fds = [&c] {
    return *hvtel::testing::Scrape(prometheus::TextSerializer().Serialize(c.Collect()))
                .value("process_open_fds");
  };
  const double before = open_fds();
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(open_fds(), before + 1);
  ::close(fd);
  EXPECT_EQ(open_fds(), before);
}
