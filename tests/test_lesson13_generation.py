"""Lesson 13: generation: top-k and top-p filtering, temperature and seeded sampling, batched decoding, the loop.

The statistical tests draw tens of thousands of tokens from a fixed seed and compare each token's count with its
probability by Bernstein's inequality at a false-alarm rate of 1e-6 per test (split over the tokens counted): a
correct sampler fails one of them with probability below one in a million, whatever the seed.
"""

import numpy as np
import pytest

from kata.course.manifest import reread
from tests.helpers import assert_close, assert_raises, call, draw_params, pick, seed, seeded, set_params, shapes

pytestmark = pytest.mark.lesson13

SEE_FILTER = reread("13", "Top-k and top-p")
SEE_SAMPLE = reread("13", "Temperature and sampling")
SEE_BATCH = reread("13", "Decoding a batch")
SEE_LOOP = reread("13", "The generation loop")

EOS, PAD = 1, 0
FALSE_ALARM = 1e-6  # per statistical test


def softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def kept_of(out):
    """The kept columns of each row of a filtered (B, V) array, as sorted lists."""
    return [sorted(np.flatnonzero(np.isfinite(row)).tolist()) for row in out]


def check_filtered(impl, logits, kept, top_k=None, top_p=None):
    """filter_logits(logits) keeps exactly the columns `kept` (one list per row) unchanged, -inf elsewhere."""
    given = logits.copy()
    out = np.asarray(call(impl.filter_logits, logits, top_k=top_k, top_p=top_p, what="filter_logits",
                          see=SEE_FILTER))
    what = f"filter_logits({given.tolist()}, top_k={top_k}, top_p={top_p})"
    assert out.shape == given.shape, f"{what}: expected shape {given.shape}, got {out.shape}; {SEE_FILTER}"
    got = kept_of(out)
    assert got == kept, f"{what}: expected the kept columns {kept} (the others -inf), got {got}; {SEE_FILTER}"
    for row, cols in enumerate(kept):
        assert np.array_equal(out[row, cols], given[row, cols]), (
            f"{what}: the kept logits must come back unchanged: expected {given[row, cols].tolist()}, got "
            f"{out[row, cols].tolist()} in row {row}; {SEE_FILTER}")
        dropped = np.setdiff1d(np.arange(given.shape[1]), cols)
        assert np.all(out[row, dropped] == -np.inf), (
            f"{what}: the dropped logits must be -inf, got {out[row, dropped].tolist()} in row {row}; {SEE_FILTER}")


# ---------------------------------------------------------------- top-k and top-p by hand

def test_top_k_keeps_the_k_largest(impl):
    logits = np.array([[0.5, 2.0, -1.0, 3.0, 1.0], [4.0, -2.0, 0.0, 1.0, 3.5]])
    check_filtered(impl, logits, [[3], [0]], top_k=1)
    check_filtered(impl, logits, [[1, 3], [0, 4]], top_k=2)
    check_filtered(impl, logits, [[1, 3, 4], [0, 3, 4]], top_k=3)
    check_filtered(impl, logits, [[0, 1, 2, 3, 4]] * 2, top_k=5)
    check_filtered(impl, logits, [[0, 1, 2, 3, 4]] * 2, top_k=9)
    check_filtered(impl, logits, [[0, 1, 2, 3, 4]] * 2)


def test_top_k_keeps_every_tie_at_the_kth_value(impl):
    logits = np.array([[1.0, 2.0, 2.0, 0.0, 2.0], [3.0, 1.0, 1.0, 1.0, 0.0]])
    check_filtered(impl, logits, [[1, 2, 4], [0]], top_k=1)
    check_filtered(impl, logits, [[1, 2, 4], [0, 1, 2, 3]], top_k=2)


def test_top_p_keeps_the_smallest_nucleus(impl):
    # probabilities 0.5, 0.25, 0.125, 0.125 (logits log p, shuffled)
    logits = np.log(np.array([[0.125, 0.5, 0.125, 0.25]]))
    check_filtered(impl, logits, [[1]], top_p=0.3)
    check_filtered(impl, logits, [[1, 3]], top_p=0.6)
    check_filtered(impl, logits, [[1, 3]], top_p=0.74)
    check_filtered(impl, logits, [[0, 1, 2, 3]], top_p=0.9)  # the tie at 0.125: both kept (the mass before is 0.75)
    check_filtered(impl, logits, [[0, 1, 2, 3]], top_p=1.0)


def test_top_p_the_most_probable_is_always_kept(impl):
    logits = np.array([[0.0, 5.0, 1.0], [2.0, 2.1, 1.9]])
    check_filtered(impl, logits, [[1], [1]], top_p=1e-9)
    check_filtered(impl, logits, [[1], [1]], top_p=0.05)


