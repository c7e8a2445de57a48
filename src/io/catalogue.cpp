// CatalogueWriter. The durability design (SWMR, commit order, resume repair) is in
// docs/catalogue.md; the reasons for each step are in the comments here.
#include "psfphot/io/catalogue.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>
#include <utility>

#include "catalogue_file.hpp"
#include "lock_file.hpp"

namespace psfphot::io {
namespace {

namespace fs = std::filesystem;
using h5::check;
using h5::check_status;
using h5::Handle;

void ignore_sigxfsz() {
  struct sigaction old {};
  if (::sigaction(SIGXFSZ, nullptr, &old) != 0) return;
  if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) return;
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  ::sigaction(SIGXFSZ, &ign, nullptr);
}

void check_folder(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::absolute(path);
  fs::path dir = p.parent_path();
  if (!fs::exists(dir, ec))
    throw CatalogueError(path, "folder " + dir.string() + " does not exist");
  if (!fs::is_directory(dir, ec)) throw CatalogueError(path, dir.string() + " is not a folder");
  if (fs::is_directory(p, ec)) throw CatalogueError(path, "is a folder, not a catalogue file");
}

// Appending needs the file's layout to be this build's: rows in this version's layout would
// not match an older /frames table, and rewriting the night's committed frames into a new
// layout is not a resume's business (their bias columns would be unknown anyway).
// --overwrite is offered last, and for what it is: it throws the committed frames away.
void refuse_other_version(const CatalogueInfo& info, const std::string& path) {
  if (info.schema_version == kCatalogueSchemaVersion) return;
  throw CatalogueError(
      path, "has catalogue schema version " + std::to_string(info.schema_version) +
                " (written by psfphot " + info.software_version +
                "); this psfphot writes version " + std::to_string(kCatalogueSchemaVersion) +
                " and cannot append to it. Write this run to another catalogue (-o NEW.h5), or "
                "finish the night into this one with the psfphot that started it (" +
                info.software_version +
                "); --overwrite would replace this file and discard the frames committed in it");
}

}  // namespace

void check_resumable(const std::string& path) {
  h5::QuietErrors quiet;
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  detail::ReadOpen ro = detail::open_read_only(path);
  refuse_other_version(detail::read_info(ro.file.get(), path), path);
}

struct CatalogueWriter::Impl {
  std::string path;
  CatalogueOptions opt;
  detail::LockFile lock;
  Handle file, stars, frames, star_type, frame_type;
  std::int64_t n_frames = 0;
  std::int64_t n_stars = 0;
  std::set<std::int64_t> done;
  ResumeReport report;
  std::string failed;  // the error that stopped this writer
  bool closed = false;

  Impl(const std::string& p, CatalogueOptions o) : path(p), opt(std::move(o)) {}

