#pragma once
// Step 7: crowding check (the teaching lab's `check_stars`). Stars whose centroids lie
// closer than `radius_px` to another star's centroid form groups (friends-of-friends);
// every member of a group is flagged star_flag::kCrowded, and with action kRemove the
// groups are dropped, as the lab does. Stars with a NaN centroid are compared by their
// peak pixel. Thread-safety: pure; deterministic (input order kept).
#include <cstdint>
#include <vector>

namespace psfphot {

enum class CrowdingAction { kFlag, kRemove };

struct CrowdingConfig {
  double radius_px = 8.0;
  CrowdingAction action = CrowdingAction::kFlag;
};

struct Position {
  double x = 0, y = 0;
};

// For each input position: true when it has a neighbour within radius_px.
std::vector<char> find_crowded(const std::vector<Position>& pos, double radius_px);

}  // namespace psfphot
