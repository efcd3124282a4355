"""Lesson 14: a KV cache: attention over cached keys and values, a decoding step, generating with the cache."""

import numpy as np
import pytest

from kata.course.manifest import reread
from tests.helpers import (
    assert_close,
    assert_raises,
    assert_shape,
    call,
    draw_params,
    pick,
    seed,
    seeded,
    set_params,
    shapes,
)

pytestmark = pytest.mark.lesson14

SEE_ATTENTION = reread("14", "Attention over the cache")
SEE_STEP = reread("14", "A decoding step")
SEE_DECODER = reread("14", "Generating with the cache")

V, D, H, F, L, CAPACITY = 20, 8, 2, 12, 2, 14  # a small DecoderLM; CAPACITY is its max_seq_len
EXACT = dict(rtol=1e-12, atol=1e-12)  # float64: the cache changes the order of the sums, nothing else
MODES = {"greedy": dict(temperature=0.0), "temperature": dict(temperature=0.8),
         "top-k": dict(temperature=1.0, top_k=3), "top-p": dict(temperature=1.0, top_p=0.8)}


def model_params(rng, tied, num_layers=L):
    return draw_params(shapes("DecoderLM tied" if tied else "DecoderLM", D, F, V, num_layers), rng)


def make_model(module, params, tied, num_layers=L, capacity=CAPACITY):
    """A DecoderLM (of the implementation under test, or of the reference in a compute) holding params."""
    model = module.DecoderLM(vocab_size=V, embed_dim=D, num_heads=H, num_layers=num_layers, ffn_dim=F,
                             max_seq_len=capacity, tie_weights=tied)
    set_params(model, params)
    return model


def draw_prompts(rng, lengths):
    """Prompts of the given lengths: ordinary tokens (2 .. V-1), never PAD or EOS."""
    return [[int(t) for t in rng.integers(2, V, size=n)] for n in lengths]


def prefix_logits(params, tied, sequences, num_layers=L):
    """compute for expect(): for each sequence, the reference model's logits (len, V) at each of its positions,
    the model run on that sequence alone. The model is causal: the logits at position p are those of the prefix
    ending at p, which is what a decoder must give when that prefix is all it has seen."""
    def compute(ref):
        model = make_model(ref, params, tied, num_layers)
        return [model.forward(np.array([seq], dtype=np.int64), np.ones((1, len(seq)), dtype=bool))[0]
                for seq in sequences]
    return compute


def full_attention(params, rows):
    """compute for expect(): for each row (T_b, D), the reference CausalSelfAttention's forward on it alone."""
    def compute(ref):
        attention = ref.CausalSelfAttention(D, H)
        set_params(attention, params)
        return [attention.forward(row[None].copy())[0] for row in rows]
    return compute


# ---------------------------------------------------------------- attention over the cache

