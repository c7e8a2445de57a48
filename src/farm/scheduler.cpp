#include "psfphot/farm/scheduler.hpp"

#include <mpi.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <list>
#include <set>
#include <thread>

#include "collectives.hpp"
#include "psfphot/farm/wire.hpp"
#include "psfphot/io/catalogue.hpp"
#include "psfphot/pipeline/logging.hpp"
#include "psfphot/pipeline/process_frame.hpp"

namespace psfphot::farm {
namespace {

constexpr int kTagTask = 1;
constexpr int kTagResult = 2;
// Frames a worker holds: one running, two waiting. Rank 0 refills a worker's queue only
// between its own frames, so a queue of one waiting frame ran dry whenever rank 0 was in
// the middle of a frame (2 ranks ran a night of 0.1 s frames at 1.43x one rank).
constexpr int kQueueDepth = 3;
constexpr std::int64_t kStopTask = -1;

// Rank 0 tells everyone whether a start-up phase worked (0) or not (exit status).
int agree(int status) {
  MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return status;
}

// Every rank's verdict on a phase every rank did (the masters): the worst status wins, so
// a rank that failed alone never goes on with empty masters.
int agree_all(int status) {
  int worst = status;
  MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}

std::vector<std::uint8_t> encode_task(std::int64_t id, const std::string& path) {
  std::vector<std::uint8_t> b(sizeof id + path.size());
  std::memcpy(b.data(), &id, sizeof id);
  std::memcpy(b.data() + sizeof id, path.data(), path.size());
  return b;
}

int worker(const MpiSession& mpi, const pipeline::Config& cfg, const pipeline::Masters& masters,
           const std::function<bool()>& stop_requested) {
  // Results on their way to rank 0, each with its own buffer: a worker does not wait for
  // rank 0 to take a result before it starts its next frame (rank 0 takes them only between
  // its own frames; waiting for that idled a worker ~half a frame per frame).
  struct Pending {
    MPI_Request req = MPI_REQUEST_NULL;
    std::vector<std::uint8_t> bytes;
  };
  std::list<Pending> pending;
  auto reap = [&pending]() {
    for (auto it = pending.begin(); it != pending.end();) {
      int done = 0;
      MPI_Test(&it->req, &done, MPI_STATUS_IGNORE);
      it = done ? pending.erase(it) : std::next(it);
    }
  };
  for (;;) {
    MPI_Status st = wait_for_message(0, kTagTask);
    std::vector<std::uint8_t> task = recv_bytes(st);
    std::int64_t id = 0;
    std::memcpy(&id, task.data(), sizeof id);
    if (id == kStopTask) break;
    const std::string path(reinterpret_cast<const char*>(task.data()) + sizeof id,
                           task.size() - sizeof id);
    FrameResult r;
    if (stop_requested()) {
      r.frame_id = id;
      r.path = path;
      r.status = FrameStatus::kSkipped;
      r.message = "stopped before this frame";
    } else {
      r = pipeline::process_frame(id, path, cfg.frame, masters);
      spdlog::info("frame {} {}: {} stars, {:.0f} ms", id, to_string(r.status), r.stars.size(),
                   r.total_ms);
    }
    r.worker_rank = mpi.rank();
    reap();
    Pending& p = pending.emplace_back();
    p.bytes = encode(r);
    MPI_Isend(p.bytes.data(), static_cast<int>(p.bytes.size()), MPI_BYTE, 0, kTagResult,
              MPI_COMM_WORLD, &p.req);
  }
  for (Pending& p : pending) MPI_Wait(&p.req, MPI_STATUS_IGNORE);
  return 0;
}

struct Coordinator {
  const MpiSession& mpi;
  const pipeline::Config& cfg;
  const pipeline::NightPlan& plan;
  const pipeline::Masters& masters;
  io::CatalogueWriter& writer;
  pipeline::Progress& progress;
  std::deque<std::int64_t> todo;
  std::vector<int> inflight;

