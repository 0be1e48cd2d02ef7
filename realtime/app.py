"""The live loop: frames in, faces found, encoded, matched, tracked, drawn; keys enroll people.

:class:`App` holds what lives across frames: the tracks and their votes, the threshold the keys
move, an enrolment in progress, the window's key and message state. ``process`` is one frame's
work without any window (tests and the benchmarks drive it directly); ``run`` adds the source,
window, keys, events and recording around it. How a pixel becomes a name is the
:class:`~realtime.recognizer.Recognizer`'s: a frame visits detection, alignment, encoding,
matching and tracking once each, in that order.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, TextIO

import cv2
import numpy as np

from realtime.boxes import Box, contains_point
from realtime.capture import VideoSource
from realtime.enrolment import KeyEnrolment
from realtime.errors import UserError
from realtime.gallery import GalleryStore, check_name
from realtime.keys import KeyState, handle_key
from realtime.overlay import FaceLabel, draw_faces, draw_hud
from realtime.recognizer import Recognizer
from realtime.recording import Recording
from realtime.thresholds import step_threshold
from realtime.tracking import DECIDING, UNKNOWN
from realtime.window import Window

log = logging.getLogger(__name__)

# At the end of a run, how long an enrolment still being written is waited for (the store then cuts it off).
SAVE_GRACE = 1.0


@dataclass(frozen=True)
class Face:
    box: Box
    track: int
    name: str | None        # the name shown (sure, or voted over the last encodings); None = not named
    nearest: str | None     # the closest enrolled person on the face's last encoding, whatever the distance
    distance: float
    state: str = "unknown"  # named | deciding (within the threshold, the vote not yet agreed) | unknown
    unknown: int | None = None   # its unknown group, once kept (recognition.collect_unknown); None: named or not kept


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
                           "track": f.track, "state": f.state, "unknown": f.unknown} for f in self.faces]}


@dataclass
class RunOptions:
    """What :meth:`App.run` does around the frames: the window, outputs, and when to stop."""

    window: bool = False
    events: TextIO | None = None               # one JSON line per frame, and the summary
    recorder: Recording | None = None
    record_hud: bool = False                   # the recording keeps the key help, FPS and threshold too
    max_frames: int | None = None
    key_script: dict[int, list[int]] = field(default_factory=dict)   # frame -> keys (tests)
    on_frame: Callable[[np.ndarray, FrameResult], None] | None = None
    loop: bool = False                         # a file plays again from its start when it ends
    pace: bool = False                         # headless files at their own frame rate


class App:
    """The loop's state. Construct with a :class:`Recognizer` and an open gallery store."""

    def __init__(self, recognizer: Recognizer, gallery: GalleryStore, live: bool = False,
                 collect: bool | None = None):
        self.recognizer = recognizer
        self.config = recognizer.config
        self.gallery = gallery
        policy = recognizer.thresholds
        # Set by a flag, the config or the +/- keys it stays; else it follows the gallery's size
        # (encoder.json's open-set curve: each enrolled person is one more chance for a stranger).
        self.threshold_fixed = policy.fixed is not None
        self.threshold = policy.for_gallery()
        # The + key stops here: beyond it unrelated faces start to match (shown when reached).
        self.threshold_cap = policy.cap(self.threshold)
        self._threshold_people: int | None = None
        self._index_seen = None      # the gallery index the tracks' answers were matched against
        self.live = live  # a camera: detection.worker "auto" runs the full detection on a worker
        self.finder = recognizer.finder(live)
        self.tracker = recognizer.tracker()
        self.keys = KeyState()
        self.enrolment: KeyEnrolment | None = None
        self.message: str | None = None
        self.message_until = 0.0
        self.paused = False
        self.quit = False
        self.frame_index = 0
        self.fps: float | None = None
        self.timings: dict[str, float] = {}
        self.encodings = 0           # faces encoded so far (the benchmarks report encodings per second)
        self._last_boxes: list[Box] = []
        self.enrolled: list[tuple[str, int]] = []
        self._saving: list[tuple[str, int, concurrent.futures.Future]] = []   # enrolments being written
        self.failure: UserError | None = None     # why a run ended early, said once its outputs are finished
        # Unknown faces kept, grouped and named later (recognition.collect_unknown; ``collect`` overrides it).
        on = self.config.recognition.collect_unknown if collect is None else collect
        self.collector = self._collector() if on else None
        self._naming_track: int | None = None     # the Unknown face the n key is naming
        self._namings: list[tuple[str, concurrent.futures.Future]] = []   # unknown groups being named
        self._faces: list[Face] = []              # the last frame's faces (the n key picks one)
        self.pointer: tuple[int, int] | None = None   # the mouse in the window, in frame pixels

    def _collector(self):
        from realtime.unknowns.collect import Collector
        from realtime.unknowns.grouping import group_threshold
        policy, aligner = self.recognizer.thresholds, self.recognizer.cropper.aligner
        template = None if aligner is None else aligner.target.astype(np.float64)
        return Collector(self.gallery, self.config.unknowns, lambda groups: group_threshold(policy, groups),
                         template, source="frames")

    def close(self) -> None:
        """Stop the detection worker (the gallery and recognizer belong to the caller)."""
        self.finder.close()

    # -- one frame -----------------------------------------------------------------------------
    def process(self, frame: np.ndarray, t: float | None = None) -> FrameResult:
        """Detect and track the faces of one frame; align, encode and match those whose answer may
        have changed (:meth:`Tracker.due`); sample an enrolment in progress. No drawing and no I/O
        (a completed enrolment is written on the store's writer thread, its outcome shown on a
        later frame)."""
        index = self.frame_index
        self.frame_index += 1
        t = float(index) if t is None else t
        c0 = time.perf_counter()
        found, full = self.finder.find(frame, self._last_boxes)
        ids = self.tracker.update(found)
        c1 = time.perf_counter()
        people = self._follow_gallery()
        due = [k for k, tid in enumerate(ids) if self.tracker.due(tid, index)]
        largest = max(range(len(found)), key=lambda k: found[k][2] * found[k][3], default=None)
        if self.enrolment is not None and self.enrolment.due(t) and largest is not None and largest not in due:
            due.append(largest)               # an enrolment sample is due: the largest face is encoded now
        crops, kept, points, scores = self.recognizer.located_crops(frame, [found[k] for k in due])
        emb = self.recognizer.encode(crops)
        c2 = time.perf_counter()
        matches = self.recognizer.match(people, emb, self.threshold)
        sure = self.recognizer.thresholds.sure(len(people.names), self.threshold)
        for j, m, e in zip(kept, matches, emb):
            self.tracker.encoded(ids[due[j]], index, e, m.name, m.nearest, m.distance, sure=m.distance <= sure)
        for j in set(range(len(due))) - set(kept):
            self.tracker.not_a_face(ids[due[j]], index)   # alignment found no face: a false detection
        if self.collector is not None:
            for n, (j, m, e) in enumerate(zip(kept, matches, emb)):
                tid = ids[due[j]]
                self.collector.offer(tid, self.tracker.tracks[tid].shown, m.name, e, crops[n], points[n], scores[n],
                                     frame, found[due[j]])
            self.collector.step(self.tracker.tracks)
        c3 = time.perf_counter()
        faces = []
        for k, tid in enumerate(ids):
            track = self.tracker.tracks[tid]
            if track.is_face and track.embedding is not None:
                group = self.collector.group(tid) if self.collector is not None and track.state == UNKNOWN else None
                faces.append(Face(tuple(int(v) for v in found[k]), tid, track.shown, track.nearest, track.distance,
                                  track.state, group))
        self._last_boxes = [f.box for f in faces]
        self._faces = faces
        if self.enrolment is not None:
            self._enrol([found[due[j]] for j in kept], emb, t)
        if self._saving or self._namings:
            self.collect_saves(t)
        c4 = time.perf_counter()
        self.timings = {"detect": c1 - c0, "encode": c2 - c1, "match": c3 - c2, "track": c4 - c3}
        self.encodings += len(kept)
        return FrameResult(index, t, faces, full)

    def _follow_gallery(self):
        """The gallery's index; when it changed, the threshold for its size and every face named anew."""
        people = self.gallery.index()
        if people is not self._index_seen:
            self._index_seen = people
            self.tracker.reset()
            count = len(people.names)
            if not self.threshold_fixed and count != self._threshold_people:
                self._threshold_people = count
                self.threshold = self.recognizer.thresholds.for_gallery(count)
                log.info("%s enrolled: match within %.3f", _people(count), self.threshold)
        return people

    def _enrol(self, boxes: list[Box], emb: np.ndarray, t: float) -> None:
        job = self.enrolment
        job.offer(boxes, emb, t)
        if job.complete:
            self.enrolment = None
            # Never on the frame path: a store that is locked or stalled holds up only this write.
            future = self.gallery.add_samples_in_background(job.name, np.stack(job.samples))
            self._saving.append((job.name, len(job.samples), future))
            log.info("saving %s: %d samples", job.name, len(job.samples))
            self._say(f"Saving {job.name}...", t)
        elif job.timed_out(t):
            log.warning("enrollment of %s cancelled: no face seen", job.name)
            self._say(f"No face seen: {job.name} not enrolled", t)
            self.enrolment = None

    def collect_saves(self, t: float, wait: float = 0.0) -> None:
        """Apply the enrolments written meanwhile (waiting up to ``wait`` s for them): on screen,
        in the summary; a failed one was logged by the store, and the loop goes on recognising."""
        if wait > 0 and (self._saving or self._namings):
            concurrent.futures.wait([future for _, _, future in self._saving] +
                                    [future for _, future in self._namings], timeout=wait)
        pending = []
        for name, taken, future in self._saving:
            if not future.done():
                pending.append((name, taken, future))
            elif future.cancelled() or future.exception() is not None:  # a full disk, a read-only or
                self._say(f"Not saved: {name} (see the log)", t)          # stalled store
            else:
                count = future.result()
                self.enrolled.append((name, taken))
                log.info("enrolled %s: %d samples (%d in total)", name, taken, count)
                self._say(f"Enrolled {name} ({count} samples)", t)   # its faces are named anew with the new index
        self._saving = pending
        naming = []
        for name, future in self._namings:
            if not future.done():
                naming.append((name, future))
            elif future.cancelled() or future.exception() is not None:
                self._say(f"Not named: {name} (see the log)", t)
            else:
                views, count = future.result()
                self.enrolled.append((name, views))
                log.info("named an unknown face %s: %d views enrolled (%d samples in total)", name, views, count)
                self._say(f"Named {name} ({count} samples)", t)
        self._namings = naming

    def _say(self, text: str, t: float) -> None:
        self.message, self.message_until = text, t + 2.5

    # -- keys ----------------------------------------------------------------------------------
    def key(self, code: int, t: float) -> None:
        """Apply one key (a :mod:`realtime.keys` code: a code point, Enter, Esc, Backspace) at time ``t``."""
        self.keys, action = handle_key(self.keys, code)
        if action is None:
            return
        if action.kind == "quit":
            self.quit = True
        elif action.kind == "pause":
            self.paused = not self.paused
        elif action.kind in ("threshold_up", "threshold_down"):
            self._step_threshold(action.kind == "threshold_up", t)
        elif action.kind == "cancel":
            self._say("Enrollment cancelled", t)
        elif action.kind == "enroll":
            self._start_enrolment(action.name, t)
        elif action.kind == "start_naming_unknown":
            self._pick_unknown(t)
        elif action.kind == "name_unknown":
            self._name_unknown(action.name, t)

    def _pick_unknown(self, t: float) -> None:
        """The n key: the Unknown face under the mouse, else the largest Unknown face."""
        unknown = [f for f in self._faces if f.state == UNKNOWN]
        if self.collector is None or not unknown:
            self.keys = KeyState()
            self._say("Unknown faces are not kept: run with --collect-unknown" if self.collector is None
                      else "No Unknown face to name", t)
            return
        under = [f for f in unknown if self.pointer is not None and contains_point(f.box, *self.pointer)]
        chosen = max(under or unknown, key=lambda f: f.box[2] * f.box[3])
        self._naming_track = chosen.track

    def _checked_name(self, typed: str, t: float) -> str | None:
        """The typed name as stored (NFC, stripped: as `enroll` and `remove` take it), or None, said on screen."""
        try:
            return check_name(typed)
        except UserError as err:
            log.warning("%s", err)
            self._say(f"Name refused: {err}", t)
            return None

    def _name_unknown(self, typed: str, t: float) -> None:
        track, self._naming_track = self._naming_track, None
        name = self._checked_name(typed, t)
        if name is None:
            return
        future = None if track is None else self.collector.name(track, name, self.config.unknowns.name_views)
        if future is None:
            self._say(f"Not named: that face has no views kept yet ({name})", t)
            return
        self._namings.append((name, future))
        self._say(f"Naming {name}...", t)

    def _step_threshold(self, up: bool, t: float) -> None:
        step = self.config.recognition.threshold_step
        self.threshold = step_threshold(self.threshold, step if up else -step, self.threshold_cap)
        self.threshold_fixed = True
        self.tracker.reset()
        log.info("threshold %.3f", self.threshold)
        if up and self.threshold >= self.threshold_cap:
            self._say(f"Threshold at its cap {self.threshold_cap:.2f}: higher would match strangers", t)

    def _start_enrolment(self, typed: str, t: float) -> None:
        name = self._checked_name(typed, t)
        if name is None:
            return
        e = self.config.enrolment
        self.enrolment = KeyEnrolment.start(name, t, e.samples, e.seconds)
        self._say(f"Enrolling {name}: look at the camera and turn your head a little", t)

    def prompt(self) -> str | None:
        if not self.keys.naming:
            return None
        what = "Name this Unknown face" if self.keys.unknown else "Name"
        return f"{what}: {self.keys.text}_  (Enter saves, Esc cancels)"

    # -- drawing -------------------------------------------------------------------------------
    def annotate(self, frame: np.ndarray, result: FrameResult) -> np.ndarray:
        """Boxes, names and distances: what a recording keeps."""
        if self.message and result.time > self.message_until:
            self.message = None
        return draw_faces(frame, [FaceLabel(f.box, f.name, f.distance, f.nearest if f.state == DECIDING else None,
                                            f.unknown) for f in result.faces])

    def hud(self, frame: np.ndarray, ended: bool = False) -> np.ndarray:
        """FPS, threshold, key help, the name prompt, messages, PAUSED: on screen only, unless --record-hud."""
        return draw_hud(frame, fps=self.fps if self.config.window.show_fps else None, threshold=self.threshold,
                        prompt=self.prompt(), message=self.message, paused=self.paused, ended=ended,
                        naming=self.collector is not None)

    # -- the loop ------------------------------------------------------------------------------
    def run(self, source: VideoSource, options: RunOptions | None = None) -> dict:
        """Run until the source ends, ``q``/Esc, the window is closed, SIGINT/SIGTERM/SIGHUP or
        ``max_frames``; returns the summary (also the events file's last line).

        With a window, a file that ends stays on its last frame until a key is pressed. Whatever
        ends the loop, the recording (if any) is finished so it plays, and the summary is written."""
        self._match_source(source)
        if self.collector is not None:
            self.collector.source = source.name
        run = _Run(source, options or RunOptions())
        with _stop_on_signals(lambda: run.source.stop()) as stop:   # a reconnection in progress ends at once
            try:
                run.window = Window() if run.options.window else None
                frame = None
                while not (self.quit or stop.is_set() or run.limit_reached()):
                    if self.paused and run.window is not None:
                        self._wait_paused(run)
                        continue
                    frame = self._next_frame(run)
                    if frame is None:
                        break
                    self._step(run, frame)
                if frame is None and run.window is not None and not run.source.is_camera:
                    self._hold_last_frame(run, stop)      # the file ended (not q, a signal or --max-frames)
            finally:
                run.close()
            return self._finish(run, stop)

    def _match_source(self, source: VideoSource) -> None:
        """A camera runs the full detection on a worker (detection.worker auto), a file does not."""
        if source.is_camera != self.live and self.frame_index == 0:
            self.finder.close()
            self.live, self.finder = source.is_camera, self.recognizer.finder(source.is_camera)

    def _next_frame(self, run: "_Run") -> np.ndarray | None:
        frame = run.source.read()
        if frame is None and run.options.loop and not run.source.is_camera and run.frames > 0:
            log.info("%s ended: playing it again (--loop)", run.source.name)
            try:
                run.replay()
            except UserError as err:   # deleted or replaced meanwhile: the run ends here, its outputs kept
                what = str(err).split(": ")[0]
                self.failure = UserError(f"--loop: {run.original.name} could not be played again ({what}): the run "
                                         f"stopped after {run.frames} frames, which the events and the recording "
                                         f"keep; restore the file or leave out --loop")
                return None
            frame = run.source.read()
        return frame

    def _step(self, run: "_Run", frame: np.ndarray) -> None:
        """One frame: scripted keys, processing, events, drawing, recording, showing, keys."""
        o = run.options
        t = self._time(run.source, run.start)
        self._apply_keys(o.key_script.get(self.frame_index, ()), t, run)
        result = self.process(frame, t)
        run.count(result)
        self.fps = run.fps()
        if o.events is not None:
            o.events.write(json.dumps(result.event(), ensure_ascii=False) + "\n")
        if run.window is not None or o.recorder is not None or o.on_frame is not None:
            self._draw(run, frame, result)
        if o.on_frame is not None:
            o.on_frame(frame, result)
        if run.window is not None:
            run.window.show(frame)
            keys = run.window.keys(run.wait_ms())
            self.pointer = run.window.pointer
            self._apply_keys(keys, t, run)
        elif o.pace:  # headless, a file at its own rate: frames arrive as a camera would deliver them
            time.sleep(run.wait_ms() / 1000.0)

    def _draw(self, run: "_Run", frame: np.ndarray, result: FrameResult) -> None:
        """Annotate, record (without the HUD unless --record-hud), then add the HUD for the screen."""
        c0 = time.perf_counter()
        recorder, with_hud = run.options.recorder, run.options.record_hud
        self.annotate(frame, result)
        if recorder is not None and not with_hud:
            run.record(frame)
        if run.window is not None:
            run.annotated = frame.copy()    # redrawn with PAUSED or the end banner on top
        self.hud(frame)
        if recorder is not None and with_hud:
            run.record(frame)
        self.timings["draw"] = time.perf_counter() - c0

    def _apply_keys(self, keys, t: float, run: "_Run") -> None:
        for key in keys:
            self.key(key, t)
            if self.paused and run.window is None:
                log.info("pause ignored without a window")
                self.paused = False

    def _wait_paused(self, run: "_Run") -> None:
        """Show the last frame with PAUSED (and any name being typed) and wait for keys."""
        paused_at = time.perf_counter()
        if run.annotated is not None:
            run.window.show(self.hud(run.annotated.copy()))
        self._apply_keys(run.window.keys(30), self._time(run.source, run.start), run)
        if run.window.closed:
            self.quit = True
        run.pace_start += time.perf_counter() - paused_at  # a paused file resumes at its own rate
        run.idle += time.perf_counter() - paused_at

    def _hold_last_frame(self, run: "_Run", stop: threading.Event) -> None:
        """A file has ended: its last frame stays, saying so, until a key, a closed window or a signal."""
        if run.annotated is None:
            return
        run.window.show(self.hud(run.annotated.copy(), ended=True))
        log.info("%s ended: press any key to close the window", run.source.name)
        held = time.perf_counter()
        while not (stop.is_set() or run.window.closed or run.window.keys(50)):
            pass
        run.idle += time.perf_counter() - held   # waiting for a key is not playing: the summary's fps leaves it out

    def _finish(self, run: "_Run", stop: threading.Event) -> dict:
        elapsed = max(time.perf_counter() - run.start - run.idle, 1e-9)   # pauses and the end screen left out
        if self.collector is not None:
            self.collector.finish(wait=SAVE_GRACE)     # the faces still followed are stored a last time
        self.collect_saves(self._time(run.source, run.start), wait=SAVE_GRACE)   # the summary names them
        summary = {"frames": run.frames, "faces": run.faces, "fps": round(run.frames / elapsed, 2),
                   "seconds": round(elapsed, 3), "interrupted": stop.is_set(),
                   "enrolled": [{"name": n, "samples": k} for n, k in self.enrolled]}
        events = run.options.events
        if events is not None:
            events.write(json.dumps({"summary": summary}, ensure_ascii=False) + "\n")
            events.flush()
        if stop.is_set():
            log.info("stopped by %s", stop.signal_name)
        log.info("%d frames, %d faces, %.1f fps", run.frames, run.faces, summary["fps"])
        return summary

    def _time(self, source: VideoSource, start: float) -> float:
        """Frame time: a file's own clock (frame number / fps), a camera's wall clock."""
        if source.is_camera:
            return time.perf_counter() - start
        return self.frame_index / source.fps


