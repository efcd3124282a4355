"""Lesson 07: backward through the whole model, its parameters and gradients, and a numerical gradient."""

import numpy as np
import pytest
from pytest_check import check

from kata.course.contract import get_path, grad_path
from kata.course.manifest import reread
from tests.helpers import (
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
    transformer_params,
)
from tests.positions import assert_float64_positions

pytestmark = pytest.mark.lesson07

SEE_BACK = reread("07", "Backward through the model")
SEE_PARAMS = reread("07", "Parameters and gradients")
SEE_NUM = reread("07", "Numerical gradients")
SEE_FORWARD = reread("05", "Stacking, pooling and projecting")

# small, so that a gradient check of every parameter stays fast; two layers, so the order of blocks matters
CFG = dict(vocab_size=20, embed_dim=8, num_heads=2, num_layers=2, ffn_dim=12)
TINY = dict(vocab_size=20, embed_dim=4, num_heads=2, num_layers=2, ffn_dim=6)
PATHS = transformer_params(2)

# "Max ( 3 3 9 )" and "First ( 5 0 )" + PAD: a repeated token, and a right-padded row
TOKENS = np.array([[15, 17, 5, 5, 11, 18], [12, 17, 7, 2, 18, 0]])


def draw_model(cfg, k):
    """Random values for every parameter of Transformer(**cfg) (so ones and zeros at initialisation hide nothing),
    drawn by the test from the contract's shapes, and the generator that drew them, for the test's further draws."""
    full = {"vocab_size": 20, "embed_dim": 64, "num_layers": 2, "ffn_dim": 256, **cfg}  # the contract's defaults
    rng = seeded(k)
    sizes = shapes("Transformer", full["embed_dim"], full["ffn_dim"], full["vocab_size"], full["num_layers"])
    return draw_params(sizes, rng), rng


def make_model(impl, cfg, k):
    """A Transformer of impl with the random parameters draw_model(cfg, k) gives, and the generator."""
    params, rng = draw_model(cfg, k)
    model = impl.Transformer(**cfg)
    set_params(model, params)
    return model, rng


def reference_backward(cfg, params, tokens, grad_logits, paths):
    """compute for expect(): the reference's gradients {path: array} after zero_grad, forward(tokens) and
    backward(grad_logits), with params."""
    def compute(ref):
        reference = ref.Transformer(**cfg)
        set_params(reference, params)
        reference.zero_grad()
        reference.forward(tokens)
        reference.backward(grad_logits)
        return gradients(reference, paths)
    return compute


def gradients(model, paths=PATHS):
    """{path: a copy of its gradient array}, read through the contract's attributes."""
    return {path: np.array(get_path(model, grad_path(path)), dtype=np.float64) for path in paths}


# ---------------------------------------------------------------- Transformer.backward

def test_model_gradients_on_a_padded_batch(impl):
    model, _ = make_model(impl, CFG, 1)
    tokens = pick(np.array([[15, 17, 5, 5], [12, 7, 2, 0]]),  # a repeated token; a PAD, masked as a key by default
                  np.array([[13, 4, 4, 9, 6], [16, 1, 0, 0, 0]]), np.array([[11, 3, 18], [8, 8, 0], [19, 2, 14]]))
    assert_gradients("Transformer(embed_dim=8, num_heads=2, num_layers=2, ffn_dim=12) on a padded batch, mask None",
                     SEE_BACK, forward=lambda: model.forward(tokens), backward=model.backward,
                     params=PATHS, owner=model, zero_grad=model.zero_grad, see_zero_grad=SEE_PARAMS)


def test_model_gradients_through_an_explicit_mask(impl):
    model, _ = make_model(impl, TINY, 2)
    tokens, mask = pick((np.array([[15, 17, 5, 11], [12, 17, 7, 2], [13, 3, 3, 4]]),
                         np.array([[True, True, False, True], [True, False, True, True], [True, True, True, False]])),
                        (np.array([[9, 14, 14, 2, 6], [3, 19, 1, 10, 5]]),
                         np.array([[True, False, True, False, True], [True, True, False, True, False]])),
                        (np.array([[7, 2, 16], [12, 12, 5], [1, 4, 8], [18, 6, 3]]),
                         np.array([[True, False, True], [True, True, False], [False, True, True],
                                   [True, False, False]])))
    assert_gradients("Transformer(embed_dim=4, num_heads=2, num_layers=2, ffn_dim=6) with an explicit mask "
                     "that hides some real tokens", SEE_BACK,
                     forward=lambda: model.forward(tokens, mask), backward=model.backward,
                     params=PATHS, owner=model, zero_grad=model.zero_grad, see_zero_grad=SEE_PARAMS)


