"""Folders of face photos to labelled face crops, with a detection cache.

A dataset folder holds ``<person>/<photo>``. Every photo's largest face goes through the
runtime's own face path (:func:`face_from_photo`: the detector, then ``realtime.crops``). Crops are cached as
uint8 in one ``.npz`` per folder and settings (no pickle), keyed on a digest of each file's
bytes, so a second run detects nothing it has seen before, even in a copy of the dataset.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import stat
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from realtime.boxes import Box, center_box
from realtime.config import AlignmentConfig, DetectionConfig
from realtime.crops import FaceCropper
from realtime.errors import UserError
from realtime.images import IMAGE_SUFFIXES, UnreadableImage, read_image
from realtime.paths import NotReadable, read_regular_file

log = logging.getLogger(__name__)

CACHE_VERSION = 2   # 2: the second look, and boxes whose landmarks lie outside them dropped


# The detection settings that decide which box a photo's face gets (caches are keyed on these;
# the file-size and pixel limits decide only whether a photo is read at all, the live loop's
# speed settings never touch a photo).
BOX_SETTINGS = ("backend", "second_look", "cascade", "scale_factor", "min_neighbors", "min_size", "max_side",
                "center_crop_fallback", "center_crop_fraction")


def box_settings(settings: DetectionConfig) -> dict:
    return {k: getattr(settings, k) for k in BOX_SETTINGS}


def photo_face_box(image: np.ndarray, cropper: FaceCropper,
                   detected: list[Box] | None = None) -> tuple[Box | None, str, int]:
    """The box of a photo's largest face, how it was found, and how many faces were detected.

    The status is ``"face"``, ``"fallback"`` (centre box, when ``center_crop_fallback`` is on)
    or ``"no_face"`` (box is None). Training's crops and the teacher's embeddings both start here,
    so they always describe the same face. ``detected``: the photo's boxes, when already found.
    """
    boxes = cropper.detect(image) if detected is None else detected
    if boxes:
        return boxes[0], "face", len(boxes)
    if cropper.settings.center_crop_fallback:
        return center_box(image.shape, cropper.settings.center_crop_fraction), "fallback", 0
    return None, "no_face", 0


def face_from_photo(image: np.ndarray, cropper: FaceCropper) -> tuple[np.ndarray | None, str, int]:
    """The crop of the largest face, how it was found, and how many faces were detected (see
    :func:`photo_face_box`). With alignment a box in which it finds no face gives ``"not_a_face"``
    (only the fallback box can: a detected face's landmarks were found with it, and are used)."""
    located = cropper.detect_located(image)
    if located:
        return cropper.crops_of(image, located[:1])[0], "face", len(located)
    box, status, count = photo_face_box(image, cropper, detected=[])
    if box is None:
        return None, status, count
    crops, kept = cropper.crops(image, [box])
    return (crops[0], status, count) if kept else (None, "not_a_face", count)


@dataclass
class FaceSet:
    """Face crops with their person labels, and what happened to every photo."""

    crops: np.ndarray            # (n, size, size, 3) uint8 RGB
    labels: np.ndarray           # (n,) str person names
    paths: np.ndarray            # (n,) str source photo paths
    summary: Counter = field(default_factory=Counter)

    @property
    def people(self) -> list[str]:
        return sorted(set(self.labels.tolist()))

    def __len__(self) -> int:
        return len(self.labels)


def concat_face_sets(sets: list[FaceSet]) -> FaceSet:
    summary = Counter()
    for s in sets:
        summary.update(s.summary)
    return FaceSet(np.concatenate([s.crops for s in sets]), np.concatenate([s.labels for s in sets]),
                   np.concatenate([s.paths for s in sets]), summary)


def subset(faces: FaceSet, mask: np.ndarray) -> FaceSet:
    return FaceSet(faces.crops[mask], faces.labels[mask], faces.paths[mask], faces.summary)


def hold_out_people(faces: FaceSet, count: int, seed: int, keep: set[str] = frozenset()) -> tuple[FaceSet, FaceSet]:
    """Set ``count`` people (two or more photos, not in ``keep``) aside as strangers: ``(rest, held out)``.

    A threshold measured on people the encoder was trained on is too tight for strangers; the
    held-out people stand in for the strangers a user will enroll.
    """
    names, counts = np.unique(faces.labels, return_counts=True)
    eligible = sorted(n for n, c in zip(names.tolist(), counts.tolist()) if c >= 2 and n not in keep)
    if count > len(eligible) // 2:
        raise UserError(f"holdout_people: {count} asked, but only {len(eligible)} people with two or more photos "
                        "can be set aside (at most half of them)")
    held = np.random.default_rng(seed).choice(eligible, size=count, replace=False) if count else []
    mask = np.isin(faces.labels, list(held))
    return subset(faces, ~mask), subset(faces, mask)


def scan_people(root: str | Path) -> tuple[dict[str, list[Path]], Counter]:
    """``{person: [photo paths]}`` for ``root/<person>/*``, and counts of what was passed over."""
    root = Path(root)
    if not root.exists():
        raise UserError(f"dataset folder {root} not found: expected {root}/<person>/<photo>.jpg")
    if not root.is_dir():
        raise UserError(f"dataset folder {root} is a file, not a folder: expected {root}/<person>/<photo>.jpg")
    try:
        person_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as err:
        raise UserError(f"dataset folder {root} cannot be read ({err.strerror or err})") from None
    skipped = Counter()
    people: dict[str, list[Path]] = {}
    for person_dir in person_dirs:
        photos = []
        try:
            # Hidden entries (.DS_Store, .ipynb_checkpoints) are system clutter, not photos.
            entries = sorted(p for p in person_dir.iterdir() if not p.name.startswith("."))
        except OSError as err:
            log.warning("%s: cannot be read (%s), person skipped", person_dir, err.strerror or err)
            skipped["unreadable_person_folder"] += 1
            continue
        for path in entries:
            if not path.is_file():
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES:
                photos.append(path)
            else:
                skipped["non_image"] += 1
        if photos:
            people[person_dir.name] = photos
        else:
            skipped["empty_person_folder"] += 1
            log.warning("%s: no photos, person skipped", person_dir)
    return people, skipped


def _settings_key(settings: DetectionConfig, size: int, alignment: AlignmentConfig | None = None) -> str:
    aligned = {} if alignment is None or alignment.method == "none" else {"alignment": dataclasses.asdict(alignment)}
    blob = json.dumps({"v": CACHE_VERSION, "size": size, **box_settings(settings), **aligned}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_key(path: str | Path, max_bytes: int = DetectionConfig.max_image_bytes) -> str:
    """A photo's identity for the caches: a digest of its bytes.

    Not its path and modification time: a dataset copied or unpacked again (new times, same
    photos) keeps its crops and its teacher embeddings, which take up to half an hour to rebuild,
    and an edited photo gets a new key. Hashing LFW's 13,233 photos takes a few seconds. A file that
    is not a readable photo keeps a key from its path and times; reading it says what is wrong.
    """
    try:
        data = read_regular_file(path, "photo", max_bytes)
    except NotReadable:
        stat = Path(path).stat()
        return f"unread:{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return "blake2b:" + hashlib.blake2b(data, digest_size=20).hexdigest()


def cache_file(cache_dir: str | Path, root: str | Path, settings: DetectionConfig, size: int,
               alignment: AlignmentConfig | None = None) -> Path:
    root_id = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return Path(cache_dir).expanduser() / f"crops-{root_id}-{_settings_key(settings, size, alignment)}.npz"


def _parse_cache(data, size: int) -> dict[str, tuple[str, np.ndarray | None]]:
    """Cache arrays to entries; raises ValueError on anything inconsistent."""
    keys, statuses, crops = data["keys"], data["statuses"], data["crops"]
    if keys.ndim != 1 or keys.shape != statuses.shape or keys.dtype.kind != "U" or statuses.dtype.kind != "U":
        raise ValueError("keys and statuses do not match")
    if crops.dtype != np.uint8 or crops.shape[1:] != (size, size, 3):
        raise ValueError(f"crops have shape {crops.shape} and type {crops.dtype}")
    with_crop = np.isin(statuses, ("face", "fallback"))
    if int(with_crop.sum()) != len(crops):
        raise ValueError(f"{int(with_crop.sum())} face entries but {len(crops)} crops")
    crop_iter = iter(crops)
    return {key: (status, next(crop_iter) if has else None)
            for key, status, has in zip(keys.tolist(), statuses.tolist(), with_crop.tolist())}


def _read_cache(path: Path, size: int | None = None) -> dict[str, tuple[str, np.ndarray | None]]:
    """The cached entries, or nothing: a corrupt or foreign cache is only lost time, so rebuild it."""
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if size is None:
                size = int(data["crops"].shape[1])
            return _parse_cache(data, size)
    except Exception as err:  # noqa: BLE001 - any failure here means "rebuild"
        log.warning("crop cache %s unreadable (%s): rebuilding it", path, err)
        return {}


def _private_dir(folder: Path) -> None:
    """Create ``folder`` as 0700, and tighten it if it is ours and open to others: crops are biometric.

    A shared folder (the sticky bit: /tmp, whose owner is root) is never tightened: as root that
    would lock every other user and service out of it. Its cache files are still 0600."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = folder.stat()
    if info.st_mode & 0o077 and info.st_uid == os.getuid() and not info.st_mode & stat.S_ISVTX:
        os.chmod(folder, 0o700)
    elif info.st_mode & 0o077:
        log.warning("cache folder %s is open to others and %s: its cache files are private (0600), but set "
                    "cache_dir to a private folder", folder,
                    "shared (sticky)" if info.st_mode & stat.S_ISVTX else "not yours")


def write_private_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write an ``.npz`` atomically with mode 0600 in a 0700 folder: crops and embeddings are biometric.

    A cache that cannot be written only costs time next run, so failures are a warning.
    """
    tmp = None
    try:
        _private_dir(path.parent)
        # mkstemp creates the file 0600 with a unique name, so two runs never share a temp file.
        fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        log.warning("cache %s cannot be written (%s): continuing without it", path, err.strerror or err)
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _write_cache(path: Path, entries: dict[str, tuple[str, np.ndarray | None]], size: int) -> None:
    keys = list(entries)
    crops = [entries[k][1] for k in keys if entries[k][1] is not None]
    write_private_npz(path, keys=np.array(keys, dtype=str), statuses=np.array([entries[k][0] for k in keys], dtype=str),
                      crops=np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8))


def load_face_set(root: str | Path, settings: DetectionConfig, size: int, cache_dir: str | Path | None,
                  min_people: int = 0, progress: bool = True, alignment: AlignmentConfig | None = None,
                  people: set[str] | None = None) -> FaceSet:
    """Crops of the largest face of every photo under ``root/<person>/`` (only ``people``, when given).

    Photos that do not decode, or where no face is found (and the centre-crop fallback is
    off), are skipped and counted in ``summary``; nothing here raises on a bad photo.
    """
    found, summary = scan_people(root)
    chosen = people
    people = found if chosen is None else {p: photos for p, photos in found.items() if p in chosen}
    if len(people) < min_people:
        raise UserError(f"{root}: found {len(people)} person folder(s) with photos; "
                        f"training needs at least {min_people} people, as {root}/<person>/<photo>.jpg")
    cache_path = cache_file(cache_dir, root, settings, size, alignment) if cache_dir else None
    cropper = FaceCropper(settings, alignment if alignment is not None else AlignmentConfig(method="none"), size)
    cached = _read_cache(cache_path, size) if cache_path else {}
    entries: dict[str, tuple[str, np.ndarray | None]] = {}
    crops, labels, paths = [], [], []
    todo = [(person, path) for person, photos in people.items() for path in photos]
    fresh = 0
    for person, path in tqdm(todo, desc=f"faces in {Path(root).name}", unit="photo",
                             disable=not progress, leave=False):
        summary["images"] += 1
        try:
            key = file_key(path, settings.max_image_bytes)
        except OSError:
            summary["unreadable"] += 1
            continue
        if key in cached:
            status, crop = cached[key]
            summary["cache_hits"] += 1
        else:
            fresh += 1
            try:
                status, crop = "no_face", None
                image = read_image(path, settings)
                crop, status, count = face_from_photo(image, cropper)
                if count > 1:
                    summary["several_faces_kept_largest"] += 1
            except UnreadableImage as err:
                log.warning("%s", err)
                status, crop = "unreadable", None
            except (cv2.error, MemoryError) as err:  # one odd photo must not end a long run
                log.warning("%s: skipped, image could not be processed (%s)", path,
                            str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__)
                status, crop = "unreadable", None
        entries[key] = (status, crop)
        summary[status] += 1
        if crop is not None:
            crops.append(crop)
            labels.append(person)
            paths.append(str(path))
    if cache_path and fresh:
        # A subset of the folder keeps the cached crops of everyone else.
        _write_cache(cache_path, entries if chosen is None else {**cached, **entries}, size)
    summary["faces"] = len(crops)
    with_faces = len(set(labels))
    if with_faces < min_people:
        raise UserError(f"{root}: faces were found for only {with_faces} person(s) ({summary_line(summary)}); "
                        f"training needs at least {min_people}: add photos where the face is clearly visible")
    stacked = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
    return FaceSet(stacked, np.array(labels, dtype=str), np.array(paths, dtype=str), summary)


def summary_line(summary: Counter) -> str:
    """One line: images read, faces used, skipped and why."""
    parts = [f"{summary.get('images', 0)} images read", f"{summary.get('faces', 0)} faces used"]
    for reason in ("fallback", "no_face", "not_a_face", "unreadable", "non_image", "empty_person_folder",
                   "unreadable_person_folder", "several_faces_kept_largest", "cache_hits"):
        if summary.get(reason):
            parts.append(f"{summary[reason]} {reason.replace('_', ' ')}")
    return ", ".join(parts)
