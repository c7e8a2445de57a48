#!/usr/bin/python3
"""Match a psfphot star table (CSV from `psfphot frame`) to the GLIMPSE catalogue.

Usage (from the repository root, with /usr/bin/python3 for astropy):
    /usr/bin/python3 scripts/glimpse_match.py STARS.csv [--radius-px 1.0] [--sep SEP.csv]

The catalogue's (l, b) go to 0-based pixels with astropy's WCS (all_world2pix, origin 0).
Each catalogue source is matched to the nearest psfphot star with a finite centroid within
the radius. Prints the recovered fraction (overall and per f4_5 bin), position offsets, the
flux relation log10(psf_flux * 0.0338 mJy / f4_5) and the linear CAR formula's agreement
with astropy (the C++ test, tests/integration/glimpse_test.cpp, uses that formula).
"""
import argparse
import csv
import sys

import numpy as np
from astropy.io import fits
from astropy.io.votable import parse_single_table
from astropy.wcs import WCS

DATA = "../shared/data/glimpse_irac2_crowded_field"
MJY_PER_PIXEL = 0.0338  # 1 MJy/sr over one (1.2")^2 pixel, in mJy


def load_stars(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    x = np.array([float(r["centroid_x"]) for r in rows])
    y = np.array([float(r["centroid_y"]) for r in rows])
    flux = np.array([float(r.get("psf_flux", "nan")) for r in rows])
    flags = np.array([int(r.get("flags", "0")) for r in rows])
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok], flux[ok], flags[ok]


def match(cx, cy, x, y, radius):
    idx = np.full(len(cx), -1)
    dist = np.full(len(cx), np.inf)
    for i, (a, b) in enumerate(zip(cx, cy)):
        d = np.hypot(x - a, y - b)
        j = int(np.argmin(d))
        if d[j] <= radius:
            idx[i], dist[i] = j, d[j]
    return idx, dist


def report(name, cx, cy, f45, x, y, flux, radius):
    idx, dist = match(cx, cy, x, y, radius)
    ok = idx >= 0
    print(f"== {name}: {len(x)} objects with finite positions")
    print(f"recovered within {radius} px: {ok.sum()}/{len(cx)} = {100 * ok.mean():.1f}%")
    for lo, hi in [(50, 70), (70, 100), (100, 150), (150, 500)]:
        s = (f45 >= lo) & (f45 < hi)
        print(f"  f4_5 {lo:3d}-{hi:3d} mJy: {ok[s].sum()}/{s.sum()}")
    dx = x[idx[ok]] - cx[ok]
    dy = y[idx[ok]] - cy[ok]
    print(f"offset median {np.median(dist[ok]):.3f} px, RMS {np.sqrt(np.mean(dist[ok]**2)):.3f} px;"
          f" mean dx {dx.mean():+.3f} dy {dy.mean():+.3f} px, median dx {np.median(dx):+.3f}"
          f" dy {np.median(dy):+.3f}")
    sx, sy = dx - np.median(dx), dy - np.median(dy)
    sd = np.hypot(sx, sy)
    print(f"about the median shift: RMS {np.sqrt(np.mean(sd**2)):.3f} px, median {np.median(sd):.3f},"
          f" max {sd.max():.3f} px; max offset {dist[ok].max():.3f} px;"
          f" within 0.5 px {(dist <= 0.5).sum()}")
    fl = flux[idx[ok]]
    good = np.isfinite(fl) & (fl > 0)
    if good.any():
        r = np.log10(fl[good] * MJY_PER_PIXEL / f45[ok][good])
        mad = 1.4826 * np.median(np.abs(r - np.median(r)))
        print(f"log10(flux*0.0338/f4_5): median {np.median(r):+.4f} (ratio {10**np.median(r):.3f}),"
              f" RMS {r.std():.4f} dex, 1.4826*MAD {mad:.4f} dex, n = {good.sum()}")
        print(f"  max |log ratio - median| {np.max(np.abs(r - np.median(r))):.3f} dex;"
              f" beyond 0.1 dex: {(np.abs(r - np.median(r)) > 0.1).sum()}")
        print(f"  as magnitudes: RMS {2.5 * r.std():.3f} mag, robust {2.5 * mad:.3f} mag")
        for lo, hi in [(50, 70), (70, 100), (100, 150), (150, 500)]:
            s = (f45[ok][good] >= lo) & (f45[ok][good] < hi)
            if s.any():
                print(f"  f4_5 {lo:3d}-{hi:3d}: median {np.median(r[s]):+.4f} dex, n {s.sum()}")
    missed = np.where(~ok)[0]
    if len(missed):
        nearest = [np.min(np.hypot(x - cx[i], y - cy[i])) for i in missed]
        print("missed (x, y, f4_5, nearest object px):")
        for i, n in zip(missed, nearest):
            print(f"  ({cx[i]:7.2f}, {cy[i]:7.2f}) {f45[i]:6.1f} mJy  {n:.2f}")
    return idx, dist


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("stars")
    ap.add_argument("--radius-px", type=float, default=1.0)
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--sep", help="a second CSV (x, y, flux columns, 0-based) to match the same way")
    a = ap.parse_args()

    header = fits.getheader(f"{a.data}/spitzer_example_image.fits")
    w = WCS(header)
    t = parse_single_table(f"{a.data}/spitzer_example_catalog.xml").to_table()
    l, b, f45 = np.asarray(t["l"]), np.asarray(t["b"]), np.asarray(t["f4_5"])
    cx, cy = w.all_world2pix(l, b, 0)

    # The linear CAR formula the C++ test uses (CRVAL2 = 0, no rotation): agreement check.
    dl = (l - header["CRVAL1"] + 180.0) % 360.0 - 180.0
    lx = header["CRPIX1"] - 1 + dl / header["CD1_1"]
    ly = header["CRPIX2"] - 1 + (b - header["CRVAL2"]) / header["CD2_2"]
    print(f"linear CAR vs astropy: max |dx| {np.max(np.abs(lx - cx)):.2e} px,"
          f" max |dy| {np.max(np.abs(ly - cy)):.2e} px")

    x, y, flux, _ = load_stars(a.stars)
    report("psfphot", cx, cy, f45, x, y, flux, a.radius_px)
    if a.sep:
        sx, sy, sf, _ = load_stars(a.sep)
        report("other", cx, cy, f45, sx, sy, sf, a.radius_px)
    return 0


if __name__ == "__main__":
    sys.exit(main())
