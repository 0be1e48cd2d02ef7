"""realtime.align: five landmarks in a box, the similarity warp onto the template, and the YuNet file."""
import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from realtime.align import Aligner, similarity, template_points, warp_crop
from realtime.config import AlignmentConfig
from realtime.errors import UserError
from realtime.crops import face_crops
from realtime.images import read_image
from training.data import photo_face_box
from testdata import DATA

needs_data = pytest.mark.skipif(DATA is None, reason="FACES_DATA not set: the real-photo tests need the datasets")
YUNET = AlignmentConfig(method="yunet")


def test_similarity_recovers_a_rotation_scale_and_shift():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 0.7, np.array([12.0, -4.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = points @ rot.T + shift
    matrix = similarity(points, target)
    np.testing.assert_allclose(matrix[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)


def test_template_scales_with_the_crop_and_must_have_five_points():
    assert template_points(YUNET, 112)[0] == pytest.approx([38.2946, 51.6963])
    assert template_points(YUNET, 56)[0] == pytest.approx([19.1473, 25.84815])
    with pytest.raises(UserError, match="alignment.template"):
        template_points(dataclasses.replace(YUNET, template=[[1.0, 2.0]]), 60)


def test_warp_crop_shrinking_a_large_face_averages_instead_of_aliasing():
    # A fine checkerboard (1 px squares) shrunk 5x must come out mid-grey, not a moire of 0s and 255s.
    board = ((np.indices((600, 600)).sum(0) % 2) * 255).astype(np.uint8)
    image = np.dstack([board] * 3)
    crop = warp_crop(image, np.array([[0.2, 0.0, 0.0], [0.0, 0.2, 0.0]]), 60)
    assert crop.shape == (60, 60, 3) and crop.dtype == np.uint8
    assert abs(float(crop.mean()) - 127.5) < 10 and float(crop.std()) < 20


@needs_data
def test_aligned_crops_put_the_eyes_on_the_template(haar_photos):
    aligner = Aligner(YUNET, 60)
    image = read_image(DATA / "celebrity5" / "train" / "madonna" / "1.jpg")
    box, status, _ = photo_face_box(image, haar_photos())
    assert status == "face"
    points, score = aligner.landmarks(image, box)
    assert score > 0.8
    # The warp sends the five landmarks to the template (within a pixel of the 60 px crop).
    matrix = similarity(points, aligner.target)
    mapped = np.c_[points, np.ones(5)] @ matrix.T
    assert np.abs(mapped - aligner.target).max() < 3.0
    crops, kept = aligner.crops(image, [box])
    assert kept == [0] and crops.shape == (1, 60, 60, 3)
    # The same image and box always give the same bytes (training and live crops agree).
    again, _ = face_crops(image, [box], 60, aligner)
    assert np.array_equal(crops, again)


@needs_data
def test_a_box_without_a_face_is_dropped(haar_photos):
    aligner = Aligner(YUNET, 60)
    image = read_image(DATA / "celebrity5" / "train" / "madonna" / "1.jpg")
    box, _, _ = photo_face_box(image, haar_photos())
    flat = np.full((300, 300, 3), 128, np.uint8)           # a patch of wall
    crops, kept = aligner.crops(image, [box, (0, 0, 20, 20)])
    assert kept == [0]
    assert aligner.crops(flat, [(50, 50, 200, 200)])[1] == []


def test_a_changed_yunet_file_is_refused(tmp_path):
    fake = tmp_path / "yunet.onnx"
    fake.write_bytes(b"not the model")
    with pytest.raises(UserError, match="SHA-256"):
        Aligner(dataclasses.replace(YUNET, model=str(fake)), 60)


def test_an_alignment_model_that_is_a_fifo_or_a_device_is_refused_without_reading(tmp_path):
    """A FIFO hung every command (read_bytes waits for a writer forever); /dev/zero never ends."""
    import threading
    fifo = tmp_path / "yunet.onnx"
    os.mkfifo(fifo)
    for model, words in ((fifo, "is a FIFO (named pipe), not a regular file"),
                         (Path("/dev/zero"), "is a character device")):
        outcome = []

        def build():
            try:
                Aligner(dataclasses.replace(YUNET, model=str(model)), 60)
                outcome.append(None)
            except UserError as err:
                outcome.append(err)
        worker = threading.Thread(target=build, daemon=True)
        worker.start()
        worker.join(10)
        assert outcome and isinstance(outcome[0], UserError), "it hung, or accepted the file"
        assert words in str(outcome[0]) and "alignment.model" in str(outcome[0]), outcome[0]
