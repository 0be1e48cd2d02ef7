"""The encoder shipped in models/ (SFace as imported, int8 weights) tells apart people it was never
trained on, and its encoder.json carries the open-set curve it was calibrated with.

Four LFW people of ``pairsDevTest.txt`` (kept out of every training and calibration), five photos each,
through the runtime's own path: Haar box -> YuNet landmarks -> ArcFace-template crop -> TFLite encoder.
"""
import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest

MODELS = Path(__file__).resolve().parent.parent / "models"
DATA = os.environ.get("FACES_DATA")
PEOPLE = ("Ann_Veneman", "Bill_McBride", "Condoleezza_Rice", "Gerry_Adams")  # all in DevTest
PHOTOS_EACH = 5

needs_model = pytest.mark.skipif(not (MODELS / "encoder.tflite").is_file(), reason="no shipped encoder in models/")
needs_data = pytest.mark.skipif(not DATA, reason="FACES_DATA not set: the LFW photos are not available")


@pytest.fixture(scope="module")
def info():
    return json.loads((MODELS / "encoder.json").read_text())


@pytest.fixture(scope="module")
def embeddings():
    from realtime.recognizer import Recognizer
    recognizer = Recognizer(MODELS)
    vectors, labels = [], []
    for person in PEOPLE:
        for path in sorted((Path(DATA) / "lfw" / person).glob("*.jpg"))[:PHOTOS_EACH]:
            boxes, emb = recognizer.faces(str(path))
            if len(emb):
                vectors.append(emb[int(np.argmax([w * h for _, _, w, h in boxes]))])
                labels.append(person)
    assert len(vectors) >= len(PEOPLE) * (PHOTOS_EACH - 1), "most of these faces should be found"
    return np.array(vectors), np.array(labels), recognizer


@needs_model
def test_encoder_json_describes_sface_and_its_curve_to_a_thousand_people(info):
    assert (info["backbone"], info["input_size"], info["embedding_size"]) == ("sface", 112, 128)
    assert info["quantize"] == "int8-weights" and info["normalized"] is True
    metrics = info["metrics"]
    curve = metrics["open_set"]
    sizes = [c["gallery_people"] for c in curve]
    assert sizes[0] == 1 and max(sizes) >= 1000 and sizes == sorted(sizes)
    thresholds = [c["threshold"] for c in curve]
    assert thresholds == sorted(thresholds, reverse=True)       # more people, more chances: tighter
    assert all(c["strangers_named"] <= info["target_far"] + 1e-9 for c in curve)
    design = next(c for c in curve if c["gallery_people"] == metrics["open_set_gallery_people"] == 100)
    assert info["threshold"] == design["threshold"] and design["correct_named"] >= 0.95
    assert metrics["lfw_devtest_transfer_accuracy"] >= 0.98 and metrics["threshold_source"].startswith("held-out")
    # Calibrated on people never trained on, who travel with the recipe for --init fine-tunes.
    assert info["calibration"]["people"] == "models/calibration-people.txt"
    assert metrics["calibration_people"] == 2300


@needs_model
def test_the_shipped_folder_stays_small():
    """SFace is rebuilt from its vendored ONNX file: no 40 MB .keras, and int8 weights in the .tflite."""
    assert not (MODELS / "encoder.keras").exists()
    assert (MODELS / "encoder.tflite").stat().st_size < 11_000_000


@needs_model
@needs_data
def test_unseen_people_are_far_closer_to_themselves_than_to_each_other(embeddings):
    vectors, labels, _ = embeddings
    same, different = [], []
    for i, j in itertools.combinations(range(len(labels)), 2):
        d = float(np.linalg.norm(vectors[i] - vectors[j]))
        (same if labels[i] == labels[j] else different).append(d)
    assert np.mean(same) < np.mean(different) - 0.4, (np.mean(same), np.mean(different))
    auc = np.mean([s < d for s in same for d in different])
    assert auc >= 0.98, auc                                            # chance: 0.5


@needs_model
@needs_data
def test_nearest_neighbour_names_every_unseen_face(embeddings):
    vectors, labels, _ = embeddings
    distances = np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    assert np.mean(labels[distances.argmin(1)] == labels) >= 0.95      # chance: 0.25


@needs_model
@needs_data
def test_shipped_thresholds_accept_same_pairs_and_no_different_ones(embeddings):
    """verify's one-person point separates pairs; the gallery's (design size) is tighter still."""
    vectors, labels, recognizer = embeddings
    pair, gallery = recognizer.thresholds.pair(), recognizer.thresholds.for_gallery(5)
    assert gallery < pair
    i, j = np.triu_indices(len(labels), 1)
    d = np.linalg.norm(vectors[i] - vectors[j], axis=1)
    same = labels[i] == labels[j]
    # The 1:1 point accepts 1% of stranger pairs at large: two of these four people come near it.
    assert np.mean(d[~same] <= pair) <= 0.1 and np.mean(d[same] <= pair) >= 0.95
    assert np.mean(d[~same] <= gallery) == 0.0 and np.mean(d[same] <= gallery) >= 0.9
