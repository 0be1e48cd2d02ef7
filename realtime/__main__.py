"""``python -m realtime``: the live program, and enroll / list / remove / identify / verify.

A thin layer over :mod:`realtime.api` (photos) and :class:`realtime.app.App` (the live loop).
Global options (``--config``, ``--gallery``, ``--model``, ``-v``) go before or after the command.
Never imports TensorFlow: the encoder runs through the TFLite runtime.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Callable, Sequence

from realtime.config import DEFAULT_CONFIG_PATH, Config, load_config, resolve_path
from realtime.errors import UserError, counted, run_command, setup_logging
from realtime.gallery import configured_location, parse_location

log = logging.getLogger("realtime")

# FFmpeg's own log lines would break the one-line error for a file that is not a video.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def _abs(value: str | None) -> str | None:
    """Flag paths are relative to the cwd (config paths to the project)."""
    return None if value is None else str(Path(value).expanduser().resolve())


@functools.lru_cache(maxsize=1)
def _defaults() -> Config:
    """config.yaml's values, for --help (its dataclass defaults if the file is broken: --help still works)."""
    try:
        return load_config()
    except UserError:
        return Config()


def _gallery_shown(config: Config) -> str:
    """The configured gallery as --help may show it: a URL as written with its password masked
    (never made into a path), a path resolved; never an error (--help must work)."""
    from realtime.gallery import shown_location
    try:
        return shown_location(configured_location(config))
    except UserError:
        return shown_location(config.recognition.gallery)


def _shown(value) -> str:
    return str(value).replace("%", "%%")  # argparse %-formats help text


@functools.lru_cache(maxsize=2)
def _default_threshold(pair: bool) -> str:
    """The threshold a command uses when --threshold is not given, as --help says it."""
    config = _defaults()
    if config.recognition.threshold is not None:
        return f"{config.recognition.threshold:g}, recognition.threshold"
    try:
        from realtime.encoder import read_model_info
        from realtime.thresholds import ThresholdPolicy
        policy = ThresholdPolicy(read_model_info(resolve_path(config.model.dir)), config.recognition)
        if pair:
            return f"{policy.pair():.3f}, from encoder.json: the one-to-one point measured at training"
        return f"{policy.for_gallery():.3f}, from encoder.json: measured at training for the gallery's size"
    except UserError:
        return "the model's encoder.json"


def _common(parser: argparse.ArgumentParser) -> None:
    config = _defaults()
    parser.add_argument("--config", metavar="FILE",
                        help=f"settings file (default: {_shown(DEFAULT_CONFIG_PATH)})")
    parser.add_argument("--gallery", metavar="FILE",
                        help=f"gallery database (default: {_shown(_gallery_shown(config))}, "
                             f"recognition.gallery in the settings file)")
    parser.add_argument("--model", metavar="DIR",
                        help=f"folder with encoder.json and encoder.tflite (default: "
                             f"{_shown(resolve_path(config.model.dir))}, the shipped encoder)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and the messages of third-party libraries (LiteRT, TensorFlow, OpenCV)")


def _threshold_flag(parser: argparse.ArgumentParser, pair: bool = False) -> None:
    parser.add_argument("--threshold", type=float, metavar="T",
                        help=f"a face matches at Euclidean distance <= T (default: {_shown(_default_threshold(pair))})")


def _json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print JSON lines instead of CSV ({what})")


def _load(args, extra: dict | None = None) -> Config:
    if getattr(args, "threshold", None) is not None:
        from realtime.thresholds import check_threshold
        check_threshold(args.threshold, "--threshold")  # nan, inf, 100: refused before anything loads
    gallery = None if args.gallery is None else str(parse_location(args.gallery))
    overrides = {"recognition.gallery": gallery, "model.dir": _abs(args.model),
                 "recognition.threshold": getattr(args, "threshold", None)}
    overrides.update(extra or {})
    return load_config(_abs(args.config), overrides)


def _recognizer(config: Config):
    from realtime.recognizer import Recognizer
    return Recognizer(config=config)


def _gallery(config: Config, model_id: str | None, create: bool = True, watch: bool = False):
    """The configured gallery store (``model_id`` None: any encoder's, for list and remove)."""
    from realtime.gallery import open_gallery
    return open_gallery(configured_location(config), model_id, create=create, watch=watch)


