#pragma once
// Image and ImageView: the pixel containers every algorithm works on.
//
// Pixel convention (written once for the whole project):
//   * 0-based coordinates, x = column (FITS NAXIS1), y = row (FITS NAXIS2);
//   * pixel centres at integer coordinates, so pixel (x, y) covers [x-0.5, x+0.5);
//   * view(x, y) is data[y * stride + x]  (row-major, stride in elements).
// FITS 1-based coordinates appear only inside io/ and in docs.
//
// ImageView<T> is cheap and non-owning, passed by value; it carries an integer
// origin so a cut-out keeps frame coordinates: view.at_frame(fx, fy) addresses the
// pixel whose frame coordinate is (fx, fy). Image<T> owns a contiguous buffer, is
// move-only, and is copied only through clone().
//
// Thread-safety: views are plain values; concurrent reads are safe, concurrent writes
// to distinct pixels are safe, nothing else is synchronised.
#include <sys/mman.h>

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace psfphot {

template <typename T>
class ImageView {
 public:
  ImageView() = default;
  ImageView(T* data, int width, int height, std::ptrdiff_t stride, int origin_x = 0,
            int origin_y = 0)
      : data_(data),
        width_(width),
        height_(height),
        stride_(stride),
        origin_x_(origin_x),
        origin_y_(origin_y) {
    assert(width >= 0 && height >= 0 && stride >= width);
  }
  // A view of T converts to a view of const T.
  template <typename U, typename = std::enable_if_t<std::is_same_v<const U, T>>>
  ImageView(const ImageView<U>& o)  // NOLINT(google-explicit-constructor)
      : ImageView(o.data(), o.width(), o.height(), o.stride(), o.origin_x(), o.origin_y()) {}

  T* data() const { return data_; }
  int width() const { return width_; }
  int height() const { return height_; }
  std::ptrdiff_t stride() const { return stride_; }
  int origin_x() const { return origin_x_; }
  int origin_y() const { return origin_y_; }
  bool empty() const { return width_ == 0 || height_ == 0; }
  std::size_t size() const { return static_cast<std::size_t>(width_) * height_; }

  // Local (view) coordinates, 0 <= x < width.
  T& operator()(int x, int y) const {
    assert(x >= 0 && x < width_ && y >= 0 && y < height_);
    return data_[static_cast<std::ptrdiff_t>(y) * stride_ + x];
  }
  T* row(int y) const { return data_ + static_cast<std::ptrdiff_t>(y) * stride_; }
  bool contains(int x, int y) const { return x >= 0 && y >= 0 && x < width_ && y < height_; }

  // Frame coordinates (local + origin).
  T& at_frame(int fx, int fy) const { return (*this)(fx - origin_x_, fy - origin_y_); }
  bool contains_frame(int fx, int fy) const { return contains(fx - origin_x_, fy - origin_y_); }

  // Sub-view in local coordinates; the origin follows so frame coordinates are kept.
  // The rectangle is clipped to the view.
  ImageView subview(int x0, int y0, int w, int h) const {
    int cx0 = x0 < 0 ? 0 : x0, cy0 = y0 < 0 ? 0 : y0;
    int cx1 = x0 + w > width_ ? width_ : x0 + w, cy1 = y0 + h > height_ ? height_ : y0 + h;
    if (cx1 < cx0) cx1 = cx0;
    if (cy1 < cy0) cy1 = cy0;
    return ImageView(data_ + static_cast<std::ptrdiff_t>(cy0) * stride_ + cx0, cx1 - cx0, cy1 - cy0,
                     stride_, origin_x_ + cx0, origin_y_ + cy0);
  }

 private:
  T* data_ = nullptr;
  int width_ = 0;
  int height_ = 0;
  std::ptrdiff_t stride_ = 0;
  int origin_x_ = 0;
  int origin_y_ = 0;
};

namespace detail {
// Frame-sized mappings freed by PixelAllocator are kept here (up to kMaxBuffers of them and
// kMaxBytes in all) and handed back to the next allocation of the same mapped length: a
// night's frames, and a frame's images made after others were freed, reuse pages that are
// already faulted in instead of paying the first touch again (~1 ms per MiB on the
// reference VM, ~45% of psfphot frame's CPU time at 4096^2 before this pool;
// docs/performance.md). Resident memory stays at the peak the frames reach anyway: a freed
// buffer is kept only until a buffer of its length is asked for, and the cap bounds the rest.
// Thread-safe (one mutex; taken only for frame-sized buffers).
struct MappedBufferPool {
  static constexpr std::size_t kMaxBuffers = 8;
  static constexpr std::size_t kMaxBytes = std::size_t(768) << 20;
  // A kept mapping of exactly `len` bytes, or nullptr.
  static void* take(std::size_t len) noexcept;
  // Keeps the mapping (true) or leaves it to the caller to unmap (false: pool full).
  static bool give(void* p, std::size_t len) noexcept;
};
}  // namespace detail

// Allocator for image pixels. Frame-sized buffers (>= 4 MiB) are their own anonymous
// mappings, 2 MiB aligned and advised MADV_HUGEPAGE: when freed, kept for reuse by
// detail::MappedBufferPool (bounded) or returned to the system (a night's peak memory stays
// a few frames), and first touched in 2 MiB pages instead of
// 4 KiB ones. On this project's reference VM a 4 KiB first touch cost ~19 us, ~60% of
// psfphot frame's CPU time at 4096^2 (docs/performance.md); huge pages cut that 512-fold.
// Where transparent huge pages are off the advice is ignored. Smaller buffers use new.
template <typename T>
struct PixelAllocator {
  using value_type = T;
  static constexpr std::size_t kLarge = std::size_t(4) << 20;
  static constexpr std::size_t kHuge = std::size_t(2) << 20;
  PixelAllocator() = default;
  template <typename U>
  PixelAllocator(const PixelAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  static std::size_t mapped_bytes(std::size_t n) {
    return (n * sizeof(T) + kHuge - 1) / kHuge * kHuge;
  }
  T* allocate(std::size_t n) {
    if (n * sizeof(T) < kLarge) return std::allocator<T>().allocate(n);
    const std::size_t len = mapped_bytes(n);
    if (void* kept = detail::MappedBufferPool::take(len)) return static_cast<T*>(kept);
    void* p =
        mmap(nullptr, len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    // Keep the 2 MiB-aligned part, give back the rest.
    auto* base = static_cast<char*>(p);
    const auto addr = reinterpret_cast<std::uintptr_t>(base);
    char* aligned = base + ((kHuge - addr % kHuge) % kHuge);
    if (aligned > base) munmap(base, static_cast<std::size_t>(aligned - base));
    const std::size_t tail = static_cast<std::size_t>(base + len + kHuge - (aligned + len));
    if (tail > 0) munmap(aligned + len, tail);
    madvise(aligned, len, MADV_HUGEPAGE);
    return reinterpret_cast<T*>(aligned);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n * sizeof(T) < kLarge) {
      std::allocator<T>().deallocate(p, n);
      return;
    }
    if (!detail::MappedBufferPool::give(p, mapped_bytes(n))) munmap(p, mapped_bytes(n));
  }
  // Construction without a value leaves pixels default-initialised (uninitialised for
  // arithmetic types): Image's kNoInit constructor, for buffers the caller overwrites
  // entirely (a FITS read), which would otherwise be written twice.
  template <typename U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const PixelAllocator<U>&) const noexcept {
    return true;
  }
};

// Tag for Image's constructor that leaves the pixels uninitialised.
struct NoInit {};
inline constexpr NoInit kNoInit{};

template <typename T>
class Image {
 public:
  Image() = default;
  Image(int width, int height, T fill = T{})
      : width_(width),
        height_(height),
        data_(static_cast<std::size_t>(width) * static_cast<std::size_t>(height), fill) {
    assert(width >= 0 && height >= 0);
  }
  // Pixels left uninitialised: every one must be written before it is read.
  Image(int width, int height, NoInit)
      : width_(width),
        height_(height),
        data_(static_cast<std::size_t>(width) * static_cast<std::size_t>(height)) {
    assert(width >= 0 && height >= 0);
  }
  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;
  Image(Image&& o) noexcept
      : width_(std::exchange(o.width_, 0)),
        height_(std::exchange(o.height_, 0)),
        data_(std::move(o.data_)) {}
  Image& operator=(Image&& o) noexcept {
    width_ = std::exchange(o.width_, 0);
    height_ = std::exchange(o.height_, 0);
    data_ = std::move(o.data_);
    return *this;
  }
  ~Image() = default;

  Image clone() const {
    Image c;
    c.width_ = width_;
    c.height_ = height_;
    c.data_ = data_;
    return c;
  }

  int width() const { return width_; }
  int height() const { return height_; }
  std::size_t size() const { return data_.size(); }
  bool empty() const { return data_.empty(); }
  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  T& operator()(int x, int y) {
    assert(x >= 0 && x < width_ && y >= 0 && y < height_);
    return data_[static_cast<std::size_t>(y) * width_ + x];
  }
  const T& operator()(int x, int y) const {
    assert(x >= 0 && x < width_ && y >= 0 && y < height_);
    return data_[static_cast<std::size_t>(y) * width_ + x];
  }
  bool contains(int x, int y) const { return x >= 0 && y >= 0 && x < width_ && y < height_; }

  ImageView<T> view() { return ImageView<T>(data_.data(), width_, height_, width_); }
  ImageView<const T> view() const {
    return ImageView<const T>(data_.data(), width_, height_, width_);
  }
  ImageView<const T> cview() const { return view(); }

 private:
  int width_ = 0;
  int height_ = 0;
  std::vector<T, PixelAllocator<T>> data_;
};

}  // namespace psfphot
