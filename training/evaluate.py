"""How good is an encoder: closed-set top-1, verification ROC, open-set rejection, LFW, plots.

The numbers are computed by pure functions on embeddings (``closed_set``, ``verification``,
``open_set``); ``evaluate_encoder`` wires them to face sets, and ``main`` is the command
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

from realtime.config import Config, load_config, resolve_path
from realtime.errors import UserError, run_command, setup_logging
from realtime.faces import scale_crops
from training import metrics
from training.data import FaceSet, describe, load_face_set

log = logging.getLogger(__name__)

Embed = Callable[[np.ndarray], np.ndarray]   # uint8 RGB crops -> embeddings


def euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` Euclidean distances."""
    sq = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return np.sqrt(np.maximum(sq, 0.0))


def person_means(embeddings: np.ndarray, labels: np.ndarray, normalized: bool) -> tuple[list[str], np.ndarray]:
    """One gallery entry per person: the mean embedding (back on the unit sphere when normalised)."""
    people = sorted(set(labels.tolist()))
    means = np.stack([embeddings[labels == p].mean(0) for p in people])
    if normalized:
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    return people, means


def closed_set(gallery: np.ndarray, gallery_labels: np.ndarray, probes: np.ndarray, probe_labels: np.ndarray,
               normalized: bool) -> dict:
    """Correct counts of nearest-person-mean and nearest-sample identification."""
    people, means = person_means(gallery, gallery_labels, normalized)
    by_mean = np.array(people)[euclidean(probes, means).argmin(1)] if len(probes) else np.zeros(0, str)
    by_sample = gallery_labels[euclidean(probes, gallery).argmin(1)] if len(probes) else np.zeros(0, str)
    return {"correct_mean": int((by_mean == probe_labels).sum()),
            "correct_nearest": int((by_sample == probe_labels).sum())}


