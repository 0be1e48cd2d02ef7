"""The two loops timed frame by frame: the fast one (``realtime.App``) and the naive baseline.

Each frame's stages are timed with ``perf_counter``: capture/decode (``VideoSource.read``),
detect, encode (crop + encoder), match, draw; the frame latency is read-to-drawn and the fps is
frames over the loop's wall time. Both loops read the same video files.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from realtime.capture import VideoSource
from realtime.faces import crop_face, scale_crops, to_gray
from realtime.overlay import FaceLabel, draw

log = logging.getLogger(__name__)

STAGES = ("capture", "detect", "encode", "match", "draw")


@dataclass
class Run:
    """Per-frame stage times (seconds), frame latencies and the loop's wall time."""

    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    latency: list[float] = field(default_factory=list)
    wall: float = 0.0
    cpu: float = 0.0          # process CPU seconds over the loop (all threads): the cost without contention
    faces: list[int] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return len(self.latency)

    def summary(self) -> dict:
        out = {"frames": self.frames, "fps": round(self.frames / self.wall, 2) if self.wall > 0 else 0.0,
               "latency_ms": _stats(self.latency), "faces_mean": round(float(np.mean(self.faces)), 2) if self.faces else 0}
        out["cpu_ms_per_frame"] = round(1000.0 * self.cpu / self.frames, 2) if self.frames else 0.0
        out["cpu_fps"] = round(self.frames / self.cpu, 1) if self.cpu > 0 else 0.0
        out["stages_ms"] = {s: _stats(v) for s, v in self.stages.items()}
        return out


def _stats(values: list[float]) -> dict:
    if not values:
        return {"median": 0.0, "p95": 0.0}
    ms = np.asarray(values) * 1000.0
    return {"median": round(float(np.median(ms)), 3), "p95": round(float(np.percentile(ms, 95)), 3)}


def run_fast(video: Path, config, encoder, gallery, frames: int, live: bool = False, on_result=None) -> Run:
    """The shipped loop: ``App.process`` + ``App.render``, stage times from ``app.timings``.

    ``live``: the App runs as for a camera (``detect_async: auto`` puts the full detection on a
    worker thread); by default as for a file. The frames come from a file, read in order."""
    from realtime.app import App
    app = App(config, encoder, gallery, live=live)
    source = VideoSource(str(video), threaded=config.recognition.threaded_capture)
    run = Run()
    try:
        start, cpu0 = time.perf_counter(), time.process_time()
        for i in range(frames):
            t0 = time.perf_counter()
            frame = source.read()
            if frame is None:
                break
            t1 = time.perf_counter()
            result = app.process(frame, t=i / source.fps)
            app.render(frame, result)
            t2 = time.perf_counter()
            tm = app.timings
            run.stages["capture"].append(t1 - t0)
            run.stages["detect"].append(tm["detect"])
            run.stages["encode"].append(tm["encode"])
            run.stages["match"].append(tm["match"] + tm["track"])
            run.stages["draw"].append(tm["draw"])
            run.latency.append(t2 - t0)
            run.faces.append(len(result.faces))
            if on_result is not None:
                on_result(i, frame, result)
        run.wall = time.perf_counter() - start
        run.cpu = time.process_time() - cpu0
    finally:
        app.close()
        source.close()
    return run


class Baseline:
    """The seed's way: full-frame Haar at full resolution on every frame, one Keras
    ``model.predict`` per face on ``encoder.keras``, a per-face matching loop, no tracking."""

    def __init__(self, model_dir: Path, detection, input_size: int, threshold: float, use_keras: bool = True,
                 tflite_encoder=None):
        self.detection = detection
        self.size = input_size
        self.threshold = threshold
        self.cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / detection.cascade))
        self.model = None
        self.tflite = tflite_encoder
        if use_keras:
            import os
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            import keras
            self.model = keras.models.load_model(model_dir / "encoder.keras", compile=False)

    def detect(self, frame: np.ndarray) -> list[tuple[int, int, int, int]]:
        d = self.detection
        found = self.cascade.detectMultiScale(to_gray(frame), scaleFactor=d.scale_factor,
                                              minNeighbors=d.min_neighbors, minSize=(d.min_size, d.min_size))
        return [tuple(int(v) for v in b) for b in np.asarray(found).reshape(-1, 4)]

    def encode(self, frame: np.ndarray, boxes) -> list[np.ndarray]:
        out = []
        for box in boxes:
            x = scale_crops(crop_face(frame, box, self.size)[None])
            if self.model is not None:
                out.append(np.asarray(self.model.predict(x, verbose=0))[0])
            else:  # accuracy runs: the same weights through TFLite (identical up to float rounding)
                out.append(self.tflite.encode(crop_face(frame, box, self.size)[None])[0])
        return out

    def match(self, index, embeddings) -> list[tuple[str | None, float]]:
        """Per face: distances to every sample, nearest one, threshold."""
        out = []
        for emb in embeddings:
            if len(index) == 0:
                out.append((None, float("inf")))
                continue
            dist = np.linalg.norm(index.embeddings - emb[None, :], axis=1)
            j = int(np.argmin(dist))
            name = index.names[int(index.labels[j])]
            out.append((name if dist[j] <= self.threshold else None, float(dist[j])))
        return out

    def process(self, frame, index):
        c0 = time.perf_counter()
        boxes = self.detect(frame)
        c1 = time.perf_counter()
        emb = self.encode(frame, boxes)
        c2 = time.perf_counter()
        matches = self.match(index, emb)
        c3 = time.perf_counter()
        return boxes, matches, (c1 - c0, c2 - c1, c3 - c2)


def run_baseline(video: Path, baseline: Baseline, gallery, frames: int) -> Run:
    source = VideoSource(str(video), threaded=False)
    index = gallery.index()
    run = Run()
    try:
        start, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(frames):
            t0 = time.perf_counter()
            frame = source.read()
            if frame is None:
                break
            t1 = time.perf_counter()
            boxes, matches, (det, enc, mat) = baseline.process(frame, index)
            d0 = time.perf_counter()
            draw(frame, [FaceLabel(b, n, d) for b, (n, d) in zip(boxes, matches)], fps=None,
                 threshold=baseline.threshold)
            t2 = time.perf_counter()
            for stage, value in zip(STAGES, (t1 - t0, det, enc, mat, t2 - d0)):
                run.stages[stage].append(value)
            run.latency.append(t2 - t0)
            run.faces.append(len(boxes))
        run.wall = time.perf_counter() - start
        run.cpu = time.process_time() - cpu0
    finally:
        source.close()
    return run
