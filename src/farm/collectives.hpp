#pragma once
// Internal to farm/: the MPI collectives of the night runner (byte messages, broadcasts)
// and the masters' exchange between ranks. MPI stays in this layer (DESIGN.md).
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "psfphot/farm/mpi_session.hpp"
#include "psfphot/pipeline/masters.hpp"

namespace psfphot::farm {

// How long an idle rank sleeps between polls for a message.
inline constexpr auto kIdleSleep = std::chrono::milliseconds(2);

void send_bytes(const std::vector<std::uint8_t>& b, int dest, int tag);
// Probe without spinning: sleeps between MPI_Iprobe calls until a message matches.
MPI_Status wait_for_message(int source, int tag);
std::vector<std::uint8_t> recv_bytes(const MPI_Status& st);
// Bytes from `root` to every rank (resized on the receivers). Collective.
void bcast_bytes_from(std::vector<std::uint8_t>& b, int root);
// Strings from rank 0 to every rank. Collective.
void bcast_strings(std::vector<std::string>& v);

// The masters built by every rank in row bands (pipeline::MasterExchange over MPI).
std::unique_ptr<pipeline::MasterExchange> make_master_exchange(const MpiSession& mpi);

}  // namespace psfphot::farm
