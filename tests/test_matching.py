"""realtime.matching: nearest sample / person mean / sample-or-mean, thresholds, ties, and the exact int8 prefilter."""
import numpy as np
import pytest

from realtime import matching
from realtime.int8_scores import Int8Scorer
from realtime.matching import Index, int8_candidates, match, nearest_rows


def unit(*v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def test_empty_gallery_gives_unknown_for_every_face():
    out = match(Index.empty(3), np.eye(3, dtype=np.float32)[:2], threshold=1.0)
    assert [(m.nearest, m.name) for m in out] == [(None, None), (None, None)]
    assert all(np.isinf(m.distance) for m in out)
    assert match(Index.empty(3), np.zeros((0, 3), np.float32), 1.0) == []


def test_nearest_sample_threshold_and_every_face_matched():
    emb = np.stack([unit(1, 0, 0), unit(1, 0.1, 0), unit(0, 1, 0)])
    index = Index.build(emb, [0, 0, 1], ["ann", "bob"])
    queries = np.stack([unit(1, 0.05, 0), unit(0, 1, 0.01), unit(0, 0, 1)])
    out = match(index, queries, threshold=0.5)
    assert [m.nearest for m in out] == ["ann", "bob", "ann"]  # a tie goes to the first sample
    assert out[0].name == "ann" and out[1].name == "bob"
    assert out[2].name is None and out[2].distance == pytest.approx(np.sqrt(2), abs=1e-4)
    expected = np.linalg.norm(emb - queries[0], axis=1).min()
    assert out[0].distance == pytest.approx(expected, abs=1e-5)


def test_threshold_is_inclusive_and_ties_are_deterministic():
    emb = np.stack([unit(1, 0), unit(-1, 0)])
    index = Index.build(emb, [0, 1], ["left", "right"])
    q = unit(0, 1)[None]  # equidistant from both
    first = match(index, q, threshold=float(np.sqrt(2)) + 1e-6)[0]
    assert first.nearest == "left" and first.name == "left"
    assert match(index, q, threshold=1.0)[0].name is None


def test_mean_mode_uses_each_persons_mean():
    emb = np.array([[0, 0], [4, 0], [2.5, 0]], np.float32)
    index = Index.build(emb, [0, 0, 1], ["a", "b"])  # a's mean is (2, 0)
    q = np.array([[1.9, 0]], np.float32)
    assert match(index, q, 10, "mean")[0].nearest == "a"
    assert match(index, q, 10, "nearest")[0].nearest == "b"


def test_sample_or_mean_matches_a_face_between_a_persons_samples_by_their_centre():
    # a's two photos lie either side of the probe; b has one photo a little nearer than either.
    a1, a2, b = unit(1, 1, 0), unit(1, -1, 0), unit(1, 0, 0.55)
    index = Index.build(np.stack([a1, a2, b]), [0, 0, 1], ["a", "b"])
    probe = unit(1, 0, 0)[None]
    (by_sample,) = match(index, probe, 0.6, "nearest")
    (either,) = match(index, probe, 0.6, "sample-or-mean")
    assert by_sample.nearest == "b" and by_sample.name == "b"
    # a's mean direction is (1, 0, 0) itself: distance 0, and a wins.
    assert either.nearest == "a" and either.name == "a" and either.distance == pytest.approx(0.0, abs=1e-6)


def test_sample_or_mean_is_the_smaller_of_the_two_searches():
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(60, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = np.repeat(np.arange(12), 5)
    index = Index.build(emb, labels, [f"p{i}" for i in range(12)])
    queries = rng.normal(size=(40, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    centres = np.stack([emb[labels == i].mean(0) for i in range(12)])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    for q, got, by_sample in zip(queries, match(index, queries, 0.9, "sample-or-mean"), match(index, queries, 0.9)):
        to_centre = np.linalg.norm(centres - q, axis=1)
        assert got.distance == pytest.approx(min(by_sample.distance, to_centre.min()), abs=1e-5)
        assert got.distance <= by_sample.distance + 1e-6
        assert (got.name is None) == (got.distance > 0.9)


def test_sample_or_mean_keeps_the_samples_length_for_unnormalised_embeddings():
    # The seed-triplet encoders' embeddings are not unit length: the centre stays at their length.
    index = Index.build(np.array([[3, 1], [3, -1]], np.float32), [0, 0], ["a"])
    (m,) = match(index, np.array([[np.sqrt(10), 0]], np.float32), 1.0, "sample-or-mean")
    assert m.name == "a" and m.distance == pytest.approx(0.0, abs=1e-5)


def test_matching_100k_samples_is_vectorised(monkeypatch):
    """All the frame's faces against all 100,000 samples in one matrix product, with the exact answer."""
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(100_000, 128)).astype(np.float32)
    labels = rng.integers(0, 100, 100_000)
    queries = emb[[5, 77, 90_000]] + 0.01 * rng.normal(size=(3, 128)).astype(np.float32)
    scans = []
    real_scan = matching._scan
    monkeypatch.setattr(matching, "_scan", lambda q, refs, sq: scans.append((q.shape, refs.shape)) or real_scan(q, refs, sq))
    index = Index.build(emb, labels, [f"p{i}" for i in range(100)], int8_min_rows=10**9)   # the plain float32 path
    out = match(index, queries, threshold=0.5)
    assert scans == [((3, 128), (100_000, 128))]       # one product for every face and sample, no loop
    for q, m in zip(queries, out):                       # ... and the brute-force answer
        d = np.linalg.norm(emb - q, axis=1)
        assert m.nearest == f"p{labels[d.argmin()]}" and m.distance == pytest.approx(d.min(), abs=1e-4)




def _faces_like(rng, people: int, per_person: int, dim: int = 128, spread: float = 0.35) -> np.ndarray:
    """Unit vectors in tight clusters, one per person, as an encoder's embeddings are."""
    centres = rng.normal(size=(people, dim))
    rows = np.repeat(centres, per_person, axis=0) + spread * rng.normal(size=(people * per_person, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_int8_search_answers_exactly_as_the_float32_search(kind):
    rng = np.random.default_rng(1)
    if kind == "random":
        refs = rng.normal(size=(6000, 128)).astype(np.float32)
        refs /= np.linalg.norm(refs, axis=1, keepdims=True)
    else:
        refs = _faces_like(rng, 600, 10)
    sq = np.einsum("ij,ij->i", refs, refs)
    scorer = Int8Scorer(refs, sq)
    near = refs[rng.integers(0, len(refs), 40)] + 0.2 * rng.normal(size=(40, 128)).astype(np.float32)
    strangers = rng.normal(size=(20, 128)).astype(np.float32)
    queries = np.vstack([near, strangers])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    for batch in (queries[:1], queries[:3], queries):
        fast_rows, fast_dist = nearest_rows(batch, refs, sq, scorer)
        exact_rows, exact_dist = nearest_rows(batch, refs, sq)
        assert fast_rows.tolist() == exact_rows.tolist()
        assert fast_dist.tolist() == exact_dist.tolist()


def test_int8_scores_stay_within_their_proven_bound():
    rng = np.random.default_rng(2)
    refs = _faces_like(rng, 300, 10)
    sq = np.einsum("ij,ij->i", refs, refs)
    scorer = Int8Scorer(refs, sq)
    queries = _faces_like(rng, 5, 1)
    exact = sq[None, :] - 2.0 * queries @ refs.T
    approx = scorer.scores(queries)
    slack = np.abs(approx - exact).max(axis=1)
    assert (slack <= scorer.bound(queries)).all()
    assert (slack > 0).any()                       # int8 really is approximate: the bound matters
    assert np.abs(approx - scorer.reference_scores(queries)).max() <= scorer.bound(queries).max()


def test_int8_candidates_keep_every_possible_winner():
    approx = np.array([0.50, 0.30, 0.32, 0.41, 0.30], np.float32)
    assert int8_candidates(approx, 0.01).tolist() == [1, 2, 4]   # 0.30 + 2 x 0.01 = 0.32 kept
    assert int8_candidates(approx, 0.0).tolist() == [1, 4]


def test_int8_index_for_large_galleries_keeps_ties_and_near_copies_exact():
    rng = np.random.default_rng(3)
    base = unit(*rng.normal(size=16))
    # rows so close that int8 rounding cannot tell them apart: the bound rules out too few
    refs = (base + 0.01 * rng.normal(size=(2000, 16))).astype(np.float32)
    refs[1500] = refs[700]                              # an exact tie: the first row wins
    index = Index.build(refs, np.arange(2000) % 7, [f"p{i}" for i in range(7)], int8_min_rows=1000)
    assert index.int8 is not None and Index.build(refs[:10], [0] * 10, ["a"]).int8 is None
    queries = np.vstack([refs[700], refs[3] + 1e-3])
    in_play = int8_candidates(index.int8.scores(queries[:1])[0], float(index.int8.bound(queries[:1])[0]))
    assert len(in_play) > 0.25 * len(refs)              # so the one-pass float32 fallback runs
    got = match(index, queries, 1.0)
    exact = match(Index.build(refs, np.arange(2000) % 7, [f"p{i}" for i in range(7)], int8_min_rows=10**9),
                  queries, 1.0)
    assert got == exact and got[0].nearest == "p0"     # row 700, not its copy at 1500 (p2)
