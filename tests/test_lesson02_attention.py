"""Lesson 02: Softmax, scaled dot-product attention and its backward, multi-head attention."""

import numpy as np
import pytest
from pytest_check import check

from kata.course.manifest import reread
from tests.helpers import (
    ATTENTION,
    as_array,
    assert_close,
    assert_gradients,
    assert_raises,
    assert_shape,
    call,
    draw_params,
    pick,
    randomize_params,
    seeded,
    set_params,
    shapes,
)

pytestmark = pytest.mark.lesson02

SEE_SOFTMAX = reread("02", "Softmax")
SEE_SOFTMAX_BACK = reread("02", "Softmax backward")
SEE_SDPA = reread("02", "Scaled dot-product attention")
SEE_SDPA_BACK = reread("02", "Attention backward")
SEE_MHA = reread("02", "Multiple heads")
SEE_MHA_BACK = reread("02", "Multi-head backward")


def stable_softmax(x, axis=-1):
    """The test's own softmax, for expected values: exp(x - logsumexp(x)), the log-sum-exp taken from the row's
    maximum so that no exp overflows."""
    top = x.max(axis=axis, keepdims=True)
    return np.exp(x - top - np.log(np.exp(x - top).sum(axis=axis, keepdims=True)))


def manual_attention(Q, K, V, mask=None):
    """softmax(Q K^T / sqrt(Dh)) V written out in the test, masked keys left out."""
    scores = np.einsum("...qd,...kd->...qk", Q, K) / np.sqrt(Q.shape[-1])
    hidden = 0.0 if mask is None else np.where(mask, 0.0, -np.inf)  # a masked key's score becomes -inf
    weights = stable_softmax(scores + hidden)
    return np.einsum("...qk,...kd->...qd", weights, V), weights


def random_key_mask(rng, B, T):
    """A (B, T) bool mask, True on real tokens, right-padded, at least one real token per row."""
    lengths = rng.integers(1, T + 1, size=B)
    lengths[0] = T - 1 if T > 1 else 1  # at least one row with padding when T > 1
    return np.arange(T)[None, :] < lengths[:, None]


def assert_masked_are_zero(weights, allowed, what, see):
    """weights == 0.0 exactly wherever the broadcast mask `allowed` is False."""
    allowed = np.broadcast_to(allowed, weights.shape)
    masked = weights[~allowed]
    assert np.all(masked == 0.0), (
        f"{what}: masked weights must be exactly 0.0, got {np.count_nonzero(masked)} non-zero "
        f"(largest {np.abs(masked).max():.3g}); give masked scores -inf before the softmax; {see}")


# ---------------------------------------------------------------- Softmax

def test_softmax_by_hand(impl):
    x = np.array([[0.0, np.log(2.0), np.log(3.0)], [-1.0, -1.0, -1.0], [5.0, 5.0 + np.log(4.0), 5.0]])
    expected = [[1 / 6, 2 / 6, 3 / 6], [1 / 3, 1 / 3, 1 / 3], [1 / 6, 4 / 6, 1 / 6]]
    assert_close(call(impl.Softmax().forward, x, what="Softmax.forward", see=SEE_SOFTMAX), expected,
                 "Softmax().forward([[0, ln 2, ln 3], [-1, -1, -1], [5, 5 + ln 4, 5]])", SEE_SOFTMAX)


@pytest.mark.parametrize("shape, axis", [((5,), -1), ((3, 4), -1), ((2, 3, 4), -1), ((1, 1), -1),
                                         ((3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), 0)])
def test_softmax_is_a_distribution_along_its_axis(impl, shape, axis):
    x = np.random.randn(*shape) * 2.0
    out = call(impl.Softmax(axis=axis).forward, x, what="Softmax.forward", see=SEE_SOFTMAX)
    what = f"Softmax(axis={axis}).forward(x of shape {shape})"
    assert_shape(out, shape, what, SEE_SOFTMAX)
    with check:
        assert np.all(out > 0), f"{what}: every output must be positive, smallest is {out.min():.3g}; {SEE_SOFTMAX}"
    with check:
        assert_close(out.sum(axis=axis), np.ones(np.delete(shape, axis)),
                     f"{what}: the sums along axis {axis} (each must be 1)", SEE_SOFTMAX)
    with check:
        assert_close(out, stable_softmax(x, axis), f"{what}: exp(x) / sum(exp(x)) along axis {axis}", SEE_SOFTMAX)


