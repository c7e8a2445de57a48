#include "psfphot/core/image.hpp"

#include <mutex>
#include <vector>

namespace psfphot::detail {
namespace {

struct Kept {
  void* p;
  std::size_t len;
};

struct Pool {
  std::mutex mu;
  std::vector<Kept> kept;  // at most kMaxBuffers, most recently freed last
  std::size_t bytes = 0;
};

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: buffers may be freed during static teardown
  return *p;
}

}  // namespace

void* MappedBufferPool::take(std::size_t len) noexcept {
  Pool& pl = pool();
  std::lock_guard<std::mutex> lock(pl.mu);
  // The most recently freed buffer of that length: the likeliest to be in cache.
  for (std::size_t i = pl.kept.size(); i-- > 0;) {
    if (pl.kept[i].len != len) continue;
    void* p = pl.kept[i].p;
    pl.kept.erase(pl.kept.begin() + static_cast<std::ptrdiff_t>(i));
    pl.bytes -= len;
    return p;
  }
  return nullptr;
}

bool MappedBufferPool::give(void* p, std::size_t len) noexcept {
  Pool& pl = pool();
  std::lock_guard<std::mutex> lock(pl.mu);
  if (pl.kept.size() >= kMaxBuffers || pl.bytes + len > kMaxBytes) return false;
  try {
    pl.kept.push_back({p, len});
  } catch (...) {
    return false;
  }
  pl.bytes += len;
  return true;
}

}  // namespace psfphot::detail
