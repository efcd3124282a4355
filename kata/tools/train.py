"""train.py: train a Transformer of any implementation on the digit-operations task and report what it learnt.

    python train.py [--impl IMPL] [--size small|medium|large] [--epochs N] [--batch-size N] [--lr X] [--seed N]
                    [--interactive] [--checkpoint FILE] [--metrics-json FILE] [--plots DIR]
    python train.py --model decoder [--steps N | --epochs N] [...]    # the GPT track's DecoderLM on sorting

The decoder's run is in train_decoder.py; it uses this module's machinery.
"""

import argparse
import math
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ..course.backups import Backups
from ..course.contract import get_path, transformer_params
from ..course.exercises import unfinished
from ..course.files import OutputPathError, check_output, write_json
from ..course.implementation import ImplementationError, folder_of, load
from ..course.places import raised_at
from ..course.repository import STATE, has_reference, named_implementations, python, shown
from . import analysis, checkpoint, plots, summary, train_decoder
from .trainer import Recipe, train

SIZES = {"small": 1_000, "medium": 10_000, "large": 100_000}
# default epochs per size: the small set's 13 steps an epoch need more epochs to leave the ln 10 plateau
# (the reference, seed 0: 5 epochs end at test accuracy 0.18, 30 epochs at 1.0)
EPOCHS = {"small": 30, "medium": Recipe.epochs, "large": Recipe.epochs}
CONFIG = {"vocab_size": 20, "embed_dim": 64, "num_heads": 4, "num_layers": 2, "ffn_dim": 256, "max_seq_len": 50}
NUM_ARGS = 3
ENCODER_LESSONS = ("00", "01", "02", "03", "04", "05", "06", "07", "08", "09")  # what the encoder's run needs


class TrainingFailed(Exception):
    """Training stopped because of the implementation (an exception in it, a NaN loss); the message says where."""


