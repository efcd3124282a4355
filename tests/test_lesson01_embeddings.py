"""Lesson 01: the token embedding (a lookup table and its scatter-add gradient) and positional encoding."""

import numpy as np
import pytest
from pytest_check import check

from kata.course.manifest import reread
from tests.helpers import (
    assert_close,
    assert_gradients,
    assert_raises,
    assert_shape,
    call,
    pick,
    randomize_params,
    seeded,
)
from tests.positions import assert_float64_positions

pytestmark = pytest.mark.lesson01

SEE_LOOKUP = reread("01", "Embedding lookup")
SEE_EMB_BACK = reread("01", "Embedding backward")
SEE_PE = reread("01", "Sinusoidal positions")

# token ids with repeats inside a row and across rows: a gradient written as grad_W[tokens] += g keeps only one
REPEATED = np.array([[3, 3, 1, 3], [0, 3, 1, 5]])


def expected_grad_W(tokens, grad_output, vocab_size):
    """The embedding's weight gradient, written as a plain loop: every occurrence of a token adds its row."""
    grad = np.zeros((vocab_size, grad_output.shape[-1]))
    for b in range(tokens.shape[0]):
        for t in range(tokens.shape[1]):
            grad[tokens[b, t]] += grad_output[b, t]
    return grad


def sinusoid(T, D):
    """PE[p, 2i] = sin(p / 10000^(2i/D)), PE[p, 2i+1] = cos(p / 10000^(2i/D)), entry by entry."""
    pe = np.zeros((T, D))
    for p in range(T):
        for j in range(D):
            angle = p / 10000.0 ** ((j - j % 2) / D)
            pe[p, j] = np.sin(angle) if j % 2 == 0 else np.cos(angle)
    return pe


# ---------------------------------------------------------------- Embedding

@pytest.mark.parametrize("B, T", [(1, 1), (2, 3), (4, 1), (3, 7)])
def test_embedding_shapes(impl, B, T):
    emb = impl.Embedding(20, 6)
    tokens = np.random.randint(0, 20, size=(B, T))
    out = call(emb.forward, tokens, what="Embedding.forward", see=SEE_LOOKUP)
    assert_shape(out, (B, T, 6), f"Embedding(20, 6).forward(tokens of shape {(B, T)})", SEE_LOOKUP)
    result = call(emb.backward, np.random.randn(B, T, 6), what="Embedding.backward", see=SEE_EMB_BACK)
    with check:
        assert result is None, (
            f"Embedding.backward must return None (token ids have no gradient), got {type(result).__name__}; "
            f"{SEE_EMB_BACK}")
    with check:
        assert_shape(emb.W, (20, 6), "Embedding(20, 6).W", SEE_LOOKUP)
    with check:
        assert_shape(emb.grad_W, (20, 6), "Embedding(20, 6).grad_W", SEE_EMB_BACK)


def test_embedding_forward_is_a_row_lookup(impl):
    emb = impl.Embedding(5, 3)
    emb.W = np.arange(15, dtype=np.float64).reshape(5, 3) * 0.5 - 2.0
    tokens = np.array([[4, 0, 2], [2, 2, 1]])
    expected = np.array(emb.W)[tokens]
    assert_close(call(emb.forward, tokens, what="Embedding.forward", see=SEE_LOOKUP), expected,
                 "Embedding.forward(tokens): out[b, t] must be row W[tokens[b, t]] (no scaling)", SEE_LOOKUP)


def test_embedding_forward_uses_current_parameters(impl):
    emb = impl.Embedding(4, 2)
    tokens = np.array([[1, 3]])
    call(emb.forward, tokens, what="Embedding.forward", see=SEE_LOOKUP)
    emb.W = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]])
    assert_close(call(emb.forward, tokens, what="Embedding.forward", see=SEE_LOOKUP), [[[2.0, 3.0], [6.0, 7.0]]],
                 "Embedding.forward([[1, 3]]) after assigning W = [[0, 1], [2, 3], [4, 5], [6, 7]]", SEE_LOOKUP)
    emb.W[3, 0] = -1.0  # a change in place must show as well
    assert_close(call(emb.forward, tokens, what="Embedding.forward", see=SEE_LOOKUP), [[[2.0, 3.0], [-1.0, 7.0]]],
                 "Embedding.forward([[1, 3]]) after setting W[3, 0] = -1 in place", SEE_LOOKUP)


def test_embedding_repeated_tokens_accumulate(impl):
    emb = impl.Embedding(6, 3)
    g = np.arange(24, dtype=np.float64).reshape(2, 4, 3) - 10.0
    emb.zero_grad()
    call(emb.forward, REPEATED, what="Embedding.forward", see=SEE_LOOKUP)
    call(emb.backward, g, what="Embedding.backward", see=SEE_EMB_BACK)
    assert_close(emb.grad_W, expected_grad_W(REPEATED, g, 6),
                 f"Embedding.grad_W for tokens {REPEATED.tolist()} (token 3 appears 4 times: its row must be the "
                 f"SUM of the 4 gradient rows; grad_W[tokens] += g keeps only one, use np.add.at)", SEE_EMB_BACK)


