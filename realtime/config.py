"""Every tunable in one validated place: ``config.yaml``, then command-line overrides.

The schema is the dataclasses below: a key that is not a field is an error, a value of the
wrong type is an error, a number outside its ``min``/``max`` is an error, and every error names
the key (``training.margin: expected a number, got 'big'``). ``training`` and ``realtime`` both
read their settings from here, so the two can never disagree on, say, the face size.
"""
from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import yaml

from realtime.errors import UserError, shorten
from realtime.paths import read_regular_file
from realtime.thresholds import MAX_THRESHOLD, MIN_THRESHOLD

# In a checkout the project is the folder above the package. `pip install .` ships config.yaml and
# models/ inside the package (realtime/_shipped, see pyproject.toml), so relative paths resolve there.
_PACKAGE = Path(__file__).resolve().parent
PROJECT_ROOT = _PACKAGE / "_shipped" if (_PACKAGE / "_shipped" / "config.yaml").is_file() else _PACKAGE.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config.yaml"

# Camera indices OpenCV is asked to open (a negative index crashes it; a huge one overflows).
MAX_CAMERA_INDEX = 99
# A config file is a page of settings: anything bigger, or anything whose aliases expand to more
# values than this, is refused before it costs memory or time.
MAX_CONFIG_BYTES = 1_000_000
MAX_CONFIG_VALUES = 100_000


# The names realtime.detection.DETECTORS and realtime.matching.MATCHERS register (a test checks they agree).
DETECTOR_BACKENDS = ("haar", "yunet")
MATCH_MODES = ("nearest", "mean", "sample-or-mean")
# Triplet mining (training/losses.py), for training.mining and training.finish_mining alike.
MINING = ("semi-hard", "batch-hard")


def _num(default, lo=None, hi=None, choices=None):
    """A field with a range (inclusive) or a set of allowed values, checked on load."""
    return field(default=default, metadata={"min": lo, "max": hi, "choices": choices})


@dataclass(frozen=True)
class DetectionConfig:
    """Which detector, its settings (shared by training crops and the live loop), the photo
    limits, and how often the live loop runs a full detection."""

    # The detector (realtime.detection.DETECTORS); encoder.json records the one training used.
    backend: str = _num("haar", choices=DETECTOR_BACKENDS)
    # Where it finds nobody (a photo, a frame, a followed face lost), a second detector looks
    # again: YuNet finds turned heads and faces in hard light that Haar misses (none: no second look).
    second_look: str = _num("yunet", choices=DETECTOR_BACKENDS + ("none",))
    cascade: str = "haarcascade_frontalface_default.xml"
    scale_factor: float = _num(1.1, 1.01, 2.0)
    min_neighbors: int = _num(5, 0, 50)
    min_size: int = _num(30, 1, 10000)
    # Photos larger than this (longest side, pixels) are detected on a downscaled copy, so a
    # 10,000 x 10,000 image costs no more memory or time than a normal one.
    max_side: int = _num(1024, 64, 20000)
    # For already face-centred sets (LFW): when Haar finds nothing, take this centred fraction.
    center_crop_fallback: bool = False
    center_crop_fraction: float = _num(0.45, 0.1, 1.0)
    # Photos are refused before they cost memory: a file over max_image_bytes is not read, a header
    # claiming over max_image_pixels is not decoded (a small PNG can claim 30000 x 30000).
    max_image_bytes: int = _num(100_000_000, 1_000, 2_000_000_000)
    max_image_pixels: int = _num(100_000_000, 1_000, 1_000_000_000)
    # ... and images that cannot hold a face (a 1 x 2100 strip) are skipped with a warning.
    min_image_side: int = _num(16, 1, 10000)
    max_image_aspect: float = _num(20.0, 1.0, 1000.0)
    # The live loop's speed policy. A full detection runs on a frame scaled by ``scale`` (boxes
    # scaled back) and no wider than ``max_width`` px (0: no cap), so it costs about the same at
    # any camera resolution; it runs every ``every`` frames, and faces are followed in between.
    scale: float = _num(0.5, 0.05, 1.0)
    max_width: int = _num(448, 0, 100000)
    every: int = _num(3, 1, 1000)
    # Run the full detection on a worker thread (the second core) while the loop follows faces;
    # its boxes join a few frames later. auto: for cameras only (files stay repeatable).
    worker: str = _num("auto", choices=("auto", "always", "never"))
    # Between full detections, search this much around each last box (fraction of its size) ...
    follow_margin: float = _num(0.5, 0.0, 4.0)
    # ... at about this many pixels wide: larger gives steadier boxes, smaller is faster.
    follow_size: int = _num(64, 24, 512)