def _csv_writer():
    """RFC 4180 quoting (a name "Lee, Ann" or a path with a comma stays one field)."""
    return csv.writer(sys.stdout, lineterminator="\n")


# -- live ------------------------------------------------------------------------------------------
def live_parser() -> argparse.ArgumentParser:
    config = _defaults()
    p = argparse.ArgumentParser(
        prog="python -m realtime",
        description="Live face recognition on a camera, a stream or a video file. Keys in the window: e enroll the "
                    "largest face (type a name, Enter), n name the Unknown face under the mouse or the largest "
                    "(with --collect-unknown), space pause, +/- threshold, q or Esc quit.",
        epilog="other commands: enroll NAME PATH... | enroll NAME --source CLIP | enroll --people DIR, list, remove NAME, identify PATH..., "
               "verify PHOTO_A PHOTO_B, gallery copy SRC DST, unknowns [show ID | name ID NAME | forget ID] "
               "(python -m realtime COMMAND --help). Global options (--config, --gallery, --model, -v) may also "
               "come before the command.")
    p.add_argument("--source", help="camera index, video file, or stream URL (rtsp://, rtmp://, http(s)://, udp://) "
                                    f"or GStreamer pipeline (default: {_shown(config.capture.source)}, "
                                    f"capture.source)")
    _common(p)
    _threshold_flag(p)
    p.add_argument("--record", metavar="OUT.mp4", help="write the annotated frames to this video")
    p.add_argument("--record-hud", action="store_true",
                   help="record the on-screen help, FPS and threshold too (default: boxes and names only)")
    p.add_argument("--loop", action="store_true", help="play a video file again from its start when it ends")
    p.add_argument("--pace", action="store_true",
                   help="with --headless: play a video file at its own frame rate, as a camera delivers frames "
                        "(default: as fast as the CPU allows)")
    p.add_argument("--headless", action="store_true", help="no window; video files run as fast as possible")
    p.add_argument("--events", metavar="FILE", help="write one JSON line per frame to FILE (- for stdout), "
                                                    "and a summary line at the end (schema: README)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames (default: no limit)")
    p.add_argument("--collect-unknown", action="store_true", default=None,
                   help="keep the best views of faces that stay Unknown, grouped by person, to name later "
                        "(python -m realtime unknowns; the n key names the Unknown face under the mouse) "
                        f"(default: {'on' if config.recognition.collect_unknown else 'off'}, "
                        "recognition.collect_unknown)")
    p.add_argument("--keys", help=argparse.SUPPRESS)  # scripted keys for tests: "e@30,n,a,m,e,ENTER"
    p.add_argument("--snapshot", help=argparse.SUPPRESS)  # save the last annotated frame (PNG) at exit
    return p


def _source_value(flag: str | None, config_value) -> int | str:
    """A camera index or a URL as given; a file path made absolute (a flag's from the cwd, the config's from
    the project)."""
    from realtime.capture import is_stream
    from realtime.config import camera_index
    if flag is not None:
        if re.fullmatch(r"\s*[-+]?\d+\s*", flag) and not Path(flag).exists():
            return str(camera_index(flag, "--source"))  # checked before OpenCV sees it (-1 crashes it)
        return flag if is_stream(flag) else _checked_video_path(_abs(flag), "--source")
    if isinstance(config_value, str) and not config_value.strip().isdigit() and not is_stream(config_value):
        return _checked_video_path(str(resolve_path(config_value)), "capture.source")
    if isinstance(config_value, str) and config_value.strip().isdigit():
        return camera_index(config_value, "capture.source")
    return config_value


def _checked_video_path(path: str, where: str) -> str:
    """A path that exists but is no file (a folder, a FIFO, a device) is named for what it is."""
    from realtime.paths import path_state
    state = path_state(path)
    if state not in ("missing", "a regular file"):
        raise UserError(f"{where} {path} is {state}, not a video file: pass a video file, a stream URL or a "
                        f"camera index")
    return path


