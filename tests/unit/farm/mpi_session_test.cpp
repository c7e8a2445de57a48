// single_node_transport: when psfphot asks Open MPI for its shared-memory transport.
#include "psfphot/farm/mpi_session.hpp"

#include <gtest/gtest.h>

#include <map>

namespace psfphot::farm {
namespace {

using Vars = std::map<std::string, std::string>;

std::function<std::optional<std::string>(const std::string&)> lookup(Vars vars) {
  return [vars = std::move(vars)](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
}

// files: path -> contents; HOME is /home/u unless the environment says otherwise.
bool chooses_shared_memory(Vars env, Vars files = {}) {
  env.emplace("HOME", "/home/u");
  const auto c = single_node_transport(lookup(std::move(env)), lookup(std::move(files)));
  if (c.empty()) return false;
  std::map<std::string, std::string> m(c.begin(), c.end());
  EXPECT_EQ(m.at("OMPI_MCA_pml"), "ob1");
  EXPECT_EQ(m.at("OMPI_MCA_btl"), "self,vader");
  EXPECT_EQ(m.size(), 2u);
  return true;
}

const Vars kMpirun2 = {{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}};

TEST(SingleNodeTransport, AllRanksOnThisNodeUnderMpirun) {
  Vars env = kMpirun2;
  env.emplace("PMIX_RANK", "1");  // mpirun sets it too
  EXPECT_TRUE(chooses_shared_memory(env));
  EXPECT_TRUE(
      chooses_shared_memory({{"OMPI_COMM_WORLD_SIZE", "1"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "1"}}));
}

TEST(SingleNodeTransport, SingletonWithoutAnyLauncher) {
  EXPECT_TRUE(chooses_shared_memory({}));
}

TEST(SingleNodeTransport, JobsSpanningNodesKeepTheDefaults) {
  EXPECT_FALSE(
      chooses_shared_memory({{"OMPI_COMM_WORLD_SIZE", "8"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}}));
  // mpirun without the local size: cannot tell.
  EXPECT_FALSE(chooses_shared_memory({{"OMPI_COMM_WORLD_SIZE", "8"}}));
}

TEST(SingleNodeTransport, OtherLaunchersKeepTheDefaults) {
  // srun's direct launch, MPICH's hydra, PMIx launchers, PALS, ALPS, Flux: may span nodes.
  for (const char* k :
       {"SLURM_PROCID", "PMIX_RANK", "PMIX_NAMESPACE", "PMI_RANK", "PMI_SIZE", "PMI_FD",
        "PALS_RANKID", "ALPS_APP_PE", "FLUX_TASK_RANK", "MPI_LOCALRANKID", "OMPI_MCA_orte_hnp_uri"})
    EXPECT_FALSE(chooses_shared_memory({{k, "0"}})) << k;
}

TEST(SingleNodeTransport, AChoiceInTheEnvironmentWins) {
  // `mpirun --mca btl tcp,self` arrives as OMPI_MCA_btl; --am / --tune as file names.
  for (const char* k :
       {"OMPI_MCA_pml", "OMPI_MCA_btl", "OMPI_MCA_mtl", "OMPI_MCA_mca_base_param_files",
        "OMPI_MCA_mca_base_param_file_prefix", "OMPI_MCA_mca_base_envar_file_prefix"}) {
    EXPECT_FALSE(chooses_shared_memory({{k, "ucx"}})) << k;
    Vars env = kMpirun2;
    env.emplace(k, "tcp,self");
    EXPECT_FALSE(chooses_shared_memory(env)) << k;
  }
}

TEST(SingleNodeTransport, ParameterFilesSelectingATransportWin) {
  const std::string site = "/etc/openmpi/openmpi-mca-params.conf";
  const std::string user = "/home/u/.openmpi/mca-params.conf";
  EXPECT_FALSE(chooses_shared_memory(kMpirun2, {{site, "btl = tcp,self\n"}}));
  EXPECT_FALSE(chooses_shared_memory(kMpirun2, {{user, "# mine\npml=ucx  # fast network\n"}}));
  EXPECT_FALSE(chooses_shared_memory(kMpirun2, {{user, "mtl = psm2\n"}}));
  EXPECT_FALSE(chooses_shared_memory({{"OPAL_PREFIX", "/opt/ompi"}},
                                     {{"/opt/ompi/etc/openmpi-mca-params.conf", "btl = tcp"}}));
  // Exclusions that rule out what we would choose are respected too.
  EXPECT_FALSE(chooses_shared_memory(kMpirun2, {{site, "btl = ^vader\n"}}));
  EXPECT_FALSE(chooses_shared_memory(kMpirun2, {{site, "pml = ^ob1,ucx\n"}}));
  // A later file overrides an earlier one, as in Open MPI.
  EXPECT_FALSE(chooses_shared_memory(kMpirun2, {{site, "btl = ^openib"}, {user, "btl = tcp"}}));
}

TEST(SingleNodeTransport, ExclusionListsLikeDebiansSiteFileAllowIt) {
  // /etc/openmpi/openmpi-mca-params.conf as Debian 12 ships it.
  const Vars debian = {{"/etc/openmpi/openmpi-mca-params.conf",
                        "# comment\nbtl_base_warn_component_unused=0\nmtl = ^ofi\n"
                        "btl = ^uct,openib,ofi\npml = ^ucx\nosc = ^ucx,pt2pt\n"}};
  EXPECT_TRUE(chooses_shared_memory(kMpirun2, debian));
  EXPECT_TRUE(chooses_shared_memory({}, debian));
}

}  // namespace
}  // namespace psfphot::farm
