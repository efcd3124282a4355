"""Lesson 03: Linear, ReLU, LayerNorm and the feed-forward network."""

import numpy as np
import pytest
from pytest_check import check

from kata.course.manifest import reread
from tests.helpers import (
    FEED_FORWARD,
    LAYER_NORM,
    LINEAR,
    as_array,
    assert_close,
    assert_gradients,
    assert_raises,
    assert_shape,
    call,
    pick,
    randomize_params,
    seeded,
    set_path,
)

pytestmark = pytest.mark.lesson03

SEE_LINEAR = reread("03", "Linear layers")
SEE_RELU = reread("03", "ReLU")
SEE_LN = reread("03", "Layer normalisation")
SEE_LN_BACK = reread("03", "LayerNorm backward")
SEE_FFN = reread("03", "The feed-forward network")

LEADING_SHAPES = [(1,), (5,), (2, 3), (1, 1), (2, 3, 4)]


# ---------------------------------------------------------------- Linear

@pytest.mark.parametrize("lead", LEADING_SHAPES)
def test_linear_shapes(impl, lead):
    layer = impl.Linear(4, 3)
    x = np.random.randn(*lead, 4)
    out = call(layer.forward, x, what="Linear.forward", see=SEE_LINEAR)
    assert_shape(out, (*lead, 3), f"Linear(4, 3).forward(x of shape {x.shape})", SEE_LINEAR)
    dx = call(layer.backward, np.random.randn(*lead, 3), what="Linear.backward", see=SEE_LINEAR)
    assert_shape(dx, x.shape, "Linear.backward: the gradient with respect to x", SEE_LINEAR)
    with check:
        assert_shape(layer.grad_W, (4, 3), "Linear.grad_W", SEE_LINEAR)
    with check:
        assert_shape(layer.grad_b, (3,), "Linear.grad_b", SEE_LINEAR)


def test_linear_fresh_layer_computes_x_W_plus_b(impl):
    n_in, n_out = pick((30, 20), (24, 32), (40, 16))
    layer = impl.Linear(n_in, n_out)
    limit = np.sqrt(6.0 / (n_in + n_out))
    x = np.random.randn(2, 5, n_in)
    W, b = np.array(layer.W), np.array(layer.b)
    with check:
        assert W.shape == (n_in, n_out) and np.abs(W).max() <= limit and W.std() > limit / 3, (
            f"Linear.W must be Xavier-uniform, U(-{limit:.4f}, {limit:.4f}); got shape {W.shape}, "
            f"max |W| {np.abs(W).max():.4f}, std {W.std():.4f}; {SEE_LINEAR}")
    with check:
        assert b.shape == (n_out,) and not b.any(), (
            f"Linear.b must start as zeros of shape ({n_out},); {SEE_LINEAR}")
    assert_close(call(layer.forward, x, what="Linear.forward", see=SEE_LINEAR),
                 x @ W + b, "Linear.forward(x) of a fresh layer", SEE_LINEAR)


def test_linear_forward_uses_current_parameters(impl):
    layer = impl.Linear(3, 2)
    x = np.array([[1.0, 2.0, -1.0]])
    call(layer.forward, x, what="Linear.forward", see=SEE_LINEAR)
    layer.W = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 3.0]])
    layer.b = np.array([0.5, -0.5])
    assert_close(call(layer.forward, x, what="Linear.forward", see=SEE_LINEAR), [[-1.0 + 0.5, -1.0 - 0.5]],
                 "Linear.forward after assigning W and b (x = [1, 2, -1])", SEE_LINEAR)
    layer.W[0, 0] = 10.0  # a change in place must show as well
    assert_close(call(layer.forward, x, what="Linear.forward", see=SEE_LINEAR), [[8.0 + 0.5, -1.0 - 0.5]],
                 "Linear.forward after changing W in place", SEE_LINEAR)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradients(impl, bias):
    n_in, n_out = pick((4, 3), (5, 2), (3, 6))
    layer = impl.Linear(n_in, n_out, bias=bias)
    rng = seeded(1)
    randomize_params(layer, LINEAR if bias else ["W"], rng)
    assert_gradients(f"Linear({n_in}, {n_out}, bias={bias})", SEE_LINEAR,
                     forward=lambda x: layer.forward(x), backward=layer.backward,
                     inputs=[("x", rng.standard_normal((2, 5, n_in)))],
                     params=LINEAR if bias else ["W"], owner=layer, zero_grad=layer.zero_grad)


