"""realtime.names: the one rule for a person's name (controls, bidi and invisible characters refused,
NFC, a length limit), and names and file names that reach a terminal: what another program stored
spelled out by `list` and removable by `remove`, photo file names escaped in `identify`."""
import re
import sqlite3
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from realtime.errors import UserError
from realtime.gallery import SQLiteStore
from realtime.names import MAX_NAME_LENGTH, check_name, printable
from testdata import DATA, MODEL



@pytest.mark.parametrize("name, words", [
    ("Ann\u200b", "invisible character (U+200B"),          # zero-width space: looks like "Ann"
    ("A\u2060nn", "invisible character (U+2060"),          # word joiner
    ("Ann\U000e0041\U000e007f", "invisible character (U+E0041"),   # tag characters
    ("\u3164", "invisible character (U+3164"),             # Hangul filler: a name that looks empty
    ("An\u200dn", "invisible character (U+200D"),          # a joiner between Latin letters only hides
    ("\ufeffAnn", "invisible character (U+FEFF"),
    ("\u2800\u2800", "shows nothing"),                      # braille blanks
])
def test_invisible_characters_are_refused(name, words):
    with pytest.raises(UserError, match=re.escape(words)):
        check_name(name)


@pytest.mark.parametrize("name", ["Ann", "Zo\u00eb \u674e", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
                                  "\u0915\u094d\u200d\u0937", "\u2764\ufe0f Ann", "\U0001f469\u200d\U0001f52c"])
def test_names_that_need_a_joiner_or_a_selector_are_kept(name):
    assert check_name(name) == name      # Persian ZWNJ, Devanagari ZWJ, emoji presentation and ZWJ sequences


def test_printable_spells_out_what_steers_a_terminal():
    assert printable("\x1b[2J\x1b]0;owned\x07Ann") == "\\x1b[2J\\x1b]0;owned\\x07Ann"
    assert printable("Ann\u200b\u202e\x9b") == "Ann\\u200b\\u202e\\x9b"
    assert printable("\U000e0041") == "\\U000e0041"
    assert printable("Zo\u00eb \u674e \u2764\ufe0f") == "Zo\u00eb \u674e \u2764\ufe0f"


@pytest.mark.parametrize("name", ["a\u009bb", "a\u0085b", "ann\u2028", "ann\u2029lee", "\u202eevil",
                                  "a\u2066b\u2069", "x\u200fy", "tab\there", "bell\x07", "del\x7f"])
def test_control_separator_and_bidi_characters_are_refused(name):
    with pytest.raises(UserError, match="control characters \\(U\\+"):
        check_name(name)


def test_names_are_nfc_and_stripped_the_same_everywhere(tmp_path):
    nfd = unicodedata.normalize("NFD", "José")
    assert nfd != "José" and check_name(nfd) == "José" == check_name("  José ")
    assert check_name("Zoë 👩‍💻") == "Zoë 👩‍💻"  # joiners in emoji are not controls
    with SQLiteStore(tmp_path / "g.db", "m") as gallery:       # what every writer goes through: one person
        gallery.add_samples(nfd, np.ones((1, 4)))
        gallery.add_samples("  José ", np.ones((1, 4)))
        assert gallery.people() == [("José", 2)] and gallery.index().names == ("José",)
        assert gallery.remove(nfd + " ") == 2 and gallery.people() == []


def test_long_names_are_echoed_truncated():
    with pytest.raises(UserError) as info:
        check_name("n" * 100_000)
    assert len(str(info.value)) < 200 and str(MAX_NAME_LENGTH) in str(info.value)
    with pytest.raises(UserError) as info:
        check_name("x" * 100_000 + "\x1b")
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("name, problem", [
    ("", "must not be empty"), ("   ", "must not be empty"), ("x" * 300, "at most"),
    ("y" * (MAX_NAME_LENGTH + 1), "at most"), ("a\nb", "control characters"),
])
def test_bad_names_are_refused_with_a_clear_message(tmp_path, name, problem):
    with pytest.raises(UserError, match=problem):
        check_name(name)
    with SQLiteStore(tmp_path / "g.db", "m") as g:
        with pytest.raises(UserError, match=problem):
            g.add_samples(name, np.ones((1, 4)))
        assert g.add_samples("z" * MAX_NAME_LENGTH, np.ones((1, 4))) == 1      # the limit itself is fine
        assert g.people() == [("z" * MAX_NAME_LENGTH, 1)]


def _foreign_writer(path: Path, *names: str) -> None:
    """Another program puts names straight into the gallery file (nothing checks them)."""
    with SQLiteStore(path, "m") as g:
        g.add_samples("ok", np.ones((1, 4)))
    db = sqlite3.connect(path)
    with db:
        for i, name in enumerate(names):
            db.execute("INSERT INTO people(name, created) VALUES (?, 0)", (name,))
            db.execute("INSERT INTO samples(person_id, embedding, model_id, created) "
                       "SELECT id, ?, 'm', 0 FROM people WHERE name = ?", (np.full(4, i, np.float32).tobytes(), name))
    db.close()


def test_list_escapes_names_another_writer_stored_and_remove_takes_them_as_printed(tmp_path, capsys):
    from realtime.__main__ import main
    path = tmp_path / "g.db"
    evil, hidden = "\x1b[2J\x1b]0;pwned\x07Eve", "Ann\u200b"
    _foreign_writer(path, evil, hidden)
    assert main(["list", "--gallery", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u200b" not in out
    assert "\\x1b[2J\\x1b]0;pwned\\x07Eve,1" in out and "Ann\\u200b,1" in out
    assert main(["remove", "\\x1b[2J\\x1b]0;pwned\\x07Eve", "--gallery", str(path)]) == 0   # as `list` printed it
    assert "removed \\x1b[2J" in capsys.readouterr().out
    assert main(["remove", hidden, "--gallery", str(path)]) == 0                          # or exactly as stored
    capsys.readouterr()
    with SQLiteStore(path, None, create=False) as g:
        assert g.people() == [("ok", 1)]
    assert main(["remove", "Ann", "--gallery", str(path)]) == 2                          # never a look-alike
    err = capsys.readouterr().err
    assert "no person named 'Ann'" in err


@pytest.mark.skipif(DATA is None or not (MODEL / "encoder.tflite").is_file(), reason="needs FACES_DATA and the model")
def test_identify_csv_escapes_photo_file_names(tmp_path, capsys):
    import shutil
    from realtime.__main__ import main
    photo = sorted((DATA / "celebrity5" / "train" / "madonna").glob("*.jpg"))[0]
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(photo, folder / "\x1b]0;owned\x07.jpg")
    gallery = tmp_path / "g.db"
    assert main(["enroll", "madonna", str(photo), "--gallery", str(gallery), "--model", str(MODEL)]) == 0
    capsys.readouterr()
    assert main(["identify", str(folder), "--gallery", str(gallery), "--model", str(MODEL)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b]0;owned\\x07.jpg,madonna," in out
