"""Train the reference with the default recipe on the medium data set for several seeds; print figures.

    python -m benchmarks.train_benchmark [--seeds 0 1 2 3 4] [--no-torch]

Per seed: test accuracy, per-operation accuracy, seconds of training steps until the test accuracy first
reaches 99% (checked every --eval-every steps, evaluation time excluded) and milliseconds per training step
(median over all steps), in float64 (the contract's precision) and float32 (parameters cast by the caller).
Medians over seeds at the end. With PyTorch installed, the same model, started from the same weights, is
trained on the same batches with the same schedule in the same precision, right after each NumPy run.
"""

import argparse
import time

import numpy as np

import solutions as impl
from kata.course.contract import get_path, grad_path, set_path, transformer_params
from kata.tools.trainer import Recipe, batches, train

MEDIUM = 10_000


def cast(model, dtype):
    """Give every parameter and gradient of a default Transformer the dtype (the reference keeps it throughout)."""
    for path in transformer_params(len(model.blocks)):
        for name in (path, grad_path(path)):
            set_path(model, name, get_path(model, name).astype(dtype))
    return model


def run_numpy(seed, recipe, data, eval_every, dtype=np.float64):
    train_set, _, test_set = data
    np.random.seed(seed)
    model = cast(impl.Transformer(), dtype)
    test_tokens, test_targets, _ = impl.create_batch(test_set)
    loss_fn = impl.CrossEntropyLoss()
    state = {"elapsed": 0.0, "to_99": None, "times": [], "losses": []}

    def on_step(step, loss, accuracy, seconds):
        state["elapsed"] += seconds
        state["times"].append(seconds)
        state["losses"].append(loss)
        if state["to_99"] is None and (step + 1) % eval_every == 0:
            if impl.evaluate(model, test_tokens, test_targets, loss_fn)[1] >= 0.99:
                state["to_99"] = state["elapsed"]

    train(impl, model, train_set, recipe, seed=seed, on_step=on_step)
    accuracy = impl.evaluate(model, test_tokens, test_targets, loss_fn)[1]
    return {"accuracy": accuracy, "per_op": impl.per_operation_accuracy(model, test_set), "to_99": state["to_99"],
            "ms_per_step": 1000 * float(np.median(state["times"])), "losses": state["losses"]}


def run_torch(seed, recipe, data, eval_every, dtype):
    import torch

    from benchmarks.torch_mirror import Mirror
    train_set, _, test_set = data
    np.random.seed(seed)
    model = Mirror(impl.Transformer(), dtype)  # the same initial weights as the NumPy run
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = torch.nn.CrossEntropyLoss()
    test_tokens, test_targets, test_mask = (torch.tensor(a) for a in impl.create_batch(test_set))
    rng = np.random.default_rng(seed)
    steps_per_epoch = -(-len(train_set) // recipe.batch_size)
    total = recipe.epochs * steps_per_epoch
    times, losses, elapsed, to_99 = [], [], 0.0, None

    def test_accuracy():
        with torch.no_grad():
            return float((model(test_tokens, test_mask).argmax(1) == test_targets).double().mean())

    for _ in range(recipe.epochs):
        for tokens, targets, mask in batches(train_set, recipe.batch_size, rng, impl):
            tokens, targets, mask = torch.tensor(tokens), torch.tensor(targets), torch.tensor(mask)
            step = len(times)
            for group in optimizer.param_groups:
                group["lr"] = impl.warmup_cosine_lr(step, recipe.learning_rate, recipe.warmup_steps, total,
                                                    recipe.learning_rate * recipe.min_lr_ratio)
            start = time.perf_counter()
            optimizer.zero_grad()
            loss = loss_fn(model(tokens, mask), targets)
            loss.backward()
            optimizer.step()
            seconds = time.perf_counter() - start
            times.append(seconds)
            losses.append(loss.item())
            elapsed += seconds
            if to_99 is None and (step + 1) % eval_every == 0 and test_accuracy() >= 0.99:
                to_99 = elapsed
    return {"accuracy": test_accuracy(), "to_99": to_99, "ms_per_step": 1000 * float(np.median(times)),
            "losses": losses, "threads": torch.get_num_threads()}


def fmt(value, pattern):
    return "-" if value is None else pattern.format(value)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="one run per seed (default: "
                        "0 1 2 3 4)")
    parser.add_argument("--eval-every", type=int, default=25, help="steps between two checks of the 99%% mark (default "
                        "%(default)s)")
    parser.add_argument("--no-torch", action="store_true", help="no PyTorch runs, even where torch is installed")
    args = parser.parse_args(argv)
    recipe = Recipe()
    try:
        import torch
        torch_version = None if args.no_torch else torch.__version__
    except ImportError:
        torch_version = None
    print(f"recipe: {recipe}; medium data set ({MEDIUM} examples, split 80/10/10)")
    rows = {"numpy float64": [], "torch float64": [], "numpy float32": [], "torch float32": []}
    for seed in args.seeds:
        data = impl.split_dataset(impl.generate_tokenized_dataset(MEDIUM, seed=seed), seed=seed)
        for bits in (64, 32):
            result = run_numpy(seed, recipe, data, args.eval_every, np.float64 if bits == 64 else np.float32)
            rows[f"numpy float{bits}"].append(result)
            per_op = " ".join(f"{op} {acc:.3f}" for op, acc in result["per_op"].items())
            print(f"seed {seed} numpy float{bits}: test accuracy {result['accuracy']:.4f}, to 99% "
                  f"{fmt(result['to_99'], '{:.2f} s')}, {result['ms_per_step']:.2f} ms/step; {per_op}")
            if torch_version:
                import torch
                other = run_torch(seed, recipe, data, args.eval_every, torch.float64 if bits == 64 else torch.float32)
                rows[f"torch float{bits}"].append(other)
                gap = max(abs(a - b) for a, b in zip(result["losses"][:20], other["losses"][:20]))
                print(f"seed {seed} torch float{bits} (torch {torch_version}, {other['threads']} threads): test "
                      f"accuracy {other['accuracy']:.4f}, to 99% {fmt(other['to_99'], '{:.2f} s')}, "
                      f"{other['ms_per_step']:.2f} ms/step; largest loss gap to numpy over the first 20 steps "
                      f"{gap:.2e}")
    print("\nmedians over seeds", args.seeds)
    print(f"{'':16s} {'test acc':>9s} {'min acc':>9s} {'to 99% (s)':>11s} {'ms/step':>8s}")
    for name, results in rows.items():
        if not results:
            continue
        to_99 = [r["to_99"] for r in results if r["to_99"] is not None]
        print(f"{name:16s} {np.median([r['accuracy'] for r in results]):9.4f} "
              f"{min(r['accuracy'] for r in results):9.4f} "
              f"{fmt(float(np.median(to_99)) if len(to_99) == len(results) else None, '{:11.2f}'):>11s} "
              f"{np.median([r['ms_per_step'] for r in results]):8.2f}")


if __name__ == "__main__":
    main()
