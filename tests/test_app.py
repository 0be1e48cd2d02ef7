"""The loop driven in-process, as the benchmark does: construct, feed frames, read results."""
import os
from pathlib import Path

import numpy as np
import pytest

from realtime.app import App
from realtime.capture import VideoSource
from realtime.config import apply_overrides, load_config
from realtime.gallery import SQLiteStore
from realtime.recognizer import Recognizer

ROOT = Path(__file__).resolve().parent.parent
MODEL = Path(os.environ.get("REALTIME_TEST_MODEL", ROOT / "models"))
DATA = Path(os.environ["FACES_DATA"]) if os.environ.get("FACES_DATA") else None
CLIP = "video-retalking_face_1.mp4"

pytestmark = [
    pytest.mark.skipif(DATA is None, reason="FACES_DATA is not set (point it at the shared data folder)"),
    pytest.mark.skipif(not (MODEL / "encoder.tflite").is_file(),
                       reason=f"no trained encoder in {MODEL} (run `python -m training` first)"),
]


def frames(n):
    source = VideoSource(DATA / "videos" / CLIP)
    out = [source.read() for _ in range(n)]
    source.close()
    return [f for f in out if f is not None]


def test_encoder_batch_equals_one_by_one_and_is_deterministic(encoder):
    crops = np.random.default_rng(0).integers(0, 256, (5, encoder.input_size, encoder.input_size, 3), dtype=np.uint8)
    batch = encoder.encode(crops)
    assert batch.shape == (5, encoder.embedding_size) and batch.dtype == np.float32
    one_by_one = np.concatenate([encoder.encode(crops[i:i + 1]) for i in range(len(crops))])
    np.testing.assert_allclose(one_by_one, batch, atol=1e-4)
    np.testing.assert_allclose(encoder.encode(crops[:2]), batch[:2], atol=1e-4)
    assert encoder.encode(crops[:0]).shape == (0, encoder.embedding_size)
    assert len(encoder.model_id) == 64


@pytest.mark.parametrize("switches", [
    {"detection.worker": "always"},
    {"detection.worker": "never"},
    {"detection.worker": "never", "detection.scale": 1.0, "detection.every": 1},
])
def test_app_enrolls_by_key_and_recognises_once_the_vote_agrees(tmp_path, encoder, switches):
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
        # finished): from then on the face's nearest match is AnnA, and the vote (reset) shows the name
        # once vote_agree frames agree, never earlier.
        first = next(i for i, r in enumerate(results) if r.faces and r.faces[0].nearest == "AnnA")
        assert abs(first - done) <= 1
        assert all(f.name is None for r in results[:first] for f in r.faces)       # unknown until then
        agree = config.tracking.vote_agree
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
