"""Pictures of a training run with matplotlib (train.py --plots DIR); without matplotlib, a message instead."""

import io
from pathlib import Path

import numpy as np

from ..course.files import write_atomic
from .analysis import operation_of, position_names


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    return plt


def attention_figure(plt, impl, model, example):
    """One figure: every layer (rows) and head (columns) of one example's attention weights."""
    tokens = np.array([example[0]], dtype=np.int64)
    model.forward(tokens, tokens != impl.PAD_TOKEN)
    names = position_names(example[0], impl)
    layers = [np.asarray(block.attention.last_attention_weights)[0] for block in model.blocks]  # (H, T, T) each
    heads = layers[0].shape[0]
    figure, axes = plt.subplots(len(layers), heads, figsize=(2.6 * heads, 2.6 * len(layers)), squeeze=False)
    for layer, weights in enumerate(layers):
        for head in range(heads):
            ax = axes[layer][head]
            ax.imshow(weights[head], vmin=0, vmax=1, cmap="viridis")
            ax.set_xticks(range(len(names)), names, fontsize=7)
            ax.set_yticks(range(len(names)), names, fontsize=7)
            ax.set_title(f"layer {layer + 1}, head {head}", fontsize=8)
    figure.suptitle(f"{' '.join(names)}  ->  {impl.detokenize([int(example[1])])}")
    figure.tight_layout()
    return figure


def _save(plt, figure, path, written):
    """figure as a PNG at path, written whole or not at all (a Ctrl-C never leaves half a picture)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    write_atomic(path, buffer.getvalue())
    written.append(path)


def save_all(folder, impl, model, metrics, steps, history, test_set, written=None, attention=True):
    """Write curves.png, confusion.png and attention_<Op>.png into folder; return lines saying what was written.

    steps: {"losses": [...], "accs": [...]} per training step; history: the finished epochs' records (their
    "step" is the number of steps done when each ended); written: a list the paths are appended to as each
    picture is written (what was, when a Ctrl-C stops it); attention=False skips the attention pictures (after a
    Ctrl-C: they take seconds)."""
    plt = _pyplot()
    if plt is None:
        return ["--plots: matplotlib is not installed, so no pictures were drawn (the terminal summary above has "
                "the same figures); `pip install matplotlib` to get them"]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [] if written is None else written

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    numbers = np.arange(1, len(steps["losses"]) + 1)
    left.plot(numbers, steps["losses"], lw=0.6, alpha=0.5, label="training loss per step")
    epochs_end = [epoch["step"] for epoch in history]
    left.plot(epochs_end, [epoch["validation_loss"] for epoch in history], "o-", label="validation loss")
    left.set_yscale("log")
    left.set_xlabel("step")
    left.legend()
    right.plot(numbers, steps["accs"], lw=0.6, alpha=0.5, label="training accuracy per step")
    right.plot(epochs_end, [epoch["validation_accuracy"] for epoch in history], "o-", label="validation accuracy")
    right.set_ylim(0, 1.02)
    right.set_xlabel("step")
    right.legend()
    figure.tight_layout()
    _save(plt, figure, folder / "curves.png", written)

    labels, counts = metrics["confusion_matrix"]["labels"], np.array(metrics["confusion_matrix"]["counts"])
    figure, ax = plt.subplots(figsize=(6, 5))
    image = ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted answer")
    ax.set_ylabel("true answer")
    ax.set_title(f"test set, accuracy {metrics['test_accuracy']:.4f}")
    figure.colorbar(image)
    figure.tight_layout()
    _save(plt, figure, folder / "confusion.png", written)

    for op in (impl.OPERATIONS if attention else ()):
        example = next((e for e in test_set if operation_of(e, impl) == op), None)
        if example is None:
            continue
        _save(plt, attention_figure(plt, impl, model, example), folder / f"attention_{op}.png", written)
    skipped = "" if attention else " (the attention pictures are skipped after Ctrl-C; a run that finishes draws them)"
    return [f"wrote {len(written)} pictures to {folder}: " + ", ".join(path.name for path in written) + skipped]
