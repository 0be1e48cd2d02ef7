"""``--record``: the annotated video, kept only when it is complete.

The video is written under a temporary name beside its final one and renamed into place by
:meth:`Recording.release`: a run ended by a key, a signal or an error leaves a complete, playable
file, and a run that never started leaves nothing. OpenCV's writer says nothing when a write fails
(``write`` returns None; FFmpeg logs "Failed to write frame" and goes on), so the recording checks
for itself: every second of video, that its file system has room and the file is under the
process's file-size limit; and once released, that the file holds every frame written (an MP4
whose index never reached the disk, "moov atom not found", holds none). A recording that fails is
one error line, exit status 2, and the previous file of that name is kept as it was.

An MP4 or MOV is H.264 where it can be, so a browser plays it: OpenCV's wheels write only MPEG-4
Part 2 (``mp4v``, which browsers do not play), so H.264 comes from PyAV (``pip install av``: its
wheels bundle FFmpeg with libx264; BSD code, GPL binaries), preset ultrafast on one thread: about
the cost of OpenCV's mp4v per frame and a fifth smaller (``python -m benchmarks.recording``: 1.9
against 1.5 ms at 512x512, 7.0 against 6.3 ms at 1280x720 on a busy 2-core machine), with the
index at the front of the file (``+faststart``) so a browser starts playing at once. Without
PyAV, an OpenCV built with an H.264 encoder is used, else mp4v, and the log says the file needs a
player such as VLC.
"""
from __future__ import annotations

import logging
import os
import resource
import struct
import tempfile
from pathlib import Path

import cv2
import numpy as np

from realtime.errors import UserError, opencv_silent
from realtime.outputs import PendingFile

log = logging.getLogger(__name__)

# The largest side MPEG-4 Part 2 (mp4v) encodes, and the smallest.
MAX_SIDE = 8191
MIN_SIDE = 2
# Below this much free space (bytes) the file system counts as full: FFmpeg writes 32 KiB at a time.
MIN_FREE = 64 * 1024


def write_problem(path: Path) -> str | None:
    """Why writes to ``path`` fail or are about to (a full file system, the file-size limit), or None."""
    try:
        room = os.statvfs(path.parent)
        size = os.stat(path).st_size
    except OSError as err:
        return err.strerror or str(err)
    free = (room.f_bfree if os.geteuid() == 0 else room.f_bavail) * room.f_frsize
    if free < MIN_FREE:
        return "no space left on device"
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and size >= limit:
        return f"the file size limit of {limit:,} bytes (ulimit -f) is reached"
    return None