def test_top_p_boundary_exactly_reached(impl):
    # probabilities 0.5, 0.25, 0.25 exactly in binary: the first two reach 0.75 exactly, so the third is not needed
    logits = np.log(np.array([[0.25, 0.5, 0.25]]))
    check_filtered(impl, logits, [[1]], top_p=0.5)
    out = np.asarray(call(impl.filter_logits, logits, top_p=0.75, what="filter_logits", see=SEE_FILTER))
    kept = kept_of(out)[0]
    assert 1 in kept and len(kept) == 2, (
        f"filter_logits(log [0.25, 0.5, 0.25], top_p=0.75): the two most probable reach 0.75, so exactly two "
        f"tokens are kept (either 0.25 of the tie), got the columns {kept}; {SEE_FILTER}")


def test_top_k_and_top_p_together_keep_what_both_keep(impl):
    logits = np.log(np.array([[0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]]))
    check_filtered(impl, logits, [[0, 1], [2, 3]], top_k=2, top_p=0.95)
    check_filtered(impl, logits, [[0], [3]], top_k=3, top_p=0.35)
    check_filtered(impl, logits, [[0, 1, 2], [1, 2, 3]], top_k=3, top_p=0.75)


def test_filter_random_rows_against_sorting(impl):
    B, V, k, p = pick((5, 7, 3, 0.7), (3, 12, 5, 0.9), (8, 4, 2, 0.5), (2, 20, 1, 0.3))
    rng = seeded(130)
    logits = rng.standard_normal((B, V)) * 2
    expected_k, expected_p = [], []
    for row in logits:
        order = np.argsort(-row)
        expected_k.append(sorted(order[:k].tolist()))
        probs = softmax(row)[order]
        count = int(np.searchsorted(np.cumsum(probs), p) + 1)  # the first prefix whose mass reaches p
        expected_p.append(sorted(order[:min(count, V)].tolist()))
    check_filtered(impl, logits, expected_k, top_k=k)
    check_filtered(impl, logits, expected_p, top_p=p)


# ---------------------------------------------------------------- sampling

def draws(impl, logits, rng_seed, **kwargs):
    """sample_next on logits with a seed for its Generator (a seed, not a Generator, crosses into a sandbox)."""
    given = logits.copy()
    out = np.asarray(call(impl.sample_next, logits, rng_seed, what="sample_next", see=SEE_SAMPLE, **kwargs))
    assert out.shape == (len(given),), (
        f"sample_next(logits of shape {given.shape}, ...): expected shape ({len(given)},), got {out.shape}; "
        f"{SEE_SAMPLE}")
    assert np.issubdtype(out.dtype, np.integer), f"sample_next: expected integer ids, got {out.dtype}; {SEE_SAMPLE}"
    return out


def test_temperature_zero_is_the_argmax(impl):
    B, V = pick((6, 9), (3, 20), (10, 4))
    logits = seeded(131).standard_normal((B, V))
    expected = logits.argmax(axis=1)
    got = draws(impl, logits, seed(132), temperature=0.0)
    assert np.array_equal(got, expected), (
        f"sample_next(logits, rng, temperature=0): expected the argmax of each row {expected.tolist()}, got "
        f"{got.tolist()}; {SEE_SAMPLE}")


def test_sampling_is_determined_by_the_generator(impl):
    logits = np.tile(np.array([[0.2, 1.0, -0.5, 0.7, 0.0, 0.3]]), (400, 1))
    first = draws(impl, logits, seed(133))
    again = draws(impl, logits, seed(133))
    other = draws(impl, logits, seed(133) + 1)
    assert np.array_equal(first, again), (
        f"sample_next with two generators of the same seed: expected the same draws, got {first[:12].tolist()}... and "
        f"{again[:12].tolist()}...; the generator given is the only source of randomness; {SEE_SAMPLE}")
    assert not np.array_equal(first, other), (
        f"sample_next with generators of different seeds gave the same 400 draws: the draws must come from the "
        f"generator given; {SEE_SAMPLE}")


def bernstein(n, p, delta):
    """A t with P(|count - n p| >= t) <= delta for a Binomial(n, p) count (Bernstein's inequality)."""
    L = np.log(2 / delta)
    return L / 3 + np.sqrt((L / 3) ** 2 + 2 * n * p * (1 - p) * L)


