"""Assertions with messages a student can act on: what was expected, what came back, what to reread."""

import math
import os

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
    shapes,
    transformer_params,
)
from kata.sandbox import SandboxError
from kata.testing.expected import pick, seed, seeded  # noqa: F401
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


def assert_gradients(what, see, forward, backward, see_zero_grad=None, **kwargs):
    """Run the suite's one gradient check (kata.testing.gradcheck.check_gradients) and fail with every problem;
    where the fault is zero_grad's (gradients added up across two passes), point to see_zero_grad if given.

    Every forward and backward call of the check goes through call(): an input or upstream gradient changed in
    place fails with the in-place message rather than as a wrong gradient.
    """
    problems = check_gradients(forward=lambda *arrays: call(forward, *arrays, what=f"{what}: forward", see=see,
                                                            remember=False),
                               backward=lambda upstream: call(backward, upstream, what=f"{what}: backward",
                                                              see=see, remember=False),
                               **kwargs)
    zero_grads = bool(problems and see_zero_grad) and all(isinstance(p, Accumulated) for p in problems)
    head = "zero_grad does not clear every gradient" if zero_grads else "the backward pass is not the exact gradient"
    assert not problems, f"{what}: {head}; {see_zero_grad if zero_grads else see}\n  " + "\n  ".join(problems)


def number(value):
    """A value the submission reported, as a float, or None when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def agrees(reported, measured):
    """A number the submission reported equals the test's own measurement (float64 round-off aside)."""
    value = number(reported)
    return value is not None and math.isclose(value, measured, rel_tol=1e-6, abs_tol=1e-9)


def copy_params(source, target, paths):
    """Give target the same parameter values as source, by assigning copies to the contract's attributes."""
    for path in paths:
        set_path(target, path, np.array(get_path(source, path), dtype=np.float64))


def draw_params(shapes_by_path, rng, scale=0.5):
    """{path: random values} for the contract's parameter shapes (kata.course.contract.shapes): drawn by the test,
    so they are the same whatever the implementation does; gammas around 1, everything else around 0."""
    return {path: rng.standard_normal(shape) * scale + (1.0 if path.endswith("gamma") else 0.0)
            for path, shape in shapes_by_path.items()}


def set_params(obj, params):
    """Give obj each parameter of params ({path: array}), a copy of its own."""
    for path, value in params.items():
        set_path(obj, path, np.array(value, dtype=np.float64))


def randomize_params(obj, paths, rng, scale=0.5):
    """Assign random values to parameters (so ones and zeros at initialisation hide nothing)."""
    for path in paths:
        value = np.asarray(get_path(obj, path))
        set_path(obj, path, rng.standard_normal(value.shape) * scale + (1.0 if path.endswith("gamma") else 0.0))


def _snapshot(value):
    """A private copy of an array argument, or of a list or tuple holding arrays, numbers and lists; else None."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return [_snapshot(item) if isinstance(item, (np.ndarray, list, tuple)) else item for item in value]
    return None


def _changed(before, after):
    """How many values (of an array) or items (of a list) of after differ from the private copy before."""
    if isinstance(before, np.ndarray):
        if not isinstance(after, np.ndarray) or after.shape != before.shape or after.dtype != before.dtype:
            return max(before.size, 1)
        return int((~((after == before) | ((after != after) & (before != before)))).sum())  # NaN equals NaN
    if not isinstance(after, (list, tuple)) or len(after) != len(before):
        return max(len(before), 1)
    return sum(bool(_changed(b, a)) if isinstance(b, (np.ndarray, list)) else not _same(a, b)
               for b, a in zip(before, after))


def _same(a, b):
    """An item of a list equals its private copy (an item that no longer compares cleanly has changed)."""
    try:
        return a is b or bool(a == b)
    except (TypeError, ValueError):
        return False


READ_ONLY = ("Inputs are read-only: compute into a new array (y = x + a, np.maximum(x, 0)) and never write into "
             "the caller's (x += a, x[...] = ..., out=x)")


def call(fn, *args, what, see, hint=READ_ONLY, remember=True, **kwargs):
    """fn(*args, **kwargs) for an exercise that must only read its array and list arguments.

    The arguments are passed as they are, so the call is an ordinary one; private copies taken before it are
    compared with them afterwards, and any change fails the test with the suite's one in-place message. The
    arrays the test gave to earlier calls are checked again after every call of the same test, so a backward
    that writes into the input its forward kept is caught too. Tests compute their expectations from the
    inputs only once they are known to be unchanged (or before the call).
    Never used for what the contract lets write in place (optimizers' parameters, gradients, clip_grad_norm).
    hint: what to do instead, for an exercise whose lesson teaches something else than READ_ONLY.
    remember=False: only this call's own arguments are checked, and kept for no later call (the gradient check's
    hundreds of calls, each given fresh copies: checking every earlier one again after each would cost the square).
    """
    remember = remember and not _EARLIER["quiet"]  # (a call inside a forgetful one forgets too)
    earlier = _earlier_inputs() if remember else {"inputs": [], "theirs": []}
    copies = [(f"argument {k + 1}", value, _snapshot(value)) for k, value in enumerate(args)]
    copies += [(f"argument {name}", value, _snapshot(value)) for name, value in kwargs.items()]
    copies = [(name, value, before) for name, value, before in copies if before is not None]
    _EARLIER["quiet"] += not remember
    try:
        result = fn(*args, **kwargs)
    finally:
        _EARLIER["quiet"] -= not remember
    for name, value, before in copies:
        _assert_unchanged(before, value, f"{what} changed its input in place: {name}", hint, see)
    for earlier_what, name, value, before in earlier["inputs"]:
        _assert_unchanged(before, value, f"{what} changed in place an array given earlier to {earlier_what} "
                          f"({name}; kept by reference and written into later?)", hint, see)
    returned = result if isinstance(result, (tuple, list)) else (result,)
    earlier["theirs"] += [value for value in returned if isinstance(value, np.ndarray)]
    mine = [(name, value, before) for name, value, before in copies
            if not any(value is theirs for theirs in earlier["theirs"])]  # the implementation's own arrays may change
    earlier["inputs"] += [(what, name, value, before) for name, value, before in mine]
    return result


_EARLIER = {"test": None, "inputs": [], "theirs": [], "quiet": 0}


def _earlier_inputs():
    """What the running test gave to earlier calls, and the arrays those calls returned (reset for each test)."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    if _EARLIER["test"] != test:
        _EARLIER.update(test=test, inputs=[], theirs=[])
    return _EARLIER


def _assert_unchanged(before, value, what, hint, see):
    changed = _changed(before, value)
    size, unit = (before.size, "values") if isinstance(before, np.ndarray) else (len(before), "items")
    assert not changed, (f"{what} ({_describe(value)}) came back with {changed} of {size} {unit} changed. "
                         f"{hint}; {see}")


def _describe(value):
    return f"an array of shape {value.shape}" if isinstance(value, np.ndarray) else f"a {type(value).__name__}"
