// libFuzzer target: the TOML config parser and validator (pipeline::load_config). Bad text
// must give pipeline::ConfigError (all problems listed), never a crash or another
// exception; a config that loads must round-trip: its effective TOML loads again and
// gives the same effective TOML.
// Built by -DPSFPHOT_FUZZ=ON (bench/fuzz.sh); replays tests/fuzz/regressions/config/ in the
// normal test suite (fuzz_replay.cpp).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "psfphot/pipeline/config.hpp"

namespace {

// One scratch file per process and role, removed at exit (nothing left behind in TMPDIR).
struct ScratchFile {
  std::string path;
  explicit ScratchFile(const char* what) {
    const char* dir = std::getenv("TMPDIR");
    path = std::string(dir && *dir ? dir : "/tmp") + "/psfphot-fuzz-" + what + "-" +
           std::to_string(::getpid()) + ".toml";
  }
  ~ScratchFile() { ::unlink(path.c_str()); }
};

void write(const std::string& path, const void* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const ScratchFile path_file("config"), again_file("config-again");
  const std::string &path = path_file.path, &again = again_file.path;
  write(path, data, size);
  using psfphot::pipeline::ConfigError;
  psfphot::pipeline::Config cfg;
  try {
    cfg = psfphot::pipeline::load_config(path, {}, /*allow_night=*/true);
  } catch (const ConfigError& e) {
    if (e.problems().empty()) std::abort();  // an error must say what is wrong
    return 0;
  }
  const std::string text = psfphot::pipeline::effective_config_toml(cfg);
  write(again, text.data(), text.size());
  try {
    const auto cfg2 = psfphot::pipeline::load_config(again, {}, true);
    if (psfphot::pipeline::effective_config_toml(cfg2) != text) std::abort();
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "effective config does not load again:\n%s\n---\n%s\n", text.c_str(),
                 e.what());
    std::abort();
  }
  return 0;
}
