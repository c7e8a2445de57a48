#!/usr/bin/python3
"""The noise floor under issue 3's false-detection count (docs/scorecard.md, "false detections").

A detection counts as false when it lies > 1.5 px from every true star. At psfphot's depth
(S/N at 50% completeness ~7) two kinds are left, and both are set by noise, not by a step:

1. Faint stars measured > 1.5 px off. A S/N 6 star's position is uncertain by ~0.5 px per
   axis; with a catalogue given, the script sums each detection's chance of landing > 1.5 px
   from its star, exp(-1.5^2 / (2 err^2)), from the catalogue's own centroid errors.
2. Blended faint pairs. Two stars closer than ~2 PSF sigmas make one peak, and the chi^2 a
   two-star fit gains over the best single-star fit (flux and position free, sigma fixed)
   is, without noise,  dchi2 = c(d / sigma, flux ratio) x (combined S/N)^2,  S/N as in
   ../shared/peers/README.md (F / sqrt(4 pi sigma^2 B), background-limited). The table
   below gives c: a pair 3.5 px apart needs combined S/N ~25 for a gain of 30 (psfphot's
   photometry.split_min_dchi2), while the merged faint pairs left have S/N 9-20. A lower
   threshold tried over every detection (chi^2 15-20, session 13) split a single star
   wrongly and removed one false detection of ten.

  /usr/bin/python3 scripts/false_detection_floor.py                  # the table of c
  /usr/bin/python3 scripts/false_detection_floor.py TRUTH.csv [CAT.csv]
      # per frame: truth pairs whose single-star centroid lies > 1.5 px (the match radius)
      # from both stars, by combined S/N and noise-free dchi2; with psfphot's CSV, what it
      # measured at each pair of combined S/N 10-20 that no split test can separate.
numpy only (Debian python3-numpy).
"""
import math
import sys
from collections import defaultdict

import numpy as np

_erf = np.vectorize(math.erf)
_K = np.arange(-18, 19)


def _profile(c, s):
    """Pixel-integrated 1-D Gaussian of unit flux centred at c, on pixels _K."""
    a = (_K - 0.5 - c) / (s * math.sqrt(2))
    b = (_K + 0.5 - c) / (s * math.sqrt(2))
    return 0.5 * (_erf(b) - _erf(a))


def dchi2_per_snr2(d, q, s):
    """Noise-free chi^2 of the best single-star fit to a pair (separation d px, fluxes in
    ratio q <= 1, PSF sigma s px) per combined S/N squared. The best single position lies on
    the pair's axis (symmetry): searched on a grid there; flux by linear least squares."""
    f1, f2 = 1 / (1 + q), q / (1 + q)
    x1, x2 = -d * f2, d * f1
    py = _profile(0.0, s)
    data = np.outer(py, f1 * _profile(x1, s) + f2 * _profile(x2, s))
    best = math.inf
    for x in np.linspace(x1, x2, 81):
        p = np.outer(py, _profile(x, s))
        flux = (data * p).sum() / (p * p).sum()
        best = min(best, ((data - flux * p) ** 2).sum())
    return best * 4 * math.pi * s * s  # chi^2 = sum r^2 / B and S/N^2 = F^2 / (4 pi s^2 B)


def table():
    print("noise-free dchi2 of a two-star fit = c x (combined S/N)^2, PSF sigma 2 px")
    print(f"{'sep px':>7} {'ratio':>6} {'c':>8} {'S/N for dchi2 30':>17}")
    for d in (2.0, 3.0, 3.5, 4.0, 5.0, 6.0):
        for q in (1.0, 0.5):
            c = dchi2_per_snr2(d, q, 2.0)
            print(f"{d:7.1f} {q:6.1f} {c:8.4f} {math.sqrt(30 / c):17.1f}")


def frame(truth_path, cat_path=None):
    tr = np.genfromtxt((l for l in open(truth_path) if not l.startswith('#')), delimiter=',',
                       names=True)
    x, y, flux, snr = tr['x'], tr['y'], tr['flux'], tr['snr']
    cat = None
    if cat_path:
        cat = np.genfromtxt(cat_path, delimiter=',', names=True)
    cells = defaultdict(list)
    for i in range(len(tr)):
        cells[(int(x[i] // 8), int(y[i] // 8))].append(i)
    rows = []
    for i in range(len(tr)):
        if tr['saturated'][i]:
            continue
        for a in range(int(x[i] // 8) - 1, int(x[i] // 8) + 2):
            for b in range(int(y[i] // 8) - 1, int(y[i] // 8) + 2):
                for j in cells.get((a, b), []):
                    d = math.hypot(x[i] - x[j], y[i] - y[j])
                    if j <= i or tr['saturated'][j] or not 2 <= d <= 6:
                        continue
                    hi, lo = (i, j) if flux[i] >= flux[j] else (j, i)
                    q = flux[lo] / flux[hi]
                    total = snr[i] + snr[j]  # same place, same B: S/N adds like flux
                    if d * q / (1 + q) <= 1.5 or total < 7:
                        continue  # the single-star centroid matches the brighter star
                    s = 0.5 * (tr['psf_sigma_px'][i] + tr['psf_sigma_px'][j])
                    rows.append((total, dchi2_per_snr2(d, q, s) * total * total, d, q, hi, lo))
    print(f"{truth_path}: pairs 2-6 px apart whose flux-weighted centre is > 1.5 px from both")
    print(f"{'combined S/N':>13} {'pairs':>6} {'dchi2 < 30':>11}")
    for lo_, hi_ in ((7, 10), (10, 15), (15, 20), (20, 30), (30, math.inf)):
        sel = [r for r in rows if lo_ <= r[0] < hi_]
        print(f"{lo_:>6}-{hi_:<6} {len(sel):6d} {sum(r[1] < 30 for r in sel):11d}")
    if cat is None:
        return
    err = np.sqrt(0.5 * (cat['centroid_err_x'] ** 2 + cat['centroid_err_y'] ** 2))
    err = err[np.isfinite(err)]
    print(f"{cat_path}: {len(err)} detections with errors; expected > 1.5 px from their star by "
          f"noise alone (Gaussian errors, no selection bias): "
          f"{np.exp(-1.5 ** 2 / (2 * err ** 2)).sum():.1f}")
    cx, cy = cat['centroid_x'], cat['centroid_y']
    print("psfphot at the pairs of combined S/N 10-20 with dchi2 < 30 "
          "(distances of each detection within 5 px to the brighter / fainter star):")
    for total, dc, d, q, hi, lo in sorted(rows):
        if not (10 <= total < 20 and dc < 30):
            continue
        mx, my = 0.5 * (x[hi] + x[lo]), 0.5 * (y[hi] + y[lo])
        near = np.where(np.hypot(cx - mx, cy - my) < 5)[0]
        found = ' '.join(f"[S/N {cat['snr'][k]:.1f}: {math.hypot(cx[k] - x[hi], cy[k] - y[hi]):.2f}"
                         f" / {math.hypot(cx[k] - x[lo], cy[k] - y[lo]):.2f} px]" for k in near)
        print(f"  sep {d:.2f} px ratio {q:.2f} S/N {snr[hi]:.1f}+{snr[lo]:.1f} dchi2 {dc:4.0f}: "
              f"{found or 'not detected'}")


if __name__ == '__main__':
    if len(sys.argv) == 1:
        table()
    else:
        frame(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
