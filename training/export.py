"""Write the encoder for the live program: ``encoder.keras``, ``encoder.tflite``, ``encoder.json``.

``encoder.json`` is the contract with ``realtime`` (which never imports TensorFlow): input
size, embedding size, the preprocessing it must repeat, and the Euclidean distance threshold
measured at evaluation. The TFLite model keeps a free batch dimension so the runtime can
resize its input to the n faces of a frame and encode them in one call.
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
                       "open_set_match")


def tflite_bytes(encoder) -> bytes:
    """Float32 TFLite flatbuffer of a Keras encoder (batch dimension left free)."""
    import contextlib
    import io
    import tensorflow as tf
    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter):   # the converter prints its saved-model signature
        data = tf.lite.TFLiteConverter.from_keras_model(encoder).convert()
    log.debug("%s", chatter.getvalue())
    return data


def metadata(config: Config, method: str, normalized: bool, threshold: float | None,
             training: dict, report: dict) -> dict:
    """The ``encoder.json`` document (schema ``format: 1``)."""
    return {
        "format": FORMAT,
        "input_size": config.model.input_size,
        "embedding_size": config.model.embedding_size,
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


def export(encoder, out_dir: Path, meta: dict) -> None:
    """Write the three files in a private folder, then rename each into place (a reader never sees
    half a model; a symlink planted in a shared --out is never written through)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with staged_files(out_dir, "--out") as stage:
        weights_only_copy(encoder).save(stage.path("encoder.keras"))
        model = tflite_bytes(encoder)
        stage.path("encoder.tflite").write_bytes(model)
        meta = {**meta, "tflite_sha256": hashlib.sha256(model).hexdigest()}   # ties the metadata to these bytes
        stage.path("encoder.json").write_bytes((json.dumps(meta, indent=2) + "\n").encode())
    log.info("exported encoder to %s (threshold %s)", out_dir, meta.get("threshold"))
