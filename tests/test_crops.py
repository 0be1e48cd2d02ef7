"""realtime.crops: the cropper (the detector, its second look, which boxes hold a face) and the check
that a config crops as the encoder's training did."""

import pytest

from realtime.config import apply_overrides, load_config
from realtime.crops import check_preprocessing, preprocessing_record
from realtime.errors import UserError
from realtime.images import read_image
from testdata import DATA

needs_data = pytest.mark.skipif(DATA is None, reason="FACES_DATA not set: the real-photo tests need the datasets")


def test_a_config_that_crops_differently_from_the_encoders_training_is_refused():
    config = apply_overrides(load_config(), {"alignment.method": "yunet"})
    info = {"preprocessing": preprocessing_record(config)}
    check_preprocessing(info, config)                              # the same: fine
    with pytest.raises(UserError, match="alignment method"):
        check_preprocessing(info, apply_overrides(config, {"alignment.method": "none"}))
    with pytest.raises(UserError, match="alignment box_margin"):
        check_preprocessing(info, apply_overrides(config, {"alignment.box_margin": 0.5}))
    with pytest.raises(UserError, match="detection.cascade"):
        check_preprocessing(info, apply_overrides(config, {"detection.cascade": "haarcascade_frontalface_alt2.xml"}))
    # An encoder.json from before alignment existed means plain box crops.
    check_preprocessing({"preprocessing": {"detector": "haar"}}, apply_overrides(config, {"alignment.method": "none"}))
    with pytest.raises(UserError, match="alignment method"):
        check_preprocessing({"preprocessing": {"detector": "haar"}}, config)


@needs_data
def test_a_box_whose_face_lies_outside_it_is_not_named_after_that_face(haar_photos):
    """jerry_seinfeld/13.jpg: Haar boxes his tuxedo as well as his face. YuNet, looking past the
    tuxedo box's edge, finds the face above it; that face belongs to the other box."""
    image = read_image(DATA / "celebrity5" / "train" / "jerry_seinfeld" / "13.jpg")
    cropper = haar_photos()
    haar = cropper.detector.detect(image)
    assert len(haar) == 2
    boxes = cropper.detect(image)
    assert len(boxes) == 1 and boxes[0] == haar[1]           # the face's own box, not the tuxedo's
    assert cropper.crops(image, haar)[1] == [1]


@needs_data
def test_two_boxes_of_one_face_are_one_face(haar_photos):
    image = read_image(DATA / "celebrity5" / "train" / "madonna" / "4.jpg")
    cropper = haar_photos()
    haar = cropper.detector.detect(image)
    assert len(haar) == 2
    assert cropper.detect(image) == [haar[0]]               # the larger box keeps the face
    crops, kept = cropper.crops(image, haar)
    assert kept == [0] and len(crops) == 1


@needs_data
def test_the_second_look_finds_a_face_haar_misses(haar_photos):
    """A face Haar cannot see (turned a quarter): the second look (YuNet over the whole photo) finds it."""
    import cv2
    upright = read_image(DATA / "celebrity5" / "val" / "madonna" / "1.jpg")
    image = cv2.copyMakeBorder(cv2.rotate(upright, cv2.ROTATE_90_CLOCKWISE), 40, 40, 40, 40, cv2.BORDER_REPLICATE)
    image = cv2.warpAffine(image, cv2.getRotationMatrix2D((image.shape[1] / 2, image.shape[0] / 2), 50, 1.0),
                           image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    assert haar_photos(second_look="none").detect(image) == []
    (box,) = haar_photos().detect(image)
    crops, kept = haar_photos().crops(image, [box])
    assert kept == [0] and crops.shape == (1, 60, 60, 3)


@needs_data
def test_the_landmarks_found_in_detection_give_the_crops_a_second_pass_would(haar_photos):
    """detect_located keeps each face's points, so a photo's crops need no second YuNet pass: the same
    boxes and the same pixels as cropping detect's boxes again (a photo with two faces, a tuxedo box)."""
    import numpy as np
    cropper = haar_photos()
    for photo in ("train/jerry_seinfeld/13.jpg", "train/madonna/4.jpg", "val/elton_john/1.jpg"):
        image = read_image(DATA / "celebrity5" / photo)
        located = cropper.detect_located(image)
        boxes = cropper.detect(image)
        assert located and [box for box, _ in located] == boxes
        again, kept = cropper.crops(image, boxes)
        assert kept == list(range(len(boxes)))
        assert np.array_equal(cropper.crops_of(image, located), again), photo
    assert cropper.crops_of(image, []).shape == (0, 60, 60, 3)