# The ArcFace five-point template (eye centres, nose tip, mouth corners, as seen in the image from
# left to right) in a 112 x 112 crop; scaled to the crop size it is where alignment puts them.
ARCFACE_TEMPLATE = ((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366),
                    (41.5493, 92.3655), (70.7299, 92.2041))


@dataclass(frozen=True)
class AlignmentConfig:
    """Five landmarks in each detected box, then a similarity warp onto a fixed template.

    Shared by training crops and the live loop (and recorded in encoder.json), so a face is
    aligned at run time exactly as the encoder was trained on."""

    # yunet: OpenCV's YuNet (cv2.FaceDetectorYN) on the box's neighbourhood; none: plain box crops
    method: str = _num("yunet", choices=("yunet", "none"))
    model: str = "models/face_detection_yunet_2023mar_int8bq.onnx"
    # The box grown by this fraction on each side, resized to landmark_size square, is what YuNet sees.
    box_margin: float = _num(0.25, 0.0, 2.0)
    landmark_size: int = _num(160, 32, 640)
    # YuNet's face score below which a Haar box is not a face (a false positive): dropped.
    min_score: float = _num(0.6, 0.0, 1.0)
    # Template points (x, y) in a template_size square; scaled to model.input_size.
    template: list[list[float]] = field(default_factory=lambda: [list(p) for p in ARCFACE_TEMPLATE])
    template_size: float = _num(112.0, 8.0, 4096.0)


@dataclass(frozen=True)
class ModelConfig:
    """Where the exported encoder lives and the shape of what it eats and produces."""

    dir: str = "models"
    input_size: int = _num(60, 16, 256)
    embedding_size: int = _num(128, 2, 1024)
    # seed / wide / deep / deep-wide: small CNNs trained here from scratch (input_size 60);
    # sface: OpenCV Zoo's SFace (models/, Apache-2.0) imported from ONNX, input_size 112, fine-tuned
    # as training.fine_tune says (training/sface.py).
    backbone: str = _num("seed", choices=("seed", "wide", "deep", "deep-wide", "sface"))
    # Training only: share of the dense layer's outputs dropped before the embedding projection,
    # so the embedding cannot lean on a few units that memorise the training people.
    dropout: float = _num(0.0, 0.0, 0.9)
    # Encode each face and its mirror image and average the two (in the exported graph): steadier
    # embeddings for twice the encoder's time.
    flip_average: bool = False
    # The exported encoder.tflite: float32 weights, int8 weights (activations in float: a quarter of
    # the size, as accurate), or int8 throughout (calibrated on training crops; SFace: 6x slower here).
    quantize: str = _num("float32", choices=("float32", "int8-weights", "int8"))


