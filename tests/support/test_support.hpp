#pragma once
// Shared test helpers: temporary folders, the shared real-data folder, running the
// psfphot executable.
#include <filesystem>
#include <string>

namespace psfphot::test {

// A fresh empty folder removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// ../shared/data, or empty when absent (tests then GTEST_SKIP with a message).
std::filesystem::path shared_data();

// Path of the built psfphot program.
std::string psfphot_exe();

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout + stderr
};
// Run a shell command, capture its combined output.
CommandResult run_command(const std::string& cmd);

}  // namespace psfphot::test

#define PSFPHOT_REQUIRE_SHARED_DATA()                                     \
  do {                                                                    \
    if (::psfphot::test::shared_data().empty())                           \
      GTEST_SKIP() << "../shared/data is absent: real-data test skipped"; \
  } while (0)
