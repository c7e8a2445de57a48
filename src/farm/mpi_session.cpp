#include "psfphot/farm/mpi_session.hpp"

#include <mpi.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace psfphot::farm {

namespace {

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return {};
  const auto b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

// Does a component list allow `name`? "" (unset) or an exclusion list ("^a,b") without
// it does; an inclusion list ("a,b") is a choice we must not replace, so it does not.
bool list_allows(const std::string& list, const std::string& name) {
  if (list.empty()) return true;
  if (list[0] != '^') return false;
  std::stringstream ss(list.substr(1));
  for (std::string item; std::getline(ss, item, ',');)
    if (trim(item) == name) return false;
  return true;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> single_node_transport(const EnvLookup& env,
                                                                       const FileLookup& file) {
  // A choice in the environment always wins: `mpirun --mca k v` arrives as OMPI_MCA_k, and
  // --am / --tune / explicit parameter files arrive as file names we do not interpret.
  for (const char* k :
       {"OMPI_MCA_pml", "OMPI_MCA_btl", "OMPI_MCA_mtl", "OMPI_MCA_mca_base_param_files",
        "OMPI_MCA_mca_base_param_file_prefix", "OMPI_MCA_mca_base_envar_file_prefix"})
    if (env(k)) return {};
  const auto world = env("OMPI_COMM_WORLD_SIZE");
  bool one_node = false;
  if (world) {
    // mpirun says how many of the job's ranks share this node.
    const auto local = env("OMPI_COMM_WORLD_LOCAL_SIZE");
    one_node = local && *local == *world;
  } else {
    // No Open MPI launcher: a singleton, unless another launcher started us, in which case
    // the job may span nodes and we cannot tell.
    one_node = true;
    for (const char* k : {"PMIX_RANK", "PMIX_NAMESPACE", "PMI_RANK", "PMI_SIZE", "PMI_FD",
                          "SLURM_PROCID", "PALS_RANKID", "ALPS_APP_PE", "FLUX_TASK_RANK",
                          "MPI_LOCALRANKID", "OMPI_MCA_orte_hnp_uri"})
      if (env(k)) one_node = false;
  }
  if (!one_node) return {};
  // The site's and the user's parameter files (later lines win, like Open MPI reads them).
  std::vector<std::string> paths;
  if (const auto prefix = env("OPAL_PREFIX"))
    paths.push_back(*prefix + "/etc/openmpi-mca-params.conf");
  paths.push_back("/etc/openmpi/openmpi-mca-params.conf");
  if (const auto home = env("HOME")) paths.push_back(*home + "/.openmpi/mca-params.conf");
  std::string pml, btl, mtl;
  for (const auto& p : paths) {
    const auto text = file(p);
    if (!text) continue;
    std::istringstream in(*text);
    for (std::string line; std::getline(in, line);) {
      line = trim(line.substr(0, line.find('#')));
      const auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      const std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
      if (key == "pml") pml = value;
      if (key == "btl") btl = value;
      if (key == "mtl") mtl = value;
    }
  }
  // A selected mtl means the cm pml on purpose; an exclusion list of mtls is irrelevant
  // once ob1 is the pml.
  if (!mtl.empty() && mtl[0] != '^') return {};
  if (!list_allows(pml, "ob1") || !list_allows(btl, "self") || !list_allows(btl, "vader"))
    return {};
  return {{"OMPI_MCA_pml", "ob1"}, {"OMPI_MCA_btl", "self,vader"}};
}

MpiSession::MpiSession(int* argc, char*** argv) {
#ifdef OMPI_MAJOR_VERSION
  const auto choice = single_node_transport(
      [](const std::string& k) -> std::optional<std::string> {
        const char* v = std::getenv(k.c_str());
        return v ? std::optional<std::string>(v) : std::nullopt;
      },
      [](const std::string& path) -> std::optional<std::string> {
        std::ifstream f(path);
        if (!f) return std::nullopt;
        std::ostringstream s;
        s << f.rdbuf();
        return s.str();
      });
  // vader needs a writable /dev/shm; without one keep Open MPI's own choice (tcp).
  if (::access("/dev/shm", W_OK) == 0) {
    // Open MPI reads OMPI_MCA_* from the environment in MPI_Init; setenv before it is the
    // documented way to set a parameter for this process.
    for (const auto& [k, v] : choice) {
      ::setenv(k.c_str(), v.c_str(), 0);
      transport_note_ += (transport_note_.empty() ? "" : ", ") + k + "=" + v;
    }
  }
#endif
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