@pytest.mark.parametrize("t", [1, 3])
def test_cached_attention_is_full_causal_attention_at_the_new_positions(impl, expect, t):
    rng = seeded(1400 + t)
    lengths = np.array(pick([0, 2, 5], [1, 0, 4, 3], [6, 1], [3]), dtype=np.int64)
    B, C = len(lengths), int(lengths.max()) + t + 3
    params = draw_params(shapes("CausalSelfAttention", D), rng)
    rows = [rng.standard_normal((n + t, D)) for n in lengths]  # row b: its whole prefix, old positions then new
    Dh = D // H

    def heads(x, W):  # (T, D) -> (H, T, Dh): the projection, each head's slice of it
        return (x @ W).reshape(len(x), H, Dh).transpose(1, 0, 2)

    junk = rng.standard_normal((2, B, H, C, Dh)) * 100  # what the slots hold that must neither be read nor kept
    keys, values = junk[0].copy(), junk[1].copy()
    for b, n in enumerate(lengths):  # the positions already filled hold the keys and values of the old inputs
        keys[b, :, :n] = heads(rows[b][:n], params["W_k"])
        values[b, :, :n] = heads(rows[b][:n], params["W_v"])
    keys_before, values_before = keys.copy(), values.copy()
    x = np.stack([row[n:] for row, n in zip(rows, lengths)])  # (B, t, D): the new positions only
    x_given, lengths_given = x.copy(), lengths.copy()

    attention = impl.CausalSelfAttention(D, H)
    set_params(attention, params)
    out = impl.cached_attention(attention, x_given, keys, values, lengths_given)
    what = f"cached_attention(attention, x {x.shape}, keys {keys.shape}, values, lengths={lengths.tolist()})"
    assert np.array_equal(x_given, x), f"{what} changed x in place: it must only read it; {SEE_ATTENTION}"
    assert np.array_equal(lengths_given, lengths), (
        f"{what} changed lengths to {lengths_given.tolist()}: it writes keys and values, and decode_step advances "
        f"the lengths once, after the last layer; {SEE_ATTENTION}")
    assert_shape(out, (B, t, D), what, SEE_ATTENTION)

    full = expect(full_attention(params, rows))
    for b, n in enumerate(lengths):
        assert_close(out[b], full[b][n:], f"{what}, row {b} (positions {n}..{n + t - 1}): against "
                     f"CausalSelfAttention.forward on the row's whole prefix", SEE_ATTENTION, **EXACT)

    for name, cache, before, W in (("keys", keys, keys_before, params["W_k"]),
                                   ("values", values, values_before, params["W_v"])):
        for b, n in enumerate(lengths):
            assert_close(cache[b, :, :n], before[b, :, :n], f"{what}: {name}[{b}] at the positions already filled "
                         f"(0..{n - 1}), which must stay as they were", SEE_ATTENTION, rtol=0, atol=0)
            assert_close(cache[b, :, n:n + t], heads(x[b], W), f"{what}: {name}[{b}] at the new positions "
                         f"{n}..{n + t - 1} (lengths[b] .. lengths[b] + t - 1), where x's projections go",
                         SEE_ATTENTION, **EXACT)
            assert_close(cache[b, :, n + t:], before[b, :, n + t:], f"{what}: {name}[{b}] after the new positions "
                         f"(from {n + t} on), which nothing may write", SEE_ATTENTION, rtol=0, atol=0)


# ---------------------------------------------------------------- a decoding step

def step_through(impl, model, cache, chunks, what):
    """Feed each (B, t) chunk to model.decode_step; the logits of each step, checking the lengths grow by t."""
    outs = []
    for chunk in chunks:
        before = np.array(cache.lengths)
        logits = call(model.decode_step, chunk, cache, what=f"{what}: decode_step(tokens {chunk.shape})",
                      see=SEE_STEP)
        assert_shape(logits, (*chunk.shape, V), f"{what}: decode_step(tokens {chunk.shape})", SEE_STEP)
        assert_close(np.asarray(cache.lengths), before + chunk.shape[1], f"{what}: cache.lengths after "
                     f"decode_step(tokens {chunk.shape}), from {before.tolist()}: each row grows by t",
                     SEE_STEP, rtol=0, atol=0)
        outs.append(logits)
    return outs


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_decode_step_gives_the_logits_of_the_whole_prefix(impl, expect, tied):
    rng = seeded(1410 + tied)
    params = model_params(rng, tied)
    sizes = pick([1, 3, 1, 1, 2, 1], [2, 1, 1, 4, 1], [5, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1])
    B = pick(3, 1, 2, 4)
    tokens = rng.integers(2, V, size=(B, sum(sizes)))
    chunks = np.split(tokens, np.cumsum(sizes)[:-1], axis=1)
    model = make_model(impl, params, tied)
    cache = model.new_cache(B)
    what = f"decode_step in chunks of {sizes} tokens ({'tied' if tied else 'untied'} DecoderLM, B={B})"
    outs = step_through(impl, model, cache, chunks, what)
    expected = expect(prefix_logits(params, tied, list(tokens)))
    start = 0
    for size, logits in zip(sizes, outs):
        for b in range(B):
            assert_close(logits[b], expected[b][start:start + size], f"{what}: the logits of row {b} at positions "
                         f"{start}..{start + size - 1}, against model.forward on the row's whole prefix",
                         SEE_STEP, **EXACT)
        start += size


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_decode_step_with_padded_prompts(impl, expect, tied):
    """Right-padded prompts of different lengths go in at once; then each row's lengths is set to its prompt's
    length (KVCache.lengths is public), and each new token goes in after the row's own prompt."""
    rng = seeded(1420 + tied)
    params = model_params(rng, tied)
    lengths = pick([2, 5, 1, 4], [3, 3], [1, 6], [4, 2, 5])
    steps = pick(4, 3, 5)
    prompts = draw_prompts(rng, lengths)
    B, T = len(prompts), max(lengths)
    padded = np.zeros((B, T), dtype=np.int64)
    for b, prompt in enumerate(prompts):
        padded[b, : len(prompt)] = prompt
    new = rng.integers(2, V, size=(B, steps))
    model = make_model(impl, params, tied)
    cache = model.new_cache(B)
    what = f"decode_step on prompts of lengths {lengths} right-padded to {T}, then {steps} tokens one at a time"
    (first,) = step_through(impl, model, cache, [padded], what)
    cache.lengths[:] = lengths  # each row's padding is never read and the next token overwrites it
    outs = step_through(impl, model, cache, [new[:, k:k + 1] for k in range(steps)], what)
    sequences = [prompt + new[b].tolist() for b, prompt in enumerate(prompts)]
    expected = expect(prefix_logits(params, tied, sequences))
    for b, n in enumerate(lengths):
        assert_close(first[b, :n], expected[b][:n], f"{what}: the prompt's logits of row {b}", SEE_STEP, **EXACT)
        for k, logits in enumerate(outs):
            assert_close(logits[b, 0], expected[b][n + k], f"{what}: row {b}'s logits at step {k + 1} (position "
                         f"{n + k}, after its own prompt of {n} tokens)", SEE_STEP, **EXACT)


