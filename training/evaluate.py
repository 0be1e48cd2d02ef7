"""How good is an encoder: closed-set top-1, verification ROC, open-set rejection, LFW, plots.

The numbers are computed by pure functions on embeddings (``closed_set``, ``verification_pairs``,
``open_set``); identification is the live program's matcher (``realtime.matching``), so top-1 is
what ``python -m realtime`` would answer. ``evaluate_encoder`` wires them to face sets, the plots
are in ``training.plots``, and ``main`` is the command
``python -m training.evaluate --model DIR --data DIR --out FILE``. Every distance is plain
Euclidean between embeddings, the unit of the threshold written into ``encoder.json``.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from realtime.config import DEFAULT_CONFIG_PATH, PROJECT_ROOT, Config, load_config, resolve_path
from realtime.errors import UserError, import_quietly, require_modules, run_command, setup_logging, shorten
from realtime.outputs import check_output_dir, check_outputs_distinct, new_run_dir, same_file, \
    write_text_atomic
from realtime.encoder import scale_crops
from realtime.matching import Index, match
from training import metrics, plots
from training.data import FaceSet, load_face_set, summary_line

log = logging.getLogger(__name__)

def identify(gallery: np.ndarray, gallery_labels: np.ndarray, probes: np.ndarray,
             mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Each probe's nearest person and distance, by the live program's own matcher
    (:mod:`realtime.matching`, ``mode`` nearest sample or per-person mean): what is measured
    here is what ``python -m realtime`` runs."""
    people, ids = np.unique(np.asarray(gallery_labels), return_inverse=True)
    found = match(Index.build(gallery, ids, people.tolist()), probes, threshold=float("inf"), mode=mode)
    return (np.array([m.nearest for m in found], dtype=object),
            np.array([m.distance for m in found], dtype=np.float64))


def closed_set(gallery: np.ndarray, gallery_labels: np.ndarray, probes: np.ndarray,
               probe_labels: np.ndarray) -> dict:
    """Correct counts of nearest-person-mean and nearest-sample identification."""
    return {f"correct_{key}": int((identify(gallery, gallery_labels, probes, mode)[0] == probe_labels).sum())
            for key, mode in (("mean", "mean"), ("nearest", "nearest"))}


