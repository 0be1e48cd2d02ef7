"""The live loop: frames in, faces found, encoded, matched, tracked, drawn; keys enroll people.

:class:`App` holds the state that lives across frames (tracker, key state, an enrollment in
progress, threshold, the FPS estimate). ``process`` is one frame's work without any window, so
tests and the benchmark can drive it directly; ``run`` adds the source, window, keys, events
and recording around it.
"""
from __future__ import annotations

import json
from collections import deque
import logging
import signal
from concurrent.futures import Future, ThreadPoolExecutor
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

import cv2
import numpy as np

from realtime.capture import VideoSource
from realtime.config import Config
from realtime.encoder import Encoder
from realtime.errors import UserError
from realtime.faces import Box, clip_box, crop_faces, find_faces, load_cascade, sort_largest_first, to_gray
from realtime.gallery import Gallery, check_name
from realtime.keys import KeyState, handle_key
from realtime.matching import match
from realtime.overlay import FaceLabel, draw
from realtime.tracking import Tracker, iou

log = logging.getLogger(__name__)

WINDOW = "realtime faces"


@dataclass(frozen=True)
class Face:
    box: Box
    track: int
    name: str | None        # voted over the last frames; None = unknown
    nearest: str | None
    distance: float


@dataclass(frozen=True)
class FrameResult:
    index: int
    time: float
    faces: list[Face]
    full_detection: bool

    def event(self) -> dict:
        return {"frame": self.index, "time": round(self.time, 3),
                "faces": [{"box": [int(v) for v in f.box], "name": f.name, "nearest": f.nearest,
                           "distance": None if not np.isfinite(f.distance) else round(f.distance, 4),
                           "track": f.track} for f in self.faces]}


