"""``python -m training``: face folders in, an exported and evaluated encoder out.

Steps: settings (config.yaml + flags) -> face crops (cached) -> a method (methods.METHODS) ->
the TFLite file -> its evaluation on val and on people never trained on (report.json, plots,
the open-set threshold) -> export (encoder.tflite/.json, and encoder.keras or the trained layers of
an SFace encoder). Bad input stops with a one-line ``error:``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from realtime.config import DEFAULT_CONFIG_PATH, PROJECT_ROOT, Config, TrainingConfig, load_config, resolve_path
from realtime.errors import UserError, import_quietly, require_modules, run_command, setup_logging
from realtime.outputs import write_text_atomic
from training.data import FaceSet, concat_face_sets, hold_out_people, load_face_set, subset, summary_line
from training.lfw import read_people_file
from training.sface import ONNX_SHA256

log = logging.getLogger(__name__)

# What training needs beyond the live program: `pip install .` leaves these out.
TRAINING_MODULES = ("tensorflow", "keras")
INSTALL_TRAINING = 'pip install ".[train]" (in the checkout), or pip install -r requirements.txt'


def _choices(key: str) -> tuple[str, ...]:
    """The allowed values of ``training.<key>``, from the config schema: one list for file and flag."""
    return next(f.metadata["choices"] for f in dataclasses.fields(TrainingConfig) if f.name == key)


def _defaults() -> TrainingConfig:
    """config.yaml's training section, for --help (the schema's defaults if the file is broken: --help works)."""
    try:
        return load_config().training
    except UserError:
        return TrainingConfig()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    t = _defaults()

    def default(key: str, value=None) -> str:
        shown = getattr(t, key) if value is None else value
        return f"(default: {str(shown).replace('%', '%%')}, training.{key})"

    p = argparse.ArgumentParser(prog="python -m training",
                                description="Train a face encoder: folders of face photos in, an evaluated encoder out "
                                            "(encoder.tflite for python -m realtime, report.json, plots).",
                                epilog=f"Every flag defaults to the training section of the settings file "
                                       f"({str(DEFAULT_CONFIG_PATH).replace('%', '%%')} unless --config). TensorFlow's "
                                       f"and Keras's own messages are shown with -v.")
    p.add_argument("--config", help=f"settings file (default: {str(DEFAULT_CONFIG_PATH).replace('%', '%%')})")
    p.add_argument("--data", help=f"dataset root with train/<person>/* and val/<person>/* {default('data')}")
    p.add_argument("--extra-data", nargs="+", action="extend", metavar="DIR",
                   help=f"more training folders of <person>/* (e.g. LFW); repeatable "
                        f"{default('extra_data', ', '.join(t.extra_data) or 'none')}")
    p.add_argument("--method", choices=_choices("method"),
                   help=f"how the encoder learns: triplet loss, a softmax classifier's penultimate layer, the first "
                        f"version's fixed random triplets (for comparison), or distillation from a teacher "
                        f"{default('method')}")
    p.add_argument("--mining", choices=_choices("mining"),
                   help=f"which triplets of a batch the triplet loss learns from {default('mining')}")
    p.add_argument("--epochs", type=int, metavar="N", help=f"training epochs {default('epochs')}")
    p.add_argument("--steps-per-epoch", type=int, metavar="N", help=f"batches per epoch {default('steps_per_epoch')}")
    p.add_argument("--out", help=f"where encoder.* and report.json go; a folder that already holds files needs "
                                 f"--overwrite {default('out', t.out or 'a new folder runs/<timestamp>/')}")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the model files in an existing --out folder (e.g. --out models)")
    p.add_argument("--init", help=f"model folder to fine-tune (its encoder.keras, or SFace and its trained layers) "
                                  f"{default('init', t.init or 'none: start from random weights')}")
    p.add_argument("--seed", type=int, metavar="N",
                   help=f"random seed for weights, batches and augmentation {default('seed')}")
    p.add_argument("--strategy", choices=_choices("strategy"),
                   help=f"tf.distribute strategy: mirrored (this machine's GPUs), multi-worker (TF_CONFIG) "
                        f"{default('strategy')}")
    p.add_argument("--cache-dir", help=f"face crop cache folder {default('cache_dir')}")
    p.add_argument("--exclude-people", nargs="+", action="extend", metavar="FILE",
                   help=f"LFW pairs file(s) or text files of names (one a line): these people are not trained on "
                        f"{default('exclude_people', ', '.join(t.exclude_people) or 'none')}")
    p.add_argument("--holdout-people", type=int, metavar="N",
                   help=f"set N people of the training pool aside as strangers to measure the threshold on "
                        f"{default('holdout_people')}")
    p.add_argument("--lfw-pairs", help=f"also run the LFW protocol: folder with pairs.txt, pairsDevTrain/Test.txt "
                                       f"{default('lfw_pairs', t.lfw_pairs or 'none')}")
    p.add_argument("--lfw-dir", help=f"LFW photos for --lfw-pairs {default('lfw_dir', t.lfw_dir or 'none')}")
    p.add_argument("--fine-tune", choices=_choices("fine_tune"),
                   help=f"backbone sface: what the triplet loss trains {default('fine_tune')}")
    p.add_argument("--calibration-data", metavar="DIR",
                   help=f"<person>/<photo> folders of people never trained on, to measure the threshold on "
                        f"{default('calibration_data', t.calibration_data or 'none')}")
    p.add_argument("--calibration-people", metavar="FILE",
                   help=f"names file choosing who of --calibration-data "
                        f"{default('calibration_people', t.calibration_people or 'everyone')}")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="debug logging, and TensorFlow's and Keras's own messages")
    return p.parse_args(argv)


def _flag_path(value: str | None) -> str | None:
    """Flag paths are relative to where the user stands (config paths to the project)."""
    return None if value is None else str(Path(value).expanduser().resolve())


def settings(args: argparse.Namespace) -> Config:
    overrides = {
        "training.data": _flag_path(args.data),
        "training.extra_data": [_flag_path(d) for d in args.extra_data] if args.extra_data else None,
        "training.method": args.method, "training.mining": args.mining,
        "training.epochs": args.epochs, "training.steps_per_epoch": args.steps_per_epoch,
        "training.out": _flag_path(args.out), "training.init": _flag_path(args.init),
        "training.seed": args.seed, "training.strategy": args.strategy, "training.cache_dir": _flag_path(args.cache_dir),
        "training.exclude_people": [_flag_path(f) for f in args.exclude_people] if args.exclude_people else None,
        "training.holdout_people": args.holdout_people,
        "training.lfw_pairs": _flag_path(args.lfw_pairs), "training.lfw_dir": _flag_path(args.lfw_dir),
        "training.fine_tune": args.fine_tune, "training.calibration_data": _flag_path(args.calibration_data),
        "training.calibration_people": _flag_path(args.calibration_people),
    }
    config = load_config(_flag_path(args.config), overrides)
    if config.training.init:
        config = adopt_init(config)
    check_backbone(config)
    return config


def init_info(config: Config) -> dict:
    """The ``--init`` model's encoder.json (empty when it has none)."""
    from realtime.encoder import JSON_NAME, read_model_info
    folder = resolve_path(config.training.init)
    return read_model_info(folder) if (folder / JSON_NAME).is_file() else {}


