"""Lesson 11: the causal mask, causal self-attention (forward, backward) and the Pre-LN block (forward, backward)."""

import numpy as np
import pytest
from pytest_check import check

from kata.course.contract import get_path, grad_path
from kata.course.manifest import reread
from tests.helpers import (
    ATTENTION,
    BLOCK,
    as_array,
    assert_close,
    assert_gradients,
    assert_raises,
    assert_shape,
    call,
    draw_params,
    pick,
    seeded,
    set_params,
    shapes,
)

pytestmark = pytest.mark.lesson11

SEE_MASK = reread("11", "The causal mask")
SEE_CSA = reread("11", "Causal self-attention")
SEE_CSA_BACK = reread("11", "Causal attention backward")
SEE_PRE = reread("11", "The Pre-LN block")
SEE_PRE_BACK = reread("11", "Pre-LN backward")

D, H, F = 8, 2, 12  # embed_dim, num_heads, ffn_dim: small, so gradient checks stay fast
PRE_LN = "h = x + attention(norm1(x), mask); out = h + feed_forward(norm2(h))"


# ---------------------------------------------------------------- the test's own formulas

def own_softmax(scores):
    """exp(s - max) / sum over the last axis; -inf scores give exactly 0."""
    top = scores.max(axis=-1, keepdims=True)
    e = np.exp(scores - top)
    return e / e.sum(axis=-1, keepdims=True)


def own_attention(x, W_q, W_k, W_v, W_o, H, mask=None, causal=True):
    """Multi-head self-attention written out head by head, with a loop over queries: query t of row b may read key
    s when s <= t (if causal) and mask[b, s] (if a mask is given). Returns (output (B, T, D), weights (B, H, T, T))."""
    B, T = x.shape[:2]
    Dh = x.shape[-1] // H
    Q, K, V = x @ W_q, x @ W_k, x @ W_v
    weights = np.zeros((B, H, T, T))
    out = np.zeros(x.shape)
    for h in range(H):
        cols = slice(h * Dh, (h + 1) * Dh)
        for t in range(T):
            allowed = np.ones((B, T), dtype=bool)
            if causal:
                allowed[:, t + 1:] = False
            if mask is not None:
                allowed &= mask
            scores = np.einsum("bd,bsd->bs", Q[:, t, cols], K[:, :, cols]) / np.sqrt(Dh)
            w = own_softmax(np.where(allowed, scores, -np.inf))
            weights[:, h, t] = w
            out[:, t, cols] = np.einsum("bs,bsd->bd", w, V[:, :, cols])
    return out @ W_o, weights


def right_padding(rng, B, T):
    """(B, T) bool, True on real tokens, right-padded (position 0 always real); the first row has padding
    when T > 1."""
    lengths = rng.integers(1, T + 1, size=B)
    lengths[0] = max(T - 1, 1)
    return np.arange(T)[None, :] < lengths[:, None]


def attention_params(rng, D):
    return draw_params(shapes("CausalSelfAttention", D), rng)


def attention_with(impl, params, D, H):
    attention = impl.CausalSelfAttention(D, H)
    set_params(attention, params)
    return attention


def block_with(impl, params, D, H, F, causal=True):
    block = impl.PreLNBlock(D, H, F, causal=causal)
    set_params(block, params)
    return block


def pre_ln_formula(D, H, F, params, x, mask, causal):
    """compute for expect(): the Pre-LN formula composed from the reference's lesson-03 LayerNorm and FeedForward
    (holding params' norm1, norm2 and feed_forward) and the test's own attention (holding params' attention)."""
    def compute(ref):
        def part(layer, prefix):
            for path, value in params.items():
                if path.startswith(prefix + "."):
                    setattr_path(layer, path[len(prefix) + 1:], value)
            return layer

        norm1, norm2 = part(ref.LayerNorm(D), "norm1"), part(ref.LayerNorm(D), "norm2")
        feed_forward = part(ref.FeedForward(D, F), "feed_forward")
        W = [params[f"attention.{name}"] for name in ATTENTION]
        h = x + own_attention(norm1.forward(x.copy()), *W, H, mask, causal)[0]
        return h + feed_forward.forward(norm2.forward(h))
    return compute


def setattr_path(obj, path, value):
    owner, _, last = path.rpartition(".")
    setattr(get_path(obj, owner) if owner else obj, last, np.array(value, dtype=np.float64))


