#!/usr/bin/python3
"""The per-frame pipeline's steps done with SEP and numpy (the peer of bench/compare_peers.sh).

    /usr/bin/python3 bench/peers/sep_pipeline.py RAW.fits DARK.fits FLAT.fits -o stars.csv

Same steps as `psfphot frame` with its defaults, each the natural SEP/numpy way:
calibration (raw - dark * t_sci/t_dark) / (flat / max(flat)), saturated and non-finite
pixels masked; sep.Background (64 px meshes, 3x3 filter) with the mask; sep.extract at
5 sigma of the local RMS on the background-subtracted image with a 7x7 Gaussian filter of
sigma 1.5 px (convolution; psfphot uses 11x11); hot-pixel rule (4 of 8 neighbours
> 0.5 x peak); windowed centroids (sep.winpos, sigma 2 px); crowding: stars with another
within 8 px flagged; widths from the windowed second moments; Gaussian PSF photometry at
the centroid, f = sum(w f p) / sum(w p^2) over an 15x15 stamp, p the pixel-integrated
Gaussian of the frame's median width, w = 1/rms^2. Vectorised numpy throughout (no Python
loop over stars or pixels). Output CSV: x, y (0-based), flux, flux_err, flags.
Needs only Debian packages: python3-sep, python3-astropy, python3-numpy (no scipy).
"""
import argparse
import math
import sys

import numpy as np
import sep
from astropy.io import fits


def read(path):
    with fits.open(path, memmap=False) as h:
        return np.asarray(h[0].data, dtype=np.float32), h[0].header


