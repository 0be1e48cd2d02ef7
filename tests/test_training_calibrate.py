"""training.calibrate: the open-set threshold that protects a gallery, on synthetic embeddings."""
import numpy as np
import pytest

from training.calibrate import design_threshold, enrolment, open_set_curve, split_people


def people(n, photos, spread, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n, 32))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    emb = np.repeat(centres, photos, 0) + spread * rng.normal(size=(n * photos, 32))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb.astype(np.float32), np.repeat(np.array([f"p{i:03d}" for i in range(n)]), photos)


def test_split_and_enrolment_keep_people_apart_and_leave_probes():
    _, labels = people(40, 4, 0.1)
    enrolled, strangers = split_people(labels, seed=0)
    assert not set(labels[enrolled]) & set(labels[strangers])
    assert len(set(labels[enrolled])) == 20
    samples, probes = enrolment(labels[enrolled], photos=3, seed=0)
    per_person = {p: int(samples[labels[enrolled] == p].sum()) for p in set(labels[enrolled])}
    assert set(per_person.values()) == {3} and probes.sum() == 20


def test_threshold_names_at_most_the_target_share_of_strangers_and_tightens_with_gallery_size():
    emb, labels = people(200, 4, 0.35)
    curve = open_set_curve(emb, labels, target=0.01, sizes=(1, 10, 100), draws=4)
    assert [c["gallery_people"] for c in curve] == [1, 10, 100]
    for c in curve:
        assert c["strangers_named"] <= 0.01 + 1e-9
        assert 0.0 <= c["correct_named"] <= 1.0
    thresholds = [c["threshold"] for c in curve]
    assert thresholds[0] > thresholds[1] > thresholds[2]     # more people, more chances: a tighter threshold
    assert design_threshold(curve, 50)["gallery_people"] == 100
    assert design_threshold(curve, 500)["gallery_people"] == 100
    assert design_threshold([], 5) is None


def test_well_separated_people_are_named_right_at_that_threshold():
    emb, labels = people(200, 4, 0.05)
    (c,) = open_set_curve(emb, labels, target=0.01, sizes=(100,), draws=2)
    assert c["correct_named"] > 0.95


def test_the_live_threshold_follows_the_gallery_size_unless_set():
    from realtime.config import RecognitionConfig
    from realtime.thresholds import ThresholdPolicy, gallery_threshold
    curve = [{"gallery_people": 1, "threshold": 0.8}, {"gallery_people": 10, "threshold": 0.6},
             {"gallery_people": 100, "threshold": 0.45}]
    info = {"metrics": {"open_set": curve}, "threshold": 0.45}
    assert gallery_threshold(info, 0) == 0.8 and gallery_threshold(info, 1) == 0.8
    assert gallery_threshold(info, 5) == 0.6          # the smallest measured gallery holding 5 people
    assert gallery_threshold(info, 500) == 0.45       # beyond the curve: its tightest
    assert gallery_threshold({"metrics": {}}, 5) is None
    policy = ThresholdPolicy(info, RecognitionConfig())
    assert policy.for_gallery(5) == 0.6
    assert policy.for_gallery() == 0.45                 # no size: the design threshold
    assert ThresholdPolicy(info, RecognitionConfig(threshold=0.7)).for_gallery(5) == 0.7
    assert ThresholdPolicy(info, RecognitionConfig(threshold=0.7), flag=0.3).for_gallery(5) == 0.3
    # With a design size, smaller galleries keep the design size's threshold; larger ones tighten.
    designed = {"metrics": {"open_set": curve + [{"gallery_people": 1000, "threshold": 0.4}],
                            "open_set_gallery_people": 100}}
    assert gallery_threshold(designed, 5) == 0.45 and gallery_threshold(designed, 100) == 0.45
    assert gallery_threshold(designed, 101) == 0.4
    # verify (1:1): the one-person point itself.
    assert ThresholdPolicy({**designed, "threshold": 0.45}, RecognitionConfig()).pair() == 0.8


def test_the_curve_is_measured_with_the_live_matcher_and_a_mismatch_is_named():
    from realtime.thresholds import calibration_mismatch
    emb, labels = people(40, 6, 0.3)
    by_sample = open_set_curve(emb, labels, 0.05, sizes=(10,), draws=5, mode="nearest")
    either = open_set_curve(emb, labels, 0.05, sizes=(10,), draws=5, mode="sample-or-mean")
    # sample-or-mean distances are never larger than nearest-sample ones: strangers come closer too,
    # so its threshold for the same share of strangers is at most the nearest-sample one.
    assert either[0]["threshold"] <= by_sample[0]["threshold"] + 1e-6
    assert either[0]["strangers_named"] <= 0.05 + 1e-9
    info = {"metrics": {"open_set_match": "sample-or-mean"}}
    assert calibration_mismatch(info, "sample-or-mean") is None
    assert calibration_mismatch({"metrics": {}}, "mean") is None          # older encoders: nothing recorded
    warning = calibration_mismatch(info, "mean")
    assert "sample-or-mean" in warning and "mean" in warning and "\n" not in warning


