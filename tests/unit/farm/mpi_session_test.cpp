// single_node_transport: when psfphot asks Open MPI for its shared-memory transport.
#include "psfphot/farm/mpi_session.hpp"

#include <gtest/gtest.h>

#include <map>

namespace psfphot::farm {
namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
}

bool chooses_shared_memory(std::map<std::string, std::string> vars) {
  const auto c = single_node_transport(env_of(std::move(vars)));
  if (c.empty()) return false;
  std::map<std::string, std::string> m(c.begin(), c.end());
  EXPECT_EQ(m.at("OMPI_MCA_pml"), "ob1");
  EXPECT_EQ(m.at("OMPI_MCA_btl"), "self,vader");
  EXPECT_EQ(m.size(), 2u);
  return true;
}

TEST(SingleNodeTransport, AllRanksOnThisNodeUnderMpirun) {
  EXPECT_TRUE(chooses_shared_memory(
      {{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}, {"PMIX_RANK", "1"}}));
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
  // srun's direct launch, MPICH's hydra: the job may span nodes.
  EXPECT_FALSE(chooses_shared_memory({{"SLURM_PROCID", "0"}}));
  EXPECT_FALSE(chooses_shared_memory({{"PMIX_RANK", "0"}}));
  EXPECT_FALSE(chooses_shared_memory({{"PMI_RANK", "0"}}));
}

TEST(SingleNodeTransport, AUsersChoiceWins) {
  for (const char* k : {"OMPI_MCA_pml", "OMPI_MCA_btl", "OMPI_MCA_mtl"}) {
    EXPECT_FALSE(chooses_shared_memory({{k, "ucx"}})) << k;
    EXPECT_FALSE(chooses_shared_memory(
        {{k, "tcp,self"}, {"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}}))
        << k;
  }
}

}  // namespace
}  // namespace psfphot::farm