def missing_frames(path: Path, written: int) -> str | None:
    """Why the video at ``path`` does not hold the ``written`` frames, or None.

    Read from the container's own structure, not by opening the file with OpenCV (whose FFmpeg
    opens one file at a time: a stream reconnecting on another thread would hold the check up):
    an MP4/MOV must be whole boxes end to end with its index (``moov``) counting every frame; an
    AVI whole chunks with its frame count. Other containers are taken as written."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            size = os.fstat(f.fileno()).st_size
            if head[4:8] == b"ftyp":
                held = _mp4_frames(f, size)
            elif head[:4] == b"RIFF" and head[8:12] == b"AVI ":
                held = _avi_frames(f, size)
            else:
                return None if size > 0 else "the file is empty"
    except OSError as err:
        return f"it cannot be read back ({err.strerror or err})"
    if held is None:
        return "the file was left incomplete and cannot be played"
    if held != written:
        return f"the file holds {held} of the {written} frames written"
    return None


def _boxes(f, start: int, end: int):
    """(type, data start, data end) of the ISO BMFF boxes between ``start`` and ``end``; None when
    they do not fill that span exactly (a file cut short)."""
    found, at = [], start
    while at < end:
        f.seek(at)
        head = f.read(8)
        if len(head) < 8:
            return None
        length, kind = struct.unpack(">I4s", head)
        header = 8
        if length == 1:
            big = f.read(8)
            if len(big) < 8:
                return None
            length, header = struct.unpack(">Q", big)[0], 16
        elif length == 0:
            length = end - at
        if length < header or at + length > end:
            return None
        found.append((kind, at + header, at + length))
        at += length
    return found


def _mp4_frames(f, size: int) -> int | None:
    """Samples of the first video track (``stsz``), or None when the file is not whole."""
    top = _boxes(f, 0, size)
    if top is None:
        return None
    moov = next(((a, b) for kind, a, b in top if kind == b"moov"), None)
    if moov is None:
        return None
    for kind, a, b in _boxes(f, *moov) or []:
        if kind != b"trak":
            continue
        path = [(a, b)]
        for wanted in (b"mdia", b"minf", b"stbl", b"stsz"):
            inner = _boxes(f, *path[-1]) or []
            found = next(((x, y) for k, x, y in inner if k == wanted), None)
            if found is None:
                break
            path.append(found)
        else:
            f.seek(path[-1][0] + 8)              # version and flags, sample size, then the count
            return struct.unpack(">I", f.read(4))[0]
    return None


def _avi_frames(f, size: int) -> int | None:
    """``avih``'s frame count (``dmlh``'s for an OpenDML file past 1 GB), or None when the file is
    not whole chunks or has no index."""
    f.seek(4)
    riff = struct.unpack("<I", f.read(4))[0]
    if riff + 8 > size:
        return None
    f.seek(12)
    data = f.read(min(riff - 4, 1 << 16))           # the header list comes first
    counts = {}
    for tag, offset in ((b"dmlh", 8), (b"avih", 8 + 16)):     # dwTotalFrames of each header
        at = data.find(tag)
        if at >= 0 and len(data) >= at + offset + 4:
            counts[tag] = struct.unpack("<I", data[at + offset:at + offset + 4])[0]
    total = counts.get(b"dmlh") or counts.get(b"avih")         # dmlh's is 0 below 1 GB
    f.seek(8 + riff)
    after = f.read(12)                              # nothing, or an OpenDML extension RIFF 'AVIX'
    if after and not (after[:4] == b"RIFF" and after[8:12] == b"AVIX"):
        return None
    return total


# Containers of the MP4 family that browsers play H.264 in, by suffix, as FFmpeg names them.
H264_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}


class H264Writer:
    """H.264 (libx264 through PyAV) into an MP4/MOV, with OpenCV's writer's two calls (``write``,
    ``release``). A frame of odd width or height is padded by one edge pixel (4:2:0 needs even
    sides). Like OpenCV's writer it never raises while writing: the first failure is kept in
    ``error`` and said by :class:`Recording`, which also reads the file back at the end."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], container: str):
        import av
        from fractions import Fraction
        width, height = size
        self.even = (width + width % 2, height + height % 2)
        self.error: str | None = None
        self._av = av
        self._output = av.open(str(path), "w", format=container, options={"movflags": "+faststart"})
        try:
            self._stream = self._output.add_stream("libx264", rate=Fraction(float(fps)).limit_denominator(1001))
            self._stream.width, self._stream.height = self.even
            self._stream.pix_fmt = "yuv420p"
            self._stream.codec_context.options = {"preset": "ultrafast", "crf": "23", "threads": "1"}
        except BaseException:
            self._output.close()
            raise

    def write(self, frame: np.ndarray) -> None:
        if self.error is not None:
            return
        height, width = frame.shape[:2]
        if (width, height) != self.even:
            frame = np.pad(frame, ((0, self.even[1] - height), (0, self.even[0] - width), (0, 0)), mode="edge")
        try:
            for packet in self._stream.encode(self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame),
                                                                               format="bgr24")):
                self._output.mux(packet)
        except (OSError, ValueError, self._av.error.FFmpegError) as err:   # a full disk, a file-size limit
            self.error = _reason(err)

    def release(self) -> None:
        if self._output is None:
            return
        output, self._output = self._output, None
        try:
            if self.error is None:
                for packet in self._stream.encode():   # the frames the encoder still holds
                    output.mux(packet)
        except (OSError, ValueError, self._av.error.FFmpegError) as err:
            self.error = self.error or _reason(err)
        finally:
            try:
                output.close()                         # the index (moov), moved to the front
            except (OSError, ValueError, self._av.error.FFmpegError) as err:
                self.error = self.error or _reason(err)


def _reason(err: BaseException) -> str:
    """An encoder's or a file system's error in words (``No space left on device``)."""
    code = getattr(err, "errno", None)
    return os.strerror(code).lower() if isinstance(code, int) and code > 0 else (str(err) or type(err).__name__)


