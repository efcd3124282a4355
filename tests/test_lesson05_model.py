"""Lesson 05: Transformer.forward: embed, add positions, stack the blocks, pool the first token, project.

Backward, get_parameters and zero_grad of the model belong to lesson 07: nothing here calls them.
"""

import numpy as np
import pytest
from pytest_check import check

from kata.course.contract import get_path
from kata.course.manifest import reread
from tests.helpers import (
    BLOCK,
    assert_close,
    assert_raises,
    assert_shape,
    call,
    draw_params,
    pick,
    seeded,
    set_params,
    shapes,
    transformer_params,
)
from tests.positions import assert_float64_positions

pytestmark = pytest.mark.lesson05

SEE = reread("05", "Stacking, pooling and projecting")

V, D, H, L, F, MAX_LEN = 20, 8, 2, 2, 16, 12  # a small model: vocab, embed, heads, layers, ffn, max_seq_len
CONFIG = (f"Transformer(vocab_size={V}, embed_dim={D}, num_heads={H}, num_layers={L}, ffn_dim={F}, "
          f"max_seq_len={MAX_LEN})")


def make_model(impl, params=None):
    """The small model of impl (the implementation under test, or the reference inside a compute), holding params
    ({path: array}) if given."""
    model = impl.Transformer(vocab_size=V, embed_dim=D, num_heads=H, num_layers=L, ffn_dim=F, max_seq_len=MAX_LEN)
    if params is not None:
        set_params(model, params)
    return model


def draw_model(k):
    """Random parameters of the small model, drawn by the test (so ones and zeros at initialisation hide nothing),
    and the generator that drew them, for the test's further draws."""
    rng = seeded(k)
    return draw_params(shapes("Transformer", D, F, V, L), rng), rng


def random_tokens(rng, B, T, lengths=None):
    """(B, T) int64 ids of real tokens (never PAD), right-padded with PAD beyond each row's length."""
    tokens = rng.integers(1, V, size=(B, T))
    if lengths is not None:
        tokens[np.arange(T)[None, :] >= np.asarray(lengths)[:, None]] = 0
    return tokens


def reference_logits(params, tokens, *masks):
    """compute for expect(): the reference model's logits for tokens, given no mask, then for each of masks."""
    def compute(ref):
        model = make_model(ref, params)
        return [model.forward(tokens)] + [model.forward(tokens, mask) for mask in masks]
    return compute


def block_inputs(reference, tokens, mask):
    """[each block's input, the last block's output] in a forward pass of the reference model (each block's forward
    wrapped for the pass to keep what it was given and what it returned)."""
    seen = []
    for block in reference.blocks:
        def keep(x, *rest, forward=block.forward, **named):
            seen.append(np.array(x))
            out = forward(x, *rest, **named)
            seen.append(np.array(out))
            return out
        block.forward = keep
    try:
        reference.forward(tokens, mask)
    finally:
        for block in reference.blocks:
            del block.forward
    return seen[0::2] + [seen[-1]]


def final_hidden(params, tokens, mask):
    """compute for expect(): the last block's output (B, T, D) in the reference model's forward pass."""
    def compute(ref):
        return block_inputs(make_model(ref, params), tokens, mask)[-1]
    return compute


def pooling_hint(logits, hidden, W, b, mask):
    """Name the pooling a wrong answer matches, if it matches a common one."""
    weights = mask[:, :, None] / mask.sum(axis=1)[:, None, None]
    candidates = {"the mean over positions": hidden.mean(axis=1), "the mean over real tokens":
                  (hidden * weights).sum(axis=1), "the last position": hidden[:, -1]}
    for name, pooled in candidates.items():
        if isinstance(logits, np.ndarray) and logits.shape == (len(hidden), len(b)) and np.allclose(
                logits, pooled @ W + b, rtol=1e-6, atol=1e-9):
            return f" (your logits are the output layer applied to {name}: read the first token, x[:, 0, :])"
    return ""


# ---------------------------------------------------------------- shapes and the default model

