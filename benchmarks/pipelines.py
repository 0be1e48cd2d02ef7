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

from realtime.boxes import Box
from realtime.capture import VideoSource
from realtime.crops import face_crops
from realtime.detection import to_gray
from realtime.encoder import scale_crops
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
    encodings: int = 0        # faces run through the encoder (the fast loop encodes a face again only when needed)

    @property
    def frames(self) -> int:
        return len(self.latency)

    def summary(self) -> dict:
        out = {"frames": self.frames, "fps": round(self.frames / self.wall, 2) if self.wall > 0 else 0.0,
               "latency_ms": ms_stats(self.latency), "faces_mean": round(float(np.mean(self.faces)), 2) if self.faces else 0}
        out["cpu_ms_per_frame"] = round(1000.0 * self.cpu / self.frames, 2) if self.frames else 0.0
        out["cpu_fps"] = round(self.frames / self.cpu, 1) if self.cpu > 0 else 0.0
        out["encodings_per_s"] = round(self.encodings / self.wall, 1) if self.wall > 0 else 0.0
        out["stages_ms"] = {s: ms_stats(v) for s, v in self.stages.items()}
        return out


def ms_stats(seconds: list[float]) -> dict:
    """Median and 95th percentile of durations, in milliseconds (every timing of the benchmarks)."""
    if not seconds:
        return {"median": 0.0, "p95": 0.0}
    ms = np.asarray(seconds) * 1000.0
    return {"median": round(float(np.median(ms)), 3), "p95": round(float(np.percentile(ms, 95)), 3)}


def time_frames(source, frames: int, step) -> Run:
    """The one timing loop of both pipelines: read a frame (timed as capture), then
    ``step(i, frame)`` processes and draws it and returns its other stage times and its face count."""
    run = Run()
    start, cpu0 = time.perf_counter(), time.process_time()
    for i in range(frames):
        t0 = time.perf_counter()
        frame = source.read()
        if frame is None:
            break
        t1 = time.perf_counter()
        stages, faces = step(i, frame)
        t2 = time.perf_counter()
        run.stages["capture"].append(t1 - t0)
        for stage, seconds in stages.items():
            run.stages[stage].append(seconds)
        run.latency.append(t2 - t0)
        run.faces.append(faces)
    run.wall = time.perf_counter() - start
    run.cpu = time.process_time() - cpu0
    return run


def run_fast(video: Path, recognizer, gallery, frames: int, live: bool = False, on_result=None) -> Run:
    """The shipped loop: ``App.process``, then the boxes, names and HUD drawn as the window shows
    them; stage times from ``app.timings``.

    ``live``: the App runs as for a camera (``detect_async: auto`` puts the full detection on a
    worker thread); by default as for a file. The frames come from a file, read in order.
    ``on_result(i, frame, result)`` runs inside the timed frame: for accuracy runs, not timed ones."""
    from realtime.app import App
    app = App(recognizer, gallery, live=live)
    source = VideoSource(str(video), threaded=recognizer.config.capture.threaded)

    def step(i, frame):
        result = app.process(frame, t=i / source.fps)
        d0 = time.perf_counter()
        app.hud(app.annotate(frame, result))
        app.timings["draw"] = time.perf_counter() - d0
        if on_result is not None:
            on_result(i, frame, result)
        tm = app.timings
        return ({"detect": tm["detect"], "encode": tm["encode"], "match": tm["match"] + tm["track"],
                 "draw": tm["draw"]}, len(result.faces))

    try:
        run = time_frames(source, frames, step)
        run.encodings = app.encodings
        return run
    finally:
        app.close()
        source.close()


class Baseline:
    """The seed's way: full-frame Haar at full resolution on every frame, one Keras
    ``model.predict`` per face on ``encoder.keras`` (an SFace encoder: rebuilt from its ONNX file
    and trained layers), a per-face matching loop, no tracking."""

    def __init__(self, model_dir: Path, detection, input_size: int, threshold: float, use_keras: bool = True,
                 tflite_encoder=None, aligner=None):
        self.detection = detection
        self.aligner = aligner      # the encoder's own preprocessing (a baseline still crops as it was trained)
        self.size = input_size
        self.threshold = threshold
        self.cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / detection.cascade))
        self.model = None
        self.tflite = tflite_encoder
        if use_keras:
            import os
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            import keras
            if (model_dir / "encoder.keras").is_file():
                self.model = keras.models.load_model(model_dir / "encoder.keras", compile=False)
            else:   # an SFace encoder ships no .keras: the same network rebuilt from its ONNX file
                from training.finetune import load_sface_encoder
                self.model = load_sface_encoder(model_dir)

    def detect(self, frame: np.ndarray) -> list[Box]:
        d = self.detection
        found = self.cascade.detectMultiScale(to_gray(frame), scaleFactor=d.scale_factor,
                                              minNeighbors=d.min_neighbors, minSize=(d.min_size, d.min_size))
        return [tuple(int(v) for v in b) for b in np.asarray(found).reshape(-1, 4)]

    def encode(self, frame: np.ndarray, boxes) -> tuple[list[Box], list[np.ndarray]]:
        """Per face, one crop and one encoder call; boxes the aligner finds no face in are dropped."""
        kept, out = [], []
        for box in boxes:
            crop, ok = face_crops(frame, [box], self.size, self.aligner)
            if not ok:
                continue
            kept.append(box)
            if self.model is not None:
                out.append(np.asarray(self.model.predict(scale_crops(crop), verbose=0))[0])
            else:  # accuracy runs: the same weights through TFLite (identical up to float rounding)
                out.append(self.tflite.encode(crop)[0])
        return kept, out

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
        boxes, emb = self.encode(frame, boxes)
        c2 = time.perf_counter()
        matches = self.match(index, emb)
        c3 = time.perf_counter()
        return boxes, matches, (c1 - c0, c2 - c1, c3 - c2)


def run_baseline(video: Path, baseline: Baseline, gallery, frames: int) -> Run:
    source = VideoSource(str(video), threaded=False)
    index = gallery.index()

    def step(i, frame):
        boxes, matches, (det, enc, mat) = baseline.process(frame, index)
        d0 = time.perf_counter()
        draw(frame, [FaceLabel(b, n, d) for b, (n, d) in zip(boxes, matches)], fps=None,
             threshold=baseline.threshold)
        return {"detect": det, "encode": enc, "match": mat, "draw": time.perf_counter() - d0}, len(boxes)

    try:
        run = time_frames(source, frames, step)
        run.encodings = sum(run.faces)        # every face, every frame
        return run
    finally:
        source.close()
