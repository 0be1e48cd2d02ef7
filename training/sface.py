"""SFace (OpenCV Zoo's face recogniser) read from its vendored ONNX file and rebuilt as a Keras model.

Why rebuild it: the live program runs one ``.tflite`` through LiteRT, and training fine-tunes the
encoder with the triplet loss in Keras, so the network must be a Keras model; ``onnx`` (training
only) reads the file, TensorFlow never sees ONNX. The file stores its weights block-quantised
(``DequantizeLinear`` with a block size, then ``Reshape``); they are dequantised once here, so the
Keras model is the plain float32 network that ``cv2.FaceRecognizerSF`` runs (tests/test_sface.py).

The rebuilt graph keeps the runtime contract of every encoder here: float32 RGB crops in [0, 1]
of 112 x 112 (the ArcFace template's own size) in, a unit-length 128-d embedding out. SFace's
normalisation ``(x * 255 - 127.5) / 128`` is its first layer and the L2 normalisation its last.
Conversion details that matter: ONNX pads stride-2 convolutions on every side (Keras ``same``
pads after only), so padding is explicit; PReLU slopes are per channel; each BatchNorm keeps its
own epsilon (1e-3 in the convolutions, 2e-5 at the end); the final dense layer's rows are
reordered from ONNX's channels-first flatten to Keras' channels-last one.
"""
from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path

import numpy as np

from realtime.config import resolve_path
from realtime.errors import UserError

log = logging.getLogger(__name__)

ONNX_FILE = "models/face_recognition_sface_2021dec_int8bq.onnx"
ONNX_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
INPUT_SIZE = 112
EMBEDDING_SIZE = 128
EMBEDDING_LAYER = "embedding"     # the unit-length output (as in training.model)
FEATURES_LAYER = "fc1"            # SFace's own 128-d output, before the L2 normalisation
HEAD_LAYER = "head"               # the optional trained projection between the two

# What a fine-tune trains (training.fine_tune): the layer whose output is frozen (cached), and the
# layers above it that learn. BatchNorm layers stay in inference mode with SFace's statistics.
CUTS = {"head": FEATURES_LAYER,            # a new 128 x 128 projection on SFace's embedding
        "last": "bn1",                     # the 50,176 -> 128 dense layer (6.4 M weights)
        "last-block": "conv_13_relu"}      # also the last depthwise-separable block (1024 channels)


def onnx_path() -> Path:
    return resolve_path(ONNX_FILE)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_onnx(path: Path | None = None):
    """The vendored ONNX model, after checking its SHA-256 (a different file is not this network)."""
    path = path or onnx_path()
    try:
        import onnx
    except ImportError:
        raise UserError("model.backbone sface needs the onnx package (training only): "
                        "pip install -r requirements.txt") from None
    if not path.is_file():
        raise UserError(f"{path} not found: SFace's weights ship in models/ (see models/SFACE-LICENSE.md)")
    if file_digest(path) != ONNX_SHA256:
        raise UserError(f"{path} is not OpenCV Zoo's SFace 2021dec int8bq (SHA-256 differs): restore it from models/")
    return onnx.load(str(path))


def dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int, block: int) -> np.ndarray:
    """ONNX ``DequantizeLinear`` with blocks: ``(q - zero) * scale``, one scale per ``block``
    consecutive values along ``axis`` (opset 21)."""
    q = np.moveaxis(q.astype(np.float32), axis, -1)
    scale, zero = np.moveaxis(scale.astype(np.float32), axis, -1), np.moveaxis(zero.astype(np.float32), axis, -1)
    length = q.shape[-1]
    expand = lambda a: np.repeat(a, block, axis=-1)[..., :length]  # noqa: E731
    return np.moveaxis((q - expand(zero)) * expand(scale), -1, axis)


def float_weights(model) -> dict[str, np.ndarray]:
    """Every weight of the graph as float32, by the name the computing nodes use."""
    from onnx import helper, numpy_helper
    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "DequantizeLinear":
            q, scale, zero = (values[name] for name in node.input)
            values[node.output[0]] = dequantize(q, scale, zero, attrs.get("axis", 1),
                                                attrs.get("block_size", q.shape[attrs.get("axis", 1)]))
        elif node.op_type == "Reshape" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]].reshape(values[node.input[1]].astype(np.int64))
        elif node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(attrs["value"])
    return values


