#!/usr/bin/python3
"""Calibration for SExtractor's input (bench/compare_peers.sh): SExtractor does not
subtract darks or divide by flats, so the frame is calibrated beforehand, as psfphot does:
(raw - dark * t_sci / t_dark) / (flat / max(flat)); saturated and non-finite pixels and
pixels of a non-positive flat are written as a weight map of 0 (WEIGHT_TYPE MAP_WEIGHT).

    /usr/bin/python3 bench/peers/calibrate.py RAW DARK FLAT OUT.fits WEIGHT.fits
"""
import sys

import numpy as np
from astropy.io import fits

raw_p, dark_p, flat_p, out_p, wgt_p = sys.argv[1:6]
with fits.open(raw_p, memmap=False) as h:
    raw = np.asarray(h[0].data, dtype=np.float32)
    hdr = h[0].header.copy()
with fits.open(dark_p, memmap=False) as h:
    dark = np.asarray(h[0].data, dtype=np.float32)
    t_dark = float(h[0].header.get("EXPTIME", hdr.get("EXPTIME", 1.0)))
with fits.open(flat_p, memmap=False) as h:
    flat = np.asarray(h[0].data, dtype=np.float32)
t_sci = float(hdr.get("EXPTIME", 1.0))
sat = float(hdr.get("SATURATE", 65535.0))
bad_flat = ~(np.isfinite(flat) & (flat > 0))
resp = flat / np.max(flat[~bad_flat])
resp[bad_flat] = 1.0
img = (raw - dark * np.float32(t_sci / t_dark)) / resp
bad = bad_flat | ~np.isfinite(img) | (raw >= sat)
img[~np.isfinite(img)] = 0.0
for k in ("BZERO", "BSCALE", "BITPIX"):
    hdr.remove(k, ignore_missing=True)
fits.PrimaryHDU(img.astype(np.float32), header=hdr).writeto(out_p, overwrite=True)
fits.PrimaryHDU((~bad).astype(np.float32)).writeto(wgt_p, overwrite=True)
