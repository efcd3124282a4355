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


W_PROBE = RNG.normal(size=(3, 2))


def tanh_layer(wrong=1.0):
    """A layer x -> tanh(x @ W) whose backward is scaled by wrong (1.0: right); it records every call."""
    state = {"calls": []}

    def forward(x):
        state["x"] = x
        state["calls"].append(("forward", np.array(x)))
        return np.tanh(x @ W_PROBE)

    def backward(grad):
        state["calls"].append(("backward", None))
        return wrong * ((1 - np.tanh(state["x"] @ W_PROBE) ** 2) * grad) @ W_PROBE.T

    return forward, backward, state


def test_a_forward_that_recognises_probes_cannot_hide_a_wrong_backward():
    # issue 13: the probe of one entry by a tiny step, answered as the wrong backward predicts
    x = RNG.normal(size=(5, 3))
    forward_right, backward_wrong, state = tanh_layer(wrong=1.5)
    memory = {}

    def forward(v):
        seen, nudge = memory.get("seen"), None
        if seen is not None:
            nudge = v - seen
        if nudge is not None and np.count_nonzero(nudge) == 1 and np.abs(nudge).max() < 1e-4 and "lie" in memory:
            up, dx = memory["lie"]
            return memory["out"] + up * (nudge.sum() * dx.flat[np.flatnonzero(nudge)[0]] / np.sum(up * up))
        memory["seen"], memory["out"] = np.array(v), forward_right(v)
        return memory["out"].copy()

    def backward(grad):
        dx = backward_wrong(grad)
        memory["lie"] = (np.array(grad), dx)
        return dx

    problems = check_gradients(forward, backward, inputs=[("x", x)])
    assert problems and "dx: wrong gradient" in problems[0], problems


def test_probes_move_every_entry_run_in_random_order_and_surround_the_backward_passes():
    x = RNG.normal(size=(4, 3))
    forward, backward, state = tanh_layer()
    assert not check_gradients(forward, backward, inputs=[("x", x)], seed=5)
    calls = state["calls"]
    backwards = [k for k, (kind, _) in enumerate(calls) if kind == "backward"]
    assert len(backwards) == 2, "the analytic pass runs twice"
    probes = [k for k, (kind, v) in enumerate(calls) if kind == "forward" and not np.array_equal(v, x)]
    assert probes[0] < backwards[0] and probes[-1] > backwards[-1], "probes come before and after backward"
    moved = [int(np.count_nonzero(calls[k][1] - x)) for k in probes]
    assert moved.count(x.size) >= 6 and moved.count(1) >= 2 * x.size, "random directions and single entries"
    singles = [int(np.flatnonzero(calls[k][1] - x)[0]) for k in probes if moved[probes.index(k)] == 1]
    assert singles != sorted(singles), "the entries are probed in random order"
    assert all(calls[k - 1][0] == "forward" and np.array_equal(calls[k - 1][1], x) for k in backwards), \
        "each backward follows a forward of the checked input"


def test_a_backward_right_only_on_its_first_call_is_rejected():
    x = RNG.normal(size=(5, 3))
    forward, backward_right, state = tanh_layer()
    count = {"n": 0}

    def backward(grad):
        count["n"] += 1
        return backward_right(grad) * (1.0 if count["n"] == 1 else 2.0)

    problems = check_gradients(forward, backward, inputs=[("x", x)])
    assert problems and "second of two identical" in problems[0] and "factor of 2" in problems[0], problems


def test_random_directions_catch_a_forward_that_answers_every_single_entry_nudge():
    # a liar that needs no upstream gradient: a nudge of one entry of the first input it saw, whenever it comes,
    # moves the output 1.5 times as far as it should, as its backward (1.5 times the right one) predicts
    x = RNG.normal(size=(5, 3))
    forward_right, backward_wrong, _ = tanh_layer(wrong=1.5)
    memory = {}

    def forward(v):
        base = memory.setdefault("base", np.array(v))
        nudge = v - base
        out = forward_right(v)
        if np.count_nonzero(nudge) == 1 and np.abs(nudge).max() < 1e-4:
            out0 = forward_right(base)
            forward_right(v)  # keep the cache of this call, as a layer would
            return out0 + 1.5 * (out - out0)
        return out

    problems = check_gradients(forward, backward_wrong, inputs=[("x", x)])
    assert problems and "along a random direction" in problems[0], problems
