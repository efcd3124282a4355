"""Lesson 06: softmax cross-entropy loss over the logits, and its gradient."""

import numpy as np
import pytest
from pytest_check import check

from kata.course.manifest import reread
from tests.helpers import assert_close, assert_gradients, assert_raises, assert_shape, call, pick, seeded

pytestmark = pytest.mark.lesson06

SEE_LOSS = reread("06", "Cross-entropy")
SEE_GRAD = reread("06", "The gradient of softmax and cross-entropy")


def log_softmax(z):
    """Stable log softmax over the last axis, for expected values."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def expected_loss(z, targets):
    return -log_softmax(z)[np.arange(len(targets)), targets].mean()


def expected_grad(z, targets):
    """(softmax(z) - one_hot(targets)) / N, the one-hot rows taken from the identity matrix."""
    return (np.exp(log_softmax(z)) - np.eye(z.shape[-1])[targets]) / len(targets)


def forward(loss_fn, logits, targets):
    """loss_fn.forward(logits, targets), failing if it changed logits or targets in place."""
    return call(loss_fn.forward, logits, targets, what="CrossEntropyLoss.forward(logits, targets)", see=SEE_LOSS)


def as_number(loss, what, see):
    """The loss as a float, or a failure saying it must be a number."""
    assert isinstance(loss, (float, np.floating)), (
        f"{what}: expected a float (the mean loss), got {type(loss).__name__}"
        f"{f' of shape {loss.shape}' if isinstance(loss, np.ndarray) else ''}; {see}")
    return float(loss)


# ---------------------------------------------------------------- forward

def test_loss_by_hand(impl):
    logits = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])
    targets = np.array([2, 0])
    # row 0: -log(e^3 / (e^1 + e^2 + e^3)) = log(1 + e^-1 + e^-2); row 1: three equal logits, -log(1/3)
    by_hand = (np.log(1.0 + np.exp(-1.0) + np.exp(-2.0)) + np.log(3.0)) / 2
    loss = forward(impl.CrossEntropyLoss(), logits, targets)
    assert_close(as_number(loss, "CrossEntropyLoss.forward", SEE_LOSS), by_hand,
                 "CrossEntropyLoss.forward([[1, 2, 3], [0.5, 0.5, 0.5]], targets [2, 0]): the mean of "
                 "log(1 + e^-1 + e^-2) and log 3 (each row picks its own target's log-probability)", SEE_LOSS)


@pytest.mark.parametrize("B, V", [(1, 2), (3, 5), (4, 20)])
def test_uniform_logits_give_log_v(impl, B, V):
    logits = np.full((B, V), 0.7)
    targets = np.arange(B) % V
    loss = forward(impl.CrossEntropyLoss(), logits, targets)
    assert_close(as_number(loss, "CrossEntropyLoss.forward", SEE_LOSS), np.log(V),
                 f"CrossEntropyLoss.forward of equal logits, shape {(B, V)}: every class has probability 1/{V}, "
                 f"so the loss is ln {V}", SEE_LOSS)


def test_loss_is_a_number_and_calling_is_forward(impl):
    B, V, targets = pick((4, 6, [0, 5, 2, 2]), (3, 9, [8, 0, 4]), (6, 2, [1, 0, 0, 1, 1, 0]))
    rng = seeded(30)
    logits, targets = rng.standard_normal((B, V)), np.array(targets)
    loss_fn = impl.CrossEntropyLoss()
    loss = as_number(forward(loss_fn, logits, targets), f"CrossEntropyLoss.forward(logits {(B, V)}, targets ({B},))",
                     SEE_LOSS)
    with check:
        assert_close(loss, expected_loss(logits, targets), f"CrossEntropyLoss.forward of random logits {(B, V)}",
                     SEE_LOSS)
    called = call(loss_fn, logits, targets, what="loss_fn(logits, targets)", see=SEE_LOSS)
    with check:
        assert_close(as_number(called, "CrossEntropyLoss()(logits, targets)", SEE_LOSS), loss,
                     "calling the loss object, loss_fn(logits, targets), compared with "
                     "loss_fn.forward(logits, targets)",
                     SEE_LOSS)


def test_loss_is_a_mean_over_the_batch(impl):
    row, target = np.array([[0.3, -1.2, 2.0, 0.1, 0.0]]), 3
    one = forward(impl.CrossEntropyLoss(), row, np.array([target]))
    four = forward(impl.CrossEntropyLoss(), np.repeat(row, 4, axis=0), np.full(4, target))
    with check:
        assert_close(as_number(one, "CrossEntropyLoss.forward", SEE_LOSS), expected_loss(row, [target]),
                     "CrossEntropyLoss.forward of one example", SEE_LOSS)
    with check:
        assert_close(as_number(four, "CrossEntropyLoss.forward", SEE_LOSS), expected_loss(row, [target]),
                     "CrossEntropyLoss.forward of the same example repeated 4 times (the mean over the batch, "
                     "not the sum: it must equal the loss of one copy)", SEE_LOSS)


def test_loss_is_stable_for_large_logits(impl):
    logits = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -999.0, -1000.0], [1000.0, 1000.0, 999.0]])
    targets = np.array([0, 1, 2])
    loss_fn = impl.CrossEntropyLoss()
    grad_expected = expected_grad(logits, targets)  # before the calls: backward could reach the array forward kept
    loss = as_number(forward(loss_fn, logits, targets), "CrossEntropyLoss.forward", SEE_LOSS)
    # log-sum-exp of each row, shifted by the row's maximum: 1000, -999 + log(1 + 2/e), 1000 + log(2 + 1/e)
    lse = np.array([1000.0 + np.log1p(np.exp(-1000.0) + np.exp(-2000.0)),
                    -999.0 + np.log1p(2 * np.exp(-1.0)), 1000.0 + np.log(2.0 + np.exp(-1.0))])
    picked = logits[np.arange(3), targets]
    with check:
        assert_close(loss, (lse - picked).mean(), "CrossEntropyLoss.forward of logits of magnitude 1000 (subtract "
                     "each row's maximum before exp, or exp overflows)", SEE_LOSS)
    grad = loss_fn.backward()
    with check:
        assert_close(grad, grad_expected, "CrossEntropyLoss.backward() after logits of magnitude "
                     "1000", SEE_GRAD)
    # the target's probability is e^-1000, which underflows to 0: only a log-softmax gives the loss 1000
    unlikely = forward(loss_fn, np.array([[1000.0, 0.0, -1000.0]]), np.array([1]))
    with check:
        assert_close(as_number(unlikely, "CrossEntropyLoss.forward", SEE_LOSS), 1000.0,
                     "CrossEntropyLoss.forward([[1000, 0, -1000]], targets [1]): the target has probability e^-1000 "
                     "(0 in float64), so compute log-softmax = shifted - log(sum(exp(shifted))), not log(softmax)",
                     SEE_LOSS)


# ---------------------------------------------------------------- backward

@pytest.mark.parametrize("B, V", [(1, 4), (4, 5), (6, 20)])
def test_backward_is_softmax_minus_one_hot_over_b(impl, B, V):
    rng = seeded(31)
    logits, targets = rng.standard_normal((B, V)) * 2.0, rng.integers(0, V, size=B)
    loss_fn = impl.CrossEntropyLoss()
    expected = expected_grad(logits, targets)  # before the calls: backward could reach the array forward kept
    forward(loss_fn, logits, targets)
    grad = loss_fn.backward()
    assert_shape(grad, (B, V), f"CrossEntropyLoss.backward() after logits of shape {(B, V)}", SEE_GRAD)
    with check:
        assert_close(grad, expected,
                     f"CrossEntropyLoss.backward(): (softmax(logits) - one_hot(targets)) / B with B = {B}", SEE_GRAD)
    with check:
        assert_close(grad.sum(axis=1), np.zeros(B), "the sum of each row of CrossEntropyLoss.backward() (softmax "
                     "sums to 1 and the one-hot to 1, so each row sums to 0)", SEE_GRAD, atol=1e-12)


def test_loss_gradients(impl):
    B, V, targets = pick((3, 5, [2, 0, 4]), (4, 7, [6, 6, 1, 0]), (2, 3, [1, 2]))
    rng = seeded(32)
    loss_fn = impl.CrossEntropyLoss()
    targets = np.array(targets)
    # the loss is a scalar: the check's upstream has shape (), and d(upstream * loss) = upstream * backward()
    assert_gradients("CrossEntropyLoss", SEE_GRAD,
                     forward=lambda z: np.asarray(loss_fn.forward(z, targets), dtype=np.float64),
                     backward=lambda upstream: loss_fn.backward() * upstream,
                     inputs=[("logits", rng.standard_normal((B, V)) * 1.5)])


def test_backward_uses_the_latest_forward(impl):
    V, targets_first, targets_second = pick((4, [0, 1], [3, 3, 0]), (6, [5, 2, 2], [1, 4]), (3, [2], [0, 2, 2, 1]))
    rng = seeded(33)
    first, second = rng.standard_normal((len(targets_first), V)), rng.standard_normal((len(targets_second), V))
    expected = expected_grad(second, np.array(targets_second))  # before the calls, from the test's own arrays
    loss_fn = impl.CrossEntropyLoss()
    forward(loss_fn, first, np.array(targets_first))
    forward(loss_fn, second, np.array(targets_second))
    once = loss_fn.backward()
    with check:
        assert_close(once, expected,
                     "CrossEntropyLoss.backward() after two forward calls (the gradient of the latest one)", SEE_GRAD)
    with check:
        assert_close(loss_fn.backward(), once, "CrossEntropyLoss.backward() called a second time (the same "
                     "gradient: backward must not change what forward kept)", SEE_GRAD)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("case", ["target-equals-V", "negative-target", "targets-too-long", "targets-2d",
                                  "logits-1d", "float-targets"])
def test_loss_rejects_bad_input(impl, case):
    loss_fn = impl.CrossEntropyLoss()
    logits = np.random.randn(3, 5)
    loss = as_number(forward(loss_fn, logits, np.array([0, 4, 2])), "CrossEntropyLoss.forward", SEE_LOSS)
    assert_close(loss, expected_loss(logits, [0, 4, 2]), "CrossEntropyLoss.forward of logits (3, 5)", SEE_LOSS)
    error, args, what = {
        "target-equals-V": (ValueError, (logits, np.array([0, 5, 2])), "a target 5 with V = 5 (ids in [0, 5))"),
        "negative-target": (ValueError, (logits, np.array([0, -1, 2])), "a target -1"),
        "targets-too-long": (ValueError, (logits, np.array([0, 1, 2, 3])), "4 targets for 3 rows of logits"),
        "targets-2d": (ValueError, (logits, np.array([[0], [1], [2]])), "targets of shape (3, 1) instead of (3,)"),
        "logits-1d": (ValueError, (logits[0], np.array([0])), "logits of shape (5,) instead of (B, V)"),
        "float-targets": (TypeError, (logits, np.array([0.0, 1.0, 2.0])), "float targets (class ids are integers)"),
    }[case]
    assert_raises(error, f"CrossEntropyLoss.forward of {what}", SEE_LOSS, loss_fn.forward, *args)
