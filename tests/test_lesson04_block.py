"""Lesson 04: the Post-LN transformer block, forward and backward through both residual paths."""

import numpy as np
import pytest
from pytest_check import check

from kata.course.contract import get_path, grad_path
from kata.course.manifest import reread
from tests.helpers import (
    BLOCK,
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

pytestmark = pytest.mark.lesson04

SEE_BLOCK = reread("04", "The Post-LN block")
SEE_BACK = reread("04", "Backward through the residuals")

D, H, F = 8, 2, 12  # embed_dim, num_heads, ffn_dim: small, so gradient checks stay fast
POST_LN = "h = norm1(x + attention(x, mask)); out = norm2(h + feed_forward(h))"


def block_with(impl, params, D=D, H=H, F=F):
    """A block under test holding the test's own parameters (drawn by draw_params)."""
    block = impl.TransformerBlock(D, H, F)
    set_params(block, params)
    return block


def padding_mask(B, T):
    """(B, T) bool: row b keeps its first T - b tokens (at least one), like right-padded examples."""
    lengths = np.maximum(T - np.arange(B), 1)
    return np.arange(T)[None, :] < lengths[:, None]


def post_ln(D, H, F, params, x, mask):
    """compute for expect(): the output of a reference block holding params (the Post-LN block of the contract)."""
    def compute(ref):
        reference = ref.TransformerBlock(D, H, F)
        set_params(reference, params)
        return reference.forward(x.copy(), mask)
    return compute


def through_the_skips(D, H, F, params, x, g):
    """compute for expect(): norm2(norm1(x)) and the gradient back through both norms, with the reference's
    LayerNorms holding params' norm1 and norm2."""
    def compute(ref):
        reference = ref.TransformerBlock(D, H, F)
        set_params(reference, params)
        out = reference.norm2.forward(reference.norm1.forward(x.copy()))
        return {"out": out, "dx": reference.norm1.backward(reference.norm2.backward(g.copy()))}
    return compute


def reference_backward(D, H, F, params, x, mask, g):
    """compute for expect(): the reference block's dx and every parameter gradient after one forward and backward."""
    def compute(ref):
        reference = ref.TransformerBlock(D, H, F)
        set_params(reference, params)
        reference.zero_grad()
        reference.forward(x.copy(), mask)
        dx = reference.backward(g.copy())
        return {"dx": dx, "grads": {path: get_path(reference, grad_path(path)) for path in BLOCK}}
    return compute


# ---------------------------------------------------------------- shapes and attributes

@pytest.mark.parametrize("B, T", [(1, 1), (3, 1), (1, 5), (2, 4), (4, 3)])
def test_block_shapes(impl, B, T):
    block = impl.TransformerBlock(D, H, F)
    x = np.random.randn(B, T, D)
    for mask in (None, padding_mask(B, T)):
        with_mask = "without a mask" if mask is None else "with a (B, T) mask"
        out = call(block.forward, x, mask, what="TransformerBlock.forward", see=SEE_BLOCK)
        assert_shape(out, (B, T, D), f"TransformerBlock({D}, {H}, {F}).forward(x of shape {x.shape}) {with_mask}",
                     SEE_BLOCK)
        dx = call(block.backward, np.random.randn(B, T, D), what="TransformerBlock.backward", see=SEE_BACK)
        assert_shape(dx, (B, T, D), f"TransformerBlock.backward {with_mask}: the gradient with respect to x",
                     SEE_BACK)


def test_block_has_the_contract_sublayers(impl):
    block = impl.TransformerBlock(D, H, F)
    assert_shape(call(block.forward, np.random.randn(2, 3, D), what="TransformerBlock.forward", see=SEE_BLOCK),
                 (2, 3, D),
                 f"TransformerBlock({D}, {H}, {F}).forward(x of shape (2, 3, {D}))", SEE_BLOCK)
    expected = {"attention.W_q": (D, D), "attention.W_k": (D, D), "attention.W_v": (D, D), "attention.W_o": (D, D),
                "norm1.gamma": (D,), "norm1.beta": (D,), "norm2.gamma": (D,), "norm2.beta": (D,),
                "feed_forward.linear1.W": (D, F), "feed_forward.linear1.b": (F,),
                "feed_forward.linear2.W": (F, D), "feed_forward.linear2.b": (D,)}
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
                    f"TransformerBlock({D}, {H}, {F}).{name}: expected an array of shape {expected[path]}, got "
                    f"{got}; the block holds attention (MultiHeadAttention), norm1 (LayerNorm), feed_forward "
                    f"(FeedForward) and norm2 (LayerNorm); {SEE_BLOCK}")


