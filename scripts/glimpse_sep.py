#!/usr/bin/python3
"""SEP (SExtractor as a library) on the GLIMPSE cutout, for comparison with psfphot.

Usage: /usr/bin/python3 scripts/glimpse_sep.py OUT.csv [--data DIR]
Writes centroid_x, centroid_y (windowed, 0-based), psf_flux (here: a 3 px radius aperture
sum minus the SEP background, MJy/sr x px; not a PSF flux) and flags, so that
scripts/glimpse_match.py --sep OUT.csv matches it the same way as psfphot's table.
Settings mirror configs/glimpse.toml: 32 px meshes, 3x3 filter, 5 sigma detection.
"""
import argparse

import numpy as np
import sep
from astropy.io import fits

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--data", default="../shared/data/glimpse_irac2_crowded_field")
a = ap.parse_args()
d = fits.getdata(f"{a.data}/spitzer_example_image.fits").astype(np.float64)
bkg = sep.Background(d, bw=32, bh=32, fw=3, fh=3)
sub = d - bkg
rms = bkg.rms()
obj = sep.extract(sub, 5.0, err=rms, minarea=3, deblend_cont=0.001)
x, y, wf = sep.winpos(sub, obj["x"], obj["y"], np.full(len(obj), 0.9))
flux, _, fl = sep.sum_circle(sub, x, y, 3.0, err=rms)
with open(a.out, "w") as f:
    f.write("centroid_x,centroid_y,psf_flux,flags\n")
    for i in range(len(obj)):
        f.write(f"{x[i]:.4f},{y[i]:.4f},{flux[i]:.4f},{int(obj['flag'][i]) | int(wf[i]) | int(fl[i])}\n")
print(f"{len(obj)} objects -> {a.out}")
