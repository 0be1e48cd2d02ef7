"""The plots of a training or evaluation run: history, ROC and PCA (matplotlib Agg, no display).

Each quantity gets its own labelled axis: a loss is not a distance, and the finishing phase's
batch-hard loss is not the main phase's semi-hard one, so they never share an axis.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from realtime.outputs import atomic_path
from training import metrics

# History keys by quantity: (panel title, y-axis label, keys drawn on it).
QUANTITIES = (
    ("loss", "loss (training batches)", ("loss",)),
    ("accuracy", "softmax accuracy (training batches)", ("accuracy",)),
    ("active triplets", "share of triplets with loss > 0", ("active",)),
    ("mean distances", "Euclidean distance", ("pos_dist", "neg_dist")),
)
# Training phases by history key prefix, in the order they run.
PHASES = (("warm_", "warm start (classifier)"), ("", "main phase"), ("finish_", "finishing phase"))
VALIDATION_KEY = "val_auc"     # training.callbacks.PairAUC
# What the evaluation's pair sets are, said in words on the ROC's legend.
SET_NAMES = {"val x (val + train)": "val photos paired with each other and with the train photos"}


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _phases(history: dict) -> list[tuple[str, str, int]]:
    """``(prefix, title, epochs)`` of each phase present in ``history``."""
    out = []
    for prefix, title in PHASES:
        lengths = [len(v) for k, v in history.items() if k.startswith(prefix)
                   and not any(k.startswith(p) for p, _ in PHASES if p and p != prefix)]
        if prefix == "" and not history.get("loss"):
            continue
        if lengths:
            out.append((prefix, title, max(lengths)))
    return out


def plot_history(history: dict, path: Path) -> None:
    """One row per training phase, one panel per quantity, and the validation AUC across all epochs.

    Rows with fewer panels get wider ones (the grid's columns are shared out), so no cell is left empty."""
    plt = _pyplot()
    phases = _phases(history)
    rows = [(prefix, title, [(name, label, [k for k in keys if f"{prefix}{k}" in history])
                             for name, label, keys in QUANTITIES])
            for prefix, title, _ in phases]
    rows = [(prefix, title, [q for q in qs if q[2]]) for prefix, title, qs in rows]
    rows = [row for row in rows if row[2]]
    has_val = any(f"{prefix}{VALIDATION_KEY}" in history for prefix, _, _ in phases)
    counts = [len(qs) for _, _, qs in rows] + ([1] if has_val else [])
    if not counts:
        counts = [1]
    widest = max(counts)
    columns = int(np.lcm.reduce(counts))
    fig = plt.figure(figsize=(4.2 * widest, 3.2 * len(counts)))
    grid = fig.add_gridspec(len(counts), columns)
    for r, (prefix, title, qs) in enumerate(rows):
        span = columns // len(qs)
        for c, (name, label, keys) in enumerate(qs):
            ax = fig.add_subplot(grid[r, c * span:(c + 1) * span])
            _plot_quantity(ax, history, prefix, title, name, label, keys)
    if has_val:
        _plot_validation(history, phases, fig.add_subplot(grid[len(rows), :]))
    elif not rows:
        fig.add_subplot(grid[0, 0]).set_title("no training history recorded", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_quantity(ax, history: dict, prefix: str, title: str, name: str, label: str, keys: list) -> None:
    from matplotlib.ticker import MaxNLocator
    for key in keys:
        values = history[f"{prefix}{key}"]
        ax.plot(range(1, len(values) + 1), values, marker=".", label=key)
    ax.set_title(f"{title}: {name}", fontsize=10)
    ax.set_xlabel("epoch of this phase")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(label)
    if len(keys) > 1:
        ax.legend(fontsize=8)


def _plot_validation(history: dict, phases: list, ax) -> None:
    """Held-out pairs' ROC AUC over every epoch of every phase, the phase starts marked."""
    from matplotlib.ticker import MaxNLocator
    start = 0
    for prefix, title, epochs in phases:
        values = history.get(f"{prefix}{VALIDATION_KEY}", [])
        if values:
            ax.plot(range(start + 1, start + len(values) + 1), values, marker=".", label=title)
        if start:
            ax.axvline(start + 0.5, color="gray", ls=":", lw=1)
        start += epochs
    ax.set_title("validation: held-out faces, all pairs", fontsize=10)
    ax.set_xlabel("epoch (all phases)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("ROC AUC")
    ax.legend(fontsize=8)


def plot_roc(curves: dict, threshold: float, path: Path, source: str | None = None) -> None:
    """Each set's ROC on a log false-accept axis, with the operating ``threshold`` marked on it as a dot.

    ``curves`` maps a set's name to its pairs' ``(distances, same)``. ``source`` says in the legend
    where the threshold came from (the report's ``threshold_source``). No line is drawn at the
    training's target rate: that is a rate of strangers named against a whole gallery, so the
    threshold sits far left of it on this per-pair axis, and a line there read as the operating point.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    smallest = 1.0
    for name, (distances, same) in curves.items():
        distances, same = np.asarray(distances), np.asarray(same, bool)
        negatives = max(int((~same).sum()), 1)
        smallest = min(smallest, 1.0 / negatives)
        far, tar, _ = metrics.roc_points(distances, same)
        shown = far > 0
        line, = ax.plot(far[shown], tar[shown], label=f"{SET_NAMES.get(name, name)}: AUC "
                                                      f"{metrics.roc_auc(distances, same):.3f} ({len(distances):,} pairs)")
        at_far = float(np.mean(distances[~same] <= threshold)) if (~same).any() else 0.0
        at_tar = float(np.mean(distances[same] <= threshold)) if same.any() else 0.0
        ax.plot([max(at_far, 1.0 / negatives)], [at_tar], "o", color=line.get_color(), ms=7,
                label=f"  at threshold {threshold:.3f}: FAR {at_far:.4f}, TAR {at_tar:.3f}")
    if source:
        ax.plot([], [], ls="", label=f"threshold {threshold:.3f}, from {source}")
    ax.set_xscale("log")
    ax.set_xlim(smallest, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false accept rate (strangers accepted), log scale")
    ax.set_ylabel("true accept rate (same person accepted)")
    ax.set_title("Verification ROC (Euclidean distance <= threshold: same person)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13))   # below: never over a curve
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def plot_pca(embeddings: dict, path: Path, max_people: int = 20) -> None:
    """2-D PCA of the embeddings by set (marker) and person (colour); legends outside the axes."""
    plt = _pyplot()
    from matplotlib.lines import Line2D
    all_emb = np.concatenate([e for e, _ in embeddings.values()])
    mean = all_emb.mean(0)
    _, _, vt = np.linalg.svd(all_emb - mean, full_matrices=False)
    people = sorted(set(np.concatenate([l for _, l in embeddings.values()]).tolist()))[:max_people]
    colors = plt.get_cmap("tab10" if len(people) <= 10 else "tab20")
    markers = dict(zip(embeddings, ("o", "x", "^", "s")))
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for split, (emb, labels) in embeddings.items():
        xy = (emb - mean) @ vt[:2].T
        for k, person in enumerate(people):
            m = labels == person
            ax.scatter(xy[m, 0], xy[m, 1], marker=markers[split], color=colors(k % 20), s=22)
    person_handles = [Line2D([], [], ls="", marker="s", color=colors(k % 20), label=str(p))
                      for k, p in enumerate(people)]
    split_handles = [Line2D([], [], ls="", marker=markers[s], color="black", label=s) for s in embeddings]
    first = ax.legend(handles=person_handles, title="person", fontsize=8, title_fontsize=9,
                      loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.add_artist(first)
    second = ax.legend(handles=split_handles, title="set", fontsize=8, title_fontsize=9,
              loc="lower left", bbox_to_anchor=(1.02, 0.0))
    ax.set_xlabel("first principal component")
    ax.set_ylabel("second principal component")
    title = "PCA of the embeddings"
    if len(people) < len(set(np.concatenate([l for _, l in embeddings.values()]).tolist())):
        title += f" (first {max_people} people)"
    ax.set_title(title, fontsize=10)
    # "tight" grows the image to hold the legends outside the axes
    fig.savefig(path, dpi=100, bbox_inches="tight", bbox_extra_artists=[first, second])
    plt.close(fig)


def write_plots(out_dir: Path, curves: dict, report: dict, embeddings: dict, history: dict | None) -> None:
    """pca.png, roc.png and (after training) history.png, each written to a temp file and renamed."""
    with atomic_path(out_dir / "pca.png", "plot") as tmp:
        plot_pca(embeddings, tmp)
    with atomic_path(out_dir / "roc.png", "plot") as tmp:
        plot_roc(curves, report["threshold"], tmp, report.get("threshold_source"))
    if history:
        with atomic_path(out_dir / "history.png", "plot") as tmp:
            plot_history(history, tmp)
