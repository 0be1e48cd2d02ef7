"""How good are the live program's landmarks? YuNet's eye centres against dlib's, on unseen people.

The aligner (``realtime.align``) uses YuNet's five points; the teacher uses dlib's 5-point shape
predictor. The two name different points (dlib: the corners of each eye and the base of the
nose; YuNet: the eye centres, the nose tip and the mouth corners), so the comparison is on what
both define: the eye centres (dlib's the midpoint of its two corners), as a distance divided by
dlib's inter-ocular distance. The people are LFW DevTest's (never trained on, by either model
here). Writes ``landmarks.png``: a few faces with both sets of points.

    FACES_DATA=... python -m training.landmarks --out docs [--photos 300]
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from realtime.config import load_config, resolve_path
from realtime.errors import UserError, run_command, setup_logging

log = logging.getLogger(__name__)


def dlib_eye_centres(image_rgb: np.ndarray, box) -> np.ndarray:
    """dlib's 5-point predictor in ``box``: (right-in-image... ) eye centres ordered left to right in the image."""
    import dlib
    from training.teacher import _models
    predictor, _ = _models()
    x, y, w, h = box
    shape = predictor(image_rgb, dlib.rectangle(int(x), int(y), int(x + w - 1), int(y + h - 1)))
    p = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], np.float64)
    eyes = np.array([p[0:2].mean(0), p[2:4].mean(0)])   # points 0-1 one eye's corners, 2-3 the other's
    return eyes[np.argsort(eyes[:, 0])]


def measure(paths: list[Path], config) -> tuple[np.ndarray, list[tuple], float]:
    """Normalised eye errors per face, a few (image, yunet points, dlib eyes) to draw, YuNet ms per face."""
    from realtime.crops import FaceCropper
    from realtime.images import read_image
    from training.data import photo_face_box
    cropper = FaceCropper(config.detection, config.alignment, config.model.input_size)
    aligner = cropper.aligner
    errors, samples, seconds = [], [], []
    for path in paths:
        image = read_image(path)
        box, _, _ = photo_face_box(image, cropper)
        if box is None:
            continue
        start = time.perf_counter()
        found = aligner.landmarks(image, box)
        seconds.append(time.perf_counter() - start)
        if found is None:
            continue
        yunet = found[0].astype(np.float64)
        eyes = dlib_eye_centres(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), box)
        ours = yunet[:2][np.argsort(yunet[:2, 0])]
        iod = float(np.linalg.norm(eyes[1] - eyes[0]))
        errors.append(np.linalg.norm(ours - eyes, axis=1).mean() / max(iod, 1e-6))
        if len(samples) < 8:
            samples.append((image, yunet, eyes))
    return np.array(errors), samples, 1000.0 * float(np.median(seconds)) if seconds else float("nan")


def plot(samples: list[tuple], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 4, figsize=(12, 6.4))
    for ax, (image, yunet, eyes) in zip(axes.ravel(), samples):
        ax.imshow(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        ax.scatter(yunet[:, 0], yunet[:, 1], s=28, c="lime", marker="o", label="YuNet (live program)")
        ax.scatter(eyes[:, 0], eyes[:, 1], s=60, c="red", marker="x", label="dlib 5-point (teacher), eye centres")
        ax.axis("off")
    for ax in axes.ravel()[len(samples):]:
        ax.axis("off")
    axes.ravel()[0].legend(loc="lower left", fontsize=8)
    fig.suptitle("Landmarks on LFW DevTest people: YuNet's five points (green) and dlib's eye centres (red)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.landmarks", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="config file (default: models/config.yaml, the shipped encoder's recipe)")
    p.add_argument("--out", required=True, help="folder for landmarks.png and landmarks.json")
    p.add_argument("--photos", type=int, default=300, help="DevTest photos to measure on (default: 300)")
    args = p.parse_args(argv)
    setup_logging()
    config = load_config(Path(args.config).resolve() if args.config else resolve_path("models/config.yaml"))
    from training.lfw import people_in_pairs
    t = config.training
    if not t.lfw_pairs or not t.lfw_dir:
        raise UserError("training.lfw_pairs and training.lfw_dir must name the LFW pairs and photos")
    lfw = resolve_path(t.lfw_dir)
    people = sorted(people_in_pairs(resolve_path(t.lfw_pairs) / "pairsDevTest.txt"))
    paths = [q for name in people for q in sorted((lfw / name).glob("*.jpg"))[:1]][: args.photos]
    errors, samples, ms = measure(paths, config)
    if not len(errors):
        raise UserError("no face measured: check the LFW folder")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    plot(samples, out / "landmarks.png")
    result = {"faces": int(len(errors)), "photos": len(paths), "mean_eye_error_iod": round(float(errors.mean()), 4),
              "median_eye_error_iod": round(float(np.median(errors)), 4),
              "share_under_0.05": round(float((errors < 0.05).mean()), 4),
              "share_under_0.10": round(float((errors < 0.10).mean()), 4), "yunet_ms_per_face": round(ms, 2)}
    (out / "landmarks.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_command(main))
