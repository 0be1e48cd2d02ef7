"""realtime.app: the loop driven in-process, as the benchmark does: construct, feed frames, read results."""
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.app import App
from realtime.capture import VideoSource
from realtime.config import apply_overrides, load_config
from realtime.gallery import SQLiteStore
from realtime.recognizer import Recognizer
from testdata import DATA, MODEL, needs_data

CLIP = "video-retalking_face_1.mp4"

needs_model = pytest.mark.skipif(not (MODEL / "encoder.tflite").is_file(),
                                 reason=f"no trained encoder in {MODEL} (run `python -m training` first)")
pytestmark = [needs_data, needs_model]


def frames(n):
    source = VideoSource(DATA / "videos" / CLIP)
    out = [source.read() for _ in range(n)]
    source.close()
    return [f for f in out if f is not None]


@pytest.mark.parametrize("switches", [
    {"detection.worker": "always"},
    {"detection.worker": "never"},
    {"detection.worker": "never", "detection.scale": 1.0, "detection.every": 1},
])
def test_app_enrolls_by_key_and_names_the_face_once_sure_or_agreed(tmp_path, encoder, switches):
    config = apply_overrides(load_config(), {"enrolment.samples": 3, "enrolment.seconds": 0.0,
                                             **switches})
    with SQLiteStore(tmp_path / "g.db", encoder.model_id) as gallery:
        app = App(Recognizer(MODEL, config), gallery)
        clip = frames(40)
        results, done = [], None
        for i, frame in enumerate(clip):
            if i == 5:
                for key in "eAnnA\r":
                    app.key(ord(key), t=i / 25)
            results.append(app.process(frame, t=i / 25))
            app.hud(app.annotate(frame, results[-1]))
            if done is None and app.enrolled:
                done = i                  # the background write's outcome was taken in this frame
        assert set(app.timings) == {"detect", "encode", "match", "track"}
        assert gallery.people() == [("AnnA", 3)]
        assert done is not None and done < 30
        # The index is rebuilt at once (written on the store's writer thread, seen by the frame after it
        # finished): from then on the face's nearest match is AnnA. A sure match names her on that
        # frame; a borderline one once vote_agree encodings agree, never earlier.
        first = next(i for i, r in enumerate(results) if r.faces and r.faces[0].nearest == "AnnA")
        assert abs(first - done) <= 1
        assert all(f.name is None for r in results[:first] for f in r.faces)       # unknown until then
        agree = config.tracking.vote_agree
        at_first = results[first].faces[0]
        if at_first.distance <= app.recognizer.thresholds.sure(1, app.threshold):
            assert at_first.name == "AnnA" and at_first.state == "named"
        else:
            assert all(f.name is None for r in results[first:first + agree - 1] for f in r.faces)
        after = [r for r in results[first + agree - 1:] if r.faces]
        assert after and all(r.faces[0].name == "AnnA" for r in after)
        assert any(r.full_detection for r in results)
        if switches.get("detection.every") == 1:
            assert all(r.full_detection for r in results)
        else:
            assert not all(r.full_detection for r in results)
        tracks = {f.track for r in results for f in r.faces}
        assert len(tracks) <= 3     # one talking head: one track (a stray false hit at most)


def model_with_sure_curve(tmp_path: Path, sure: bool) -> Path:
    """A copy of the shipped model whose encoder.json does (or does not) carry a sure curve."""
    import json
    import shutil
    folder = tmp_path / ("sure" if sure else "vote")
    shutil.copytree(MODEL, folder)
    info = json.loads((folder / "encoder.json").read_text())
    metrics = info.setdefault("metrics", {})
    metrics.pop("open_set_sure", None)
    if sure:   # sure wherever the threshold names: every match within it is named at once
        metrics["open_set_sure"] = metrics["open_set"]
    (folder / "encoder.json").write_text(json.dumps(info))
    return folder


