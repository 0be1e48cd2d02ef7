"""``python -m benchmarks.recording``: what ``--record`` costs per frame, OpenCV's MPEG-4 Part 2 (mp4v)
against H.264 through PyAV (what an .mp4 records when PyAV is installed), on a real clip at three sizes."""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.inputs import DataError, data_flag, data_folder, read_frames

CLIP = "sadtalker_WDA_KatieHill_000.mp4"
SIZES = [(512, 512), (640, 480), (1280, 720)]


def opencv_mp4v(path: Path, size: tuple[int, int]):
    return cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, size)


def pyav_h264(path: Path, size: tuple[int, int]):
    from realtime.recording import H264Writer
    return H264Writer(path, 25.0, size, "mp4")


def per_frame(make, frames: list[np.ndarray], folder: Path, name: str) -> tuple[float, int]:
    """Milliseconds per frame (write and release together, best of three) and the file's size."""
    best = float("inf")
    for attempt in range(3):
        path = folder / f"{name}-{attempt}.mp4"
        writer = make(path, frames[0].shape[1::-1])
        started = time.perf_counter()
        for frame in frames:
            writer.write(frame)
        writer.release()
        best = min(best, (time.perf_counter() - started) / len(frames) * 1000)
    return best, path.stat().st_size


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.recording", description=__doc__.splitlines()[0])
    data_flag(p)
    p.add_argument("--frames", type=int, default=120, help="frames of the clip written at each size (default 120)")
    args = p.parse_args(argv)
    try:
        data = data_folder(args.data, ("videos",))
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    frames = read_frames(data / "videos" / CLIP, args.frames)
    writers = [("OpenCV mp4v (MPEG-4 Part 2)", opencv_mp4v)]
    try:
        import av  # noqa: F401
        writers.append((f"PyAV {av.__version__} libx264 (H.264)", pyav_h264))
    except ImportError:
        print("PyAV is not installed: H.264 not measured (pip install av)", file=sys.stderr)
    print(f"| writer | {' | '.join(f'{w}x{h}' for w, h in SIZES)} |")
    print(f"|---|{'---|' * len(SIZES)}")
    with tempfile.TemporaryDirectory() as folder:
        for label, make in writers:
            cells = []
            for size in SIZES:
                sized = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
                ms, nbytes = per_frame(make, sized, Path(folder), f"{make.__name__}-{size[0]}")
                cells.append(f"{ms:.2f} ms/frame, {nbytes / len(sized) / 1024:.1f} KiB/frame")
            print(f"| {label} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