def _check_live_args(args) -> dict | None:
    """Refuse bad live flags before anything slow opens; returns the scripted keys, if any."""
    from realtime.keys import parse_key_script
    if args.max_frames is not None and args.max_frames < 1:
        raise UserError("--max-frames must be at least 1")
    if (not args.headless and sys.platform.startswith("linux") and not os.environ.get("DISPLAY")
            and not os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("QT_QPA_PLATFORM")):
        # Qt would abort the whole process without a display; say it in one line instead.
        raise UserError("no display to open a window on (DISPLAY is not set): run with --headless")
    try:
        return parse_key_script(args.keys) if args.keys else None
    except ValueError as err:
        raise UserError(f"--keys: {err}") from None


def open_source(config: Config, source=None):
    """The configured camera, stream or file, with the camera settings and reconnect policy."""
    from realtime.capture import VideoSource
    c = config.capture
    return VideoSource(c.source if source is None else source, threaded=c.threaded, retries=c.retries,
                       backoff=c.backoff, width=c.width, height=c.height, fps=c.fps)


def _open_events(target: str | None, stack: contextlib.ExitStack):
    """stdout, or a file written under a temporary name and renamed into place by ``commit()``
    (a crash never leaves half a file where a good one was); write errors are one line."""
    if target is None:
        return None
    if target == "-":
        return sys.stdout
    from realtime.outputs import OutputStream
    events = OutputStream(target, "--events")
    stack.callback(events.close)  # without commit (an error): the temp file goes, the old file stays
    return events


def _check_live_outputs(args, config: Config) -> None:
    """No output (--events, --record) may be an input (source, gallery, model files, config) or each other."""
    from realtime.outputs import check_outputs_distinct
    inputs: dict = {"the config file": _abs(args.config) or DEFAULT_CONFIG_PATH}
    from realtime.capture import is_stream
    source = config.capture.source
    if isinstance(source, str) and not is_stream(source) and Path(source).exists():   # a URL is no file
        inputs["the source video"] = source
    gallery = configured_location(config)
    if isinstance(gallery, Path):
        inputs["the gallery"] = gallery
    model = resolve_path(config.model.dir)
    if model.is_dir():
        inputs.update({f"the model file {f.name}": f for f in sorted(model.iterdir()) if f.is_file()})
    check_outputs_distinct({"--events": None if args.events == "-" else args.events, "--record": args.record,
                            "--snapshot": args.snapshot}, inputs)


def _lost_error(source, frames: int, record: str | None) -> UserError:
    kept = f"; the recording {record} holds them" if record else ""
    check = "its cable" if source.kind == "camera" else "the network and the server"
    return UserError(f"{source.name} stopped delivering frames and did not come back after {source.retries} "
                     f"retries ({frames} frames processed{kept}): check {check}, then start again")


def live_main(argv: Sequence[str] | None) -> int:
    args = live_parser().parse_args(argv)
    setup_logging(args.verbose)
    config = _load(args, {"capture.source": _source_value(args.source, None) if args.source else None,
                          "recognition.collect_unknown": args.collect_unknown})
    key_script = _check_live_args(args)
    _check_live_outputs(args, config)
    from realtime.app import App, RunOptions
    from realtime.recording import open_recorder

    source = open_source(config, _source_value(None, config.capture.source))
    with contextlib.ExitStack() as stack:
        stack.callback(source.close)
        recognizer = _recognizer(config)
        gallery = stack.enter_context(_gallery(config, recognizer.encoder.model_id, watch=True))  # sees others' enrollments
        recorder = open_recorder(args.record, source.fps, source.size) if args.record else None
        if recorder is not None:
            stack.callback(recorder.release)
        events = _open_events(args.events, stack)
        app = App(recognizer, gallery, live=source.is_camera)
        stack.callback(app.close)
        last: dict = {}
        on_frame = (lambda frame, result: last.__setitem__(0, frame.copy())) if args.snapshot else None
        app.run(source, RunOptions(window=not args.headless, events=events, recorder=recorder,
                                   record_hud=args.record_hud, max_frames=args.max_frames,
                                   key_script=key_script or {}, on_frame=on_frame, loop=args.loop, pace=args.pace))
        if args.snapshot and last:
            import cv2
            cv2.imwrite(_abs(args.snapshot), last[0])
        if events is not None and events is not sys.stdout:
            events.commit()  # complete (the summary line is in): renamed into place
        if source.lost:
            raise _lost_error(source, app.frame_index, args.record)
        if app.failure is not None:
            raise app.failure
    return 0


