#!/usr/bin/python3
"""Table of bench/compare_peers.sh: median wall time and peak RSS per peer, ratios to
psfphot, and the accuracy columns of ../shared/peers/README.md from `psfphot score --json`.

    /usr/bin/python3 bench/peers/summarise.py OUT_DIR
"""
import json
import os
import statistics
import sys

out = sys.argv[1]


def times(name):
    rows = []
    with open(os.path.join(out, name + ".times")) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4:
                rows.append((float(parts[0]), int(parts[1]), float(parts[2]) + float(parts[3])))
    return rows


ps = times("psfphot")
cal = times("sex_cal")
ext = times("sex_extract")
sp = times("sep")
def rss(rows):
    return max(r[1] for r in rows)


peers = {
    "psfphot frame (1 thread)": ([r[0] for r in ps], [r[2] for r in ps], rss(ps)),
    "SExtractor calibration + extraction": ([a[0] + b[0] for a, b in zip(cal, ext)],
                                            [a[2] + b[2] for a, b in zip(cal, ext)],
                                            max(rss(cal), rss(ext))),
    "  of which calibration (numpy/astropy)": ([r[0] for r in cal], [r[2] for r in cal], rss(cal)),
    "  of which source-extractor": ([r[0] for r in ext], [r[2] for r in ext], rss(ext)),
    "SEP/numpy pipeline": ([r[0] for r in sp], [r[2] for r in sp], rss(sp)),
}
if os.path.exists(os.path.join(out, "baseline.times")):
    bl = times("baseline")
    peers["psfphot baseline (BASELINE=...)"] = ([r[0] for r in bl], [r[2] for r in bl], rss(bl))
if os.path.exists(os.path.join(out, "psfphot_thp.times")):
    th = times("psfphot_thp")
    peers["psfphot frame, huge pages (glibc tunable)"] = ([r[0] for r in th], [r[2] for r in th],
                                                         rss(th))
if os.path.exists(os.path.join(out, "psfphot_deep.times")):
    dp = times("psfphot_deep")
    peers["psfphot frame, configs/deep.toml"] = ([r[0] for r in dp], [r[2] for r in dp], rss(dp))
else:
    dp = None
base = statistics.median(peers["psfphot frame (1 thread)"][0])
base_cpu = statistics.median(peers["psfphot frame (1 thread)"][1])
print()
print(f"{'peer':40s} {'wall s':>7s} {'min':>6s} {'max':>6s} {'/psfphot':>9s} {'cpu s':>7s} "
      f"{'/psfphot':>9s} {'RSS MiB':>8s}")
for name, (t, c, m) in peers.items():
    med, cmed = statistics.median(t), statistics.median(c)
    print(f"{name:40s} {med:7.3f} {min(t):6.3f} {max(t):6.3f} {med / base:8.2f}x {cmed:7.2f} "
          f"{cmed / base_cpu:8.2f}x {m / 1024:8.0f}")
print("(wall to 1 ms, cpu = user + sys to 10 ms: medians over the runs; on a loaded machine cpu is\n"
      " the steadier)")
# Same-run pairing: the ratio of each run, then the median of the ratios.
pairs_sex = [(a[0] + b[0]) / p[0] for a, b, p in zip(cal, ext, ps)]
pairs_sep = [s[0] / p[0] for s, p in zip(sp, ps)]
cpu_sex = [(a[2] + b[2]) / p[2] for a, b, p in zip(cal, ext, ps)]
cpu_sep = [s[2] / p[2] for s, p in zip(sp, ps)]
print(f"median of per-run ratios, wall: SExtractor/psfphot {statistics.median(pairs_sex):.2f}x, "
      f"SEP/psfphot {statistics.median(pairs_sep):.2f}x (targets: >= 8x and >= 10x)")
print(f"median of per-run ratios, cpu:  SExtractor/psfphot {statistics.median(cpu_sex):.2f}x, "
      f"SEP/psfphot {statistics.median(cpu_sep):.2f}x")
if dp:
    d_sex = [(a[0] + b[0]) / p[0] for a, b, p in zip(cal, ext, dp)]
    d_sep = [s[0] / p[0] for s, p in zip(sp, dp)]
    dc_sex = [(a[2] + b[2]) / p[2] for a, b, p in zip(cal, ext, dp)]
    dc_sep = [s[2] / p[2] for s, p in zip(sp, dp)]
    print(f"the same against configs/deep.toml, wall: SExtractor {statistics.median(d_sex):.2f}x, "
          f"SEP {statistics.median(d_sep):.2f}x; cpu: SExtractor {statistics.median(dc_sex):.2f}x, "
          f"SEP {statistics.median(dc_sep):.2f}x")

print()
print("accuracy (psfphot score; clean stars with truth S/N >= 20 for the error columns)")
print(f"{'peer':12s} {'compl.clean':>11s} {'false det.':>10s} {'S/N@50%':>8s} {'centroid rms':>12s} "
      f"{'rms/bound':>9s} {'flux ratio':>10s} {'flux scat.':>10s} {'scat/bound':>10s}")
for name, f in (("psfphot", "psfphot.json"), ("psfphot deep", "psfphot_deep.json"),
                ("SExtractor", "sex.json"), ("SEP", "sep.json")):
    p = os.path.join(out, f)
    if not os.path.exists(p):
        continue
    d = json.load(open(p))
    h = d["headline"]

    def g(key, fmt):
        v = h.get(key)
        return format(v, fmt) if isinstance(v, (int, float)) else "-"

    s50 = d.get("snr_at_50pct_completeness")
    print(f"{name:12s} {g('completeness_clean', '11.3f')} {d['counts']['n_false']:10d} "
          f"{(format(s50, '8.1f') if s50 else '-'):>8s} {g('centroid_rms_px', '12.4f')} "
          f"{g('centroid_rms_over_bound', '9.2f')} {g('flux_ratio_median', '10.4f')} "
          f"{g('flux_scatter', '10.4f')} {g('flux_scatter_over_bound', '10.2f')}")
