"""training.plots on small synthetic inputs: each plot is written, non-empty, a PNG, and drawn
with the axes its quantities need (checked on the matplotlib figure, not by eye)."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")
from training import plots  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


def synthetic_pairs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n // 4), 4)
    emb = rng.normal(size=(len(labels), 8)) * 0.4 + np.eye(8)[labels % 8] * 2
    from training.metrics import all_pairs
    return all_pairs(emb, labels)


def captured_figures(monkeypatch):
    """The figures the plot functions build (matplotlib's own objects, closed after saving)."""
    import matplotlib.pyplot as plt
    figures = []
    real = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig) or real(fig))
    return figures


HISTORY = {"loss": [0.3, 0.25, 0.2], "active": [0.9, 0.7, 0.5], "pos_dist": [1.0, 0.8, 0.7],
           "neg_dist": [1.2, 1.3, 1.35], "val_auc": [0.7, 0.8, 0.85],
           "finish_loss": [0.5, 0.45], "finish_active": [1.0, 0.95], "finish_pos_dist": [0.7, 0.68],
           "finish_neg_dist": [1.35, 1.4], "finish_val_auc": [0.86, 0.87]}


def test_history_gives_each_quantity_and_phase_its_own_labelled_axis(tmp_path, monkeypatch):
    figures = captured_figures(monkeypatch)
    plots.plot_history(HISTORY, tmp_path / "history.png")
    assert is_png(tmp_path / "history.png")
    axes = figures[0].axes
    assert all(ax.get_visible() and ax.axison and ax.has_data() for ax in axes)   # no empty panel
    titles = [ax.get_title() for ax in axes]
    # main and finishing losses on separate axes; active share and distances apart; a validation panel
    assert "main phase: loss" in titles and "finishing phase: loss" in titles
    assert "main phase: active triplets" in titles and "main phase: mean distances" in titles
    validation = [ax for ax in axes if ax.get_title().startswith("validation")]
    assert len(validation) == 1 and validation[0].get_ylabel() == "ROC AUC"
    assert all(ax.get_ylabel() for ax in axes)
    # the validation curve runs over all five epochs, the finishing ones after the main ones
    xs = np.concatenate([line.get_xdata() for line in validation[0].get_lines() if line.get_marker() == "."])
    assert sorted(xs.tolist()) == [1, 2, 3, 4, 5]


def test_history_without_validation_or_finish(tmp_path):
    plots.plot_history({"loss": [1.6, 1.2], "accuracy": [0.3, 0.6]}, tmp_path / "h.png")
    assert is_png(tmp_path / "h.png")


def test_history_of_one_phase_and_validation_leaves_no_panel_empty(tmp_path, monkeypatch):
    """The shipped encoder's history (loss, active triplets, validation) drew a blank fourth panel."""
    figures = captured_figures(monkeypatch)
    plots.plot_history({"loss": [1.0, 0.8, 0.6], "active": [0.8, 0.5, 0.3], "val_auc": [0.8, 0.9, 0.95]},
                       tmp_path / "h.png")
    axes = figures[0].axes
    assert len(axes) == 3 and all(ax.axison and ax.has_data() for ax in axes)
    validation = next(ax for ax in axes if ax.get_title().startswith("validation"))
    top = [ax for ax in axes if ax is not validation]
    left, right = validation.get_position().x0, validation.get_position().x1
    assert left <= min(ax.get_position().x0 for ax in top) + 0.01      # the validation panel spans the row
    assert right >= max(ax.get_position().x1 for ax in top) - 0.01


def test_roc_log_axis_and_threshold_marked(tmp_path, monkeypatch):
    figures = captured_figures(monkeypatch)
    curves = {"held-out strangers": synthetic_pairs(), "LFW DevTest": synthetic_pairs(seed=1),
              "val x (val + train)": synthetic_pairs(seed=2)}
    source = "held-out people, open set: a gallery of 100 people names at most 1% of strangers' photos"
    plots.plot_roc(curves, threshold=1.5, path=tmp_path / "roc.png", source=source)
    assert is_png(tmp_path / "roc.png")
    ax = figures[0].axes[0]
    assert ax.get_xscale() == "log" and "false accept" in ax.get_xlabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(l.startswith("held-out strangers: AUC") for l in labels)
    assert any(l.startswith("LFW DevTest: AUC") for l in labels)
    assert sum("at threshold 1.500" in l for l in labels) == 3      # the operating point on each curve
    assert any(l.startswith("val photos paired with each other and with the train photos: AUC") for l in labels)
    assert not any("x (val + train)" in l or "target FAR" in l for l in labels)   # no cryptic name, no target line
    assert f"threshold 1.500, from {source}" in labels                  # where the threshold came from, in words
    assert not any(line.get_linestyle() == "--" for line in ax.get_lines())


def test_pca_legend_names_people_and_sets(tmp_path, monkeypatch):
    figures = captured_figures(monkeypatch)
    rng = np.random.default_rng(0)
    names = np.array(["ada", "bob", "cy"])
    embeddings = {"train": (rng.normal(size=(12, 16)), names[np.arange(12) % 3]),
                  "val": (rng.normal(size=(6, 16)), names[np.arange(6) % 3])}
    plots.plot_pca(embeddings, tmp_path / "pca.png")
    assert is_png(tmp_path / "pca.png")
    ax = figures[0].axes[0]
    legends = [c for c in ax.get_children() if c.__class__.__name__ == "Legend"]
    texts = {t.get_text() for legend in legends for t in legend.get_texts()}
    assert {"ada", "bob", "cy", "train", "val"} <= texts


def test_write_plots_writes_all_three(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.array(["a", "b"] * 5)
    plots.write_plots(tmp_path, {"val": synthetic_pairs()}, {"threshold": 1.2, "target_far": 0.01},
                      {"train": (rng.normal(size=(10, 4)), labels)}, HISTORY)
    for name in ("pca.png", "roc.png", "history.png"):
        assert is_png(tmp_path / name), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.png", "pca.png", "roc.png"]   # no temp files left