def test_model_gradients_with_one_token(impl):
    model, _ = make_model(impl, TINY, 3)
    tokens = pick(np.array([[12], [15], [12]]),  # T = 1: the first token is the whole sequence
                  np.array([[4], [19], [1], [4]]), np.array([[7], [7]]))
    assert_gradients(f"Transformer(embed_dim=4, ...) on tokens of shape {tokens.shape}", SEE_BACK,
                     forward=lambda: model.forward(tokens), backward=model.backward,
                     params=PATHS, owner=model, zero_grad=model.zero_grad, see_zero_grad=SEE_PARAMS)


@pytest.mark.parametrize("cfg", [CFG, {}], ids=["small", "default"])
def test_model_backward_returns_none_and_matches_the_reference(impl, expect, cfg):
    num_layers = cfg.get("num_layers", 2)
    paths = transformer_params(num_layers)
    tokens = pick(TOKENS, np.array([[9, 3, 3, 18, 0, 0, 0], [14, 6, 11, 2, 7, 1, 5], [4, 12, 0, 0, 0, 0, 0]]),
                  np.array([[16, 16, 8]]))
    params, rng = draw_model(cfg, 4)
    grad_logits = rng.standard_normal((len(tokens), 20))
    expected = expect(reference_backward(cfg, params, tokens, grad_logits, paths))
    model = impl.Transformer(**cfg)
    set_params(model, params)
    assert_float64_positions(model.positional_encoding, tokens.shape[1], cfg.get("embed_dim", 64),
                             "Transformer.positional_encoding, which this test uses")
    model.zero_grad()
    call(model.forward, tokens, what="Transformer.forward", see=SEE_FORWARD)
    result = call(model.backward, grad_logits, what="Transformer.backward (transformer_backward)", see=SEE_BACK)
    with check:
        assert result is None, (f"Transformer.backward must return None (the input was token ids, which have no "
                                f"gradient), got {type(result).__name__}; {SEE_BACK}")
    got = gradients(model, paths)
    for path in paths:
        with check:
            assert_close(got[path], expected[path],
                         f"Transformer({', '.join(f'{k}={v}' for k, v in cfg.items()) or 'default'}).{grad_path(path)} "
                         f"after forward({len(tokens)} examples) and backward(random grad_logits)", SEE_BACK)


def test_model_backward_rejects_a_wrong_gradient_shape(impl, expect):
    params, rng = draw_model(CFG, 5)
    grad_logits = rng.standard_normal((2, 20))
    expected = expect(reference_backward(CFG, params, TOKENS, grad_logits, ["output.W"]))
    model = impl.Transformer(**CFG)
    set_params(model, params)
    call(model.forward, TOKENS, what="Transformer.forward", see=SEE_FORWARD)
    call(model.backward, grad_logits, what="Transformer.backward (transformer_backward)", see=SEE_BACK)
    assert_close(get_path(model, "output.grad_W"), expected["output.W"],
                 "Transformer.output.grad_W after backward(grad_logits of shape (2, 20))", SEE_BACK)
    assert_raises(ValueError, "Transformer.backward(grad_logits of shape (2, 19)) after a forward of 2 examples: "
                  "grad_logits must have the shape of the logits, (2, 20)", SEE_BACK,
                  model.backward, rng.standard_normal((2, 19)), naming="(2, 20)")


# ---------------------------------------------------------------- get_parameters and zero_grad

def test_get_parameters_returns_every_parameter_once(impl):
    model, rng = make_model(impl, CFG, 6)
    call(model.forward, TOKENS, what="Transformer.forward", see=SEE_FORWARD)
    call(model.backward, rng.standard_normal((2, 20)), what="Transformer.backward (transformer_backward)", see=SEE_BACK)
    pairs = model.get_parameters()
    assert isinstance(pairs, list), (f"Transformer.get_parameters() must return a list of (param, grad) pairs, got "
                                     f"{type(pairs).__name__}; {SEE_PARAMS}")
    with check:
        assert len(pairs) == len(PATHS), (
            f"Transformer.get_parameters() of a 2-layer model must return {len(PATHS)} (param, grad) pairs "
            f"(embedding.W, 12 per block, output.W and output.b), got {len(pairs)}; {SEE_PARAMS}")
    for path in PATHS:
        param, grad = get_path(model, path), get_path(model, grad_path(path))
        found = [k for k, pair in enumerate(pairs) if len(pair) == 2 and pair[0] is param]
        with check:
            assert len(found) == 1, (
                f"Transformer.get_parameters(): the array {path} must appear exactly once (the attribute's own "
                f"array, not a copy, so that an optimizer updates the model), found {len(found)} times; {SEE_PARAMS}")
        with check:
            assert not found or pairs[found[0]][1] is grad, (
                f"Transformer.get_parameters(): {path} must be paired with its own gradient array "
                f"{grad_path(path)}, not a copy or another array; {SEE_PARAMS}")
    with check:
        assert any(np.any(g) for _, g in pairs if isinstance(g, np.ndarray)), (
            f"after forward and backward, every gradient returned by get_parameters() is zero; {SEE_PARAMS}")
    again = model.get_parameters()
    with check:
        assert len(again) == len(pairs) and all(a[0] is b[0] and a[1] is b[1] for a, b in zip(again, pairs)), (
            f"Transformer.get_parameters() must return the same arrays in the same order on every call; "
            f"{SEE_PARAMS}")