# ---------------------------------------------------------------- forward

@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
def test_block_is_post_ln(impl, expect, masked):
    B, T, D, H, F = pick((3, 4, 8, 2, 12), (2, 5, 6, 3, 10), (4, 3, 12, 4, 8))
    rng = seeded(11)
    params = draw_params(shapes("TransformerBlock", D, F), rng)
    x = rng.standard_normal((B, T, D)) * 1.5
    mask = padding_mask(B, T) if masked else None
    expected = expect(post_ln(D, H, F, params, x, mask))
    block = block_with(impl, params, D, H, F)
    out = call(block.forward, x, mask, what="TransformerBlock.forward", see=SEE_BLOCK)
    assert_close(out, expected, f"TransformerBlock.forward(x, {'mask' if masked else 'None'}) with random "
                 f"parameters: Post-LN, {POST_LN}", SEE_BLOCK)


@pytest.mark.parametrize("shape", [(2, 5, D), (1, 1, D)])
def test_block_output_rows_are_normalised(impl, shape):
    # with gamma = 1 and beta = 0, a Post-LN block ends with a LayerNorm: mean 0, variance 1 in every row
    block = impl.TransformerBlock(D, H, F)
    x = np.random.randn(*shape) * 3.0 + 2.0
    out = call(block.forward, x, what="TransformerBlock.forward", see=SEE_BLOCK)
    assert_shape(out, shape, f"TransformerBlock.forward(x of shape {shape})", SEE_BLOCK)
    with check:
        assert_close(out.mean(axis=-1), np.zeros(shape[:-1]),
                     "the mean of each output row of a fresh block (Post-LN ends with norm2; a Pre-LN block, "
                     "x + attention(norm1(x)) ..., does not)", SEE_BLOCK, atol=1e-9)
    with check:
        assert_close(out.var(axis=-1), np.ones(shape[:-1]),
                     "the variance of each output row of a fresh block (1 up to eps: the block ends with norm2)",
                     SEE_BLOCK, rtol=1e-3)


def test_block_mask_hides_padded_positions(impl):
    rng = seeded(12)
    block = block_with(impl, draw_params(shapes("TransformerBlock", D, F), rng))
    mask = np.array([[True, True, True, True], [True, True, False, False]])
    x = rng.standard_normal((2, 4, D))
    changed = x.copy()
    changed[~mask] = rng.standard_normal((int((~mask).sum()), D)) * 3.0  # new values at the padded positions
    out = call(block.forward, x, mask, what="TransformerBlock.forward", see=SEE_BLOCK)
    out_changed = call(block.forward, changed, mask, what="TransformerBlock.forward", see=SEE_BLOCK)
    assert_shape(out, (2, 4, D), "TransformerBlock.forward(x of shape (2, 4, 8), mask)", SEE_BLOCK)
    assert_close(out_changed[mask], out[mask],
                 "TransformerBlock.forward at real positions after changing x only at padded positions (the mask "
                 "must reach attention: attention(x, mask))", SEE_BLOCK)


# ---------------------------------------------------------------- backward

@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
def test_block_gradients(impl, masked):
    block = impl.TransformerBlock(D, H, F)
    rng = seeded(13)
    set_params(block, draw_params(shapes("TransformerBlock", D, F), rng))
    mask = padding_mask(2, 4) if masked else None
    assert_gradients(f"TransformerBlock({D}, {H}, {F}) {'with' if masked else 'without'} a mask", SEE_BACK,
                     forward=lambda x: block.forward(x, mask), backward=block.backward,
                     inputs=[("x", rng.standard_normal((2, 4, D)))],
                     params=BLOCK, owner=block, zero_grad=block.zero_grad)