def test_softmax_ignores_a_constant_added_to_a_row(impl):
    x = np.random.randn(4, 5)
    shift = np.array([[3.0], [-7.0], [100.0], [0.5]])
    softmax = impl.Softmax()
    assert_close(call(softmax.forward, x + shift, what="Softmax.forward", see=SEE_SOFTMAX),
                 call(softmax.forward, x, what="Softmax.forward", see=SEE_SOFTMAX),
                 "Softmax().forward(x + c) with a different constant c per row (must equal forward(x))",
                 SEE_SOFTMAX)


def test_softmax_is_stable_for_large_inputs(impl):
    x = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0], [1000.0, -1000.0, 0.0]])
    e = np.exp([0.0, 1.0, 2.0])
    expected = np.array([e / e.sum(), e[::-1] / e.sum(), [1.0, 0.0, 0.0]])
    softmax = impl.Softmax()
    out = call(softmax.forward, x, what="Softmax.forward", see=SEE_SOFTMAX)
    assert_close(out, expected, "Softmax().forward([[1000, 1001, 1002], [-1000, -1001, -1002], [1000, -1000, 0]]) "
                 "(subtract each row's maximum before exp so it never overflows)", SEE_SOFTMAX)
    g = np.array([[1.0, -2.0, 0.5], [0.3, 0.0, -1.0], [2.0, 1.0, -1.0]])
    small = impl.Softmax()
    call(small.forward, x - x.max(axis=-1, keepdims=True), what="Softmax.forward", see=SEE_SOFTMAX)
    assert_close(call(softmax.backward, g, what="Softmax.backward", see=SEE_SOFTMAX_BACK),
                 call(small.backward, g, what="Softmax.backward", see=SEE_SOFTMAX_BACK),
                 "Softmax.backward after forward of inputs of magnitude 1000 (must equal the backward after "
                 "forward of the same rows shifted to a maximum of 0)", SEE_SOFTMAX_BACK)


def test_softmax_backward_by_hand(impl):
    softmax = impl.Softmax()
    call(softmax.forward, np.array([[0.0, np.log(2.0), np.log(3.0)]]),
         what="Softmax.forward", see=SEE_SOFTMAX)  # y = [1/6, 1/3, 1/2]
    # dx_i = y_i (g_i - sum_j g_j y_j); g = [1, 0, 0] gives sum g y = 1/6
    assert_close(call(softmax.backward, np.array([[1.0, 0.0, 0.0]]), what="Softmax.backward", see=SEE_SOFTMAX_BACK),
                 [[5 / 36, -2 / 36, -3 / 36]],
                 "Softmax.backward([1, 0, 0]) after forward([0, ln 2, ln 3]): y * (g - sum(g * y)), the full "
                 "Jacobian, not only its diagonal y * (1 - y) * g", SEE_SOFTMAX_BACK)