@pytest.mark.parametrize("B, T", [(1, 1), (3, 1), (1, 6), (2, 5), (4, MAX_LEN)])
def test_model_logits_shape(impl, B, T):
    model = make_model(impl)
    tokens = random_tokens(seeded(20), B, T)
    assert_shape(call(model.forward, tokens, what="Transformer.forward", see=SEE),
                 (B, V), f"{CONFIG}.forward(tokens of shape {(B, T)}): the logits (B, V)",
                 SEE)


def test_default_model_has_102036_parameters(impl):
    model = impl.Transformer()
    tokens = random_tokens(seeded(21), 2, 6, lengths=[6, 4])
    assert_shape(call(model.forward, tokens, what="Transformer.forward", see=SEE),
                 (2, 20), "Transformer().forward(tokens of shape (2, 6)): the logits (B, V)",
                 SEE)
    assert isinstance(model.blocks, list) and len(model.blocks) == 2, (
        f"Transformer().blocks: expected a list of 2 TransformerBlocks (num_layers=2), got "
        f"{type(model.blocks).__name__} of length {len(model.blocks)}; {SEE}")
    expected_shapes = {"embedding.W": (20, 64), "output.W": (64, 20), "output.b": (20,)}
    block_shapes = {"attention.W_q": (64, 64), "attention.W_k": (64, 64), "attention.W_v": (64, 64),
                    "attention.W_o": (64, 64), "norm1.gamma": (64,), "norm1.beta": (64,),
                    "feed_forward.linear1.W": (64, 256), "feed_forward.linear1.b": (256,),
                    "feed_forward.linear2.W": (256, 64), "feed_forward.linear2.b": (64,),
                    "norm2.gamma": (64,), "norm2.beta": (64,)}
    for i in range(2):
        expected_shapes.update({f"blocks.{i}.{p}": block_shapes[p] for p in BLOCK})
    total = 0
    for path in transformer_params(2):
        value = get_path(model, path)
        with check:
            assert isinstance(value, np.ndarray) and value.shape == expected_shapes[path], (
                f"Transformer().{path}: expected an array of shape {expected_shapes[path]}, got "
                f"{getattr(value, 'shape', type(value).__name__)}; {SEE}")
        total += np.size(value)
    with check:
        assert total == 102_036, f"Transformer() holds {total:,} parameters, expected 102,036; {SEE}"


# ---------------------------------------------------------------- forward

def test_model_matches_reference(impl, expect):
    B, T, lengths = pick((4, 7, [7, 5, 3, 1]), (3, 9, [9, 2, 6]), (5, MAX_LEN, [12, 1, 7, 12, 4]), (2, 3, [3, 2]))
    params, rng = draw_model(22)
    tokens = random_tokens(rng, B, T, lengths=lengths)
    expected, = expect(reference_logits(params, tokens))
    model = make_model(impl, params)
    assert_float64_positions(model.positional_encoding, T, D, "Transformer.positional_encoding, which this test uses")
    assert_close(call(model.forward, tokens, what="Transformer.forward", see=SEE), expected,
                 f"{CONFIG}.forward(right-padded tokens of shape {(B, T)}) with random parameters", SEE)


def scaled_to_800(params, tokens):
    """compute for expect(): params with each block's W_q and W_k scaled so that its largest attention score is
    +800 (each block's input computed by the reference's layers), and the reference's logits with them."""
    def compute(ref):
        reference, scaled, mask = make_model(ref, params), dict(params), tokens != 0
        for layer, block in enumerate(reference.blocks):
            x = block_inputs(reference, tokens, mask)[layer]  # with the blocks before it already scaled
            Dh, W_q, W_k = D // H, scaled[f"blocks.{layer}.attention.W_q"], scaled[f"blocks.{layer}.attention.W_k"]
            q, k = (x @ W_q).reshape(*x.shape[:2], H, Dh), (x @ W_k).reshape(*x.shape[:2], H, Dh)
            factor = np.sqrt(800.0 / (np.einsum("bqhd,bkhd->bhqk", q, k).max() / np.sqrt(Dh)))
            for name in ("attention.W_q", "attention.W_k"):
                path = f"blocks.{layer}.{name}"
                scaled[path] = scaled[path] * factor
                set_params(block, {name: scaled[path]})
        return {"params": scaled, "logits": reference.forward(tokens)}
    return compute