def test_default_model_has_102036_parameters(impl):
    model = impl.Transformer()
    pairs = model.get_parameters()
    sizes = [np.asarray(param).size for param, _ in pairs]
    with check:
        assert sum(sizes) == 102_036, (
            f"the default Transformer() must have 102,036 parameters; get_parameters() returned {len(pairs)} "
            f"arrays holding {sum(sizes):,} numbers; {SEE_PARAMS}")
    with check:
        assert all(isinstance(p, np.ndarray) and isinstance(g, np.ndarray) and p.shape == g.shape
                   for p, g in pairs), (
            f"every pair of get_parameters() must be (param, grad), two arrays of the same shape; {SEE_PARAMS}")


def test_zero_grad_fills_every_gradient_in_place(impl):
    model, rng = make_model(impl, CFG, 7)
    call(model.forward, TOKENS, what="Transformer.forward", see=SEE_FORWARD)
    call(model.backward, rng.standard_normal((2, 20)), what="Transformer.backward (transformer_backward)", see=SEE_BACK)
    before = {path: get_path(model, grad_path(path)) for path in PATHS}
    with check:
        assert np.any(before["embedding.W"]) and np.any(before["output.b"]), (
            f"after forward and backward, embedding.grad_W and output.grad_b must not be zero; {SEE_BACK}")
    model.zero_grad()
    for path in PATHS:
        after = get_path(model, grad_path(path))
        with check:
            assert after is before[path], (
                f"Transformer.zero_grad() replaced {grad_path(path)} with a new array; it must fill the existing "
                f"array with 0 in place (optimizers hold the old one); {SEE_PARAMS}")
        with check:
            assert isinstance(after, np.ndarray) and not np.any(after), (
                f"Transformer.zero_grad() left {grad_path(path)} non-zero; {SEE_PARAMS}")


def test_gradients_accumulate_over_two_backward_passes(impl):
    model, rng = make_model(impl, CFG, 8)
    grad_logits = rng.standard_normal((2, 20))
    model.zero_grad()
    call(model.forward, TOKENS, what="Transformer.forward", see=SEE_FORWARD)
    call(model.backward, grad_logits, what="Transformer.backward (transformer_backward)", see=SEE_BACK)
    once = gradients(model)
    with check:
        assert np.any(once["embedding.W"]) and np.any(once["blocks.0.attention.W_q"]), (
            f"after one backward pass, embedding.grad_W and blocks[0].attention.grad_W_q must not be zero; {SEE_BACK}")
    call(model.forward, TOKENS, what="Transformer.forward", see=SEE_FORWARD)
    call(model.backward, grad_logits, what="Transformer.backward (transformer_backward)", see=SEE_BACK)
    twice = gradients(model)
    for path in PATHS:
        with check:
            assert_close(twice[path], 2 * once[path], f"Transformer.{grad_path(path)} after two identical backward "
                         f"passes without zero_grad (gradients add up, +=)", SEE_PARAMS)
    model.zero_grad()
    call(model.forward, TOKENS, what="Transformer.forward", see=SEE_FORWARD)
    call(model.backward, grad_logits, what="Transformer.backward (transformer_backward)", see=SEE_BACK)
    for path in PATHS:
        with check:
            assert_close(get_path(model, grad_path(path)), once[path], f"Transformer.{grad_path(path)} after "
                         f"zero_grad and one more backward pass (must equal the first pass)", SEE_PARAMS)


# ---------------------------------------------------------------- numerical_gradient

X = np.array([[0.1, -1.3, 2.0], [0.7, 0.2, -0.25]])  # 0.1 + eps - 2 eps + eps is not 0.1 in floating point
RESTORE = ("numerical_gradient must leave x (and grad_output) exactly as they were: save x[i] and put the saved "
           "value back (adding and subtracting eps does not give the same float)")


def numerical_gradient(impl, *args, **kwargs):
    """impl.numerical_gradient(*args, **kwargs), failing if x or grad_output did not come back unchanged."""
    return call(impl.numerical_gradient, *args, what="numerical_gradient", see=SEE_NUM, hint=RESTORE, **kwargs)


