#!/usr/bin/python3
"""Table of a stages_bench JSON output (bench/stages.sh): per stage and frame size the median
time, ns/pixel or us/star, GB/s of its own pixel traffic, and the time as a multiple of the
memory-copy pass of the same size measured in the same run."""
import json
import sys

d = json.load(open(sys.argv[1]))
rows = {}
for b in d["benchmarks"]:
    if b.get("aggregate_name", "median") != "median":
        continue
    name = b.get("run_name", b["name"]).split("/")
    stage, size = name[0].replace("BM_", ""), int(name[1])
    if stage == "FitsRead":
        stage += f" BITPIX {name[2]}"
    rows[(stage, size)] = b

copy = {s: rows[("MemCopy", s)]["cpu_time"] for (st, s) in rows if st == "MemCopy"}
print(f"\n{'stage':22s} {'size':>5s} {'ms':>9s} {'ns/px':>7s} {'us/star':>8s} {'GB/s':>6s} "
      f"{'x copy':>7s}")
for (stage, size), b in sorted(rows.items(), key=lambda kv: (kv[0][1], list(rows).index(kv[0]))):
    ms = b["cpu_time"]  # CPU time, kMillisecond
    px = b.get("Mpx")
    stars = b.get("stars")
    nspx = f"{ms * 1e6 / (px * 1e6):7.2f}" if px else "      -"
    usst = f"{ms * 1e3 / stars:8.2f}" if stars else "       -"
    gbs = f"{b['bytes_per_second'] / 1e9:6.2f}" if "bytes_per_second" in b else "     -"
    ratio = f"{ms / copy[size]:7.1f}" if px and size in copy else "      -"
    print(f"{stage:22s} {size:5d} {ms:9.2f} {nspx} {usst} {gbs} {ratio}")
