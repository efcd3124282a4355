"""train.py --model decoder: train a DecoderLM (lessons 11-14) to write the digits of its prompt in sorted order.

    python train.py --model decoder [--impl IMPL] [--size small|medium|large] [--steps N | --epochs N]
                    [--batch-size N] [--lr X] [--seed N] [--checkpoint FILE] [--metrics-json FILE] [--no-progress]

The prompt "( 5 3 9 3 )", the answer "3 3 5 9 [EOS]" (generate_sorting_dataset). The recipe: the default
DecoderLM, Adam, batches of 64 examples drawn at random from the training set, the learning rate of
warmup_cosine_lr with one warm-up step (a Pre-LN decoder needs none) falling from 0.002 to 0.0001. Every
EVAL_EVERY steps it measures the exact-sequence accuracy on a validation set and keeps the best model (of equals,
the latest); at the end it measures that model on held-out test examples of the trained lengths and of longer ones.

The machinery is train.py's: the refusal of an unfinished implementation, the output checks, Ctrl-C (the best
model measured so far is kept and written), the backup of an existing checkpoint, messages instead of tracebacks.
"""

import math
import time
from pathlib import Path

import numpy as np

from ..course.backups import Backups
from ..course.contract import get_path
from ..course.files import write_json
from ..course.repository import STATE, python, shown
from . import checkpoint
from .terminal import bar, table

# the decoder's data sets: --size gives the number of training examples
SIZES = {"small": 5_000, "medium": 50_000, "large": 200_000}
STEPS = 1_500  # the reference, seed 0: exact match 0.998 after 500 steps, 1.0 after 1,500
EVAL_EVERY = 250
DIGITS = (2, 6)  # the lengths trained on, inclusive
LONGER = (7, 8, 10)  # lengths never seen in training, measured at the end
VALIDATION, TEST, PER_LONGER = 500, 1_000, 500
WARMUP = 1
MIN_LR_RATIO = 0.05  # the cosine ends at 5% of the peak: 0.0001 for the default 0.002
CONFIG = {"vocab_size": 20, "embed_dim": 64, "num_heads": 4, "num_layers": 2, "ffn_dim": 256, "max_seq_len": 50,
          "tie_weights": False}
# what training and measuring the decoder runs (generate of lesson 13 writes three answers; lesson 14 is not needed)
LESSONS = ("00", "01", "02", "03", "06", "08", "09", "11", "12", "13")
# the seeds of the data sets, apart from each other for any --seed: train S, validation, test, longer ones
VALIDATION_SEED, TEST_SEED, LONGER_SEED = 1_000_000, 2_000_000, 3_000_000


