#pragma once
// The night over MPI ranks (DESIGN.md "MPI"). Rank 0 plans the night; every rank builds a
// band of rows of the masters and the bands are all-gathered (pipeline::MasterExchange, the
// same bytes as one rank building them all); rank 0 owns the catalogue (the only writer) and
// hands frames out dynamically: each worker holds up to three frames (one running, the others
// queued; never more than its fair share of the frames left) so it rarely waits for rank 0,
// and rank 0 processes frames itself between serving results (two ranks on two cores keep
// both cores busy). Results come back as a small header plus raw Star records
// (farm/wire.hpp). Idle waiting polls with short sleeps instead of spinning. Only the main
// thread calls MPI (MPI_THREAD_FUNNELED).
//
// Stop requests (SIGTERM from Slurm's --signal, SIGINT): no new frames are dispatched,
// frames in flight finish and are written, queued ones are skipped, the catalogue is
// closed, and every rank returns pipeline::kRunInterrupted; `--resume` completes it.
// Rank 0 returns the night's exit status (mpirun and srun report it); workers return 0
// once the night is over, so a non-zero status never makes the launcher abort the job.
#include <functional>

#include "psfphot/farm/mpi_session.hpp"
#include "psfphot/pipeline/config.hpp"
#include "psfphot/pipeline/night.hpp"

namespace psfphot::farm {

// Returns an exit status on rank 0 (pipeline::kRunOk, kRunSomeFramesFailed,
// kRunInterrupted, or 1 / 2 for failures at start-up, reported by every rank).
int run_night(const MpiSession& mpi, const pipeline::Config& cfg, const pipeline::RunOptions& opt,
              const std::function<bool()>& stop_requested);

}  // namespace psfphot::farm
