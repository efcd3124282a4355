"""Lesson 05: Transformer.forward: embed, add positions, stack the blocks, pool the first token, project.

Backward, get_parameters and zero_grad of the model belong to lesson 07: nothing here calls them.
"""

import numpy as np
import pytest
from pytest_check import check

from kata.course.contract import get_path, set_path
from kata.course.manifest import reread
from tests.helpers import (
    BLOCK,
    assert_close,
    assert_raises,
    assert_shape,
    call,
    copy_params,
    randomize_params,
    transformer_params,
)
from tests.positions import assert_float64_positions

pytestmark = pytest.mark.lesson05

SEE = reread("05", "Stacking, pooling and projecting")

V, D, H, L, F, MAX_LEN = 20, 8, 2, 2, 16, 12  # a small model: vocab, embed, heads, layers, ffn, max_seq_len
PATHS = transformer_params(L)
CONFIG = (f"Transformer(vocab_size={V}, embed_dim={D}, num_heads={H}, num_layers={L}, ffn_dim={F}, "
          f"max_seq_len={MAX_LEN})")


def make_model(impl):
    return impl.Transformer(vocab_size=V, embed_dim=D, num_heads=H, num_layers=L, ffn_dim=F, max_seq_len=MAX_LEN)


def make_pair(impl, ref, seed):
    """A model under test and a reference model holding the same random parameters."""
    rng = np.random.default_rng(seed)
    reference = ref.Transformer(vocab_size=V, embed_dim=D, num_heads=H, num_layers=L, ffn_dim=F,
                                max_seq_len=MAX_LEN)
    randomize_params(reference, PATHS, rng)
    model = make_model(impl)
    copy_params(reference, model, PATHS)
    return model, reference, rng


def random_tokens(rng, B, T, lengths=None):
    """(B, T) int64 ids of real tokens (never PAD), right-padded with PAD beyond each row's length."""
    tokens = rng.integers(1, V, size=(B, T))
    if lengths is not None:
        tokens[np.arange(T)[None, :] >= np.asarray(lengths)[:, None]] = 0
    return tokens


def final_hidden(reference, tokens, mask):
    """The last block's output (B, T, D), computed with the reference model's own layers."""
    x = reference.positional_encoding.forward(reference.embedding.forward(tokens))
    for block in reference.blocks:
        x = block.forward(x, mask)
    return x


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
    tokens = random_tokens(np.random.default_rng(20), B, T)
    assert_shape(call(model.forward, tokens, what="Transformer.forward", see=SEE),
                 (B, V), f"{CONFIG}.forward(tokens of shape {(B, T)}): the logits (B, V)",
                 SEE)


def test_default_model_has_102036_parameters(impl):
    model = impl.Transformer()
    tokens = random_tokens(np.random.default_rng(21), 2, 6, lengths=[6, 4])
    assert_shape(call(model.forward, tokens, what="Transformer.forward", see=SEE),
                 (2, 20), "Transformer().forward(tokens of shape (2, 6)): the logits (B, V)",
                 SEE)
    assert isinstance(model.blocks, list) and len(model.blocks) == 2, (
        f"Transformer().blocks: expected a list of 2 TransformerBlocks (num_layers=2), got "
        f"{type(model.blocks).__name__} of length {len(model.blocks)}; {SEE}")
    shapes = {"embedding.W": (20, 64), "output.W": (64, 20), "output.b": (20,)}
    block_shapes = {"attention.W_q": (64, 64), "attention.W_k": (64, 64), "attention.W_v": (64, 64),
                    "attention.W_o": (64, 64), "norm1.gamma": (64,), "norm1.beta": (64,),
                    "feed_forward.linear1.W": (64, 256), "feed_forward.linear1.b": (256,),
                    "feed_forward.linear2.W": (256, 64), "feed_forward.linear2.b": (64,),
                    "norm2.gamma": (64,), "norm2.beta": (64,)}
    for i in range(2):
        shapes.update({f"blocks.{i}.{p}": block_shapes[p] for p in BLOCK})
    total = 0
    for path in transformer_params(2):
        value = get_path(model, path)
        with check:
            assert isinstance(value, np.ndarray) and value.shape == shapes[path], (
                f"Transformer().{path}: expected an array of shape {shapes[path]}, got "
                f"{getattr(value, 'shape', type(value).__name__)}; {SEE}")
        total += np.size(value)
    with check:
        assert total == 102_036, f"Transformer() holds {total:,} parameters, expected 102,036; {SEE}"


# ---------------------------------------------------------------- forward

def test_model_matches_reference(impl, ref):
    model, reference, rng = make_pair(impl, ref, seed=22)
    tokens = random_tokens(rng, 4, 7, lengths=[7, 5, 3, 1])
    assert_float64_positions(model.positional_encoding, 7, D, "Transformer.positional_encoding, which this test uses")
    assert_close(call(model.forward, tokens, what="Transformer.forward", see=SEE), reference.forward(tokens),
                 f"{CONFIG}.forward(right-padded tokens of shape (4, 7)) with random parameters", SEE)


