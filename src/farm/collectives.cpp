#include "collectives.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <thread>

namespace psfphot::farm {
void send_bytes(const std::vector<std::uint8_t>& b, int dest, int tag) {
  MPI_Send(b.data(), static_cast<int>(b.size()), MPI_BYTE, dest, tag, MPI_COMM_WORLD);
}

MPI_Status wait_for_message(int source, int tag) {
  MPI_Status st;
  int flag = 0;
  for (;;) {
    MPI_Iprobe(source, tag, MPI_COMM_WORLD, &flag, &st);
    if (flag) return st;
    std::this_thread::sleep_for(kIdleSleep);
  }
}

std::vector<std::uint8_t> recv_bytes(const MPI_Status& st) {
  int n = 0;
  MPI_Get_count(&st, MPI_BYTE, &n);
  std::vector<std::uint8_t> b(static_cast<std::size_t>(n));
  MPI_Recv(b.data(), n, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  return b;
}

void bcast_bytes_from(std::vector<std::uint8_t>& b, int root) {
  std::uint64_t n = b.size();
  MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD);
  b.resize(n);
  // In chunks of 1 GiB, so that no int count overflows however large the message.
  constexpr std::uint64_t kChunk = 1u << 30;
  for (std::uint64_t off = 0; off < n; off += kChunk) {
    const int len = static_cast<int>(std::min<std::uint64_t>(kChunk, n - off));
    MPI_Bcast(b.data() + off, len, MPI_BYTE, root, MPI_COMM_WORLD);
  }
}

void bcast_strings(std::vector<std::string>& v) {
  std::vector<std::uint8_t> b;
  for (const auto& s : v) {
    b.insert(b.end(), s.begin(), s.end());
    b.push_back(0);
  }
  bcast_bytes_from(b, 0);
  v.clear();
  std::string cur;
  for (std::uint8_t c : b) {
    if (c == 0) {
      v.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(c));
    }
  }
}

namespace {

// The masters built by every rank (pipeline/masters.hpp): each rank stacks its band of rows
// and the medians of its share of the flats; the bands are then all-gathered, so every rank
// holds the same bytes rank 0 alone would have built (the combination is per pixel), in
// about 1/size of the time, and no rank waits idle for rank 0 to build and broadcast them.
class MpiMasterExchange final : public pipeline::MasterExchange {
 public:
  explicit MpiMasterExchange(const MpiSession& mpi) : mpi_(mpi) {}
  int part() const override { return mpi_.rank(); }
  int parts() const override { return mpi_.size(); }
  void run(const std::function<void()>& work) override {
    std::string err;
    try {
      work();
    } catch (const std::exception& e) {
      err = e.what();
      if (err.empty()) err = "error";
    }
    int mine = err.empty() ? mpi_.size() : mpi_.rank(), first = 0;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == mpi_.size()) return;
    std::vector<std::uint8_t> b(err.begin(), err.end());
    bcast_bytes_from(b, first);
    throw CalibrationError(std::string(b.begin(), b.end()));
  }
  Image<float> gather_rows(const Image<float>& band, int w, int h) override {
    // The whole frame is allocated under a vote like any other work: a rank that cannot
    // (std::bad_alloc on a smaller node) must not leave the others waiting in the gather.
    Image<float> out;
    run([&] { out = Image<float>(w, h, kNoInit); });
    // Counted in rows (a row datatype): no int count overflows before 2^31 rows.
    MPI_Datatype row;
    MPI_Type_contiguous(w, MPI_FLOAT, &row);
    MPI_Type_commit(&row);
    std::vector<int> counts(static_cast<std::size_t>(mpi_.size())), displs(counts.size());
    for (int r = 0; r < mpi_.size(); ++r) {
      const pipeline::RowBand b = pipeline::row_band(h, r, mpi_.size());
      counts[static_cast<std::size_t>(r)] = b.y1 - b.y0;
      displs[static_cast<std::size_t>(r)] = b.y0;
    }
    MPI_Allgatherv(band.data(), band.height(), row, out.data(), counts.data(), displs.data(), row,
                   MPI_COMM_WORLD);
    MPI_Type_free(&row);
    return out;
  }
  void share_values(std::vector<double>& v) override {
    for (std::size_t i = 0; i < v.size(); ++i)
      MPI_Bcast(&v[i], 1, MPI_DOUBLE, static_cast<int>(i % static_cast<std::size_t>(mpi_.size())),
                MPI_COMM_WORLD);
  }

 private:
  const MpiSession& mpi_;
};

}  // namespace

std::unique_ptr<pipeline::MasterExchange> make_master_exchange(const MpiSession& mpi) {
  return std::make_unique<MpiMasterExchange>(mpi);
}

}  // namespace psfphot::farm