def assert_frequencies(impl, row, rng_seed, expected, n=20000, **kwargs):
    """n draws of sample_next on n copies of row: each token's count within Bernstein's bound of n * expected
    (false alarm FALSE_ALARM over all tokens), and a token of probability 0 never drawn."""
    logits = np.tile(np.asarray(row, dtype=np.float64)[None, :], (n, 1))
    got = draws(impl, logits, rng_seed, **kwargs)
    V = len(row)
    assert got.min() >= 0 and got.max() < V, f"sample_next: ids outside [0, {V}): {got.min()}..{got.max()}"
    counts = np.bincount(got, minlength=V)
    what = f"sample_next({n} copies of logits {np.round(row, 3).tolist()}, {kwargs})"
    for token in range(V):
        if expected[token] == 0:
            assert counts[token] == 0, (
                f"{what}: token {token} is filtered out (probability 0) but was drawn {counts[token]} times; the "
                f"counts were {counts.tolist()}; {SEE_SAMPLE}")
            continue
        bound = bernstein(n, expected[token], FALSE_ALARM / V)
        assert abs(counts[token] - n * expected[token]) < bound, (
            f"{what}: token {token} drawn {counts[token]} times, expected about {n * expected[token]:.0f} "
            f"(probability {expected[token]:.4f}, tolerance {bound:.0f} at a false-alarm rate of {FALSE_ALARM}); "
            f"all counts {counts.tolist()}, expected {np.round(n * np.asarray(expected)).astype(int).tolist()}; "
            f"{SEE_SAMPLE}")


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_frequencies_match_the_tempered_softmax(impl, temperature):
    V = pick(6, 8, 5, 10)
    row = seeded(134).standard_normal(V) * 1.5
    assert_frequencies(impl, row, seed(135), softmax(row / temperature), temperature=temperature)


@pytest.mark.parametrize("temperature", [1.0, 0.7, 1.6])
def test_frequencies_restricted_to_the_top_k(impl, temperature):
    V, k = pick((8, 3), (10, 4), (6, 2))
    row = seeded(136).standard_normal(V) * 1.5
    order = np.argsort(-row)
    expected = np.zeros(V)
    expected[order[:k]] = softmax(row[order[:k]] / temperature)
    assert_frequencies(impl, row, seed(137), expected, temperature=temperature, top_k=k)


def test_frequencies_restricted_to_the_nucleus_of_the_tempered_probabilities(impl):
    # tempered by 0.5 the probabilities are about 0.865, 0.117, 0.016, 0.002: top_p=0.8 keeps only token 0;
    # untempered (0.644, 0.237, 0.087, 0.032) it would keep two
    row = np.array([1.0, 2.0, -1.0, 0.0])
    assert_frequencies(impl, row, seed(138), np.array([0.0, 1.0, 0.0, 0.0]), n=4000, temperature=0.5, top_p=0.8)
    # tempered by 2: probabilities 0.455 (token 1), 0.276 (token 0), 0.167 (token 3), 0.102: top_p=0.8 keeps 1, 0, 3
    tempered = softmax(row / 2.0)
    expected = np.zeros(4)
    expected[[1, 0, 3]] = tempered[[1, 0, 3]] / tempered[[1, 0, 3]].sum()
    assert_frequencies(impl, row, seed(139), expected, temperature=2.0, top_p=0.8)


def test_temperature_changes_the_distribution_as_predicted(impl):
    row = np.array([0.0, 1.0, 2.0])
    n = 20000
    counts = {}
    for temperature in (0.25, 4.0):
        got = draws(impl, np.tile(row, (n, 1)), seed(140), temperature=temperature)
        counts[temperature] = np.bincount(got, minlength=3) / n
    cold, hot = softmax(row / 0.25)[2], softmax(row / 4.0)[2]
    assert counts[0.25][2] > 0.95 and abs(counts[0.25][2] - cold) < 0.02, (
        f"sample_next at temperature 0.25 on logits [0, 1, 2]: token 2 should come {cold:.3f} of the time (a low "
        f"temperature sharpens), got {counts[0.25][2]:.3f}; {SEE_SAMPLE}")
    assert abs(counts[4.0][2] - hot) < 0.03, (
        f"sample_next at temperature 4 on logits [0, 1, 2]: token 2 should come {hot:.3f} of the time (a high "
        f"temperature flattens towards 1/3), got {counts[4.0][2]:.3f}; {SEE_SAMPLE}")


# ---------------------------------------------------------------- a decoder drawn by the test

D, F, L, V = 8, 12, 1, 20


