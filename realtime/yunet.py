"""YuNet, OpenCV Zoo's small face detector (``cv2.FaceDetectorYN``, a 122 KB int8 ONNX vendored
in ``models/``): a face box, five landmarks and a score per face.

The face path uses it twice: five landmarks in the neighbourhood of each detected box
(:mod:`realtime.align`), and a second look for faces the Haar cascade misses
(:class:`realtime.detection.YuNetDetector`). Shaped like opencv_zoo's wrappers: built from a model
path, one :meth:`YuNet.infer` call. The file is read once as a regular file of bounded size and
checked against its SHA-256 (a FIFO or a swapped file is a one-line error, never a hang), and the
network is built from those verified bytes.
"""
from __future__ import annotations

import functools
import hashlib
import threading
from pathlib import Path

import cv2
import numpy as np

from realtime.errors import UserError
from realtime.paths import read_regular_file

YUNET_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
# The vendored file is 122 KB; anything far larger is not it.
MAX_MODEL_BYTES = 10_000_000
# Overlapping detections merged by YuNet's own non-maximum suppression, and the most faces kept.
NMS_THRESHOLD = 0.3
TOP_K = 50


@functools.lru_cache(maxsize=4)
def model_bytes(path: Path) -> np.ndarray:
    """The verified model file's bytes (read and checked once per process)."""
    data = read_regular_file(path, "alignment.model", MAX_MODEL_BYTES, "the YuNet model ships in models/")
    if hashlib.sha256(data).hexdigest() != YUNET_SHA256:
        raise UserError(f"alignment.model: {path} is not the expected YuNet 2023mar int8 model "
                        "(SHA-256 differs): restore it from the project's models/")
    return np.frombuffer(data, np.uint8)


class YuNet:
    """One YuNet network per thread (a net is not thread-safe), all from the same verified bytes."""

    def __init__(self, model_path: Path, score_threshold: float):
        self.model_path = Path(model_path)
        self.score_threshold = min(float(score_threshold), 0.99)
        self._bytes = model_bytes(self.model_path)
        self._local = threading.local()

    def _net(self, size: tuple[int, int]):
        net = getattr(self._local, "net", None)
        if net is None:
            try:
                net = cv2.FaceDetectorYN.create("onnx", self._bytes, np.zeros(0, np.uint8), size,
                                                self.score_threshold, NMS_THRESHOLD, TOP_K)
            except cv2.error as err:
                raise UserError(f"alignment.model: {self.model_path} does not load in OpenCV "
                                f"{cv2.__version__} ({str(err).strip().splitlines()[-1]})") from None
            self._local.net, self._local.size = net, size
        elif self._local.size != size:
            net.setInputSize(size)
            self._local.size = size
        return net

    def infer(self, image: np.ndarray) -> np.ndarray:
        """Faces in a BGR image as ``(n, 15)`` float32 rows: box x, y, w, h, five (x, y) landmarks
        (right eye, left eye, nose tip, right and left mouth corners, as seen), score."""
        height, width = image.shape[:2]
        if height < 1 or width < 1:
            return np.zeros((0, 15), np.float32)
        _, found = self._net((int(width), int(height))).detect(image)
        rows = np.zeros((0, 15), np.float32) if found is None else np.asarray(found, np.float32).reshape(-1, 15)
        return rows[np.isfinite(rows).all(axis=1)]   # a frame of extreme shape (200 x 100,000) gives inf boxes


def square_region(image: np.ndarray, x0: int, y0: int, span: int, side: int) -> np.ndarray:
    """The ``span`` square at ``(x0, y0)`` of ``image`` (black outside it), resized to ``side``."""
    height, width = image.shape[:2]
    roi = image[max(0, y0):min(height, y0 + span), max(0, x0):min(width, x0 + span)]
    if roi.size == 0:
        return np.zeros((side, side, 3), np.uint8)
    pad = (max(0, -y0), max(0, y0 + span - height), max(0, -x0), max(0, x0 + span - width))
    if any(pad):
        roi = cv2.copyMakeBorder(roi, *pad, cv2.BORDER_CONSTANT, value=0)
    interpolation = cv2.INTER_AREA if span > side else cv2.INTER_LINEAR
    return cv2.resize(roi, (side, side), interpolation=interpolation)