  double write_seconds = 0;     // time rank 0 spends in the catalogue writer
  bool worker_stopped = false;  // a worker was signalled (it answered "skipped")
  std::string write_error{};    // the catalogue refused a frame (disk full): the night stops
  void write(FrameResult& r) {
    if (r.status == FrameStatus::kSkipped) {
      // A worker that got SIGTERM skips its queue; the whole night stops then, even if
      // rank 0 itself was not signalled (exit 4, never 0 with frames missing).
      worker_stopped = true;
      return;
    }
    if (!write_error.empty()) return;  // draining the frames in flight after a write error
    const auto t0 = std::chrono::steady_clock::now();
    try {
      writer.append(r);
    } catch (const std::exception& e) {
      // Full disk, RLIMIT_FSIZE, I/O error: the frames committed so far stay intact; stop
      // cleanly (workers told, exit 1) rather than unwind through MPI_Finalize.
      write_error = e.what();
      spdlog::error("{}", write_error);
      return;
    }
    write_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string line = progress.record(r);
    if (r.ok())
      spdlog::info("{}", line);
    else
      spdlog::warn("{}", line);
  }
  void dispatch(int rank) {
    const std::int64_t id = todo.front();
    todo.pop_front();
    send_bytes(encode_task(id, plan.frames[static_cast<std::size_t>(id)]), rank, kTagTask);
    ++inflight[rank];
  }
  // A worker holds up to kQueueDepth frames, and never more than its fair share of the
  // frames left (queued or in flight), so the last frames spread over all ranks, rank 0
  // included. (One frame each once fewer than 2 x ranks were queued left a worker idle at the
  // end of a night until rank 0 finished its own frame and served it the next.)
  void top_up(int rank, bool stopping) {
    const std::size_t left = todo.size() + static_cast<std::size_t>(total_inflight());
    const std::size_t ranks = static_cast<std::size_t>(mpi.size());
    const int depth = static_cast<int>(std::clamp<std::size_t>(
        (left + ranks - 1) / ranks, 1, static_cast<std::size_t>(kQueueDepth)));
    while (!stopping && !todo.empty() && inflight[rank] < depth) dispatch(rank);
  }
  // Receive every result already waiting; refill the sender's queue.
  void serve(bool stopping) {
    for (;;) {
      int flag = 0;
      MPI_Status st;
      MPI_Iprobe(MPI_ANY_SOURCE, kTagResult, MPI_COMM_WORLD, &flag, &st);
      if (!flag) return;
      FrameResult r = decode_result(recv_bytes(st));
      --inflight[st.MPI_SOURCE];
      write(r);
      top_up(st.MPI_SOURCE, stopping);
    }
  }
  int total_inflight() const {
    int n = 0;
    for (int v : inflight) n += v;
    return n;
  }
};

}  // namespace

int run_night(const MpiSession& mpi, const pipeline::Config& cfg, const pipeline::RunOptions& opt,
              const std::function<bool()>& stop_requested) {
  const bool root = mpi.rank() == 0;
  pipeline::NightPlan plan;
  int status = 0;
  if (root) {
    try {
      plan = pipeline::plan_night(cfg, opt);
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      status = 2;
    }
  }
  if (agree(status)) return status;
  // Per-rank log files beside the catalogue (rank 0 made the folder).
  std::string log_dir = plan.log_dir;
  std::vector<std::uint8_t> ld(log_dir.begin(), log_dir.end());
  bcast_bytes_from(ld, 0);
  log_dir.assign(ld.begin(), ld.end());
  if (root) {
    std::error_code ec;
    std::filesystem::create_directories(log_dir, ec);
    if (ec) {
      spdlog::error("{}: cannot create the log folder: {}", log_dir, ec.message());
      status = 2;
    }
  }
  if (agree(status)) return status;
  pipeline::setup_logging(mpi.rank(),
                          opt.quiet ? pipeline::LogLevel::kQuiet : pipeline::LogLevel::kInfo,
                          log_dir + "/rank-" + std::to_string(mpi.rank()) + ".log");
  if (root && !mpi.transport_note().empty())
    spdlog::info("MPI on one node: {} (set OMPI_MCA_pml / OMPI_MCA_btl to choose otherwise)",
                 mpi.transport_note());

  // Masters: built by every rank, a band of rows each, and all-gathered (the calibration
  // file lists travel from rank 0, which planned the night).
  std::vector<std::string> calib = {plan.master_dark, plan.master_flat, plan.mask_file};
  std::vector<std::string> darks = plan.darks, flats = plan.flats;
  if (mpi.size() > 1) {
    bcast_strings(calib);
    bcast_strings(darks);
    bcast_strings(flats);
  }
  pipeline::Masters masters;
  const auto t_masters = std::chrono::steady_clock::now();
  try {
    if (mpi.size() > 1) {
      const auto exchange = make_master_exchange(mpi);
      masters = pipeline::load_masters(calib[0], darks, calib[1], flats, calib[2], cfg.frame,
                                       cfg.night.combine, exchange.get());
    } else {
      masters = pipeline::load_masters(calib[0], darks, calib[1], flats, calib[2], cfg.frame,
                                       cfg.night.combine);
    }
    if (root)
      spdlog::info(
          "masters: dark {} | flat {} | mask {} ({:.2f} s on {} rank(s))",
          masters.dark_source.empty() ? "none" : masters.dark_source,
          masters.flat_source.empty() ? "none" : masters.flat_source,
          masters.mask_source.empty() ? "none" : masters.mask_source,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t_masters).count(),
          mpi.size());
  } catch (const std::exception& e) {
    // With several ranks the work's errors are thrown on every rank alike (the master
    // exchange votes after each piece of work and after allocating, collectives.cpp): rank 0
    // reports them.
    if (root) spdlog::error("calibration frames: {}", e.what());
    status = 1;
  }
  if (agree_all(status)) return 1;

