"""train.py: train a Transformer of any implementation on the digit-operations task and report what it learnt.

    python train.py [--impl IMPL] [--size small|medium|large] [--epochs N] [--batch-size N] [--lr X] [--seed N]
                    [--interactive] [--checkpoint FILE] [--metrics-json FILE] [--plots DIR]
"""

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from ..course.contract import get_path, transformer_params
from ..course.exercises import unfinished
from ..course.files import write_json
from ..course.implementation import ImplementationError, folder_of, load
from ..course.places import raised_at
from ..course.repository import python
from . import analysis, checkpoint, plots
from .terminal import table
from .trainer import Recipe, train

SIZES = {"small": 1_000, "medium": 10_000, "large": 100_000}
# default epochs per size: the small set's 13 steps an epoch need more epochs to leave the ln 10 plateau
# (the reference, seed 0: 5 epochs end at test accuracy 0.18, 30 epochs at 1.0)
EPOCHS = {"small": 30, "medium": Recipe.epochs, "large": Recipe.epochs}
CONFIG = {"vocab_size": 20, "embed_dim": 64, "num_heads": 4, "num_layers": 2, "ffn_dim": 256, "max_seq_len": 50}
NUM_ARGS = 3


class TrainingFailed(Exception):
    """Training stopped because of the implementation (an exception in it, a NaN loss); the message says where."""


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="train.py", description="Train the transformer on the digit-operations "
                                     "task (Max ( 5 3 9 ) -> 9) and report what it learnt.")
    parser.add_argument("--impl", default="exercises", help="solutions, exercises (default) or a folder laid out "
                        "like exercises/")
    parser.add_argument("--size", choices=SIZES, default="medium", help="small 1,000, medium 10,000 (default), "
                        "large 100,000 examples, split 80/10/10")
    parser.add_argument("--epochs", type=int, help="passes over the training set (default: "
                        + ", ".join(f"{n} for {size}" for size, n in EPOCHS.items()) + ")")
    parser.add_argument("--batch-size", type=int, default=Recipe.batch_size)
    parser.add_argument("--lr", type=float, default=Recipe.learning_rate, help="peak learning rate of the warm-up "
                        "and cosine schedule (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the data, the initial weights and the batches")
    parser.add_argument("--interactive", action="store_true", help="walk one example through every stage, one key "
                        "press at a time, then pause after each epoch")
    parser.add_argument("--checkpoint", metavar="FILE", help="save the model of the best validation epoch here "
                        "(.npz with a JSON header)")
    parser.add_argument("--metrics-json", metavar="FILE", help="write the results as JSON here")
    parser.add_argument("--plots", metavar="DIR", help="save loss and accuracy curves, the confusion matrix and "
                        "attention heatmaps as PNG files here (needs matplotlib)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    args = parser.parse_args(argv)
    args.epochs = EPOCHS[args.size] if args.epochs is None else args.epochs
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        parser.error(f"--lr must be a positive number, got {args.lr}")
    return args


def load_finished(spec, needs=None):
    """The implementation, or SystemExit with the grader's kind of message when it is unfinished or broken.

    needs: the lesson ids whose exercises must be done (default: every lesson)."""
    try:
        folder = folder_of(spec)
    except ImplementationError as error:
        raise SystemExit(f"train.py: {error}") from None
    todo = [stub for stub in unfinished(folder) if needs is None or stub.lesson in needs]
    if todo:
        lesson_id, symbol, file, line, section = todo[0]
        lessons_left = sorted({stub.lesson for stub in todo})
        raise SystemExit(
            f"Your implementation in {folder} is not finished: {len(todo)} exercises still raise "
            f"NotImplementedError (lessons {', '.join(lessons_left)}).\n"
            f"The first: {symbol} in {Path(folder.name) / file}, line {line} (lesson {lesson_id}, "
            f"section \"{section}\").\n"
            f"Run `{python()} grader.py` to see your progress, or train the reference with "
            f"`{python()} train.py --impl solutions`.")
    try:
        return load(spec)
    except ImplementationError as error:
        raise SystemExit(f"train.py: {error}") from None


def snapshot(model, num_layers):
    return {path: np.array(get_path(model, path), copy=True) for path in transformer_params(num_layers)}


def restore_snapshot(model, saved):
    for path, array in saved.items():
        get_path(model, path)[...] = array


def accuracy_of(model, dataset, impl):
    if not dataset:
        return float("nan")
    tokens, targets, mask = impl.create_batch(dataset)
    _, accuracy = impl.evaluate(model, tokens, targets, impl.CrossEntropyLoss())
    return float(accuracy)


def run(args, out=sys.stdout, stdin=sys.stdin):
    """Train as args say; print progress and a summary to out; return the metrics dict.

    Raises SystemExit with a message (never a traceback) when the implementation is unfinished, raises an
    exception anywhere (the walk-through, training, the summary) or makes the loss NaN."""
    impl = load_finished(args.impl)
    folder = folder_of(args.impl)
    try:
        return _run(impl, args, out, stdin)
    except TrainingFailed as error:
        raise SystemExit(f"Training stopped: {error}") from None
    except Exception as error:
        where = raised_at(error, folder)
        if where is None:  # not raised through the implementation's code: a fault of this tool, shown in full
            raise
        raise SystemExit(f"train.py stopped: your code raised {type(error).__name__}: {error}\n  at {where}\n"
                         f"Run `{python()} grader.py` to find which lesson's tests fail.") from None


def _run(impl, args, out, stdin):
    np.random.seed(args.seed)  # the initial weights (Xavier-uniform) come from numpy's global generator
    data = impl.generate_tokenized_dataset(SIZES[args.size], num_args=NUM_ARGS, seed=args.seed)
    train_set, val_set, test_set = impl.split_dataset(data, 0.8, 0.1, seed=args.seed)
    model = impl.Transformer(**CONFIG)
    parameters = sum(np.asarray(p).size for p, _ in model.get_parameters())
    recipe = Recipe(batch_size=args.batch_size, learning_rate=args.lr, epochs=args.epochs)
    steps_per_epoch = -(-len(train_set) // recipe.batch_size)
    print(f"Training {args.impl}'s Transformer ({parameters:,} parameters) on {len(train_set):,} examples "
          f"({args.size}; {len(val_set):,} validation, {len(test_set):,} test), {args.epochs} epochs of "
          f"{steps_per_epoch} steps, batch {args.batch_size}, peak learning rate {args.lr:g}, seed {args.seed}.",
          file=out)

    example = next(e for e in test_set if analysis.operation_of(e, impl) == "Max") if test_set else train_set[0]
    pauser = None
    if args.interactive:
        from .walkthrough import Pauser, walk
        pauser = Pauser(stdin, out)
        walk(impl, model, example, pauser, out)

    state = {"bar": None, "losses": [], "accs": [], "epoch_loss": [], "epoch_acc": [], "val": [], "train_seconds": 0.0,
             "best": None, "best_params": None, "report": None}
    progress = _progress_factory(args.no_progress or args.interactive, out)

    def on_step(step, loss, accuracy, seconds):
        if not math.isfinite(loss):
            raise TrainingFailed(f"the loss became {loss} at step {step}: the gradients or the optimizer step "
                                 f"are wrong, or the learning rate {args.lr:g} is too high. Check your lessons with "
                                 f"`{python()} grader.py`.")
        state["train_seconds"] += seconds
        state["losses"].append(float(loss))
        state["accs"].append(float(accuracy))
        if state["bar"] is None:
            state["bar"] = progress(steps_per_epoch, f"epoch {len(state['val']) + 1}/{args.epochs}")
        state["bar"].update(1)
        state["bar"].set_postfix(loss=f"{loss:.3f}", acc=f"{accuracy:.3f}", refresh=False)

    def on_epoch_end(epoch):
        if state["bar"] is not None:
            state["bar"].close()
            state["bar"] = None
        tokens, targets, mask = impl.create_batch(val_set)
        val_loss, val_acc = impl.evaluate(model, tokens, targets, impl.CrossEntropyLoss())
        recent = state["losses"][-steps_per_epoch:]
        state["epoch_loss"].append(float(np.mean(recent)))
        state["epoch_acc"].append(float(np.mean(state["accs"][-steps_per_epoch:])))
        state["val"].append((float(val_loss), float(val_acc)))
        if state["best"] is None or val_acc > state["val"][state["best"]][1]:
            state["best"], state["best_params"] = epoch, snapshot(model, CONFIG["num_layers"])
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {state['epoch_loss'][-1]:.4f}, train accuracy "
              f"{state['epoch_acc'][-1]:.4f}, validation loss {val_loss:.4f}, validation accuracy {val_acc:.4f}",
              file=out, flush=True)
        if pauser is not None:
            from .walkthrough import epoch_report
            state["report"] = epoch_report(impl, model, example, state["report"], out)
            pauser("press Enter for the next epoch, q to run on without pausing")
        return False

    try:
        train(impl, model, train_set, recipe, seed=args.seed, on_step=on_step, on_epoch_end=on_epoch_end)
    finally:
        if state["bar"] is not None:
            state["bar"].close()

    restore_snapshot(model, state["best_params"])
    metrics = summarise(impl, model, args, state, (train_set, val_set, test_set), out)
    if args.checkpoint:
        checkpoint.save(args.checkpoint, model, CONFIG, metrics={k: metrics[k] for k in (
            "test_accuracy", "validation_accuracy", "per_operation_accuracy", "best_epoch")},
            extra={"trained_with": {"size": args.size, "epochs": args.epochs, "batch_size": args.batch_size,
                                    "lr": args.lr, "seed": args.seed, "num_args": NUM_ARGS, "impl": args.impl}})
        print(f"saved the model of epoch {metrics['best_epoch']} to {args.checkpoint}", file=out)
    if args.plots:
        for line in plots.save_all(args.plots, impl, model, metrics, state, test_set):
            print(line, file=out)
    if args.metrics_json:
        write_json(args.metrics_json, metrics)
        print(f"wrote {args.metrics_json}", file=out)
    verdict = not_learnt(metrics, args, len(state["losses"]))
    if verdict:
        print(f"\n{verdict}", file=out)
    return metrics


def not_learnt(metrics, args, steps):
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
            f"(--epochs {max(2 * args.epochs, EPOCHS[args.size])}){larger}. If it stays there, check your lessons "
            f"with `{python()} grader.py`.")