class FaceFinder:
    """Detection with the speed switches: downscaled frames, and a full pass only every
    ``detect_every`` frames; in between, faces are searched for only near their last box.

    With ``detect_async`` the full pass runs on a worker thread: every frame is followed at once,
    and a finished full pass adds the faces it found that are not followed yet (new faces)."""

    def __init__(self, config: Config, live: bool = False):
        self.detection = config.detection
        rec = config.recognition
        self.scale, self.every, self.margin = rec.detect_scale, rec.detect_every, rec.track_margin
        self.max_width = rec.detect_max_width
        self.follow_size = rec.follow_size
        self._since_full: int | None = None
        self.is_async = rec.detect_async == "always" or (rec.detect_async == "auto" and live)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="detect") if self.is_async else None
        self._future: Future | None = None
        # The follower's own cascade: a CascadeClassifier must not run in two threads at once.
        self._cascade = load_cascade.__wrapped__(self.detection.cascade)

    def find(self, frame: np.ndarray, last: list[Box]) -> tuple[list[Box], bool]:
        """Boxes in full-frame pixels (largest first) and whether a full detection is in them."""
        if self._pool is not None:
            return self._find_async(frame, last)
        if self._since_full is None or self._since_full + 1 >= self.every:
            self._since_full = 0
            return find_faces(frame, self.detection, self._scale(frame)), True
        followed = self._follow(frame, last) if last else []
        if last and not followed:  # every followed face is gone (it left, or the scene cut): look everywhere now
            self._since_full = 0
            return find_faces(frame, self.detection, self._scale(frame)), True
        self._since_full += 1
        return followed, False

    def _scale(self, frame: np.ndarray) -> float:
        """The full detection's scale: ``detect_scale``, and no wider than ``detect_max_width``."""
        if self.max_width and frame.shape[1] * self.scale > self.max_width:
            return self.max_width / frame.shape[1]
        return self.scale

    def _find_async(self, frame: np.ndarray, last: list[Box]) -> tuple[list[Box], bool]:
        first = self._since_full is None
        fresh = None
        due = first or self._since_full + 1 >= self.every
        # A pass that is done joins now; one that is due again waits, so boxes are never more
        # than ``detect_every`` frames old (files run headless faster than detection can).
        if self._future is not None and (due or self._future.done()):
            fresh, self._future = self._future.result(), None
        if self._future is None and due:
            # A copy: the caller draws on ``frame`` while the worker still reads it.
            self._future = self._pool.submit(find_faces, frame.copy(), self.detection, self._scale(frame))
            self._since_full = 0
            if first:  # the very first frame waits, so faces show from frame 0
                fresh, self._future = self._future.result(), None
        else:
            self._since_full += 1
        followed = self._follow(frame, last) if last and not first else []
        if fresh is None:
            return followed, False
        boxes = followed + [b for b in fresh if all(iou(b, f) < 0.3 for f in followed)]
        return sort_largest_first(boxes), True

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _follow(self, frame: np.ndarray, last: list[Box]) -> list[Box]:
        """Look for each face only near its last box and only at about its last size.

        The region is shrunk so the face is ~``follow_size`` px and the cascade only tries sizes
        within a factor ~1.6 of it: a handful of tiny pyramid levels instead of a full pass."""
        gray = to_gray(frame)
        height, width = gray.shape[:2]
        cascade = self._cascade
        found: list[Box] = []
        for x, y, w, h in last:
            mx, my = int(w * self.margin), int(h * self.margin)
            x0, y0 = max(0, x - mx), max(0, y - my)
            x1, y1 = min(width, x + w + mx), min(height, y + h + my)
            if x1 - x0 < 8 or y1 - y0 < 8:
                continue
            factor = min(1.0, self.follow_size / max(w, 1))
            roi = gray[y0:y1, x0:x1]
            if factor < 1.0:
                roi = cv2.resize(roi, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
            side = w * factor
            lo = max(24, int(side / 1.6))
            hi = max(lo + 1, int(side * 1.6))
            hits = np.asarray(cascade.detectMultiScale(
                roi, scaleFactor=self.detection.scale_factor, minNeighbors=self.detection.min_neighbors,
                minSize=(lo, lo), maxSize=(hi, hi))).reshape(-1, 4)
            if len(hits):
                bx, by, bw, bh = max(hits.tolist(), key=lambda b: b[2] * b[3])
                box = clip_box((int(round(bx / factor)) + x0, int(round(by / factor)) + y0,
                                int(round(bw / factor)), int(round(bh / factor))), gray.shape)
                if box[2] > 0 and box[3] > 0 and all(iou(box, other) < 0.5 for other in found):
                    found.append(box)
        return sort_largest_first(found)


@dataclass
class Enrollment:
    name: str
    started: float
    interval: float
    wanted: int
    samples: list = field(default_factory=list)
    next_time: float = 0.0


class App:
    """The loop's state. Construct with a config, an :class:`Encoder` and a :class:`Gallery`."""

    def __init__(self, config: Config, encoder: Encoder, gallery: Gallery, threshold: float | None = None,
                 live: bool = False):
        self.config = config
        self.rec = config.recognition
        self.encoder = encoder
        self.gallery = gallery
        self.threshold = float(threshold if threshold is not None else
                               (self.rec.threshold if self.rec.threshold is not None else encoder.threshold))
        self.live = live  # a camera: detect_async "auto" runs the full detection on a worker
        self.finder = FaceFinder(config, live)
        self.tracker = Tracker(self.rec.track_iou, self.rec.track_max_missed, self.rec.vote_frames)
        self.keys = KeyState()
        self.enrollment: Enrollment | None = None
        self.message: str | None = None
        self.message_until = 0.0
        self.paused = False
        self.quit = False
        self.frame_index = 0
        self.fps: float | None = None
        self.timings: dict[str, float] = {}
        self._last_boxes: list[Box] = []
        self.enrolled: list[tuple[str, int]] = []

    def close(self) -> None:
        """Stop the detection worker (the gallery and encoder belong to the caller)."""
        self.finder.close()

    # -- one frame -----------------------------------------------------------------------------
    def process(self, frame: np.ndarray, t: float | None = None) -> FrameResult:
        """Detect, encode, match, track and (if enrolling) sample one frame; no drawing, no I/O
        but the gallery write that completes an enrollment."""
        index = self.frame_index
        self.frame_index += 1
        t = float(index) if t is None else t
        c0 = time.perf_counter()
        boxes, full = self.finder.find(frame, self._last_boxes)
        c1 = time.perf_counter()
        crops = crop_faces(frame, boxes, self.encoder.input_size)
        emb = self.encoder.encode(crops) if self.rec.batch_encode else self.encoder.encode_each(crops)
        c2 = time.perf_counter()
        matches = match(self.gallery.index(), emb, self.threshold, self.rec.match)
        c3 = time.perf_counter()
        ids = self.tracker.update(boxes)
        faces = [Face(tuple(int(v) for v in box), tid, self.tracker.vote(tid, m.name), m.nearest, m.distance)
                 for box, tid, m in zip(boxes, ids, matches)]
        self._last_boxes = list(boxes)
        if self.enrollment is not None:
            self._sample(emb, boxes, t)
        c4 = time.perf_counter()
        self.timings = {"detect": c1 - c0, "encode": c2 - c1, "match": c3 - c2, "track": c4 - c3}
        return FrameResult(index, t, faces, full)

    def _sample(self, emb: np.ndarray, boxes: list[Box], t: float) -> None:
        job = self.enrollment
        if len(boxes) and t >= job.next_time:
            largest = max(range(len(boxes)), key=lambda i: boxes[i][2] * boxes[i][3])
            job.samples.append(emb[largest])
            job.next_time = t + job.interval
        if len(job.samples) >= job.wanted:
            try:
                count = self.gallery.add_samples(job.name, np.stack(job.samples))
            except UserError as err:  # a full disk, a read-only gallery: say so and keep recognising
                log.error("enrollment of %s failed: %s", job.name, err)
                self._say(f"Not saved: {job.name} (see the log)", t)
                self.enrollment = None
                return
            self.enrolled.append((job.name, len(job.samples)))
            log.info("enrolled %s: %d samples (%d in total)", job.name, len(job.samples), count)
            self._say(f"Enrolled {job.name} ({count} samples)", t)
            self.enrollment = None
            self.tracker.reset()
        elif t - job.started > self.rec.enroll_seconds + 5.0:
            log.warning("enrollment of %s cancelled: no face seen", job.name)
            self._say(f"No face seen: {job.name} not enrolled", t)
            self.enrollment = None

    def _say(self, text: str, t: float) -> None:
        self.message, self.message_until = text, t + 2.5

    # -- keys ----------------------------------------------------------------------------------
    def key(self, code: int, t: float) -> None:
        """Apply one key press (a cv2.waitKey code) at frame time ``t``."""
        self.keys, action = handle_key(self.keys, code)
        if action is None:
            return
        if action.kind == "quit":
            self.quit = True
        elif action.kind == "pause":
            self.paused = not self.paused
        elif action.kind in ("threshold_up", "threshold_down"):
            step = self.rec.threshold_step if action.kind == "threshold_up" else -self.rec.threshold_step
            self.threshold = float(min(4.0, max(0.01, self.threshold + step)))
            self.tracker.reset()
            log.info("threshold %.3f", self.threshold)
        elif action.kind == "cancel":
            self._say("Enrollment cancelled", t)
        elif action.kind == "enroll":
            try:
                check_name(action.name)
            except UserError as err:
                log.warning("%s", err)
                self._say(f"Name refused: {err}", t)
                return
            interval = self.rec.enroll_seconds / self.rec.enroll_samples
            self.enrollment = Enrollment(action.name, t, interval, self.rec.enroll_samples, next_time=t)
            self._say(f"Enrolling {action.name}: look at the camera and move a little", t)

    def prompt(self) -> str | None:
        return f"Name: {self.keys.text}_  (Enter saves, Esc cancels)" if self.keys.naming else None

    def render(self, frame: np.ndarray, result: FrameResult) -> np.ndarray:
        c0 = time.perf_counter()
        if self.message and result.time > self.message_until:
            self.message = None
        draw(frame, [FaceLabel(f.box, f.name, f.distance) for f in result.faces],
             fps=self.fps if self.rec.show_fps else None, threshold=self.threshold,
             prompt=self.prompt(), message=self.message, paused=self.paused)
        self.timings["draw"] = time.perf_counter() - c0
        return frame

    # -- the loop ------------------------------------------------------------------------------
    def run(self, source: VideoSource, *, window: bool = False, events: TextIO | None = None,
            recorder: "cv2.VideoWriter | None" = None, max_frames: int | None = None,
            key_script: dict[int, list[int]] | None = None,
            on_frame: Callable[[np.ndarray, FrameResult], None] | None = None) -> dict:
        """Run until the source ends, ``q``, Ctrl-C or ``max_frames``; returns the summary.

        The recording (if any) is always finished so it plays, whatever ends the loop."""
        if source.is_camera != self.live and self.frame_index == 0:
            self.finder.close()
            self.live, self.finder = source.is_camera, FaceFinder(self.config, source.is_camera)
        stop = threading.Event()
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
        key_script = key_script or {}
        frames = faces = 0
        start = pace_start = time.perf_counter()
        ticks: deque = deque(maxlen=30)  # FPS over the last 30 frames
        shown: np.ndarray | None = None
        try:
            if window:
                cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE)
            while not (self.quit or stop.is_set()):
                if max_frames is not None and frames >= max_frames:
                    break
                if self.paused and window:
                    paused_at = time.perf_counter()
                    if shown is not None:
                        cv2.imshow(WINDOW, shown)
                    code = cv2.waitKey(30)
                    if code >= 0:
                        self.key(code, self._time(source, start))
                    pace_start += time.perf_counter() - paused_at  # a paused file resumes at its own rate
                    continue
                frame = source.read()
                if frame is None:
                    break
                t = self._time(source, start)
                for code in key_script.get(self.frame_index, ()):
                    self.key(code, t)
                    if self.paused and not window:
                        log.info("pause ignored without a window")
                        self.paused = False
                result = self.process(frame, t)
                frames += 1
                faces += len(result.faces)
                ticks.append(time.perf_counter())
                if len(ticks) >= 2:
                    self.fps = (len(ticks) - 1) / max(ticks[-1] - ticks[0], 1e-6)
                if events is not None:
                    events.write(json.dumps(result.event(), ensure_ascii=False) + "\n")
                if window or recorder is not None or on_frame is not None:
                    self.render(frame, result)
                if recorder is not None:
                    if (frame.shape[1], frame.shape[0]) != source.size:
                        frame = cv2.resize(frame, source.size)
                    recorder.write(frame)
                if on_frame is not None:
                    on_frame(frame, result)
                if window:
                    shown = frame
                    cv2.imshow(WINDOW, frame)
                    wait = 1
                    if not source.is_camera:  # play files at their own rate
                        due = pace_start + frames / source.fps
                        wait = max(1, int((due - time.perf_counter()) * 1000))
                    code = cv2.waitKey(wait)
                    if code >= 0:
                        self.key(code, t)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            if recorder is not None:
                recorder.release()
            if window:
                cv2.destroyAllWindows()
                cv2.waitKey(1)
        elapsed = max(time.perf_counter() - start, 1e-9)
        summary = {"frames": frames, "faces": faces, "fps": round(frames / elapsed, 2),
                   "seconds": round(elapsed, 3), "interrupted": stop.is_set(),
                   "enrolled": [{"name": n, "samples": k} for n, k in self.enrolled]}
        if events is not None:
            events.write(json.dumps({"summary": summary}, ensure_ascii=False) + "\n")
            events.flush()
        log.info("%d frames, %d faces, %.1f fps", frames, faces, summary["fps"])
        return summary

    def _time(self, source: VideoSource, start: float) -> float:
        """Frame time: a file's own clock (frame number / fps), a camera's wall clock."""
        if source.is_camera:
            return time.perf_counter() - start
        return self.frame_index / source.fps


def open_recorder(path: str | Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """An mp4v writer, checked before the loop starts so a bad path fails at once."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--record {path} is a folder: give a file name like out.mp4")
    if not path.parent.is_dir():
        what = "is not a folder" if path.parent.exists() else "does not exist"
        raise UserError(f"--record {path}: folder {path.parent} {what}: give a file in a folder you can write")
    try:
        with open(path, "ab"):
            pass
    except OSError as err:
        raise UserError(f"--record {path} cannot be written ({err.strerror or err}): "
                        f"give a file in a folder you can write") from None
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), tuple(int(v) for v in size))
    if not writer.isOpened():
        raise UserError(f"--record {path}: OpenCV cannot write this video (use a .mp4 or .avi name)")
    return writer