def test_model_is_stable_for_large_attention_scores(impl, ref):
    # issue 13: every softmax on the way must subtract its row's maximum, the one inside attention included
    model, reference, rng = make_pair(impl, ref, seed=28)
    tokens = random_tokens(rng, 3, 6, lengths=[6, 4, 2])
    assert_float64_positions(model.positional_encoding, 6, D, "Transformer.positional_encoding, which this test uses")
    mask = tokens != 0
    x = reference.positional_encoding.forward(reference.embedding.forward(tokens))
    for layer, block in enumerate(reference.blocks):  # each block's W_q and W_k scaled: its largest score is +800
        attention, Dh = block.attention, D // H
        q, k = (x @ attention.W_q).reshape(*x.shape[:2], H, Dh), (x @ attention.W_k).reshape(*x.shape[:2], H, Dh)
        factor = np.sqrt(800.0 / (np.einsum("bqhd,bkhd->bhqk", q, k).max() / np.sqrt(Dh)))
        for name in ("attention.W_q", "attention.W_k"):
            path = f"blocks.{layer}.{name}"
            set_path(reference, path, np.array(get_path(reference, path)) * factor)
            set_path(model, path, np.array(get_path(reference, path)))
        x = block.forward(x, mask)
    assert_close(model.forward(tokens), reference.forward(tokens),
                 f"{CONFIG}.forward with attention scores reaching 800 in every block (each softmax must subtract "
                 "its row's maximum, the one inside MultiHeadAttention too: exp(800) overflows)", SEE)


@pytest.mark.parametrize("B, T, lengths", [(3, 6, [6, 4, 2]), (2, 1, [1, 1])])
def test_model_pools_the_first_token(impl, ref, B, T, lengths):
    model, reference, rng = make_pair(impl, ref, seed=23)
    tokens = random_tokens(rng, B, T, lengths=lengths)
    assert_float64_positions(model.positional_encoding, T, D, "Transformer.positional_encoding, which this test uses")
    mask = tokens != 0
    hidden = final_hidden(reference, tokens, mask)
    W, b = np.array(reference.output.W), np.array(reference.output.b)
    logits = call(model.forward, tokens, what="Transformer.forward", see=SEE)
    assert_close(logits, hidden[:, 0, :] @ W + b,
                 "Transformer.forward: output(x[:, 0, :]), the output layer applied to the first position of the "
                 "last block's output, where x = blocks(positional_encoding(embedding(tokens)), mask)"
                 + pooling_hint(logits, hidden, W, b, mask), SEE)


def test_model_returns_logits_not_probabilities(impl, ref):
    model, _, rng = make_pair(impl, ref, seed=24)
    bias = np.linspace(-3.0, 4.0, V)
    model.output.W = np.zeros((D, V))  # every hidden state now maps to the bias
    model.output.b = bias.copy()
    tokens = random_tokens(rng, 3, 5, lengths=[5, 3, 2])
    logits = call(model.forward, tokens, what="Transformer.forward", see=SEE)
    probs = np.exp(bias) / np.exp(bias).sum()
    hint = (" (these are softmax probabilities: forward returns the raw logits, the loss applies the softmax)"
            if isinstance(logits, np.ndarray) and logits.shape == (3, V) and np.allclose(logits, probs) else "")
    assert_close(logits, np.tile(bias, (3, 1)),
                 "Transformer.forward with output.W = 0 and output.b = linspace(-3, 4, 20): every row of logits is "
                 "output.b" + hint, SEE)


def test_model_mask_none_means_tokens_not_pad(impl, ref):
    model, reference, rng = make_pair(impl, ref, seed=25)
    tokens = random_tokens(rng, 3, 6, lengths=[6, 2, 4])
    implicit = call(model.forward, tokens, what="Transformer.forward", see=SEE)
    explicit = call(model.forward, tokens, tokens != 0, what="Transformer.forward", see=SEE)
    with check:
        assert_close(implicit, explicit, "Transformer.forward(tokens) compared with forward(tokens, tokens != PAD) "
                     "(a missing mask means: attend to every non-PAD token)", SEE)
    with check:
        assert_close(implicit, reference.forward(tokens), "Transformer.forward(tokens) of right-padded tokens", SEE)


def test_model_uses_the_given_mask(impl, ref):
    model, reference, rng = make_pair(impl, ref, seed=26)
    tokens = random_tokens(rng, 2, 5)  # no PAD at all: only the given mask hides the last tokens
    assert_float64_positions(model.positional_encoding, 5, D, "Transformer.positional_encoding, which this test uses")
    mask = np.array([[True, True, True, False, False], [True, True, True, True, False]])
    logits = call(model.forward, tokens, mask, what="Transformer.forward", see=SEE)
    unmasked = reference.forward(tokens)
    hint = (" (it equals the logits without a mask: pass the mask to every block)"
            if isinstance(logits, np.ndarray) and logits.shape == unmasked.shape and np.allclose(logits, unmasked)
            else "")
    assert_close(logits, reference.forward(tokens, mask),
                 "Transformer.forward(tokens, mask) with a mask hiding the last tokens of each row" + hint, SEE)


def test_padding_does_not_change_the_logits(impl, ref):
    model, _, _ = make_pair(impl, ref, seed=27)
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
    tokens = random_tokens(np.random.default_rng(28), 2, 4)
    assert_shape(call(model.forward, tokens, np.ones((2, 4), dtype=bool), what="Transformer.forward", see=SEE),
                 (2, V),
                 f"{CONFIG}.forward(tokens of shape (2, 4), mask of shape (2, 4))", SEE)
    error, args, what = {
        "token-id-V": (ValueError, (np.array([[3, V, 5]]),), f"a token id {V} (ids must be in [0, {V}))"),
        "negative-token": (ValueError, (np.array([[3, -1, 5]]),), "a token id -1 (ids must be in [0, 20))"),
        "too-long": (ValueError, (random_tokens(np.random.default_rng(29), 1, MAX_LEN + 1),),
                     f"a sequence of {MAX_LEN + 1} tokens with max_seq_len={MAX_LEN}"),
        "mask-shape": (ValueError, (tokens, np.ones((2, 5), dtype=bool)), "a mask of shape (2, 5) for tokens (2, 4)"),
        "float-tokens": (TypeError, (tokens.astype(np.float64),), "float tokens (token ids are integers)"),
    }[case]
    assert_raises(error, f"Transformer.forward of {what}", SEE, model.forward, *args)
