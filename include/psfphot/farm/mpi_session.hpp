#pragma once
// MpiSession: RAII owner of MPI_Init_thread(MPI_THREAD_FUNNELED) / MPI_Finalize.
// Only the main thread calls MPI (OpenMP threads never do). Works without mpirun too
// (a singleton run is one rank). This is the only place that initialises MPI.
//
// Transport on one node: before MPI_Init the session asks Open MPI for its shared-memory
// path (pml ob1, btl self,vader) when every rank of the job is on this node and the user
// chose no transport (none of OMPI_MCA_pml, OMPI_MCA_btl, OMPI_MCA_mtl is set). Open MPI's
// default probes the network transports (UCX, OFI, PSM) at every start, which costs
// ~0.2 s per run on a machine without such hardware (docs/clusters.md). Jobs spanning
// nodes, launches that do not say how many ranks are local (srun's direct launch) and
// users' own choices are left alone.
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace psfphot::farm {

// Environment lookup (name -> value, nullopt when unset): std::getenv in production.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// The OMPI_MCA_* variables to set before MPI_Init (name, value; never overwriting a set
// one), empty when the defaults should stay: one node is known from Open MPI's launcher
// (OMPI_COMM_WORLD_SIZE == OMPI_COMM_WORLD_LOCAL_SIZE) or from the absence of any
// launcher (a singleton: no OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK or SLURM_PROCID).
// Pure; thread-safe.
std::vector<std::pair<std::string, std::string>> single_node_transport(const EnvLookup& env);

class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }
  // What the session chose for the transport, for the log ("" when Open MPI's defaults).
  const std::string& transport_note() const { return transport_note_; }
  // Abort every rank with `code` (used when a worker finds the run cannot go on).
  [[noreturn]] void abort(int code) const;

 private:
  int rank_ = 0;
  int size_ = 1;
  std::string transport_note_;
};

}  // namespace psfphot::farm
