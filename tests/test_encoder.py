"""realtime.encoder: the model files are read as regular files only, within a size limit."""
import os
import shutil
import threading
from pathlib import Path

import pytest

from realtime.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
MODEL = Path(os.environ.get("REALTIME_TEST_MODEL", ROOT / "models"))
needs_model = pytest.mark.skipif(not (MODEL / "encoder.json").is_file(), reason=f"no encoder.json in {MODEL}")


def load_within(model_dir, seconds=10):
    """Encoder(model_dir)'s UserError; fails the test if it hangs (a FIFO) or loads."""
    from realtime.encoder import Encoder
    outcome = []

    def load():
        try:
            Encoder(model_dir)
            outcome.append(None)
        except UserError as err:
            outcome.append(err)
        except MemoryError as err:      # /dev/zero read to the end
            outcome.append(err)
    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"Encoder({model_dir}) still loading after {seconds} s"
    assert isinstance(outcome[0], UserError), outcome[0]
    return str(outcome[0])


@needs_model
@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "symlink to a folder"])
def test_an_encoder_tflite_that_is_not_a_regular_file_is_refused_in_one_line(tmp_path, kind):
    shutil.copy(MODEL / "encoder.json", tmp_path / "encoder.json")
    tflite = tmp_path / "encoder.tflite"
    if kind == "fifo":
        os.mkfifo(tflite)
    elif kind == "dev-zero":
        tflite.symlink_to("/dev/zero")
    else:
        tflite.symlink_to(tmp_path)
    message = load_within(tmp_path)
    what = {"fifo": "a FIFO (named pipe)", "dev-zero": "a character device", "symlink to a folder": "a folder"}[kind]
    assert f"model {tflite} cannot be read: it is {what}" in message and "re-export the model" in message, message


@needs_model
def test_an_encoder_tflite_over_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from realtime import encoder
    shutil.copy(MODEL / "encoder.json", tmp_path / "encoder.json")
    with open(tmp_path / "encoder.tflite", "wb") as f:
        f.truncate(2_000_000)                                  # sparse: costs nothing
    monkeypatch.setattr(encoder, "MAX_TFLITE_BYTES", 1_000_000)
    assert "is 2,000,000 bytes, over the limit of 1,000,000" in load_within(tmp_path)


@needs_model
def test_encoder_json_of_another_model_is_refused_and_one_that_names_none_is_warned_about(tmp_path, caplog):
    """A swapped encoder.json of the same shape was accepted silently (its threshold named strangers)."""
    import json
    import logging
    from realtime.encoder import Encoder
    shutil.copy(MODEL / "encoder.tflite", tmp_path / "encoder.tflite")
    info = json.loads((MODEL / "encoder.json").read_text())
    assert Encoder(MODEL).model_id == info["tflite_sha256"]              # the shipped pair is tied
    (tmp_path / "encoder.json").write_text(json.dumps({**info, "tflite_sha256": "ab" * 32, "threshold": 1.3}))
    message = load_within(tmp_path)
    assert "describes another model" in message and "re-export the model" in message, message
    del info["tflite_sha256"]                                            # exported before the field existed
    (tmp_path / "encoder.json").write_text(json.dumps(info))
    with caplog.at_level(logging.WARNING):
        assert Encoder(tmp_path).embedding_size == info["embedding_size"]
    assert "does not name the model it describes" in caplog.text
