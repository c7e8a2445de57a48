"""Checks a psfphot night catalogue written through Slurm (used by slurm_night_test.sh).

    /usr/bin/python3 check_catalogue.py CATALOGUE.h5 N_FRAMES complete|partial

complete: /frames holds frame ids 0..N-1 exactly once, all "ok"; /stars is non-empty.
partial:  /frames holds at least one and fewer than N distinct frame ids, all "ok".
Both: every frame's rows [stars_start, stars_start + stars_count) in /stars carry its
frame_id, stars_count == n_stars, no (frame_id, star_id) pair appears twice, and no
/stars row belongs to no frame. Prints a one-line summary; exits 1 naming the problem.
"""
import sys

import h5py
import numpy as np


def fail(msg):
    print(f"check_catalogue: FAIL: {msg}")
    sys.exit(1)


def main():
    path, n_frames, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with h5py.File(path, "r") as f:
        frames = f["frames"][:]
        stars = f["stars"][:]
    ids = frames["frame_id"]
    names = [s.decode() for s in frames["status_name"]]
    if len(np.unique(ids)) != len(ids):
        fail(f"/frames has repeated frame ids: {sorted(ids.tolist())}")
    bad = [(int(i), s) for i, s in zip(ids, names) if s != "ok"]
    if bad:
        fail(f"frames not ok: {bad}")
    if mode == "complete":
        if sorted(ids.tolist()) != list(range(n_frames)):
            fail(f"/frames ids {sorted(ids.tolist())} != 0..{n_frames - 1}")
        if len(stars) == 0:
            fail("/stars is empty")
    elif mode == "partial":
        if not 0 < len(ids) < n_frames:
            fail(f"expected a partial night (1..{n_frames - 1} frames), got {len(ids)}")
        if ids.min() < 0 or ids.max() >= n_frames:
            fail(f"frame ids out of 0..{n_frames - 1}: {sorted(ids.tolist())}")
    else:
        fail(f"unknown mode {mode}")

    owned = np.zeros(len(stars), dtype=bool)
    for row in frames:
        a, n = int(row["stars_start"]), int(row["stars_count"])
        if n != int(row["n_stars"]):
            fail(f"frame {row['frame_id']}: stars_count {n} != n_stars {row['n_stars']}")
        if a < 0 or a + n > len(stars):
            fail(f"frame {row['frame_id']}: rows [{a}, {a + n}) outside /stars ({len(stars)})")
        if n and not np.all(stars["frame_id"][a : a + n] == row["frame_id"]):
            fail(f"frame {row['frame_id']}: its /stars rows carry other frame ids")
        if owned[a : a + n].any():
            fail(f"frame {row['frame_id']}: rows [{a}, {a + n}) overlap another frame")
        owned[a : a + n] = True
    if not owned.all():
        stray = np.unique(stars["frame_id"][~owned]).tolist()
        fail(f"{int((~owned).sum())} /stars rows belong to no frame (frame ids {stray})")
    pairs = stars["frame_id"].astype(np.int64) * (1 << 32) + stars["star_id"].astype(np.int64)
    if len(np.unique(pairs)) != len(pairs):
        fail("duplicate (frame_id, star_id) rows in /stars")
    print(f"check_catalogue: ok ({mode}): {len(ids)} frames, {len(stars)} stars in {path}")


if __name__ == "__main__":
    main()