def reference_block_backward(D, H, F, params, x, mask, g, causal):
    """compute for expect(): the reference block's dx and every parameter gradient after one forward and backward."""
    def compute(ref):
        reference = ref.PreLNBlock(D, H, F, causal=causal)
        set_params(reference, params)
        reference.zero_grad()
        reference.forward(x.copy(), mask)
        dx = reference.backward(g.copy())
        return {"dx": dx, "grads": {path: get_path(reference, grad_path(path)) for path in BLOCK}}
    return compute


def reference_attention_backward(D, H, params, x, mask, g):
    """compute for expect(): the reference's dx and the four weight gradients of a causal attention."""
    def compute(ref):
        reference = ref.CausalSelfAttention(D, H)
        set_params(reference, params)
        reference.zero_grad()
        reference.forward(x.copy(), mask)
        dx = reference.backward(g.copy())
        return {"dx": dx, "grads": {name: get_path(reference, grad_path(name)) for name in ATTENTION}}
    return compute


def assert_zero_above_diagonal(weights, what, see):
    T = weights.shape[-1]
    above = np.triu(np.ones((T, T), dtype=bool), k=1)
    later = weights[..., above]
    assert np.all(later == 0.0), (
        f"{what}: the weights above the diagonal (a query reading a later key) must be exactly 0.0, got "
        f"{np.count_nonzero(later)} of {later.size} non-zero (largest {np.abs(later).max():.3g}); mask the scores "
        f"with -inf before the softmax, where key s > query t; {see}")


# ---------------------------------------------------------------- the causal mask

def test_causal_mask_by_hand(impl):
    got = call(impl.causal_mask, 3, what="causal_mask", see=SEE_MASK)
    expected = np.array([[True, False, False], [True, True, False], [True, True, True]])
    assert_shape(got, (3, 3), "causal_mask(3)", SEE_MASK)
    assert got.dtype == bool, f"causal_mask(3): expected a bool array, got dtype {got.dtype}; {SEE_MASK}"
    assert np.array_equal(got, expected), (
        f"causal_mask(3): expected {expected.tolist()} (row t is the query, column s the key: True where s <= t, "
        f"the lower triangle with its diagonal), got {got.tolist()}; {SEE_MASK}")


@pytest.mark.parametrize("T", [1, 2, 5, 8, 13])
def test_causal_mask_values(impl, T):
    got = as_array(call(impl.causal_mask, T, what="causal_mask", see=SEE_MASK), f"causal_mask({T})", SEE_MASK)
    assert_shape(got, (T, T), f"causal_mask({T})", SEE_MASK)
    assert got.dtype == bool, f"causal_mask({T}): expected a bool array, got dtype {got.dtype}; {SEE_MASK}"
    t, s = np.indices((T, T))
    wrong = got != (s <= t)
    assert not wrong.any(), (
        f"causal_mask({T}): {int(wrong.sum())} of {T * T} entries wrong, first at (query {np.argwhere(wrong)[0][0]}, "
        f"key {np.argwhere(wrong)[0][1]}); True exactly where key s <= query t (the diagonal included: a token "
        f"sees itself); {SEE_MASK}")


def test_causal_mask_rejects_bad_length(impl):
    assert_shape(call(impl.causal_mask, 2, what="causal_mask", see=SEE_MASK), (2, 2), "causal_mask(2)", SEE_MASK)
    assert_raises(ValueError, "causal_mask(0)", SEE_MASK, impl.causal_mask, 0)


# ---------------------------------------------------------------- causal self-attention: forward

@pytest.mark.parametrize("B, T", [(1, 1), (2, 1), (1, 5), (3, 4)])
def test_causal_attention_shapes(impl, B, T):
    attention = impl.CausalSelfAttention(D, H)
    rng = seeded(1)
    x = rng.standard_normal((B, T, D))
    for mask in (None, right_padding(rng, B, T)):
        with_mask = "without a mask" if mask is None else "with a (B, T) mask"
        out = call(attention.forward, x, mask, what="CausalSelfAttention.forward", see=SEE_CSA)
        assert_shape(out, (B, T, D), f"CausalSelfAttention({D}, {H}).forward(x of shape {x.shape}) {with_mask}",
                     SEE_CSA)
        assert_shape(attention.last_attention_weights, (B, H, T, T),
                     f"CausalSelfAttention.last_attention_weights (B, H, T, T) {with_mask}", SEE_CSA)
        dx = call(attention.backward, rng.standard_normal((B, T, D)), what="CausalSelfAttention.backward",
                  see=SEE_CSA_BACK)
        assert_shape(dx, (B, T, D), f"CausalSelfAttention.backward {with_mask}: the gradient of x", SEE_CSA_BACK)