def verification_pairs(val: np.ndarray, val_labels: np.ndarray, train: np.ndarray,
                       train_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances and same-person flags of every val x val (i < j) and val x train pair."""
    d_vv, s_vv = metrics.all_pairs(val, val_labels)
    d_vt = metrics.distance_matrix(val, train).ravel()
    s_vt = (val_labels[:, None] == train_labels[None, :]).ravel()
    return np.concatenate([d_vv, d_vt]), np.concatenate([s_vv, s_vt])


def open_set(gallery: np.ndarray, gallery_labels: np.ndarray, probes: np.ndarray, probe_labels: np.ndarray,
             threshold: float, mode: str = "nearest") -> dict:
    """Leave each person out of the gallery in turn: their probes should be nearer no one than ``threshold``.

    Also, with everyone enrolled: how many probes are accepted as the right person.
    """
    rejected = 0
    for person in np.unique(gallery_labels):
        mine = probes[probe_labels == person]
        if len(mine):
            others = gallery_labels != person
            rejected += int((identify(gallery[others], gallery_labels[others], mine, mode)[1] > threshold).sum())
    nearest, d = identify(gallery, gallery_labels, probes, mode)
    accepted_right = int(((d <= threshold) & (nearest == probe_labels)).sum())
    n = max(len(probes), 1)
    return {"unknown_rejection": rejected / n, "unknown_false_accept": 1.0 - rejected / n,
            "known_accepted_correct": accepted_right / n, "open_set_match": mode}


def holdout_verification(embeddings: np.ndarray, labels: np.ndarray,
                         target_far: float) -> tuple[dict, tuple[np.ndarray, np.ndarray]]:
    """Every pair of the held-out strangers: the threshold at ``target_far``, and the balanced one
    (with the pairs, for the ROC plot).

    ``holdout_threshold`` is the one a user gets (a stated share of strangers accepted);
    ``holdout_balanced_threshold`` maximises (TAR + TNR) / 2 and is the one transferred to
    LFW's balanced DevTest pairs.
    """
    d, same = metrics.all_pairs(embeddings, labels)
    threshold, far, frr = metrics.threshold_at_far(d, same, target_far)
    return ({"holdout_people": len(set(labels.tolist())), "holdout_pairs": int(len(d)),
             "holdout_same_pairs": int(same.sum()), "holdout_auc": metrics.roc_auc(d, same),
             "holdout_threshold": threshold, "holdout_far": far, "holdout_frr": frr,
             "holdout_balanced_threshold": metrics.best_threshold(d, same, balanced=True)}, (d, same))


def report_metrics(train_emb, train_labels, val_emb, val_labels, probe_images: int, target_far: float,
                   threshold: float | None = None,
                   mode: str = "nearest") -> tuple[dict, tuple[np.ndarray, np.ndarray]]:
    """The report's numbers from embeddings, and the verification pairs (distances, same) for the plot.

    ``threshold`` (measured elsewhere, e.g. on held-out strangers) replaces the one at
    ``target_far`` on these pairs; the false accepts and rejects are then measured at it.
    ``mode`` is the live matcher's (recognition.match) for the open-set numbers.
    """
    if len(val_emb) == 0 or len(train_emb) == 0:
        raise UserError("evaluation needs faces in both train/ and val/: none were found in one of them")
    cs = closed_set(train_emb, train_labels, val_emb, val_labels)
    d, same = verification_pairs(val_emb, val_labels, train_emb, train_labels)
    if same.all() or not same.any():
        raise UserError("verification needs both same-person and different-person pairs: need two people in val/")
    eer, eer_threshold = metrics.equal_error_rate(d, same)
    if threshold is None:
        threshold, far, frr = metrics.threshold_at_far(d, same, target_far)
    else:
        far, frr = float(np.mean(d[~same] <= threshold)), float(np.mean(d[same] > threshold))
    n_faces = len(val_emb)
    report = {
        "top1": cs["correct_mean"] / max(probe_images, 1),
        "top1_detected": cs["correct_mean"] / n_faces,
        "top1_nearest": cs["correct_nearest"] / max(probe_images, 1),
        "top1_nearest_detected": cs["correct_nearest"] / n_faces,
        "probe_images": int(probe_images), "probe_faces": int(n_faces),
        "no_face_images": int(probe_images - n_faces),
        "gallery_faces": int(len(train_emb)),
        "verification_pairs": int(len(d)), "same_pairs": int(same.sum()),
        "roc_auc": metrics.roc_auc(d, same), "eer": eer, "eer_threshold": eer_threshold,
        "threshold": threshold, "target_far": target_far,
        "far_at_threshold": far, "frr_at_threshold": frr,
        "mean_same_distance": float(d[same].mean()), "mean_different_distance": float(d[~same].mean()),
    }
    report.update(open_set(train_emb, train_labels, val_emb, val_labels, threshold, mode))
    return report, (d, same)


def embed_crops(model, crops: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """uint8 crops through a Keras encoder (eval mode) to float32 embeddings."""
    if len(crops) == 0:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    return np.asarray(model.predict(scale_crops(crops), batch_size=batch_size, verbose=0), np.float32)


def lfw_embedder(model, config: Config, lfw_dir: Path,
                 cache_dir: Path | None) -> Callable[[list[Path]], tuple[np.ndarray, np.ndarray]]:
    """``embed_paths`` for ``training.lfw.lfw_protocol``: photos -> (embeddings, found mask).

    The whole LFW folder goes through ``load_face_set`` once, so its crops land in the same
    cache that training with ``--extra-data <lfw>`` uses: Haar runs once per photo, ever.
    """
    faces = load_face_set(lfw_dir, config.detection, config.model.input_size, cache_dir, alignment=config.alignment)
    log.info("LFW %s: %s", lfw_dir, summary_line(faces.summary))
    row = {str(Path(p).resolve()): i for i, p in enumerate(faces.paths.tolist())}

    def embed_paths(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        rows = np.array([row.get(str(Path(p).resolve()), -1) for p in paths], dtype=np.int64)
        found = rows >= 0
        embeddings = np.zeros((len(paths), model.output_shape[-1]), np.float32)
        embeddings[found] = embed_crops(model, faces.crops[rows[found]])
        return embeddings, found

    return embed_paths


# A match is sure (named on its first frame, without the live vote) where at most this share of
# target_far of strangers' photos fall: a tenth as many strangers as the threshold lets through.
SURE_SHARE = 0.1


def open_set_calibration(embeddings: np.ndarray, labels: np.ndarray, config: Config) -> dict:
    """The open-set curve on held-out people, the threshold at the design gallery size, and the
    sure curve (the same galleries and strangers at a tenth of the share of strangers named)."""
    from training.calibrate import design_threshold, open_set_curves
    t = config.training
    curve, sure = open_set_curves(embeddings, labels, (t.target_far, t.target_far * SURE_SHARE), seed=t.seed,
                                  mode=config.recognition.match)
    chosen = design_threshold(curve, t.design_gallery_people)
    if chosen is None:
        return {}
    return {"open_set": curve, "open_set_threshold": chosen["threshold"], "open_set_match": config.recognition.match,
            "open_set_gallery_people": chosen["gallery_people"],
            "open_set_strangers_named": chosen["strangers_named"], "open_set_correct_named": chosen["correct_named"],
            "open_set_sure": sure}


def evaluate_encoder(model, train: FaceSet, val: FaceSet, config: Config,
                     lfw_pairs: Path | None = None, lfw_dir: Path | None = None,
                     cache_dir: Path | None = None, held: FaceSet | None = None,
                     known: dict | None = None, threshold: float | None = None) -> tuple[dict, dict, dict]:
    """Report, verification pairs per set (for the ROC plot) and embeddings (for the PCA plot) of
    ``model`` on a train/val split.

    With ``held`` (people never trained on) the threshold comes from their pairs; ``known``
    carries such held-out results from training into a later evaluation. Without either, the
    report is made at ``threshold`` when given (a safe one, or the model's own), else at the
    val pairs' ``target_far`` (loose: val people were trained on).
    """
    train_emb, val_emb = embed_crops(model, train.crops), embed_crops(model, val.crops)
    probe_images = int(val.summary.get("images", len(val)) - val.summary.get("non_image", 0))
    holdout, curves = dict(known or {}), {}
    if held is not None:
        held_emb = embed_crops(model, held.crops)
        holdout, curves["held-out strangers"] = holdout_verification(held_emb, held.labels, config.training.target_far)
        holdout.update(open_set_calibration(held_emb, held.labels, config))
    report, curves["val x (val + train)"] = report_metrics(
        train_emb, train.labels, val_emb, val.labels, probe_images, config.training.target_far,
        holdout.get("open_set_threshold", holdout.get("holdout_threshold", threshold)), config.recognition.match)
    report.update(holdout)
    report["threshold_source"] = "held-out people" if holdout else "given" if threshold is not None else "val pairs"
    if holdout.get("open_set_threshold") is not None:
        report["threshold_source"] = (f"held-out people, open set: a gallery of {holdout['open_set_gallery_people']} "
                                      f"people names at most {config.training.target_far:.0%} of strangers' photos")
    if lfw_pairs is not None:
        from training.lfw import lfw_protocol
        if lfw_dir is None or not Path(lfw_dir).is_dir():
            raise UserError(f"LFW photo folder {lfw_dir} not found: pass --lfw-dir with lfw/<Name>/<Name>_NNNN.jpg")
        report.update(lfw_protocol(lfw_embedder(model, config, Path(lfw_dir), cache_dir), lfw_pairs, lfw_dir,
                                   config.training.target_far, holdout.get("holdout_balanced_threshold"),
                                   curves=curves))
    return report, curves, {"train": (train_emb, train.labels), "val": (val_emb, val.labels)}


def write_report(report: dict, path: Path) -> None:
    """Temp file and rename: a crash never leaves half a report where a good one was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(report, indent=2, sort_keys=True) + "\n", "report")


def load_split(data: Path, config: Config, cache_dir: Path | None) -> tuple[FaceSet, FaceSet]:
    """Face crops of ``data/train`` and ``data/val``, with their summaries logged."""
    size = config.model.input_size
    train = load_face_set(data / "train", config.detection, size, cache_dir, min_people=2, alignment=config.alignment)
    val = load_face_set(data / "val", config.detection, size, cache_dir, min_people=1, alignment=config.alignment)
    log.info("train %s: %s", data / "train", summary_line(train.summary))
    log.info("val %s: %s", data / "val", summary_line(val.summary))
    return train, val


def load_encoder(model_dir: Path):
    """The exported encoder and its metadata (``encoder.json``): ``encoder.keras`` where there is
    one (a small student), else ``encoder.tflite`` run through LiteRT (an SFace encoder ships no
    ``.keras``; the file the live program runs is what gets measured)."""
    import keras
    from realtime.encoder import read_model_info
    keras_path, meta_path = model_dir / "encoder.keras", model_dir / "encoder.json"
    tflite_path = model_dir / "encoder.tflite"
    if not keras_path.is_file() and tflite_path.is_file() and (meta_path.exists() or meta_path.is_symlink()):
        from training.lite import LiteEncoder
        meta = read_model_info(model_dir)
        try:
            return LiteEncoder(tflite_path.read_bytes()), meta
        except (ValueError, RuntimeError) as err:
            raise UserError(f"{tflite_path} is not a valid TFLite model ({shorten(str(err))}): "
                            "re-export the model") from None
    if not keras_path.is_file():
        raise UserError(f"{model_dir} has no encoder.keras or encoder.tflite: run `python -m training --out "
                        f"{model_dir}` first")
    meta = read_model_info(model_dir) if meta_path.exists() or meta_path.is_symlink() else {}
    try:
        return keras.models.load_model(keras_path, compile=False), meta
    except Exception as err:  # Keras raises many types (ValueError, OSError, zipfile errors...) for a bad file
        raise UserError(f"{keras_path} cannot be loaded as a Keras model ({type(err).__name__}: "
                        f"{shorten(str(err).splitlines()[0] if str(err) else '')}): re-export the model") from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="config file (default: the model folder's config.yaml if it has one, "
                                    "else the project's)")
    p.add_argument("--model", help="model folder with encoder.keras (default: config model.dir)")
    p.add_argument("--data", help="dataset root with train/ and val/ (default: config training.data)")
    p.add_argument("--out", help="folder for report.json and the plots (default: a new folder runs/evaluate-<timestamp>/); "
                                 "never the model folder; a folder that already holds files needs --overwrite")
    p.add_argument("--overwrite", action="store_true", help="replace the report and plots in an existing --out folder")
    p.add_argument("--lfw-pairs", help="folder with pairs.txt, pairsDevTrain.txt, pairsDevTest.txt")
    p.add_argument("--lfw-dir", help="LFW photos, lfw/<Name>/<Name>_NNNN.jpg")
    p.add_argument("--cache-dir", help="face crop cache (default: config training.cache_dir)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging, and TensorFlow's and Keras's own messages")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    require_modules(("tensorflow", "keras"), "python -m training.evaluate", 'pip install ".[train]" (in the checkout)')
    import_quietly("tensorflow")   # its load-time lines on stderr: shown with -v
    model_dir = Path(args.model).resolve() if args.model else resolve_path(load_config().model.dir)
    # A model folder that carries its recipe (models/config.yaml) is measured with its own settings.
    recipe = model_dir / "config.yaml"
    config = load_config(args.config or (recipe if recipe.is_file() else None))
    data = Path(args.data).resolve() if args.data else resolve_path(config.training.data)
    cache = Path(args.cache_dir).expanduser().resolve() if args.cache_dir else resolve_path(config.training.cache_dir)
    out = output_folder(args, model_dir, args.config or (recipe if recipe.is_file() else DEFAULT_CONFIG_PATH))
    model, meta = load_encoder(model_dir)
    train, val = load_split(data, config, cache)
    held_out = {k: v for k, v in meta.get("metrics", {}).items() if k.startswith(("holdout_", "open_set"))}
    report, roc, embeddings = evaluate_encoder(
        model, train, val, config,
        Path(args.lfw_pairs).resolve() if args.lfw_pairs else None,
        Path(args.lfw_dir).resolve() if args.lfw_dir else None, cache, known=held_out,
        threshold=None if held_out else meta.get("threshold"))
    report["method"] = meta.get("method", "unknown")
    report["epochs"] = meta.get("training", {}).get("epochs")
    report["train_seconds"] = meta.get("training", {}).get("seconds")
    history_path = model_dir / "history.json"
    history = json.loads(history_path.read_text(encoding="utf-8")) if history_path.is_file() else None
    write_report(report, out / "report.json")
    plots.write_plots(out, roc, report, embeddings, history)
    print(json.dumps(report, indent=2, sort_keys=True))
    log.info("report and plots in %s", out)
    return 0


def output_folder(args: argparse.Namespace, model_dir: Path, config_path: Path) -> Path:
    """``--out`` (or a new runs/evaluate-<timestamp>/), checked before the slow part: never the
    model folder it measures, never over an earlier report without --overwrite."""
    out = Path(args.out).expanduser().resolve() if args.out else new_run_dir(PROJECT_ROOT / "runs", "evaluate-")
    if same_file(out, model_dir):
        raise UserError(f"--out {out} is the model folder being evaluated: its report.json belongs to its "
                        f"training run; give another folder")
    check_output_dir(out, args.overwrite, "--out")
    inputs = [("the config file", Path(config_path))]
    if model_dir.is_dir():
        inputs += [(f"the model's {f.name}", f) for f in model_dir.iterdir() if f.is_file()]
    check_outputs_distinct([("--out file", out / name) for name in ("report.json", "pca.png", "roc.png",
                                                                    "history.png")], inputs)
    return out  # created when the report is written: a failed run leaves no empty folder


if __name__ == "__main__":
    raise SystemExit(run_command(main))