def _progress_factory(quiet, out):
    """tqdm bars (or silent stand-ins when quiet or tqdm is missing)."""
    class Silent:
        def update(self, n): pass
        def set_postfix(self, **kwargs): pass
        def close(self): pass

    if quiet:
        return lambda total, desc: Silent()
    try:
        from tqdm import tqdm
    except ImportError:
        return lambda total, desc: Silent()
    # disable=None: no bar when out is not a terminal (a log file, a pipe)
    return lambda total, desc: tqdm(total=total, desc=desc, unit="step", leave=False, file=out, dynamic_ncols=True,
                                    disable=None)


def summarise(impl, model, args, state, splits, out):
    """Print the summary and return the metrics (CONTRACT.md section 5's keys and more)."""
    train_set, val_set, test_set = splits
    tokens, targets, mask = impl.create_batch(test_set)
    test_loss, test_acc = impl.evaluate(model, tokens, targets, impl.CrossEntropyLoss())
    train_acc = accuracy_of(model, train_set, impl)
    per_op = {op: float(v) for op, v in impl.per_operation_accuracy(model, test_set).items()}
    labels, counts = analysis.confusion_matrix(model, test_set, impl)
    attention = analysis.attention_summary(model, test_set, impl)
    best = state["best"]
    print(f"\nBest epoch: {best + 1} (validation accuracy {state['val'][best][1]:.4f}); the summary is of that "
          f"model.\ntrain accuracy {train_acc:.4f}, validation accuracy {state['val'][best][1]:.4f}, test accuracy "
          f"{float(test_acc):.4f} (test loss {float(test_loss):.4f}); {state['train_seconds']:.1f} s of training steps",
          file=out)
    print("\nTest accuracy per operation:\n" + table([[op, f"{acc:.4f}"] for op, acc in per_op.items()],
                                                      ["operation", "accuracy"]), file=out)
    used = [i for i in range(len(labels)) if counts[i].sum() or counts[:, i].sum()]
    rows = [[f"true {labels[i]}"] + [str(counts[i, j]) if counts[i, j] else "." for j in used] for i in used]
    print("\nConfusion matrix on the test set (rows: true answer, columns: predicted):\n"
          + table(rows, [""] + [labels[j] for j in used]), file=out)
    for layer in range(len(model.blocks)):
        print(f"\nAttention of the first token in layer {layer + 1} (test examples of each operation; entropy in "
              "nats, of the uniform value):", file=out)
        for line in analysis.describe_attention(attention, layer):
            print(line, file=out)
    return {
        "implementation": str(args.impl), "size": args.size, "seed": args.seed, "epochs": args.epochs,
        "epochs_run": len(state["val"]), "batch_size": args.batch_size, "lr": args.lr,
        "train_examples": len(train_set), "validation_examples": len(val_set), "test_examples": len(test_set),
        "test_accuracy": float(test_acc), "test_loss": float(test_loss), "train_accuracy": train_acc,
        "validation_accuracy": state["val"][best][1], "best_epoch": best + 1,
        "per_operation_accuracy": per_op, "train_seconds": round(state["train_seconds"], 3),
        "history": [{"epoch": i + 1, "train_loss": state["epoch_loss"][i], "train_accuracy": state["epoch_acc"][i],
                     "validation_loss": v[0], "validation_accuracy": v[1]} for i, v in enumerate(state["val"])],
        "confusion_matrix": {"labels": labels, "counts": counts.tolist()},
        "attention": {op: [[{"top": h["top"], "top_weight": round(h["top_weight"], 4),
                             "on_answer": round(h["on_answer"], 4),
                             "entropy": round(h["entropy"], 4), "focused": h["focused"]} for h in layer]
                           for layer in entry["layers"]] for op, entry in attention.items()},
    }


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: nothing was saved", file=sys.stderr)
        return 130
    except (checkpoint.CheckpointError, OSError) as error:  # e.g. a folder for --metrics-json that cannot be written
        print(f"train.py: {error}", file=sys.stderr)
        return 1
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0