@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
def test_causal_attention_matches_the_formula(impl, masked):
    B, T, D, H = pick((3, 5, 8, 2), (2, 6, 6, 3), (4, 4, 12, 4), (1, 7, 8, 1))
    rng = seeded(2)
    params = attention_params(rng, D)
    x = rng.standard_normal((B, T, D))
    mask = right_padding(rng, B, T) if masked else None
    expected_out, expected_weights = own_attention(x, *(params[n] for n in ATTENTION), H, mask)
    attention = attention_with(impl, params, D, H)
    out = call(attention.forward, x, mask, what="CausalSelfAttention.forward", see=SEE_CSA)
    what = f"CausalSelfAttention({D}, {H}).forward(x, {'mask' if masked else 'None'}) with random weights"
    with check:
        assert_close(attention.last_attention_weights, expected_weights,
                     f"{what}: last_attention_weights (query t reads keys s <= t{' that are real' if masked else ''}, "
                     f"softmax over those only)", SEE_CSA)
    with check:
        assert_close(out, expected_out, f"{what}: the output (heads side by side, then W_o)", SEE_CSA)


def test_causal_attention_weights_by_hand(impl):
    # W_q = 0: every score is 0, so each query spreads its weight evenly over the keys it may read
    attention = impl.CausalSelfAttention(4, 2)
    attention.W_q = np.zeros((4, 4))
    x = seeded(3).standard_normal((2, 4, 4))
    mask = np.array([[True, True, True, True], [True, True, False, False]])
    call(attention.forward, x, mask, what="CausalSelfAttention.forward", see=SEE_CSA)
    row0 = [[1, 0, 0, 0], [1 / 2, 1 / 2, 0, 0], [1 / 3, 1 / 3, 1 / 3, 0], [1 / 4, 1 / 4, 1 / 4, 1 / 4]]
    row1 = [[1, 0, 0, 0], [1 / 2, 1 / 2, 0, 0], [1 / 2, 1 / 2, 0, 0], [1 / 2, 1 / 2, 0, 0]]
    expected = np.array([[row0, row0], [row1, row1]], dtype=float)
    assert_close(attention.last_attention_weights, expected,
                 "CausalSelfAttention.last_attention_weights with W_q = 0 and mask [[1, 1, 1, 1], [1, 1, 0, 0]]: "
                 "query t spreads its weight evenly over the keys s <= t that are real (the causal mask AND the "
                 "padding mask)", SEE_CSA)


@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
def test_causal_attention_weights_are_exactly_zero_above_the_diagonal(impl, masked):
    B, T, D, H = pick((2, 6, 8, 4), (3, 5, 12, 3), (1, 8, 8, 2))
    rng = seeded(4)
    attention = attention_with(impl, attention_params(rng, D), D, H)
    x = rng.standard_normal((B, T, D)) * 3.0  # large scores: a -1e4 "mask" would leak, -inf does not
    mask = right_padding(rng, B, T) if masked else None
    call(attention.forward, x, mask, what="CausalSelfAttention.forward", see=SEE_CSA)
    weights = as_array(attention.last_attention_weights, "CausalSelfAttention.last_attention_weights", SEE_CSA)
    assert_shape(weights, (B, H, T, T), "CausalSelfAttention.last_attention_weights", SEE_CSA)
    for h in range(H):
        with check:
            assert_zero_above_diagonal(weights[:, h], f"CausalSelfAttention({D}, {H}) head {h}", SEE_CSA)
    with check:
        assert_close(weights.sum(axis=-1), np.ones((B, H, T)), "CausalSelfAttention.last_attention_weights: each "
                     "row must sum to 1 (mask the scores before the softmax, not the weights after it)", SEE_CSA)


