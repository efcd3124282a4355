"""Tokens per second generating with and without a KV cache: the NumPy reference and PyTorch eager, float64.

    python -m benchmarks.kv_cache_benchmark [--lengths 10 20 40] [--runs 5] [--batch 8] [--no-torch]

A default-size DecoderLM (vocab 20, D 64, 4 heads, 2 layers, F 256, max_seq_len 50) with random weights
(seed 0; the EOS logit's bias pushed down so that no row stops early) writes, greedily, each of --lengths new
tokens after a batch of prompts of 3 to 8 tokens, with the reference's generate(use_cache=True) and
generate(use_cache=False). Tokens per second = batch x new tokens / seconds, median over --runs runs. With
PyTorch installed (it is no dependency of the kata: e.g. `python3 -m venv /tmp/torchenv &&
/tmp/torchenv/bin/pip install torch numpy`, then run this module with that venv's python from the repository
root), the same model, its weights copied in (benchmarks/torch_decoder_mirror.py), does the same in eager mode,
with and without its own KV cache; the mirror's logits are compared with the NumPy model's first, and every
run must write the same tokens as the NumPy model without a cache.

One thread each, NumPy's BLAS and PyTorch (OMP_NUM_THREADS, when set, gives another number): on a shared
machine, two threads per library measured mostly their contention (runs 10 to 100 times slower, at random).
"""

import argparse
import os
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before NumPy starts its BLAS
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

import solutions as impl  # noqa: E402


def default_model(seed=0):
    np.random.seed(seed)
    model = impl.DecoderLM()
    model.output.b[impl.EOS_TOKEN] -= 1e3  # never written: every row writes all its tokens
    return model


def draw_prompts(batch, seed=0):
    rng = np.random.default_rng(seed)
    return [[int(t) for t in rng.integers(2, impl.VOCAB_SIZE, size=n)] for n in rng.integers(3, 9, size=batch)]


def timed(run, runs):
    """(median seconds, the last run's result) over runs calls of run(), after one call not timed (warm-up)."""
    seconds, result = [], run()
    for _ in range(runs):
        start = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds)), result


def mirror_check(model, prompts):
    """The largest |logit difference| between the PyTorch mirror and the NumPy model, on the padded prompts
    (every real position), and between their cached decoding steps."""
    import torch

    from benchmarks.torch_decoder_mirror import DecoderMirror, padded
    mirror = DecoderMirror(model)
    tokens, lengths = padded(prompts, impl.PAD_TOKEN)
    mask = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]
    with torch.no_grad():
        theirs = mirror(tokens, mask).numpy()
        cache = mirror.new_cache(len(prompts))
        theirs_cached = mirror.decode_step(tokens, cache).numpy()
    ours = model.forward(tokens.numpy(), mask.numpy())
    real = mask.numpy()
    return mirror, float(np.abs(theirs - ours)[real].max()), float(np.abs(theirs_cached - ours)[real].max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[5, 10, 20, 40],
                        help="new tokens per prompt, one row of the table each (default: 5 10 20 40; at most 42)")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure, the median is shown (default 5)")
    parser.add_argument("--batch", type=int, default=8, help="prompts generated together (default 8)")
    parser.add_argument("--no-torch", action="store_true", help="no PyTorch runs, even where torch is installed")
    args = parser.parse_args(argv)
    try:
        import torch
        torch_version = None if args.no_torch else torch.__version__
    except ImportError:
        torch_version = None
    model, prompts = default_model(), draw_prompts(args.batch)
    limit = model.positional_encoding.max_seq_len - max(len(p) for p in prompts)
    if max(args.lengths) > limit:
        parser.error(f"--lengths: at most {limit} new tokens after prompts of up to {max(map(len, prompts))}")
    print(f"DecoderLM: {model.num_parameters()} parameters, D {model.embed_dim}, {len(model.blocks)} layers, "
          f"float64; {os.environ['OMP_NUM_THREADS']} thread(s); {args.batch} prompts of {min(map(len, prompts))} to "
          f"{max(map(len, prompts))} tokens; greedy; "
          f"median of {args.runs} runs")
    if torch_version:
        from benchmarks.torch_decoder_mirror import greedy
        torch.set_grad_enabled(False)
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        mirror, gap, gap_cached = mirror_check(model, prompts)
        print(f"PyTorch {torch_version} ({torch.get_num_threads()} threads) mirror of the same weights: largest "
              f"logit difference to the NumPy model {gap:.2e} (forward), {gap_cached:.2e} (its cached prefill)")
    header = f"{'new tokens':>10s} {'numpy cache':>12s} {'numpy no cache':>15s} {'speed-up':>9s}"
    if torch_version:
        header += f" {'torch cache':>12s} {'torch no cache':>15s} {'speed-up':>9s}"
    print("\ntokens per second (batch x new tokens / seconds)")
    print(header)
    for n in args.lengths:
        def numpy_run(use_cache):
            return impl.generate(model, prompts, n, use_cache=use_cache)
        cached, written = timed(lambda: numpy_run(True), args.runs)
        plain, reference = timed(lambda: numpy_run(False), args.runs)
        assert written == reference and all(len(row) == n for row in reference), "the cache changed the tokens"
        rate = args.batch * n
        line = f"{n:10d} {rate / cached:12.0f} {rate / plain:15.0f} {plain / cached:8.1f}x"
        if torch_version:
            t_cached, t_written = timed(lambda: greedy(mirror, prompts, n, impl.PAD_TOKEN, True), args.runs)
            t_plain, t_reference = timed(lambda: greedy(mirror, prompts, n, impl.PAD_TOKEN, False), args.runs)
            same = (t_written.tolist() == reference) and (t_reference.tolist() == reference)
            line += f" {rate / t_cached:12.0f} {rate / t_plain:15.0f} {t_plain / t_cached:8.1f}x"
            line += "" if same else "  (torch wrote other tokens than numpy!)"
        print(line)


if __name__ == "__main__":
    main()