# -- enroll / list / remove / identify / verify ----------------------------------------------------
def _photos(paths: Sequence[str]) -> list[Path]:
    from realtime.images import IMAGE_SUFFIXES
    out: list[Path] = []
    from realtime.paths import path_state
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            if not os.access(path, os.R_OK | os.X_OK):
                raise UserError(f"{path}: this folder cannot be read (permission denied): check its permissions")
            def skipped(err: OSError) -> None:
                log.warning("%s: this folder cannot be read (%s), skipped", err.filename, err.strerror or err)
            found = []
            for root, _, files in os.walk(path, onerror=skipped):
                for photo in (Path(root) / f for f in files if Path(f).suffix.lower() in IMAGE_SUFFIXES):
                    if photo.is_file():
                        found.append(photo)
                    else:   # a FIFO, a device, a broken link or a link loop
                        log.warning("%s is %s, not a photo: skipped", photo, path_state(photo))
            found.sort()
            if not found:
                log.warning("%s: no photos in this folder", path)
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            state = path_state(path)
            if state == "missing":
                raise UserError(f"{path} not found: pass photos or folders of photos")
            raise UserError(f"{path} is {state}, not a photo: pass photos or folders of photos")
    return out


def _readable(recognizer, photo: Path):
    """The photo's pixels (within the config's photo limits), or None when it cannot be read (a warning)."""
    from realtime.images import UnreadableImage
    try:
        return recognizer.load(photo)
    except UnreadableImage as err:
        log.warning("%s", err)
        return None


def enroll_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m realtime enroll",
        description="Enroll a person from photos (each photo with exactly one face is one sample; photos with no "
                    "face or several faces are reported and skipped; a photo already enrolled for them is skipped), "
                    "everyone in a folder of people (--people DIR: DIR/<name>/*), or a person from a video, stream "
                    "or camera (--source: well-spread samples of its one steady face).")
    p.add_argument("name", nargs="?", help="the person's name (any text, at most 64 characters); none with --people")
    p.add_argument("paths", nargs="*", metavar="PATH", help="photos or folders of photos")
    p.add_argument("--people", metavar="DIR",
                   help="enroll each subfolder DIR/<name>/ as the person <name> (its photos, subfolders included), "
                        "with a progress bar and a line per person, as face_recognition's and DeepFace's folder "
                        "layout")
    p.add_argument("--source", help="enroll from this video file, stream URL or camera index instead of photos")
    p.add_argument("--samples", type=int, metavar="N",
                   help=f"with --source: how many samples to take (default: {_defaults().enrolment.samples}, "
                        f"enrolment.samples)")
    p.add_argument("--largest", action="store_true",
                   help="photos with several faces give their largest face instead of being skipped")
    p.add_argument("--replace", action="store_true",
                   help="start the person afresh: their earlier samples are removed, in the same transaction as the "
                        "new ones are saved (default: add to them, skipping photos already enrolled)")
    _common(p)
    return p


def enroll_main(argv: Sequence[str] | None) -> int:
    args = enroll_parser().parse_intermixed_args(argv)   # `enroll Ann --largest a.jpg b.jpg` as well
    setup_logging(args.verbose)
    from realtime.gallery import check_name
    if args.people is not None:
        if args.name is not None or args.source:
            raise UserError("enroll --people DIR takes no NAME, photos or --source: each subfolder of DIR is a "
                            "person (DIR/<name>/*)")
        people = _people_folders(args.people)   # every name checked before the slow part
    else:
        if args.name is None:
            raise UserError("enroll needs a NAME and photos, --source, or --people DIR: python -m realtime enroll "
                            "NAME PHOTO... | enroll NAME --source CLIP | enroll --people DIR")
        name = check_name(args.name)  # before the slow part: a bad name is refused at once
        if bool(args.paths) == bool(args.source):
            raise UserError("enroll takes photos (PATH...) or --source, one of the two: "
                            "python -m realtime enroll NAME PHOTO... | enroll NAME --source CLIP")
        people = None
    if args.samples is not None and (args.samples < 1 or not args.source):
        raise UserError("--samples must be at least 1, and goes with --source")
    config = _load(args)
    if args.source:
        return _enroll_from_source(args, config, name)
    if people is None:
        people = [(name, _photos(args.paths))]
    else:
        people = [(person, _photos([folder])) for person, folder in people]
    recognizer = _recognizer(config)
    from realtime.api import Gallery
    with Gallery(recognizer=recognizer) as gallery:
        done = _enroll_photos(gallery, recognizer, people, args.largest, args.replace)
    if args.people is None:
        (outcome,) = done
        if isinstance(outcome, UserError):
            raise outcome
        print(outcome)
        return 0
    for person, outcome in zip(people, done):
        if isinstance(outcome, UserError):
            print(f"not enrolled {person[0]}: {outcome}")
        else:
            print(outcome)
    enrolled = sum(not isinstance(o, UserError) for o in done)
    print(f"enrolled {enrolled} of {counted(len(people), 'person', 'people')} from {args.people}")
    if not enrolled:
        raise UserError(f"--people {args.people}: nobody could be enrolled (no photo with one face in any folder)")
    return 0