def test_causal_attention_padding_keys_get_zero_weight(impl):
    B, T, D, H = pick((3, 6, 8, 2), (4, 5, 6, 3), (2, 7, 12, 4))
    rng = seeded(5)
    attention = attention_with(impl, attention_params(rng, D), D, H)
    mask = right_padding(rng, B, T)
    x = rng.standard_normal((B, T, D))
    call(attention.forward, x, mask, what="CausalSelfAttention.forward", see=SEE_CSA)
    weights = as_array(attention.last_attention_weights, "CausalSelfAttention.last_attention_weights", SEE_CSA)
    assert_shape(weights, (B, H, T, T), "CausalSelfAttention.last_attention_weights", SEE_CSA)
    padded = np.broadcast_to(~mask[:, None, None, :], weights.shape)
    leaked = weights[padded]
    assert np.all(leaked == 0.0), (
        f"CausalSelfAttention.forward(x, mask): every query (padded queries too) must give padded keys exactly 0 "
        f"weight, got {np.count_nonzero(leaked)} of {leaked.size} non-zero (largest {np.abs(leaked).max():.3g}): a "
        f"key may be read when it is real AND not later (the padding mask applies to keys, combined with the causal "
        f"mask by AND); {SEE_CSA}")
    with check:
        assert_close(weights.sum(axis=-1), np.ones((B, H, T)), "CausalSelfAttention.last_attention_weights with a "
                     "mask: each row sums to 1, padded queries' rows too (they read the real keys at or before "
                     "them; position 0 is always real)", SEE_CSA)
    # changing the padded positions' inputs changes nothing at real positions
    changed = x.copy()
    changed[~mask] = rng.standard_normal((int((~mask).sum()), D)) * 5.0
    out = call(attention.forward, x, mask, what="CausalSelfAttention.forward", see=SEE_CSA)
    out_changed = call(attention.forward, changed, mask, what="CausalSelfAttention.forward", see=SEE_CSA)
    with check:
        assert_close(out_changed[mask], out[mask], "CausalSelfAttention.forward at real positions after changing x "
                     "only at padded positions", SEE_CSA)


def test_causal_attention_is_a_multi_head_attention_with_its_checks(impl):
    attention = impl.CausalSelfAttention(D, H)
    out = call(attention.forward, np.random.randn(2, 3, D), np.ones((2, 3), dtype=bool),
               what="CausalSelfAttention.forward", see=SEE_CSA)
    assert_shape(out, (2, 3, D), f"CausalSelfAttention({D}, {H}).forward(x of shape (2, 3, {D}), mask)", SEE_CSA)
    for name in ATTENTION:
        with check:
            assert_shape(getattr(attention, name), (D, D), f"CausalSelfAttention.{name}", SEE_CSA)
    assert_raises(ValueError, f"CausalSelfAttention.forward of a mask of shape (2, 4) for x of shape (2, 3, {D})",
                  SEE_CSA, attention.forward, np.ones((2, 3, D)), np.ones((2, 4), dtype=bool))
    assert_raises(ValueError, "CausalSelfAttention(8, 3): 8 is not divisible by 3", SEE_CSA,
                  impl.CausalSelfAttention, 8, 3)


# ---------------------------------------------------------------- causal self-attention: backward

@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
def test_causal_attention_gradients(impl, masked):
    rng = seeded(6)
    attention = attention_with(impl, attention_params(rng, D), D, H)
    mask = right_padding(rng, 2, 4) if masked else None
    assert_gradients(f"CausalSelfAttention({D}, {H}) {'with' if masked else 'without'} a mask", SEE_CSA_BACK,
                     forward=lambda x: attention.forward(x, mask), backward=attention.backward,
                     inputs=[("x", rng.standard_normal((2, 4, D)))], params=ATTENTION, owner=attention,
                     zero_grad=attention.zero_grad)


def test_causal_attention_backward_matches_reference_and_accumulates(impl, expect):
    B, T, D, H = pick((2, 5, 8, 2), (3, 4, 6, 3), (2, 6, 12, 4))
    rng = seeded(7)
    params = attention_params(rng, D)
    mask = right_padding(rng, B, T)
    x, g = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, D))
    expected = expect(reference_attention_backward(D, H, params, x, mask, g))
    attention = attention_with(impl, params, D, H)
    attention.zero_grad()
    call(attention.forward, x, mask, what="CausalSelfAttention.forward", see=SEE_CSA)
    with check:
        assert_close(call(attention.backward, g, what="CausalSelfAttention.backward", see=SEE_CSA_BACK),
                     expected["dx"], "CausalSelfAttention.backward(g) with a mask: the gradient of x", SEE_CSA_BACK)
    once = {name: np.array(getattr(attention, "grad_" + name)) for name in ATTENTION}
    for name in ATTENTION:
        with check:
            assert_close(once[name], expected["grads"][name], f"CausalSelfAttention.grad_{name} after one backward",
                         SEE_CSA_BACK)
    call(attention.forward, x, mask, what="CausalSelfAttention.forward", see=SEE_CSA)
    call(attention.backward, g, what="CausalSelfAttention.backward", see=SEE_CSA_BACK)
    for name in ATTENTION:
        with check:
            assert_close(getattr(attention, "grad_" + name), 2 * once[name],
                         f"CausalSelfAttention.grad_{name} after two backward passes (gradients add up, +=)",
                         SEE_CSA_BACK)