@dataclass(frozen=True)
class TrainingConfig:
    """How ``python -m training`` builds an encoder."""

    data: str = "data/celebrity5"
    extra_data: list[str] = field(default_factory=list)
    method: str = _num("triplet", choices=("triplet", "classifier", "seed-triplet", "distill"))
    mining: str = _num("semi-hard", choices=MINING)
    margin: float = _num(0.2, 0.0, 4.0)
    people_per_batch: int = _num(5, 2, 1024)
    photos_per_person: int = _num(4, 2, 64)
    epochs: int = _num(30, 1, 10000)
    # triplet only: softmax-classifier epochs before the triplet epochs (0: triplet from scratch)
    warm_start_epochs: int = _num(0, 0, 10000)
    # triplet only: epochs after the main ones, from the trained encoder, with finish_mining and a
    # fresh cosine decay finish_learning_rate -> finish_final_learning_rate (0: no such phase)
    finish_epochs: int = _num(0, 0, 10000)
    finish_mining: str = _num("batch-hard", choices=MINING)
    finish_learning_rate: float = _num(0.0001, 1e-7, 1.0)
    finish_final_learning_rate: float = _num(0.00001, 1e-9, 1.0)
    # distill only: weights of (1 - cosine to the dlib teacher), of the batch's similarity-matrix
    # difference to the teacher's, and of the triplet loss; extra one-photo people per batch.
    distill_weight: float = _num(1.0, 0.0, 100.0)
    relation_weight: float = _num(1.0, 0.0, 100.0)
    triplet_weight: float = _num(1.0, 0.0, 100.0)
    singletons_per_batch: int = _num(0, 0, 4096)
    # distill only: remove the common direction of the teacher's unit embeddings (training.distill).
    center_teacher: bool = True
    steps_per_epoch: int = _num(20, 1, 100000)
    learning_rate: float = _num(0.001, 1e-7, 1.0)
    final_learning_rate: float = _num(0.0001, 1e-9, 1.0)
    augment: bool = True
    # Largest random shift and scale change of a training crop, as a share of its side: Haar boxes
    # wander, aligned crops much less (an aligned face moved too far is a target it never meets live).
    augment_shift: float = _num(0.08, 0.0, 0.5)
    augment_zoom: float = _num(0.12, 0.0, 0.5)
    # Share of each batch shrunk (to 40-100% of the side) and re-enlarged: faces far from a camera.
    augment_low_resolution: float = _num(0.0, 0.0, 1.0)
    seed: int = _num(1, 0, 2**31 - 1)
    cache_dir: str = "~/.cache/realtime-faces"
    # None: a new folder runs/<timestamp>/; an existing model folder needs --overwrite.
    out: Optional[str] = None
    init: Optional[str] = None
    strategy: str = _num("default", choices=("default", "mirrored", "multi-worker"))
    target_far: float = _num(0.01, 1e-6, 0.5)
    # The threshold written to encoder.json names at most target_far of strangers' photos against a
    # gallery of this many people (held-out people enrolled, other held-out people as strangers).
    design_gallery_people: int = _num(100, 1, 100000)
    # Pairs files or name lists: people never trained on (LFW's DevTest, for an honest check).
    exclude_people: list[str] = field(default_factory=list)
    # People (two or more photos, from the training pool) set aside as strangers: the threshold
    # written to encoder.json is measured on them, since one picked on trained people is too tight.
    holdout_people: int = _num(0, 0, 100000)
    lfw_pairs: Optional[str] = None
    lfw_dir: Optional[str] = None
    # backbone sface only: what the triplet loss trains. none: SFace as imported (the run only
    # measures and calibrates it); head: a new 128 x 128 projection on its embedding; last: its
    # final dense layer; last-block: also its last depthwise-separable block. Below that, SFace is
    # frozen and its outputs are cached per crop.
    fine_tune: str = _num("head", choices=("none", "head", "last", "last-block"))
    # People never trained on, <person>/<photo> folders: the open-set curve and the threshold in
    # encoder.json are measured on them (they are left out of training by name). calibration_people:
    # a names file choosing who of that folder (null: everyone). Nothing set and no holdout_people:
    # an --init model's own calibration is used, else the threshold is a safe one, said in the log.
    calibration_data: Optional[str] = None
    calibration_people: Optional[str] = None


@dataclass(frozen=True)
class CaptureConfig:
    """Where frames come from, and how a camera or stream is opened and kept open."""

    # A camera index (0..MAX_CAMERA_INDEX, checked before OpenCV sees it), a video file or a stream URL.
    source: Union[int, str] = _num(0, 0, MAX_CAMERA_INDEX)
    # Read cameras on a background thread so a slow frame never blocks the next grab.
    threaded: bool = True
    # A camera or stream that stops delivering frames is reopened this often, waiting backoff
    # seconds (doubled after each retry).
    retries: int = _num(3, 0, 100)
    backoff: float = _num(0.5, 0.0, 60.0)
    # Asked of a camera when it opens (0: the camera's default); what it delivers is logged.
    width: int = _num(0, 0, 10000)
    height: int = _num(0, 0, 10000)
    fps: float = _num(0.0, 0.0, 1000.0)


