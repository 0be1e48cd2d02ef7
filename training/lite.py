"""An exported ``encoder.tflite`` run through LiteRT behind Keras' ``predict``, for the evaluation.

The report and the threshold in ``encoder.json`` must describe the file the live program runs: an
encoder exported with int8 weights gives embeddings a little off its float32 Keras model, and a
threshold measured on the Keras model would sit a little off them. So ``python -m training``
evaluates this wrapper of the bytes it is about to write, and ``training.evaluate`` the
``encoder.tflite`` of a model folder without ``encoder.keras``.
"""
from __future__ import annotations

import numpy as np

THREADS = 2


class LiteEncoder:
    """``predict(x)`` and ``output_shape`` of a Keras encoder, computed by a LiteRT interpreter."""

    def __init__(self, content: bytes, threads: int = THREADS):
        from realtime.encoder import _interpreter_class
        self.content = content
        self._interp = _interpreter_class()(model_content=content, num_threads=threads)
        self._interp.allocate_tensors()
        inp, out = self._interp.get_input_details()[0], self._interp.get_output_details()[0]
        self._in, self._out = inp["index"], out["index"]
        self.input_shape = (None,) + tuple(int(v) for v in inp["shape"][1:])
        self.output_shape = (None, int(out["shape"][-1]))
        self._batch = int(inp["shape"][0])

    def predict(self, x, batch_size: int = 64, verbose: int = 0) -> np.ndarray:
        x = np.asarray(x, np.float32)
        parts = []
        for start in range(0, len(x), batch_size):
            chunk = np.ascontiguousarray(x[start:start + batch_size])
            if len(chunk) != self._batch:
                self._interp.resize_tensor_input(self._in, [len(chunk)] + list(self.input_shape[1:]))
                self._interp.allocate_tensors()
                self._batch = len(chunk)
            self._interp.set_tensor(self._in, chunk)
            self._interp.invoke()
            parts.append(np.array(self._interp.get_tensor(self._out), np.float32, copy=True))
        return np.concatenate(parts) if parts else np.zeros((0, self.output_shape[1]), np.float32)

    def __call__(self, x, training: bool = False) -> np.ndarray:
        return self.predict(x)
