"""realtime.faces: the pure box helpers of the preprocessing path."""
from realtime.faces import largest_face, sort_largest_first


def test_largest_face():
    assert largest_face([(0, 0, 10, 10), (5, 5, 40, 30), (1, 1, 20, 20)]) == (5, 5, 40, 30)
    assert largest_face([]) is None


def test_sort_largest_first():
    assert sort_largest_first([(0, 0, 10, 10), (5, 5, 40, 30), (1, 1, 20, 20)]) == \
        [(5, 5, 40, 30), (1, 1, 20, 20), (0, 0, 10, 10)]
