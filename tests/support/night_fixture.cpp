#include "support/night_fixture.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#include "psfphot/io/catalogue.hpp"

namespace psfphot::test {

TempDir* SimulatedNightTest::dir_ = nullptr;
int SimulatedNightTest::frames_ = 0;

std::string mpirun(int ranks) {
  return kMpiEnv + "mpirun --oversubscribe -n " + std::to_string(ranks) + " " + psfphot_exe();
}

pid_t start_job(const std::string& cmd, const std::string& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", ("exec env " + cmd + " >" + log + " 2>&1").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(pid, pid);  // also here: no race with the child's own call
  return pid;
}

int wait_exit(pid_t pid) {
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

namespace {

// The processes whose parent is `parent` (from /proc/<pid>/stat).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream st(e.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(st)), std::istreambuf_iterator<char>());
    const auto close = stat.rfind(')');
    char state = 0;
    int ppid = 0;
    if (close != std::string::npos &&
        std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent)
      out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

}  // namespace

void kill_job(pid_t pid) {
  const std::vector<pid_t> ranks = children_of(pid);
  kill(-pid, SIGKILL);
  for (pid_t r : ranks) kill(r, SIGKILL);
  wait_exit(pid);
  // The ranks are not our children: wait for them to leave /proc (zombies reaped by init).
  for (int i = 0; i < 1000; ++i) {
    const bool any = std::any_of(ranks.begin(), ranks.end(), [](pid_t r) {
      std::ifstream st("/proc/" + std::to_string(r) + "/stat");
      std::string stat((std::istreambuf_iterator<char>(st)), std::istreambuf_iterator<char>());
      const auto close = stat.rfind(')');
      return st.good() && close != std::string::npos && stat.size() > close + 2 &&
             stat[close + 2] != 'Z';
    });
    if (!any) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void SimulatedNightTest::set_up_night(const NightSpec& spec) {
  dir_ = new TempDir();
  frames_ = spec.frames;
  auto r = run_command(psfphot_exe() + " simulate --out " + night_dir() + " --frames " +
                       std::to_string(spec.frames) + " --size 512 --stars 250 --seed " +
                       std::to_string(spec.seed) + " --darks " + std::to_string(spec.darks) +
                       " --flats " + std::to_string(spec.flats) + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto ref =
      run_command(psfphot_exe() + " run " + night_toml() + " -q --threads 1 -o " + reference());
  ASSERT_EQ(ref.exit_code, 0) << ref.out;
}

void SimulatedNightTest::tear_down_night() {
  delete dir_;
  dir_ = nullptr;
}

std::vector<Star> SimulatedNightTest::sorted_stars(const std::string& path) {
  io::CatalogueReader rd(path);
  std::vector<Star> s = rd.stars(0, rd.star_rows());
  std::sort(s.begin(), s.end(), [](const Star& a, const Star& b) {
    return a.frame_id != b.frame_id ? a.frame_id < b.frame_id : a.star_id < b.star_id;
  });
  return s;
}

void SimulatedNightTest::expect_same_as_reference(const std::string& path) {
  auto a = sorted_stars(reference()), b = sorted_stars(path);
  ASSERT_EQ(a.size(), b.size()) << path;
  ASSERT_GT(a.size(), 500u);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(Star)), 0)
      << path << " differs from the reference";
  io::CatalogueReader rd(path);
  ASSERT_EQ(rd.frames().size(), static_cast<std::size_t>(frames_));
  for (const auto& f : rd.frames()) EXPECT_EQ(f.status, 0) << f.path << ": " << f.message;
}

}  // namespace psfphot::test