@pytest.mark.parametrize("sure", [True, False])
def test_a_sure_match_is_named_on_its_first_frame_and_a_borderline_one_shows_it_is_deciding(tmp_path, encoder, sure):
    config = apply_overrides(load_config(), {"detection.worker": "never"})
    recognizer = Recognizer(model_with_sure_curve(tmp_path, sure), config)
    clip = frames(12)
    with SQLiteStore(tmp_path / "g.db", recognizer.encoder.model_id) as gallery:
        _, enrolled = recognizer.faces(clip[0])
        gallery.add_samples("AnnA", enrolled)
        app = App(recognizer, gallery)
        first = app.process(clip[1], t=0.04).faces[0]
        assert first.nearest == "AnnA" and first.distance <= app.threshold
        if sure:
            assert first.name == "AnnA" and first.state == "named"
        else:
            assert first.name is None and first.state == "deciding"      # not "Unknown": the vote is out
            shown = [app.process(frame, t=i / 25).faces[0] for i, frame in enumerate(clip[2:5], 2)]
            assert shown[-1].name == "AnnA" and shown[-1].state == "named"
        app.close()


def test_a_named_face_is_not_encoded_again_on_every_frame(tmp_path, encoder):
    """Once named, a still face is encoded every tracking.encode_every frames, not on each one."""
    config = apply_overrides(load_config(), {"detection.worker": "never", "tracking.encode_every": 4})
    recognizer = Recognizer(model_with_sure_curve(tmp_path, True), config)
    clip = frames(30)
    with SQLiteStore(tmp_path / "g.db", recognizer.encoder.model_id) as gallery:
        gallery.add_samples("AnnA", recognizer.faces(clip[0])[1])
        app = App(recognizer, gallery)
        results = [app.process(frame, t=i / 25) for i, frame in enumerate(clip)]
        app.close()
    named = sum(bool(r.faces) and r.faces[0].name == "AnnA" for r in results)
    assert named >= 25
    assert app.encodings < 0.6 * sum(len(r.faces) for r in results), app.encodings


@needs_model
def test_disk_full_during_key_enrollment_keeps_the_gallery_and_the_loop(tmp_path, encoder, caplog):
    """The same in the live loop (simulated with PRAGMA max_page_count, which any user can do): the
    failed enrollment is reported, the gallery is as before, and recognition goes on."""
    from realtime.app import App
    from realtime.config import apply_overrides, load_config
    from realtime.enrolment import KeyEnrolment
    from realtime.recognizer import Recognizer
    config = apply_overrides(load_config(), {"enrolment.samples": 2, "enrolment.seconds": 0.0,
                                             "detection.worker": "never"})
    with SQLiteStore(tmp_path / "g.db", encoder.model_id) as gallery:
        gallery.add_samples("ann", np.ones((1, encoder.embedding_size), np.float32))
        (pages,) = gallery._db.execute("PRAGMA page_count").fetchone()
        gallery._db.execute(f"PRAGMA max_page_count = {pages}")
        app = App(Recognizer(MODEL, config), gallery)
        frame = cv2.imread(str(sorted((DATA / "celebrity5/train/madonna").glob("*.jpg"))[0])) if DATA else None
        if frame is None:
            frame = np.zeros((240, 320, 3), np.uint8)
        # bypass the detector: two fake samples make the enrollment complete on the next frame
        app.enrolment = KeyEnrolment("bob", 0.0, 0.0, 2)
        app.enrolment.samples = [np.zeros(encoder.embedding_size, np.float32)] * 200   # > the free pages
        with caplog.at_level(logging.ERROR):
            app.process(frame, t=1.0)
            app.collect_saves(1.0, wait=5.0)             # written on the store's writer thread
        assert app.enrolment is None and app.enrolled == []
        assert "Not saved: bob" in app.message
        assert any("full" in r.getMessage() for r in caplog.records), caplog.text
        later = app.process(frame, t=1.1)               # the loop goes on, recognising
        assert later.index == 1 and len(later.faces) == 1
        gallery._db.execute("PRAGMA max_page_count = 1073741823")
        assert gallery.people() == [("ann", 1)]
        app.close()
