"""The gradient checker's diagnosis names the kind of mistake, and the checker rejects a wrong backward."""

import numpy as np
import pytest

from kata.testing.gradcheck import check_gradients, diagnose

pytestmark = pytest.mark.meta
RNG = np.random.default_rng(0)
RIGHT = RNG.normal(size=(4, 4))


@pytest.mark.parametrize("wrong, expected", [
    (-RIGHT, "the sign is flipped"),
    (RIGHT / 4, "off by a constant factor of 0.25 (1/4)"),
    (RIGHT * 2, "off by a constant factor of 2"),
    (RIGHT * (1 + 2e-5), "close to the right gradient but about 2.0e-05 too large"),
    (RIGHT.T, "transpose"),
    (np.zeros_like(RIGHT), "zero where it should not be"),
    (np.where(np.arange(16).reshape(4, 4) % 3 == 0, 0.0, RIGHT), "entries are zero where they should not be"),
    (RIGHT + RNG.normal(size=(4, 4)), "no simple pattern"),
    (np.full_like(RIGHT, np.nan), "NaN"),
], ids=["sign", "factor-1/4", "factor-2", "nearly-1", "transpose", "zero", "partly-zero", "noise", "nan"])
def test_diagnosis_names_the_kind_of_mistake(wrong, expected):
    message = diagnose(wrong.ravel(), RIGHT.ravel(), full=(wrong, RIGHT))
    assert expected in message, message


def test_check_gradients_accepts_a_right_backward_and_rejects_a_wrong_one():
    W = RNG.normal(size=(3, 2))

    def forward(x):
        return np.tanh(x @ W)

    def backward(x, grad):
        return ((1 - np.tanh(x @ W) ** 2) * grad) @ W.T

    x = RNG.normal(size=(5, 3))
    state = {}

    def run_forward(x):
        state["x"] = x
        return forward(x)

    assert not check_gradients(run_forward, lambda g: backward(state["x"], g), inputs=[("x", x)])
    problems = check_gradients(run_forward, lambda g: -backward(state["x"], g), inputs=[("x", x)])
    assert problems and "sign is flipped" in str(problems)


def test_a_transposed_gradient_is_named_even_when_only_a_sample_is_checked():
    W = RNG.normal(size=(12, 12))  # 144 entries: more than the checker's sample of 64
    state = {}

    def forward(x):
        state["x"] = x
        return x @ W

    problems = check_gradients(forward, lambda g: (g @ W.T).T, inputs=[("x", RNG.normal(size=(12, 12)))])
    assert problems and "transpose" in str(problems), problems
