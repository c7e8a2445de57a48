#!/usr/bin/python3
"""Write psfphot's bad-input corpus (docs/robustness.md) from a simulated night.

Usage: /usr/bin/python3 make_bad_corpus.py NIGHT OUT

NIGHT is a folder written by `psfphot simulate` (science/, darks/, flats/, night.toml).
OUT receives (nothing here is committed: tests generate it in a temporary folder):

  OUT/science/      the good science frames of NIGHT plus one bad frame per case below
  OUT/darks/, OUT/flats/   copies of NIGHT's calibration frames
  OUT/night.toml    the night over all of them
  OUT/calib/        bad calibration frames for run-level cases:
                    dark_other_exptime.fits, dark_other_size.fits,
                    flat_zeros_negatives.fits, flat_all_zero.fits
  OUT/configs/      broken TOML configs (syntax error, unknown key, wrong type, zero and
                    negative window sizes)
  OUT/not_a_catalogue.h5   a non-HDF5 file, OUT/foreign.h5 an HDF5 file that is not a
                    psfphot catalogue (for --resume)

Bad science frames (file name -> what is wrong):
"""
import os
import shutil
import sys

import h5py
import numpy as np
from astropy.io import fits

BAD_FRAMES = {
    "bad_header_only.fits": "valid header, no data unit at all (truncated after the header)",
    "bad_half_data.fits": "header plus half of the data unit",
    "bad_not_fits.fits": "a text file",
    "bad_empty.fits": "zero bytes",
    "bad_directory.fits": "a directory",
    "bad_naxis1.fits": "a 1-D image (NAXIS = 1)",
    "bad_cube.fits": "a 3-D cube of 3 planes",
    "bad_bitpix.fits": "BITPIX = 12 (not a FITS type)",
    "bad_huge_naxis.fits": "header claims 100000 x 100000 pixels, 1 data block present",
    "bad_nan_inf.fits": "a good frame with NaN and +/-inf pixels (float32)",
    "bad_all_zero.fits": "every pixel 0",
    "bad_all_saturated.fits": "every pixel at SATURATE",
    "bad_other_size.fits": "128 x 128, the masters are the night's size",
    "bad_no_exptime.fits": "EXPTIME removed (the dark cannot be scaled)",
    "bad_no_gain.fits": "GAIN removed (photometric errors without the Poisson term)",
}
__doc__ += "".join(f"  {k:24s} {v}\n" for k, v in BAD_FRAMES.items())


def read(path):
    with fits.open(path) as h:
        return h[0].header.copy(), np.array(h[0].data)


def write(path, data, header):
    fits.PrimaryHDU(data=data, header=header).writeto(path, overwrite=True)