@dataclass(frozen=True)
class TrackingConfig:
    """Faces followed across frames by box overlap, and the vote that keeps names from flickering."""

    iou: float = _num(0.3, 0.0, 1.0)
    # A track not seen for more than this many frames is dropped.
    max_missed: int = _num(5, 0, 1000)
    vote_frames: int = _num(5, 1, 100)
    # A name is shown only once this many of the last vote_frames encodings gave it, unless the
    # match is sure (within encoder.json's sure threshold: shown at once).
    vote_agree: int = _num(3, 1, 100)
    # A face is encoded when it appears, then every encode_every frames, or sooner when its box
    # moved (overlaps the box it was encoded at less than encode_iou) or its name is undecided.
    encode_every: int = _num(4, 1, 1000)
    encode_iou: float = _num(0.7, 0.0, 1.0)


@dataclass(frozen=True)
class RecognitionConfig:
    """Who a face is: the gallery, how a face is matched to a person, and the threshold."""

    gallery: str = "~/.local/share/realtime-faces/gallery.db"
    # None: use the threshold measured at training time and written into encoder.json.
    threshold: Optional[float] = _num(None, MIN_THRESHOLD, MAX_THRESHOLD)
    # What the + and - keys change the threshold by.
    threshold_step: float = _num(0.02, 1e-4, 1.0)
    # nearest: distance to the closest sample; mean: distance to each person's mean embedding;
    # sample-or-mean: the nearer of the closest sample and the person's mean direction.
    match: str = _num("sample-or-mean", choices=MATCH_MODES)
    # Keep the best views of faces that stay unknown, grouped by person, to be named later
    # (python -m realtime unknowns; the unknowns section says how much). Never a named face's.
    collect_unknown: bool = False


@dataclass(frozen=True)
class UnknownsConfig:
    """Unknown faces kept (recognition.collect_unknown): when a face is kept, and how much at most."""

    # A face unknown on this many encodings is kept (a face named meanwhile never is).
    after: int = _num(3, 1, 1000)
    # The best views kept of one followed face; at most this many per group (one person), per
    # calendar day and in all: beyond them the oldest views go first.
    views_per_track: int = _num(5, 1, 100)
    views_per_group: int = _num(20, 1, 100_000)
    views_per_day: int = _num(500, 1, 10_000_000)
    views_total: int = _num(2000, 1, 10_000_000)
    # A face's improved views are stored at most this often (seconds), and when it leaves.
    save_every: float = _num(2.0, 0.0, 3600.0)
    # Naming a group enrolls its best this many views.
    name_views: int = _num(10, 1, 1000)


@dataclass(frozen=True)
class EnrolmentConfig:
    """Enrolling from the live window (the e key) and from a video (enroll --source)."""

    samples: int = _num(5, 1, 100)
    # The key's samples are spread over this long (poses differ).
    seconds: float = _num(2.0, 0.0, 60.0)


@dataclass(frozen=True)
class WindowConfig:
    """What the window shows besides faces."""

    show_fps: bool = True


@dataclass(frozen=True)
class Config:
    """The whole configuration, one section per stage of the face path, in the order a frame meets them."""

    capture: CaptureConfig = field(default_factory=CaptureConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)
    unknowns: UnknownsConfig = field(default_factory=UnknownsConfig)
    enrolment: EnrolmentConfig = field(default_factory=EnrolmentConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)


# Keys that moved when the settings were split by stage: an old config file is refused with the new name.
MOVED_KEYS = {
    "recognition.source": "capture.source",
    "recognition.threaded_capture": "capture.threaded",
    "recognition.camera_retries": "capture.retries",
    "recognition.camera_backoff": "capture.backoff",
    "recognition.camera_width": "capture.width",
    "recognition.camera_height": "capture.height",
    "recognition.camera_fps": "capture.fps",
    "recognition.detect_scale": "detection.scale",
    "recognition.detect_max_width": "detection.max_width",
    "recognition.detect_every": "detection.every",
    "recognition.detect_async": "detection.worker",
    "recognition.track_margin": "detection.follow_margin",
    "recognition.follow_size": "detection.follow_size",
    "recognition.track_iou": "tracking.iou",
    "recognition.track_max_missed": "tracking.max_missed",
    "recognition.vote_frames": "tracking.vote_frames",
    "recognition.vote_agree": "tracking.vote_agree",
    "recognition.enroll_samples": "enrolment.samples",
    "recognition.enroll_seconds": "enrolment.seconds",
    "recognition.show_fps": "window.show_fps",
}
# Keys that are gone, and why.
REMOVED_KEYS = {
    "recognition.batch_encode": "faces are always encoded in one call per frame",
}


