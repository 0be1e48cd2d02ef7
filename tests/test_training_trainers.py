"""training.trainers: each model's train_step minimises its loss and logs what that step computed."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from training import losses  # noqa: E402
from training.model import build_encoder  # noqa: E402
from training.trainers import DistillTrainer, SeedTripletTrainer, TripletTrainer  # noqa: E402

LABELS = np.repeat(np.arange(3), 4).astype(np.int32)


def images(n=12, seed=0):
    return np.random.default_rng(seed).random((n, 16, 16, 3)).astype("float32")


def encoder(seed=3, **kwargs):
    keras.utils.set_random_seed(seed)
    return build_encoder(16, 8, **kwargs)


def one_step(trainer, x, y=None) -> dict:
    """One batch at learning rate 0 (the weights stay put): what the step logged."""
    trainer.compile(keras.optimizers.SGD(0.0))
    fitted = trainer.fit(x, y, batch_size=len(x[0]) if isinstance(x, tuple) else len(x), epochs=1, shuffle=False,
                         verbose=0)
    return {k: v[0] for k, v in fitted.history.items()}


@pytest.mark.parametrize("mining", ["semi-hard", "batch-hard"])
def test_the_triplet_trainer_logs_the_loss_and_metrics_of_the_batch_it_mined(mining):
    network, x = encoder(), images()
    logged = one_step(TripletTrainer(network, 0.2, mining), x, LABELS)
    embeddings = network(x, training=True)       # the step's own embeddings (batch statistics)
    loss, active = losses.triplet_loss_and_active(LABELS, embeddings, 0.2, mining)
    assert sorted(logged) == ["active", "loss", "neg_dist", "pos_dist"]      # the keys training.plots reads
    assert 0.0 < float(active) and logged["active"] == pytest.approx(float(active), abs=1e-6)
    assert logged["loss"] == pytest.approx(float(loss), abs=1e-6)
    assert logged["pos_dist"] == pytest.approx(float(losses.mean_positive_distance(LABELS, embeddings)), abs=1e-5)
    assert logged["neg_dist"] == pytest.approx(float(losses.mean_negative_distance(LABELS, embeddings)), abs=1e-5)


def test_the_triplet_trainer_trains_its_network_and_only_it():
    network, x = encoder(), images()
    trainer = TripletTrainer(network, 0.2, "batch-hard")
    assert {id(w) for w in trainer.trainable_weights} == {id(w) for w in network.trainable_weights}
    before = [keras.ops.convert_to_numpy(w) for w in network.trainable_weights]
    trainer.compile(keras.optimizers.Adam(0.01))
    history = trainer.fit(x, LABELS, batch_size=12, epochs=8, shuffle=False, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert all(not np.allclose(a, keras.ops.convert_to_numpy(b)) for a, b in zip(before, network.trainable_weights))


def test_the_distill_trainer_adds_the_triplet_term_only_when_weighted():
    network, x = encoder(), images()
    teacher = losses.unit(np.random.default_rng(1).normal(size=(12, 8))).numpy()
    plain = one_step(DistillTrainer(network, 1.0, 0.5, 0.0, 0.2), x, (LABELS, teacher))
    both = one_step(DistillTrainer(network, 1.0, 0.5, 2.0, 0.2), x, (LABELS, teacher))
    embeddings = network(x, training=True)
    cosine, relation = losses.distillation_terms(embeddings, teacher)
    triplet, active = losses.triplet_loss_and_active(LABELS, embeddings, 0.2, "semi-hard")
    assert sorted(plain) == ["cosine", "loss", "relation"]
    assert sorted(both) == ["active", "cosine", "loss", "relation", "triplet"]
    assert plain["cosine"] == pytest.approx(float(cosine), abs=1e-6)
    assert plain["relation"] == pytest.approx(float(relation), abs=1e-6)
    assert plain["loss"] == pytest.approx(float(cosine) + 0.5 * float(relation), abs=1e-6)
    assert both["triplet"] == pytest.approx(float(triplet), abs=1e-6) and float(triplet) > 0.0
    assert both["active"] == pytest.approx(float(active), abs=1e-6)
    assert both["loss"] - plain["loss"] == pytest.approx(2.0 * float(triplet), abs=1e-5)


def test_the_seed_triplet_trainer_sums_the_hinge_of_its_fixed_triplets():
    network = encoder(normalize=False, batch_norm=False)
    a, p, n = images(6, 1), images(6, 2), images(6, 3)
    logged = one_step(SeedTripletTrainer(network, 0.5), (a, p, n))
    loss, active = losses.seed_triplet_terms(network(a), network(p), network(n), 0.5)
    assert sorted(logged) == ["active", "loss"]
    assert logged["loss"] == pytest.approx(float(loss), rel=1e-5) and logged["active"] == pytest.approx(float(active))
    assert np.asarray(SeedTripletTrainer(network, 0.5)((a, p, n))).shape == (6, 24)   # the three, side by side
