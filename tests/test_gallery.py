"""realtime.gallery (SQLite): round trip, file mode, names as data, encoder identity, transactions."""
import os
import stat

import numpy as np
import pytest

from realtime.errors import UserError
from realtime.gallery import SQLiteStore


def test_gallery_round_trip_mode_and_unicode_names(tmp_path):
    path = tmp_path / "sub" / "g.db"
    rng = np.random.default_rng(1)
    with SQLiteStore(path, "model-a") as g:
        assert len(g.index()) == 0
        assert g.add_samples("../etc/passwd", rng.normal(size=(2, 8))) == 2
        assert g.add_samples("Zo\u00eb \u674e", rng.normal(size=(3, 8))) == 3
        assert g.add_samples("Zo\u00eb \u674e", rng.normal(size=(1, 8))) == 4
        index = g.index()
        assert len(index) == 6 and set(index.names) == {"../etc/passwd", "Zo\u00eb \u674e"}
        assert g.index() is index            # cached until the gallery changes
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path / "sub")) == ["g.db"]   # the name made no file
    with SQLiteStore(path, "model-a") as g:
        assert g.people() == [("../etc/passwd", 2), ("Zo\u00eb \u674e", 4)]
        assert g.remove("../etc/passwd") == 2
        with pytest.raises(UserError):
            g.remove("nobody")
        assert g.people() == [("Zo\u00eb \u674e", 4)]


def test_gallery_of_another_encoder_is_refused(tmp_path):
    path = tmp_path / "g.db"
    with SQLiteStore(path, "model-a") as g:
        g.add_samples("ann", np.ones((1, 4)))
    with pytest.raises(UserError, match="re-enroll"):
        SQLiteStore(path, "model-b")
    with SQLiteStore(path, None) as g:      # list/remove still work
        assert g.people() == [("ann", 1)]


def test_failed_enrollment_leaves_earlier_state(tmp_path):
    with SQLiteStore(tmp_path / "g.db", "m") as g:
        g.add_samples("ann", np.ones((2, 4)))
        bad = np.ones((2, 4), np.float32)
        with pytest.raises(ValueError):
            g.add_samples("bob", bad[:0])
        with pytest.raises(UserError):
            g.add_samples("", bad)
        assert g.people() == [("ann", 2)]


def test_gallery_index_sees_other_connections(tmp_path):
    path = tmp_path / "g.db"
    with SQLiteStore(path, "m") as a, SQLiteStore(path, "m") as b:
        assert len(a.index()) == 0
        b.add_samples("bob", np.ones((1, 4)))
        assert a.index().names == ("bob",)