def test_causal_attention_backward_uses_the_last_forward(impl):
    # forward on x1, then on x2, then backward: the gradient of the x2 pass, as a fresh layer gives it
    rng = seeded(8)
    params = attention_params(rng, D)
    x1, x2, g = (rng.standard_normal((2, 5, D)) for _ in range(3))
    mask = right_padding(rng, 2, 5)
    fresh = attention_with(impl, params, D, H)
    fresh.zero_grad()
    call(fresh.forward, x2, mask, what="CausalSelfAttention.forward", see=SEE_CSA)
    expected_dx = call(fresh.backward, g, what="CausalSelfAttention.backward", see=SEE_CSA_BACK)
    expected_grads = {name: np.array(getattr(fresh, "grad_" + name)) for name in ATTENTION}
    used = attention_with(impl, params, D, H)
    used.zero_grad()
    call(used.forward, x1, None, what="CausalSelfAttention.forward", see=SEE_CSA)
    call(used.forward, x2, mask, what="CausalSelfAttention.forward", see=SEE_CSA)
    with check:
        assert_close(call(used.backward, g, what="CausalSelfAttention.backward", see=SEE_CSA_BACK), expected_dx,
                     "CausalSelfAttention.backward after forward(x1, None) then forward(x2, mask): the gradient of "
                     "the last forward (x2, with its mask)", SEE_CSA_BACK)
    for name in ATTENTION:
        with check:
            assert_close(getattr(used, "grad_" + name), expected_grads[name],
                         f"CausalSelfAttention.grad_{name} after two forwards and one backward", SEE_CSA_BACK)


# ---------------------------------------------------------------- the Pre-LN block: forward

def test_pre_ln_block_has_the_contract_sublayers(impl):
    for causal in (True, False):
        block = impl.PreLNBlock(D, H, F, causal=causal)
        assert_shape(call(block.forward, np.random.randn(2, 3, D), what="PreLNBlock.forward", see=SEE_PRE),
                     (2, 3, D), f"PreLNBlock({D}, {H}, {F}, causal={causal}).forward(x of shape (2, 3, {D}))", SEE_PRE)
        expected = shapes("PreLNBlock", D, F)
        assert sorted(expected) == sorted(BLOCK)
        for path in BLOCK:
            for name in (path, grad_path(path)):
                with check:
                    try:
                        value = get_path(block, name)
                    except (AttributeError, IndexError, TypeError):
                        value = None
                    got = value.shape if isinstance(value, np.ndarray) else type(value).__name__
                    assert isinstance(value, np.ndarray) and value.shape == expected[path], (
                        f"PreLNBlock({D}, {H}, {F}, causal={causal}).{name}: expected an array of shape "
                        f"{expected[path]}, got {got}; the block holds norm1 and norm2 (LayerNorm), attention and "
                        f"feed_forward (FeedForward); {SEE_PRE}")


@pytest.mark.parametrize("causal, masked", [(True, False), (True, True), (False, False), (False, True)],
                         ids=["causal", "causal-mask", "not-causal", "not-causal-mask"])
def test_pre_ln_block_is_the_formula(impl, expect, causal, masked):
    B, T, D, H, F = pick((3, 5, 8, 2, 12), (2, 6, 6, 3, 10), (4, 3, 12, 4, 8))
    rng = seeded(14)
    params = draw_params(shapes("PreLNBlock", D, F), rng)
    x = rng.standard_normal((B, T, D)) * 1.5 + 0.5
    mask = right_padding(rng, B, T) if masked else None
    expected = expect(pre_ln_formula(D, H, F, params, x, mask, causal))
    block = block_with(impl, params, D, H, F, causal)
    out = call(block.forward, x, mask, what="PreLNBlock.forward", see=SEE_PRE)
    assert_close(out, expected, f"PreLNBlock({D}, {H}, {F}, causal={causal}).forward(x, "
                 f"{'mask' if masked else 'None'}) with random parameters: Pre-LN, {PRE_LN}, the attention "
                 f"{'causal' if causal else 'reading every real key (causal=False)'}", SEE_PRE)