@pytest.mark.parametrize("shape, axis", [((3, 4), -1), ((2, 3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1)])
def test_softmax_gradients(impl, shape, axis):
    softmax = impl.Softmax(axis=axis)
    x = seeded(1).standard_normal(shape) * 1.5
    assert_gradients(f"Softmax(axis={axis}) on x of shape {shape}", SEE_SOFTMAX_BACK,
                     forward=softmax.forward, backward=softmax.backward, inputs=[("x", x)])


# ---------------------------------------------------------------- scaled dot-product attention

def test_attention_by_hand(impl):
    # Dh = 4, so the scores are Q K^T / 2; K = 2 I picks the first three columns of Q as the scores
    Q = np.array([[0.0, np.log(2.0), np.log(3.0), 5.0],
                  [0.0, 0.0, 0.0, -3.0],
                  [np.log(4.0), 0.0, 0.0, 1.0]])
    K = np.array([[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]])
    V = np.array([[6.0, 0.0, 0.0, 1.0], [0.0, 6.0, 0.0, 1.0], [0.0, 0.0, 6.0, 1.0]])
    weights = np.array([[1 / 6, 2 / 6, 3 / 6], [1 / 3, 1 / 3, 1 / 3], [4 / 6, 1 / 6, 1 / 6]])
    result = call(impl.scaled_dot_product_attention, Q, K, V, what="scaled_dot_product_attention", see=SEE_SDPA)
    assert isinstance(result, tuple) and len(result) == 2, (
        f"scaled_dot_product_attention must return a tuple (output, weights), got {type(result).__name__}; "
        f"{SEE_SDPA}")
    out, w = result
    with check:
        assert_close(w, weights, "weights of a 3-token case with Dh = 4 (scores Q K^T / sqrt(4), then softmax "
                     "over the keys)", SEE_SDPA)
    with check:
        assert_close(out, [[1.0, 2.0, 3.0, 1.0], [2.0, 2.0, 2.0, 1.0], [4.0, 1.0, 1.0, 1.0]],
                     "output of a 3-token case with Dh = 4 (weights @ V)", SEE_SDPA)


@pytest.mark.parametrize("lead, T_q, T_k, Dh", [((), 3, 3, 4), ((), 1, 1, 2), ((2,), 4, 4, 3), ((2, 3), 4, 4, 5),
                                                ((2, 2), 3, 5, 4), ((1, 1), 1, 6, 2), ((3,), 5, 2, 1)])
def test_attention_shapes_and_values(impl, lead, T_q, T_k, Dh):
    rng = seeded(2)
    Q, K, V = (rng.standard_normal((*lead, T_q, Dh)), rng.standard_normal((*lead, T_k, Dh)),
               rng.standard_normal((*lead, T_k, Dh)))
    what = f"scaled_dot_product_attention(Q {Q.shape}, K {K.shape}, V {V.shape})"
    out, weights = call(impl.scaled_dot_product_attention, Q, K, V, what="scaled_dot_product_attention", see=SEE_SDPA)
    assert_shape(out, (*lead, T_q, Dh), f"{what}: output", SEE_SDPA)
    assert_shape(weights, (*lead, T_q, T_k), f"{what}: weights (..., T_q, T_k)", SEE_SDPA)
    with check:
        assert_close(weights.sum(axis=-1), np.ones((*lead, T_q)), f"{what}: each row of weights must sum to 1 "
                     "(softmax over the keys, the last axis)", SEE_SDPA)
    expected_out, expected_weights = manual_attention(Q, K, V)
    with check:
        assert_close(weights, expected_weights, f"{what}: weights = softmax(Q K^T / sqrt(Dh)) with Dh = {Dh}",
                     SEE_SDPA)
    with check:
        assert_close(out, expected_out, f"{what}: output = weights @ V", SEE_SDPA)


def test_attention_scale_is_one_over_sqrt_head_dim(impl):
    rng = seeded(3)
    Q, K, V = rng.standard_normal((2, 3, 16)), rng.standard_normal((2, 3, 16)), rng.standard_normal((2, 3, 16))
    _, weights = call(impl.scaled_dot_product_attention, Q, K, V, what="scaled_dot_product_attention", see=SEE_SDPA)
    expected = stable_softmax(Q @ np.swapaxes(K, -1, -2) / 4.0)
    assert_close(weights, expected, "weights with Dh = 16: softmax(Q K^T / 4), scaled by 1/sqrt(16), not 1/16 "
                 "and not unscaled", SEE_SDPA)


def test_attention_is_stable_for_large_scores(impl):
    rng = seeded(4)
    Q, K = rng.standard_normal((2, 3, 4)) * 40.0, rng.standard_normal((2, 3, 4)) * 40.0
    V = rng.standard_normal((2, 3, 4))
    expected_out, expected_weights = manual_attention(Q, K, V)
    out, weights = call(impl.scaled_dot_product_attention, Q, K, V, what="scaled_dot_product_attention", see=SEE_SDPA)
    with check:
        assert_close(weights, expected_weights, "weights when the scores reach magnitudes near 1000 (the softmax "
                     "must subtract each row's maximum)", SEE_SDPA)
    with check:
        assert_close(out, expected_out, "output when the scores reach magnitudes near 1000", SEE_SDPA)


def masked_inputs(seed, shape, kind):
    """Q, K, V of shape (B, H, T, Dh) and a mask of the kind named, drawn in that order from one seed."""
    rng = seeded(seed)
    B, H, T, Dh = shape
    Q, K, V = (rng.standard_normal(shape) for _ in range(3))
    if kind.startswith("key"):
        mask = random_key_mask(rng, B, T)[:, None, None, :]
    elif kind.startswith("causal"):
        mask = np.tril(np.ones((T, T), dtype=bool))
    else:
        mask = rng.random((B, 1, T, T)) < 0.6
        mask[..., 0] = True  # callers never mask every key of a row
    return Q, K, V, mask


@pytest.mark.parametrize("kind", ["key padding (B, 1, 1, T_k)", "causal (T_q, T_k)", "per query (B, 1, T_q, T_k)"])
def test_attention_mask(impl, kind):
    B, H, T, Dh = 3, 2, 4, 4
    Q, K, V, mask = masked_inputs(5, (B, H, T, Dh), kind)
    what = f"scaled_dot_product_attention with a {kind} mask"
    out, weights = call(impl.scaled_dot_product_attention, Q, K, V, mask,
                        what="scaled_dot_product_attention", see=SEE_SDPA)
    assert_shape(weights, (B, H, T, T), f"{what}: weights", SEE_SDPA)
    with check:
        assert_masked_are_zero(weights, mask, what, SEE_SDPA)
    with check:
        assert_close(weights.sum(axis=-1), np.ones((B, H, T)), f"{what}: each row of weights must still sum to 1 "
                     "(mask the scores before the softmax, not the weights after it)", SEE_SDPA)
    expected_out, expected_weights = manual_attention(Q, K, V, mask)
    with check:
        assert_close(weights, expected_weights, f"{what}: weights (the softmax over the allowed keys only)", SEE_SDPA)
    with check:
        assert_close(out, expected_out, f"{what}: output", SEE_SDPA)
    V2 = np.where(np.broadcast_to(mask, (B, H, T, T)).any(axis=-2)[..., None], V, 1e3)  # keys no query may see
    with check:
        assert_close(call(impl.scaled_dot_product_attention, Q, K, V2, mask,
                          what="scaled_dot_product_attention", see=SEE_SDPA)[0], out,
                     f"{what}: output after changing V at keys that every query masks (must not change)", SEE_SDPA)


def check_attention_gradients(impl, Q, K, V, mask, what):
    """assert_gradients for Q, K and V together; backward gets the weights of the student's own forward."""
    state = {}

    def forward(Q, K, V):
        out, weights = call(impl.scaled_dot_product_attention, Q, K, V, mask,
                            what="scaled_dot_product_attention", see=SEE_SDPA)
        state.update(Q=Q, K=K, V=V, weights=weights)
        return out

    def backward(grad_output):
        return call(impl.scaled_dot_product_attention_backward, grad_output, state["Q"], state["K"], state["V"],
                    state["weights"], what="scaled_dot_product_attention_backward", see=SEE_SDPA_BACK)

    assert_gradients(what, SEE_SDPA_BACK, forward=forward, backward=backward,
                     inputs=[("Q", Q), ("K", K), ("V", V)])


@pytest.mark.parametrize("lead, T_q, T_k, Dh", [((), 3, 3, 4), ((2, 2), 3, 3, 2), ((2,), 2, 4, 3), ((1,), 1, 1, 2)])
def test_attention_gradients(impl, lead, T_q, T_k, Dh):
    rng = seeded(6)
    Q, K, V = (rng.standard_normal((*lead, T_q, Dh)), rng.standard_normal((*lead, T_k, Dh)),
               rng.standard_normal((*lead, T_k, Dh)))
    check_attention_gradients(impl, Q, K, V, None,
                              f"scaled_dot_product_attention_backward for Q {Q.shape}, K {K.shape}, V {V.shape}")


@pytest.mark.parametrize("kind", ["key padding (B, 1, 1, T_k)", "causal (T_q, T_k)"])
def test_attention_gradients_with_mask(impl, kind):
    Q, K, V, mask = masked_inputs(7, (2, 2, 4, 3), kind)
    check_attention_gradients(impl, Q, K, V, mask, f"scaled_dot_product_attention_backward with a {kind} mask")


def test_attention_rejects_mismatched_shapes(impl):
    Q, K, V = np.random.randn(3, 4), np.random.randn(5, 4), np.random.randn(5, 4)
    out, _ = call(impl.scaled_dot_product_attention, Q, K, V, what="scaled_dot_product_attention", see=SEE_SDPA)
    assert_shape(out, (3, 4), "scaled_dot_product_attention(Q (3, 4), K (5, 4), V (5, 4)): output", SEE_SDPA)
    assert_raises(ValueError,
                  "scaled_dot_product_attention(Q (3, 4), K (5, 3), V (5, 4)): K's last axis must equal Q's",
                  SEE_SDPA, impl.scaled_dot_product_attention, Q, np.random.randn(5, 3), V)
    assert_raises(ValueError,
                  "scaled_dot_product_attention(Q (3, 4), K (5, 4), V (6, 4)): K and V need the same number of keys",
                  SEE_SDPA, impl.scaled_dot_product_attention, Q, K, np.random.randn(6, 4))


# ---------------------------------------------------------------- MultiHeadAttention

def per_head_attention(x, W_q, W_k, W_v, W_o, H, mask=None):
    """Multi-head attention written as a loop over heads: head h uses columns h*Dh:(h+1)*Dh."""
    Dh = x.shape[-1] // H
    Q, K, V = x @ W_q, x @ W_k, x @ W_v
    key_mask = None if mask is None else mask[:, None, :]  # (B, 1, T)
    heads, weights = [], []
    for h in range(H):
        cols = slice(h * Dh, (h + 1) * Dh)
        out, w = manual_attention(Q[:, :, cols], K[:, :, cols], V[:, :, cols], key_mask)
        heads.append(out)
        weights.append(w)
    return np.concatenate(heads, axis=-1) @ W_o, np.stack(weights, axis=1)  # (B, T, D), (B, H, T, T)


def test_mha_parameters(impl):
    D, H = 32, 4
    mha = impl.MultiHeadAttention(D, H)
    limit = np.sqrt(6.0 / (2 * D))
    arrays = {name: getattr(mha, name) for name in ATTENTION}
    for name, W in arrays.items():
        W = as_array(W, f"MultiHeadAttention({D}, {H}).{name}", SEE_MHA)
        with check:
            assert W.shape == (D, D) and np.abs(W).max() <= limit and W.std() > limit / 3, (
                f"MultiHeadAttention.{name} must be Xavier-uniform of shape ({D}, {D}), U(-{limit:.4f}, "
                f"{limit:.4f}); got shape {W.shape}, max |W| {np.abs(W).max():.4f}, std {W.std():.4f}; {SEE_MHA}")
        with check:
            assert_shape(getattr(mha, "grad_" + name), (D, D), f"MultiHeadAttention.grad_{name}", SEE_MHA)
    with check:
        assert not np.array_equal(arrays["W_q"], arrays["W_k"]), (
            f"MultiHeadAttention: W_q and W_k must be drawn independently, got equal matrices; {SEE_MHA}")
    x = np.random.randn(2, 3, D)
    expected, _ = per_head_attention(x, *(np.array(arrays[n]) for n in ATTENTION), H)
    assert_close(call(mha.forward, x, what="MultiHeadAttention.forward", see=SEE_MHA),
                 expected, f"MultiHeadAttention({D}, {H}).forward(x) of a fresh layer (Q = x @ W_q, "
                 "likewise K and V; head h uses columns h*Dh:(h+1)*Dh; heads concatenated in order, then @ W_o)",
                 SEE_MHA)
    assert_close(call(mha.forward, np.zeros((2, 3, D)), what="MultiHeadAttention.forward", see=SEE_MHA),
                 np.zeros((2, 3, D)),
                 "MultiHeadAttention.forward(zeros): there are no biases, so the output is 0", SEE_MHA)


@pytest.mark.parametrize("B, T", [(1, 1), (2, 1), (2, 3), (3, 5), (1, 7)])
def test_mha_shapes(impl, B, T):
    D, H = 8, 2
    mha = impl.MultiHeadAttention(D, H)
    x = np.random.randn(B, T, D)
    out = call(mha.forward, x, what="MultiHeadAttention.forward", see=SEE_MHA)
    assert_shape(out, (B, T, D), f"MultiHeadAttention({D}, {H}).forward(x of shape {x.shape})", SEE_MHA)
    weights = mha.last_attention_weights
    assert_shape(weights, (B, H, T, T), "MultiHeadAttention.last_attention_weights (B, H, T, T) after forward",
                 SEE_MHA)
    with check:
        assert_close(weights.sum(axis=-1), np.ones((B, H, T)),
                     "MultiHeadAttention.last_attention_weights: each row must sum to 1", SEE_MHA)
    dx = call(mha.backward, np.random.randn(B, T, D), what="MultiHeadAttention.backward", see=SEE_MHA_BACK)
    with check:
        assert_shape(dx, (B, T, D), "MultiHeadAttention.backward: the gradient with respect to x", SEE_MHA_BACK)
    for name in ATTENTION:
        with check:
            assert_shape(getattr(mha, "grad_" + name), (D, D), f"MultiHeadAttention.grad_{name} after backward",
                         SEE_MHA_BACK)


def test_mha_uniform_attention_by_hand(impl):
    D, H = 4, 2
    mha = impl.MultiHeadAttention(D, H)
    mha.W_q = np.zeros((D, D))  # every score 0: each query spreads its weight evenly over the real keys
    mha.W_k = np.random.randn(D, D)
    mha.W_v = np.eye(D)
    mha.W_o = np.eye(D)
    x = np.arange(24, dtype=np.float64).reshape(2, 3, D)
    mask = np.array([[True, True, True], [True, True, False]])
    out = call(mha.forward, x, mask, what="MultiHeadAttention.forward", see=SEE_MHA)
    expected = np.stack([np.broadcast_to(x[0].mean(axis=0), (3, D)), np.broadcast_to(x[1, :2].mean(axis=0), (3, D))])
    assert_close(out, expected, "MultiHeadAttention.forward with W_q = 0, W_v = W_o = I and mask "
                 "[[1, 1, 1], [1, 1, 0]]: each position gets the mean of x over the real tokens", SEE_MHA)
    with check:
        assert_close(mha.last_attention_weights,
                     np.stack([np.full((H, 3, 3), 1 / 3), np.broadcast_to([0.5, 0.5, 0.0], (H, 3, 3))]),
                     "MultiHeadAttention.last_attention_weights with W_q = 0 (uniform over the real keys)", SEE_MHA)
    mha.W_o *= 2.0  # a change in place must show as well
    with check:
        assert_close(call(mha.forward, x, mask, what="MultiHeadAttention.forward", see=SEE_MHA),
                     2 * expected, "MultiHeadAttention.forward after doubling W_o in place",
                     SEE_MHA)


@pytest.mark.parametrize("masked", [False, True])
def test_mha_head_layout(impl, masked):
    B, T, D, H = 2, 4, 8, 4
    mha = impl.MultiHeadAttention(D, H)
    rng = seeded(8)
    randomize_params(mha, ATTENTION, rng, scale=0.7)
    x = rng.standard_normal((B, T, D))
    mask = random_key_mask(rng, B, T) if masked else None
    expected_out, expected_weights = per_head_attention(x, *(np.array(getattr(mha, n)) for n in ATTENTION), H, mask)
    out = call(mha.forward, x, mask, what="MultiHeadAttention.forward", see=SEE_MHA)
    what = f"MultiHeadAttention({D}, {H}).forward{' with a mask' if masked else ''}"
    with check:
        assert_close(mha.last_attention_weights, expected_weights,
                     f"{what}: last_attention_weights[:, h] must be the weights of head h, which uses columns "
                     "h*Dh:(h+1)*Dh of Q = x @ W_q and of K = x @ W_k", SEE_MHA)
    with check:
        assert_close(out, expected_out, f"{what}: the heads' outputs concatenated in head order, then @ W_o "
                     "(the layout of torch.nn.MultiheadAttention)", SEE_MHA)


def test_mha_key_mask(impl):
    B, T, D, H = 3, 5, 8, 2
    mha = impl.MultiHeadAttention(D, H)
    rng = seeded(9)
    randomize_params(mha, ATTENTION, rng)
    mask = np.array([[True] * 5, [True, True, True, False, False], [True, False, False, False, False]])
    x = rng.standard_normal((B, T, D))
    out = call(mha.forward, x, mask, what="MultiHeadAttention.forward", see=SEE_MHA)
    weights = as_array(mha.last_attention_weights, "MultiHeadAttention.last_attention_weights", SEE_MHA)
    assert_shape(weights, (B, H, T, T), "MultiHeadAttention.last_attention_weights with a mask", SEE_MHA)
    what = "MultiHeadAttention.forward(x, mask (B, T)), last_attention_weights"
    with check:
        assert_masked_are_zero(weights, mask[:, None, None, :], f"{what} at padded keys", SEE_MHA)
    with check:
        assert_close(weights.sum(axis=-1), np.ones((B, H, T)), f"{what}: each row must sum to 1, padded query rows "
                     "included (the mask hides keys, not queries)", SEE_MHA)
    x2 = np.where(mask[:, :, None], x, rng.standard_normal((B, T, D)) * 10.0)
    out2 = call(mha.forward, x2, mask, what="MultiHeadAttention.forward", see=SEE_MHA)
    with check:
        assert_close(out2[mask], out[mask], "MultiHeadAttention.forward at real positions after changing x at "
                     "padded positions (must not change: padded keys get weight 0)", SEE_MHA)


def reference_mha(D, H, params, x, mask, g):
    """compute for expect(): the reference's forward, attention weights, backward and gradients on these inputs."""
    def compute(ref):
        theirs = ref.MultiHeadAttention(D, H)
        set_params(theirs, params)
        out = theirs.forward(x, mask)
        weights = theirs.last_attention_weights
        theirs.zero_grad()
        dx = theirs.backward(g)
        return {"out": out, "weights": weights, "dx": dx, "grads": {n: getattr(theirs, "grad_" + n) for n in ATTENTION}}
    return compute


@pytest.mark.parametrize("masked", [False, True])
def test_mha_matches_reference(impl, expect, masked):
    B, T, D, H = pick((2, 5, 12, 3), (3, 4, 8, 2), (1, 6, 12, 4), (2, 7, 6, 1))
    rng = seeded(10)
    params = draw_params(shapes("MultiHeadAttention", D), rng)
    x, g = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, D))
    mask = random_key_mask(rng, B, T) if masked else None
    expected = expect(reference_mha(D, H, params, x, mask, g))
    mine = impl.MultiHeadAttention(D, H)
    set_params(mine, params)
    what = f"MultiHeadAttention({D}, {H}){' with a mask' if masked else ''}"
    assert_close(call(mine.forward, x, mask, what="MultiHeadAttention.forward", see=SEE_MHA),
                 expected["out"], f"{what}.forward(x) compared with the reference", SEE_MHA)
    with check:
        assert_close(mine.last_attention_weights, expected["weights"],
                     f"{what}.last_attention_weights compared with the reference", SEE_MHA)
    mine.zero_grad()
    with check:
        assert_close(call(mine.backward, g, what="MultiHeadAttention.backward", see=SEE_MHA_BACK),
                     expected["dx"], f"{what}.backward(g) compared with the reference", SEE_MHA_BACK)
    for name in ATTENTION:
        with check:
            assert_close(getattr(mine, "grad_" + name), expected["grads"][name],
                         f"{what}.grad_{name} after one backward, compared with the reference", SEE_MHA_BACK)