def test_linear_without_bias(impl):
    layer = impl.Linear(4, 3, bias=False)
    x = np.random.randn(2, 4)
    with check:
        assert layer.b is None and layer.grad_b is None, (
            f"Linear(bias=False): b and grad_b must be None, got {type(layer.b).__name__} and "
            f"{type(layer.grad_b).__name__}; {SEE_LINEAR}")
    with check:
        pairs = layer.get_parameters()
        assert len(pairs) == 1 and pairs[0][0] is layer.W, (
            f"Linear(bias=False).get_parameters() must be [(W, grad_W)], got {len(pairs)} pairs; {SEE_LINEAR}")
    assert_close(call(layer.forward, x, what="Linear.forward", see=SEE_LINEAR),
                 x @ np.array(layer.W), "Linear(bias=False).forward(x)", SEE_LINEAR)


def test_linear_gradients_accumulate_and_reset(impl):
    N, n_in, n_out = pick((6, 4, 3), (5, 3, 2), (7, 5, 4))
    layer = impl.Linear(n_in, n_out)
    x, g = np.random.randn(N, n_in), np.random.randn(N, n_out)
    layer.zero_grad()
    call(layer.forward, x, what="Linear.forward", see=SEE_LINEAR)
    call(layer.backward, g, what="Linear.backward", see=SEE_LINEAR)
    grad_W, grad_b = layer.grad_W, layer.grad_b
    once_W, once_b = np.array(grad_W), np.array(grad_b)
    assert_close(once_b, g.sum(axis=0), "Linear.grad_b after one backward: the sum of grad_output over the batch",
                 SEE_LINEAR)
    call(layer.forward, x, what="Linear.forward", see=SEE_LINEAR)
    call(layer.backward, g, what="Linear.backward", see=SEE_LINEAR)
    with check:
        assert_close(layer.grad_W, 2 * once_W, "Linear.grad_W after two backward passes (gradients add up, +=)",
                     SEE_LINEAR)
    with check:
        assert_close(layer.grad_b, 2 * once_b, "Linear.grad_b after two backward passes (gradients add up, +=)",
                     SEE_LINEAR)
    layer.zero_grad()
    with check:
        assert layer.grad_W is grad_W and layer.grad_b is grad_b, (
            f"Linear.zero_grad must fill the gradient arrays with 0 in place, not replace them; {SEE_LINEAR}")
    with check:
        assert not np.any(layer.grad_W) and not np.any(layer.grad_b), f"Linear.zero_grad left non-zero values; {SEE_LINEAR}"


def test_linear_rejects_wrong_input_size(impl):
    layer = impl.Linear(4, 3)
    assert_shape(call(layer.forward, np.ones((2, 4)), what="Linear.forward", see=SEE_LINEAR),
                 (2, 3), "Linear(4, 3).forward(x of shape (2, 4))", SEE_LINEAR)
    assert_raises(ValueError, "Linear(4, 3).forward(x of shape (2, 5)): the last axis must be 4", SEE_LINEAR,
                  layer.forward, np.ones((2, 5)), naming="4")


# ---------------------------------------------------------------- ReLU

def test_relu_forward_and_backward_by_hand(impl):
    relu = impl.ReLU()
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    with check:
        assert_close(call(relu.forward, x, what="ReLU.forward", see=SEE_RELU),
                     [[0.0, 0.0, 0.0, 0.5, 3.0]], "ReLU.forward([-2, -0.5, 0, 0.5, 3])", SEE_RELU)
    with check:
        assert_close(call(relu.backward, np.array([[1.0, 2.0, 3.0, 4.0, 5.0]]), what="ReLU.backward", see=SEE_RELU),
                     [[0.0, 0.0, 0.0, 4.0, 5.0]],
                     "ReLU.backward([1, 2, 3, 4, 5]) after forward([-2, -0.5, 0, 0.5, 3]): the gradient passes "
                     "only where x > 0, and x = 0 gets 0", SEE_RELU)


@pytest.mark.parametrize("shape", [(7,), (2, 3), (2, 3, 4)])
def test_relu_shapes_and_gradients(impl, shape):
    relu = impl.ReLU()
    rng = seeded(2)
    x = rng.standard_normal(shape)
    x = np.where(np.abs(x) < 0.05, 0.5, x)  # keep away from the kink, where differences are undefined
    assert_shape(call(relu.forward, x, what="ReLU.forward", see=SEE_RELU),
                 shape, f"ReLU.forward(x of shape {shape})", SEE_RELU)
    assert_gradients("ReLU", SEE_RELU, forward=relu.forward, backward=relu.backward, inputs=[("x", x)])


# ---------------------------------------------------------------- LayerNorm

def test_layernorm_by_hand(impl):
    norm = impl.LayerNorm(4)
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    # mean 2.5, biased variance 1.25 (the unbiased one would be 5/3)
    expected = (x - 2.5) / np.sqrt(1.25 + 1e-5)
    assert_close(call(norm.forward, x, what="LayerNorm.forward", see=SEE_LN), expected,
                 "LayerNorm(4).forward([1, 2, 3, 4]): (x - 2.5) / sqrt(1.25 + 1e-5), with the biased variance",
                 SEE_LN)


