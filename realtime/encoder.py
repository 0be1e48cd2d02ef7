"""The exported encoder, run through a TFLite interpreter (never TensorFlow itself).

``python -m realtime`` must start fast and small, so it loads ``encoder.tflite`` with
``ai_edge_litert`` (the maintained TFLite runtime) and only falls back to ``tf.lite`` when that
package is missing. The model's identity is the sha256 of the ``.tflite`` bytes: the gallery
records it so embeddings of different encoders are never compared.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from realtime.errors import UserError, shorten
from realtime.paths import read_regular_file
from realtime.thresholds import check_threshold

log = logging.getLogger(__name__)

JSON_NAME = "encoder.json"
TFLITE_NAME = "encoder.tflite"
# encoder.json is a page of metadata; sizes are pixels and vector lengths, never millions.
MAX_JSON_BYTES = 1_000_000
# encoder.tflite: the shipped one is 15 MB; a FIFO or /dev/zero is refused, a runaway file too.
MAX_TFLITE_BYTES = 1 << 30
MAX_SIZE = 65536


def scale_crops(crops: np.ndarray) -> np.ndarray:
    """uint8 RGB crops to the float32 [0, 1] tensor the encoder takes."""
    return np.asarray(crops, dtype=np.float32) * np.float32(1.0 / 255.0)


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - only without ai-edge-litert
        log.warning("ai_edge_litert not installed; falling back to tf.lite (slow start)")
        import tensorflow as tf
        Interpreter = tf.lite.Interpreter
    return Interpreter


def read_model_info(model_dir: str | Path) -> dict[str, Any]:
    """Parse and check ``encoder.json``; any problem is a one-line UserError."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UserError(f"model folder {model_dir} not found: run `python -m training` first or pass --model DIR")
    path = model_dir / JSON_NAME
    if not path.exists() and not path.is_symlink():
        raise UserError(f"{model_dir} has no {JSON_NAME}: run `python -m training` first or pass --model DIR")
    data = read_regular_file(path, "model metadata", MAX_JSON_BYTES, "re-export the model")
    try:
        info = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path} is not valid JSON ({shorten(str(err))}): re-export the model") from None
    except RecursionError:  # [[[[... 200,000 deep
        raise UserError(f"{path} is nested too deeply to be model metadata: re-export the model") from None
    except ValueError:  # an integer of more digits than Python converts
        raise UserError(f"{path} holds a number too long to read: re-export the model") from None
    if not isinstance(info, dict):
        raise UserError(f"{path}: expected a JSON object, re-export the model")
    for key in ("input_size", "embedding_size"):
        value = info.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_SIZE:
            raise UserError(f"{path}: {key} missing or invalid ({shorten(value)}): re-export the model")
    normalized = info.get("normalized", True)
    if not isinstance(normalized, bool):
        raise UserError(f"{path}: normalized must be true or false, got {shorten(normalized)}: re-export the model")
    check_threshold(info.get("threshold"), f"{path}", normalized)
    if info.get("distance", "euclidean") != "euclidean":
        raise UserError(f"{path}: distance {shorten(info.get('distance'))} is not supported (euclidean only)")
    return info


def check_pairing(info: dict, model_id: str, model_dir: Path) -> None:
    """encoder.json names the encoder.tflite it was exported with (``tflite_sha256``): a metadata
    file of another model (a swapped threshold, another preprocessing) is refused, not used."""
    named = info.get("tflite_sha256")
    if named is None:
        log.warning("%s/%s does not name the model it describes (exported before tflite_sha256): re-export the "
                    "model to tie the two", model_dir, JSON_NAME)
    elif named != model_id:
        raise UserError(f"{model_dir}/{JSON_NAME} describes another model (tflite_sha256 {shorten(named, 16)} is "
                        f"not {TFLITE_NAME}'s {model_id[:12]}...): keep the {JSON_NAME} exported with this "
                        f"{TFLITE_NAME}, or re-export the model")


class Encoder:
    """One interpreter per process; ``encode`` is one interpreter call per batch of crops."""

    def __init__(self, model_dir: str | Path, num_threads: int | None = None):
        self.model_dir = Path(model_dir)
        self.info = read_model_info(self.model_dir)
        tflite = self.model_dir / TFLITE_NAME
        if not tflite.exists() and not tflite.is_symlink():
            raise UserError(f"{self.model_dir} has no {TFLITE_NAME}: run `python -m training` first")
        content = read_regular_file(tflite, "model", MAX_TFLITE_BYTES, "re-export the model")   # never a FIFO
        self.model_id = hashlib.sha256(content).hexdigest()
        check_pairing(self.info, self.model_id, self.model_dir)
        try:
            self._interp = _interpreter_class()(model_content=content, num_threads=num_threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise UserError(f"{tflite} is not a valid TFLite model ({err}): re-export the model") from None
        inp = self._interp.get_input_details()[0]
        self._in_index = inp["index"]
        self._out_index = self._interp.get_output_details()[0]["index"]
        self.input_size = int(self.info["input_size"])
        self.embedding_size = int(self.info["embedding_size"])
        self.threshold = float(self.info["threshold"])
        shape = tuple(int(v) for v in inp["shape"])
        if len(shape) != 4 or shape[1:] != (self.input_size, self.input_size, 3):
            raise UserError(f"{tflite} takes input {shape[1:]}, but {JSON_NAME} says "
                            f"{self.input_size}x{self.input_size}x3: re-export the model")
        self._batch = shape[0]

    def _ensure_batch(self, n: int) -> None:
        """Resize the input only when the batch size changes (allocation is the costly part)."""
        if n != self._batch:
            self._interp.resize_tensor_input(self._in_index, [n, self.input_size, self.input_size, 3])
            self._interp.allocate_tensors()
            self._batch = n

    def encode(self, crops: np.ndarray) -> np.ndarray:
        """``(n, size, size, 3)`` uint8 RGB crops -> ``(n, embedding_size)`` float32."""
        crops = np.asarray(crops)
        n = len(crops)
        if n == 0:
            return np.zeros((0, self.embedding_size), np.float32)
        if crops.shape[1:] != (self.input_size, self.input_size, 3):
            raise ValueError(f"crops of shape {crops.shape[1:]}, encoder takes {self.input_size}x{self.input_size}x3")
        self._ensure_batch(n)
        self._interp.set_tensor(self._in_index, np.ascontiguousarray(scale_crops(crops)))
        self._interp.invoke()
        out = np.array(self._interp.get_tensor(self._out_index), dtype=np.float32, copy=True)
        if out.shape[-1] != self.embedding_size:
            raise UserError(f"encoder outputs {out.shape[-1]}-d embeddings, {JSON_NAME} says {self.embedding_size}")
        return out.reshape(n, -1)
