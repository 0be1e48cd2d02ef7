"""A threshold that protects a gallery, not a pair: open-set identification on held-out people.

A threshold that accepts 1% of stranger *pairs* lets a stranger through far more often against
a gallery: each enrolled person is another chance to fall under it. So the held-out people
(never trained on) are split in two: one half is enrolled (a few photos each, as a user would),
the other half are strangers. For a gallery of N people (drawn at random, many times) a
stranger's photo gets a name when its nearest gallery sample lies within the threshold; the
threshold is the largest that names at most ``target`` of the strangers' photos. At that
threshold the enrolled people's other photos are named right at ``correct_named``.

Galleries larger than the enrolled half (up to 1,000 people and more) are filled with people who
have a single photo: half of the one-photo people are enrolled from it (no photo is left to ask
with), the other half are strangers. Such a filler is one sample, one chance for a stranger,
where a person enrolled from 3 photos is a few correlated chances: the large-gallery points lean
a little loose, which the curve records (``filler_people``).

Pure numpy on embeddings; matching is ``realtime.matching``'s, the one the live program runs.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from realtime.matching import Index, match

GALLERY_SIZES = (1, 5, 10, 20, 50, 100, 200, 500, 1000)
ENROLL_PHOTOS = 3      # samples per enrolled person (the live e key takes 5 frames; photos are fewer)
DRAWS = 20             # random galleries per size


def split_people(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of (enrolled people's photos, strangers' photos): half the people each."""
    people = np.array(sorted(set(labels.tolist())))
    order = np.random.default_rng(seed).permutation(len(people))
    enrolled = set(people[order[: len(people) // 2]].tolist())
    mask = np.array([label in enrolled for label in labels.tolist()])
    return mask, ~mask


def split_calibration(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks of (enrolled people, gallery fillers, strangers): people with two or more photos
    split as :func:`split_people` does, people with one photo half fillers and half strangers."""
    labels = np.asarray(labels)
    names, counts = np.unique(labels, return_counts=True)
    several = np.isin(labels, names[counts >= 2])
    enrolled = np.zeros(len(labels), bool)
    if several.any():
        enrolled[several] = split_people(labels[several], seed)[0]
    fillers = np.zeros(len(labels), bool)
    if (~several).any():
        fillers[~several] = split_people(labels[~several], seed + 1)[0]
    return enrolled, fillers, ~(enrolled | fillers)


def enrolment(labels: np.ndarray, photos: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of (enrolment samples: up to ``photos`` per person, probes: the rest)."""
    rng = np.random.default_rng(seed)
    samples = np.zeros(len(labels), bool)
    for person in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == person)
        keep = min(photos, len(idx) - 1) if len(idx) > 1 else 1   # leave a probe where there is one
        samples[rng.choice(idx, size=keep, replace=False)] = True
    return samples, ~samples


def open_set_curve(embeddings: np.ndarray, labels: np.ndarray, target: float = 0.01,
                   sizes: tuple[int, ...] = GALLERY_SIZES, photos: int = ENROLL_PHOTOS,
                   draws: int = DRAWS, seed: int = 0, mode: str = "nearest") -> list[dict]:
    """Per gallery size: the threshold naming at most ``target`` of strangers' photos, and what it does.

    ``mode`` is ``recognition.match``: a stranger against each sample, or against each person's mean."""
    return open_set_curves(embeddings, labels, (target,), sizes, photos, draws, seed, mode)[0]


def open_set_curves(embeddings: np.ndarray, labels: np.ndarray, targets: Sequence[float],
                    sizes: tuple[int, ...] = GALLERY_SIZES, photos: int = ENROLL_PHOTOS,
                    draws: int = DRAWS, seed: int = 0, mode: str = "nearest") -> list[list[dict]]:
    """:func:`open_set_curve` for each of ``targets``, one curve each, from one set of galleries:
    the draws and matches are made once and every target's threshold is read off the same distances."""
    labels = np.asarray(labels)
    enrolled_mask, filler_mask, stranger_mask = split_calibration(labels, seed)
    e_emb, e_lab = embeddings[enrolled_mask], labels[enrolled_mask]
    f_emb, f_lab = embeddings[filler_mask], labels[filler_mask]
    strangers = embeddings[stranger_mask]
    samples, probes = enrolment(e_lab, photos, seed)
    people = np.array(sorted(set(e_lab.tolist())))
    rng = np.random.default_rng(seed + 1)
    curves: list[list[dict]] = [[] for _ in targets]
    for size in sizes:
        if size > len(people) + len(f_lab) or not len(strangers) or not len(people):
            break
        stranger_d, genuine = [], []
        fillers = max(0, size - len(people))
        for _ in range(draws):
            chosen = rng.choice(people, size=size - fillers, replace=False)
            in_gallery = samples & np.isin(e_lab, chosen)
            rows = list(zip(e_lab[in_gallery].tolist(), e_emb[in_gallery]))
            if fillers:
                extra = rng.choice(len(f_lab), size=fillers, replace=False)
                rows += list(zip(f_lab[extra].tolist(), f_emb[extra]))
            index = Index.from_rows(rows)
            stranger_d.append([m.distance for m in match(index, strangers, np.inf, mode)])
            asked = probes & np.isin(e_lab, chosen)
            genuine += [(m.nearest == truth, m.distance)
                        for m, truth in zip(match(index, e_emb[asked], np.inf, mode), e_lab[asked].tolist())]
        d = np.sort(np.concatenate(stranger_d))
        for target, curve in zip(targets, curves):
            # The largest threshold with at most ``target`` of strangers' photos at or under it.
            allowed = int(np.floor(target * len(d)))
            threshold = float(d[allowed] - 1e-6) if allowed < len(d) else float(d[-1])
            right = np.array([ok and dist <= threshold for ok, dist in genuine]) if genuine else np.zeros(0)
            curve.append({"gallery_people": int(size), "filler_people": int(fillers), "threshold": threshold,
                          "strangers_named": float((d <= threshold).mean()),
                          "correct_named": float(right.mean()) if len(right) else None,
                          "stranger_probes": int(len(d) // draws), "enrolled_probes": int(len(genuine) // draws)})
    return curves


def design_threshold(curve: list[dict], people: int) -> dict | None:
    """The curve's entry for a gallery of ``people`` (the smallest size at least that, else the largest)."""
    if not curve:
        return None
    fits = [c for c in curve if c["gallery_people"] >= people]
    return fits[0] if fits else curve[-1]


def safe_threshold(distances: np.ndarray, same: np.ndarray, target: float, people: int,
                   cap: float | None = None) -> float:
    """A threshold for an encoder nobody could calibrate on strangers: never a loose one.

    ``distances``/``same``: pairs of people it was trained on (val pairs). Training pushed those
    people apart, so a threshold at ``target`` of their different-person pairs is far too loose for
    strangers (celebrity5 alone gave 1.087, and every shared clip a name; SFace puts five celebrities
    farther apart than strangers come to a 100-person gallery). So the threshold is the tightest of:
    ``target`` / ``people`` of those pairs (each of a ``people``-person gallery is one more chance),
    the median distance between photos of one of those trained people (strangers are farther than
    that), and ``cap`` (the calibrated threshold of the model it was fine-tuned from). It rejects
    many photos of enrolled people; a calibration on strangers is what gives a useful one.
    """
    d, same = np.asarray(distances, np.float64), np.asarray(same, bool)
    candidates = [] if cap is None else [float(cap)]
    different = np.sort(d[~same])
    if len(different):
        allowed = int(np.floor(target / max(people, 1) * len(different)))
        candidates.append(float(different[allowed] - 1e-6) if allowed < len(different) else float(different[-1]))
    if same.any():
        candidates.append(float(np.median(d[same])))
    if not candidates:
        raise ValueError("no pairs to choose a threshold from")
    return min(candidates)
