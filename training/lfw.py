"""The LFW verification protocol: pairs files, 10-fold accuracy, DevTrain -> DevTest.

The model stays outside: :func:`lfw_protocol` takes an ``embed_paths`` function, so this
module is pure bookkeeping plus file parsing and is tested without TensorFlow.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from realtime.errors import UserError
from training.metrics import accuracy_at, best_threshold, threshold_at_far

log = logging.getLogger(__name__)

PAIRS_FILES = ("pairs.txt", "pairsDevTrain.txt", "pairsDevTest.txt")


@dataclass(frozen=True)
class Pair:
    name1: str
    index1: int
    name2: str
    index2: int
    same: bool
    fold: int


def read_pairs(path: str | Path) -> list[Pair]:
    """Parse a pairs file: header (``folds<TAB>n`` or ``n``), then n same and n different pairs per fold."""
    path = Path(path)
    try:
        lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    except OSError as err:
        raise UserError(f"LFW pairs file {path} cannot be read: {err.strerror or err}") from None
    try:
        header = [int(v) for v in lines[0]]
        folds, per_fold = (header[0], header[1]) if len(header) == 2 else (1, header[0])
        pairs = []
        for row_number, row in enumerate(lines[1:]):
            fold = row_number // (2 * per_fold)
            if len(row) == 3:
                pairs.append(Pair(row[0], int(row[1]), row[0], int(row[2]), True, fold))
            elif len(row) == 4:
                pairs.append(Pair(row[0], int(row[1]), row[2], int(row[3]), False, fold))
            else:
                raise ValueError(f"line {row_number + 2}")
    except (ValueError, IndexError) as err:
        raise UserError(f"LFW pairs file {path} is malformed ({err}): expected the standard format") from None
    if len(pairs) != folds * per_fold * 2:
        raise UserError(f"LFW pairs file {path}: header promises {folds * per_fold * 2} pairs, found {len(pairs)}")
    return pairs


def image_path(lfw_dir: str | Path, name: str, index: int) -> Path:
    return Path(lfw_dir) / name / f"{name}_{index:04d}.jpg"


def pair_paths(lfw_dir: str | Path, pair: Pair) -> tuple[Path, Path]:
    return image_path(lfw_dir, pair.name1, pair.index1), image_path(lfw_dir, pair.name2, pair.index2)


def people_in_pairs(path: str | Path) -> set[str]:
    """Everyone a pairs file mentions: the people to keep out of training for an honest test."""
    return {name for pair in read_pairs(path) for name in (pair.name1, pair.name2)}


def read_people_file(path: Path, flag: str = "--exclude-people") -> set[str]:
    """Names from an LFW pairs file (told by its header) or a plain list, one name a line (# comments).

    ``flag``: what the user gave the file as, for the error when it is missing."""
    if not path.is_file():
        raise UserError(f"{flag}: {path} not found")
    lines = [l.strip() for l in path.read_text(encoding="utf-8").splitlines()
             if l.strip() and not l.lstrip().startswith("#")]
    if lines and lines[0].replace("\t", " ").split()[0].isdigit():
        return people_in_pairs(path)
    return set(lines)


def ten_fold_accuracy(distances, same, folds) -> tuple[float, float]:
    """Mean and std of per-fold accuracy, each fold's threshold chosen on the other folds."""
    distances, same, folds = np.asarray(distances), np.asarray(same, bool), np.asarray(folds)
    accuracies = []
    for fold in np.unique(folds):
        test = folds == fold
        threshold = best_threshold(distances[~test], same[~test])
        accuracies.append(accuracy_at(distances[test], same[test], threshold))
    return float(np.mean(accuracies)), float(np.std(accuracies))


def devtest_accuracy(train_d, train_same, test_d, test_same) -> tuple[float, float]:
    """Accuracy on DevTest with the threshold chosen on DevTrain (View 1)."""
    threshold = best_threshold(train_d, train_same)
    return accuracy_at(test_d, test_same, threshold), threshold


def pair_distances(pairs: Sequence[Pair], lfw_dir: str | Path,
                   embed_paths: Callable[[list[Path]], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance per pair and a mask of pairs where both photos gave an embedding.

    Every distinct photo is embedded once.
    """
    unique = sorted({p for pair in pairs for p in pair_paths(lfw_dir, pair)})
    missing = [p for p in unique if not p.is_file()]
    if missing:
        raise UserError(f"LFW folder {lfw_dir} lacks {len(missing)} photos of the pairs (e.g. {missing[0]}): "
                        "pass --lfw-dir pointing at lfw/<Name>/<Name>_NNNN.jpg")
    embeddings, found = embed_paths(unique)
    index = {p: i for i, p in enumerate(unique)}
    first = np.array([index[pair_paths(lfw_dir, pair)[0]] for pair in pairs])
    second = np.array([index[pair_paths(lfw_dir, pair)[1]] for pair in pairs])
    distances = np.linalg.norm(embeddings[first] - embeddings[second], axis=1)
    return distances, found[first] & found[second]


def lfw_protocol(embed_paths: Callable[[list[Path]], tuple[np.ndarray, np.ndarray]],
                 pairs_dir: str | Path, lfw_dir: str | Path, target_far: float = 0.01,
                 transfer_threshold: float | None = None, curves: dict | None = None) -> dict:
    """LFW 10-fold accuracy on ``pairs.txt``, DevTrain -> DevTest accuracy, and a threshold at ``target_far``.

    ``transfer_threshold`` (chosen on held-out strangers) adds DevTest accuracy at that threshold.

    Pairs where a photo gave no embedding are counted in ``lfw_pairs_skipped`` and left out.
    ``curves``, when given, receives DevTest's ``(distances, same)`` for the ROC plot.
    """
    pairs_dir = Path(pairs_dir)
    for name in PAIRS_FILES:
        if not (pairs_dir / name).is_file():
            raise UserError(f"LFW pairs folder {pairs_dir} lacks {name}: expected {', '.join(PAIRS_FILES)}")
    results, skipped = {}, 0
    pairs = read_pairs(pairs_dir / "pairs.txt")
    distances, ok = pair_distances(pairs, lfw_dir, embed_paths)
    skipped += int((~ok).sum())
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    results["lfw_accuracy"], results["lfw_std"] = ten_fold_accuracy(distances[ok], same[ok], folds[ok])
    dev = {}
    for name in PAIRS_FILES[1:]:
        dev_pairs = read_pairs(pairs_dir / name)
        d, dev_ok = pair_distances(dev_pairs, lfw_dir, embed_paths)
        skipped += int((~dev_ok).sum())
        dev[name] = (d[dev_ok], np.array([p.same for p in dev_pairs])[dev_ok])
    accuracy, threshold = devtest_accuracy(*dev["pairsDevTrain.txt"], *dev["pairsDevTest.txt"])
    results["lfw_devtest_accuracy"], results["lfw_devtest_threshold"] = accuracy, threshold
    test_d, test_same = dev["pairsDevTest.txt"]
    if curves is not None:
        curves["LFW DevTest"] = (test_d, test_same)
    results["lfw_devtest_oracle_accuracy"] = accuracy_at(test_d, test_same, best_threshold(test_d, test_same))
    if transfer_threshold is not None:  # chosen on people never trained on: the honest number
        results["lfw_devtest_transfer_accuracy"] = accuracy_at(test_d, test_same, transfer_threshold)
        results["lfw_transfer_threshold"] = float(transfer_threshold)
    # The threshold a user gets: a stated false-accept rate on DevTrain's strangers, checked on DevTest.
    far_threshold, _, _ = threshold_at_far(*dev["pairsDevTrain.txt"], target_far)
    results["lfw_far_threshold"], results["lfw_target_far"] = far_threshold, target_far
    results["lfw_devtest_far"] = float(np.mean(test_d[~test_same] <= far_threshold))
    results["lfw_devtest_tar"] = float(np.mean(test_d[test_same] <= far_threshold))
    results["lfw_pairs_skipped"] = skipped
    log.info("LFW: 10-fold %.3f +- %.3f, DevTest %.3f (threshold %.3f from DevTrain), %d pairs skipped",
             results["lfw_accuracy"], results["lfw_std"], accuracy, threshold, skipped)
    return results
