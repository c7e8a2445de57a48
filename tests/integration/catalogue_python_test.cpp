// The catalogue as Python users read it: Debian's h5py, astropy and pandas run by
// /usr/bin/python3 on a catalogue written here with known stars. Expected values travel
// as JSON (17 significant digits, so doubles compare exactly).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "psfphot/io/catalogue.hpp"
#include "support/old_catalogue.hpp"
#include "support/test_support.hpp"
#include "unit/io/catalogue_fixtures.hpp"

namespace psfphot::io {
namespace {

using test::run_command;
using test::TempDir;

constexpr const char* kPython = "/usr/bin/python3";

std::string num(double v) {
  if (std::isnan(v)) return "null";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// frames 0 (5 stars), 1 (read-failed), 2 (7 stars); returns the expectation as JSON.
std::string write_known_catalogue(const std::string& path) {
  std::vector<FrameResult> frames = {
      test::fixture_frame(0, 5),
      test::fixture_failed_frame(1, FrameStatus::kReadFailed, "truncated: 2880 of 8640 bytes"),
      test::fixture_frame(2, 7)};
  CatalogueOptions opt;
  opt.config_text = "[detect]\nthreshold_sigma = 5.0\n";
  CatalogueWriter w(path, CatalogueMode::kCreate, opt);
  for (const auto& f : frames) w.append(f);
  w.close();
  std::string stars = "[", fr = "[";
  for (const auto& f : frames) {
    if (fr.size() > 1) fr += ",";
    fr += "[" + std::to_string(f.frame_id) + ",\"" + f.path + "\",\"" + to_string(f.status) +
          "\"," + std::to_string(f.stars.size()) + "," + num(f.summary.mjd_obs) + "," +
          num(f.summary.bias_adu) + "]";
    for (const Star& s : f.stars) {
      if (stars.size() > 1) stars += ",";
      stars += "[" + std::to_string(s.frame_id) + "," + std::to_string(s.star_id) + "," +
               num(s.centroid_x) + "," + num(s.psf_flux) + "," + std::to_string(s.flags) + "," +
               num(s.background) + "]";
    }
  }
  return "{\"stars\":" + stars + "],\"frames\":" + fr + "]}";
}

class CataloguePython : public ::testing::Test {
 protected:
  void SetUp() override {
    // Importing astropy takes seconds: ask once per test program.
    static const test::CommandResult have =
        run_command(std::string(kPython) + " -c 'import h5py, astropy, pandas, numpy'");
    if (have.exit_code != 0)
      GTEST_SKIP() << kPython << " lacks h5py/astropy/pandas (apt-get install python3-h5py "
                   << "python3-astropy python3-pandas): " << have.out;
    path_ = dir_.file("night.h5");
    std::ofstream(dir_.file("expect.json")) << write_known_catalogue(path_);
  }
  // Runs `body` with `p` (catalogue), `e` (expectation) and `nan_eq` defined.
  void run_python(const std::string& body) {
    std::string script = R"(import json, math, sys
p, e = sys.argv[1], json.load(open(sys.argv[2]))
def nan_eq(a, b):
    return (b is None and math.isnan(a)) or a == b
)" + body + "\nprint('PYTHON-OK')\n";
    std::string file = dir_.file("check.py");
    std::ofstream(file) << script;
    auto r = run_command(std::string(kPython) + " " + file + " " + path_ + " " +
                         dir_.file("expect.json"));
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("PYTHON-OK"), std::string::npos) << r.out;
  }
  TempDir dir_;
  std::string path_;
};

TEST_F(CataloguePython, H5pyReadsTablesAndAttributes) {
  run_python(R"(
import h5py
with h5py.File(p, "r") as f:
    st, fr = f["stars"][:], f["frames"][:]
    assert st.dtype.names[:5] == ("frame_id", "star_id", "peak_x", "peak_y", "flags"), st.dtype
    assert len(st.dtype.names) == 19 and st.dtype.itemsize == 136
    assert len(st) == len(e["stars"]), len(st)
    for row, (fid, sid, cx, flux, flags, bg) in zip(st, e["stars"]):
        assert row["frame_id"] == fid and row["star_id"] == sid
        assert nan_eq(row["centroid_x"], cx) and nan_eq(row["psf_flux"], flux), row
        assert row["flags"] == flags and nan_eq(row["background"], bg)
    assert len(fr) == 3
    assert fr.dtype.itemsize == 1224 and "dark_bias_adu" in fr.dtype.names
    for row, (fid, path, status, count, mjd, bias) in zip(fr, e["frames"]):
        assert row["frame_id"] == fid and row["path"].decode() == path
        assert row["status_name"].decode() == status and row["stars_count"] == count
        assert row["mjd_obs"] == mjd and nan_eq(row["bias_adu"], bias), row
    assert fr["message"][1].decode() == "truncated: 2880 of 8640 bytes"
    assert fr["stars_start"][2] == 5
    assert f.attrs["psfphot_schema_version"] == 2
    assert f.attrs["config_text"] == "[detect]\nthreshold_sigma = 5.0\n"
    assert len(f.attrs["git_hash"]) > 0 and len(f.attrs["software_version"]) > 0
    units = dict(zip(f["stars"].attrs["column_names"], f["stars"].attrs["column_units"]))
    assert units["centroid_x"] == "pix" and units["psf_flux"] == "adu", units
    assert list(f["stars"].attrs["flag_bit_names"])[:2] == ["edge", "saturated"]
    assert list(f["frames"].attrs["status_names"])[1] == "read-failed"
)");
}

TEST_F(CataloguePython, AstropyTableShowsUnits) {
  run_python(R"(
import warnings
from astropy.table import Table
import astropy.units as u
with warnings.catch_warnings():
    warnings.simplefilter("error")  # astropy must not complain about the metadata
    t = Table.read(p, path="stars")
    fr = Table.read(p, path="frames")
assert str(t["centroid_x"].unit) == "pix", t["centroid_x"].unit
assert t["centroid_x"].unit == u.pix
assert t["psf_flux"].unit == u.adu and t["background"].unit == u.adu / u.pix
assert t["ra_deg"].unit == u.deg and t["snr"].unit == u.dimensionless_unscaled
assert t["frame_id"].unit is None and t["flags"].unit is None
assert "centroid" in t["centroid_x"].description
assert len(t) == len(e["stars"])
for i, (fid, sid, cx, flux, flags, bg) in enumerate(e["stars"]):
    assert t["frame_id"][i] == fid and nan_eq(t["centroid_x"][i], cx)
    assert nan_eq(t["psf_flux"][i], flux)
q = t["psf_flux"].quantity
assert q.unit == u.adu
assert fr["mjd_obs"].unit == u.day and fr["exptime_s"].unit == u.s
assert fr["total_ms"].unit == u.ms and fr["psf_sigma_px"].unit == u.pix
assert fr["bias_adu"].unit == u.adu and fr["dark_bias_adu"].unit == u.adu
assert "overscan" in fr["bias_adu"].description
for i, f in enumerate(e["frames"]):
    assert nan_eq(fr["bias_adu"][i], f[5])
assert fr["status_name"][1] in (b"read-failed", "read-failed")
assert "edge=1" in t.meta["flag_bits"], t.meta
assert int(t.meta["psfphot_schema_version"]) == 2
)");
}

TEST_F(CataloguePython, PandasDataFrame) {
  run_python(R"(
import h5py, pandas as pd
df = pd.DataFrame(h5py.File(p, "r")["stars"][:])
assert list(df.columns)[:3] == ["frame_id", "star_id", "peak_x"]
assert len(df) == len(e["stars"])
counts = df.groupby("frame_id").size().to_dict()
assert counts == {0: 5, 2: 7}, counts
for i, (fid, sid, cx, flux, flags, bg) in enumerate(e["stars"]):
    assert nan_eq(df["centroid_x"].iloc[i], cx) and nan_eq(df["psf_flux"].iloc[i], flux)
frames = pd.DataFrame(h5py.File(p, "r")["frames"][:])
frames["path"] = frames["path"].str.decode("utf-8")
assert frames.loc[1, "path"] == e["frames"][1][1]
assert frames["stars_count"].tolist() == [5, 0, 7]
)");
}

// A catalogue of schema version 1 (before the bias columns): h5py, astropy and pandas read
// it as before, the columns are simply absent (docs/python.md).
TEST_F(CataloguePython, Version1CatalogueHasNoBiasColumns) {
  test::make_schema_version_1(path_);
  run_python(R"(
import warnings
import h5py, pandas as pd
from astropy.table import Table
import astropy.units as u
with h5py.File(p, "r") as f:
    fr = f["frames"][:]
    assert f.attrs["psfphot_schema_version"] == 1
    assert fr.dtype.itemsize == 1208 and "bias_adu" not in fr.dtype.names, fr.dtype
    assert [r[0] for r in e["frames"]] == list(fr["frame_id"])
    assert list(fr["mjd_obs"]) == [r[4] for r in e["frames"]]
with warnings.catch_warnings():
    warnings.simplefilter("error")
    t = Table.read(p, path="frames")
assert "bias_adu" not in t.colnames and t["sky_adu"].unit == u.adu / u.pix
assert t["total_ms"].unit == u.ms and int(t.meta["psfphot_schema_version"]) == 1
df = pd.DataFrame(h5py.File(p, "r")["frames"][:])
assert "bias_adu" not in df.columns and df["stars_count"].tolist() == [5, 0, 7]
)");
}

// A writer killed mid-night: h5py reads the file in SWMR mode at once; after a resume
// it is an ordinary HDF5 file again for every reader.
TEST_F(CataloguePython, KilledWriterFileIsReadable) {
  std::string path = dir_.file("killed.h5");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    try {
      CatalogueWriter w(path, CatalogueMode::kCreate);
      for (std::int64_t k = 0;; ++k) {
        w.append(test::fixture_frame(k, 200));
        (void)!::write(fds[1], &k, sizeof k);
      }
    } catch (...) {
    }
    ::_exit(1);
  }
  ::close(fds[1]);
  std::int64_t k = -1;
  for (int i = 0; i < 3; ++i) ASSERT_EQ(::read(fds[0], &k, sizeof k), ssize_t{sizeof k});
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::close(fds[0]);
  auto r = run_command(std::string(kPython) + " -c 'import h5py; f = h5py.File(\"" + path +
                       "\", \"r\", swmr=True); n = len(f[\"frames\"]); assert n >= 3, n; "
                       "print(\"SWMR-OK\")'");
  EXPECT_NE(r.out.find("SWMR-OK"), std::string::npos) << r.out;
  {
    CatalogueWriter w(path, CatalogueMode::kResume);
    EXPECT_TRUE(w.resume_report().was_left_open);
    EXPECT_GE(w.resume_report().frames_kept, 3);
    w.close(false);
  }
  r = run_command(std::string(kPython) + " -c 'from astropy.table import Table; t = Table.read(\"" +
                  path + "\", path=\"stars\"); assert str(t[\"centroid_y\"].unit) == \"pix\"; " +
                  "assert len(t) >= 600, len(t); print(\"PLAIN-OK\")'");
  EXPECT_NE(r.out.find("PLAIN-OK"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace psfphot::io