class Interrupted(Exception):
    """Ctrl-C stopped the run; the message says when, which epoch was kept and what was written (exit status 130)."""


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="train.py", description="Train the transformer on the digit-operations "
                                     "task (Max ( 5 3 9 ) -> 9) and report what it learnt; with --model decoder, "
                                     "train the decoder of lessons 11-14 to sort digits (( 5 3 9 ) -> 3 5 9).")
    parser.add_argument("--model", choices=("encoder", "decoder"), default="encoder",
                        help="encoder: the Transformer of lessons 00-10 (default); decoder: the DecoderLM of lessons "
                        "11-14, trained to write the digits of its prompt in sorted order")
    parser.add_argument("--impl", default="exercises", help=f"{named_implementations()} (default) or a folder laid "
                        "out like exercises/")
    parser.add_argument("--size", choices=SIZES, default="medium", help="small 1,000, medium 10,000 (default), "
                        "large 100,000 examples, split 80/10/10 (decoder: 5,000, 50,000, 200,000 training examples)")
    parser.add_argument("--epochs", type=int, metavar="N", help="passes over the training set (default: "
                        + ", ".join(f"{n} for {size}" for size, n in EPOCHS.items()) + "; the decoder counts steps)")
    parser.add_argument("--steps", type=int, metavar="N", help=f"decoder only: training steps (default "
                        f"{train_decoder.STEPS:,})")
    parser.add_argument("--batch-size", type=int, default=Recipe.batch_size, metavar="N",
                        help="examples per training step (default %(default)s)")
    parser.add_argument("--lr", type=float, default=Recipe.learning_rate, metavar="X", help="peak learning rate of the warm-up "
                        "and cosine schedule (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seeds the data, the initial weights and the "
                        "batches (default %(default)s)")
    parser.add_argument("--interactive", action="store_true", help="walk one example through every stage, one key "
                        "press at a time, then pause after each epoch")
    parser.add_argument("--checkpoint", metavar="FILE", help="save the model of the best validation epoch here "
                        "(.npz with a JSON header; default: not saved)")
    parser.add_argument("--metrics-json", metavar="FILE", help="write the results as JSON here (default: not written)")
    parser.add_argument("--plots", metavar="DIR", help="save loss and accuracy curves, the confusion matrix and "
                        "attention heatmaps as PNG files here (needs matplotlib; default: none drawn)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    args = parser.parse_args(argv)
    if args.model == "decoder":
        for option in ("interactive", "plots"):
            if getattr(args, option):
                parser.error(f"--{option} is for the encoder only (leave out --model decoder)")
        if args.steps is not None and args.epochs is not None:
            parser.error("give --steps or --epochs, not both")
    elif args.steps is not None:
        parser.error("--steps is for the decoder only (--model decoder); the encoder counts --epochs")
    if args.model == "encoder":
        args.epochs = EPOCHS[args.size] if args.epochs is None else args.epochs
    for name in ("epochs", "batch_size", "steps"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
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
            f"Run `{python()} grader.py` to see your progress" + (
                f", or train the reference with `{python()} train.py --impl solutions`." if has_reference() else
                ": finish those lessons first."))
    try:
        return load(spec)
    except ImplementationError as error:
        raise SystemExit(f"train.py: {error}") from None


def snapshot(model, num_layers):
    return {path: np.array(get_path(model, path), copy=True) for path in transformer_params(num_layers)}


def restore_snapshot(model, saved):
    for path, array in saved.items():
        get_path(model, path)[...] = array


def outputs(args):
    """{option: (path, is a folder, kind)} of the files and folders this run will write (an empty path included:
    check_output refuses it)."""
    given = {"--checkpoint": (args.checkpoint, False, "checkpoint"), "--metrics-json": (args.metrics_json, False, "json"),
             "--plots": (args.plots, True, None)}
    return {option: value for option, value in given.items() if value[0] is not None}


def run(args, out=sys.stdout, stdin=sys.stdin):
    """Train as args say; print progress and a summary to out; return the metrics dict.

    Raises OutputPathError before anything else when an output cannot be written; Interrupted on Ctrl-C, once the
    best finished epoch's model, metrics and pictures are written; SystemExit with a message (never a traceback)
    when the implementation is unfinished, raises an exception anywhere (the walk-through, training, the summary)
    or makes the loss NaN."""
    for option, (path, is_folder, kind) in outputs(args).items():
        check_output(path, option, folder=is_folder, kind=kind)
    decoder = getattr(args, "model", "encoder") == "decoder"
    impl = load_finished(args.impl, needs=train_decoder.LESSONS if decoder else ENCODER_LESSONS)
    folder = folder_of(args.impl)
    try:
        if decoder:
            return train_decoder.run_decoder(impl, args, out, sys.modules[__name__])
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
    splits = train_set, val_set, test_set = impl.split_dataset(data, 0.8, 0.1, seed=args.seed)
    model = impl.Transformer(**CONFIG)
    parameters = sum(np.asarray(p).size for p, _ in model.get_parameters())
    recipe = Recipe(batch_size=args.batch_size, learning_rate=args.lr, epochs=args.epochs)
    steps_per_epoch = -(-len(train_set) // recipe.batch_size)
    example = next(e for e in test_set if analysis.operation_of(e, impl) == "Max") if test_set else train_set[0]
    # finished: (the finished epochs' records, the best one's index, a copy of its parameters), replaced in one
    # assignment at the end of each epoch, so that Ctrl-C at any moment finds a whole epoch or none
    state = {"bar": None, "losses": [], "accs": [], "train_seconds": 0.0, "finished": ((), None, None),
             "report": None}
    progress = _progress_factory(args.no_progress or args.interactive, out)
    pauser = None

    def on_step(step, loss, accuracy, seconds):
        if not math.isfinite(loss):
            raise TrainingFailed(f"the loss became {loss} at step {step}: the gradients or the optimizer step "
                                 f"are wrong, or the learning rate {args.lr:g} is too high. Check your lessons with "
                                 f"`{python()} grader.py`.")
        state["train_seconds"] += seconds
        state["losses"].append(float(loss))
        state["accs"].append(float(accuracy))
        if state["bar"] is None:
            state["bar"] = progress(steps_per_epoch, f"epoch {len(state['finished'][0]) + 1}/{args.epochs}")
        state["bar"].update(1)
        state["bar"].set_postfix(loss=f"{loss:.3f}", acc=f"{accuracy:.3f}", refresh=False)

    def on_epoch_end(epoch):
        if state["bar"] is not None:
            state["bar"].close()
            state["bar"] = None
        tokens, targets, mask = impl.create_batch(val_set)
        val_loss, val_acc = impl.evaluate(model, tokens, targets, impl.CrossEntropyLoss())
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(state["losses"][-steps_per_epoch:])),
                  "train_accuracy": float(np.mean(state["accs"][-steps_per_epoch:])),
                  "validation_loss": float(val_loss), "validation_accuracy": float(val_acc),
                  "step": len(state["losses"])}
        history, best, params = state["finished"]
        if best is None or record["validation_accuracy"] > history[best]["validation_accuracy"]:
            best, params = len(history), snapshot(model, CONFIG["num_layers"])
        state["finished"] = (history + (record,), best, params)
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {record['train_loss']:.4f}, train accuracy "
              f"{record['train_accuracy']:.4f}, validation loss {val_loss:.4f}, validation accuracy {val_acc:.4f}",
              file=out, flush=True)
        if pauser is not None:
            from .walkthrough import epoch_report
            state["report"] = epoch_report(impl, model, example, state["report"], out)
            pauser("press Enter for the next epoch, q to run on without pausing")
        return False

    interrupted = None
    held = _first_interrupt_only()  # a second Ctrl-C, a reflex, must not cost the kept epoch's files
    try:
        # printed once Ctrl-C is handled: a Ctrl-C as soon as this line shows is an interruption like any other
        print(f"Training {args.impl}'s Transformer ({parameters:,} parameters) on {len(train_set):,} examples "
              f"({args.size}; {len(val_set):,} validation, {len(test_set):,} test), {args.epochs} epochs of "
              f"{steps_per_epoch} steps, batch {args.batch_size}, peak learning rate {args.lr:g}, seed {args.seed}.",
              file=out)
        if args.interactive:
            from .walkthrough import Pauser, walk
            pauser = Pauser(stdin, out)
            walk(impl, model, example, pauser, out)
        train(impl, model, train_set, recipe, seed=args.seed, on_step=on_step, on_epoch_end=on_epoch_end)
    except KeyboardInterrupt:
        interrupted = _when(len(state["finished"][0]), len(state["losses"]), steps_per_epoch, args.epochs)
    finally:
        if state["bar"] is not None:
            state["bar"].close()
    try:
        if state["finished"][1] is None:
            raise Interrupted(f"interrupted {interrupted}: nothing was saved, as no epoch had finished")
        return _finish(impl, model, args, state, splits, out, interrupted, held)
    finally:
        _release(held)


