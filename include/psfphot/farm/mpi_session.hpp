#pragma once
// MpiSession: RAII owner of MPI_Init_thread(MPI_THREAD_FUNNELED) / MPI_Finalize.
// Only the main thread calls MPI (OpenMP threads never do). Works without mpirun too
// (a singleton run is one rank). This is the only place that initialises MPI.
namespace psfphot::farm {

class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }
  // Abort every rank with `code` (used when a worker finds the run cannot go on).
  [[noreturn]] void abort(int code) const;

 private:
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace psfphot::farm
