#include "base/util/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace {

struct ConfigFileTest : ::testing::Test {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("hvtel-files-" + std::to_string(::getpid()));
  void SetUp() override { std::filesystem::create_directories(dir); }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string path(const char* name) const { return (dir / name).string(); }
};

TEST_F(ConfigFileTest, ReadsARegularFileUpToTheLimit) {
  std::ofstream(path("a")) << "0123456789";
  EXPECT_EQ(hvtel::read_config_file(path("a"), 10), "0123456789");
  auto big = hvtel::read_config_file(path("a"), 9);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().message, path("a") + ": 10 bytes, more than the limit of 9");
  std::filesystem::create_symlink(path("a"), path("link"));  // ConfigMaps are symlinks
  EXPECT_EQ(hvtel::read_config_file(path("link")), "0123456789");
}

TEST_F(ConfigFileTest, RefusesDevicesFifosAndDirectoriesWithoutBlocking) {
  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0600), 0);
  for (const std::string& p : {std::string("/dev/zero"), path("fifo"), dir.string()}) {
    auto r = hvtel::read_config_file(p);
    ASSERT_FALSE(r) << p;
    EXPECT_EQ(r.error().message, p + ": not a regular file");
  }
  auto missing = hvtel::read_config_file(path("missing"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().err, ENOENT);
}

TEST_F(ConfigFileTest, StampChangesWithContentReplacementAndDeletion) {
  std::ofstream(path("a")) << "x";
  const auto s0 = hvtel::file_stamp(path("a"));
  EXPECT_TRUE(s0.exists);
  EXPECT_EQ(hvtel::file_stamp(path("a")), s0);
  std::ofstream(path("a"), std::ios::app) << "y";
  const auto s1 = hvtel::file_stamp(path("a"));
  EXPECT_NE(s1, s0);
  std::ofstream(path("b")) << "xy";
  std::filesystem::rename(path("b"), path("a"));
  const auto s2 = hvtel::file_stamp(path("a"));
  EXPECT_NE(s2, s1);  // same size, new inode
  std::filesystem::remove(path("a"));
  EXPECT_FALSE(hvtel::file_stamp(path("a")).exists);
}

}  // namespace