def _people_folders(root: str) -> list[tuple[str, Path]]:
    """``(name, folder)`` for each subfolder of ``root`` (hidden ones left out), each name checked."""
    from realtime.gallery import check_name
    from realtime.paths import path_state
    folder = Path(root)
    if not folder.is_dir():
        raise UserError(f"--people {root} is {path_state(folder)}: give a folder of "
                        f"<name>/ folders of photos")
    found = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not found:
        raise UserError(f"--people {root} has no subfolders: give a folder of <name>/ folders of photos")
    people = []
    for sub in found:
        try:
            people.append((check_name(sub.name), sub))
        except UserError as err:
            raise UserError(f"--people {root}: folder {sub.name!r} is not a name this program takes ({err}): "
                            f"rename it") from None
    return people


def _enroll_photos(gallery, recognizer, people: list[tuple[str, list[Path]]], largest: bool,
                   replace: bool) -> list[str | UserError]:
    """Enroll each ``(name, photos)`` in its own transaction, with a progress bar over all the photos (on a
    terminal); a line saying what each person got, or the UserError saying why nobody of them was saved."""
    from realtime.api import photo_samples
    outcomes: list[str | UserError] = []
    with _progress(sum(len(photos) for _, photos in people)) as bar:
        for name, photos in people:
            if bar is not None:
                bar.set_description(name[:20])
            samples = photo_samples(recognizer, _counted_in(photos, bar), largest,
                                    enrolled=set() if replace else gallery.sources(name), skip_unreadable=True)
            added = len(samples.embeddings)
            already = f", {samples.duplicates} already enrolled" if samples.duplicates else ""
            if added:
                total = gallery.add(name, samples.embeddings, samples.sources, replace)
            elif samples.duplicates:
                total = dict(gallery.people()).get(name, 0)
            else:
                what = "a face" if largest else "exactly one face"
                outcomes.append(UserError(f"no photo with {what} among {len(photos)}: nothing enrolled"))
                continue
            outcomes.append(f"enrolled {name}: {counted(added, 'sample')} from {counted(len(photos), 'photo')}, "
                            f"{samples.skipped} skipped{already}, {total} in total")
    return outcomes


@contextlib.contextmanager
def _progress(total: int):
    """A progress bar over ``total`` photos on stderr when it is a terminal (log lines are written above it),
    else None."""
    try:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm
    except ImportError:   # tqdm is a dependency; without it, no bar
        yield None
        return
    with tqdm(total=total, unit="photo", disable=None, file=sys.stderr, leave=False) as bar:
        if bar.disable:   # not a terminal (a pipe, a log file, a test): no bar
            yield None
            return
        with logging_redirect_tqdm(loggers=[logging.getLogger()], tqdm_class=tqdm):
            yield bar


def _counted_in(photos: list[Path], bar):
    for photo in photos:
        yield photo
        if bar is not None:
            bar.update(1)


def _enroll_from_source(args, config: Config, name: str) -> int:
    from realtime.api import Gallery
    from realtime.video_enroll import video_samples
    wanted = args.samples or config.enrolment.samples
    with open_source(config, _source_value(args.source, None)) as source:
        recognizer = _recognizer(config)
        embeddings, stats = video_samples(recognizer, source, wanted)
    if stats["someone_else"]:
        log.warning("%d of the steady views looked unlike the main face (someone else, or a poor view): left out", stats["someone_else"])
    if len(embeddings) < wanted:
        log.warning("only %s of the face (of %d wanted)", counted(len(embeddings), "steady view"), wanted)
    with Gallery(recognizer=recognizer) as gallery:
        total = gallery.add(name, embeddings, replace=args.replace)
    print(f"enrolled {name}: {counted(len(embeddings), 'sample')} from {source.name} (frames "
          f"{', '.join(map(str, stats['frames']))}), {total} in total")
    return 0