def model_with(impl, k, max_seq_len=24, eos_bias=0.0, flat=False):
    """A DecoderLM of the test's sizes holding parameters drawn from seeded(k) (or zeros: flat logits)."""
    model = impl.DecoderLM(vocab_size=V, embed_dim=D, num_heads=2, num_layers=L, ffn_dim=F, max_seq_len=max_seq_len)
    params = draw_params(shapes("DecoderLM", D, F, V, L), seeded(k), scale=0.8)
    if flat:
        params["output.W"] = np.zeros((D, V))
        params["output.b"] = np.zeros(V)
    params["output.b"] = params["output.b"].copy()
    params["output.b"][EOS] += eos_bias
    params["output.b"][PAD] -= 30.0  # the model never writes padding
    set_params(model, params)
    return model


def logits_after(model, prefix):
    """The test's own next-token logits: forward on the prefix alone, its last position."""
    return np.asarray(model.forward(np.array([prefix], dtype=np.int64)))[0, -1]


def greedy_chain(model, prompt, max_new):
    """The argmax chain computed by hand, one forward on the growing prefix per token, stopping after EOS."""
    prefix, written = list(prompt), []
    while len(written) < max_new:
        token = int(np.argmax(logits_after(model, prefix)))
        written.append(token)
        prefix.append(token)
        if token == EOS:
            break
    return written


def prompts_of(rng, lengths):
    return [[int(t) for t in rng.integers(2, V, size=n)] for n in lengths]


def generated(impl, model, prompts, max_new, **kwargs):
    given = [list(p) for p in prompts]
    out = call(impl.generate, model, prompts, max_new, what="generate", see=SEE_LOOP, **kwargs)
    assert isinstance(out, (list, tuple)) and len(out) == len(given), (
        f"generate({len(given)} prompts, {max_new}): expected a list of {len(given)} token lists, got "
        f"{type(out).__name__} of length {len(out) if hasattr(out, '__len__') else '?'}; {SEE_LOOP}")
    return [[int(t) for t in row] for row in out]


# ---------------------------------------------------------------- RecomputeDecoder