def _type_name(tp) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
             type(None): "null"}
    if tp in names:
        return names[tp]
    origin = typing.get_origin(tp)
    if origin is list:
        return "a list of " + _type_name(typing.get_args(tp)[0]).removeprefix("a ").removeprefix("an ") + "s"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(t) for t in typing.get_args(tp))
    return str(tp)


def _coerce(key: str, value: Any, tp) -> Any:
    """Return ``value`` if it fits type ``tp`` (ints are accepted as floats), else raise."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _coerce(key, value, option)
            except UserError:
                continue
    elif origin is list:
        if isinstance(value, list):
            (item_type,) = typing.get_args(tp)
            return [_coerce(f"{key}[{i}]", v, item_type) for i, v in enumerate(value)]
    elif tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        # NaN would slip through every range check (all comparisons are false).
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise UserError(f"config: {key}: expected {_type_name(tp)}, got {shorten(value)}")


def _check_range(key: str, value: Any, meta: Mapping) -> None:
    if value is None or isinstance(value, (list, bool)):
        return
    lo, hi, choices = meta.get("min"), meta.get("max"), meta.get("choices")
    if choices is not None and value not in choices:
        raise UserError(f"config: {key}: expected one of {', '.join(choices)}, got {shorten(value)}")
    if isinstance(value, (int, float)):
        if lo is not None and value < lo:
            raise UserError(f"config: {key}: must be at least {lo}, got {shorten(value)}")
        if hi is not None and value > hi:
            raise UserError(f"config: {key}: must be at most {hi}, got {shorten(value)}")


def _key_text(key: Any) -> str:
    """A key as typed, or shortened when it is long (or not text): messages stay one short line."""
    return key if isinstance(key, str) and len(key) <= 100 and key.isprintable() else shorten(key)


def _build_section(section_name: str, cls, raw: Any):
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise UserError(f"config: {section_name}: expected a mapping of settings, got {shorten(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        full = f"{section_name}.{_key_text(key)}"
        if key not in fields:
            raise UserError(_unknown_key_message(full, fields))
        value = _coerce(full, value, hints[key])
        _check_range(full, value, fields[key].metadata)
        values[key] = value
    return cls(**values)


def _unknown_key_message(full: str, known) -> str:
    if full in MOVED_KEYS:
        return f"config: {full} is now {MOVED_KEYS[full]}: rename it in the settings file"
    if full in REMOVED_KEYS:
        return f"config: {full} is no longer a setting ({REMOVED_KEYS[full]}): remove it from the settings file"
    return f"config: unknown key {full} (known: {', '.join(known)})"


def config_from_dict(raw: Any, source: str | Path | None = None) -> Config:
    """Validate a parsed YAML document into a :class:`Config`.

    ``source`` (the file it came from) is named in every error, so the user knows where to look.
    """
    try:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise UserError("config: the top level must be a mapping of sections "
                            f"({', '.join(f.name for f in dataclasses.fields(Config))}), got a {type(raw).__name__}")
        sections = {f.name: f for f in dataclasses.fields(Config)}
        built = {}
        for name, value in raw.items():
            if name not in sections:
                raise UserError(f"config: unknown section {shorten(name)} (known: {', '.join(sections)})")
            built[name] = _build_section(name, typing.get_type_hints(Config)[name], value)
        return Config(**built)
    except UserError as err:
        if source is None:
            raise
        message = str(err).removeprefix("config: ")
        raise UserError(f"config file {source}: {message}") from None


def read_config_file(path: str | Path) -> dict:
    """Parse YAML safely; any failure becomes a one-line :class:`UserError`."""
    path = Path(path)
    data = read_regular_file(path, "config file", MAX_CONFIG_BYTES, "pass --config with an existing settings file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"config file {path} is not UTF-8 text (byte {err.start}): save it as UTF-8") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise UserError(f"config file {path} is not valid YAML{at}: fix the syntax") from None
    except RecursionError:
        raise UserError(f"config file {path} is nested too deeply to be a settings file") from None
    except ValueError:  # e.g. an integer of more digits than Python converts
        raise UserError(f"config file {path}: {_unreadable_value(text)} cannot be read as a number: "
                        f"use a number of sensible size") from None
    if _expanded_size(raw, MAX_CONFIG_VALUES) > MAX_CONFIG_VALUES:
        raise UserError(f"config file {path}: its aliases (&/*) expand to more than {MAX_CONFIG_VALUES:,} values, "
                        f"or refer to themselves: not a settings file")
    return raw


def _unreadable_value(text: str) -> str:
    """Which key holds the value YAML's loader could not convert (found on the node tree, which
    keeps scalars as text), e.g. ``detection.min_size``, or "a value" when it cannot be told."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return "a value"
    stack = [((), root)]
    while stack:
        keys, node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            stack.extend((keys + (str(k.value),), v) for k, v in node.value if isinstance(k, yaml.ScalarNode))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((keys + (f"[{i}]",), v) for i, v in enumerate(node.value))
        elif isinstance(node, yaml.ScalarNode) and len(node.value) > 4000 and node.value.lstrip("+-").isdigit():
            return ".".join(keys).replace(".[", "[") or "a value"
    return "a value"


