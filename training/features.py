"""The frozen part of an encoder, run once per crop and cached: fine-tuning the rest takes minutes.

SFace costs about 0.57 G multiply-adds a face, and training its depthwise convolutions on two CPU
cores is slow; when only its top layers learn, everything below them gives each crop the same
output at every step. So that output is computed once per crop and view (the crop and its mirror
image, the one augmentation that keeps the frozen part's work valid), stored as float16 in one
``.npz`` per frozen part (no pickle, mode 0600 in a 0700 folder, written by rename), and keyed on
a digest of the crop's bytes (the crop is exactly what the frozen part sees, and it is made from
the photo's bytes by the one preprocessing path) and of the frozen weights.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from realtime.encoder import scale_crops
from training.data import write_private_npz

log = logging.getLogger(__name__)

VIEWS = 2          # the crop, and its mirror image
BATCH = 64


def crop_key(crop: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(crop).tobytes(), digest_size=20).hexdigest()


def weights_digest(model) -> str:
    """Identity of a frozen part: its architecture's output shape and every weight's bytes."""
    digest = hashlib.sha256(str(model.output_shape).encode())
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def _read(path: Path) -> tuple[list[str], np.ndarray | None]:
    if not path.is_file():
        return [], None
    try:
        with np.load(path, allow_pickle=False) as data:
            keys, values = data["keys"], data["features"]
            if keys.ndim != 1 or len(keys) != len(values) or values.dtype != np.float16:
                raise ValueError("keys and features do not match")
            return keys.tolist(), values
    except Exception as err:  # noqa: BLE001 - a bad cache is only lost time
        log.warning("feature cache %s unreadable (%s): rebuilding it", path, err)
        return [], None


def frozen_outputs(trunk, crops: np.ndarray, cache_dir: str | Path | None, progress: bool = True) -> np.ndarray:
    """``(n, 2, *trunk output)`` float16: the trunk on each crop (view 0) and on its mirror (view 1)."""
    shape = (VIEWS,) + tuple(int(v) for v in trunk.output_shape[1:])
    if not len(crops):
        return np.zeros((0,) + shape, np.float16)
    path = Path(cache_dir).expanduser() / f"features-{weights_digest(trunk)[:16]}.npz" if cache_dir else None
    old_keys, old = _read(path) if path else ([], None)
    if old is not None and old.shape[1:] != shape:
        old_keys, old = [], None
    row_of = {k: i for i, k in enumerate(old_keys)}
    keys = [crop_key(c) for c in crops]
    todo = sorted({k: i for i, k in enumerate(keys) if k not in row_of}.values())
    new = np.zeros((len(todo),) + shape, np.float16)
    if todo:
        log.info("frozen layers: computing %d of %d crops (and their mirror images)", len(todo), len(crops))
        for start in tqdm(range(0, len(todo), BATCH), desc="frozen layers", unit="batch", disable=not progress,
                          leave=False):
            x = scale_crops(crops[todo[start:start + BATCH]])
            both = np.concatenate([x, x[:, :, ::-1]])            # the crops, then their mirror images
            out = trunk.predict(both, batch_size=len(both), verbose=0)
            new[start:start + len(x), 0], new[start:start + len(x), 1] = out[:len(x)], out[len(x):]
        for j, i in enumerate(todo):
            row_of[keys[i]] = len(old_keys) + j
        every = new if old is None else np.concatenate([old, new])
        if path:
            write_private_npz(path, keys=np.array(old_keys + [keys[i] for i in todo], dtype=str), features=every)
    else:
        every = old
    return every[[row_of[k] for k in keys]]
