#include "psfphot/farm/wire.hpp"

#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace psfphot::farm {
namespace {

class Writer {
 public:
  template <class T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    raw(&v, sizeof v);
  }
  void put(const std::string& s) {
    put<std::uint64_t>(s.size());
    raw(s.data(), s.size());
  }
  void raw(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    buf.insert(buf.end(), b, b + n);
  }
  std::vector<std::uint8_t> buf;
};

class Reader {
 public:
  explicit Reader(const std::vector<std::uint8_t>& b) : b_(b) {}
  template <class T>
  T get() {
    T v;
    raw(&v, sizeof v);
    return v;
  }
  std::string get_string() {
    const auto n = get<std::uint64_t>();
    need(n);
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  void raw(void* p, std::size_t n) {
    need(n);
    if (n == 0) return;  // an empty vector has no buffer: memcpy(nullptr, ..., 0) is UB
    std::memcpy(p, b_.data() + pos_, n);
    pos_ += n;
  }
  bool at_end() const { return pos_ == b_.size(); }

 private:
  void need(std::size_t n) const {
    if (pos_ + n > b_.size()) throw std::runtime_error("wire: message truncated");
  }
  const std::vector<std::uint8_t>& b_;
  std::size_t pos_ = 0;
};

constexpr std::uint32_t kResultMagic = 0x50535231;  // "PSR1"

}  // namespace

std::vector<std::uint8_t> encode(const FrameResult& r) {
  Writer w;
  w.put(kResultMagic);
  w.put(r.frame_id);
  w.put(r.path);
  w.put(static_cast<std::int32_t>(r.status));
  w.put(r.failed_step);
  w.put(r.message);
  w.put(r.summary.mjd_obs);
  w.put(r.summary.exptime_s);
  w.put(r.summary.filter);
  w.put(r.summary.psf_sigma_px);
  w.put(r.summary.sky_adu);
  w.put(r.summary.sky_rms_adu);
  w.put(r.summary.bias_adu);
  w.put(r.summary.dark_bias_adu);
  w.put(r.summary.n_peaks);
  w.put<std::uint64_t>(r.timings.size());
  for (const auto& t : r.timings) {
    w.put(t.step);
    w.put(t.ms);
  }
  w.put(r.total_ms);
  w.put(r.worker_rank);
  w.put<std::uint64_t>(r.stars.size());
  w.raw(r.stars.data(), r.stars.size() * sizeof(Star));
  return std::move(w.buf);
}

FrameResult decode_result(const std::vector<std::uint8_t>& bytes) {
  Reader rd(bytes);
  if (rd.get<std::uint32_t>() != kResultMagic) throw std::runtime_error("wire: not a frame result");
  FrameResult r;
  r.frame_id = rd.get<std::int64_t>();
  r.path = rd.get_string();
  r.status = static_cast<FrameStatus>(rd.get<std::int32_t>());
  r.failed_step = rd.get_string();
  r.message = rd.get_string();
  r.summary.mjd_obs = rd.get<double>();
  r.summary.exptime_s = rd.get<double>();
  r.summary.filter = rd.get_string();
  r.summary.psf_sigma_px = rd.get<double>();
  r.summary.sky_adu = rd.get<double>();
  r.summary.sky_rms_adu = rd.get<double>();
  r.summary.bias_adu = rd.get<double>();
  r.summary.dark_bias_adu = rd.get<double>();
  r.summary.n_peaks = rd.get<std::int32_t>();
  const auto nt = rd.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < nt; ++i) {
    StepTiming t;
    t.step = rd.get_string();
    t.ms = rd.get<double>();
    r.timings.push_back(t);
  }
  r.total_ms = rd.get<double>();
  r.worker_rank = rd.get<std::int32_t>();
  const auto ns = rd.get<std::uint64_t>();
  if (ns > bytes.size() / sizeof(Star)) throw std::runtime_error("wire: implausible star count");
  r.stars.resize(ns);
  rd.raw(r.stars.data(), ns * sizeof(Star));
  if (!rd.at_end()) throw std::runtime_error("wire: trailing bytes after a frame result");
  return r;
}

}  // namespace psfphot::farm