@pytest.mark.parametrize("masked", [False, True])
def test_mha_is_stable_for_large_scores(impl, expect, masked):
    # issue 13: a softmax of its own inside MultiHeadAttention, without the max shift, gives NaN beyond ~709
    B, T, D, H = pick((2, 5, 8, 2), (3, 4, 12, 3), (1, 6, 8, 4))
    rng = seeded(12)
    params = draw_params(shapes("MultiHeadAttention", D), rng)
    x, g = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, D))
    mask = random_key_mask(rng, B, T) if masked else None
    Dh = D // H
    q, k = (x @ params["W_q"]).reshape(B, T, H, Dh), (x @ params["W_k"]).reshape(B, T, H, Dh)
    largest = np.einsum("bqhd,bkhd->bhqk", q, k).max() / np.sqrt(Dh)  # positive: the scores hold both signs
    for name in ("W_q", "W_k"):  # scaled so that the largest score is +800 (exp(800) overflows); others near -1000
        params[name] = params[name] * np.sqrt(800.0 / largest)
    expected_out, expected_weights = per_head_attention(x, *(params[n] for n in ATTENTION), H, mask)
    expected = expect(reference_mha(D, H, params, x, mask, g))
    mine = impl.MultiHeadAttention(D, H)
    set_params(mine, params)
    what = f"MultiHeadAttention({D}, {H}){' with a mask' if masked else ''} with scores reaching 800"
    with check:
        assert_close(mine.forward(x, mask), expected_out, f"{what}: forward (every softmax must subtract each row's "
                     "maximum, the one inside MultiHeadAttention too: exp(800) overflows)", SEE_MHA)
    with check:
        assert_close(mine.last_attention_weights, expected_weights, f"{what}: last_attention_weights", SEE_MHA)
    mine.zero_grad()
    with check:
        assert_close(mine.backward(g), expected["dx"], f"{what}: backward(g) compared with the reference",
                     SEE_MHA_BACK)
    for name in ATTENTION:
        with check:
            assert_close(getattr(mine, "grad_" + name), expected["grads"][name],
                         f"{what}: grad_{name} after one backward, compared with the reference", SEE_MHA_BACK)


