#pragma once
// Wire format between ranks: a FrameResult as one byte buffer
// (little-endian host layout: all ranks of a job run the same binary on the same
// architecture). Stars travel as raw Star records (trivially copyable). Pure code, no
// MPI, so it is unit-tested without mpirun.
#include <cstdint>
#include <vector>

#include "psfphot/core/frame_result.hpp"

namespace psfphot::farm {

std::vector<std::uint8_t> encode(const FrameResult& r);
FrameResult decode_result(const std::vector<std::uint8_t>& bytes);  // throws std::runtime_error

}  // namespace psfphot::farm
