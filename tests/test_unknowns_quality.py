"""Which views of an unknown face are kept: quality (size, sharpness, frontalness, score) and the caps."""
import datetime

import cv2
import numpy as np
import pytest

from realtime.align import template_points
from realtime.config import load_config
from realtime.unknowns.quality import (Caps, Stored, View, frontalness, keep_best, would_keep, over_caps, resolution,
                                       sharpness, view_quality)

SIZE = 60


@pytest.fixture(scope="module")
def template():
    return template_points(load_config().alignment, SIZE).astype(np.float64)


def textured(seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def test_the_template_itself_is_frontal_and_full_resolution(template):
    assert frontalness(template, template) == pytest.approx(1.0)
    assert resolution(template, template) == pytest.approx(1.0)
    # Any placement of the same layout (moved, rotated, scaled up) is as frontal.
    angle = np.deg2rad(25)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (template @ rot.T) * 3.0 + [200.0, 100.0]
    assert frontalness(moved, template) == pytest.approx(1.0)
    assert resolution(moved, template) == 1.0
    assert resolution(template * 0.5, template) == pytest.approx(0.5)


def test_a_turned_or_tilted_face_is_less_frontal(template):
    turned, tilted = template.copy(), template.copy()
    eyes = template[1, 0] - template[0, 0]
    turned[2, 0] += 0.25 * eyes            # nose a quarter of the eye distance towards one eye
    tilted[2, 1] -= 0.6 * (template[2, 1] - template[0, 1])   # nose most of the way up to the eye line
    assert 0.3 < frontalness(turned, template) < 0.8
    assert frontalness(tilted, template) < 0.5
    side = template.copy()
    side[2, 0] = template[1, 0]            # nose on an eye's line: fully sideways
    assert frontalness(side, template) < 0.02      # (the template's eye line is not quite level)
    assert frontalness(np.zeros((5, 2)), template) == 0.0


def test_a_blurred_crop_is_less_sharp_and_size_does_not_matter():
    crop = textured()
    blurred = cv2.GaussianBlur(crop, (0, 0), 2.0)
    assert sharpness(blurred) < 0.2 * sharpness(crop)
    # The same picture at another encoder's input size is judged about the same.
    smooth = cv2.GaussianBlur(textured(1), (0, 0), 1.0)
    big = cv2.resize(smooth, (112, 112), interpolation=cv2.INTER_CUBIC)
    assert sharpness(big) == pytest.approx(sharpness(smooth), rel=0.35)
    assert sharpness(np.full((SIZE, SIZE, 3), 128, np.uint8)) == 0.0


def test_quality_ranks_each_failing_way_lower(template):
    crop = textured()
    best = view_quality(0.95, template, crop, template)
    assert 0.0 < best <= 0.95
    assert view_quality(0.6, template, crop, template) < best
    assert view_quality(0.95, template * 0.5, crop, template) < best
    assert view_quality(0.95, template, cv2.GaussianBlur(crop, (0, 0), 2.0), template) < best
    turned = template.copy()
    turned[2, 0] += 0.25 * (template[1, 0] - template[0, 0])
    assert view_quality(0.95, turned, crop, template) < best


def view(t, quality):
    return View(t, quality, np.zeros(4, np.float32), np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2, 3), np.uint8))


def test_keep_best_keeps_the_best_views_in_time_order():
    kept: list[View] = []
    for t, q in enumerate([0.5, 0.9, 0.1, 0.7, 0.8]):
        kept, taken = keep_best(kept, view(t, q), 3)
    assert [v.quality for v in kept] == [0.9, 0.7, 0.8]
    kept2, taken = keep_best(kept, view(9, 0.2), 3)
    assert not taken and kept2 == kept
    kept3, taken = keep_best(kept, view(9, 0.7), 3)      # equal to the worst kept: the earlier stays
    assert not taken and [v.time for v in kept3] == [1, 3, 4]
    kept4, taken = keep_best(kept, view(9, 0.95), 3)
    assert taken and [v.time for v in kept4] == [1, 4, 9]
    assert keep_best([], view(0, 1.0), 0) == ([], False)



def test_would_keep_answers_as_keep_best_does_before_the_view_is_built():
    rng = np.random.default_rng(5)
    for _ in range(300):
        limit = int(rng.integers(0, 5))
        kept: list[View] = []
        for t in range(int(rng.integers(0, 9))):
            kept, _ = keep_best(kept, view(t, float(rng.choice([0.1, 0.5, 0.7, 0.9]))), max(limit, 1))
        quality = float(rng.choice([0.1, 0.5, 0.7, 0.9, 0.95]))
        assert would_keep(kept, quality, limit) == keep_best(kept, view(99, quality), limit)[1]


def test_caps_drop_the_oldest_views_first():
    views = [Stored(i, group=1, track="a", time=float(i)) for i in range(7)]
    assert over_caps(views, Caps(per_track=5, per_group=20, per_day=100, total=100)) == [0, 1]
    # Group cap: two tracks of one group, the group's oldest views go, whichever track they belong to.
    views = [Stored(i, 1, "a" if i < 3 else "b", float(i)) for i in range(6)]
    assert over_caps(views, Caps(per_track=5, per_group=4, per_day=100, total=100)) == [0, 1]
    # Total cap: the oldest views of anyone.
    views = [Stored(i, i % 3, f"t{i}", float(10 - i)) for i in range(6)]     # id 5 is the oldest
    assert over_caps(views, Caps(per_track=5, per_group=5, per_day=100, total=4)) == [4, 5]


def test_a_crowded_day_gives_up_its_own_oldest_views():
    day = datetime.datetime(2024, 5, 1, 12).timestamp()
    yesterday = [Stored(i, i, f"y{i}", day - 86400 + i) for i in range(3)]
    today = [Stored(10 + i, 10 + i, f"t{i}", day + i) for i in range(5)]
    dropped = over_caps(yesterday + today, Caps(per_track=5, per_group=5, per_day=3, total=6))
    assert dropped == [10, 11]                       # yesterday's three stay
    dropped = over_caps(yesterday + today, Caps(per_track=5, per_group=5, per_day=3, total=5))
    assert dropped == [0, 10, 11]                    # then the total cap takes the oldest overall