  // Opens `at` (the catalogue, or the new file before it is renamed into place).
  void open_swmr(const std::string& at, bool clear_flags) {
    Handle fapl = detail::file_access(clear_flags);
    // Opening with SWMR_WRITE makes every later flush ordered (children before parents),
    // so the file on disk is consistent whenever the process dies. Once open, readers and
    // this writer coexist; but a reader that opened the file a moment before holds its lock
    // until it closes ("unable to lock file", errno 11), e.g. `psfphot info` or a script
    // polling the file: wait for it (up to 10 s) rather than fail the night at start-up.
    hid_t id = -1;
    for (int attempt = 0;; ++attempt) {
      id = H5Fopen(at.c_str(), H5F_ACC_RDWR | H5F_ACC_SWMR_WRITE, fapl.get());
      if (id >= 0 || attempt == 100 ||
          h5::peek_error_stack().find("unable to lock file") == std::string::npos)
        break;
      h5::take_error_stack();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    file = Handle(check(id, path, "cannot open for writing"));
    detail::Tables t = detail::open_tables(file.get(), path, kCatalogueSchemaVersion);
    stars = std::move(t.stars);
    frames = std::move(t.frames);
    star_type = Handle(make_star_type());
    frame_type = Handle(make_frame_row_type());
  }

  void create() {
    const std::string tmp = path + ".creating";
    std::remove(tmp.c_str());
    try {
      // Live tables are uncompressed: an uncompressed chunk is rewritten in place,
      // while a compressed one is recompressed and moved on every append (docs).
      detail::build_catalogue(tmp, path, detail::new_file_meta(opt.config_text), opt, 0);
    } catch (...) {
      std::remove(tmp.c_str());
      throw;
    }
    // Open before the rename: readers never see the catalogue's name before the writer has
    // it open (a reader's lock in between would block this open).
    open_swmr(tmp, false);
    detail::rename_into_place(tmp, path);
  }

  void resume() {
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      create();
      return;
    }
    report.resumed = true;
    haddr_t eoa = 0;
    {
      detail::ReadOpen ro = detail::open_read_only(path);
      // The constructor checked the version before taking the lock; checked again on what is
      // open now, before anything in the file changes (clearing the open mark, extending,
      // truncating).
      refuse_other_version(detail::read_info(ro.file.get(), path), path);
      detail::open_tables(ro.file.get(), path, kCatalogueSchemaVersion);
      report.was_left_open = ro.was_left_open;
      check_status(H5Fget_eoa(ro.file.get(), &eoa), path, "cannot read the end of allocation");
    }
    // A writer killed between allocating space and writing it leaves the file shorter
    // than its superblock's end-of-allocation, which a read-write open refuses
    // ("truncated file"). Nothing committed lives there: extend with zeros (what
    // `h5clear --increment` does).
    auto size = fs::file_size(path, ec);
    if (!ec && size < eoa && ::truncate(path.c_str(), static_cast<off_t>(eoa)) != 0)
      throw CatalogueError(
          path, std::string("cannot extend to its allocated size: ") + std::strerror(errno));
    open_swmr(path, true);
    detail::Committed c =
        detail::committed_state(frames.get(), stars.get(), path, kCatalogueSchemaVersion);
    std::size_t k = c.rows.size();
    std::int64_t end = c.star_rows;
    // "skipped" rows at the end are frames a stopped run never did: drop them so the
    // resumed run writes each frame once.
    while (k > 0 && c.rows[k - 1].status == static_cast<std::int32_t>(FrameStatus::kSkipped)) {
      end = c.rows[k - 1].stars_start;
      --k;
    }
    hsize_t nf = k, ns = static_cast<hsize_t>(end);
    if (static_cast<std::int64_t>(k) != c.frame_total)
      check_status(H5Dset_extent(frames.get(), &nf), path, "cannot truncate /frames");
    if (end != c.star_total)
      check_status(H5Dset_extent(stars.get(), &ns), path, "cannot truncate /stars");
    n_frames = static_cast<std::int64_t>(k);
    n_stars = end;
    report.frames_kept = n_frames;
    report.frames_dropped = c.frame_total - n_frames;
    report.stars_dropped = c.star_total - end;
    for (std::size_t i = 0; i < k; ++i)
      if (c.rows[i].status != static_cast<std::int32_t>(FrameStatus::kSkipped))
        done.insert(c.rows[i].frame_id);
    flush();
  }

  void usable() const {
    if (closed) throw CatalogueError(path, "the writer is closed");
    if (!failed.empty())
      throw CatalogueError(path, "the writer stopped after an earlier error: " + failed);
  }

  void flush() {
    check_status(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), path, "cannot flush");
    if (!opt.sync_each_commit) return;
    void* handle = nullptr;
    if (H5Fget_vfd_handle(file.get(), H5P_DEFAULT, &handle) < 0 || !handle) {
      h5::take_error_stack();
      return;  // not a POSIX-file driver: nothing to fsync
    }
    if (::fsync(*static_cast<int*>(handle)) != 0)
      throw CatalogueError(path, std::string("fsync failed: ") + std::strerror(errno));
  }

  void close_file() {
    stars = {};
    frames = {};
    star_type = {};
    frame_type = {};
    if (file.valid()) check_status(H5Fclose(file.release()), path, "cannot close");
  }

  CloseReport close(bool finalize) {
    CloseReport rep;
    if (closed) return rep;
    closed = true;
    hsize_t size = 0, live = 0;
    bool compressed = false;
    try {
      if (failed.empty()) flush();
      H5Fget_filesize(file.get(), &size);
      live = H5Dget_storage_size(stars.get()) + H5Dget_storage_size(frames.get());
      compressed = detail::is_compressed(stars.get());
      close_file();
    } catch (...) {
      file = {};
      lock.release();
      throw;
    }
    rep.bytes_before = rep.bytes_after = size;
    // Compress a live (uncompressed) file; rewrite a compressed one that appends after a
    // resume have left with more than 20% dead space.
    const hsize_t dead = size > live ? size - live : 0;
    const bool want =
        (opt.deflate_level > 0 && !compressed) || (dead > (1u << 20) && dead * 5 > size);
    if (finalize && failed.empty() && want) {
      try {
        detail::compact_catalogue(path, opt);
        rep.compacted = true;
        std::error_code ec;
        rep.bytes_after = fs::file_size(path, ec);
      } catch (const std::exception& e) {
        rep.compaction_error = e.what();
      }
    }
    lock.release();
    return rep;
  }
};

