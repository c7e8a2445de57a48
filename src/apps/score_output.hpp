#pragma once
// Rendering of a ScoreReport for `psfphot score`: the readable table and the JSON document
// (schema in docs/score.md). Pure string building, no I/O.
#include <string>

#include "psfphot/algo/score.hpp"

namespace psfphot::apps {

struct ScoreColumns {
  std::string x, y, flux, flags;  // catalogue column names; flux/flags may be empty
  bool one_based = false;         // 1 was subtracted from x and y
};

struct ScoreInputs {
  std::string catalogue, truth;  // paths as given
  ScoreColumns columns;
  ScoreFrame frame;
  ScoreConfig config;
  // HDF5 catalogue: the frame scored (id, name = science file stem); -1 and "" for a CSV.
  long frame_id = -1;
  std::string frame_name;
};

// JSON document, 2-space indented, NaN/inf as null, ends with a newline.
std::string score_to_json(const ScoreInputs& in, const ScoreReport& r);
// Human-readable scorecard (summary lines plus one table row per S/N bin).
std::string score_to_text(const ScoreInputs& in, const ScoreReport& r);

}  // namespace psfphot::apps
