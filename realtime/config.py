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

from realtime.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config.yaml"


def _num(default, lo=None, hi=None, choices=None):
    """A field with a range (inclusive) or a set of allowed values, checked on load."""
    return field(default=default, metadata={"min": lo, "max": hi, "choices": choices})


@dataclass(frozen=True)
class DetectionConfig:
    """Haar cascade settings, shared by training crops and the live loop."""

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


@dataclass(frozen=True)
class ModelConfig:
    """Where the exported encoder lives and the shape of what it eats and produces."""

    dir: str = "models"
    input_size: int = _num(60, 16, 256)
    embedding_size: int = _num(128, 2, 1024)
    backbone: str = _num("seed", choices=("seed", "wide", "deep"))
    # Training only: share of the dense layer's outputs dropped before the embedding projection,
    # so the embedding cannot lean on a few units that memorise the training people.
    dropout: float = _num(0.0, 0.0, 0.9)


@dataclass(frozen=True)
class TrainingConfig:
    """How ``python -m training`` builds an encoder."""

    data: str = "data/celebrity5"
    extra_data: list[str] = field(default_factory=list)
    method: str = _num("triplet", choices=("triplet", "classifier", "seed-triplet"))
    mining: str = _num("semi-hard", choices=("semi-hard", "batch-hard"))
    margin: float = _num(0.2, 0.0, 4.0)
    people_per_batch: int = _num(5, 2, 1024)
    photos_per_person: int = _num(4, 2, 64)
    epochs: int = _num(30, 1, 10000)
    # triplet only: softmax-classifier epochs before the triplet epochs (0: triplet from scratch)
    warm_start_epochs: int = _num(0, 0, 10000)
    # triplet only: epochs after the main ones, from the trained encoder, with finish_mining and a
    # fresh cosine decay finish_learning_rate -> finish_final_learning_rate (0: no such phase)
    finish_epochs: int = _num(0, 0, 10000)
    finish_mining: str = _num("batch-hard", choices=("semi-hard", "batch-hard"))
    finish_learning_rate: float = _num(0.0001, 1e-7, 1.0)
    finish_final_learning_rate: float = _num(0.00001, 1e-9, 1.0)
    steps_per_epoch: int = _num(20, 1, 100000)
    learning_rate: float = _num(0.001, 1e-7, 1.0)
    final_learning_rate: float = _num(0.0001, 1e-9, 1.0)
    augment: bool = True
    seed: int = _num(1, 0, 2**31 - 1)
    cache_dir: str = "~/.cache/realtime-faces"
    out: str = "models"
    init: Optional[str] = None
    strategy: str = _num("default", choices=("default", "mirrored", "multi-worker"))
    target_far: float = _num(0.01, 1e-6, 0.5)
    # Pairs files or name lists: people never trained on (LFW's DevTest, for an honest check).
    exclude_people: list[str] = field(default_factory=list)
    # People (two or more photos, from the training pool) set aside as strangers: the threshold
    # written to encoder.json is measured on them, since one picked on trained people is too tight.
    holdout_people: int = _num(0, 0, 100000)
    lfw_pairs: Optional[str] = None
    lfw_dir: Optional[str] = None