def adopt_init(config: Config) -> Config:
    """An ``--init`` SFace model is fine-tuned as what it is: its backbone, sizes and quantisation
    replace the config's model section, and its calibration (people never trained on, recorded
    in its encoder.json) is used when the config names none (issue 22: a fine-tune on a few
    people must be calibrated on strangers, or keep a safe threshold)."""
    from realtime.config import apply_overrides
    info = init_info(config)
    if info.get("backbone") != "sface":
        return config
    model = {f"model.{k}": info[k] for k in ("backbone", "input_size", "embedding_size", "quantize") if k in info}
    changed = {k: v for k, v in model.items() if getattr(config.model, k.split(".")[1]) != v}
    if changed:
        log.info("--init %s: %s", config.training.init, ", ".join(f"{k} {v}" for k, v in changed.items()))
    t = config.training
    calibration = info.get("calibration") if isinstance(info.get("calibration"), dict) else {}
    if not t.calibration_data and not t.holdout_people and calibration.get("data"):
        model.update({"training.calibration_data": calibration["data"],
                      "training.calibration_people": calibration.get("people")})
        log.info("--init %s: calibrating on its people never trained on (%s, %s)", t.init, calibration["data"],
                 calibration.get("people") or "everyone")
    return apply_overrides(config, model)


