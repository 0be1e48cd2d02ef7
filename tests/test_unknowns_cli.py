"""python -m realtime unknowns: list (CSV with a header, --json), show (a contact sheet PNG written by
rename), name, forget; bad input is one error line and exit status 2."""
from __future__ import annotations

import csv
import io
import json
import sqlite3

import cv2
import numpy as np
import pytest

from realtime.__main__ import main
from realtime.gallery import open_gallery
from realtime.unknowns.quality import Caps, View
from testdata import MODEL, needs_model

CAPS = Caps()


def encoder():
    from realtime.encoder import Encoder
    return Encoder(MODEL)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(code, err, match):
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert match in lines[0], lines[0]


def views(k: int, dim: int, n: int = 3, t0: float = 1_700_000_000.0):
    rng = np.random.default_rng(k)
    centre = np.eye(dim, dtype=np.float32)[k]
    out = []
    for i in range(n):
        v = centre + 0.05 * rng.normal(size=dim).astype(np.float32)
        face = np.full((60, 60, 3), 40 * (k + 1), np.uint8)
        out.append(View(t0 + i, 0.5 + 0.1 * i, v / np.linalg.norm(v), face, face))
    return out


@pytest.fixture
def gallery(tmp_path):
    """A gallery with one person and two unknown groups (the shipped encoder's id, so they can be named)."""
    path = tmp_path / "g.db"
    model = encoder()
    dim = model.embedding_size
    with open_gallery(path, model.model_id) as g:
        g.add_samples("Ann", np.eye(dim, dtype=np.float32)[10:12])
        g.unknowns.record("r:1", views(0, dim), "camera 0", CAPS, lambda n: 0.66)
        g.unknowns.record("r:2", views(1, dim, t0=1_700_086_400.0), "door, front.mp4", CAPS, lambda n: 0.66)
    return path


@needs_model
def test_list_is_csv_with_a_header_or_json_lines(capsys, gallery):
    code, out, _ = run(capsys, "unknowns", "--gallery", gallery)
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["id", "views", "tracks", "first_seen", "last_seen", "sources"]
    assert [r[:3] for r in rows[1:]] == [["1", "3", "1"], ["2", "3", "1"]]
    assert rows[2][5] == "door, front.mp4"                       # a comma stays inside its field
    assert rows[1][3] < rows[1][4] and rows[1][3][:4] == "2023"
    code, out, _ = run(capsys, "--gallery", gallery, "unknowns", "list", "--json")      # global option first
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(x["id"], x["views"], x["sources"]) for x in lines] == [(1, 3, ["camera 0"]), (2, 3, ["door, front.mp4"])]


@needs_model
def test_show_writes_the_contact_sheet_by_rename(capsys, gallery, tmp_path):
    out_path = tmp_path / "sheet.png"
    out_path.write_bytes(b"an older file")
    code, out, err = run(capsys, "unknowns", "show", 2, "-o", out_path, "--gallery", gallery)
    assert code == 0, err
    assert out.strip() == f"wrote {out_path}: 3 views of unknown group 2"
    sheet = cv2.imread(str(out_path))
    assert sheet is not None and sheet.shape[1] > 3 * 96
    grey = 40 * 2                                               # group 2's thumbnails are a flat grey
    assert (np.abs(sheet.astype(int) - grey).max(axis=2) <= 2).sum() >= 3 * 96 * 96
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.db", "sheet.png"]        # no temp file left
    one_error(*run(capsys, "unknowns", "show", 2, "-o", gallery, "--gallery", gallery)[::2], "gallery")
    one_error(*run(capsys, "unknowns", "show", 9, "-o", out_path, "--gallery", gallery)[::2], "no unknown group 9")


@needs_model
def test_name_enrolls_the_group_and_removes_it(capsys, gallery):
    code, out, err = run(capsys, "unknowns", "name", 1, "Ann", "--gallery", gallery, "--model", MODEL)
    assert code == 0, err
    assert out.strip() == "named unknown group 1 Ann: 3 views enrolled, 5 samples in total"
    code, out, _ = run(capsys, "unknowns", "--gallery", gallery)
    assert [r[0] for r in csv.reader(io.StringIO(out))][1:] == ["2"]
    one_error(*run(capsys, "unknowns", "name", 1, "Bob", "--gallery", gallery, "--model", MODEL)[::2],
              "no unknown group 1")
    one_error(*run(capsys, "unknowns", "name", 2, "bad\u202ename", "--gallery", gallery, "--model", MODEL)[::2],
              "name")
    with sqlite3.connect(gallery) as raw:
        assert raw.execute("SELECT COUNT(*) FROM unknown_views").fetchone()[0] == 3     # group 2 untouched


@needs_model
def test_forget_takes_ids_all_or_an_age(capsys, gallery):
    for argv, match in ((("forget",), "one of the three"), (("forget", 1, "--all"), "one of the three"),
                        (("forget", "--older-than", "-3"), "above 0"), (("forget", 7), "no unknown group 7")):
        one_error(*run(capsys, "unknowns", *argv, "--gallery", gallery)[::2], match)
    code, out, _ = run(capsys, "unknowns", "forget", "--older-than", 1, "--gallery", gallery)  # both are old
    assert (code, out.strip()) == (0, "forgot 2 unknown groups")
    code, out, _ = run(capsys, "unknowns", "forget", "--all", "--gallery", gallery)
    assert (code, out.strip()) == (0, "forgot 0 unknown groups")
    with open_gallery(gallery, None, create=False) as g:
        assert dict(g.people()) == {"Ann": 2} and g.unknowns.groups() == []


def test_a_missing_gallery_is_an_error_and_is_not_created(capsys, tmp_path):
    one_error(*run(capsys, "unknowns", "--gallery", tmp_path / "none.db")[::2], "does not exist")
    one_error(*run(capsys, "unknowns", "forget", "--all", "--gallery", tmp_path / "none.db")[::2], "does not exist")
    assert not (tmp_path / "none.db").exists()
    with pytest.raises(SystemExit) as done:
        main(["unknowns", "--help"])
    assert done.value.code == 0 and "list | show | name | forget" in capsys.readouterr().out
