"""The distillation teacher: dlib's ResNet (face_recognition's model) on its own aligned chips.

Training time only (dlib is never imported by ``realtime``). Every photo's face box comes from
``training.data.photo_face_box``, the same box the student's crop starts from; dlib's 5-point
shape predictor aligns a 150x150 chip inside it and the ResNet gives a 128-d unit embedding.
That costs ~0.1 s a face on a CPU without BLAS, so embeddings are computed once, in worker
processes, and cached (keyed on each file's bytes and the detection settings) beside the
crop cache; a cache is saved every few hundred photos, so an interrupted build resumes.

    python -m training.teacher --config models/config.yaml     # build the cache ahead of training
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from tqdm import tqdm

from realtime.config import AlignmentConfig, DetectionConfig, load_config, resolve_path
from realtime.crops import FaceCropper
from realtime.errors import UserError, run_command, setup_logging
from realtime.images import read_image
from training.data import box_settings, file_key, photo_face_box, scan_people, write_private_npz
from training.lfw import read_people_file

log = logging.getLogger(__name__)

EMBEDDING_SIZE = 128
CHIP_SIZE = 150
CHIP_PADDING = 0.25
SAVE_EVERY = 400  # photos between cache saves
CHUNK = 16        # photos per worker task (dlib batches its ResNet over a chunk's chips)

_MODELS: tuple | None = None  # per worker process: (shape predictor, ResNet)
_CROPPER: tuple | None = None  # per worker process: (settings, alignment, FaceCropper built from them)


def _models():
    global _MODELS
    if _MODELS is None:
        try:
            import dlib
            import face_recognition_models as frm
        except ImportError as err:
            raise UserError(f"the dlib teacher needs dlib-bin and face_recognition_models ({err}): "
                            "pip install -r requirements.txt") from None
        _MODELS = (dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
                   dlib.face_recognition_model_v1(frm.face_recognition_model_location()))
    return _MODELS


def _cropper(settings: DetectionConfig, alignment: AlignmentConfig) -> FaceCropper:
    """The worker's FaceCropper (Haar cascade, YuNet): built once per process and settings, not per chunk."""
    global _CROPPER
    if _CROPPER is None or _CROPPER[0] != settings or _CROPPER[1] != alignment:
        _CROPPER = (settings, alignment, FaceCropper(settings, alignment, 112))   # only its boxes are used
    return _CROPPER[2]