def check_backbone(config: Config) -> None:
    """SFace learned 112 px faces aligned on the ArcFace template, and trains by the triplet loss."""
    if config.model.backbone != "sface":
        return
    from realtime.config import ARCFACE_TEMPLATE
    from training.sface import EMBEDDING_SIZE, INPUT_SIZE
    if config.model.input_size != INPUT_SIZE:
        raise UserError(f"config: model.input_size must be {INPUT_SIZE} for backbone sface, got {config.model.input_size}")
    if config.model.embedding_size != EMBEDDING_SIZE:
        raise UserError(f"config: model.embedding_size must be {EMBEDDING_SIZE} for backbone sface")
    a = config.alignment
    template = np.asarray(a.template, np.float64) * (INPUT_SIZE / a.template_size)
    if a.method != "yunet" or not np.allclose(template, ARCFACE_TEMPLATE, atol=1e-3):
        raise UserError("config: backbone sface takes faces aligned on the ArcFace template: alignment.method yunet "
                        "and alignment.template as in config.yaml")
    if config.training.method != "triplet":
        raise UserError(f"config: backbone sface is fine-tuned with training.method triplet, got "
                        f"{config.training.method}")


def drop_people(faces: FaceSet, excluded: set[str]) -> FaceSet:
    return subset(faces, ~np.isin(faces.labels, sorted(excluded)))


def load_calibration(config: Config) -> FaceSet | None:
    """Faces of the people the threshold is calibrated on (``training.calibration_data``, only those
    of ``calibration_people`` when set), or None, said in the log, when there are none to read."""
    t = config.training
    if not t.calibration_data:
        return None
    try:
        root = resolve_path(t.calibration_data)
        names = (read_people_file(resolve_path(t.calibration_people), "training.calibration_people")
                 if t.calibration_people else None)
    except UserError as err:
        log.warning("cannot calibrate on people never trained on (%s)", err)
        return None
    if not root.is_dir():
        log.warning("cannot calibrate on people never trained on: training.calibration_data %s not found", root)
        return None
    faces = load_face_set(root, config.detection, config.model.input_size, resolve_path(t.cache_dir),
                          alignment=config.alignment, people=names)
    log.info("calibration %s: %s, %d people", root, summary_line(faces.summary), len(faces.people))
    return faces if len(faces) else None


def load_training_data(config: Config, excluded: set[str]) -> tuple[FaceSet, FaceSet]:
    """Train = ``<data>/train`` + every extra folder, minus excluded people; val = ``<data>/val``."""
    t = config.training
    data = resolve_path(t.data)
    cache = resolve_path(t.cache_dir)
    size = config.model.input_size
    parts = []
    for root in [data / "train"] + [resolve_path(d) for d in t.extra_data]:
        part = load_face_set(root, config.detection, size, cache, min_people=1 if parts else 2,
                             alignment=config.alignment)
        log.info("train %s: %s", root, summary_line(part.summary))
        parts.append(part)
    train = concat_face_sets(parts)
    if excluded:
        before = len(set(train.labels.tolist()))
        train = drop_people(train, excluded)
        log.info("excluded %d people (%d listed) from training", before - len(set(train.labels.tolist())), len(excluded))
    val = load_face_set(data / "val", config.detection, size, cache, min_people=1, alignment=config.alignment)
    log.info("val %s: %s", data / "val", summary_line(val.summary))
    people, counts = np.unique(train.labels, return_counts=True)
    if len(people) < 2:
        raise UserError(f"training needs faces of at least two people; found {len(people)} in {data / 'train'}")
    if not (counts >= 2).any():
        raise UserError("training needs at least one person with two or more face photos")
    if len(val) == 0:
        raise UserError(f"no faces found in {data / 'val'}: cannot evaluate")
    return train, val