@pytest.mark.parametrize("B, T, masked", [(2, 3, False), (2, 4, True), (1, 1, False)])
def test_mha_gradients(impl, B, T, masked):
    D, H = 8, 2
    mha = impl.MultiHeadAttention(D, H)
    rng = seeded(11)
    randomize_params(mha, ATTENTION, rng, scale=0.6)
    mask = random_key_mask(rng, B, T) if masked else None
    assert_gradients(f"MultiHeadAttention({D}, {H}) on x of shape ({B}, {T}, {D})"
                     f"{' with a mask' if masked else ''}", SEE_MHA_BACK,
                     forward=lambda x: mha.forward(x, mask), backward=mha.backward,
                     inputs=[("x", rng.standard_normal((B, T, D)))],
                     params=ATTENTION, owner=mha, zero_grad=mha.zero_grad)


def test_mha_gradients_accumulate_and_reset(impl, expect):
    B, T, D, H = pick((2, 3, 8, 2), (3, 2, 6, 3), (1, 4, 8, 4))
    rng = seeded(13)
    params = draw_params(shapes("MultiHeadAttention", D), rng)
    x, g = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, D))
    expected = expect(reference_mha(D, H, params, x, None, g))
    mine = impl.MultiHeadAttention(D, H)
    set_params(mine, params)
    mine.zero_grad()
    call(mine.forward, x, what="MultiHeadAttention.forward", see=SEE_MHA)
    call(mine.backward, g, what="MultiHeadAttention.backward", see=SEE_MHA_BACK)
    grads = {name: getattr(mine, "grad_" + name) for name in ATTENTION}
    once = {name: np.array(grad) for name, grad in grads.items()}
    for name in ATTENTION:
        assert_close(once[name], expected["grads"][name],
                     f"MultiHeadAttention.grad_{name} after one backward, compared with the reference", SEE_MHA_BACK)
    call(mine.forward, x, what="MultiHeadAttention.forward", see=SEE_MHA)
    call(mine.backward, g, what="MultiHeadAttention.backward", see=SEE_MHA_BACK)
    for name in ATTENTION:
        with check:
            assert_close(getattr(mine, "grad_" + name), 2 * once[name],
                         f"MultiHeadAttention.grad_{name} after two backward passes (gradients add up, +=)",
                         SEE_MHA_BACK)
    pairs = mine.get_parameters()
    with check:
        expected = {id(getattr(mine, n)): id(getattr(mine, "grad_" + n)) for n in ATTENTION}
        got = {id(p): id(gr) for p, gr in pairs}
        assert len(pairs) == 4 and got == expected, (
            f"MultiHeadAttention.get_parameters() must return the 4 pairs (W_q, grad_W_q), (W_k, grad_W_k), "
            f"(W_v, grad_W_v), (W_o, grad_W_o), the arrays themselves; got {len(pairs)} pairs; {SEE_MHA_BACK}")
    mine.zero_grad()
    with check:
        assert all(getattr(mine, "grad_" + n) is grads[n] for n in ATTENTION), (
            f"MultiHeadAttention.zero_grad must fill the gradient arrays with 0 in place, not replace them; "
            f"{SEE_MHA_BACK}")
    with check:
        assert not any(np.any(getattr(mine, "grad_" + n)) for n in ATTENTION), (
            f"MultiHeadAttention.zero_grad left non-zero gradients; {SEE_MHA_BACK}")