@pytest.mark.parametrize("shape", [(3, 8), (2, 5, 8), (1, 1, 8)])
def test_layernorm_output_is_normalised(impl, shape):
    norm = impl.LayerNorm(8)
    x = np.random.randn(*shape) * 3.0 + 5.0
    out = call(norm.forward, x, what="LayerNorm.forward", see=SEE_LN)
    assert_shape(out, shape, f"LayerNorm(8).forward(x of shape {shape})", SEE_LN)
    with check:
        assert_close(out.mean(axis=-1), np.zeros(shape[:-1]), "mean of each LayerNorm output row", SEE_LN,
                     atol=1e-9)
    with check:
        assert_close(out.var(axis=-1), np.full(shape[:-1], 1.0), "variance of each LayerNorm output row "
                     "(1 up to eps)", SEE_LN, rtol=1e-3)
    assert_shape(call(norm.backward, np.ones(shape), what="LayerNorm.backward", see=SEE_LN_BACK),
                 shape, "LayerNorm.backward: the gradient with respect to x",
                 SEE_LN_BACK)


def test_layernorm_applies_gamma_and_beta(impl):
    norm = impl.LayerNorm(3)
    norm.gamma = np.array([2.0, -1.0, 0.5])
    norm.beta = np.array([0.0, 1.0, -3.0])
    x = np.array([[0.0, 3.0, 6.0]])  # mean 3, biased variance 6
    x_hat = np.array([-3.0, 0.0, 3.0]) / np.sqrt(6.0 + 1e-5)
    assert_close(call(norm.forward, x, what="LayerNorm.forward", see=SEE_LN),
                 [x_hat * [2.0, -1.0, 0.5] + [0.0, 1.0, -3.0]],
                 "LayerNorm.forward with gamma = [2, -1, 0.5], beta = [0, 1, -3]", SEE_LN)


def test_layernorm_eps_goes_inside_the_square_root(impl):
    norm = impl.LayerNorm(4)
    x = np.array([[1.0, 1.0 + 1e-4, 1.0, 1.0 + 1e-4], [7.0, 7.0, 7.0, 7.0]])
    # row 0 has variance 2.5e-9, far below eps: (x - mean) / sqrt(var + eps) is about +-0.0158
    expected = np.array([[-1.0, 1.0, -1.0, 1.0]]) * 5e-5 / np.sqrt(2.5e-9 + 1e-5)
    out = call(norm.forward, x, what="LayerNorm.forward", see=SEE_LN)
    with check:
        assert_close(out[:1], expected, "LayerNorm.forward of a row with variance 2.5e-9 (eps = 1e-5 goes "
                     "under the square root with the variance, not added to the standard deviation)", SEE_LN)
    with check:
        assert_close(out[1:], np.zeros((1, 4)), "LayerNorm.forward of a constant row (must be 0, not NaN)", SEE_LN)


def layernorm_input_gradients(x, g, gammas):
    """compute for expect(): the reference LayerNorm's gradient with respect to x for each gamma of gammas."""
    def compute(ref):
        found = []
        for gamma in gammas:
            norm = ref.LayerNorm(x.shape[-1])
            set_path(norm, "gamma", np.array(gamma))
            norm.forward(x)
            found.append(norm.backward(g))
        return found
    return compute


def test_layernorm_gradients(impl, expect):
    # first a mistake the lesson's two self-checks cannot see: the gradient LayerNorm would have with gamma = 1
    D = pick(6, 5, 8)
    own = seeded(4)
    x, g, gamma = own.standard_normal((3, 4, D)) * 2.0 + 1.0, own.standard_normal((3, 4, D)), own.standard_normal(D)
    exact, without_gamma = expect(layernorm_input_gradients(x, g, [gamma, np.ones(D)]))
    probe = impl.LayerNorm(D)
    set_path(probe, "gamma", gamma.copy())
    probe.forward(x.copy())
    dx = as_array(probe.backward(g.copy()), "LayerNorm.backward: the gradient with respect to x", SEE_LN_BACK)
    wrong = dx.shape == x.shape and not np.allclose(dx, exact, rtol=1e-6, atol=1e-9)
    if wrong and np.allclose(dx, without_gamma, rtol=1e-6, atol=1e-9):
        pytest.fail(f"LayerNorm({D}).backward: dx is the gradient LayerNorm would have with gamma = 1, so gamma is "
                    "missing: the gradient of x_hat is d_hat = grad_output * gamma, not grad_output (the two "
                    f"self-checks cannot see this mistake); {SEE_LN_BACK}", pytrace=False)
    norm = impl.LayerNorm(D)
    rng = seeded(3)
    randomize_params(norm, LAYER_NORM, rng)
    assert_gradients(f"LayerNorm({D})", SEE_LN_BACK, forward=norm.forward, backward=norm.backward,
                     inputs=[("x", rng.standard_normal((3, 4, D)) * 2.0 + 1.0)],
                     params=LAYER_NORM, owner=norm, zero_grad=norm.zero_grad)