CatalogueWriter::CatalogueWriter(const std::string& path, CatalogueMode mode,
                                 CatalogueOptions options)
    : impl_(std::make_unique<Impl>(path, std::move(options))) {
  h5::QuietErrors quiet;
  ignore_sigxfsz();
  check_folder(path);
  std::error_code ec;
  if (mode == CatalogueMode::kCreate && fs::exists(path, ec))
    throw CatalogueError(path,
                         "already exists; resume it or overwrite it explicitly (psfphot run "
                         "--resume / --overwrite)");
  // A catalogue this build cannot append to is refused before the lock file is made and the
  // leftovers below are removed: the refusal leaves the folder as it was.
  if (mode == CatalogueMode::kResume) check_resumable(path);
  impl_->lock = detail::LockFile(path);
  // Leftovers of a writer killed while creating or finalizing (never the catalogue).
  std::remove((path + ".creating").c_str());
  std::remove((path + ".compacting").c_str());
  if (mode == CatalogueMode::kResume)
    impl_->resume();
  else
    impl_->create();
}

CatalogueWriter::~CatalogueWriter() {
  if (!impl_) return;
  h5::QuietErrors quiet;
  try {
    impl_->close(false);
  } catch (...) {  // a destructor must not throw; close() reports the same error
  }
}
CatalogueWriter::CatalogueWriter(CatalogueWriter&&) noexcept = default;
CatalogueWriter& CatalogueWriter::operator=(CatalogueWriter&&) noexcept = default;

bool CatalogueWriter::set_config_text(const std::string& text) {
  h5::QuietErrors quiet;
  impl_->usable();
  if (impl_->n_frames == 0) {
    // Nothing committed yet: rebuild the empty catalogue with the text (attributes
    // cannot be added in SWMR mode, and a rebuild is atomic).
    impl_->close_file();
    impl_->opt.config_text = text;
    impl_->create();
    return true;
  }
  return stored_config_text() == text;
}

std::string CatalogueWriter::stored_config_text() const {
  h5::QuietErrors quiet;
  return h5::read_string_attr(impl_->file.get(), "config_text", impl_->path);
}

void CatalogueWriter::append(const FrameResult& r) {
  h5::QuietErrors quiet;
  Impl& w = *impl_;
  w.usable();
  if (r.frame_id < 0) throw CatalogueError(w.path, "frame id must be >= 0");
  if (w.done.count(r.frame_id))
    throw CatalogueError(w.path, "frame " + std::to_string(r.frame_id) +
                                     " is already in the catalogue (refusing to write it twice)");
  for (const Star& s : r.stars)
    if (s.frame_id != r.frame_id)
      throw CatalogueError(w.path, "frame " + std::to_string(r.frame_id) +
                                       " carries a star of frame " + std::to_string(s.frame_id));
  const auto n = static_cast<std::int64_t>(r.stars.size());
  try {
    // Stars first, then the /frames row: the row is the commit marker, so a crash
    // in between leaves stars without a row, which resume truncates away.
    h5::write_rows(w.stars.get(), w.star_type.get(), w.n_stars, n, r.stars.data(), w.path,
                   "stars of frame " + std::to_string(r.frame_id));
    FrameRow row = make_frame_row(r, w.n_stars);
    h5::write_rows(w.frames.get(), w.frame_type.get(), w.n_frames, 1, &row, w.path,
                   "/frames row of frame " + std::to_string(r.frame_id));
    w.flush();
  } catch (const CatalogueError& e) {
    std::string problem = e.what();
    const std::string prefix = "catalogue " + w.path + ": ";
    if (problem.rfind(prefix, 0) == 0) problem.erase(0, prefix.size());
    w.failed = problem;
    throw CatalogueError(w.path,
                         "frame " + std::to_string(r.frame_id) + " was not committed: " + problem,
                         e.hdf5_stack());
  }
  w.n_stars += n;
  ++w.n_frames;
  if (r.status != FrameStatus::kSkipped) w.done.insert(r.frame_id);
}

void CatalogueWriter::flush() {
  h5::QuietErrors quiet;
  impl_->usable();
  try {
    impl_->flush();
  } catch (const CatalogueError& e) {
    impl_->failed = e.what();
    throw;
  }
}

CloseReport CatalogueWriter::close(bool finalize) {
  h5::QuietErrors quiet;
  return impl_->close(finalize);
}

std::vector<std::int64_t> CatalogueWriter::done_frame_ids() const {
  return {impl_->done.begin(), impl_->done.end()};
}
bool CatalogueWriter::is_done(std::int64_t frame_id) const {
  return impl_->done.count(frame_id) > 0;
}
std::int64_t CatalogueWriter::frame_rows() const {
  return impl_->n_frames;
}
std::int64_t CatalogueWriter::star_rows() const {
  return impl_->n_stars;
}
const ResumeReport& CatalogueWriter::resume_report() const {
  return impl_->report;
}
const std::string& CatalogueWriter::path() const {
  return impl_->path;
}

}  // namespace psfphot::io