def test_block_backward_through_the_skip_paths(impl, expect):
    # with W_o = 0 and linear2 = 0 both sublayers output 0: out = norm2(norm1(x)), and the whole gradient
    # flows through the two skip connections
    B, T, D, H, F = pick((2, 3, 8, 2, 12), (3, 2, 6, 3, 10), (1, 5, 12, 4, 8))
    rng = seeded(14)
    params = draw_params(shapes("TransformerBlock", D, F), rng)
    params.update({"attention.W_o": np.zeros((D, D)), "feed_forward.linear2.W": np.zeros((F, D)),
                   "feed_forward.linear2.b": np.zeros(D)})
    x, g = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, D))
    expected = expect(through_the_skips(D, H, F, params, x, g))
    expected_out, expected_dx = expected["out"], expected["dx"]
    block = block_with(impl, params, D, H, F)
    block.zero_grad()
    with check:
        assert_close(call(block.forward, x, what="TransformerBlock.forward", see=SEE_BLOCK),
                     expected_out, "TransformerBlock.forward when attention and feed_forward "
                     "output 0: norm2(norm1(x)) (the residuals carry x through)", SEE_BLOCK)
    with check:
        assert_close(call(block.backward, g, what="TransformerBlock.backward", see=SEE_BACK), expected_dx,
                     "TransformerBlock.backward when attention and feed_forward output 0: the gradient reaches x "
                     "only through the two skip paths (d_h = d_sum2 + feed_forward.backward(d_sum2), "
                     "dx = d_sum1 + attention.backward(d_sum1))", SEE_BACK)


def test_block_backward_matches_reference_and_accumulates(impl, expect):
    B, T, D, H, F = pick((2, 4, 8, 2, 12), (3, 3, 6, 3, 10), (2, 5, 12, 4, 8))
    rng = seeded(15)
    params = draw_params(shapes("TransformerBlock", D, F), rng)
    mask = padding_mask(B, T)
    x, g = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, D))
    expected = expect(reference_backward(D, H, F, params, x, mask, g))
    expected_dx = expected["dx"]
    block = block_with(impl, params, D, H, F)
    block.zero_grad()
    call(block.forward, x, mask, what="TransformerBlock.forward", see=SEE_BLOCK)
    assert_close(call(block.backward, g, what="TransformerBlock.backward", see=SEE_BACK),
                 expected_dx, "TransformerBlock.backward(g) with a mask: the gradient with "
                 "respect to x", SEE_BACK)
    once = {path: np.array(get_path(block, grad_path(path))) for path in BLOCK}
    for path in BLOCK:
        with check:
            assert_close(once[path], expected["grads"][path],
                         f"TransformerBlock.{grad_path(path)} after one backward pass", SEE_BACK)
    call(block.forward, x, mask, what="TransformerBlock.forward", see=SEE_BLOCK)
    call(block.backward, g, what="TransformerBlock.backward", see=SEE_BACK)
    for path in BLOCK:
        with check:
            assert_close(get_path(block, grad_path(path)), 2 * once[path],
                         f"TransformerBlock.{grad_path(path)} after two backward passes (gradients add up, +=)",
                         SEE_BACK)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("bad, what", [
    (lambda: (np.ones((2, 3, D + 1)), None), f"x with last axis {D + 1} instead of {D}"),
    (lambda: (np.ones((3, D)), None), "x with 2 axes instead of (B, T, D)"),
    (lambda: (np.ones((2, 3, D)), np.ones((2, 4), dtype=bool)), "a mask of shape (2, 4) for x of shape (2, 3, 8)"),
], ids=["last-axis", "two-axes", "mask-shape"])
def test_block_rejects_bad_input(impl, bad, what):
    block = impl.TransformerBlock(D, H, F)
    assert_shape(call(block.forward, np.random.randn(2, 3, D), np.ones((2, 3), dtype=bool),
                      what="TransformerBlock.forward", see=SEE_BLOCK), (2, 3, D),
                 f"TransformerBlock.forward(x of shape (2, 3, {D}), mask of shape (2, 3))", SEE_BLOCK)
    x, mask = bad()
    assert_raises(ValueError, f"TransformerBlock.forward of {what}", SEE_BLOCK, block.forward, x, mask)