def test_layernorm_gradients_accumulate(impl):
    N, D = pick((4, 5), (3, 7), (6, 4))
    norm = impl.LayerNorm(D)
    x, g = np.random.randn(N, D), np.random.randn(N, D)
    norm.zero_grad()
    call(norm.forward, x, what="LayerNorm.forward", see=SEE_LN)
    call(norm.backward, g, what="LayerNorm.backward", see=SEE_LN_BACK)
    once = np.array(norm.grad_gamma), np.array(norm.grad_beta)
    assert_close(once[1], g.sum(axis=0), "LayerNorm.grad_beta: the sum of grad_output over every leading axis",
                 SEE_LN_BACK)
    call(norm.forward, x, what="LayerNorm.forward", see=SEE_LN)
    call(norm.backward, g, what="LayerNorm.backward", see=SEE_LN_BACK)
    with check:
        assert_close(norm.grad_gamma, 2 * once[0], "LayerNorm.grad_gamma after two backward passes (+=)",
                     SEE_LN_BACK)
    with check:
        assert_close(norm.grad_beta, 2 * once[1], "LayerNorm.grad_beta after two backward passes (+=)", SEE_LN_BACK)


def test_layernorm_rejects_wrong_input_size(impl):
    norm = impl.LayerNorm(4)
    assert_shape(call(norm.forward, np.random.randn(2, 4), what="LayerNorm.forward", see=SEE_LN),
                 (2, 4), "LayerNorm(4).forward(x of shape (2, 4))", SEE_LN)
    assert_raises(ValueError, "LayerNorm(4).forward(x of shape (2, 3)): the last axis must be 4", SEE_LN,
                  norm.forward, np.ones((2, 3)), naming="4")


# ---------------------------------------------------------------- FeedForward

def test_feedforward_is_linear_relu_linear(impl):
    D, F = pick((4, 6), (6, 4), (5, 8))
    ffn = impl.FeedForward(D, F)
    rng = seeded(4)
    randomize_params(ffn, FEED_FORWARD, rng)
    x = rng.standard_normal((2, 3, D))
    W1, b1, W2, b2 = (np.array(ffn.linear1.W), np.array(ffn.linear1.b), np.array(ffn.linear2.W),
                      np.array(ffn.linear2.b))
    out = call(ffn.forward, x, what="FeedForward.forward", see=SEE_FFN)
    assert_shape(out, (2, 3, D), f"FeedForward({D}, {F}).forward(x of shape (2, 3, {D}))", SEE_FFN)
    assert_close(out, np.maximum(x @ W1 + b1, 0.0) @ W2 + b2, "FeedForward.forward: linear2(relu(linear1(x)))",
                 SEE_FFN)


def test_feedforward_gradients(impl):
    D, F = pick((4, 6), (6, 4), (5, 8))
    ffn = impl.FeedForward(D, F)
    rng = seeded(5)
    randomize_params(ffn, FEED_FORWARD, rng)
    assert_gradients(f"FeedForward({D}, {F})", SEE_FFN, forward=ffn.forward, backward=ffn.backward,
                     inputs=[("x", rng.standard_normal((2, 3, D)))],
                     params=FEED_FORWARD, owner=ffn, zero_grad=ffn.zero_grad)


def test_feedforward_parameters(impl):
    ffn = impl.FeedForward(4, 6)
    call(ffn.forward, np.random.randn(3, 4), what="FeedForward.forward", see=SEE_FFN)
    call(ffn.backward, np.random.randn(3, 4), what="FeedForward.backward", see=SEE_FFN)
    pairs = ffn.get_parameters()
    expected = [(ffn.linear1.W, ffn.linear1.grad_W), (ffn.linear1.b, ffn.linear1.grad_b),
                (ffn.linear2.W, ffn.linear2.grad_W), (ffn.linear2.b, ffn.linear2.grad_b)]
    with check:
        assert len(pairs) == 4 and all(p is e[0] and g is e[1] for (p, g), e in zip(pairs, expected)), (
            f"FeedForward.get_parameters() must return linear1's and then linear2's (param, grad) pairs, the "
            f"arrays themselves; {SEE_FFN}")
    ffn.zero_grad()
    with check:
        assert all(not np.any(g) for _, g in ffn.get_parameters()), (
            f"FeedForward.zero_grad() left non-zero gradients; {SEE_FFN}")