LIST_FIELDS = ("name", "samples")


def list_main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(prog="python -m realtime list",
                                description="Print each person and their sample count: a header, then name,samples "
                                            "(CSV), as identify does; --json: one JSON object per person.")
    _common(p)
    _json_flag(p, "keys name, samples")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    config = _load(args)
    with _gallery(config, None, create=False) as gallery:  # a missing gallery is an error, never created
        people = gallery.people()
    if not people:
        log.info("gallery %s is empty", gallery.location)
    from realtime.names import printable
    write = _row_printer(args.json, LIST_FIELDS,   # CSV: another writer's escapes spelled out (JSON escapes them)
                         lambda row: [printable(row["name"]), row["samples"]])
    for name, samples in people:
        write({"name": name, "samples": samples})
    return 0


def remove_main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(prog="python -m realtime remove", description="Remove a person and all their samples.")
    p.add_argument("name", help="the person's name, exactly as `list` prints it")
    _common(p)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    from realtime.names import check_name, printable
    config = _load(args)
    with _gallery(config, None, create=False) as gallery:
        count = gallery.remove(args.name)   # as enroll stores it, or exactly as `list` prints it
    try:
        shown = check_name(args.name)       # NFC and stripped, as enroll stores it
    except UserError:
        shown = printable(args.name)        # a name another program stored, as `list` prints it
    print(f"removed {shown} ({counted(count, 'sample')})")
    return 0


IDENTIFY_FIELDS = ("path", "name", "nearest", "distance", "x", "y", "w", "h")


def identify_rows(path: Path, faces, landmarks: dict | None = None) -> list[dict]:
    """One row per face, or one with no face (name, distance and box None) for a photo without any.
    ``landmarks``: each face's box -> its five points (``--json``), as ``{"right_eye": [x, y], ...}``."""
    if not faces:
        return [{"path": str(path), "box": None, "name": None, "nearest": None, "distance": None, "landmarks": None}]
    points = landmarks or {}
    return [{"path": str(path), "box": list(f.box), "name": f.name, "nearest": f.nearest,
             "distance": round(f.distance, 4) if f.nearest is not None else None,
             "landmarks": _named_points(points.get(tuple(f.box)))} for f in faces]


def _named_points(points) -> dict | None:
    from realtime.recognizer import named_points
    return None if points is None else named_points(points)


def _face_landmarks(recognizer, image, faces) -> dict:
    """Each identified face's five landmarks by its box (none without an aligner)."""
    if not faces or recognizer.cropper.aligner is None:
        return {}
    kept, points = recognizer.landmarks(image, [f.box for f in faces])
    return dict(zip(kept, points))


def _csv_row(row: dict) -> list:
    """Unknown is spelled `unknown`, with the nearest person and their distance beside it; a photo without a
    face has an empty name, nearest, distance and box (so has a face against an empty gallery: no nearest)."""
    box = row["box"] or ["", "", "", ""]
    name = "" if row["box"] is None else (row["name"] if row["name"] is not None else "unknown")
    distance = "" if row["distance"] is None else f"{row['distance']:.4f}"
    from realtime.names import printable
    return [printable(row["path"], keep="\n"), printable(name), printable(row["nearest"] or ""), distance,
            *box]  # escapes spelled out; a newline is quoted


