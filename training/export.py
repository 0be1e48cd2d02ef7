"""Write the encoder for the live program: ``encoder.tflite``, ``encoder.json``, and what ``--init`` needs.

``encoder.json`` is the contract with ``realtime`` (which never imports TensorFlow): input
size, embedding size, the preprocessing it must repeat, and the Euclidean distance threshold
measured at evaluation. The TFLite model keeps a free batch dimension so the runtime can
resize its input to the n faces of a frame and encode them in one call.

A small student is saved whole as ``encoder.keras`` (fine-tuning starts from it). An SFace
encoder is rebuilt from the vendored ONNX file, so only the layers training changed are saved,
in ``encoder.weights.npz`` (none when SFace ships as imported): a float32 ``.keras`` of it would
be 40 MB per retrain.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from realtime.config import Config
from realtime.crops import preprocessing_record
from realtime.outputs import staged_files

log = logging.getLogger(__name__)

FORMAT = 1
REPORT_KEYS_IN_JSON = ("top1", "top1_detected", "top1_nearest", "roc_auc", "eer", "threshold",
                       "far_at_threshold", "frr_at_threshold", "unknown_rejection", "classifier_top1",
                       "probe_images", "probe_faces", "lfw_accuracy", "lfw_std", "lfw_devtest_accuracy",
                       "lfw_devtest_transfer_accuracy", "lfw_devtest_oracle_accuracy", "threshold_source",
                       "holdout_people", "holdout_pairs", "holdout_auc", "holdout_threshold", "holdout_far",
                       "holdout_frr", "holdout_balanced_threshold", "open_set", "open_set_threshold",
                       "open_set_gallery_people", "open_set_strangers_named", "open_set_correct_named",
                       "open_set_match", "open_set_sure", "calibration_people", "calibration_faces")
KERAS_NAME = "encoder.keras"
WEIGHTS_NAME = "encoder.weights.npz"
# How many training crops calibrate the activations' ranges of a full-integer model.
REPRESENTATIVE_CROPS = 300


def tflite_bytes(encoder, quantize: str = "float32", crops=None) -> bytes:
    """TFLite flatbuffer of a Keras encoder (batch dimension left free; float32 in and out).

    ``quantize`` (model.quantize): ``int8-weights`` stores weights as int8 and computes in float
    (dynamic range); ``int8`` also quantises the activations, their ranges measured on ``crops``
    (uint8, a few hundred training crops)."""
    import contextlib
    import io
    import tensorflow as tf
    converter = tf.lite.TFLiteConverter.from_keras_model(encoder)
    if quantize != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "int8":
        if crops is None or not len(crops):
            raise ValueError("int8 quantisation needs crops to calibrate the activations on")
        from realtime.encoder import scale_crops
        sample = scale_crops(crops[:REPRESENTATIVE_CROPS])
        converter.representative_dataset = lambda: ([sample[i:i + 1]] for i in range(len(sample)))
    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter):   # the converter prints its saved-model signature
        data = converter.convert()
    log.debug("%s", chatter.getvalue())
    return data


def metadata(config: Config, method: str, normalized: bool, threshold: float | None,
             training: dict, report: dict) -> dict:
    """The ``encoder.json`` document (schema ``format: 1``)."""
    return {
        "format": FORMAT,
        "backbone": config.model.backbone,
        "input_size": config.model.input_size,
        "embedding_size": config.model.embedding_size,
        "quantize": config.model.quantize,
        "normalized": normalized,
        "distance": "euclidean",
        "threshold": None if threshold is None else float(threshold),
        "target_far": config.training.target_far,
        "preprocessing": preprocessing_record(config),
        "method": method,
        "training": training,
        "metrics": {k: report[k] for k in REPORT_KEYS_IN_JSON if k in report},
    }


def weights_only_copy(encoder):
    """The encoder without its optimizer state: a third of the file, and nothing a user needs."""
    import keras
    return keras.Model(encoder.inputs, encoder.outputs, name=encoder.name)  # same layers, never compiled


def _weights_bytes(weights: dict) -> bytes:
    import io
    import numpy as np
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in weights.items()})
    return buffer.getvalue()


def export(encoder, out_dir: Path, meta: dict, tflite: bytes | None = None, weights: dict | None = None) -> None:
    """Write the model files in a private folder, then rename each into place (a reader never sees
    half a model; a symlink planted in a shared --out is never written through).

    ``weights`` (an SFace encoder: the layers that differ from the ONNX file, maybe none) replaces
    ``encoder.keras``; a file of the other kind left in the folder by an earlier run is removed, so
    ``--init`` and ``training.evaluate`` never read a stale model."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = [out_dir / (WEIGHTS_NAME if weights is None else KERAS_NAME)]
    with staged_files(out_dir, "--out") as stage:
        if weights is None:
            weights_only_copy(encoder).save(stage.path(KERAS_NAME))
        elif weights:
            stage.path(WEIGHTS_NAME).write_bytes(_weights_bytes(weights))
        else:
            stale.append(out_dir / WEIGHTS_NAME)
        model = tflite if tflite is not None else tflite_bytes(encoder)
        stage.path("encoder.tflite").write_bytes(model)
        meta = {**meta, "tflite_sha256": hashlib.sha256(model).hexdigest()}   # ties the metadata to these bytes
        stage.path("encoder.json").write_bytes((json.dumps(meta, indent=2) + "\n").encode())
    for path in stale:
        if path.is_file():
            path.unlink()
            log.info("removed %s of an earlier run", path)
    log.info("exported encoder to %s (threshold %s)", out_dir, meta.get("threshold"))
