#pragma once
// Night-level calibration inputs: master dark, normalised master flat and the user mask,
// built or loaded once per night and shared read-only by every frame (and every thread).
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "psfphot/algo/calibrate.hpp"
#include "psfphot/core/float_plane.hpp"
#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"
#include "psfphot/pipeline/config.hpp"

namespace psfphot::pipeline {

struct Masters {
  Image<float> dark;  // empty = no dark (or a mapped one, below)
  // A master dark file mapped instead of read (load_masters with map_files): its pixels (a
  // view into the mapping), and the mapping they live in (released together).
  FloatPlane dark_mapped;
  std::shared_ptr<const void> dark_mapping;
  // The dark whichever way it is held; empty = no dark.
  FloatPlane dark_plane() const { return dark.empty() ? dark_mapped : FloatPlane(dark.cview()); }
  bool has_dark() const { return !dark_plane().empty(); }
  double dark_exptime_s = std::numeric_limits<double>::quiet_NaN();
  std::string dark_source;             // file(s) it came from, for messages
  std::optional<NormalisedFlat> flat;  // from load_masters: without the `invalid` mask
  std::string flat_source;
  Image<MaskBits> user_mask;  // mask FITS as bits (kUserBackground | kUserDetect); empty = none
  std::string mask_source;
};

// Master dark from raw darks: sigma-clipped mean or median per pixel. All darks must
// share shape and EXPTIME (else an error naming the odd file). Throws std::runtime_error
// (FitsError / CalibrationError) with file names.
Image<float> build_master_dark(const std::vector<std::string>& paths, const CombineConfig& cfg,
                               double* exptime_s);

// Master flat from raw flats: each has the master dark (when `dark` is given; scaled by
// t_flat / dark_exptime_s unless cfg.scale_dark_by_exptime is false: calibration.scale_dark)
// subtracted and is divided by its median, then they are combined. Scaling without a usable EXPTIME
// on a flat or the dark (missing, zero, negative: dark_exptime_scale NaN) is a CalibrationError
// naming the flat and both times, as a science frame fails in calibrate(); it used to fall back to
// an unscaled dark without a word.
Image<float> build_master_flat(const std::vector<std::string>& paths, const CombineConfig& cfg,
                               const Image<float>* dark, double dark_exptime_s);

// How the processes of a job share the building of the masters (farm/ implements it over
// MPI ranks; the pipeline stays MPI-free). Process `part()` of `parts()` builds its band of
// rows of each master (row_band) and the medians of the flats i with i % parts() == part();
// the exchange assembles the rest. Every call is collective: every process makes the same
// calls in the same order.
class MasterExchange {
 public:
  virtual ~MasterExchange() = default;
  virtual int part() const = 0;
  virtual int parts() const = 0;
  // Runs `work` on every process. If it throws on any, every process throws a
  // CalibrationError with the message of the lowest-numbered process that failed.
  virtual void run(const std::function<void()>& work) = 0;
  // The whole image from every process's band: `band` holds rows row_band(h, part(),
  // parts()) of a w x h image.
  virtual Image<float> gather_rows(const Image<float>& band, int w, int h) = 0;
  // values[i] as process i % parts() has it, on every process.
  virtual void share_values(std::vector<double>& values) = 0;
};

// Rows [y0, y1) of part `part` of `parts` (bands of h / parts rows, the first h % parts
// one row taller; with more parts than rows the last parts are empty).
struct RowBand {
  int y0 = 0, y1 = 0;
};
RowBand row_band(int h, int part, int parts);

// Rows `band` of the master dark: bit for bit those rows of build_master_dark (the
// combination is per pixel). `*width`, `*height` (if given) receive the full shape.
// Same checks and errors as build_master_dark.
Image<float> build_master_dark_rows(const std::vector<std::string>& paths, const CombineConfig& cfg,
                                    double* exptime_s, int part, int parts, int* width = nullptr,
                                    int* height = nullptr);

// The median, after the scaled master dark, of each flat i with i % parts == part (0 for
// the others): what build_master_flat divides flat i by. Checks the flats' shapes (against
// each other and the dark) and their exposure times as build_master_flat does; throws
// naming the file. Uses cfg.overscan and cfg.scale_dark_by_exptime.
std::vector<double> flat_medians(const std::vector<std::string>& paths, const Image<float>* dark,
                                 double dark_exptime_s, int part, int parts,
                                 const CombineConfig& cfg = {});

// Rows `band` of the master flat from every flat's median (flat_medians of all parts):
// bit for bit those rows of build_master_flat; a non-positive median is an error naming the
// first such flat, as there.
Image<float> build_master_flat_rows(const std::vector<std::string>& paths, const CombineConfig& cfg,
                                    const Image<float>* dark, double dark_exptime_s,
                                    const std::vector<double>& medians, int part, int parts,
                                    int* width = nullptr, int* height = nullptr);

// Assemble the masters: ready master files, or lists of raw frames, or nothing.
// `mask_file`: non-zero pixels become kUserBackground | kUserDetect.
// With an `exchange`, every process of the job calls this and each builds its share of the
// masters (the same bits on every process, and the same as without an exchange); errors are
// thrown on every process alike.
// `map_files`: master dark and flat files of BITPIX -32 are mapped from their files rather
// than read into memory (io::read_fits_mapped: the same values; no frame-sized copies, whose
// first touch is expensive on virtual machines). For a single frame (`psfphot frame`); a
// night reads them, so that a master file rewritten in place (or a disk error) during the
// night cannot end it with a SIGBUS (a file replaced by rename, as psfphot writes, is safe).
Masters load_masters(const std::string& master_dark, const std::vector<std::string>& darks,
                     const std::string& master_flat, const std::vector<std::string>& flats,
                     const std::string& mask_file, const FrameConfig& cfg,
                     const CombineConfig& combine, MasterExchange* exchange = nullptr,
                     bool map_files = false);

}  // namespace psfphot::pipeline