def test_decode_step_refuses_to_go_beyond_the_capacity(impl):
    rng = seeded(1430)
    model = make_model(impl, model_params(rng, False), False)
    B = pick(2, 1, 3)
    cache = model.new_cache(B)
    what = f"decode_step on a cache of capacity {CAPACITY}"
    step_through(impl, model, cache, [rng.integers(2, V, size=(B, CAPACITY - 2)),
                                      rng.integers(2, V, size=(B, 1))], what)
    assert_raises(ValueError, f"{what} holding {CAPACITY - 1} positions, given 2 more tokens", SEE_STEP,
                  model.decode_step, rng.integers(2, V, size=(B, 2)), cache)
    step_through(impl, model, cache, [rng.integers(2, V, size=(B, 1))], what)  # exactly full is allowed
    assert_raises(ValueError, f"{what} full, given 1 more token", SEE_STEP,
                  model.decode_step, rng.integers(2, V, size=(B, 1)), cache)


# ---------------------------------------------------------------- generating with the cache

def last_logits(params, tied, sequences):
    """compute for expect(): the reference model's logits (V,) at the last token of each sequence, run alone (every
    token attended to, a sampled PAD included, as in a decoder)."""
    def compute(ref):
        model = make_model(ref, params, tied)
        return [model.forward(np.array([seq], dtype=np.int64), np.ones((1, len(seq)), dtype=bool))[0, -1]
                for seq in sequences]
    return compute