def test_numerical_gradient_of_a_square(impl):
    x = X.copy()
    grad = numerical_gradient(impl, lambda v: v ** 2, x)
    assert_close(grad, 2 * X, "numerical_gradient(f(x) = x**2, x) with grad_output None (ones): 2x", SEE_NUM)


def test_numerical_gradient_weights_by_grad_output(impl):
    x = X.copy()
    g = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.5]])
    grad = numerical_gradient(impl, np.sin, x, grad_output=g)
    assert_close(grad, g * np.cos(X), "numerical_gradient(np.sin, x, grad_output=g): the derivative of "
                 "sum(sin(x) * g) is g * cos(x)", SEE_NUM, rtol=1e-8, atol=1e-9)


def test_numerical_gradient_of_a_matrix_product(impl):
    x = X.copy()
    A = np.array([[1.0, 2.0], [-1.0, 0.5], [0.25, -3.0]])
    g = np.array([[0.5, -1.0], [2.0, 1.5]])
    grad = numerical_gradient(impl, lambda v: v @ A, x, grad_output=g)
    assert_close(grad, g @ A.T, "numerical_gradient(f(x) = x @ A, x, grad_output=g): each entry of x reaches "
                 "every output of its row, so the result is g @ A.T", SEE_NUM, rtol=1e-8, atol=1e-9)


def test_numerical_gradient_of_a_scalar_function(impl):
    x = X.copy()
    grad = numerical_gradient(impl, lambda v: float(np.sum(v ** 2) + 3.0 * v[0, 1]), x)
    expected = 2 * X
    expected[0, 1] += 3.0
    assert_shape(grad, X.shape, "numerical_gradient(f, x) for a float-valued f: the gradient is shaped like x", SEE_NUM)
    assert_close(grad, expected, "numerical_gradient(f(x) = sum(x**2) + 3 x[0, 1], x) (f returns a float)", SEE_NUM)


def test_numerical_gradient_uses_central_differences_with_eps(impl):
    x = np.array([0.5, -1.0, 2.0])
    grad = numerical_gradient(impl, lambda v: v ** 3, x, eps=1e-2)
    # ((x + h)^3 - (x - h)^3) / 2h = 3x^2 + h^2 exactly; a one-sided difference gives 3x^2 + 3xh + h^2
    assert_close(grad, 3 * np.array([0.5, -1.0, 2.0]) ** 2 + 1e-4,
                 "numerical_gradient(f(x) = x**3, x, eps=0.01): central differences give 3x^2 + eps^2",
                 SEE_NUM, rtol=1e-9)


def test_numerical_gradient_nudges_x_itself(impl):
    # issue 13: as in the whole-model check, f ignores its argument and reads the array x (a parameter) itself
    x = X.copy()
    A = np.array([[1.0, 2.0], [-1.0, 0.5], [0.25, -3.0]])
    g = np.array([[0.5, -1.0], [2.0, 1.5]])

    def reads_x(_):
        return np.tanh(x @ A)

    grad = impl.numerical_gradient(reads_x, x, grad_output=g)
    expected = (g * (1.0 - np.tanh(X @ A) ** 2)) @ A.T
    with check:
        assert_close(grad, expected, "numerical_gradient(f, x, grad_output=g) where f ignores its argument and reads "
                     "the array x itself, as the whole-model check reads each parameter: f(x) = tanh(x @ A) (nudge "
                     "x in place, x[i] = saved + eps, never a copy of it)", SEE_NUM, rtol=1e-8, atol=1e-9)
    with check:
        assert np.array_equal(x, X), (
            f"numerical_gradient must leave x exactly as it was after nudging it in place: put the saved value "
            f"back; changed at {np.argwhere(x != X).tolist()[:5]}; {SEE_NUM}")


@pytest.mark.parametrize("shape", [(5,), (2, 3), (2, 2, 3)])
def test_numerical_gradient_restores_x_exactly(impl, shape):
    rng = seeded(9)
    x = np.round(rng.standard_normal(shape), 1)  # values like 0.1 and -1.3: x + eps - 2 eps + eps != x
    x.flat[0] = 0.1
    saved = x.copy()
    grad = numerical_gradient(impl, lambda v: np.tanh(v) * 2.0, x)
    assert_close(grad, 2.0 * (1.0 - np.tanh(saved) ** 2), f"numerical_gradient(2 tanh, x of shape {shape})",
                 SEE_NUM, rtol=1e-8, atol=1e-9)
    with check:
        assert np.array_equal(x, saved), (
            f"numerical_gradient must leave x exactly as it was: save x[i] and put the saved value back (adding and "
            f"subtracting eps does not give the same float); changed at {np.argwhere(x != saved).tolist()[:5]}; "
            f"{SEE_NUM}")
    with check:
        assert x.dtype == saved.dtype, f"numerical_gradient changed the dtype of x to {x.dtype}; {SEE_NUM}"
