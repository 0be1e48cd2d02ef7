"""Matching time against galleries of growing size: ``realtime.matching.match`` (one product
per frame over a precomputed float32 matrix; int8 scores first for large galleries) against the
plain float32 scan and the baseline's per-face loop."""
from __future__ import annotations

import time

import numpy as np

from benchmarks.pipelines import ms_stats
from realtime.matching import match, nearest_rows


def _time(fn, reps: int) -> dict:
    fn()  # warm
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ms_stats(ts)


def time_matching(gallery, queries: np.ndarray, threshold: float, baseline, reps: int, mode: str = "nearest") -> dict:
    """Per-frame match time with 1 and 3 faces (queries: ``(3, d)``), fast and baseline."""
    index = gallery.index()
    out = {"samples": len(index), "people": len(index.names)}
    for m in (1, 3):
        q = queries[:m]
        out[f"fast_{m}"] = _time(lambda: match(gallery.index(), q, threshold, mode), reps)
        out[f"baseline_{m}"] = _time(lambda: baseline.match(index, list(q)), max(3, reps // 4))
    other = "nearest" if mode != "nearest" else "mean"
    out[f"{other}_1"] = _time(lambda: match(gallery.index(), queries[:1], threshold, other), reps)
    # the same exact search without the int8 scores: one float32 product over every sample
    out["float32_1"] = _time(lambda: nearest_rows(queries[:1], index.embeddings, index.sq_norms), reps)
    out["int8"] = index.int8 is not None
    # the floor: one plain read of the float32 matrix (memory bandwidth), whatever the arithmetic
    out["read_floor"] = _time(lambda: index.embeddings.sum(), reps)
    out["mode"], out["other_mode"] = mode, other
    # the fast nearest-sample search (the int8 path; sample-or-mean starts from it) and the
    # baseline's loop agree: same nearest sample, same distance
    fast = match(index, queries, threshold, "nearest")
    slow = baseline.match(index, list(queries))
    out["agree"] = all((f.name == s[0]) and abs(f.distance - s[1]) < 1e-3 for f, s in zip(fast, slow))
    return out
