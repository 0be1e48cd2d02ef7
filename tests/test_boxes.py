"""realtime.boxes: the pure geometry of face boxes."""
import pytest

from realtime.boxes import center_box, clip_box, iou, scale_box, sort_largest_first


def test_sort_largest_first_drops_empty_boxes():
    assert sort_largest_first([(0, 0, 10, 10), (5, 5, 40, 30), (1, 1, 20, 20), (3, 3, 0, 9)]) == \
        [(5, 5, 40, 30), (1, 1, 20, 20), (0, 0, 10, 10)]


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_clip_center_and_scale():
    assert clip_box((-5, -5, 20, 20), (10, 12)) == (0, 0, 12, 10)
    assert clip_box((50, 50, 5, 5), (10, 10)) == (50, 50, 0, 0)          # outside: empty, never wrapped
    assert center_box((100, 200), 0.5) == (75, 25, 50, 50)
    assert scale_box((10, 20, 30, 40), 0.5) == (20, 40, 60, 80)