def test_model_is_stable_for_large_attention_scores(impl, expect):
    # issue 13: every softmax on the way must subtract its row's maximum, the one inside attention included
    B, T, lengths = pick((3, 6, [6, 4, 2]), (2, 8, [8, 3]), (4, 5, [5, 5, 1, 3]))
    params, rng = draw_model(28)
    tokens = random_tokens(rng, B, T, lengths=lengths)
    expected = expect(scaled_to_800(params, tokens))  # each block's W_q and W_k scaled: its largest score is +800
    model = make_model(impl, expected["params"])
    assert_float64_positions(model.positional_encoding, T, D, "Transformer.positional_encoding, which this test uses")
    assert_close(model.forward(tokens), expected["logits"],
                 f"{CONFIG}.forward with attention scores reaching 800 in every block (each softmax must subtract "
                 "its row's maximum, the one inside MultiHeadAttention too: exp(800) overflows)", SEE)


@pytest.mark.parametrize("B, T, lengths", [(3, 6, [6, 4, 2]), (2, 1, [1, 1])])
def test_model_pools_the_first_token(impl, expect, B, T, lengths):
    params, rng = draw_model(23)
    tokens = random_tokens(rng, B, T, lengths=lengths)
    mask = tokens != 0
    hidden = expect(final_hidden(params, tokens, mask))
    model = make_model(impl, params)
    assert_float64_positions(model.positional_encoding, T, D, "Transformer.positional_encoding, which this test uses")
    W, b = params["output.W"], params["output.b"]
    logits = call(model.forward, tokens, what="Transformer.forward", see=SEE)
    assert_close(logits, hidden[:, 0, :] @ W + b,
                 "Transformer.forward: output(x[:, 0, :]), the output layer applied to the first position of the "
                 "last block's output, where x = blocks(positional_encoding(embedding(tokens)), mask)"
                 + pooling_hint(logits, hidden, W, b, mask), SEE)


def test_model_returns_logits_not_probabilities(impl):
    B, T, lengths = pick((3, 5, [5, 3, 2]), (2, 7, [4, 7]), (4, 3, [3, 1, 2, 3]))
    params, rng = draw_model(24)
    model = make_model(impl, params)
    bias = np.linspace(-3.0, 4.0, V)
    model.output.W = np.zeros((D, V))  # every hidden state now maps to the bias
    model.output.b = bias.copy()
    tokens = random_tokens(rng, B, T, lengths=lengths)
    logits = call(model.forward, tokens, what="Transformer.forward", see=SEE)
    probs = np.exp(bias) / np.exp(bias).sum()
    hint = (" (these are softmax probabilities: forward returns the raw logits, the loss applies the softmax)"
            if isinstance(logits, np.ndarray) and logits.shape == (B, V) and np.allclose(logits, probs) else "")
    assert_close(logits, np.tile(bias, (B, 1)),
                 "Transformer.forward with output.W = 0 and output.b = linspace(-3, 4, 20): every row of logits is "
                 "output.b" + hint, SEE)


def test_model_mask_none_means_tokens_not_pad(impl, expect):
    B, T, lengths = pick((3, 6, [6, 2, 4]), (4, 5, [1, 5, 3, 2]), (2, 9, [9, 6]))
    params, rng = draw_model(25)
    tokens = random_tokens(rng, B, T, lengths=lengths)
    expected, = expect(reference_logits(params, tokens))
    model = make_model(impl, params)
    implicit = call(model.forward, tokens, what="Transformer.forward", see=SEE)
    explicit = call(model.forward, tokens, tokens != 0, what="Transformer.forward", see=SEE)
    with check:
        assert_close(implicit, explicit, "Transformer.forward(tokens) compared with forward(tokens, tokens != PAD) "
                     "(a missing mask means: attend to every non-PAD token)", SEE)
    with check:
        assert_close(implicit, expected, "Transformer.forward(tokens) of right-padded tokens", SEE)