def test_a_mismatched_matcher_is_logged_once_as_a_warning(caplog):
    from realtime.thresholds import warn_if_uncalibrated
    info = {"metrics": {"open_set_match": "sample-or-mean"}}
    with caplog.at_level("WARNING"):
        warn_if_uncalibrated(info, "sample-or-mean")
        assert not caplog.records
        warn_if_uncalibrated(info, "nearest")
    assert len(caplog.records) == 1 and "recognition.match" in caplog.records[0].getMessage()


def test_one_photo_people_fill_galleries_beyond_the_enrolled_people():
    """Up to 1,000 people and more: half the one-photo people are gallery fillers, half strangers."""
    from training.calibrate import split_calibration
    several, several_labels = people(60, 4, 0.3, seed=1)
    single, single_labels = people(1200, 1, 0.3, seed=2)
    emb = np.concatenate([several, single])
    labels = np.concatenate([several_labels, np.char.add("s", single_labels)])
    enrolled, fillers, strangers = split_calibration(labels, seed=0)
    assert not (enrolled & fillers).any() and not (enrolled & strangers).any() and not (fillers & strangers).any()
    assert (enrolled | fillers | strangers).all()
    counts = {name: n for name, n in zip(*np.unique(labels, return_counts=True))}
    assert all(counts[name] >= 2 for name in labels[enrolled]) and all(counts[name] == 1 for name in labels[fillers])
    assert fillers.sum() == 600 and len(set(labels[enrolled])) == 30
    curve = open_set_curve(emb, labels, target=0.01, sizes=(10, 30, 100, 600, 1000), draws=3)
    assert [c["gallery_people"] for c in curve] == [10, 30, 100, 600]    # 1,000 > 30 enrolled + 600 fillers
    assert [c["filler_people"] for c in curve] == [0, 0, 70, 570]
    for c in curve:
        assert c["strangers_named"] <= 0.01 + 1e-9 and c["enrolled_probes"] > 0
    assert curve[-1]["threshold"] < curve[0]["threshold"]


def test_galleries_of_people_with_several_photos_are_drawn_as_before():
    """Without one-photo people the curve stops at the enrolled half, with no fillers."""
    emb, labels = people(40, 4, 0.3)
    curve = open_set_curve(emb, labels, target=0.05, sizes=(5, 20, 21), draws=3)
    assert [c["gallery_people"] for c in curve] == [5, 20] and {c["filler_people"] for c in curve} == {0}


def test_the_safe_threshold_is_the_tightest_of_the_val_pairs_bounds_and_the_cap():
    from training.calibrate import safe_threshold
    different = np.linspace(0.5, 1.5, 10001)
    same_pairs = np.linspace(0.2, 1.0, 101)                      # median 0.6
    d, same = np.concatenate([different, same_pairs]), np.r_[np.zeros(10001, bool), np.ones(101, bool)]
    loose = float(np.quantile(different, 0.01))                  # what the val pairs alone gave before
    assert safe_threshold(d, same, target=0.01, people=100) == pytest.approx(0.5001, abs=2e-4)   # 1% / 100 people
    assert safe_threshold(d, same, target=0.01, people=1) < loose
    assert safe_threshold(d, same, 0.01, 1, cap=0.3) == 0.3
    # A few well-separated trained people (SFace and celebrity5): the median same-person distance binds.
    far_apart = np.r_[np.linspace(1.2, 1.5, 1000), same_pairs]
    assert safe_threshold(far_apart, np.r_[np.zeros(1000, bool), np.ones(101, bool)], 0.01, 100) == pytest.approx(0.6)


def test_the_sure_curve_names_fewer_strangers_at_a_tighter_threshold_for_every_size():
    from realtime.config import load_config
    from training.evaluate import SURE_SHARE, open_set_calibration
    emb, labels = people(400, 4, 0.6)
    report = open_set_calibration(emb, labels, load_config())
    curve, sure = report["open_set"], report["open_set_sure"]
    assert [c["gallery_people"] for c in sure] == [c["gallery_people"] for c in curve]
    for loose, tight in zip(curve, sure):
        assert tight["threshold"] <= loose["threshold"]
        assert tight["strangers_named"] <= loose["strangers_named"] * SURE_SHARE + 0.002
