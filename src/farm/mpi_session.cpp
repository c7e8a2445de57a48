#include "psfphot/farm/mpi_session.hpp"

#include <mpi.h>

#include <cstdlib>
#include <stdexcept>

namespace psfphot::farm {

std::vector<std::pair<std::string, std::string>> single_node_transport(const EnvLookup& env) {
  // A user's (or a site's) choice of transport always wins.
  for (const char* k : {"OMPI_MCA_pml", "OMPI_MCA_btl", "OMPI_MCA_mtl"})
    if (env(k)) return {};
  const auto world = env("OMPI_COMM_WORLD_SIZE");
  bool one_node = false;
  if (world) {
    // mpirun says how many of the job's ranks share this node.
    const auto local = env("OMPI_COMM_WORLD_LOCAL_SIZE");
    one_node = local && *local == *world;
  } else {
    // No Open MPI launcher: a singleton, unless another launcher (srun, hydra) started us,
    // in which case the job may span nodes and we cannot tell.
    one_node = !env("PMIX_RANK") && !env("PMI_RANK") && !env("SLURM_PROCID");
  }
  if (!one_node) return {};
  return {{"OMPI_MCA_pml", "ob1"}, {"OMPI_MCA_btl", "self,vader"}};
}

MpiSession::MpiSession(int* argc, char*** argv) {
  const auto choice = single_node_transport([](const std::string& k) -> std::optional<std::string> {
    const char* v = std::getenv(k.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  });
  // Open MPI reads OMPI_MCA_* from the environment in MPI_Init; setenv before it is the
  // documented way to set a parameter for this process (no overwrite: see the header).
  for (const auto& [k, v] : choice) {
    ::setenv(k.c_str(), v.c_str(), 0);
    transport_note_ += (transport_note_.empty() ? "" : ", ") + k + "=" + v;
  }
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  if (provided < MPI_THREAD_FUNNELED) {
    // OpenMP threads never call MPI, so FUNNELED is all we need; refuse less.
    MPI_Finalize();
    throw std::runtime_error("MPI library does not provide MPI_THREAD_FUNNELED");
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiSession::abort(int code) const {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

}  // namespace psfphot::farm