def _people(count: int) -> str:
    return "1 person" if count == 1 else f"{count} people"


class _Run:
    """What one :meth:`App.run` works with: its source, options, window, counters and clock."""

    def __init__(self, source: VideoSource, options: RunOptions):
        self.source, self.original = source, source
        self.options = options
        self.window: Window | None = None
        self.annotated: np.ndarray | None = None     # the last frame shown, before its HUD
        self.frames = self.faces = 0
        self.start = self.pace_start = time.perf_counter()
        self.idle = 0.0                              # seconds paused or held on the last frame
        self._ticks: deque = deque(maxlen=30)        # FPS over the last 30 frames

    def limit_reached(self) -> bool:
        return self.options.max_frames is not None and self.frames >= self.options.max_frames

    def count(self, result: FrameResult) -> None:
        self.frames += 1
        self.faces += len(result.faces)
        self._ticks.append(time.perf_counter())

    def fps(self) -> float | None:
        if len(self._ticks) < 2:
            return None
        return (len(self._ticks) - 1) / max(self._ticks[-1] - self._ticks[0], 1e-6)

    def wait_ms(self) -> float:
        """How long to show this frame: a file plays at its own rate, a camera as fast as it comes."""
        if self.source.is_camera:
            return 1
        due = self.pace_start + self.frames / self.source.fps
        return max(1.0, (due - time.perf_counter()) * 1000)

    def record(self, frame: np.ndarray) -> None:
        if (frame.shape[1], frame.shape[0]) != self.original.size:   # a camera that came back at another size
            frame = cv2.resize(frame, self.original.size)
        self.options.recorder.write(frame)

    def replay(self) -> None:
        """The file again from its start (--loop)."""
        if self.source is not self.original:
            self.source.close()
        self.source = VideoSource(self.original.source)

    def close(self) -> None:
        if self.source is not self.original:
            self.source.close()
        if self.options.recorder is not None:
            self.options.recorder.release()
        if self.window is not None:
            self.window.close()


class _StopEvent(threading.Event):
    signal_name = ""


@contextlib.contextmanager
def _stop_on_signals(on_signal: Callable[[], None] | None = None):
    """SIGINT (Ctrl-C), SIGTERM and SIGHUP end the loop the way ``q`` does, so the recording and
    the events summary are finished; ``on_signal`` (which must only set flags) is called too. The
    previous handlers come back afterwards."""
    stop = _StopEvent()

    def handler(number, _frame):
        stop.signal_name = signal.Signals(number).name
        stop.set()
        if on_signal is not None:
            on_signal()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            number = getattr(signal, name, None)
            if number is not None:
                previous[number] = signal.signal(number, handler)
    try:
        yield stop
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