def identify_main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m realtime identify",
        description="Who is in these photos: a header, then path,name,nearest,distance,x,y,w,h for each face (CSV; "
                    "name `unknown` beyond the threshold, nearest the closest enrolled person whatever the distance; "
                    "a photo without a face gets a row with an empty name). --json: one JSON object per face (name "
                    "null when unknown), with its five landmarks.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="photos or folders of photos")
    _common(p)
    _threshold_flag(p)
    _json_flag(p, "keys path, box, name, nearest, distance, landmarks")
    args = p.parse_intermixed_args(argv)   # options between the photos too
    setup_logging(args.verbose)
    config = _load(args)
    photos = _photos(args.paths)
    recognizer = _recognizer(config)  # a broken model is said first: no gallery could be read with it
    from realtime.api import Gallery
    # identify never creates a gallery: a missing one is an error
    with Gallery(recognizer=recognizer, create=False) as gallery:
        if len(gallery.index()) == 0:
            log.warning("gallery %s is empty: every face is unknown", gallery.path)
        write = _row_printer(args.json, IDENTIFY_FIELDS, _csv_row)
        for photo in photos:
            image = _readable(recognizer, photo)
            faces = [] if image is None else recognizer.identify(image, gallery)
            if image is not None and not faces:
                log.warning("%s: no face found", photo)
            points = _face_landmarks(recognizer, image, faces) if args.json else None
            for row in identify_rows(photo, faces, points):
                write(row)
    return 0


def _row_printer(as_json: bool, header: Sequence[str], to_csv: Callable[[dict], list]) -> Callable[[dict], None]:
    """Print rows as JSON lines, or as CSV after a header line."""
    if as_json:
        return lambda row: print(json.dumps(row, ensure_ascii=False))
    writer = _csv_writer()
    writer.writerow(header)
    return lambda row: writer.writerow(to_csv(row))


def verify_main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m realtime verify",
        description="Are the largest faces of two photos the same person? Prints the answer, the distance and the "
                    "threshold; exit status 0 same person, 1 different people, 2 an error (e.g. no face found).")
    p.add_argument("photo_a", metavar="PHOTO_A", help="a photo with a face")
    p.add_argument("photo_b", metavar="PHOTO_B", help="another photo with a face")
    _common(p)
    _threshold_flag(p, pair=True)
    _json_flag(p, "keys same, distance, threshold, box_a, box_b")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    config = _load(args)
    for photo in (args.photo_a, args.photo_b):
        if not Path(photo).is_file():
            raise UserError(f"{photo} not found: pass two photos")
    result = _recognizer(config).verify(args.photo_a, args.photo_b)
    if args.json:
        print(json.dumps({"same": result.same, "distance": round(result.distance, 4), "threshold": result.threshold,
                          "box_a": list(result.box_a), "box_b": list(result.box_b)}))
    else:
        verdict = "same person" if result.same else "different people"
        print(f"{verdict}: distance {result.distance:.4f} {'<=' if result.same else '>'} "
              f"threshold {result.threshold:.4f}")
    return 0 if result.same else 1


def _gallery_main(argv: Sequence[str] | None) -> int:
    from realtime.gallery.copy import gallery_main
    return gallery_main(argv)


def _unknowns_main(argv: Sequence[str] | None) -> int:
    from realtime.unknowns.cli import unknowns_main
    return unknowns_main(argv)


COMMANDS: dict[str, Callable[[Sequence[str] | None], int]] = {
    "enroll": enroll_main, "list": list_main, "remove": remove_main, "identify": identify_main,
    "verify": verify_main, "gallery": _gallery_main, "unknowns": _unknowns_main,
}


def _value_options() -> set[str]:
    """Options that take a value (their value is never mistaken for a command)."""
    parsers = [live_parser(), enroll_parser()]
    return {s for p in parsers for a in p._actions if a.nargs != 0 for s in a.option_strings}


def split_command(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """The command and its arguments, global options given before it moved after it:
    ``--config F list`` -> ``("list", ["--config", "F"])``; no command: ``(None, argv)`` (the live program)."""
    argv = list(argv)
    takes_value = None
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in COMMANDS:
            return token, argv[:i] + argv[i + 1:]
        if token == "--" or not token.startswith("-"):
            break
        if "=" not in token:
            takes_value = takes_value if takes_value is not None else _value_options()
            i += 1 if token not in takes_value else 2
            continue
        i += 1
    return None, argv


def main(argv: Sequence[str] | None = None) -> int:
    name, rest = split_command(sys.argv[1:] if argv is None else argv)
    command = COMMANDS[name] if name is not None else live_main
    try:
        return run_command(command, rest)
    except BrokenPipeError:  # `... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _exit(code: int) -> None:
    """Exit with ``code``; at once (no interpreter shutdown) while a capture thread given up on is
    still inside OpenCV (SIGTERM during a stalled stream): the outputs are committed by then."""
    capture = sys.modules.get("realtime.capture")
    if capture is not None and capture.threads_in_opencv():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    _exit(main())
