"""training.sface: the Keras rebuild of the vendored SFace ONNX is the network OpenCV runs.

``cv2.FaceRecognizerSF.feature`` runs the ONNX file itself (BGR crops in, swapped to RGB inside);
the Keras model takes the same crops as RGB in [0, 1] and must give the same direction."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("onnx")

from realtime.config import load_config  # noqa: E402
from realtime.errors import UserError  # noqa: E402
from training import sface  # noqa: E402

DATA = os.environ.get("FACES_DATA")


@pytest.fixture(scope="module")
def model():
    return sface.build_sface()


@pytest.fixture(scope="module")
def opencv():
    return cv2.FaceRecognizerSF.create(str(sface.onnx_path()), "")


def opencv_embeddings(opencv, rgb_crops):
    raw = np.concatenate([opencv.feature(cv2.cvtColor(c, cv2.COLOR_RGB2BGR)) for c in rgb_crops])
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def test_same_embedding_as_opencv_on_random_crops(model, opencv):
    crops = np.random.default_rng(0).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    ours = np.asarray(model(crops.astype(np.float32) / 255.0))
    np.testing.assert_allclose(ours, opencv_embeddings(opencv, crops), atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


@pytest.mark.skipif(not DATA, reason="FACES_DATA not set: the celebrity5 photos are not available")
def test_same_embedding_as_opencv_on_the_projects_aligned_crops(model, opencv):
    from realtime.crops import FaceCropper
    from realtime.images import read_image
    from training.data import face_from_photo
    config = load_config()
    cropper = FaceCropper(config.detection, config.alignment, sface.INPUT_SIZE)
    # At 112 px the template is used as written: crops are made at SFace's own scale.
    np.testing.assert_allclose(cropper.aligner.target, np.asarray(config.alignment.template, np.float32))
    crops, labels = [], []
    for person in ("madonna", "elton_john"):
        for path in sorted((Path(DATA) / "celebrity5" / "train" / person).glob("*.jpg"))[:3]:
            crop, _, _ = face_from_photo(read_image(path), cropper)
            if crop is not None:
                crops.append(crop)
                labels.append(person)
    crops, labels = np.stack(crops), np.array(labels)
    ours = np.asarray(model(crops.astype(np.float32) / 255.0))
    np.testing.assert_allclose(ours, opencv_embeddings(opencv, crops), atol=2e-5)
    d = np.linalg.norm(ours[:, None] - ours[None], axis=2)
    same = labels[:, None] == labels[None]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    # A profile and dark glasses are among these photos: on average, still nearer their own person.
    assert d[same & off_diagonal].mean() < d[~same].mean() - 0.1


def test_blocked_dequantisation():
    q = np.array([[1, 2, 3, 4, 5]], np.int8)
    scale = np.array([[0.5, 2.0, 10.0]], np.float32)
    zero = np.array([[1, 0, 5]], np.int8)
    got = sface.dequantize(q, scale, zero, axis=1, block=2)
    np.testing.assert_allclose(got, [[0.0, 0.5, 6.0, 8.0, 0.0]])


def test_a_different_onnx_file_is_refused(tmp_path):
    fake = tmp_path / "sface.onnx"
    fake.write_bytes(b"not the network")
    with pytest.raises(UserError, match="SHA-256"):
        sface.load_onnx(fake)