@dataclass(frozen=True)
class RecognitionConfig:
    """The live program: source, gallery, threshold and the speed switches."""

    source: Union[int, str] = 0
    gallery: str = "~/.local/share/realtime-faces/gallery.db"
    # None: use the threshold measured at training time and written into encoder.json.
    threshold: Optional[float] = _num(None, 1e-6, 4.0)
    threshold_step: float = _num(0.02, 1e-4, 1.0)
    # Detect on a frame scaled by this factor and scale the boxes back (1.0 = full size).
    detect_scale: float = _num(0.5, 0.05, 1.0)
    # ... and never on a frame wider than this (pixels; 0: no cap), so a full detection costs about
    # the same at any camera resolution (a 720p camera sees the same scene as a 480p one).
    detect_max_width: int = _num(448, 0, 100000)
    # Full detection every N frames; in between, faces are followed near their last box.
    detect_every: int = _num(3, 1, 1000)
    # Run the full detection on a worker thread (the second core) while the loop follows faces,
    # so the frames with a full detection don't stall; its boxes join a few frames later.
    # auto: for cameras only (files run headless are repeatable with the detection in line).
    detect_async: str = _num("auto", choices=("auto", "always", "never"))
    # Between full detections, search this much around each last box (fraction of its size).
    track_margin: float = _num(0.5, 0.0, 4.0)
    # Between full detections a followed face is searched for at about this many pixels wide:
    # larger gives steadier boxes (better crops, better matches), smaller is faster.
    follow_size: int = _num(64, 24, 512)
    # Read cameras on a background thread so a slow frame never blocks the next grab.
    threaded_capture: bool = True
    # nearest: distance to the closest sample; mean: distance to each person's mean embedding.
    match: str = _num("nearest", choices=("nearest", "mean"))
    batch_encode: bool = True
    vote_frames: int = _num(5, 1, 100)
    track_iou: float = _num(0.3, 0.0, 1.0)
    track_max_missed: int = _num(5, 0, 1000)
    enroll_samples: int = _num(5, 1, 100)
    enroll_seconds: float = _num(1.0, 0.0, 60.0)
    camera_retries: int = _num(3, 0, 100)
    camera_backoff: float = _num(0.5, 0.0, 60.0)
    show_fps: bool = True


@dataclass(frozen=True)
class Config:
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)


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
    raise UserError(f"config: {key}: expected {_type_name(tp)}, got {value!r}")


def _check_range(key: str, value: Any, meta: Mapping) -> None:
    if value is None or isinstance(value, (list, bool)):
        return
    lo, hi, choices = meta.get("min"), meta.get("max"), meta.get("choices")
    if choices is not None and value not in choices:
        raise UserError(f"config: {key}: expected one of {', '.join(choices)}, got {value!r}")
    if isinstance(value, (int, float)):
        if lo is not None and value < lo:
            raise UserError(f"config: {key}: must be at least {lo}, got {value}")
        if hi is not None and value > hi:
            raise UserError(f"config: {key}: must be at most {hi}, got {value}")


def _build_section(section_name: str, cls, raw: Any):
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise UserError(f"config: {section_name}: expected a mapping of settings, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        full = f"{section_name}.{key}"
        if key not in fields:
            raise UserError(f"config: unknown key {full} (known: {', '.join(fields)})")
        value = _coerce(full, value, hints[key])
        _check_range(full, value, fields[key].metadata)
        values[key] = value
    return cls(**values)


def config_from_dict(raw: Any, source: str | Path | None = None) -> Config:
    """Validate a parsed YAML document into a :class:`Config`.

    ``source`` (the file it came from) is named in every error, so the user knows where to look.
    """
    try:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise UserError("config: the top level must be a mapping of sections "
                            f"(detection, model, training, recognition), got a {type(raw).__name__}")
        sections = {f.name: f for f in dataclasses.fields(Config)}
        built = {}
        for name, value in raw.items():
            if name not in sections:
                raise UserError(f"config: unknown section {name!r} (known: {', '.join(sections)})")
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
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"config file {path} not found: pass --config with an existing file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"config file {path} cannot be read: {err}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise UserError(f"config file {path} is not valid YAML{at}: fix the syntax") from None


def apply_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """Override ``section.key`` values (command-line flags); ``None`` means 'flag not given'."""
    for dotted, value in overrides.items():
        if value is None:
            continue
        section_name, _, key = dotted.partition(".")
        sections = [f.name for f in dataclasses.fields(Config)]
        if section_name not in sections:
            raise UserError(f"config: unknown key {dotted} (expected section.key, sections: {', '.join(sections)})")
        section = getattr(config, section_name)
        fields = {f.name: f for f in dataclasses.fields(section)}
        if key not in fields:
            raise UserError(f"config: unknown key {dotted}")
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


def resolve_path(value: str | Path, base: Path = PROJECT_ROOT) -> Path:
    """Expand ``~`` and ``$VARS``; relative config paths are relative to the project, not the cwd."""
    expanded = os.path.expandvars(str(value))
    if "$" in expanded:
        raise UserError(f"{value}: an environment variable in this path is not set "
                        "(e.g. export FACES_DATA=/path/to/data)")
    path = Path(expanded).expanduser()
    return path if path.is_absolute() else (base / path)