def test_next_logits_are_each_rows_own_last_position(impl):
    lengths = pick([3, 1, 5], [2, 6, 4, 1], [4, 2, 4])
    model = model_with(impl, 159)
    prompts = prompts_of(seeded(160), lengths)
    decoder = impl.RecomputeDecoder(model, [list(p) for p in prompts])
    got = np.asarray(decoder.next_logits())
    expected = np.stack([logits_after(model, p) for p in prompts])
    assert_close(got, expected, f"RecomputeDecoder(prompts of lengths {lengths}).next_logits()", SEE_BATCH,
                 rtol=1e-6, atol=1e-8)
    new = seeded(161).integers(2, V, size=len(prompts))
    call(decoder.append, new, what="RecomputeDecoder.append", see=SEE_BATCH)
    got = np.asarray(decoder.next_logits())
    expected = np.stack([logits_after(model, p + [int(t)]) for p, t in zip(prompts, new)])
    assert_close(got, expected, f"RecomputeDecoder: next_logits() after append({new.tolist()})", SEE_BATCH,
                 rtol=1e-6, atol=1e-8)
    more = seeded(162).integers(2, V, size=len(prompts))
    call(decoder.append, more, what="RecomputeDecoder.append", see=SEE_BATCH)
    got = np.asarray(decoder.next_logits())
    expected = np.stack([logits_after(model, p + [int(t), int(u)]) for p, t, u in zip(prompts, new, more)])
    assert_close(got, expected, "RecomputeDecoder: next_logits() after two appends", SEE_BATCH,
                 rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------- the loop

@pytest.mark.parametrize("max_new", [0, 1, 2, 5])
def test_writes_at_most_max_new_tokens(impl, max_new):
    model = model_with(impl, 147, eos_bias=-30.0)  # never EOS
    prompts = prompts_of(seeded(148), [2, 4])
    got = generated(impl, model, prompts, max_new)
    expected = [greedy_chain(model, p, max_new) for p in prompts]
    assert got == expected, (
        f"generate(prompts {prompts}, max_new_tokens={max_new}) on a model that never writes EOS: expected exactly "
        f"{max_new} tokens per prompt, {expected}, got {got}; {SEE_LOOP}")


def test_greedy_equals_the_argmax_chain(impl):
    lengths, max_new = pick(([3, 5, 2], 6), ([4, 1, 6, 2], 8), ([2], 10), ([7, 7], 5))
    model = model_with(impl, 141)
    prompts = prompts_of(seeded(142), lengths)
    expected = [greedy_chain(model, p, max_new) for p in prompts]
    got = generated(impl, model, prompts, max_new)
    assert got == expected, (
        f"generate(prompts {prompts}, max_new_tokens={max_new}) greedy: expected the argmax chain {expected} "
        f"(forward on each growing prefix, argmax at its last position), got {got}; {SEE_LOOP}")


def eos_model(impl, k, prompts, max_new):
    """A model whose EOS bias makes some prompts stop early and others not (chosen by the test's own chains)."""
    for draw in range(k, k + 6):
        for bias in np.linspace(0.0, 8.0, 33):
            model = model_with(impl, draw, eos_bias=bias)
            chains = [greedy_chain(model, p, max_new) for p in prompts]
            ends = {len(c) if c[-1] == EOS else None for c in chains}
            if len(ends) >= 2 and any(e is not None and e > 1 for e in ends):
                return model, chains
    pytest.skip("no EOS bias gave prompts that stop at different steps")


def test_stops_at_eos_with_eos_included(impl):
    lengths, max_new = pick(([3, 4, 2, 5, 3, 6], 7), ([2, 5, 3, 4, 6, 2], 8), ([4, 4, 2, 3, 5, 3], 6))
    prompts = prompts_of(seeded(143), lengths)
    model, expected = eos_model(impl, 144, prompts, max_new)
    got = generated(impl, model, prompts, max_new)
    assert got == expected, (
        f"generate(prompts {prompts}, max_new_tokens={max_new}) greedy on a model that writes EOS for some: expected "
        f"{expected} (each row ends with its EOS, nothing after; the others run to the limit), got {got}; "
        f"{SEE_LOOP}")


def test_eos_at_once(impl):
    model = model_with(impl, 145, eos_bias=60.0)
    prompts = prompts_of(seeded(146), [3, 1, 4])
    got = generated(impl, model, prompts, 5)
    assert got == [[EOS]] * 3, (
        f"generate on a model whose EOS logit dominates: expected [[{EOS}]] for each prompt (EOS written, then "
        f"stop), got {got}; {SEE_LOOP}")


def test_a_batch_gives_what_each_prompt_gives_alone(impl):
    lengths = pick([1, 6, 3, 4], [5, 2, 7], [2, 2, 6, 1, 3])
    model = model_with(impl, 149, eos_bias=1.5)
    prompts = prompts_of(seeded(150), lengths)
    alone = [generated(impl, model, [p], 6)[0] for p in prompts]
    together = generated(impl, model, prompts, 6)
    assert together == alone, (
        f"generate on prompts of lengths {lengths} together: expected what each gives alone, {alone}, got "
        f"{together}; each row's next token comes from its own last real position, not the padded end; "
        f"{SEE_BATCH}")


def test_seeded_sampling_is_reproducible(impl):
    model = model_with(impl, 151, eos_bias=-30.0)
    prompts = prompts_of(seeded(152), [2, 5, 3] * 10)
    kwargs = dict(temperature=1.5, top_k=8)
    first = generated(impl, model, prompts, 6, seed=seed(153), **kwargs)
    again = generated(impl, model, prompts, 6, seed=seed(153), **kwargs)
    other = generated(impl, model, prompts, 6, seed=seed(153) + 1, **kwargs)
    assert first == again, f"generate twice with seed {seed(153)}: expected the same text, got {first[:3]}... and " \
                           f"{again[:3]}...; {SEE_LOOP}"
    assert first != other, f"generate with seeds {seed(153)} and {seed(153) + 1}: the same 30 texts; {SEE_LOOP}"


def test_each_step_draws_fresh_numbers(impl):
    """On flat logits every token is equally likely at every step: a row repeating one token 6 times has
    probability 19**-5 per row, so more than 5 such rows of 60 is a false alarm far below 1e-6."""
    model = model_with(impl, 154, eos_bias=-30.0, flat=True)
    prompts = prompts_of(seeded(155), [3] * 60)
    got = generated(impl, model, prompts, 6, temperature=1.0, seed=seed(156))
    constant = sum(len(set(row)) == 1 for row in got)
    assert constant <= 5, (
        f"generate on flat logits with a seed: {constant} of 60 rows repeat one token 6 times ({got[:4]}...): each "
        f"step must draw new random numbers from one generator, not re-create it from the seed; {SEE_LOOP}")


def test_length_beyond_max_seq_len_is_refused(impl):
    model = model_with(impl, 157, max_seq_len=12)
    prompts = prompts_of(seeded(158), [5, 3])
    assert_raises(ValueError, "generate: longest prompt 5 + max_new_tokens 8 > max_seq_len 12", SEE_LOOP,
                  impl.generate, model, prompts, 8)
    got = generated(impl, model, prompts, 7)
    assert all(len(row) <= 7 for row in got), f"generate(..., 7) with max_seq_len 12: got {got}; {SEE_LOOP}"