def choose(logits, mode, rng):
    """The test's own sampler (the tokens it appends): greedy, or a draw from the tempered softmax over the kept
    tokens (the 3 largest for top-k, the smallest set of mass >= 0.8 for top-p)."""
    options = MODES[mode]
    if options["temperature"] == 0:
        return int(np.argmax(logits))
    z = logits / options["temperature"]
    p = np.exp(z - z.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    keep = np.ones(len(p), dtype=bool)
    if "top_k" in options:
        keep[order[options["top_k"]:]] = False
    if "top_p" in options:
        before = np.cumsum(p[order]) - p[order]
        keep[order[before >= options["top_p"]]] = False
    p = np.where(keep, p, 0.0)
    return int(rng.choice(len(p), p=p / p.sum()))


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_cached_decoder_next_logits_at_every_step(impl, expect, tied, mode):
    """At every step each row's next_logits are those of model.forward on the row's own prefix; the tokens
    appended are the test's own choices, sampled in each mode from the logits the test computed itself."""
    rng = seeded(1440 + 10 * tied + list(MODES).index(mode))
    params = model_params(rng, tied)
    lengths = pick([3, 1, 6], [2, 2], [5, 1, 1, 3], [1])
    steps = pick(5, 3, 7)
    sequences = draw_prompts(rng, lengths)
    model = make_model(impl, params, tied)
    what = f"CachedDecoder(model, prompts of lengths {lengths}), tokens chosen by {mode} sampling"
    decoder = call(impl.CachedDecoder, model, [list(seq) for seq in sequences], what=what, see=SEE_DECODER)
    for k in range(steps + 1):
        expected = expect(last_logits(params, tied, sequences))
        logits = decoder.next_logits()
        assert_shape(logits, (len(sequences), V), f"{what}: next_logits() after {k} appends", SEE_DECODER)
        for b, n in enumerate(lengths):
            assert_close(logits[b], expected[b], f"{what}: next_logits() after {k} appends, row {b}: against "
                         f"model.forward on the row's own {n + k} tokens (at its last one, not at the padding)",
                         SEE_DECODER, **EXACT)
        if k < steps:
            chosen = np.array([choose(row, mode, rng) for row in expected], dtype=np.int64)
            call(decoder.append, chosen.copy(), what=f"{what}: append", see=SEE_DECODER)
            sequences = [seq + [int(token)] for seq, token in zip(sequences, chosen)]


@pytest.mark.parametrize("mode", list(MODES))
def test_generate_with_the_cache_writes_what_it_writes_without(impl, expect, mode):
    rng = seeded(1450 + list(MODES).index(mode))
    tied = mode in ("temperature", "top-p")
    params = model_params(rng, tied)
    prompts = draw_prompts(rng, pick([4, 2, 6], [3, 5], [1, 2, 3, 4]))
    max_new = CAPACITY - max(len(p) for p in prompts)
    options = dict(MODES[mode], seed=seed(1455))
    what = f"generate(model, prompts, {max_new}, {options}, use_cache=True)"
    model = make_model(impl, params, tied)
    cached = call(impl.generate, model, prompts, max_new, **options, use_cache=True, what=what, see=SEE_DECODER)
    plain = call(impl.generate, model, prompts, max_new, **options, use_cache=False,
                 what=what.replace("True", "False"), see=SEE_DECODER)
    expected = expect(lambda ref: ref.generate(make_model(ref, params, tied), prompts, max_new, **options))
    assert [list(map(int, row)) for row in plain] == expected, (
        f"{what.replace('True', 'False')} (lesson 13) gives {plain}, expected {expected}; "
        f"{reread('13', 'The generation loop')}")
    assert [list(map(int, row)) for row in cached] == expected, (
        f"{what}: wrote {cached}, but without the cache (the same seed) {expected}: the cached logits must be "
        f"the recomputed ones; {SEE_DECODER}")


@pytest.mark.parametrize("steps", [3, 6])
def test_the_cache_is_really_used(impl, expect, steps):
    """With the cache the prompt goes through the model once. After the prefill the test changes the embedding of
    every token the prompts use (and that no appended token uses): a decoder that kept the prompts' keys and values
    is not affected, and gives the logits of the unchanged model; one that runs the prefix again sees the change."""
    rng = seeded(1460 + steps)
    params = model_params(rng, False)  # untied: the output does not read the embedding
    lengths = pick([3, 1, 5], [2, 6], [4, 4, 1, 2])
    prompts = [[int(t) for t in rng.integers(2, 11, size=n)] for n in lengths]  # tokens 2..10
    new = rng.integers(11, V, size=(len(prompts), steps))  # tokens 11..V-1
    sequences = [prompt + new[b].tolist() for b, prompt in enumerate(prompts)]
    expected = expect(prefix_logits(params, False, sequences))
    model = make_model(impl, params, False)
    what = f"CachedDecoder(model, prompts of lengths {lengths})"
    decoder = call(impl.CachedDecoder, model, prompts, what=what, see=SEE_DECODER)
    decoder.next_logits()
    changed = np.array(params["embedding.W"])
    changed[2:11] = rng.standard_normal((9, D)) * 3  # the prompts' tokens get other embeddings
    set_params(model, {"embedding.W": changed})
    for k in range(steps):
        call(decoder.append, new[:, k].copy(), what=f"{what}: append", see=SEE_DECODER)
        logits = decoder.next_logits()
        assert_shape(logits, (len(prompts), V), f"{what}: next_logits() after {k + 1} appends", SEE_DECODER)
        for b, n in enumerate(lengths):
            assert_close(logits[b], expected[b][n + k], (
                f"{what}; after the prefill the test changed the embedding of the prompts' tokens 2..10, which no "
                f"appended token (11..{V - 1}) uses: with the prompts' keys and values kept in the cache, the "
                f"logits stay those of the unchanged model; after {k + 1} appends, row {b} differs, so the prompt "
                f"went through the model again (each append must run only the new token)"), SEE_DECODER, **EXACT)
    assert_raises(ValueError, f"CachedDecoder.append after {steps} appends and then until the cache (capacity "
                  f"{CAPACITY}) is full", SEE_STEP, lambda: [decoder.append(new[:, 0].copy())
                                                              for _ in range(CAPACITY)])