def steps_of(args, train_size):
    """The number of training steps: --steps, or --epochs passes of batch_size examples over the training set."""
    if args.steps is not None:
        return args.steps
    if args.epochs is not None:
        return args.epochs * -(-train_size // args.batch_size)
    return STEPS


def data_sets(impl, args):
    """{"train", "validation", "test", n for each longer length n}: lists of (prompt, answer), each its own seed."""
    sets = {"train": impl.generate_sorting_dataset(SIZES[args.size], DIGITS, seed=args.seed),
            "validation": impl.generate_sorting_dataset(VALIDATION, DIGITS, seed=VALIDATION_SEED + args.seed),
            "test": impl.generate_sorting_dataset(TEST, DIGITS, seed=TEST_SEED + args.seed)}
    for n in LONGER:
        sets[n] = impl.generate_sorting_dataset(PER_LONGER, n, seed=LONGER_SEED + 100 * args.seed + n)
    return sets


def digits_of(example):
    """The number of digits of an example's prompt "( d d ... )"."""
    return len(example[0]) - 2


def run_decoder(impl, args, out, tools):
    """Train impl's DecoderLM as args say; print progress and a summary; write what was asked; return the metrics.

    tools: train.py's module (its Interrupted, TrainingFailed, progress bars and Ctrl-C handling)."""
    np.random.seed(args.seed)  # the initial weights come from numpy's global generator
    sets = data_sets(impl, args)
    train_set, val_set = sets["train"], sets["validation"]
    model = impl.DecoderLM(**CONFIG)
    parameters = sum(np.asarray(p).size for p, _ in model.get_parameters())
    total = steps_of(args, len(train_set))
    optimizer = impl.Adam(model.get_parameters(), learning_rate=args.lr)
    loss_fn = impl.SequenceCrossEntropyLoss()
    rng = np.random.default_rng(args.seed)
    paths = list(checkpoint.expected_shapes(CONFIG, checkpoint.DECODER))
    state = {"bar": None, "losses": [], "train_seconds": 0.0, "finished": ((), None, None)}
    progress = tools._progress_factory(args.no_progress, out)

    def evaluate(step):
        """Measure the validation exact match after step steps, and keep the model if it is the best so far."""
        if state["bar"] is not None:
            state["bar"].close()
            state["bar"] = None
        accuracy = float(impl.exact_match_accuracy(model, val_set))
        recent = state["losses"][-EVAL_EVERY:]
        record = {"step": step, "train_loss": float(np.mean(recent)), "validation_exact_match": accuracy}
        history, best, params = state["finished"]
        if best is None or accuracy >= history[best]["validation_exact_match"]:  # of equals, the later one
            best, params = len(history), {path: np.array(get_path(model, path), copy=True) for path in paths}
        state["finished"] = (history + (record,), best, params)  # one assignment: Ctrl-C finds all of it or none
        print(f"step {step}/{total}: train loss {record['train_loss']:.4f}, validation exact match {accuracy:.4f}",
              file=out, flush=True)

    interrupted = None
    held = tools._first_interrupt_only()
    try:
        try:
            print(f"Training {args.impl}'s DecoderLM ({parameters:,} parameters) to sort {DIGITS[0]} to {DIGITS[1]} "
                  f"digits: {len(train_set):,} training examples ({args.size}; {len(val_set):,} validation, "
                  f"{TEST:,} test), {total:,} steps of batch {args.batch_size}, peak learning rate {args.lr:g}, "
                  f"seed {args.seed}.", file=out)
            for step in range(total):
                if state["bar"] is None:
                    state["bar"] = progress(min(EVAL_EVERY, total - step), f"steps {step + 1}-"
                                            f"{min(step + EVAL_EVERY, total)}/{total}")
                optimizer.learning_rate = impl.warmup_cosine_lr(step, args.lr, min(WARMUP, total), total,
                                                                args.lr * MIN_LR_RATIO)
                batch = [train_set[i] for i in rng.integers(0, len(train_set), args.batch_size)]
                inputs, targets, loss_mask, mask = impl.create_lm_batch(batch)
                start = time.perf_counter()
                loss = impl.lm_train_step(model, inputs, targets, loss_mask, loss_fn, optimizer, mask)
                state["train_seconds"] += time.perf_counter() - start
                loss = float(loss)
                if not math.isfinite(loss):
                    raise tools.TrainingFailed(
                        f"the loss became {loss} at step {step}: the gradients or the optimizer step are wrong, or "
                        f"the learning rate {args.lr:g} is too high. Check your lessons with `{python()} grader.py`.")
                state["losses"].append(loss)
                state["bar"].update(1)
                state["bar"].set_postfix(loss=f"{loss:.3f}", refresh=False)
                if (step + 1) % EVAL_EVERY == 0 or step + 1 == total:
                    evaluate(step + 1)
        except KeyboardInterrupt:
            steps = len(state["losses"])
            interrupted = "before the first training step" if steps == 0 else f"at step {steps} of {total}"
        finally:
            if state["bar"] is not None:
                state["bar"].close()
        history, best, params = state["finished"]
        if best is None:
            raise tools.Interrupted(f"interrupted {interrupted}: nothing was saved, as no evaluation (every "
                                    f"{EVAL_EVERY} steps) had finished")
        for path, array in params.items():
            get_path(model, path)[...] = array
        return _finish(impl, model, args, sets, state, total, interrupted, out, tools)
    finally:
        tools._release(held)


def _finish(impl, model, args, sets, state, total, interrupted, out, tools):
    """Measure the kept model, print the summary, write the checkpoint and the metrics (a second Ctrl-C here
    stops at once; files written are whole)."""
    history, best, _ = state["finished"]
    kept = history[best]
    written = {}
    try:
        test = sets["test"]
        by_length = {}
        for n in range(DIGITS[0], DIGITS[1] + 1):
            examples = [e for e in test if digits_of(e) == n]
            if examples:
                by_length[str(n)] = float(impl.exact_match_accuracy(model, examples))
        test_exact = float(impl.exact_match_accuracy(model, test))
        seen = {(tuple(p), tuple(a)) for p, a in sets["train"]}
        unseen = [e for e in test if (tuple(e[0]), tuple(e[1])) not in seen]
        unseen_exact = float(impl.exact_match_accuracy(model, unseen)) if unseen else None
        for n in LONGER:
            by_length[str(n)] = float(impl.exact_match_accuracy(model, sets[n]))
        rows = [[n, f"{acc:.4f}", bar(acc, 1.0, 20), "trained" if int(n) <= DIGITS[1] else "longer: never seen"]
                for n, acc in by_length.items()]
        print(f"\nKept the model of step {kept['step']} (validation exact match {kept['validation_exact_match']:.4f}); "
              f"{state['train_seconds']:.1f} s of training steps.\n"
              f"Held-out exact-sequence accuracy on {len(test):,} test examples of {DIGITS[0]} to {DIGITS[1]} digits: "
              f"{test_exact:.4f}" + (f" ({unseen_exact:.4f} on the {len(unseen)} prompts not in the training set)"
                                     if unseen_exact is not None else "")
              + f"\n\nExact match by number of digits ({PER_LONGER} examples of each longer length):\n"
              + table(rows, ["digits", "exact match", "", ""]), file=out)
        examples = sets["test"][:3]
        written_tokens = impl.generate(model, [p for p, _ in examples], DIGITS[1] + 2)
        print("\nGreedy answers to three test prompts:", file=out)
        for (prompt, answer), tokens in zip(examples, written_tokens):
            verdict = "right" if list(tokens) == list(answer) else f"wrong: expected {impl.detokenize(answer)}"
            print(f"  {impl.detokenize(prompt)} -> {impl.detokenize(list(tokens))}  ({verdict})", file=out)
        metrics = {
            "model": "decoder", "implementation": str(args.impl), "size": args.size, "seed": args.seed,
            "steps": total, "steps_run": len(state["losses"]), "interrupted": interrupted,
            "batch_size": args.batch_size, "lr": args.lr, "warmup_steps": min(WARMUP, total),
            "min_lr": args.lr * MIN_LR_RATIO, "digits": list(DIGITS), "train_examples": len(sets["train"]),
            "validation_examples": len(sets["validation"]), "test_examples": len(test),
            "test_exact_match": test_exact, "test_unseen_exact_match": unseen_exact,
            "test_unseen_examples": len(unseen), "exact_match_by_length": by_length,
            "validation_exact_match": kept["validation_exact_match"], "best_step": kept["step"],
            "train_seconds": round(state["train_seconds"], 3), "history": list(history), "config": dict(CONFIG),
        }
        if args.checkpoint:
            if Path(args.checkpoint).is_file():
                copy = Backups(STATE / "backup").save(args.checkpoint)
                print(f"the checkpoint already at {args.checkpoint} was copied to {shown(copy)} first", file=out)
            checkpoint.save(args.checkpoint, model, CONFIG, kind=checkpoint.DECODER, metrics={k: metrics[k] for k in (
                "test_exact_match", "validation_exact_match", "exact_match_by_length", "best_step")},
                extra={"trained_with": {"task": "sorting", "size": args.size, "steps": total,
                                        "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                                        "num_digits": list(DIGITS), "impl": args.impl}})
            written["--checkpoint"] = f"the model to {args.checkpoint}"
            print(f"saved the model of step {kept['step']} to {args.checkpoint}", file=out)
        if args.metrics_json:
            write_json(args.metrics_json, metrics)
            written["--metrics-json"] = f"the metrics to {args.metrics_json}"
            print(f"wrote {args.metrics_json}", file=out)
    except KeyboardInterrupt:
        missing = [o for o in ("--checkpoint", "--metrics-json") if getattr(args, o[2:].replace("-", "_"))
                   and o not in written]
        raise tools.Interrupted(f"interrupted {interrupted + ', and again' if interrupted else 'after the last step'} "
                                f"before everything was saved: "
                                + (f"wrote {', '.join(written.values())}" if written else "wrote nothing")
                                + (f"; not written: {', '.join(missing)}" if missing else "")) from None
    if interrupted is not None:
        raise tools.Interrupted(f"interrupted {interrupted}: kept the model of step {kept['step']} (validation exact "
                                f"match {kept['validation_exact_match']:.4f}; the summary above is of it); "
                                + (f"wrote {', '.join(written.values())}" if written else
                                   "wrote nothing, as no --checkpoint or --metrics-json was given"))
    if test_exact < 0.5:
        print(f"\nThe model has not learnt to sort: {test_exact:.2f} of the test prompts come out exactly right. "
              f"Train longer (--steps {2 * total}); if it stays there, check lessons 11 and 12 with "
              f"`{python()} grader.py`.", file=out)
    return metrics
