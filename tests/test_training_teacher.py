"""training.teacher: dlib's embeddings of a handful of real photos, cached and reused."""

import numpy as np
import pytest

from realtime.config import load_config
from testdata import DATA

pytestmark = pytest.mark.skipif(DATA is None, reason="FACES_DATA not set: the teacher test needs celebrity5 photos")


def test_teacher_embeds_same_person_closer_and_caches(tmp_path, monkeypatch):
    from training import teacher
    config = load_config()
    root = DATA / "celebrity5" / "train"
    paths = [str(p) for person in ("madonna", "jerry_seinfeld") for p in sorted((root / person).glob("*.jpg"))[4:7]]
    emb = teacher.teacher_embeddings(paths, config.detection, tmp_path, workers=1, progress=False)
    assert emb.shape == (6, 128) and emb.dtype == np.float32
    ok = np.isfinite(emb).all(1)
    assert ok.sum() >= 4
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    d = np.linalg.norm(unit[:, None] - unit[None], axis=2)
    same = [(i, j) for i in range(6) for j in range(i + 1, 6) if ok[i] and ok[j] and (i < 3) == (j < 3)]
    diff = [(i, j) for i in range(3) for j in range(3, 6) if ok[i] and ok[j]]
    assert np.mean([d[p] for p in same]) < np.mean([d[p] for p in diff])
    cache = teacher.cache_path(tmp_path, config.detection)
    assert cache.is_file() and cache.stat().st_mode & 0o777 == 0o600
    # A second call reads the cache and embeds nothing.
    monkeypatch.setattr(teacher, "_embed_paths", lambda task: pytest.fail("embedded again"))
    again = teacher.teacher_embeddings(paths, config.detection, tmp_path, workers=1, progress=False)
    np.testing.assert_array_equal(np.isfinite(again), np.isfinite(emb))
    np.testing.assert_allclose(again[ok], emb[ok])
