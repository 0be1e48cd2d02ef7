"""realtime.encoder: the model files are read as regular files only, within a size limit; encoder.json's
numbers are checked; a batch gives what one crop at a time gives."""
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from realtime.encoder import read_model_info
from realtime.errors import UserError
from testdata import MODEL

needs_model = pytest.mark.skipif(not (MODEL / "encoder.json").is_file(), reason=f"no encoder.json in {MODEL}")
needs_tflite = pytest.mark.skipif(not (MODEL / "encoder.tflite").is_file(), reason=f"no trained encoder in {MODEL}")


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
    assert "\n" not in message


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


GOOD_INFO = {"input_size": 60, "embedding_size": 128, "threshold": 0.7, "normalized": True}


def model_dir_with(tmp_path, text: str) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / "encoder.json").write_text(text)
    return folder


@pytest.mark.parametrize("threshold", ["Infinity", "NaN", "1e308", "100", "2.5", "0", "-1", "1e999"])
def test_encoder_json_threshold_outside_0_2_is_refused(tmp_path, threshold):
    text = json.dumps({**GOOD_INFO, "threshold": 0.5}).replace("0.5", threshold)
    with pytest.raises(UserError) as info:
        read_model_info(model_dir_with(tmp_path, text))
    assert "threshold" in str(info.value) and "\n" not in str(info.value)


def test_encoder_json_threshold_inside_the_range_is_taken(tmp_path):
    assert read_model_info(model_dir_with(tmp_path, json.dumps({**GOOD_INFO, "threshold": 2})))["threshold"] == 2
    # seed-triplet encoders do not normalise: only finiteness bounds their threshold
    info = read_model_info(model_dir_with(tmp_path, json.dumps({**GOOD_INFO, "threshold": 3.5, "normalized": False})))
    assert info["threshold"] == 3.5


@pytest.mark.parametrize("text", ["[" * 200_000 + "]" * 200_000, '{"input_size": 6' + "0" * 5000 + "}",
                                  '{"input_size": 1' + "0" * 40 + ', "embedding_size": 128, "threshold": 0.7}'],
                         ids=["nested-200k", "5001-digits", "huge-input-size"])
def test_encoder_json_deep_or_huge_numbers_are_one_line(tmp_path, text):
    with pytest.raises(UserError) as info:
        read_model_info(model_dir_with(tmp_path, text))
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


@needs_tflite
def test_encoder_batch_equals_one_by_one_and_is_deterministic(encoder):
    crops = np.random.default_rng(0).integers(0, 256, (5, encoder.input_size, encoder.input_size, 3), dtype=np.uint8)
    batch = encoder.encode(crops)
    assert batch.shape == (5, encoder.embedding_size) and batch.dtype == np.float32
    one_by_one = np.concatenate([encoder.encode(crops[i:i + 1]) for i in range(len(crops))])
    np.testing.assert_allclose(one_by_one, batch, atol=1e-4)
    np.testing.assert_allclose(encoder.encode(crops[:2]), batch[:2], atol=1e-4)
    assert encoder.encode(crops[:0]).shape == (0, encoder.embedding_size)
    assert len(encoder.model_id) == 64
