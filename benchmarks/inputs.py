"""Benchmark inputs built from ``$FACES_DATA``; everything is written under a temp folder.

* synthetic videos: a fixed textured background with 0, 1 or 3 talking heads (frames of the
  ``videos/`` clips, scaled into tiles) pasted on it, so faces move as in a real camera feed;
* the celebrity5 test video: each val photo letterboxed into a 480x480 frame and held for
  several frames (as ``tests/test_cli.py`` builds it);
* galleries: real people (4 celebrities from ``celebrity5/train``, each clip's person from its
  first frames) plus random unit vectors up to the wanted size.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.errors import UserError
from realtime.images import IMAGE_SUFFIXES, read_image

log = logging.getLogger(__name__)

PEOPLE = ["ben_afflek", "elton_john", "jerry_seinfeld", "madonna", "mindy_kaling"]
STRANGER = "mindy_kaling"       # not enrolled: must come out unknown
FPS = 25.0

# (width, height) -> {faces: [(x, y, side), ...]} tile layout of the pasted talking heads
LAYOUTS = {
    (640, 480): {0: [], 1: [(180, 100, 280)], 3: [(10, 140, 200), (220, 140, 200), (430, 140, 200)]},
    (1280, 720): {0: [], 1: [(430, 150, 420)], 3: [(20, 160, 400), (440, 160, 400), (860, 160, 400)]},
}


class DataError(UserError):
    """Missing or unusable benchmark data: reported as one line."""


def data_flag(parser: argparse.ArgumentParser) -> None:
    """Every benchmark's ``--data``: the shared faces data folder, $FACES_DATA by default."""
    parser.add_argument("--data", default=os.environ.get("FACES_DATA"),
                        help="the shared faces data folder (videos/, celebrity5/, lfw/); default $FACES_DATA")


def data_folder(given: str | Path | None, needs: tuple[str, ...] = ()) -> Path:
    """The folder ``--data`` or $FACES_DATA names, holding ``needs``; else a DataError saying where to point."""
    if not given:
        raise DataError("no data: pass --data DIR or set $FACES_DATA to the shared faces data folder")
    data = Path(given).expanduser().resolve()
    for sub in needs:
        if not (data / sub).is_dir():
            raise DataError(f"{data / sub} not found: point --data or $FACES_DATA at the shared faces data folder")
    return data


