#include "psfphot/algo/crowding.hpp"

#include <cmath>
#include <unordered_map>

namespace psfphot {

std::vector<char> find_crowded(const std::vector<Position>& pos, double radius_px) {
  std::vector<char> crowded(pos.size(), 0);
  if (radius_px <= 0) return crowded;
  // Bucket grid of cell = radius: each pair is compared at most once per neighbour cell,
  // O(n) for realistic densities instead of the lab's O(n^2) double loop.
  auto key = [](long long cx, long long cy) { return (cy << 32) ^ (cx & 0xffffffffLL); };
  std::unordered_map<long long, std::vector<std::size_t>> grid;
  auto cell = [&](double v) { return static_cast<long long>(std::floor(v / radius_px)); };
  for (std::size_t i = 0; i < pos.size(); ++i)
    grid[key(cell(pos[i].x), cell(pos[i].y))].push_back(i);
  const double r2 = radius_px * radius_px;
  for (std::size_t i = 0; i < pos.size(); ++i) {
    const long long cx = cell(pos[i].x), cy = cell(pos[i].y);
    for (long long dy = -1; dy <= 1 && !crowded[i]; ++dy)
      for (long long dx = -1; dx <= 1 && !crowded[i]; ++dx) {
        auto it = grid.find(key(cx + dx, cy + dy));
        if (it == grid.end()) continue;
        for (std::size_t j : it->second) {
          if (j == i) continue;
          const double ddx = pos[j].x - pos[i].x, ddy = pos[j].y - pos[i].y;
          if (ddx * ddx + ddy * ddy < r2) {
            crowded[i] = 1;
            break;
          }
        }
      }
  }
  return crowded;
}

}  // namespace psfphot
