"""realtime.outputs: no output may be an input, outputs are written by temp file and rename, a full
disk is one line. (The commands' own refusals are in test_hardening.py.)"""
import os

import pytest

from realtime.errors import UserError
from realtime.outputs import OutputStream, atomic_path, check_outputs_distinct, same_file, write_bytes_atomic, write_text_atomic


# -- pure ------------------------------------------------------------------------------------------
def test_same_file_by_path_symlink_and_hard_link(tmp_path):
    a = tmp_path / "a.db"
    a.write_text("x")
    (tmp_path / "link.db").symlink_to(a)
    os.link(a, tmp_path / "hard.db")
    assert same_file(a, tmp_path / "sub" / ".." / "a.db") and same_file(a, tmp_path / "." / "a.db")
    new = tmp_path / "new.mp4"                                  # an output not written yet: by its path alone
    assert same_file(new, tmp_path / "x" / ".." / "new.mp4") and not same_file(new, tmp_path / "new.avi")
    assert same_file(a, tmp_path / "link.db") and same_file(a, tmp_path / "hard.db")
    assert not same_file(a, tmp_path / "other.db")
    with pytest.raises(UserError, match="is the gallery"):
        check_outputs_distinct({"--events": tmp_path / "hard.db"}, {"the gallery": a})
    with pytest.raises(UserError, match="same file"):
        check_outputs_distinct({"--events": tmp_path / "e.json", "--record": tmp_path / "e.json"}, {})
    check_outputs_distinct({"--events": "/dev/null", "--record": "/dev/null"}, {"x": "/dev/null"})  # streams


def test_output_stream_replaces_only_on_commit_and_leaves_no_temp(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("the good old file\n")
    stream = OutputStream(path, "--events")
    stream.write("half\n")
    stream.close()  # an error before commit: the old file is untouched
    assert path.read_text() == "the good old file\n" and os.listdir(tmp_path) == ["events.jsonl"]
    stream = OutputStream(path, "--events")
    stream.write("new\n")
    assert path.read_text() == "the good old file\n"  # nothing visible until the rename
    stream.commit()
    stream.close()
    assert path.read_text() == "new\n" and os.listdir(tmp_path) == ["events.jsonl"]


def test_atomic_path_keeps_the_suffix_and_removes_the_temp_on_error(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".mp4" and tmp.parent == tmp_path and tmp != target
            tmp.write_bytes(b"partial")
            raise RuntimeError("crash")
    assert os.listdir(tmp_path) == []
    write_text_atomic(tmp_path / "report.json", "{}\n")
    assert (tmp_path / "report.json").read_text() == "{}\n" and os.listdir(tmp_path) == ["report.json"]


def test_write_bytes_atomic_writes_the_bytes_and_names_the_file_on_error(tmp_path):
    write_bytes_atomic(tmp_path / "sheet.png", b"\x89PNG\r\n\x00")
    assert (tmp_path / "sheet.png").read_bytes() == b"\x89PNG\r\n\x00" and os.listdir(tmp_path) == ["sheet.png"]
    with pytest.raises(UserError, match="No space left") as info:
        write_bytes_atomic("/dev/full", b"x" * 100_000, "--out")
    assert str(info.value).startswith("--out /dev/full cannot be written") and "\n" not in str(info.value)


def test_dev_full_is_one_user_error():
    stream = OutputStream("/dev/full", "--events")
    with pytest.raises(UserError, match="No space left") as info:
        for _ in range(10_000):
            stream.write("x" * 100 + "\n")
        stream.commit()
    assert str(info.value).startswith("--events /dev/full cannot be written") and "\n" not in str(info.value)
