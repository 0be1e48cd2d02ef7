"""Evaluation identifies faces with the live program's matcher (realtime.matching), so the
reported top-1 and open-set numbers are what ``python -m realtime`` would answer."""
import numpy as np

from realtime.matching import Index, match
from training.evaluate import closed_set, identify, open_set


def unit(deg):
    return np.array([np.cos(np.radians(deg)), np.sin(np.radians(deg))], np.float32)


# Person "spread": photos at +-80 degrees (their mean is short, (0.17, 0)); "tight": all at 60 degrees.
GALLERY = np.stack([unit(80), unit(-80), unit(60), unit(60)])
GALLERY_LABELS = np.array(["spread", "spread", "tight", "tight"])
PROBE = unit(20)[None, :]


def test_mean_mode_is_the_live_index_not_renormalised_means():
    # Renormalised, "spread"'s mean would be (1, 0), 0.35 from the probe: it would win. The live
    # index keeps the plain mean (0.83 away), so "tight" (0.68 away) is the live answer.
    names, distances = identify(GALLERY, GALLERY_LABELS, PROBE, "mean")
    live = match(Index.build(GALLERY, [0, 0, 1, 1], ["spread", "tight"]), PROBE, threshold=9.0, mode="mean")[0]
    assert names.tolist() == ["tight"] == [live.name]
    np.testing.assert_allclose(distances, [live.distance], rtol=1e-6)
    np.testing.assert_allclose(distances, [np.linalg.norm(PROBE[0] - unit(60))], rtol=1e-5)


def test_nearest_mode_matches_the_live_index_on_random_data():
    rng = np.random.default_rng(3)
    gallery = rng.normal(size=(200, 16)).astype(np.float32)
    labels = np.array([f"p{i % 17}" for i in range(200)])
    probes = rng.normal(size=(40, 16)).astype(np.float32)
    people, ids = np.unique(labels, return_inverse=True)
    index = Index.build(gallery, ids, people.tolist())
    for mode in ("nearest", "mean", "sample-or-mean"):
        names, distances = identify(gallery, labels, probes, mode)
        live = match(index, probes, threshold=np.inf, mode=mode)
        assert names.tolist() == [m.name for m in live]
        np.testing.assert_allclose(distances, [m.distance for m in live], rtol=1e-5)


def test_closed_and_open_set_counts():
    gallery = np.stack([unit(0), unit(5), unit(90), unit(95), unit(180)])
    labels = np.array(["a", "a", "b", "b", "c"])
    probes = np.stack([unit(2), unit(92), unit(178), unit(45)])
    probe_labels = np.array(["a", "b", "c", "a"])      # the last one is ambiguous: 43 deg from a, 45 from b
    assert closed_set(gallery, labels, probes, probe_labels) == {"correct_mean": 4, "correct_nearest": 4}
    # Left out of the gallery, "a"'s probe at 2 degrees is about 1.4 from everyone: rejected at
    # threshold 0.5; the 45-degree probe is 0.73 from b and rejected too.
    result = open_set(gallery, labels, probes, probe_labels, threshold=0.5, mode="nearest")
    assert result["unknown_rejection"] == 1.0 and result["open_set_match"] == "nearest"
    # Everyone enrolled: the three clear probes are accepted as the right person, the 45-degree one is not.
    assert result["known_accepted_correct"] == 0.75
