"""realtime.api, the Python API: the README's example run as written, and what its functions promise."""
import inspect
import os
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from testdata import DATA, ROOT, needs_data

needs_model = pytest.mark.skipif(not (ROOT / "models" / "encoder.tflite").is_file(), reason="no shipped encoder in models/")


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S)
    assert match, "README has no Python API example"
    return match.group(1)


def side_by_side(*paths) -> np.ndarray:
    images = [cv2.imread(str(p)) for p in paths]
    height = max(i.shape[0] for i in images)
    return np.hstack([cv2.copyMakeBorder(i, 0, height - i.shape[0], 0, 0, cv2.BORDER_CONSTANT) for i in images])


@needs_data
@needs_model
def test_readme_example_runs_as_written(tmp_path):
    c5 = DATA / "celebrity5"
    shutil.copytree(c5 / "train" / "madonna", tmp_path / "ann")
    shutil.copytree(c5 / "train" / "elton_john", tmp_path / "bob")
    shutil.copy(c5 / "train" / "madonna" / "6.jpg", tmp_path / "ann_1.jpg")
    shutil.copy(c5 / "val" / "madonna" / "4.jpg", tmp_path / "ann_2.jpg")
    cv2.imwrite(str(tmp_path / "group.jpg"), side_by_side(c5 / "val" / "madonna" / "3.jpg",
                                                          c5 / "val" / "elton_john" / "1.jpg"))
    proc = subprocess.run([sys.executable, "-c", readme_example()], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "2 (2, 128)", proc.stdout                     # two faces found and encoded
    assert lines[1].startswith("True "), proc.stdout                 # two photos of Madonna: the same person
    assert lines[2].startswith("Ann ") and lines[2].endswith("(38, 65, 97, 97)"), proc.stdout
    assert (os.stat(tmp_path / "people.db").st_mode & 0o777) == 0o600
    assert "XNNPACK" not in proc.stderr                              # no third-party noise


def test_import_realtime_is_light():
    code = "import sys, realtime; print(sorted(m for m in ('cv2', 'numpy', 'yaml', 'realtime.api') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_defaults_are_visible_in_signatures_and_docstrings():
    from realtime import api
    assert inspect.signature(api.encode).parameters["boxes"].default is None
    params = inspect.signature(api.Recognizer).parameters
    assert all(params[p].default is None for p in ("model_dir", "config", "threshold"))
    assert "models/" in api.Recognizer.__doc__ and "encoder.json" in api.Recognizer.__doc__
    assert "gallery.db" in api.Gallery.__doc__
    for name in ("detect", "encode", "verify", "identify", "Gallery"):
        assert getattr(api, name).__doc__, name


@needs_data
@needs_model
def test_api_calls_agree_with_each_other(tmp_path):
    from realtime import api
    c5 = DATA / "celebrity5"
    photo = c5 / "val" / "madonna" / "3.jpg"
    image = cv2.imread(str(photo))
    boxes = api.detect(photo)
    assert boxes == api.detect(image) and len(boxes) == 1              # a path or an array, the same faces
    vectors = api.encode(image)
    assert vectors.shape == (1, 128) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert np.allclose(api.encode(image, boxes), vectors)               # given boxes = detected boxes
    same = api.verify(photo, image)
    assert same.same and same.distance < 1e-5 and same.box_a == boxes[0]
    other = api.verify(photo, c5 / "val" / "elton_john" / "1.jpg")
    assert not other.same and other.distance > other.threshold
    assert api.identify(photo, tmp_path / "none.db")[0].name is None    # an empty gallery: unknown ...
    assert not (tmp_path / "none.db").exists()                          # ... and no file created by looking
    with api.Gallery(tmp_path / "g.db") as gallery:
        with pytest.raises(api.UserError, match="nothing enrolled"):
            gallery.enroll("Nobody", [np.zeros((100, 100, 3), np.uint8)])
        assert gallery.enroll("Ann", [c5 / "train" / "madonna" / "1.jpg", image]) == 2
        assert gallery.people() == [("Ann", 2)]
        (found,) = api.identify(photo, gallery)
        assert found.name == "Ann" and found.distance < 1e-5 and found.box == boxes[0]
        assert gallery.remove("Ann") == 2 and gallery.people() == []


@needs_data
@needs_model
def test_rgb_arrays_and_pil_images_give_the_answers_of_the_bgr_photo(tmp_path):
    from PIL import Image

    from realtime import api
    c5 = DATA / "celebrity5"
    photo = c5 / "val" / "madonna" / "3.jpg"
    bgr = cv2.imread(str(photo))
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    reference = api.encode(bgr)
    assert np.allclose(api.encode(rgb, color="rgb"), reference, atol=1e-5)
    assert np.allclose(api.encode(Image.fromarray(rgb)), reference, atol=1e-5)      # a PIL image: RGB by its mode
    assert api.detect(rgb, color="rgb") == api.detect(bgr)
    assert float(np.linalg.norm(api.encode(rgb)[0] - reference[0])) > 0.05          # RGB read as BGR: another face
    assert api.verify(rgb, photo, color="rgb").distance < 1e-5
    with api.Gallery(tmp_path / "g.db") as gallery:
        gallery.enroll("Ann", [np.ascontiguousarray(cv2.imread(str(c5 / "train" / "madonna" / "6.jpg"))[:, :, ::-1])],
                       color="rgb")
        probe = c5 / "val" / "madonna" / "4.jpg"
        (as_rgb,) = api.identify(np.ascontiguousarray(cv2.imread(str(probe))[:, :, ::-1]), gallery, color="rgb")
        (as_bgr,) = api.identify(probe, gallery)
        assert as_rgb.name == as_bgr.name == "Ann" and as_rgb.distance == pytest.approx(as_bgr.distance, abs=1e-5)
    with pytest.raises(api.UserError, match="'bgr'"):
        api.detect(bgr, color="BGRA")
    for name in ("detect", "encode", "verify", "identify", "landmarks"):          # every image function says it
        assert inspect.signature(getattr(api, name)).parameters["color"].default == "bgr"
        assert '"rgb"' in getattr(api, name).__doc__, name


@needs_data
@needs_model
def test_face_distance_and_compare_faces_work_on_embeddings():
    from realtime import api
    c5 = DATA / "celebrity5"
    known = np.vstack([api.encode(c5 / "train" / "madonna" / "6.jpg"), api.encode(c5 / "val" / "elton_john" / "1.jpg")])
    face = api.encode(c5 / "val" / "madonna" / "4.jpg")[0]
    distances = api.face_distance(known, face)
    assert distances.shape == (2,) and np.allclose(distances, np.linalg.norm(known - face, axis=1))
    result = api.verify(c5 / "train" / "madonna" / "6.jpg", c5 / "val" / "madonna" / "4.jpg")
    assert distances[0] == pytest.approx(result.distance, abs=1e-5)
    assert api.compare_faces(known, face) == [True, False]                   # at verify's one-to-one threshold
    assert api.compare_faces(known, face, threshold=distances[0] / 2) == [False, False]
    assert api.face_distance(known[0], face).shape == (1,) and api.face_distance(np.zeros((0, 128)), face).size == 0
    with pytest.raises(api.UserError, match="do not match"):
        api.face_distance(known[:, :64], face)


@needs_data
@needs_model
def test_landmarks_are_the_points_each_crop_is_aligned_on():
    from realtime import api
    photo = DATA / "celebrity5" / "val" / "madonna" / "3.jpg"
    (face,) = api.landmarks(photo)
    assert face["box"] == api.detect(photo)[0]
    x, y, w, h = face["box"]
    for name in api.LANDMARK_NAMES:
        px, py = face[name]
        assert x <= px <= x + w and y <= py <= y + h, name
    assert face["right_eye"][0] < face["left_eye"][0] and face["mouth_right"][0] < face["mouth_left"][0]
    assert max(face["right_eye"][1], face["left_eye"][1]) < face["nose"][1] < min(face["mouth_right"][1],
                                                                                 face["mouth_left"][1])
    recognizer = api.default_recognizer()
    image = recognizer.load(photo)
    boxes, points = recognizer.landmarks(image)
    crops, _ = recognizer.crops(image, boxes)
    assert np.array_equal(recognizer.cropper.aligner.align(image, points[0]), crops[0])   # the crop's own points


@needs_model
def test_unknown_groups_are_listed_shown_named_and_forgotten_through_the_api(tmp_path):
    from realtime import api
    from realtime.gallery import open_gallery
    from realtime.unknowns.quality import Caps, View
    path = tmp_path / "g.db"
    encoder = api.default_recognizer().encoder
    faces = [np.full((60, 60, 3), 90, np.uint8)] * 2
    with open_gallery(path, encoder.model_id) as store:
        for k in range(2):
            centre = np.eye(encoder.embedding_size, dtype=np.float32)[k]
            store.unknowns.record(f"r:{k}", [View(1e9 + i, 0.5, centre, faces[i], faces[i]) for i in range(2)], "cam",
                                  Caps(), lambda n: 0.66)
    with api.Gallery(path) as gallery:
        assert [(g.id, g.views) for g in gallery.unknowns()] == [(1, 2), (2, 2)]
        sheet = gallery.unknown_sheet(1, tmp_path / "one.png")
        assert np.array_equal(cv2.imread(str(tmp_path / "one.png")), sheet)
        assert gallery.name_unknown(1, "Ann") == 2 and gallery.people() == [("Ann", 2)]
        with pytest.raises(api.UserError, match="one of the three"):
            gallery.forget_unknowns()
        assert gallery.forget_unknowns(everything=True) == 1 and gallery.unknowns() == []
    with api.Gallery(tmp_path / "new.db") as empty:
        assert empty.unknowns() == []
        with pytest.raises(api.UserError, match="does not exist"):
            empty.name_unknown(1, "Ann")
