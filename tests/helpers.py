"""Assertions with messages a student can act on: what was expected, what came back, what to reread."""

import numpy as np
import pytest

from kata.course.contract import (  # noqa: F401
    ATTENTION,
    BLOCK,
    FEED_FORWARD,
    LAYER_NORM,
    LINEAR,
    get_path,
    set_path,
    transformer_params,
)
from kata.sandbox import SandboxError
from kata.testing.gradcheck import Accumulated, check_gradients


def as_array(value, what, see):
    """The value as a plain ndarray, or a failure saying what came back instead."""
    assert isinstance(value, np.ndarray), f"{what}: expected a numpy array, got {type(value).__name__}; {see}"
    return value


def assert_shape(value, shape, what, see):
    value = as_array(value, what, see)
    assert value.shape == tuple(shape), f"{what}: expected shape {tuple(shape)}, got {value.shape}; {see}"


def assert_close(actual, expected, what, see, rtol=1e-7, atol=1e-10):
    """actual == expected elementwise within tolerance, else say where, by how much, and the two values."""
    expected = np.asarray(expected)
    if not isinstance(actual, np.ndarray):
        assert np.ndim(expected) == 0 and isinstance(actual, (int, float, np.number)), (
            f"{what}: expected {'a number' if np.ndim(expected) == 0 else f'an array of shape {expected.shape}'}, "
            f"got {type(actual).__name__}; {see}")
        actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: expected shape {expected.shape}, got {actual.shape}; {see}"
    if not np.isfinite(actual).all() and np.isfinite(expected).all():
        bad = np.unravel_index(int(np.argmax(~np.isfinite(actual))), actual.shape) if actual.ndim else ()
        raise AssertionError(f"{what}: holds {actual[bad]} at index {tuple(int(i) for i in bad)} "
                             f"(expected {expected[bad]:.6g}): an overflow or a division by zero?; {see}")
    close = np.isclose(actual, expected, rtol=rtol, atol=atol)
    if not close.all():
        diff = np.abs(actual - expected)
        worst = np.unravel_index(int(np.argmax(np.where(close, -1, diff))), actual.shape) if actual.ndim else ()
        index = tuple(int(i) for i in worst)
        raise AssertionError(
            f"{what}: {int((~close).sum())} of {close.size} values differ; at index {index} expected "
            f"{float(expected[worst]):.8g}, got {float(actual[worst]):.8g}; {see}")


def assert_raises(error, what, see, call, *args, naming=None):
    """call(*args) must refuse its input with error (whose message holds the text naming, when given: the value at
    fault); else a failure saying which input should have been refused (what) and where the lesson says so (see).
    A stub's NotImplementedError, and the sandbox's own errors (a timeout), go through: they say it themselves."""
    try:
        call(*args)
    except (NotImplementedError, SandboxError):
        raise
    except error as caught:
        if naming is not None and naming not in str(caught):
            pytest.fail(f"{what}: expected a {error.__name__} whose message names {naming}, got {str(caught)!r}; "
                        f"{see}", pytrace=False)
        return
    except Exception as caught:  # noqa: BLE001 - the message says which exception came instead
        pytest.fail(f"{what}: expected {error.__name__}, got {type(caught).__name__}: {caught}; {see}", pytrace=False)
    pytest.fail(f"{what}: expected {error.__name__}, nothing was raised; {see}", pytrace=False)


def assert_gradients(what, see, see_zero_grad=None, **kwargs):
    """Run the suite's one gradient check (kata.testing.gradcheck.check_gradients) and fail with every problem;
    where the fault is zero_grad's (gradients added up across two passes), point to see_zero_grad if given."""
    problems = check_gradients(**kwargs)
    zero_grads = bool(problems and see_zero_grad) and all(isinstance(p, Accumulated) for p in problems)
    head = "zero_grad does not clear every gradient" if zero_grads else "the backward pass is not the exact gradient"
    assert not problems, f"{what}: {head}; {see_zero_grad if zero_grads else see}\n  " + "\n  ".join(problems)


def copy_params(source, target, paths):
    """Give target the same parameter values as source, by assigning copies to the contract's attributes."""
    for path in paths:
        set_path(target, path, np.array(get_path(source, path), dtype=np.float64))


def randomize_params(obj, paths, rng, scale=0.5):
    """Assign random values to parameters (so ones and zeros at initialisation hide nothing)."""
    for path in paths:
        value = np.asarray(get_path(obj, path))
        set_path(obj, path, rng.standard_normal(value.shape) * scale + (1.0 if path.endswith("gamma") else 0.0))