  if (!root) {
    worker(mpi, cfg, masters, stop_requested);
    int final_status = 0;
    MPI_Bcast(&final_status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    // Only rank 0 reports the night's status: a worker leaving with 3 or 4 first would make
    // mpirun abort the job and signal rank 0 while it finalises (a 1-60 s stall or a kill).
    return 0;
  }

  // Rank 0: the catalogue, the queue, its own share of frames.
  std::unique_ptr<io::CatalogueWriter> writer;
  io::CatalogueOptions co;
  co.config_text = plan.config_text;
  const auto mode = opt.mode == pipeline::OutputMode::kResume      ? io::CatalogueMode::kResume
                    : opt.mode == pipeline::OutputMode::kOverwrite ? io::CatalogueMode::kOverwrite
                                                                   : io::CatalogueMode::kCreate;
  try {
    writer = std::make_unique<io::CatalogueWriter>(plan.output, mode, co);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    for (int r = 1; r < mpi.size(); ++r) send_bytes(encode_task(kStopTask, ""), r, kTagTask);
    int st = 1;
    MPI_Bcast(&st, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return st;
  }
  std::set<std::int64_t> done;
  for (auto id : writer->done_frame_ids()) done.insert(id);
  pipeline::Progress progress(static_cast<std::int64_t>(plan.frames.size()),
                              static_cast<std::int64_t>(done.size()));
  Coordinator co_{mpi, cfg, plan, masters, *writer, progress, {}, std::vector<int>(mpi.size(), 0)};
  for (std::size_t i = 0; i < plan.frames.size(); ++i)
    if (!done.count(static_cast<std::int64_t>(i))) co_.todo.push_back(static_cast<std::int64_t>(i));
  spdlog::info("night \"{}\": {} frames, {} already in {}, {} to do on {} rank(s)", cfg.night.name,
               plan.frames.size(), done.size(), plan.output, co_.todo.size(), mpi.size());
  for (int r = 1; r < mpi.size(); ++r) co_.top_up(r, false);

  bool interrupted = false;
  while (!co_.todo.empty() || co_.total_inflight() > 0) {
    const bool stopping = stop_requested() || co_.worker_stopped || !co_.write_error.empty();
    if (stopping && !interrupted) {
      interrupted = true;
      if (co_.write_error.empty())
        spdlog::warn("stop requested: finishing the frames in flight, then closing the catalogue");
      co_.todo.clear();
    }
    co_.serve(stopping);
    if (!co_.todo.empty()) {
      const std::int64_t id = co_.todo.front();
      co_.todo.pop_front();
      FrameResult r = pipeline::process_frame(id, plan.frames[static_cast<std::size_t>(id)],
                                              cfg.frame, masters);
      r.worker_rank = 0;
      co_.write(r);
    } else if (co_.total_inflight() > 0) {
      std::this_thread::sleep_for(kIdleSleep);
    }
  }
  for (int r = 1; r < mpi.size(); ++r) send_bytes(encode_task(kStopTask, ""), r, kTagTask);
  const auto t_close = std::chrono::steady_clock::now();
  try {
    writer->close(!interrupted);
  } catch (const std::exception& e) {
    if (co_.write_error.empty()) co_.write_error = e.what();
    spdlog::error("{}", e.what());
  }
  const double close_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_close).count();
  spdlog::info("{}", progress.summary());
  spdlog::info("catalogue writer on rank 0: {:.2f} s appending, {:.2f} s closing (compression)",
               co_.write_seconds, close_s);
  int final_status = interrupted
                         ? pipeline::kRunInterrupted
                         : (progress.failed() ? pipeline::kRunSomeFramesFailed : pipeline::kRunOk);
  if (!co_.write_error.empty()) {
    final_status = 1;
    spdlog::error(
        "the catalogue {} could not be written; the {} frames committed before are intact: free "
        "space and run again with --resume to finish the night",
        plan.output, done.size() + static_cast<std::size_t>(progress.done()));
  } else if (interrupted) {
    spdlog::warn("stopped on request: run again with --resume to finish the night");
  }
  MPI_Bcast(&final_status, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (!co_.write_error.empty()) {
    // After a failed write HDF5 cannot shut down: its close callbacks, run by
    // MPI_Finalize, crash (H5F__close_cb / H5D_close on the half-closed file). The
    // catalogue on disk is final (committed frames intact), the workers are told: leave
    // now, without MPI_Finalize (under mpirun this adds mpirun's "exited without
    // finalize" note to the messages above).
    spdlog::shutdown();
    std::_Exit(final_status);
  }
  return final_status;
}

}  // namespace psfphot::farm