def erf(x):
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf and scipy is not used.
    s = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
                + 0.254829592) * t * np.exp(-x * x)
    return s * y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raw")
    ap.add_argument("dark")
    ap.add_argument("flat")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()

    raw, hdr = read(a.raw)
    dark, dhdr = read(a.dark)
    flat, _ = read(a.flat)
    t_sci = float(hdr.get("EXPTIME", 1.0))
    t_dark = float(dhdr.get("EXPTIME", t_sci))
    sat = float(hdr.get("SATURATE", 65535.0))
    gain = float(hdr.get("GAIN", 1.0))

    # 1. calibration
    bad_flat = ~(np.isfinite(flat) & (flat > 0))
    resp = flat / np.nanmax(np.where(bad_flat, np.nan, flat))
    resp[bad_flat] = np.nan
    img = (raw - dark * np.float32(t_sci / t_dark)) / resp
    mask = ~np.isfinite(img) | (raw >= sat) | bad_flat
    img[mask] = 0.0
    img = np.ascontiguousarray(img, dtype=np.float32)

    # 2. background
    bkg = sep.Background(img, mask=mask, bw=64, bh=64, fw=3, fh=3)
    sub = img - bkg.back()
    rms = bkg.rms()

    # 3-4. detection: matched Gaussian filter, 5 sigma of the local RMS
    r = 3  # 7x7 (SEP's filter cost grows with the kernel area; SExtractor ships 5x5 ones)
    k1 = np.exp(-0.5 * (np.arange(-r, r + 1) / 1.5) ** 2)
    kern = np.outer(k1, k1)
    kern = (kern / kern.sum()).astype(np.float32)
    # SEP compares the filtered image with thresh * err: scale by the filtered noise so the
    # threshold is 5 sigma of the detection image, as psfphot's rms_scale does.
    thresh = 5.0 * float(np.sqrt((kern.astype(np.float64) ** 2).sum()))
    sep.set_extract_pixstack(5_000_000)
    sep.set_sub_object_limit(4096)
    obj = sep.extract(sub, thresh, err=rms, mask=mask, minarea=3, filter_kernel=kern,
                      filter_type="conv", deblend_cont=0.005, clean=True)
    h, w = sub.shape
    px = np.clip(np.rint(obj["x"]).astype(int), 1, w - 2)
    py = np.clip(np.rint(obj["y"]).astype(int), 1, h - 2)

    # 5. hot-pixel rule on the peak pixel
    peak = sub[py, px]
    nb = np.zeros(len(obj), int)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dx or dy:
                nb += sub[py + dy, px + dx] > 0.5 * peak
    keep = nb >= 4
    obj = obj[keep]

    # 6. windowed centroids
    x, y, wflag = sep.winpos(sub, obj["x"], obj["y"], np.full(len(obj), 2.0), mask=mask)
    ok = np.isfinite(x) & np.isfinite(y)
    x = np.where(ok, x, obj["x"])
    y = np.where(ok, y, obj["y"])
    flags = wflag.astype(np.int64) | obj["flag"].astype(np.int64)

    # 7. crowding: flag stars with a neighbour within 8 px (grid of 8 px cells)
    n = len(x)
    crowded = np.zeros(n, bool)
    if n > 1:
        order = np.argsort(x)
        xs, ys = x[order], y[order]
        for shift in range(1, 64):
            if shift >= n:
                break
            dx = xs[shift:] - xs[:-shift]
            near = (dx < 8.0) & (np.hypot(dx, ys[shift:] - ys[:-shift]) < 8.0)
            if not (dx < 8.0).any():
                break
            crowded[order[shift:][near]] = True
            crowded[order[:-shift][near]] = True
    flags |= crowded.astype(np.int64) << 8

    # 8. widths: windowed second moments from the extraction (x2, y2)
    sig = np.sqrt(np.clip(0.5 * (obj["x2"] + obj["y2"]), 0.1, None))
    good = (flags == 0) & (obj["peak"] < 0.5 * sat)
    sigma = float(np.median(sig[good])) if good.any() else 2.0

    # 9. Gaussian PSF photometry at the centroid (15x15 stamps, all stars at once)
    hs = 7
    ix = np.rint(x).astype(int)
    iy = np.rint(y).astype(int)
    inside = (ix >= hs) & (iy >= hs) & (ix < w - hs) & (iy < h - hs)
    off = np.arange(-hs, hs + 1)
    gx = ix[:, None] + off[None, :]
    gy = iy[:, None] + off[None, :]
    gxc = np.clip(gx, 0, w - 1)
    gyc = np.clip(gy, 0, h - 1)
    s2 = math.sqrt(2.0) * sigma
    px_ = 0.5 * (erf((gx + 0.5 - x[:, None]) / s2) - erf((gx - 0.5 - x[:, None]) / s2))
    py_ = 0.5 * (erf((gy + 0.5 - y[:, None]) / s2) - erf((gy - 0.5 - y[:, None]) / s2))
    p = py_[:, :, None] * px_[:, None, :]
    f = sub[gyc[:, :, None], gxc[:, None, :]]
    var = rms[gyc[:, :, None], gxc[:, None, :]] ** 2
    m = mask[gyc[:, :, None], gxc[:, None, :]]
    wgt = np.where(m, 0.0, 1.0 / var)
    den = (wgt * p * p).sum(axis=(1, 2))
    flux = (wgt * f * p).sum(axis=(1, 2)) / den
    # Star Poisson noise added once with the first estimate, as psfphot's weights do.
    var2 = var + np.clip(flux[:, None, None] * p, 0, None) / gain
    wgt = np.where(m, 0.0, 1.0 / var2)
    den = (wgt * p * p).sum(axis=(1, 2))
    flux = (wgt * f * p).sum(axis=(1, 2)) / den
    ferr = 1.0 / np.sqrt(den)
    flags |= (~inside).astype(np.int64) << 9

    with open(a.output, "w") as out:
        out.write("x,y,flux,flux_err,flags\n")
        np.savetxt(out, np.column_stack([x, y, flux, ferr, flags]), delimiter=",",
                   fmt=["%.4f", "%.4f", "%.3f", "%.3f", "%d"])
    print(f"sep pipeline: {len(x)} stars, PSF sigma {sigma:.3f} px", file=sys.stderr)


if __name__ == "__main__":
    main()