def _first_interrupt_only():
    """From now until _release, the first Ctrl-C raises KeyboardInterrupt and the next ones are ignored (the main
    thread only; elsewhere nothing changes): returns the handler to restore."""
    if threading.current_thread() is not threading.main_thread():
        return None
    seen = []

    def first_only(number, frame):
        if not seen:
            seen.append(number)
            raise KeyboardInterrupt
    return signal.signal(signal.SIGINT, first_only)


def _release(held):
    """Ctrl-C stops again as before _first_interrupt_only."""
    if held is not None:
        signal.signal(signal.SIGINT, held)


def _when(finished, steps, steps_per_epoch, epochs):
    """When training was interrupted, in words."""
    if steps == 0:
        return "before the first training step"
    total = steps_per_epoch * epochs
    if steps == finished * steps_per_epoch:
        return f"after epoch {finished}/{epochs} (step {steps} of {total})"
    return f"in epoch {finished + 1}/{epochs} (step {steps} of {total})"


def _finish(impl, model, args, state, splits, out, interrupted, held=None):
    """The summary of the best finished epoch, then the files asked for. After Ctrl-C (interrupted: when) the
    measures are the quick ones, and Interrupted is raised once the files are written, saying what they are. A
    Ctrl-C here (a second one, or the first one after the last epoch) stops at once: the files already written
    are whole (written atomically), those not yet written are left as they were, and Interrupted says which."""
    history, best, params = state["finished"]
    written, pictures = {}, []  # option: what was written, in words; the pictures written so far
    try:
        while True:
            restore_snapshot(model, params)  # the best finished epoch, never weights a Ctrl-C left half-updated
            try:
                measures = summary.measure(impl, model, splits, quick=interrupted is not None)
                break
            except KeyboardInterrupt:
                if interrupted is not None:
                    raise
                interrupted = f"after epoch {len(history)}/{args.epochs}, while measuring the model"
        run_info = {"history": list(history), "best": best, "train_seconds": state["train_seconds"],
                    "interrupted": interrupted}
        metrics = summary.summarise(measures, model, args, run_info, splits, out)
        if args.checkpoint:
            if Path(args.checkpoint).is_file():  # an earlier model, trained maybe for an hour: kept
                copy = Backups(STATE / "backup").save(args.checkpoint)
                print(f"the checkpoint already at {args.checkpoint} was copied to {shown(copy)} first", file=out)
            checkpoint.save(args.checkpoint, model, CONFIG, metrics={k: metrics[k] for k in (
                "test_accuracy", "validation_accuracy", "per_operation_accuracy", "best_epoch")},
                extra={"trained_with": {"size": args.size, "epochs": args.epochs, "batch_size": args.batch_size,
                                        "lr": args.lr, "seed": args.seed, "num_args": NUM_ARGS, "impl": args.impl}})
            written["--checkpoint"] = f"the model to {args.checkpoint}"
            print(f"saved the model of epoch {metrics['best_epoch']} to {args.checkpoint}", file=out)
        if args.metrics_json:
            write_json(args.metrics_json, metrics)
            written["--metrics-json"] = f"the metrics to {args.metrics_json}"
            print(f"wrote {args.metrics_json}", file=out)
        _release(held)  # the kept epoch's model and metrics are written: Ctrl-C may skip the pictures
        held = None
        if args.plots:
            if interrupted is not None:  # matplotlib takes time: the files that matter are written already
                print("drawing the curves and the confusion matrix (Ctrl-C again to skip them)", file=out, flush=True)
            for line in plots.save_all(args.plots, impl, model, metrics, state, run_info["history"], splits[2],
                                       pictures, attention=interrupted is None):
                print(line, file=out)
            if pictures:
                written["--plots"] = f"{len(pictures)} pictures to {args.plots}"
    except KeyboardInterrupt:
        if pictures and "--plots" not in written:
            written["--plots"] = f"{len(pictures)} of the pictures to {args.plots}"
        missing = [option for option in outputs(args) if option not in written]
        when = f"{interrupted}, and again" if interrupted else "after the last epoch"
        raise Interrupted(f"interrupted {when} before everything was saved: "
                          + (f"wrote {', '.join(written.values())}" if written else "wrote nothing")
                          + (f"; not written: {', '.join(missing)} (files already there are left as they were)"
                             if missing else "")) from None
    if interrupted is not None:
        kept = (f"kept epoch {best + 1}, the best of the {len(history)} finished (validation accuracy "
                f"{history[best]['validation_accuracy']:.4f}; the summary above is of it)")
        raise Interrupted(f"interrupted {interrupted}: {kept}; "
                          + (f"wrote {', '.join(written.values())}" if written else
                             "wrote nothing, as no --checkpoint, --metrics-json or --plots was given"))
    verdict = not_learnt(metrics, args, len(state["losses"]))
    if verdict:
        print(f"\n{verdict}", file=out)
    return metrics


def not_learnt(metrics, args, steps):
    """summary.not_learnt with this size's default epochs."""
    return summary.not_learnt(metrics, args, steps, EPOCHS[args.size])


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


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        run(args)
    except OutputPathError as error:
        print(f"train.py: {error}", file=sys.stderr)
        return 2
    except Interrupted as interruption:
        print(f"\ntrain.py: {interruption}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\ntrain.py: interrupted before training began: nothing was saved", file=sys.stderr)
        return 130
    except (checkpoint.CheckpointError, OSError) as error:  # e.g. a disk full while writing
        print(f"train.py: {error}", file=sys.stderr)
        return 1
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0