def build_sface(path: Path | None = None, name: str = "sface"):
    """The Keras SFace: ``(n, 112, 112, 3)`` RGB in [0, 1] -> ``(n, 128)`` unit embeddings."""
    import keras
    from keras import layers
    from onnx import helper
    model = load_onnx(path)
    w = float_weights(model)
    graph_input = model.graph.input[0].name
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), dtype="float32", name="face")
    tensors, centred, mean, channels_last = {}, None, 0.0, None
    for node in model.graph.node:
        op, attrs = node.op_type, {a.name: helper.get_attribute_value(a) for a in node.attribute}
        out = node.output[0]
        if op in ("DequantizeLinear", "Reshape", "Constant"):
            continue                                   # weights, folded above
        if op == "Sub" and node.input[0] == graph_input:
            centred, mean = out, float(w[node.input[1]].ravel()[0])
            continue
        if op == "Mul" and node.input[0] == centred:
            # The crop arrives in [0, 1]; SFace wants (pixel - mean) * scale on 0-255 pixels.
            scale = float(w[node.input[1]].ravel()[0])
            tensors[out] = layers.Rescaling(255.0 * scale, offset=-mean * scale, name="sface_normalise")(inputs)
            continue
        x = tensors[node.input[0]]
        if op == "Conv":
            kernel = w[node.input[1]]                       # (out, in / group, kh, kw)
            group, pads, strides = attrs.get("group", 1), attrs.get("pads", [0, 0, 0, 0]), attrs["strides"]
            if any(pads):
                top, left, bottom, right = pads
                x = layers.ZeroPadding2D(((top, bottom), (left, right)), name=f"{out}_pad")(x)
            if group == 1:
                conv = layers.Conv2D(kernel.shape[0], kernel.shape[2:], strides=strides, padding="valid",
                                     use_bias=False, name=out)
                x = conv(x)
                conv.set_weights([kernel.transpose(2, 3, 1, 0)])
            elif group == kernel.shape[0] and kernel.shape[1] == 1:
                conv = layers.DepthwiseConv2D(kernel.shape[2:], strides=strides, padding="valid",
                                              use_bias=False, name=out)
                x = conv(x)
                conv.set_weights([kernel.transpose(2, 3, 0, 1)])
            else:
                raise ValueError(f"{out}: grouped convolution with {group} groups is not supported")
        elif op == "BatchNormalization":
            gamma, beta, mean_, var = (w[n] for n in node.input[1:])
            bn = layers.BatchNormalization(epsilon=attrs.get("epsilon", 1e-5), name=out)
            x = bn(x)
            bn.set_weights([gamma, beta, mean_, var])
        elif op == "PRelu":
            prelu = layers.PReLU(shared_axes=[1, 2], name=out)
            x = prelu(x)
            prelu.set_weights([w[node.input[1]].reshape(1, 1, -1)])
        elif op == "Dropout":
            pass                                            # training-time only in SFace's own training
        elif op == "Flatten":
            channels_last = tuple(int(v) for v in x.shape[1:])
            x = layers.Flatten(name=out)(x)
        elif op == "Gemm":
            weight = w[node.input[1]]                       # (128, C*H*W), rows in ONNX's C, H, W order
            if not attrs.get("transB", 0):
                weight = weight.T
            h, wd, c = channels_last
            kernel = weight.reshape(-1, c, h, wd).transpose(2, 3, 1, 0).reshape(h * wd * c, -1)
            dense = layers.Dense(kernel.shape[1], name=out)
            x = dense(x)
            dense.set_weights([kernel, w[node.input[2]].astype(np.float32).reshape(-1)])
        else:
            raise ValueError(f"unexpected ONNX operator {op} in {node.name or out}")
        tensors[out] = x
    outputs = layers.UnitNormalization(name=EMBEDDING_LAYER)(tensors[model.graph.output[0].name])
    return keras.Model(inputs, outputs, name=name)


@functools.lru_cache(maxsize=1)
def imported_weights() -> dict[str, list[np.ndarray]]:
    """Every layer's weights as imported, by layer name: what a fine-tune is compared with."""
    return {layer.name: layer.get_weights() for layer in build_sface().layers}