def test_pre_ln_block_with_silent_sublayers_is_the_identity(impl):
    # W_o = 0 and linear2 = 0: both branches output 0, so out = x exactly, and the gradient is the upstream one
    # exactly: the skip paths carry it through with no norm on the way (a Post-LN block gives norm2(norm1(x)))
    B, T, D, H, F = pick((2, 4, 8, 2, 12), (3, 3, 6, 3, 10), (1, 6, 12, 4, 8))
    rng = seeded(15)
    params = draw_params(shapes("PreLNBlock", D, F), rng)
    params.update({"attention.W_o": np.zeros((D, D)), "feed_forward.linear2.W": np.zeros((F, D)),
                   "feed_forward.linear2.b": np.zeros(D)})
    x, g = rng.standard_normal((B, T, D)) * 2.0 + 1.0, rng.standard_normal((B, T, D))
    block = block_with(impl, params, D, H, F)
    block.zero_grad()
    with check:
        assert_close(call(block.forward, x, what="PreLNBlock.forward", see=SEE_PRE), x,
                     "PreLNBlock.forward when attention and feed_forward output 0: x itself (the residual stream is "
                     "never normalised: h = x + attention(norm1(x)), out = h + feed_forward(norm2(h)))", SEE_PRE,
                     atol=1e-12)
    with check:
        assert_close(call(block.backward, g, what="PreLNBlock.backward", see=SEE_PRE_BACK), g,
                     "PreLNBlock.backward(g) when attention and feed_forward output 0: g itself (the gradient "
                     "travels the two skip paths untouched: d_h = g + ..., dx = d_h + ...)", SEE_PRE_BACK, atol=1e-12)


def test_pre_ln_block_causal_flag(impl):
    # causal=True: no weight above the diagonal; causal=False: every real key is read, later ones too
    rng = seeded(16)
    params = draw_params(shapes("PreLNBlock", D, F), rng)
    x = rng.standard_normal((2, 5, D))
    for causal in (True, False):
        block = block_with(impl, params, D, H, F, causal)
        call(block.forward, x, what="PreLNBlock.forward", see=SEE_PRE)
        weights = as_array(block.attention.last_attention_weights,
                           f"PreLNBlock(causal={causal}).attention.last_attention_weights", SEE_PRE)
        assert_shape(weights, (2, H, 5, 5), f"PreLNBlock(causal={causal}).attention.last_attention_weights", SEE_PRE)
        above = weights[..., np.triu(np.ones((5, 5), dtype=bool), k=1)]
        with check:
            if causal:
                assert np.all(above == 0.0), (
                    f"PreLNBlock(causal=True): attention weights above the diagonal must be 0, got "
                    f"{np.count_nonzero(above)} non-zero; its attention is a CausalSelfAttention; {SEE_PRE}")
            if not causal:
                assert np.all(above > 0), (
                    f"PreLNBlock(causal=False): every query reads every key (its attention is a MultiHeadAttention), "
                    f"but {np.count_nonzero(above == 0)} weights above the diagonal are 0; {SEE_PRE}")


def test_pre_ln_block_mask_reaches_attention(impl):
    rng = seeded(17)
    block = block_with(impl, draw_params(shapes("PreLNBlock", D, F), rng), D, H, F, causal=False)
    mask = np.array([[True, True, True, True], [True, True, False, False]])
    x = rng.standard_normal((2, 4, D))
    changed = x.copy()
    changed[~mask] = rng.standard_normal((int((~mask).sum()), D)) * 3.0
    out = call(block.forward, x, mask, what="PreLNBlock.forward", see=SEE_PRE)
    out_changed = call(block.forward, changed, mask, what="PreLNBlock.forward", see=SEE_PRE)
    assert_close(out_changed[mask], out[mask], "PreLNBlock(causal=False).forward at real positions after changing "
                 "x only at padded positions (the mask must reach attention: attention(norm1(x), mask))", SEE_PRE)
    assert_raises(ValueError, f"PreLNBlock.forward of a mask of shape (2, 5) for x of shape (2, 4, {D})", SEE_PRE,
                  block.forward, x, np.ones((2, 5), dtype=bool))


# ---------------------------------------------------------------- the Pre-LN block: backward

@pytest.mark.parametrize("causal, masked", [(True, False), (True, True), (False, True)],
                         ids=["causal", "causal-mask", "not-causal-mask"])
