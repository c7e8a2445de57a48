#pragma once
// Internal to src/pipeline (not installed): the photometry step (the last of
// default_steps(), steps.cpp), in its own file for its size: the initial fits, extended
// sources, the residual search, the neighbour passes, deblending and the final star list.
// Thread-safety: as every step (steps.hpp): OpenMP inside, deterministic.
#include <memory>

#include "psfphot/pipeline/steps.hpp"

namespace psfphot::pipeline {

std::unique_ptr<Step> make_photometry_step();

}  // namespace psfphot::pipeline