def make_strategy(name: str):
    import tensorflow as tf
    if name == "mirrored":
        # Every GPU of this machine; without GPUs, every logical CPU device (one unless configured).
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy([d.name for d in gpus or tf.config.list_logical_devices("CPU")])
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy) -> bool:
    """The one worker that evaluates and writes the model: TF_CONFIG's chief, else worker 0."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type or resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().jobs


def output_folder(config: Config, args: argparse.Namespace) -> Path:
    """Where this run writes: training.out (or a new runs/<timestamp>/), checked before any training.

    An existing model folder is never replaced without --overwrite, and the outputs may not be any
    file the run reads (the --init encoder, the config, the excluded-people lists)."""
    from realtime.outputs import check_output_dir, check_outputs_distinct, check_writable_folder, new_run_dir
    t = config.training
    out = resolve_path(t.out) if t.out else new_run_dir(PROJECT_ROOT / "runs")
    check_output_dir(out, args.overwrite, "--out")
    check_writable_folder(out, "--out", "nothing was trained")   # before hours of training, not after
    inputs = {"the config file": _flag_path(args.config) or DEFAULT_CONFIG_PATH}
    inputs.update({f"--exclude-people {f}": resolve_path(f) for f in t.exclude_people})
    if t.init:
        init = resolve_path(t.init)
        if init.is_dir():
            inputs.update({f"the --init model's {f.name}": f for f in init.iterdir() if f.is_file()})
    check_outputs_distinct([("--out file", out / name) for name in OUTPUT_NAMES], inputs)
    return out


# Every file a training run writes into its folder.
OUTPUT_NAMES = ("encoder.keras", "encoder.weights.npz", "encoder.tflite", "encoder.json", "report.json",
                "history.json", "pca.png", "roc.png", "history.png")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    require_modules(TRAINING_MODULES, "python -m training", INSTALL_TRAINING)   # before any photo is read
    config = settings(args)
    t = config.training
    out = output_folder(config, args)
    log.info("writing to %s", out)
    excluded = set()
    for f in t.exclude_people:
        excluded |= read_people_file(resolve_path(f))
    calibration = load_calibration(config)
    if calibration is not None:
        excluded |= set(calibration.people)     # never trained on
    train, val = load_training_data(config, excluded)
    train, held = hold_out_people(train, t.holdout_people, t.seed, keep=set(val.labels.tolist()))
    if len(held):
        log.info("held out %d people (%d faces) as strangers to measure the threshold on",
                 t.holdout_people, len(held))
    if calibration is not None:
        held = concat_face_sets([held, calibration]) if len(held) else calibration
    elif not len(held):
        log.warning("no people never trained on (training.calibration_data, holdout_people): the open-set "
                    "threshold cannot be measured, a safe one is kept instead")
    log.info("training on %d faces of %d people (%d with 2+ photos), method %s",
             len(train), len(set(train.labels.tolist())),
             int((np.unique(train.labels, return_counts=True)[1] >= 2).sum()), t.method)

    import_quietly("tensorflow")   # its load-time lines on stderr: shown with -v
    import keras
    from training import evaluate, export, methods, plots
    keras.utils.set_random_seed(t.seed)
    started = time.monotonic()
    strategy = make_strategy(t.strategy)
    log.info("strategy %s: %d replicas in sync", t.strategy, strategy.num_replicas_in_sync)
    with strategy.scope():
        # The validation curve: held-out strangers when there are some, else the val faces.
        result = methods.train(config, train, validation=held if len(held) else val)
    seconds = time.monotonic() - started
    log.info("trained in %.1f s", seconds)
    if config.model.flip_average:
        from training.model import with_flip_average
        result.encoder = with_flip_average(result.encoder)   # evaluated and exported as the live program runs it
    if not is_chief(strategy):
        log.info("not the chief worker: the chief evaluates and writes the model")
        return 0

    out.mkdir(parents=True, exist_ok=True)
    # What ships is measured: the TFLite file (int8 weights give embeddings a little off the Keras model's).
    from training.lite import LiteEncoder
    tflite = export.tflite_bytes(result.encoder, config.model.quantize, train.crops)
    shipped = LiteEncoder(tflite)
    # The gallery is <data>/train alone: extra folders (LFW) would turn top-1 over the val people
    # into a search among thousands of others.
    gallery = subset(train, np.char.startswith(train.paths, str(resolve_path(t.data) / "train") + os.sep))
    safe = None if len(held) else unmeasured_threshold(shipped, gallery, val, config)
    report, roc, embeddings = evaluate.evaluate_encoder(
        shipped, gallery, val, config,
        t.lfw_pairs and resolve_path(t.lfw_pairs), t.lfw_dir and resolve_path(t.lfw_dir),
        resolve_path(t.cache_dir), held=held if len(held) else None, threshold=safe)
    if safe is not None:
        report["threshold_source"] = ("not measured (no people never trained on): the tightest of the val pairs at "
                                      f"{t.target_far:g} / {t.design_gallery_people} people, their median "
                                      "same-person distance" + (" and the --init model's" if t.init else ""))
    if calibration is not None:
        report.update({"calibration_people": len(calibration.people), "calibration_faces": len(calibration)})
    if result.classifier is not None:
        report["classifier_top1"] = methods.classifier_accuracy(result.classifier, train, val)
    report.update({"method": t.method, "mining": None, "finish_epochs": 0, "finish_mining": None, **result.report,
                   "epochs": t.epochs, "steps_per_epoch": t.steps_per_epoch, "train_seconds": round(seconds, 1),
                   "train_faces": len(train), "train_people": len(set(train.labels.tolist())), "seed": t.seed})
    training_info = {"data": summary_line(train.summary), "people": len(set(train.labels.tolist())),
                     "faces": len(train), "epochs": t.epochs, "finish_epochs": report["finish_epochs"],
                     "seconds": round(seconds, 1), "seed": t.seed,
                     "excluded_people": len(excluded), "holdout_people": t.holdout_people}
    meta = export.metadata(config, t.method, result.normalized, report["threshold"], training_info, report)
    if config.model.backbone == "sface":
        meta["fine_tune"] = result.report.get("fine_tune")
        meta["sface_onnx_sha256"] = ONNX_SHA256
    if calibration is not None:     # a fine-tune of this model (--init) is calibrated on the same people
        meta["calibration"] = {"data": t.calibration_data, "people": t.calibration_people}
    write_text_atomic(out / "history.json", json.dumps(result.history) + "\n", "--out")
    evaluate.write_report(report, out / "report.json")
    plots.write_plots(out, roc, report, embeddings, result.history)
    export.export(result.encoder, out, meta, tflite=tflite, weights=result.weights)
    log.info("top-1 %.3f (detected %.3f), ROC AUC %.3f, EER %.3f, threshold %.3f; report in %s",
             report["top1"], report["top1_detected"], report["roc_auc"], report["eer"], report["threshold"],
             out / "report.json")
    return 0


def unmeasured_threshold(encoder, gallery: FaceSet, val: FaceSet, config: Config) -> float:
    """The safe threshold of an encoder nobody could calibrate (``training.calibrate.safe_threshold``),
    from the val pairs of trained people, never above the ``--init`` model's threshold."""
    from training.calibrate import safe_threshold
    from training.evaluate import embed_crops, verification_pairs
    t = config.training
    d, same = verification_pairs(embed_crops(encoder, val.crops), val.labels, embed_crops(encoder, gallery.crops),
                                 gallery.labels)
    cap = init_info(config).get("threshold") if t.init else None
    threshold = safe_threshold(d, same, t.target_far, t.design_gallery_people, cap)
    log.warning("threshold %.3f, NOT measured on strangers (the tightest of the val pairs' %g / %d people, their "
                "median same-person distance%s): it rejects many photos of enrolled people. Give "
                "training.calibration_data (people never trained on) to measure one", threshold, t.target_far,
                t.design_gallery_people, f" and the --init model's {cap:.3f}" if cap is not None else "")
    return threshold


def cli(argv: Sequence[str] | None = None) -> int:
    return run_command(main, argv)
