"""Alignment: five landmarks in a detected box, then a similarity warp onto a fixed template.

The stage between detection and encoding (detect -> landmarks -> align -> crop -> scale). Faces
come out with the eyes, nose and mouth where the encoder learned them, whatever the head's tilt
or the box's jitter; a box in which no face is found (a Haar false positive) is dropped.

Landmarks come from YuNet (:mod:`realtime.yunet`) run on the box's neighbourhood only, so it
costs a few milliseconds per face and never replaces the detector. Training crops and live frames
both go through :meth:`Aligner.crops`, so a face is aligned at run time exactly as the encoder was
trained on.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from realtime.boxes import Box, contains_point
from realtime.config import AlignmentConfig, resolve_path
from realtime.errors import UserError
from realtime.yunet import YuNet, square_region

# Two boxes whose faces' landmark centres are closer than this share of the eye distance hold the
# same face (Haar can box one face twice): the first box (the larger, in detection order) keeps it.
SAME_FACE_SHARE = 0.5


def same_face(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two sets of five landmarks (full-image pixels) are the same face."""
    eyes = float(np.linalg.norm(a[0] - a[1]))
    return float(np.linalg.norm(a.mean(0) - b.mean(0))) < SAME_FACE_SHARE * max(eyes, 1.0)


def template_points(settings: AlignmentConfig, size: int) -> np.ndarray:
    """The template's five points scaled to a ``size`` x ``size`` crop, as ``(5, 2)`` float32."""
    points = np.asarray(settings.template, dtype=np.float32)
    if points.shape != (5, 2):
        raise UserError(f"config: alignment.template: expected 5 points of [x, y], got shape {points.shape}")
    return points * np.float32(size / settings.template_size)


def similarity(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 rotation + uniform scale + shift that best maps ``points`` onto ``target``.

    Least squares in closed form (Umeyama without reflection): exact and deterministic, so
    training crops and live crops of the same landmarks are the same bytes.
    """
    src, dst = np.asarray(points, np.float64), np.asarray(target, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    s, d = src - src_mean, dst - dst_mean
    # For z = x + iy, the best complex factor a (rotation and scale) minimises |d - a s|^2.
    sz, dz = s[:, 0] + 1j * s[:, 1], d[:, 0] + 1j * d[:, 1]
    a = np.vdot(sz, dz) / max(np.vdot(sz, sz).real, 1e-12)
    rot = np.array([[a.real, -a.imag], [a.imag, a.real]])
    shift = dst_mean - rot @ src_mean
    return np.hstack([rot, shift[:, None]]).astype(np.float64)


def warp_crop(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """``image`` warped by ``matrix`` into a ``size`` square, RGB uint8.

    A large face shrinks a lot (a 250 px webcam face to 60 px): the region is first reduced
    with area averaging so the warp resamples at about 1:1 and does not alias.
    """
    matrix = np.asarray(matrix, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.9:
        inverse = cv2.invertAffineTransform(matrix)
        corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64) @ inverse.T
        height, width = image.shape[:2]
        x0, y0 = (int(max(0, np.floor(v) - 2)) for v in corners.min(0))
        x1 = int(min(width, np.ceil(corners[:, 0].max()) + 2))
        y1 = int(min(height, np.ceil(corners[:, 1].max()) + 2))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            roi = image[y0:y1, x0:x1]
            new_w, new_h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
            small = cv2.resize(roi, (new_w, new_h), interpolation=cv2.INTER_AREA)
            fx, fy = new_w / (x1 - x0), new_h / (y1 - y0)
            linear = matrix[:, :2] @ np.diag([1.0 / fx, 1.0 / fy])
            matrix = np.hstack([linear, (matrix @ np.array([x0, y0, 1.0]))[:, None]])
            image = small
    patch = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(patch, cv2.COLOR_BGR2RGB)


class Aligner:
    """YuNet landmarks in each box, and template warps."""

    def __init__(self, settings: AlignmentConfig, size: int):
        if settings.method != "yunet":
            raise ValueError(f"no aligner for alignment.method {settings.method!r}")
        self.settings = settings
        self.size = size
        self.target = template_points(settings, size)
        self.yunet = YuNet(resolve_path(settings.model), settings.min_score)

    def landmarks(self, image: np.ndarray, box: Sequence[int]) -> tuple[np.ndarray, float] | None:
        """The five points (full-image pixels) and face score of the face in ``box``, or None."""
        x, y, w, h = (int(v) for v in box)
        if w < 4 or h < 4:
            return None
        side = self.settings.landmark_size
        # A square around the box's centre, grown by the margin (black where it leaves the image).
        span = max(2, int(round(max(w, h) * (1.0 + 2.0 * self.settings.box_margin))))
        x0, y0 = int(round(x + w / 2.0 - span / 2.0)), int(round(y + h / 2.0 - span / 2.0))
        found = self.yunet.infer(square_region(image, x0, y0, span, side))
        if not len(found):
            return None
        # The face nearest the box's centre (a neighbour's face can show at the edge of the margin).
        centres = found[:, 0:2] + found[:, 2:4] / 2.0
        best = found[int(np.argmin(((centres - side / 2.0) ** 2).sum(1)))]
        points = best[4:14].reshape(5, 2).astype(np.float64)
        points = points * (span / side) + np.array([x0, y0], np.float64)
        return points.astype(np.float32), float(best[14])

    def align(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        return warp_crop(image, similarity(points, self.target), self.size)

    def locate(self, image: np.ndarray, boxes: Sequence[Box]) -> list[tuple[int, np.ndarray]]:
        """``(box index, five points)`` of each box that holds a face of its own.

        A box holds a face when YuNet finds one with ``min_score`` whose landmarks' centre lies
        inside the box: YuNet looks past the box's edge, and a box on a shirt would otherwise take
        the face above it. A box whose face an earlier box already holds is a duplicate."""
        return [(i, points) for i, points, _ in self.located(image, boxes)]

    def located(self, image: np.ndarray, boxes: Sequence[Box]) -> list[tuple[int, np.ndarray, float]]:
        """:meth:`locate` with YuNet's face score of each face."""
        found: list[tuple[int, np.ndarray, float]] = []
        for i, box in enumerate(boxes):
            located = self.landmarks(image, box)
            if located is None or located[1] < self.settings.min_score:
                continue
            points = located[0]
            if contains_point(box, *points.mean(0)) and not any(same_face(points, p) for _, p, _ in found):
                found.append((i, points, located[1]))
        return found

    def crops(self, image: np.ndarray, boxes: Sequence[Box]) -> tuple[np.ndarray, list[int]]:
        """Aligned RGB crops of the boxes that hold a face (:meth:`locate`), and which boxes those are."""
        located = self.locate(image, boxes)
        if not located:
            return np.zeros((0, self.size, self.size, 3), np.uint8), []
        return np.stack([self.align(image, points) for _, points in located]), [i for i, _ in located]


def make_aligner(settings: AlignmentConfig, size: int) -> Aligner | None:
    """The configured aligner, or None for plain box crops (``alignment.method: none``)."""
    return None if settings.method == "none" else Aligner(settings, size)
