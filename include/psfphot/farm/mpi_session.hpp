#pragma once
// MpiSession: RAII owner of MPI_Init_thread(MPI_THREAD_FUNNELED) / MPI_Finalize.
// Only the main thread calls MPI (OpenMP threads never do). Works without mpirun too
// (a singleton run is one rank). This is the only place that initialises MPI.
//
// Transport on one node (Open MPI only): before MPI_Init the session asks Open MPI for its
// shared-memory path (pml ob1, btl self,vader) when every rank of the job is on this node
// and nothing chose otherwise. Open MPI's default probes the network transports (UCX, OFI,
// PSM) at every start, which costs ~0.2 s per run on a machine without such hardware
// (docs/clusters.md). Left alone: jobs spanning nodes; launches that do not say how many
// ranks are local (srun's direct launch, hydra, PALS, Flux, ...); a transport set in the
// environment (OMPI_MCA_pml / _btl / _mtl, which is also how `mpirun --mca` passes it) or
// through `mpirun --am` / `--tune` or OMPI_MCA_mca_base_param_files; and a pml, btl or mtl
// *selected* in the site or user mca-params.conf. Exclusion lists there ("pml = ^ucx", as
// Debian's site file has) are kept in spirit: ob1, self and vader are used only when those
// lists do not exclude them.
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace psfphot::farm {

// Lookups of the environment (name -> value) and of files (path -> contents); nullopt when
// unset / unreadable. std::getenv and the file system in production.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
using FileLookup = std::function<std::optional<std::string>(const std::string&)>;

// The OMPI_MCA_* variables to set before MPI_Init (name, value), empty when Open MPI's
// own choice should stay (see above). One node is known from Open MPI's launcher
// (OMPI_COMM_WORLD_SIZE == OMPI_COMM_WORLD_LOCAL_SIZE) or from the absence of any launcher
// (a singleton). The parameter files read: <OPAL_PREFIX or />etc/openmpi/
// openmpi-mca-params.conf, /etc/openmpi/openmpi-mca-params.conf, $HOME/.openmpi/
// mca-params.conf. Pure; thread-safe.
std::vector<std::pair<std::string, std::string>> single_node_transport(const EnvLookup& env,
                                                                       const FileLookup& file);

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