def test_mha_embed_dim_must_divide_into_heads(impl):
    mha = impl.MultiHeadAttention(12, 3)
    assert_shape(call(mha.forward, np.random.randn(2, 3, 12), what="MultiHeadAttention.forward", see=SEE_MHA),
                 (2, 3, 12),
                 "MultiHeadAttention(12, 3).forward(x of shape (2, 3, 12))", SEE_MHA)
    assert_raises(ValueError, "MultiHeadAttention(10, 3): embed_dim 10 is not divisible by num_heads 3", SEE_MHA,
                  impl.MultiHeadAttention, 10, 3)


def test_mha_rejects_bad_input(impl):
    mha = impl.MultiHeadAttention(8, 2)
    mask = np.array([[True, True, False]] * 2)
    assert_shape(call(mha.forward, np.random.randn(2, 3, 8), mask, what="MultiHeadAttention.forward", see=SEE_MHA),
                 (2, 3, 8),
                 "MultiHeadAttention(8, 2).forward(x of shape (2, 3, 8), mask of shape (2, 3))", SEE_MHA)
    assert_raises(ValueError, "MultiHeadAttention(8, 2).forward(x of shape (2, 3, 6)): the last axis must be 8",
                  SEE_MHA, mha.forward, np.random.randn(2, 3, 6))
    assert_raises(ValueError, "MultiHeadAttention(8, 2).forward(x of shape (3, 8)): x must be (B, T, D)", SEE_MHA,
                  mha.forward, np.random.randn(3, 8))
    assert_raises(ValueError, "MultiHeadAttention(8, 2).forward(x (2, 3, 8), mask (2, 4)): the mask must be (B, T)",
                  SEE_MHA, mha.forward, np.random.randn(2, 3, 8), np.ones((2, 4), dtype=bool))
    assert_raises(ValueError, "MultiHeadAttention(8, 2).forward(x (2, 3, 8), mask (3,)): the mask must be (B, T)",
                  SEE_MHA, mha.forward, np.random.randn(2, 3, 8), np.ones(3, dtype=bool))