def test_pre_ln_block_gradients(impl, causal, masked):
    rng = seeded(18)
    block = block_with(impl, draw_params(shapes("PreLNBlock", D, F), rng), D, H, F, causal)
    mask = right_padding(rng, 2, 4) if masked else None
    assert_gradients(f"PreLNBlock({D}, {H}, {F}, causal={causal}) {'with' if masked else 'without'} a mask",
                     SEE_PRE_BACK, forward=lambda x: block.forward(x, mask), backward=block.backward,
                     inputs=[("x", rng.standard_normal((2, 4, D)) + 0.5)], params=BLOCK, owner=block,
                     zero_grad=block.zero_grad)


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "not-causal"])
def test_pre_ln_block_backward_matches_reference_and_accumulates(impl, expect, causal):
    B, T, D, H, F = pick((2, 4, 8, 2, 12), (3, 3, 6, 3, 10), (2, 5, 12, 4, 8))
    rng = seeded(19)
    params = draw_params(shapes("PreLNBlock", D, F), rng)
    mask = right_padding(rng, B, T)
    x, g = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, D))
    expected = expect(reference_block_backward(D, H, F, params, x, mask, g, causal))
    block = block_with(impl, params, D, H, F, causal)
    block.zero_grad()
    call(block.forward, x, mask, what="PreLNBlock.forward", see=SEE_PRE)
    with check:
        assert_close(call(block.backward, g, what="PreLNBlock.backward", see=SEE_PRE_BACK), expected["dx"],
                     f"PreLNBlock(causal={causal}).backward(g) with a mask: the gradient of x", SEE_PRE_BACK)
    once = {path: np.array(get_path(block, grad_path(path))) for path in BLOCK}
    for path in BLOCK:
        with check:
            assert_close(once[path], expected["grads"][path], f"PreLNBlock.{grad_path(path)} after one backward",
                         SEE_PRE_BACK)
    call(block.forward, x, mask, what="PreLNBlock.forward", see=SEE_PRE)
    call(block.backward, g, what="PreLNBlock.backward", see=SEE_PRE_BACK)
    for path in BLOCK:
        with check:
            assert_close(get_path(block, grad_path(path)), 2 * once[path],
                         f"PreLNBlock.{grad_path(path)} after two backward passes (gradients add up, +=)",
                         SEE_PRE_BACK)


def test_pre_ln_block_parameters_and_zero_grad(impl):
    rng = seeded(20)
    params = draw_params(shapes("PreLNBlock", D, F), rng)
    block = block_with(impl, params, D, H, F)
    x, g = rng.standard_normal((2, 4, D)), rng.standard_normal((2, 4, D))
    call(block.forward, x, what="PreLNBlock.forward", see=SEE_PRE)
    call(block.backward, g, what="PreLNBlock.backward", see=SEE_PRE_BACK)
    pairs = block.get_parameters()
    assert len(pairs) == len(BLOCK), (f"PreLNBlock.get_parameters(): expected {len(BLOCK)} (param, grad) pairs, one "
                                      f"per parameter of its four sublayers, got {len(pairs)}; {SEE_PRE_BACK}")
    unmatched = [path for path in BLOCK
                 if not any(np.array_equal(np.asarray(p), params[path]) and np.array_equal(
                     np.asarray(gr), get_path(block, grad_path(path))) for p, gr in pairs)]
    assert not unmatched, (f"PreLNBlock.get_parameters(): no (param, grad) pair for {unmatched}; {SEE_PRE_BACK}")
    assert any(np.abs(get_path(block, grad_path(path))).sum() > 0 for path in BLOCK), (
        f"PreLNBlock.backward left every gradient at 0; {SEE_PRE_BACK}")
    block.zero_grad()
    for path in BLOCK:
        with check:
            assert np.all(get_path(block, grad_path(path)) == 0.0), (
                f"PreLNBlock.zero_grad() left PreLNBlock.{grad_path(path)} non-zero; {SEE_PRE_BACK}")


def test_pre_ln_block_repeated_passes_agree(impl):
    rng = seeded(21)
    params = draw_params(shapes("PreLNBlock", D, F), rng)
    x1, x2, g = (rng.standard_normal((2, 5, D)) for _ in range(3))
    mask = right_padding(rng, 2, 5)
    fresh = block_with(impl, params, D, H, F)
    out_fresh = np.array(call(fresh.forward, x2, mask, what="PreLNBlock.forward", see=SEE_PRE))
    dx_fresh = call(fresh.backward, g, what="PreLNBlock.backward", see=SEE_PRE_BACK)
    used = block_with(impl, params, D, H, F)
    call(used.forward, x1, None, what="PreLNBlock.forward", see=SEE_PRE)
    with check:
        assert_close(call(used.forward, x2, mask, what="PreLNBlock.forward", see=SEE_PRE), out_fresh,
                     "PreLNBlock.forward(x2, mask) after forward(x1, None): the same as on a fresh block", SEE_PRE)
    with check:
        assert_close(call(used.backward, g, what="PreLNBlock.backward", see=SEE_PRE_BACK), dx_fresh,
                     "PreLNBlock.backward(g) after forward(x1, None) then forward(x2, mask): the gradient of the "
                     "last forward, as on a fresh block", SEE_PRE_BACK)


# ---------------------------------------------------------------- no position depends on a later one