@pytest.mark.parametrize("tokens", [REPEATED, np.array([[2]]), np.array([[5, 0, 1, 2, 4]])])
def test_embedding_gradients(impl, tokens):
    emb = impl.Embedding(6, 3)
    rng = seeded(1)
    randomize_params(emb, ["W"], rng)
    # token ids are not differentiable: no float input, only the parameter W is checked
    assert_gradients(f"Embedding(6, 3) on tokens {tokens.tolist()}", SEE_EMB_BACK,
                     forward=lambda: emb.forward(tokens), backward=emb.backward, inputs=[],
                     params=["W"], owner=emb, zero_grad=emb.zero_grad)


def test_embedding_gradients_accumulate_and_reset(impl):
    E = pick(4, 3, 5)
    emb = impl.Embedding(6, E)
    tokens = np.array([[1, 2, 2], [5, 1, 0]])
    g = np.random.randn(2, 3, E)
    emb.zero_grad()
    call(emb.forward, tokens, what="Embedding.forward", see=SEE_LOOKUP)
    call(emb.backward, g, what="Embedding.backward", see=SEE_EMB_BACK)
    grad_W = emb.grad_W
    once = np.array(grad_W)
    assert_close(once, expected_grad_W(tokens, g, 6), "Embedding.grad_W after one backward pass", SEE_EMB_BACK)
    call(emb.forward, tokens, what="Embedding.forward", see=SEE_LOOKUP)
    call(emb.backward, g, what="Embedding.backward", see=SEE_EMB_BACK)
    with check:
        assert_close(emb.grad_W, 2 * once, "Embedding.grad_W after two backward passes (gradients add up, +=)",
                     SEE_EMB_BACK)
    pairs = emb.get_parameters()
    with check:
        assert len(pairs) == 1 and pairs[0][0] is emb.W and pairs[0][1] is emb.grad_W, (
            f"Embedding.get_parameters() must be [(W, grad_W)], the arrays themselves; {SEE_EMB_BACK}")
    emb.zero_grad()
    with check:
        assert emb.grad_W is grad_W, (
            f"Embedding.backward or zero_grad replaced grad_W with a new array; gradients are added in place "
            f"(+=, np.add.at) into the array made in __init__; {SEE_EMB_BACK}")
    with check:
        assert not np.any(emb.grad_W), f"Embedding.zero_grad left non-zero values; {SEE_EMB_BACK}"


@pytest.mark.parametrize("bad", [20, 25, -1])
def test_embedding_rejects_ids_out_of_range(impl, bad):
    emb = impl.Embedding(20, 4)
    tokens = np.array([[0, 19, 7]])
    assert_close(call(emb.forward, tokens, what="Embedding.forward", see=SEE_LOOKUP),
                 np.array(emb.W)[tokens], "Embedding(20, 4).forward([[0, 19, 7]])", SEE_LOOKUP)
    assert_raises(ValueError, f"Embedding(20, 4).forward([[0, {bad}, 7]]): ids must be in [0, 20)", SEE_LOOKUP,
                  emb.forward, np.array([[0, bad, 7]]), naming=str(bad))


# ---------------------------------------------------------------- PositionalEncoding

def test_positional_encoding_by_hand(impl):
    pe = impl.PositionalEncoding(4, max_seq_len=10)
    p = np.arange(3.0)
    # D = 4: the pairs (2i = 0, 2i = 2) have frequencies 1 / 10000^0 = 1 and 1 / 10000^(2/4) = 1/100
    expected = np.stack([np.sin(p), np.cos(p), np.sin(p / 100.0), np.cos(p / 100.0)], axis=-1)[None]
    assert_close(call(pe.forward, np.zeros((1, 3, 4)), what="PositionalEncoding.forward", see=SEE_PE), expected,
                 "PositionalEncoding(4).forward(zeros of shape (1, 3, 4)): columns sin(p), cos(p), sin(p/100), "
                 "cos(p/100) for positions p = 0, 1, 2", SEE_PE)


def test_positional_encoding_odd_dimension(impl):
    pe = impl.PositionalEncoding(5, max_seq_len=8)
    p = np.arange(4.0)
    f1, f2 = 10000.0 ** (-2 / 5), 10000.0 ** (-4 / 5)
    # D = 5: the last column is the sine of a third pair whose cosine does not fit
    expected = np.stack([np.sin(p), np.cos(p), np.sin(p * f1), np.cos(p * f1), np.sin(p * f2)], axis=-1)[None]
    assert_close(call(pe.forward, np.zeros((1, 4, 5)), what="PositionalEncoding.forward", see=SEE_PE), expected,
                 "PositionalEncoding(5).forward(zeros of shape (1, 4, 5)): PE[p, 2i] = sin(p / 10000^(2i/5)), "
                 "PE[p, 2i+1] = cos(p / 10000^(2i/5)); column 4 is sin(p / 10000^(4/5))", SEE_PE)