def table_command(argv, prog: str, description: str, measure, markdown, model: bool = False) -> int:
    """A benchmark that measures once and prints a markdown table, or its figures as JSON (``--json``):
    ``--data`` (default $FACES_DATA), ``--config`` and, with ``model``, ``--model``; errors in one line.
    Calls ``measure(data, config=..., [model_dir=...])`` and ``markdown(result)``."""
    from realtime.config import load_config
    from realtime.errors import run_command, setup_logging
    p = argparse.ArgumentParser(prog=prog, description=description)
    data_flag(p)
    if model:
        p.add_argument("--model", help="model folder (default: model.dir of the config)")
    p.add_argument("--config", help="config file (default: the project's config.yaml)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)

    def run(_argv) -> int:
        setup_logging()
        data = data_folder(args.data, ("videos", "celebrity5"))
        config = load_config(args.config and Path(args.config).resolve())
        extra = {"model_dir": Path(args.model).resolve() if args.model else None} if model else {}
        result = measure(data, config=config, **extra)
        print(json.dumps(result, indent=1) if args.json else markdown(result))
        return 0

    return run_command(run, [])


def check_data(data: Path) -> None:
    data_folder(data, ("videos", "celebrity5/train", "celebrity5/val"))
    if not clips(data):
        raise DataError(f"{data / 'videos'} holds no .mp4 clips")


def clips(data: Path) -> list[Path]:
    return sorted((data / "videos").glob("*.mp4"))


def person_of_clip(clip: Path) -> str:
    return "clip:" + clip.stem


def read_frames(path: Path, limit: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while len(out) < limit:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


def background(width: int, height: int, seed: int = 7) -> np.ndarray:
    """A deterministic 'room': a gradient, some blurred blocks and a little sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 90 + 60 * (xx / width) + 30 * (yy / height)
    img = np.repeat(base[:, :, None], 3, axis=2)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(width // 10, width // 3)), int(rng.integers(height // 10, height // 3))
        img[y0:y0 + h, x0:x0 + w] = rng.integers(40, 220, 3)
    img = cv2.GaussianBlur(img, (0, 0), 3)
    img += rng.normal(0, 3, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_video(path: Path, frames, size: tuple[int, int], fps: float = FPS) -> int:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise DataError(f"OpenCV cannot write {path}")
    n = 0
    for frame in frames:
        writer.write(frame)
        n += 1
    writer.release()
    return n


def synthetic_video(out_dir: Path, data: Path, size: tuple[int, int], faces: int, frames: int) -> Path:
    """``frames`` frames of ``size`` with ``faces`` talking heads on the background."""
    path = out_dir / f"synthetic_{size[0]}x{size[1]}_{faces}faces.mp4"
    layout = LAYOUTS[size][faces]
    sources = [read_frames(clip, frames) for clip in clips(data)[:max(1, faces)]] if faces else []
    bg = background(*size)

    def gen():
        for i in range(frames):
            frame = bg.copy()
            for (x, y, side), src in zip(layout, sources):
                tile = cv2.resize(src[i % len(src)], (side, side), interpolation=cv2.INTER_AREA)
                frame[y:y + side, x:x + side] = tile
            yield frame

    write_video(path, gen(), size)
    return path


def photo_video(out_dir: Path, data: Path, size: int = 480, hold: int = 6) -> tuple[Path, list[str]]:
    """The celebrity5 val photos, each letterboxed and held ``hold`` frames; the person of each frame."""
    path = out_dir / "celebrity5_val.mp4"
    truth: list[str] = []

    def gen():
        for person in PEOPLE:
            for photo in sorted((data / "celebrity5/val" / person).glob("*.jpg")):
                image = cv2.imread(str(photo))
                if image is None:
                    continue
                f = size / max(image.shape[:2])
                image = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
                frame = np.zeros((size, size, 3), np.uint8)
                y, x = (size - image.shape[0]) // 2, (size - image.shape[1]) // 2
                frame[y:y + image.shape[0], x:x + image.shape[1]] = image
                for _ in range(hold):
                    truth.append(person)
                    yield frame

    write_video(path, gen(), (size, size))
    return path, truth


@dataclass
class RealPeople:
    """Embeddings of the real enrolled people: name -> (n, d) float32."""

    samples: dict[str, np.ndarray]

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.samples.values())


def enroll_real(data: Path, recognizer, clip_frames: int = 10, max_photos: int | None = None) -> RealPeople:
    """4 celebrities from their train photos (photos with exactly one face, as the CLI enrolls)
    and each clip's person from the largest face in its first ``clip_frames`` frames."""
    samples: dict[str, np.ndarray] = {}
    for person in PEOPLE:
        if person == STRANGER:
            continue
        photos = sorted(p for p in (data / "celebrity5/train" / person).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        found = [recognizer.faces(read_image(photo))[1] for photo in photos[:max_photos]]
        one_face = [emb[0] for emb in found if len(emb) == 1]
        if one_face:
            samples[person] = np.stack(one_face)
    for clip in clips(data):
        found = [recognizer.faces(frame)[1] for frame in read_frames(clip, clip_frames)]
        largest = [emb[0] for emb in found if len(emb)]
        if largest:
            samples[person_of_clip(clip)] = np.stack(largest)
    if not samples:
        raise DataError("no face found in the enrollment photos or clips")
    return RealPeople(samples)


def random_unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    vec = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    return vec


def build_gallery(path: Path, model_id: str, real: RealPeople, size: int, dim: int):
    """A real SQLite :class:`Gallery` of exactly ``size`` samples: real people first (at most
    half of it, a few samples each), random unit vectors in people of up to 1,000 samples."""
    from realtime.gallery import SQLiteStore as Gallery
    gallery = Gallery(path, model_id)
    budget = max(1, size // 2)
    per_person = max(1, budget // max(1, len(real.samples)))
    used = 0
    for name, emb in real.samples.items():
        take = min(len(emb), per_person, budget - used)
        if take <= 0:
            break
        gallery.add_samples(name, emb[:take])
        used += take
    rest = size - used
    vectors = random_unit(rest, dim, seed=size)
    chunk = 1000
    for start in range(0, rest, chunk):
        gallery.add_samples(f"random-{start // chunk:04d}", vectors[start:start + chunk])
    assert len(gallery.index()) == size
    return gallery