def stack_of_blocks(impl, rng, L, D, H, F, only_head=None):
    """L causal PreLNBlocks with random parameters; with only_head = h, every attention's W_o keeps only the rows of
    head h (the others' outputs are multiplied by 0), so that head alone carries information between positions."""
    blocks = []
    for _ in range(L):
        params = draw_params(shapes("PreLNBlock", D, F), rng)
        if only_head is not None:
            Dh = D // H
            keep = np.zeros((D, 1))
            keep[only_head * Dh:(only_head + 1) * Dh] = 1.0
            params["attention.W_o"] = params["attention.W_o"] * keep
        blocks.append(block_with(impl, params, D, H, F))
    return blocks


def through(blocks, x, mask, upto):
    h = x
    for block in blocks[:upto]:
        h = call(block.forward, h, mask, what="PreLNBlock.forward", see=SEE_PRE)
    return h


def back(blocks, g, upto):
    for block in reversed(blocks[:upto]):
        g = call(block.backward, g, what="PreLNBlock.backward", see=SEE_PRE_BACK)
    return g


@pytest.mark.parametrize("only_head", [None, 0, 1, 2], ids=["all-heads", "head-0", "head-1", "head-2"])
def test_no_output_depends_on_a_later_input(impl, only_head):
    # for every layer l of a stack and every position t: d out_l[:, t] / d x[:, s] is exactly 0 for s > t, and not
    # 0 for s <= t; with only_head = h, through head h alone
    B, T, D, H, F, L = pick((2, 5, 12, 3, 16, 3), (1, 6, 6, 3, 8, 2), (2, 4, 12, 3, 10, 4))
    rng = seeded(9 + (only_head or 0))
    blocks = stack_of_blocks(impl, rng, L, D, H, F, only_head)
    x = rng.standard_normal((B, T, D))
    for layer in range(1, L + 1):
        for t in range(T):
            through(blocks, x, None, layer)
            g = np.zeros((B, T, D))
            g[:, t] = rng.standard_normal((B, D))
            dx = as_array(back(blocks, g, layer), "PreLNBlock.backward", SEE_PRE_BACK)
            assert_shape(dx, (B, T, D), "PreLNBlock.backward", SEE_PRE_BACK)
            head = "every head" if only_head is None else f"head {only_head} alone"
            what = (f"a stack of {layer} causal PreLNBlock(s) ({head} reading other positions): the gradient of the "
                    f"output at position {t} with respect to the inputs")
            later = dx[:, t + 1:]
            assert np.all(later == 0.0), (
                f"{what} after it (positions {t + 1}..{T - 1}) must be exactly 0.0, got {np.count_nonzero(later)} "
                f"of {later.size} non-zero (largest {np.abs(later).max():.3g}): a later token reached an earlier "
                f"output (is the causal mask in every layer's attention, forward and backward?); {SEE_CSA_BACK}")
            reached = np.abs(dx[:, :t + 1]).sum(axis=-1)  # (B, t + 1)
            assert np.all(reached > 0), (
                f"{what} at or before it must not be 0 (position t reads every position s <= t), got 0 at "
                f"positions {sorted(set(np.argwhere(reached == 0)[:, 1].tolist()))}: too much is masked (the "
                f"diagonal and the earlier keys must be allowed); {SEE_CSA}")


def test_changing_a_later_input_leaves_earlier_outputs_bit_for_bit(impl):
    B, T, D, H, F, L = pick((2, 6, 8, 2, 12, 2), (3, 5, 6, 3, 10, 3), (1, 7, 12, 4, 8, 2))
    rng = seeded(13)
    blocks = stack_of_blocks(impl, rng, L, D, H, F)
    x = rng.standard_normal((B, T, D))
    mask = right_padding(rng, B, T)
    out = np.array(through(blocks, x, mask, L))
    for t in range(T - 1):
        changed = x.copy()
        changed[:, t + 1:] = rng.standard_normal((B, T - t - 1, D)) * 10.0
        out_changed = through(blocks, changed, mask, L)
        same = np.array_equal(out_changed[:, :t + 1], out[:, :t + 1])
        assert same, (
            f"a stack of {L} causal PreLNBlocks: after changing x only at positions {t + 1}..{T - 1}, the outputs at "
            f"positions 0..{t} changed (largest change "
            f"{np.abs(out_changed[:, :t + 1] - out[:, :t + 1]).max():.3g}); they must come out bit for bit the "
            f"same: no later token may touch an earlier output, not even through rounding (a softmax over the whole "
            f"row, or a max taken over masked scores, lets it); {SEE_CSA}")