def _expanded_size(value: Any, limit: int) -> int:
    """How many values ``value`` holds with every alias expanded, stopping past ``limit``.

    Aliases make a small file a huge (or self-referencing) structure; counting shared parts once
    per use, memoised by identity, costs time in the file's size, not the expansion's."""
    sizes: dict[int, int] = {}
    open_ids: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, (list, dict)):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_ids:  # a structure that contains itself
            return limit + 1
        open_ids.add(key)
        total = 1
        for item in (node.items() if isinstance(node, dict) else node):
            parts = item if isinstance(node, dict) else (item,)
            for part in parts:
                total += size(part)
                if total > limit:
                    break
            if total > limit:
                break
        open_ids.discard(key)
        sizes[key] = total
        return total

    try:
        return size(value)
    except RecursionError:
        return limit + 1


def apply_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """Override ``section.key`` values (command-line flags); ``None`` means 'flag not given'."""
    for dotted, value in overrides.items():
        if value is None:
            continue
        section_name, _, key = dotted.partition(".")
        sections = [f.name for f in dataclasses.fields(Config)]
        if section_name not in sections:
            raise UserError(f"config: unknown key {shorten(dotted)} (expected section.key, sections: "
                            f"{', '.join(sections)})")
        section = getattr(config, section_name)
        fields = {f.name: f for f in dataclasses.fields(section)}
        if key not in fields:
            raise UserError(_unknown_key_message(_key_text(dotted), fields))
        value = _coerce(dotted, value, typing.get_type_hints(type(section))[key])
        _check_range(dotted, value, fields[key].metadata)
        section = dataclasses.replace(section, **{key: value})
        config = dataclasses.replace(config, **{section_name: section})
    return config


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Load ``path`` (default: the project's ``config.yaml``), then apply flag overrides."""
    path = path or DEFAULT_CONFIG_PATH
    config = config_from_dict(read_config_file(path), source=path)
    return apply_overrides(config, overrides or {})


def camera_index(value: int | str, where: str) -> int:
    """A camera index in 0..MAX_CAMERA_INDEX, or a one-line UserError naming ``where`` (never a
    negative or huge number handed to OpenCV, which crashes or overflows on them)."""
    text = str(value).strip()
    digits = text.lstrip("+-")
    if isinstance(value, int) and not isinstance(value, bool):
        index = value
    elif digits.isdigit() and len(digits) <= 6:
        index = int(text)
    else:
        index = -1
    if not 0 <= index <= MAX_CAMERA_INDEX:
        raise UserError(f"{where}: camera index {shorten(text, 30)} is out of range: use 0..{MAX_CAMERA_INDEX}, "
                        f"or a video file")
    return index


def resolve_path(value: str | Path, base: Path = PROJECT_ROOT) -> Path:
    """Expand ``~`` and ``$VARS``; relative config paths are relative to the project, not the cwd."""
    expanded = os.path.expandvars(str(value))
    if "$" in expanded:
        raise UserError(f"{value}: an environment variable in this path is not set "
                        "(e.g. export FACES_DATA=/path/to/data)")
    path = Path(expanded).expanduser()
    return path if path.is_absolute() else (base / path)
