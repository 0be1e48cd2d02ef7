"""realtime.gallery.copy: `python -m realtime gallery copy` between a SQLite file and a PostgreSQL server
(the ``db`` fixture: tests/conftest.py)."""
import numpy as np

from realtime.gallery import open_gallery
from realtime.gallery.copy import copy_gallery


def test_gallery_copy_sqlite_to_postgresql_and_back(db, tmp_path, capsys):
    from realtime.__main__ import main
    rng = np.random.default_rng(3)
    laptop = tmp_path / "laptop.db"
    with open_gallery(laptop, "m") as g:
        g.add_samples("ann", rng.normal(size=(3, 8)), sources=["a" * 64, None, "b" * 64])
        g.add_samples("Lee, Bo", rng.normal(size=(2, 8)))
        before = sorted(g.dump(), key=repr)
        assert [row[4] for row in before].count(None) == 3            # each sample's photo, where known
    assert main(["gallery", "copy", str(laptop), db]) == 0
    assert "copied 2 people, 5 samples" in capsys.readouterr().out
    back = tmp_path / "back.db"
    assert copy_gallery(db, f"sqlite://{back}") == (2, 5)
    with open_gallery(back, None, create=False) as g:
        assert sorted(g.dump(), key=repr) == before                # every byte, model id, time and photo
    code = main(["gallery", "copy", str(laptop), db])              # never merges into a gallery in use
    err = capsys.readouterr().err
    assert code != 0 and "already holds 2 people" in err and "Traceback" not in err
    with open_gallery(db, "m") as g:
        assert g.people() == [("Lee, Bo", 2), ("ann", 3)]


def test_gallery_copy_says_the_unknown_faces_stay_behind(tmp_path, caplog):
    from realtime.unknowns.quality import Caps, View
    rng = np.random.default_rng(4)
    src, dst = tmp_path / "camera.db", tmp_path / "copy.db"
    crop = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    with open_gallery(src, "m") as g:
        g.add_samples("ann", rng.normal(size=(2, 8)))
        for key, k in (("t1", 0), ("t2", 1)):                  # two strangers, two groups
            face = np.eye(8, dtype=np.float32)[k]
            g.unknowns.record(key, [View(1000.0, 0.5, face, crop, crop)], "camera 0",
                              Caps(per_track=5, per_group=20, per_day=500, total=2000), lambda _n: 0.66)
        assert len(g.unknowns.groups()) == 2
    with caplog.at_level("WARNING"):
        assert copy_gallery(str(src), str(dst)) == (1, 2)
    assert "2 groups of unknown faces (--collect-unknown) not copied: they stay in" in caplog.text
    with open_gallery(dst, None, create=False) as g:
        assert g.people() == [("ann", 2)] and g.unknowns.groups() == []
    with open_gallery(src, None, create=False) as g:
        assert len(g.unknowns.groups()) == 2                   # the source is left as it was
