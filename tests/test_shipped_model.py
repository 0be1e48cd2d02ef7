"""The encoder shipped in models/ tells apart people it was never trained on.

Four LFW people of ``pairsDevTest.txt`` (kept out of the shipped encoder's training), a handful
of photos each, through the runtime's own path: Haar crop -> TFLite encoder.
"""
import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest

from realtime.recognizer import Recognizer

MODELS = Path(__file__).resolve().parent.parent / "models"
DATA = os.environ.get("FACES_DATA")
PEOPLE = ("Ann_Veneman", "Bill_McBride", "Condoleezza_Rice", "Gerry_Adams")  # all in DevTest
PHOTOS_EACH = 5

pytestmark = [
    pytest.mark.skipif(not DATA, reason="FACES_DATA not set: the LFW photos are not available"),
    pytest.mark.skipif(not (MODELS / "encoder.tflite").is_file(), reason="no shipped encoder in models/"),
]


@pytest.fixture(scope="module")
def embeddings():
    recognizer = Recognizer(MODELS)
    vectors, labels = [], []
    for person in PEOPLE:
        for path in sorted((Path(DATA) / "lfw" / person).glob("*.jpg"))[:PHOTOS_EACH]:
            boxes, found = recognizer.faces(path)
            if len(found):
                vectors.append(found[0])
                labels.append(person)
    assert len(vectors) >= len(PEOPLE) * (PHOTOS_EACH - 1), "most of these faces should be found"
    return np.stack(vectors), np.array(labels)


def test_unseen_people_are_closer_to_themselves_than_to_each_other(embeddings):
    vectors, labels = embeddings
    same, different = [], []
    for i, j in itertools.combinations(range(len(labels)), 2):
        d = float(np.linalg.norm(vectors[i] - vectors[j]))
        (same if labels[i] == labels[j] else different).append(d)
    # chance would put both means at the same place
    assert np.mean(same) < np.mean(different) - 0.15, (np.mean(same), np.mean(different))
    # AUC of same vs different pairs (chance: 0.5)
    auc = np.mean([s < d for s in same for d in different])
    assert auc >= 0.8, auc


def test_nearest_neighbour_names_unseen_people_well_above_chance(embeddings):
    vectors, labels = embeddings
    distances = np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    accuracy = np.mean(labels[distances.argmin(1)] == labels)
    assert accuracy >= 0.6, accuracy  # chance: 0.25


def test_shipped_thresholds_accept_more_same_than_different_pairs(embeddings):
    """verify's one-person threshold separates pairs; the gallery's (design size) accepts fewer strangers still."""
    from realtime.config import RecognitionConfig
    from realtime.thresholds import ThresholdPolicy
    vectors, labels = embeddings
    policy = ThresholdPolicy(json.loads((MODELS / "encoder.json").read_text()), RecognitionConfig())
    pair, gallery = policy.pair(), policy.for_gallery(5)
    assert gallery < pair
    i, j = np.triu_indices(len(labels), 1)
    d = np.linalg.norm(vectors[i] - vectors[j], axis=1)
    same = labels[i] == labels[j]
    true_accept, false_accept = np.mean(d[same] <= pair), np.mean(d[~same] <= pair)
    assert false_accept <= 0.1 and true_accept > false_accept + 0.2, (true_accept, false_accept)
    assert np.mean(d[~same] <= gallery) <= false_accept