def _h264_writer(path: Path, fps: float, size: tuple[int, int], shown: Path) -> H264Writer | None:
    """H.264 through PyAV for an MP4/MOV file (not a pipe or a device: the index is moved to the front
    at the end), when PyAV is installed and the frame size is one H.264 takes; else None."""
    container = H264_CONTAINERS.get(shown.suffix.lower())
    width, height = size
    if container is None or path == shown or not (MIN_SIDE <= min(width, height) and max(width, height) <= MAX_SIDE):
        return None
    try:
        import av
    except ImportError:
        return None
    try:
        return H264Writer(path, fps, size, container)
    except (OSError, ValueError, av.error.FFmpegError) as err:   # an FFmpeg without libx264 (a source build)
        log.debug("PyAV cannot write H.264 here (%s): OpenCV records instead", _reason(err))
        return None


class Recording:
    """A video being written under a temporary name, renamed into place by :meth:`release` once
    it is known to hold every frame."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        self.pending = PendingFile(path, "--record")
        self.path = self.pending.path
        self.size = tuple(int(v) for v in size)
        self.fps = float(fps)
        self.frames = 0
        try:
            self.writer, self.codec = _video_writer(self.pending.temp, fps, self.size, self.path)
        except BaseException:
            self.pending.discard()
            raise
        self._check_every = max(1, round(self.fps))        # about once a second of video

    def write(self, frame: np.ndarray) -> None:
        with opencv_silent():
            self.writer.write(frame)
        self.frames += 1
        if not self.pending.direct and self.frames % self._check_every == 0:
            problem = write_problem(self.pending.temp) or getattr(self.writer, "error", None)   # its words first
            if problem:
                self._fail(problem)

    def release(self) -> None:
        """Finish the file and rename it into place; a file that did not get every frame is removed
        instead (the previous file of that name stays) and said in one UserError."""
        if self.pending.done:
            return
        with opencv_silent():
            self.writer.release()
        if not self.pending.direct and self.frames:
            problem = (write_problem(self.pending.temp) or getattr(self.writer, "error", None)
                       or missing_frames(self.pending.temp, self.frames))
            if problem:
                self._fail(problem)
        self.pending.commit()

    def _fail(self, problem: str) -> None:
        with opencv_silent():
            self.writer.release()
        self.pending.discard()
        kept = f"the previous {self.path.name} is kept as it was" if self.path.exists() else "nothing was recorded"
        raise UserError(f"--record {self.path} cannot be written ({problem}) after {self.frames} frames: {kept}; "
                        f"free space or record elsewhere")


def _video_writer(path: Path, fps: float, size: tuple[int, int],
                  shown: Path) -> tuple["cv2.VideoWriter | H264Writer", str]:
    """H.264 through PyAV (an MP4/MOV), else H.264 (avc1) where this OpenCV can write it, else MPEG-4
    Part 2 (mp4v), said in the log with what plays it."""
    h264 = _h264_writer(path, fps, size, shown)
    if h264 is not None:
        return h264, "h264"
    with opencv_silent():   # a failed codec probe is not an error
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"avc1"), float(fps), size)
    if writer.isOpened():
        return writer, "avc1"
    writer.release()
    log.info("recording as MPEG-4 Part 2 (mp4v), which browsers do not play (VLC and most players do): "
             "`pip install av` records H.264")
    with opencv_silent():
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
    if not writer.isOpened():
        raise UserError(f"--record {shown}: {_why_not(shown.suffix, size)}")
    return writer, "mp4v"


def _why_not(suffix: str, size: tuple[int, int]) -> str:
    """Why no encoder opened: the frame size (beyond MPEG-4's), or the file name's container."""
    width, height = size
    if max(width, height) > MAX_SIDE or min(width, height) < MIN_SIDE:
        return (f"the source's {width}x{height} frames cannot be encoded (MPEG-4 takes {MIN_SIDE} to {MAX_SIDE} "
                f"pixels a side): record a smaller source, or leave out --record")
    with tempfile.TemporaryDirectory() as folder, opencv_silent():   # does the container take a small video?
        probe = cv2.VideoWriter(str(Path(folder) / f"probe{suffix}"), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (64, 64))
        opened = probe.isOpened()
        probe.release()
    if not opened:
        return "OpenCV cannot write a video of this name (use a .mp4 or .avi name)"
    return f"OpenCV cannot encode {width}x{height} frames here: record a smaller source, or leave out --record"


def open_recorder(path: str | Path, fps: float, size: tuple[int, int]) -> Recording:
    """The recording, opened before the loop starts so a bad path fails at once."""
    return Recording(path, fps, size)