def verification_pairs(val: np.ndarray, val_labels: np.ndarray, train: np.ndarray,
                       train_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances and same-person flags of every val x val (i < j) and val x train pair."""
    i, j = np.triu_indices(len(val), k=1)
    d_vv = euclidean(val, val)[i, j]
    s_vv = val_labels[i] == val_labels[j]
    d_vt = euclidean(val, train).ravel()
    s_vt = (val_labels[:, None] == train_labels[None, :]).ravel()
    return np.concatenate([d_vv, d_vt]), np.concatenate([s_vv, s_vt])


def open_set(gallery: np.ndarray, gallery_labels: np.ndarray, probes: np.ndarray, probe_labels: np.ndarray,
             threshold: float, normalized: bool) -> dict:
    """Leave each person out of the gallery in turn: their probes should be nearer no one than ``threshold``.

    Also, with everyone enrolled: how many probes are accepted as the right person.
    """
    people, means = person_means(gallery, gallery_labels, normalized)
    rejected = 0
    for k, person in enumerate(people):
        mine = probes[probe_labels == person]
        if len(mine) == 0:
            continue
        others = np.delete(means, k, axis=0)
        rejected += int((euclidean(mine, others).min(1) > threshold).sum())
    d = euclidean(probes, means)
    nearest = np.array(people)[d.argmin(1)]
    accepted_right = int(((d.min(1) <= threshold) & (nearest == probe_labels)).sum())
    n = max(len(probes), 1)
    return {"unknown_rejection": rejected / n, "unknown_false_accept": 1.0 - rejected / n,
            "known_accepted_correct": accepted_right / n}


def holdout_verification(embeddings: np.ndarray, labels: np.ndarray, target_far: float) -> dict:
    """Every pair of the held-out strangers: the threshold at ``target_far``, and the balanced one.

    ``holdout_threshold`` is the one a user gets (a stated share of strangers accepted);
    ``holdout_balanced_threshold`` maximises (TAR + TNR) / 2 and is the one transferred to
    LFW's balanced DevTest pairs.
    """
    i, j = np.triu_indices(len(embeddings), k=1)
    d = np.linalg.norm(embeddings[i] - embeddings[j], axis=1)
    same = labels[i] == labels[j]
    threshold, far, frr = metrics.threshold_at_far(d, same, target_far)
    return {"holdout_people": len(set(labels.tolist())), "holdout_pairs": int(len(d)),
            "holdout_same_pairs": int(same.sum()), "holdout_auc": metrics.roc_auc(d, same),
            "holdout_threshold": threshold, "holdout_far": far, "holdout_frr": frr,
            "holdout_balanced_threshold": metrics.best_threshold(d, same, balanced=True)}


def report_metrics(train_emb, train_labels, val_emb, val_labels, probe_images: int, target_far: float,
                   normalized: bool, threshold: float | None = None) -> tuple[dict, dict]:
    """The report's numbers from embeddings, and the ROC curve for the plot.

    ``threshold`` (measured elsewhere, e.g. on held-out strangers) replaces the one at
    ``target_far`` on these pairs; the false accepts and rejects are then measured at it.
    """
    if len(val_emb) == 0 or len(train_emb) == 0:
        raise UserError("evaluation needs faces in both train/ and val/: none were found in one of them")
    cs = closed_set(train_emb, train_labels, val_emb, val_labels, normalized)
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
    report.update(open_set(train_emb, train_labels, val_emb, val_labels, threshold, normalized))
    far_pts, tar_pts, _ = metrics.roc_points(d, same)
    return report, {"far": far_pts, "tar": tar_pts}


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
    faces = load_face_set(lfw_dir, config.detection, config.model.input_size, cache_dir)
    log.info("LFW %s: %s", lfw_dir, describe(faces.summary))
    row = {str(Path(p).resolve()): i for i, p in enumerate(faces.paths.tolist())}

    def embed_paths(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        rows = np.array([row.get(str(Path(p).resolve()), -1) for p in paths], dtype=np.int64)
        found = rows >= 0
        embeddings = np.zeros((len(paths), model.output_shape[-1]), np.float32)
        embeddings[found] = embed_crops(model, faces.crops[rows[found]])
        return embeddings, found

    return embed_paths


def evaluate_encoder(model, train: FaceSet, val: FaceSet, config: Config, normalized: bool,
                     lfw_pairs: Path | None = None, lfw_dir: Path | None = None,
                     cache_dir: Path | None = None, held: FaceSet | None = None,
                     known: dict | None = None) -> tuple[dict, dict, dict]:
    """Report, ROC curve and embeddings (for the PCA plot) of ``model`` on a train/val split.

    With ``held`` (people never trained on) the threshold comes from their pairs; ``known``
    carries such held-out results from training into a later evaluation.
    """
    train_emb, val_emb = embed_crops(model, train.crops), embed_crops(model, val.crops)
    probe_images = int(val.summary.get("images", len(val)) - val.summary.get("non_image", 0))
    holdout = dict(known or {})
    if held is not None:
        holdout = holdout_verification(embed_crops(model, held.crops), held.labels, config.training.target_far)
    report, roc = report_metrics(train_emb, train.labels, val_emb, val.labels, probe_images,
                                 config.training.target_far, normalized, holdout.get("holdout_threshold"))
    report.update(holdout)
    report["threshold_source"] = "held-out people" if holdout else "val pairs"
    if lfw_pairs is not None:
        from training.lfw import lfw_protocol
        if lfw_dir is None or not Path(lfw_dir).is_dir():
            raise UserError(f"LFW photo folder {lfw_dir} not found: pass --lfw-dir with lfw/<Name>/<Name>_NNNN.jpg")
        report.update(lfw_protocol(lfw_embedder(model, config, Path(lfw_dir), cache_dir), lfw_pairs, lfw_dir,
                                   config.training.target_far, holdout.get("holdout_balanced_threshold")))
    return report, roc, {"train": (train_emb, train.labels), "val": (val_emb, val.labels)}


# --- plots (matplotlib Agg: no display needed) ---

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_pca(embeddings: dict, path: Path) -> None:
    """2-D PCA of train (dots) and val (crosses) embeddings, coloured by person."""
    plt = _pyplot()
    all_emb = np.concatenate([e for e, _ in embeddings.values()])
    mean = all_emb.mean(0)
    _, _, vt = np.linalg.svd(all_emb - mean, full_matrices=False)
    people = sorted(set(np.concatenate([l for _, l in embeddings.values()]).tolist()))
    colors = plt.get_cmap("tab10" if len(people) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(6, 5))
    for (split, (emb, labels)), marker in zip(embeddings.items(), ("o", "x")):
        xy = (emb - mean) @ vt[:2].T
        for k, person in enumerate(people[:20]):
            m = labels == person
            ax.scatter(xy[m, 0], xy[m, 1], marker=marker, color=colors(k % 20),
                       label=person if split == "train" else None, s=18)
    ax.set_title("PCA of embeddings (o train, x val)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_roc(roc: dict, report: dict, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(roc["far"], roc["tar"], label=f"AUC {report['roc_auc']:.3f}, EER {report['eer']:.3f}")
    ax.axvline(report["far_at_threshold"], ls="--", color="gray",
               label=f"threshold {report['threshold']:.3f} (FAR {report['far_at_threshold']:.3f})")
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title("Verification ROC, val x val and val x train")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_history(history: dict, path: Path) -> None:
    """Loss and active-triplet fraction per epoch: a collapse shows as loss stuck at the margin."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    main_epochs = len(history.get("loss", []))
    for ax, keys in ((axes[0], ("loss", "val_loss")), (axes[1], ("active", "pos_dist", "neg_dist", "accuracy"))):
        for key in keys:
            if key not in history:
                continue
            line, = ax.plot(history[key], label=key)
            finish = history.get(f"finish_{key}", [])   # the finishing epochs, dashed, after the main ones
            if finish:
                ax.plot(range(main_epochs, main_epochs + len(finish)), finish, "--", color=line.get_color(),
                        label=f"{key} (finish)")
    axes[0].set_xlabel("epoch")
    axes[0].set_title("loss")
    axes[1].set_xlabel("epoch")
    axes[1].set_title("active triplets / distances")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_plots(out_dir: Path, roc: dict, report: dict, embeddings: dict, history: dict | None) -> None:
    plot_pca(embeddings, out_dir / "pca.png")
    plot_roc(roc, report, out_dir / "roc.png")
    if history:
        plot_history(history, out_dir / "history.png")


def load_split(data: Path, config: Config, cache_dir: Path | None) -> tuple[FaceSet, FaceSet]:
    """Face crops of ``data/train`` and ``data/val``, with their summaries logged."""
    size = config.model.input_size
    train = load_face_set(data / "train", config.detection, size, cache_dir, min_people=2)
    val = load_face_set(data / "val", config.detection, size, cache_dir, min_people=1)
    log.info("train %s: %s", data / "train", describe(train.summary))
    log.info("val %s: %s", data / "val", describe(val.summary))
    return train, val


def load_encoder(model_dir: Path):
    """The exported Keras encoder and its metadata (``encoder.json``)."""
    import keras
    keras_path, meta_path = model_dir / "encoder.keras", model_dir / "encoder.json"
    if not keras_path.is_file():
        raise UserError(f"{model_dir} has no encoder.keras: run `python -m training --out {model_dir}` first")
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    return keras.models.load_model(keras_path, compile=False), meta


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="config file (default: the model folder's config.yaml if it has one, "
                                    "else the project's)")
    p.add_argument("--model", help="model folder with encoder.keras (default: config model.dir)")
    p.add_argument("--data", help="dataset root with train/ and val/ (default: config training.data)")
    p.add_argument("--out", help="report.json path; plots go beside it (default: <model>/report.json)")
    p.add_argument("--lfw-pairs", help="folder with pairs.txt, pairsDevTrain.txt, pairsDevTest.txt")
    p.add_argument("--lfw-dir", help="LFW photos, lfw/<Name>/<Name>_NNNN.jpg")
    p.add_argument("--cache-dir", help="face crop cache (default: config training.cache_dir)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    model_dir = Path(args.model).resolve() if args.model else resolve_path(load_config().model.dir)
    # A model folder that carries its recipe (models/config.yaml) is measured with its own settings.
    recipe = model_dir / "config.yaml"
    config = load_config(args.config or (recipe if recipe.is_file() else None))
    data = Path(args.data).resolve() if args.data else resolve_path(config.training.data)
    cache = Path(args.cache_dir).expanduser().resolve() if args.cache_dir else resolve_path(config.training.cache_dir)
    out = Path(args.out).resolve() if args.out else model_dir / "report.json"
    model, meta = load_encoder(model_dir)
    train, val = load_split(data, config, cache)
    held_out = {k: v for k, v in meta.get("metrics", {}).items() if k.startswith("holdout_")}
    report, roc, embeddings = evaluate_encoder(
        model, train, val, config, bool(meta.get("normalized", True)),
        Path(args.lfw_pairs).resolve() if args.lfw_pairs else None,
        Path(args.lfw_dir).resolve() if args.lfw_dir else None, cache, known=held_out)
    report["method"] = meta.get("method", "unknown")
    report["epochs"] = meta.get("training", {}).get("epochs")
    report["train_seconds"] = meta.get("training", {}).get("seconds")
    history_path = model_dir / "history.json"
    history = json.loads(history_path.read_text(encoding="utf-8")) if history_path.is_file() else None
    write_report(report, out)
    write_plots(out.parent, roc, report, embeddings, history)
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_command(main))