def embed_chips(images_rgb: list[np.ndarray], boxes: list) -> np.ndarray:
    """dlib embeddings of one face per image (box = x, y, w, h), as ``(n, 128)`` float32."""
    import dlib
    predictor, resnet = _models()
    chips = []
    for image, (x, y, w, h) in zip(images_rgb, boxes):
        shape = predictor(image, dlib.rectangle(int(x), int(y), int(x + w - 1), int(y + h - 1)))
        chips.append(dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
    if not chips:
        return np.zeros((0, EMBEDDING_SIZE), np.float32)
    return np.asarray(resnet.compute_face_descriptor(chips), dtype=np.float32).reshape(len(chips), EMBEDDING_SIZE)


def _embed_paths(task: tuple[list[str], DetectionConfig, AlignmentConfig]) -> np.ndarray:
    """Worker: embeddings of a chunk of photos, NaN rows where a photo has no usable face."""
    paths, settings, alignment = task
    cropper = _cropper(settings, alignment)
    out = np.full((len(paths), EMBEDDING_SIZE), np.nan, np.float32)
    images, boxes, rows = [], [], []
    for row, path in enumerate(paths):
        try:
            image = read_image(path)
            box, _, _ = photo_face_box(image, cropper)
        except Exception as err:  # noqa: BLE001 - one odd photo must not end a long build
            log.warning("%s: skipped by the teacher (%s)", path, err)
            continue
        if box is not None:
            images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            boxes.append(box)
            rows.append(row)
    if rows:
        out[rows] = embed_chips(images, boxes)
    return out


def cache_path(cache_dir: str | Path, settings: DetectionConfig) -> Path:
    blob = json.dumps({"v": 1, "chip": CHIP_SIZE, "padding": CHIP_PADDING,
                       **box_settings(settings)}, sort_keys=True)
    return Path(cache_dir).expanduser() / f"teacher-dlib-{hashlib.sha256(blob.encode()).hexdigest()[:16]}.npz"


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            keys, emb = data["keys"], data["embeddings"]
            if keys.ndim != 1 or emb.shape != (len(keys), EMBEDDING_SIZE) or emb.dtype != np.float32:
                raise ValueError(f"shapes {keys.shape} and {emb.shape}")
            return dict(zip(keys.tolist(), emb))
    except Exception as err:  # noqa: BLE001 - a bad cache is only lost time
        log.warning("teacher cache %s unreadable (%s): rebuilding it", path, err)
        return {}


def _write(path: Path, entries: dict[str, np.ndarray]) -> None:
    keys = list(entries)
    emb = np.stack([entries[k] for k in keys]) if keys else np.zeros((0, EMBEDDING_SIZE), np.float32)
    write_private_npz(path, keys=np.array(keys, dtype=str), embeddings=emb.astype(np.float32))


def teacher_embeddings(paths: Sequence[str], settings: DetectionConfig, cache_dir: str | Path,
                       workers: int = 2, progress: bool = True, alignment: AlignmentConfig | None = None) -> np.ndarray:
    """``(n, 128)`` teacher embeddings of ``paths`` (NaN rows: no face), from the cache where it has them.

    ``alignment``: the training's (its landmark check decides which detected boxes hold a face)."""
    alignment = alignment or AlignmentConfig()
    path = cache_path(cache_dir, settings)
    cached = _read(path)
    keys = [file_key(p, settings.max_image_bytes) for p in paths]
    todo = sorted({k: p for k, p in zip(keys, paths) if k not in cached}.items())
    if todo:
        log.info("teacher: embedding %d photos with dlib's ResNet (%d cached), %d worker(s); about %.0f min",
                 len(todo), len(cached), workers, len(todo) * 0.1 / max(workers, 1) / 60)
        chunks = [todo[i:i + CHUNK] for i in range(0, len(todo), CHUNK)]
        since_save = 0
        with ProcessPoolExecutor(max(1, workers)) as pool, \
                tqdm(total=len(todo), desc="teacher embeddings", unit="photo", disable=not progress) as bar:
            results = pool.map(_embed_paths, [([p for _, p in c], settings, alignment) for c in chunks])
            for chunk, emb in zip(chunks, results):
                for (key, _), row in zip(chunk, emb):
                    cached[key] = row
                bar.update(len(chunk))
                since_save += len(chunk)
                if since_save >= SAVE_EVERY:
                    _write(path, cached)
                    since_save = 0
        _write(path, cached)
    return np.stack([cached[k] for k in keys]) if keys else np.zeros((0, EMBEDDING_SIZE), np.float32)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.teacher",
                                description="Build the dlib teacher's embedding cache for a training config.")
    p.add_argument("--config", help="config file (default: the project's config.yaml)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    args = p.parse_args(argv)
    setup_logging()
    config = load_config(args.config and str(Path(args.config).resolve()))
    t = config.training
    excluded: set[str] = set()
    for f in t.exclude_people:
        excluded |= read_people_file(resolve_path(f))
    roots = [resolve_path(t.data) / "train", resolve_path(t.data) / "val"] + [resolve_path(d) for d in t.extra_data]
    paths = []
    for root in roots:
        people, _ = scan_people(root)
        paths += [str(p) for name, photos in people.items() if name not in excluded for p in photos]
    emb = teacher_embeddings(paths, config.detection, resolve_path(t.cache_dir), args.workers,
                             alignment=config.alignment)
    print(f"{int(np.isfinite(emb[:, 0]).sum())} of {len(paths)} photos have a teacher embedding "
          f"in {cache_path(resolve_path(t.cache_dir), config.detection)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_command(main))
