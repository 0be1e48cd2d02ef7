"""Faces found: Haar alone, and Haar with YuNet's second look (``detection.second_look``).

- celebrity5 photos (train and val, as ``enroll`` and ``identify`` read them): the share of photos
  in which a face is found, and the boxes left out because alignment found no face of their own
  (a shirt, a second box on one face);
- the shared clips through the live loop (``App.process``, detection inline, as for a file): the
  share of frames showing a face, and what the second look costs per frame.

    FACES_DATA=... python -m benchmarks.detection [--config FILE]
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from benchmarks.inputs import clips, read_frames, table_command

SPLITS = ("train", "val")


def photo_recall(data: Path, config) -> dict:
    """Photos with a face found: Haar's raw boxes, the photo path without and with the second look."""
    from realtime.crops import FaceCropper
    from realtime.images import read_image
    with_look = FaceCropper(config.detection, config.alignment, config.model.input_size)
    without = FaceCropper(dataclasses.replace(config.detection, second_look="none"), config.alignment,
                          config.model.input_size)
    photos = sorted(p for split in SPLITS for p in (data / "celebrity5" / split).glob("*/*.jpg"))
    raw = kept = looked = boxes_raw = boxes_kept = 0
    for photo in photos:
        image = read_image(photo)
        haar = with_look.detector.detect(image)
        faces = without.detect(image)
        raw += bool(haar)
        kept += bool(faces)
        boxes_raw, boxes_kept = boxes_raw + len(haar), boxes_kept + len(faces)
        looked += bool(faces or with_look.detect(image))
    n = max(len(photos), 1)
    return {"photos": len(photos), "haar": round(raw / n, 4), "haar_checked": round(kept / n, 4),
            "second_look": round(looked / n, 4), "boxes_dropped": boxes_raw - boxes_kept}


def clip_recall(clip: Path, recognizer_for, gallery) -> dict:
    """Frames of a clip showing a face in the live loop, without and with the second look
    (``recognizer_for(look)``: a Recognizer with ``detection.second_look`` set to ``look``)."""
    from realtime.app import App
    frames = read_frames(clip, 100_000)
    row = {"clip": clip.stem, "frames": len(frames)}
    for look in ("none", "yunet"):
        app = App(recognizer_for(look), gallery)
        shown, seconds = 0, 0.0
        for i, frame in enumerate(frames):
            shown += bool(app.process(frame, t=i / 25).faces)
            seconds += app.timings["detect"]
        app.close()
        row[look] = round(shown / max(len(frames), 1), 4)
        row[f"detect_ms_{look}"] = round(1000 * seconds / max(len(frames), 1), 2)
        row[f"second_looks_{look}"] = app.finder.second_looks
    return row


def measure(data: Path, config) -> dict:
    import tempfile

    from realtime.config import apply_overrides
    from realtime.gallery import SQLiteStore
    from realtime.recognizer import Recognizer
    live = apply_overrides(config, {"detection.worker": "never"})
    recognizers = {look: Recognizer(config=apply_overrides(live, {"detection.second_look": look}))
                   for look in ("none", "yunet")}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, \
            SQLiteStore(Path(tmp) / "empty.db", recognizers["none"].encoder.model_id) as gallery:
        rows = [clip_recall(clip, recognizers.__getitem__, gallery) for clip in clips(data)]
    photos = photo_recall(data, config)
    return {"photos": photos, "clips": rows, "seconds": round(time.perf_counter() - started, 1)}


def markdown(result: dict) -> str:
    p = result["photos"]
    lines = [f"celebrity5 photos ({p['photos']}, train and val) with a face found: Haar's boxes {p['haar']:.1%}; "
             f"boxes holding a face of their own {p['haar_checked']:.1%} ({p['boxes_dropped']} boxes left out); "
             f"with the second look {p['second_look']:.1%}", "",
             "| clip | frames | shown with a face: Haar | with the second look | detect ms / frame: Haar | "
             "with the second look | second looks |", "|---|---|---|---|---|---|---|"]
    for r in result["clips"]:
        lines.append(f"| {r['clip']} | {r['frames']} | {r['none']:.1%} | {r['yunet']:.1%} | {r['detect_ms_none']:.1f} | "
                     f"{r['detect_ms_yunet']:.1f} | {r['second_looks_yunet']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    return table_command(argv, "python -m benchmarks.detection", __doc__.splitlines()[0], measure, markdown)


if __name__ == "__main__":
    raise SystemExit(main())
