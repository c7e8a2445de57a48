#pragma once
// A simulated night and its uninterrupted reference catalogue, shared by the suites that
// run the real `psfphot run` (tests/mpi: NightRun, Faults): they interrupt, kill or re-lay
// out a run and compare the result with the reference byte for byte.
#include <gtest/gtest.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "psfphot/core/star.hpp"
#include "support/test_support.hpp"

namespace psfphot::test {

// Environment mpirun needs as root here, and `mpirun --oversubscribe -n N psfphot`.
// (mpirun answers a rank's non-zero exit by signalling the job and waiting
// odls_base_sigkill_timeout twice: keep the default 1 s.) PMIx's munge security plugin
// is left out: with munge installed (for the Slurm test) but munged not running it retries
// for ~2.3 s in mpirun and again in every rank's MPI_Init (docs/clusters.md).
inline const std::string kMpiEnv =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PMIX_MCA_psec=^munge ";
std::string mpirun(int ranks);

// Start `cmd` through /bin/sh in its own process group (so kill(-pid, ...) reaches mpirun and
// every rank), stdout and stderr to `log`; returns the group leader's pid.
pid_t start_job(const std::string& cmd, const std::string& log = "/dev/null");
// Wait for it: the exit code, or 128 + the signal that ended it.
int wait_exit(pid_t pid);
// SIGKILL a job started by start_job as a batch system kills a job: its process group and
// the processes mpirun started (Open MPI puts its ranks in process groups of their own, so
// a group kill reaches mpirun alone and the ranks die later, still holding the catalogue's
// lock); returns once the job and every one of those processes is gone (at most ~10 s).
void kill_job(pid_t pid);

struct NightSpec {
  int frames = 8;
  unsigned seed = 5;
  int darks = 3, flats = 3;  // 512^2 frames with 250 stars each
};

class SimulatedNightTest : public ::testing::Test {
 protected:
  // Call from the derived suite's SetUpTestSuite / TearDownTestSuite: simulates the night
  // and runs it once (one rank, one thread) into reference().
  static void set_up_night(const NightSpec& spec);
  static void tear_down_night();

  static std::string night_dir() { return dir_->file("night"); }
  static std::string night_toml() { return night_dir() + "/night.toml"; }
  static std::string reference() { return dir_->file("reference.h5"); }
  static std::string out(const std::string& name) { return dir_->file(name); }

  // Stars sorted by (frame_id, star_id), as stored.
  static std::vector<Star> sorted_stars(const std::string& path);
  // Same star records as the reference (memcmp), every frame of the night present with
  // status ok.
  static void expect_same_as_reference(const std::string& path);

  static TempDir* dir_;
  static int frames_;
};

}  // namespace psfphot::test