def main(night, out):
    for sub in ("science", "darks", "flats"):
        shutil.copytree(os.path.join(night, sub), os.path.join(out, sub), dirs_exist_ok=True)
    sci = os.path.join(out, "science")
    calib = os.path.join(out, "calib")
    cfgs = os.path.join(out, "configs")
    os.makedirs(calib, exist_ok=True)
    os.makedirs(cfgs, exist_ok=True)
    good = os.path.join(sci, sorted(f for f in os.listdir(sci) if f.startswith("sci_"))[0])
    hdr, img = read(good)
    raw = open(good, "rb").read()
    header_bytes = 2880 * ((raw.find(b"END" + b" " * 77) // 2880) + 1)
    data_bytes = len(raw) - header_bytes
    p = lambda name: os.path.join(sci, name)

    open(p("bad_header_only.fits"), "wb").write(raw[:header_bytes])
    open(p("bad_half_data.fits"), "wb").write(raw[: header_bytes + data_bytes // 2])
    open(p("bad_not_fits.fits"), "w").write("this is not a FITS file\n" * 200)
    open(p("bad_empty.fits"), "wb").close()
    os.makedirs(p("bad_directory.fits"), exist_ok=True)

    write(p("bad_naxis1.fits"), img[0].astype(np.float32), None)
    write(p("bad_cube.fits"), np.stack([img, img, img]).astype(np.float32), None)

    # BITPIX 12 cannot be written by any library: patch the card of a valid file.
    b = bytearray(raw)
    card = b"BITPIX  = " + b"12".rjust(20) + b" " * 50
    i = b.find(b"BITPIX  =")
    b[i : i + 80] = card
    open(p("bad_bitpix.fits"), "wb").write(bytes(b))

    # A header that claims 40 GB of pixels with one block of data behind it.
    h = fits.Header()
    h["SIMPLE"] = True
    h["BITPIX"] = -32
    h["NAXIS"] = 2
    h["NAXIS1"] = 100000
    h["NAXIS2"] = 100000
    h["EXPTIME"] = 60.0
    open(p("bad_huge_naxis.fits"), "wb").write(h.tostring().encode() + b"\0" * 2880)

    f = img.astype(np.float32)
    f[10:20, 10:20] = np.nan
    f[30:32, 40:60] = np.inf
    f[50, 50:70] = -np.inf
    h = hdr.copy()
    for k in ("BZERO", "BSCALE"):
        h.remove(k, ignore_missing=True)
    write(p("bad_nan_inf.fits"), f, h)

    write(p("bad_all_zero.fits"), np.zeros_like(img), hdr)
    write(p("bad_all_saturated.fits"), np.full_like(img, int(hdr["SATURATE"])), hdr)
    write(p("bad_other_size.fits"), img[:128, :128].copy(), hdr)
    h = hdr.copy()
    del h["EXPTIME"]
    write(p("bad_no_exptime.fits"), img, h)
    h = hdr.copy()
    del h["GAIN"]
    write(p("bad_no_gain.fits"), img, h)

    # Calibration frames for run-level cases.
    dark = os.path.join(out, "darks", sorted(os.listdir(os.path.join(out, "darks")))[0])
    dh, dimg = read(dark)
    h = dh.copy()
    h["EXPTIME"] = float(dh["EXPTIME"]) * 2
    write(os.path.join(calib, "dark_other_exptime.fits"), dimg, h)
    write(os.path.join(calib, "dark_other_size.fits"), dimg[:100, :100].copy(), dh)
    flat = os.path.join(out, "flats", sorted(os.listdir(os.path.join(out, "flats")))[0])
    fh, fimg = read(flat)
    ff = fimg.astype(np.float32)
    ff[:, :16] = 0  # a dead column block
    ff[100:110, 100:110] = -50  # negative response
    write(os.path.join(calib, "flat_zeros_negatives.fits"), ff, fh)
    write(os.path.join(calib, "flat_all_zero.fits"), np.zeros_like(ff), fh)

    with open(os.path.join(out, "night.toml"), "w") as t:
        t.write(
            '[night]\nname = "bad corpus"\nscience = ["science/*.fits"]\n'
            'darks = ["darks/*.fits"]\nflats = ["flats/*.fits"]\noutput = "catalogue.h5"\n'
        )

    configs = {
        "syntax_error.toml": '[night]\nscience = ["science/*.fits"\noutput = "x.h5"\n',
        "unknown_key.toml": '[night]\nscience = ["science/*.fits"]\n[detection]\nthreshold_sigmaa = 3\n',
        "wrong_type.toml": '[night]\nscience = ["science/*.fits"]\n[background]\nmesh_px = "sixty-four"\n',
        "zero_window.toml": '[night]\nscience = ["science/*.fits"]\n[moments]\nwindow_px = 0\n',
        "negative_window.toml": '[night]\nscience = ["science/*.fits"]\n[centroid]\nwindow_px = -7\n',
        "zero_mesh.toml": '[night]\nscience = ["science/*.fits"]\n[background]\nmesh_px = 0\n',
        "nomatch_glob.toml": '[night]\nscience = ["nothing_here/*.fits"]\n',
    }
    for name, text in configs.items():
        open(os.path.join(cfgs, name), "w").write(text)

    open(os.path.join(out, "not_a_catalogue.h5"), "w").write("just text, not HDF5\n")
    with h5py.File(os.path.join(out, "foreign.h5"), "w") as h5:
        h5["data"] = np.arange(10)
        h5.attrs["creator"] = "someone else"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