@pytest.mark.parametrize("D, T, max_seq_len", [(16, 50, 50), (8, 7, 20), (6, 1, 50)])
def test_positional_encoding_formula(impl, D, T, max_seq_len):
    pe = impl.PositionalEncoding(D, max_seq_len=max_seq_len)
    out = call(pe.forward, np.zeros((1, T, D)), what="PositionalEncoding.forward", see=SEE_PE)
    assert_close(out, sinusoid(T, D)[None],
                 f"PositionalEncoding({D}, max_seq_len={max_seq_len}).forward(zeros of shape (1, {T}, {D})): "
                 f"PE[p, 2i] = sin(p / 10000^(2i/D)), PE[p, 2i+1] = cos(p / 10000^(2i/D)), p from 0", SEE_PE)


@pytest.mark.parametrize("D, T", [(16, 50), (5, 8)])
def test_positional_encoding_is_float64(impl, D, T):
    # issue 13: a float32 table is right to 3e-8 only; refused here, where it is made, not in the later lessons
    assert_float64_positions(impl.PositionalEncoding(D, max_seq_len=T), T, D,
                             f"PositionalEncoding({D}, max_seq_len={T}).forward(float64 zeros of shape (1, {T}, {D}))")


@pytest.mark.parametrize("B, T", [(1, 1), (2, 5), (3, 12)])
def test_positional_encoding_adds_to_x(impl, B, T):
    pe = impl.PositionalEncoding(8, max_seq_len=12)
    assert_float64_positions(pe, T, 8, "PositionalEncoding(8, 12)")
    x = np.random.randn(B, T, 8)
    out = call(pe.forward, x, what="PositionalEncoding.forward", see=SEE_PE)
    assert_shape(out, (B, T, 8), f"PositionalEncoding(8, 12).forward(x of shape {x.shape})", SEE_PE)
    assert_close(out, x + sinusoid(T, 8)[None],
                 f"PositionalEncoding.forward(x of shape {x.shape}): x + PE[:T], the same table for every batch "
                 f"element", SEE_PE)


def test_positional_encoding_rejects_long_sequences(impl):
    pe = impl.PositionalEncoding(4, max_seq_len=6)
    assert_close(call(pe.forward, np.zeros((2, 6, 4)), what="PositionalEncoding.forward", see=SEE_PE),
                 np.broadcast_to(sinusoid(6, 4), (2, 6, 4)),
                 "PositionalEncoding(4, max_seq_len=6).forward(zeros of shape (2, 6, 4)), T = max_seq_len", SEE_PE)
    assert_raises(ValueError, "PositionalEncoding(4, max_seq_len=6).forward(x of shape (2, 7, 4)): 7 positions, "
                  "more than max_seq_len", SEE_PE, pe.forward, np.zeros((2, 7, 4)), naming="7")


def test_positional_encoding_backward_passes_gradient(impl):
    D = pick(6, 5, 8)
    pe = impl.PositionalEncoding(D, max_seq_len=10)
    x, g = np.random.randn(2, 4, D), np.random.randn(2, 4, D)
    call(pe.forward, x, what="PositionalEncoding.forward", see=SEE_PE)
    assert_close(call(pe.backward, g, what="PositionalEncoding.backward", see=SEE_PE),
                 g, "PositionalEncoding.backward(g): adding a constant table passes g unchanged",
                 SEE_PE)
    assert_gradients(f"PositionalEncoding({D})", SEE_PE, forward=pe.forward, backward=pe.backward,
                     inputs=[("x", np.random.randn(3, 5, D))])


def test_positional_encoding_has_no_parameters(impl):
    pe = impl.PositionalEncoding(4, max_seq_len=5)
    assert_float64_positions(pe, 3, 4, "PositionalEncoding(4, 5)")
    x = np.random.randn(2, 3, 4)
    out = call(pe.forward, x, what="PositionalEncoding.forward", see=SEE_PE)
    assert_close(out, x + sinusoid(3, 4)[None], "PositionalEncoding(4).forward(x of shape (2, 3, 4))", SEE_PE)
    call(pe.backward, np.ones_like(x), what="PositionalEncoding.backward", see=SEE_PE)
    params = pe.get_parameters()
    with check:
        assert list(params) == [], (
            f"PositionalEncoding.get_parameters() must be [] (the table is fixed, not learned), got "
            f"{len(params)} entries; {SEE_PE}")
    pe.zero_grad()
    assert_close(call(pe.forward, x, what="PositionalEncoding.forward", see=SEE_PE),
                 out, "PositionalEncoding.forward(x) again after backward and zero_grad", SEE_PE)
