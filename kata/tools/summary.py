"""What train.py prints and writes about the model it kept: the measures on the test set, the summary, the metrics.

Two ways of measuring: in full once training has ended (the implementation's own evaluate and
per_operation_accuracy, and the accuracy on the whole training set), and quick after Ctrl-C: one pass over the test
set in batches, with no pass over the training set, so that an interrupted run stops within a couple of seconds.
"""

import math
from dataclasses import dataclass

from ..course.repository import python
from . import analysis
from .terminal import table


@dataclass
class Measures:
    test_loss: float
    test_accuracy: float
    train_accuracy: object  # float, or None when not measured (an interrupted run)
    per_operation: dict
    labels: list
    counts: object  # (11, 11) ints
    attention: dict


def accuracy_of(model, dataset, impl):
    if not dataset:
        return float("nan")
    tokens, targets, mask = impl.create_batch(dataset)
    _, accuracy = impl.evaluate(model, tokens, targets, impl.CrossEntropyLoss())
    return float(accuracy)


def measure(impl, model, splits, quick=False):
    """Measures of model on the test set (and, unless quick, its accuracy on the training set)."""
    train_set, _, test_set = splits
    if quick:
        targets, predicted, test_loss = analysis.predict(model, test_set, impl)
        test_acc, train_acc = float((predicted == targets).mean()), None
        per_op = analysis.per_operation(test_set, targets, predicted, impl)
        labels, counts = analysis.confusion_of(targets, predicted, impl)
    else:
        tokens, targets, mask = impl.create_batch(test_set)
        test_loss, test_acc = impl.evaluate(model, tokens, targets, impl.CrossEntropyLoss())
        train_acc = accuracy_of(model, train_set, impl)
        per_op = {op: float(v) for op, v in impl.per_operation_accuracy(model, test_set).items()}
        labels, counts = analysis.confusion_matrix(model, test_set, impl)
    return Measures(float(test_loss), float(test_acc), train_acc, per_op, labels, counts,
                    analysis.attention_summary(model, test_set, impl))


def summarise(measures, model, args, run, splits, out):
    """Print the summary of the kept model and return the metrics (CONTRACT.md section 5's keys and more).

    run: {"history": [per finished epoch: {"epoch", "train_loss", "train_accuracy", "validation_loss",
    "validation_accuracy", "step"}], "best": index of the kept epoch in history, "train_seconds": float,
    "interrupted": None or when training was interrupted (text)}"""
    train_set, val_set, test_set = splits
    m, history, best = measures, run["history"], run["best"]
    kept = history[best]
    train = ("train accuracy not measured (training was interrupted)" if m.train_accuracy is None
             else f"train accuracy {m.train_accuracy:.4f}")
    print(f"\nBest epoch: {best + 1} (validation accuracy {kept['validation_accuracy']:.4f}); the summary is of that "
          f"model.\n{train}, validation accuracy {kept['validation_accuracy']:.4f}, test accuracy "
          f"{m.test_accuracy:.4f} (test loss {m.test_loss:.4f}); {run['train_seconds']:.1f} s of training steps",
          file=out)
    print("\nTest accuracy per operation:\n" + table([[op, f"{acc:.4f}"] for op, acc in m.per_operation.items()],
                                                      ["operation", "accuracy"]), file=out)
    counts = m.counts
    used = [i for i in range(len(m.labels)) if counts[i].sum() or counts[:, i].sum()]
    rows = [[f"true {m.labels[i]}"] + [str(counts[i, j]) if counts[i, j] else "." for j in used] for i in used]
    print("\nConfusion matrix on the test set (rows: true answer, columns: predicted):\n"
          + table(rows, [""] + [m.labels[j] for j in used]), file=out)
    for layer in range(len(model.blocks)):
        print(f"\nAttention of the first token in layer {layer + 1} (test examples of each operation; entropy in "
              "nats, of the uniform value):", file=out)
        for line in analysis.describe_attention(m.attention, layer):
            print(line, file=out)
    return {
        "implementation": str(args.impl), "size": args.size, "seed": args.seed, "epochs": args.epochs,
        "epochs_run": len(history), "interrupted": run["interrupted"], "batch_size": args.batch_size, "lr": args.lr,
        "train_examples": len(train_set), "validation_examples": len(val_set), "test_examples": len(test_set),
        "test_accuracy": m.test_accuracy, "test_loss": m.test_loss, "train_accuracy": m.train_accuracy,
        "validation_accuracy": kept["validation_accuracy"], "best_epoch": best + 1,
        "per_operation_accuracy": m.per_operation, "train_seconds": round(run["train_seconds"], 3),
        "history": [{key: value for key, value in epoch.items() if key != "step"} for epoch in history],
        "confusion_matrix": {"labels": m.labels, "counts": counts.tolist()},
        "attention": {op: [[{"top": h["top"], "top_weight": round(h["top_weight"], 4),
                             "on_answer": round(h["on_answer"], 4),
                             "entropy": round(h["entropy"], 4), "focused": h["focused"]} for h in layer]
                           for layer in entry["layers"]] for op, entry in m.attention.items()},
    }


def not_learnt(metrics, args, steps, default_epochs):
    """A note saying what to try when the model learnt nothing (its test loss still near ln 10, where a model
    that only knows the answer is a digit sits, or its accuracy near chance), else None."""
    plateau, loss, accuracy = math.log(10), metrics["test_loss"], metrics["test_accuracy"]
    if loss < plateau - 0.3 and accuracy >= 0.3:
        return None
    bigger = {"small": "medium", "medium": "large"}.get(args.size)
    larger = f", or a larger data set (--size {bigger})" if bigger else ""
    return (f"The model did not learn the task: its test loss {loss:.3f} is still near ln 10 = {plateau:.3f}, the "
            f"loss of a model that only knows the answer is a digit, and its test accuracy {accuracy:.2f} is near "
            f"chance. After {steps} training steps it is still on that plateau: train longer, with more epochs "
            f"(--epochs {max(2 * args.epochs, default_epochs)}){larger}. If it stays there, check your lessons "
            f"with `{python()} grader.py`.")