def test_model_uses_the_given_mask(impl, expect):
    B, T, visible = pick((2, 5, [3, 4]), (3, 7, [2, 6, 5]), (1, 4, [1]))
    params, rng = draw_model(26)
    tokens = random_tokens(rng, B, T)  # no PAD at all: only the given mask hides the last tokens
    mask = np.arange(T)[None, :] < np.array(visible)[:, None]  # (2, 5): [[T, T, T, F, F], [T, T, T, T, F]]
    unmasked, masked = expect(reference_logits(params, tokens, mask))
    model = make_model(impl, params)
    assert_float64_positions(model.positional_encoding, T, D, "Transformer.positional_encoding, which this test uses")
    logits = call(model.forward, tokens, mask, what="Transformer.forward", see=SEE)
    hint = (" (it equals the logits without a mask: pass the mask to every block)"
            if isinstance(logits, np.ndarray) and logits.shape == unmasked.shape and np.allclose(logits, unmasked)
            else "")
    assert_close(logits, masked,
                 "Transformer.forward(tokens, mask) with a mask hiding the last tokens of each row" + hint, SEE)


def test_padding_does_not_change_the_logits(impl):
    model = make_model(impl, draw_model(27)[0])
    short = np.array([[15, 17, 7, 5, 11, 18]])  # Max ( 5 3 9 )
    long = np.array([[13, 17, 3, 9, 2, 4, 8, 18]])  # Second ( 1 7 0 2 6 )
    alone = call(model.forward, short, what="Transformer.forward", see=SEE)
    assert_shape(alone, (1, V), "Transformer.forward(one example of 6 tokens)", SEE)
    batch = np.concatenate([np.pad(short, ((0, 0), (0, 2))), long])  # the short one right-padded with PAD
    together = call(model.forward, batch, what="Transformer.forward", see=SEE)
    assert_shape(together, (2, V), "Transformer.forward(a batch of 2 examples padded to 8 tokens)", SEE)
    with check:
        assert_close(together[0], alone[0], "the logits of a 6-token example padded to 8 tokens in a batch, "
                     "compared with the same example alone (PAD must be masked out in every block)", SEE)
    with check:
        assert_close(together[1], call(model.forward, long, what="Transformer.forward", see=SEE)[0],
                     "the logits of the longest example of a batch, compared "
                     "with the same example alone (examples of a batch must not mix)", SEE)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("case", ["token-id-V", "negative-token", "too-long", "mask-shape", "float-tokens"])
def test_model_rejects_bad_input(impl, case):
    model = make_model(impl)
    tokens = random_tokens(seeded(28), 2, 4)
    assert_shape(call(model.forward, tokens, np.ones((2, 4), dtype=bool), what="Transformer.forward", see=SEE),
                 (2, V),
                 f"{CONFIG}.forward(tokens of shape (2, 4), mask of shape (2, 4))", SEE)
    error, args, what = {
        "token-id-V": (ValueError, (np.array([[3, V, 5]]),), f"a token id {V} (ids must be in [0, {V}))"),
        "negative-token": (ValueError, (np.array([[3, -1, 5]]),), "a token id -1 (ids must be in [0, 20))"),
        "too-long": (ValueError, (random_tokens(seeded(29), 1, MAX_LEN + 1),),
                     f"a sequence of {MAX_LEN + 1} tokens with max_seq_len={MAX_LEN}"),
        "mask-shape": (ValueError, (tokens, np.ones((2, 5), dtype=bool)), "a mask of shape (2, 5) for tokens (2, 4)"),
        "float-tokens": (TypeError, (tokens.astype(np.float64),), "float tokens (token ids are integers)"),
    }[case]
    assert_raises(error, f"Transformer.forward of {what}", SEE, model.forward, *args)
