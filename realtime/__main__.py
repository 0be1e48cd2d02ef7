"""``python -m realtime``: the live program, and enroll / list / remove / identify.

Never imports TensorFlow: the encoder runs through the TFLite runtime.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from realtime.config import Config, load_config, resolve_path
from realtime.errors import UserError, run_command, setup_logging

log = logging.getLogger("realtime")

# FFmpeg's own log lines would break the one-line error for a file that is not a video.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

COMMANDS = ("enroll", "list", "remove", "identify")


def _abs(value: str | None) -> str | None:
    """Flag paths are relative to the cwd (config paths to the project)."""
    return None if value is None else str(Path(value).expanduser().resolve())


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="settings file (default: the project's config.yaml)")
    parser.add_argument("--gallery", metavar="FILE", help="gallery database (default: recognition.gallery)")
    parser.add_argument("--model", metavar="DIR", help="folder with encoder.json and encoder.tflite (default: models/)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _threshold_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threshold", type=float, metavar="T",
                        help="accept a match at Euclidean distance <= T (default: from encoder.json)")


def _load(args, extra: dict | None = None) -> Config:
    overrides = {"recognition.gallery": _abs(args.gallery), "model.dir": _abs(args.model),
                 "recognition.threshold": getattr(args, "threshold", None)}
    overrides.update(extra or {})
    return load_config(_abs(args.config), overrides)


def _encoder(config: Config):
    from realtime.encoder import Encoder
    return Encoder(resolve_path(config.model.dir))


def _gallery(config: Config, model_id: str | None, create: bool = True):
    from realtime.gallery import Gallery
    return Gallery(resolve_path(config.recognition.gallery), model_id, create=create)


def _threshold(config: Config, encoder) -> float:
    return config.recognition.threshold if config.recognition.threshold is not None else encoder.threshold


# -- live ------------------------------------------------------------------------------------------
def live_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m realtime",
        description="Live face recognition on a camera or a video file. Keys in the window: e enroll the largest "
                    "face (type a name, Enter), space pause, +/- threshold, q or Esc quit.",
        epilog="other commands: enroll NAME PATH..., list, remove NAME, identify PATH... "
               "(python -m realtime COMMAND --help)")
    p.add_argument("--source", help="camera index or video file (default: recognition.source)")
    _common(p)
    _threshold_flag(p)
    p.add_argument("--record", metavar="OUT.mp4", help="write the annotated frames to this video")
    p.add_argument("--headless", action="store_true", help="no window; video files run as fast as possible")
    p.add_argument("--events", metavar="FILE", help="write one JSON line per frame to FILE (- for stdout)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--keys", help=argparse.SUPPRESS)  # scripted keys for tests: "e@30,n,a,m,e,ENTER"
    p.add_argument("--snapshot", help=argparse.SUPPRESS)  # save the last annotated frame (PNG) at exit
    return p


def live_main(argv: Sequence[str] | None) -> int:
    args = live_parser().parse_args(argv)
    setup_logging(args.verbose)
    source_flag = args.source
    if source_flag is not None and not source_flag.strip().isdigit():
        source_flag = _abs(source_flag)
    config = _load(args, {"recognition.source": source_flag})
    import cv2
    from realtime.app import App, open_recorder
    from realtime.capture import VideoSource
    from realtime.keys import parse_key_script

    if args.max_frames is not None and args.max_frames < 1:
        raise UserError("--max-frames must be at least 1")
    try:
        key_script = parse_key_script(args.keys) if args.keys else None
    except ValueError as err:
        raise UserError(f"--keys: {err}") from None
    if (not args.headless and sys.platform.startswith("linux") and not os.environ.get("DISPLAY")
            and not os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("QT_QPA_PLATFORM")):
        # Qt would abort the whole process without a display; say it in one line instead.
        raise UserError("no display to open a window on (DISPLAY is not set): run with --headless")
    rec = config.recognition
    source_value = rec.source
    if isinstance(source_value, str) and not source_value.strip().isdigit():
        source_value = str(resolve_path(source_value))
    source = VideoSource(source_value, threaded=rec.threaded_capture, retries=rec.camera_retries,
                         backoff=rec.camera_backoff)
    events = None
    recorder = None
    gallery = None
    closers: list = []
    try:
        encoder = _encoder(config)
        gallery = _gallery(config, encoder.model_id)
        recorder = open_recorder(args.record, source.fps, source.size) if args.record else None
        if args.events == "-":
            events = sys.stdout
        elif args.events:
            try:
                events = open(args.events, "w", encoding="utf-8")
            except OSError as err:
                raise UserError(f"--events {args.events} cannot be written: {err.strerror or err}") from None
        app = App(config, encoder, gallery, _threshold(config, encoder), live=source.is_camera)
        closers.append(app.close)
        last: dict = {}
        on_frame = (lambda frame, result: last.__setitem__(0, frame.copy())) if args.snapshot else None
        app.run(source, window=not args.headless, events=events, recorder=recorder,
                max_frames=args.max_frames, key_script=key_script, on_frame=on_frame)
        if args.snapshot and last:
            cv2.imwrite(_abs(args.snapshot), last[0])
        if source.lost:
            kept = f"; the recording {args.record} holds them" if args.record else ""
            raise UserError(f"camera {source.source} stopped delivering frames and did not come back after "
                            f"{source.retries} retries ({app.frame_index} frames processed{kept}): check its "
                            f"cable, then start again")
    finally:
        for close in closers:
            close()
        if recorder is not None:
            recorder.release()
        if events is not None and events is not sys.stdout:
            events.close()
        source.close()
        if gallery is not None:
            gallery.close()
    return 0


# -- enroll / list / remove / identify -------------------------------------------------------------
def _photos(paths: Sequence[str]) -> list[Path]:
    from realtime.faces import IMAGE_SUFFIXES
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                log.warning("%s: no photos in this folder", path)
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise UserError(f"{path} not found: pass photos or folders of photos")
    return out


def _faces_in(photo: Path, config: Config, size: int):
    """(boxes, crops) for one photo, or None when it cannot be read (reported)."""
    from realtime.faces import UnreadableImage, crop_faces, find_faces, read_image
    try:
        image = read_image(photo)
    except UnreadableImage as err:
        log.warning("%s", err)
        return None
    boxes = find_faces(image, config.detection)
    return boxes, crop_faces(image, boxes, size)


def enroll_main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(prog="python -m realtime enroll",
                                description="Enroll a person from photos: each photo with exactly one face is one "
                                            "sample; photos with no face or several faces are reported and skipped.")
    p.add_argument("name", help="the person's name (any text)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="photos or folders of photos")
    _common(p)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    from realtime.gallery import check_name
    check_name(args.name)  # before the slow part: a bad name is refused at once
    config = _load(args)
    photos = _photos(args.paths)
    encoder = _encoder(config)
    import numpy as np
    crops, skipped = [], 0
    for photo in photos:
        found = _faces_in(photo, config, encoder.input_size)
        if found is None:
            skipped += 1
            continue
        boxes, faces = found
        if len(boxes) != 1:
            log.warning("%s: %s, skipped", photo, "no face found" if not boxes else f"{len(boxes)} faces found")
            skipped += 1
            continue
        crops.append(faces[0])
    if not crops:
        raise UserError(f"no photo with exactly one face among {len(photos)}: nothing enrolled")
    batch = np.stack(crops)
    emb = np.concatenate([encoder.encode(batch[i:i + 64]) for i in range(0, len(batch), 64)])
    with _gallery(config, encoder.model_id) as gallery:
        total = gallery.add_samples(args.name, emb)
    print(f"enrolled {args.name}: {len(emb)} samples from {len(photos)} photos, {skipped} skipped, {total} in total")
    return 0


def list_main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(prog="python -m realtime list", description="Print each person and their sample count.")
    _common(p)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    config = _load(args)
    path = resolve_path(config.recognition.gallery)
    if not path.exists():
        log.info("gallery %s does not exist yet: nobody enrolled", path)
        return 0
    with _gallery(config, None, create=False) as gallery:
        people = gallery.people()
    if not people:
        log.info("gallery %s is empty", path)
    for name, count in people:
        print(f"{name},{count}")
    return 0


def remove_main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(prog="python -m realtime remove", description="Remove a person and their samples.")
    p.add_argument("name")
    _common(p)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    config = _load(args)
    with _gallery(config, None, create=False) as gallery:
        count = gallery.remove(args.name)
    print(f"removed {args.name} ({count} samples)")
    return 0


def identify_main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(prog="python -m realtime identify",
                                description="Print path,name,distance for each face in photos "
                                            "(unknown beyond the threshold).")
    p.add_argument("paths", nargs="+", metavar="PATH", help="photos or folders of photos")
    _common(p)
    _threshold_flag(p)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    config = _load(args)
    photos = _photos(args.paths)
    encoder = _encoder(config)
    threshold = _threshold(config, encoder)
    from realtime.matching import match
    with _gallery(config, encoder.model_id) as gallery:
        index = gallery.index()
        if len(index) == 0:
            log.warning("gallery %s is empty: every face is unknown", gallery.path)
        for photo in photos:
            found = _faces_in(photo, config, encoder.input_size)
            if found is None:
                continue
            boxes, crops = found
            if not boxes:
                log.warning("%s: no face found", photo)
            for m in match(index, encoder.encode(crops), threshold, config.recognition.match):
                distance = "" if m.nearest is None else f"{m.distance:.4f}"
                print(f"{photo},{m.name if m.name is not None else 'unknown'},{distance}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command, rest = live_main, argv
    if argv and argv[0] in COMMANDS:
        command = {"enroll": enroll_main, "list": list_main, "remove": remove_main, "identify": identify_main}[argv[0]]
        rest = argv[1:]
    try:
        return run_command(command, rest)
    except BrokenPipeError:  # `... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
