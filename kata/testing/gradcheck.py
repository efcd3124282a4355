"""One gradient check for the whole suite: central differences in float64 against a backward pass.

A check perturbs inputs by passing fresh arrays and parameters by assigning fresh arrays to their
attributes (never by writing into the implementation's arrays), so it works through the contract alone.
"""

import numpy as np

from ..course.contract import get_path, grad_path, set_path

EPS = 1e-6  # central-difference step; truncation error ~EPS**2, round-off ~1e-16 / EPS
RTOL = 1e-6  # allowed error relative to the largest gradient entry of the array
MAX_ENTRIES = 64  # arrays larger than this are checked on a random sample of entries


def sample_indices(shape, rng, max_entries=MAX_ENTRIES):
    """Every index of a small array; a random sample (first and last included) of a large one."""
    size = int(np.prod(shape))
    if size <= max_entries:
        flat = np.arange(size)
    else:
        flat = np.union1d([0, size - 1], rng.choice(size, max_entries - 2, replace=False))
    return [np.unravel_index(i, shape) for i in flat]


def numeric_entries(evaluate, value, upstream, indices, eps=EPS):
    """d sum(evaluate(v) * upstream) / d v[index] for each index, by central differences on copies."""
    result = np.empty(len(indices))
    for k, index in enumerate(indices):
        plus, minus = value.copy(), value.copy()
        plus[index] += eps
        minus[index] -= eps
        f_plus = np.sum(np.asarray(evaluate(plus), dtype=np.float64) * upstream)
        f_minus = np.sum(np.asarray(evaluate(minus), dtype=np.float64) * upstream)
        result[k] = (f_plus - f_minus) / (2 * eps)
    return result


def diagnose(analytic, numeric, full=None, transposed=None):
    """Say what the difference looks like: sign flipped, a constant factor, transposed, zero, ...

    analytic, numeric: 1-D arrays of the checked entries; full: (analytic, numeric) whole arrays, if known;
    transposed: the analytic gradient at the checked entries with their last two indices swapped, if square.
    """
    scale = max(np.abs(numeric).max(initial=0.0), 1e-12)
    if not np.isfinite(analytic).all():
        return "the analytic gradient holds NaN or inf"
    if np.abs(analytic).max(initial=0.0) <= 1e-12 * scale:
        return "the analytic gradient is zero where it should not be (was it computed, and added with +=?)"
    if np.allclose(analytic, -numeric, rtol=1e-4, atol=1e-6 * scale):
        return "the sign is flipped"
    factor = float(analytic @ numeric / (numeric @ numeric)) if numeric @ numeric > 0 else 0.0
    if factor and np.allclose(analytic, factor * numeric, rtol=1e-4, atol=1e-6 * scale):
        if abs(factor - 1.0) < 1e-3:
            return (f"close to the right gradient but about {abs(factor - 1.0):.1e} too "
                    f"{'large' if factor > 1 else 'small'}: a small term, or a constant such as eps in the wrong place")
        inverse = 1.0 / factor
        hint = f" (1/{inverse:.4g})" if abs(inverse - round(inverse)) < 1e-6 and abs(inverse) > 1 else ""
        return f"off by a constant factor of {factor:.6g}{hint}: a missing or extra scale, such as 1/B or a double count"
    if full is not None and transposed is None:
        a, _ = full
        if a.ndim >= 2 and a.shape[-1] == a.shape[-2]:
            transposed = np.swapaxes(a, -1, -2).ravel()
    if transposed is not None and np.allclose(transposed, numeric, rtol=1e-4, atol=1e-6 * scale):
        return "it is the transpose of the right gradient (check the order of a matrix product)"
    zeros = np.abs(analytic) <= 1e-12 * scale
    if zeros.any() and np.allclose(analytic[~zeros], numeric[~zeros], rtol=1e-4, atol=1e-6 * scale):
        return f"{int(zeros.sum())} of {analytic.size} entries are zero where they should not be (a path of the gradient is missing)"
    wrong = ~np.isclose(analytic, numeric, rtol=1e-4, atol=1e-6 * scale)
    return f"{int(wrong.sum())} of {analytic.size} checked entries differ, with no simple pattern"


def compare(name, analytic, evaluate, value, upstream, rng):
    """Check one analytic gradient; return None if it matches, else a message describing the mismatch."""
    if analytic is None:
        return f"{name}: the gradient is None, expected an array of shape {value.shape}"
    if not isinstance(analytic, np.ndarray):
        return f"{name}: the gradient is a {type(analytic).__name__}, expected an array of shape {value.shape}"
    if analytic.shape != value.shape:
        return f"{name}: the gradient has shape {analytic.shape}, expected {value.shape} (the shape of {name})"
    indices = sample_indices(value.shape, rng)
    numeric = numeric_entries(evaluate, value, upstream, indices)
    picked = np.array([analytic[index] for index in indices], dtype=np.float64)
    scale = max(np.abs(numeric).max(initial=0.0), np.abs(picked).max(initial=0.0), 1e-8)
    error = np.abs(picked - numeric)
    if np.isfinite(picked).all() and error.max(initial=0.0) <= RTOL * scale:
        return None
    worst = int(np.nanargmax(np.where(np.isfinite(error), error, np.inf)))
    transposed = None
    if analytic.ndim >= 2 and analytic.shape[-1] == analytic.shape[-2]:  # works on a sample too
        transposed = np.array([analytic[tuple(index[:-2]) + (index[-1], index[-2])] for index in indices],
                              dtype=np.float64)
    a, n = picked[worst], numeric[worst]
    relative = abs(a - n) / max(abs(a), abs(n), 1e-12)
    return (f"{name}: wrong gradient at index {tuple(int(i) for i in indices[worst])}: "
            f"analytic {a:.8g}, numeric {n:.8g}, relative error {relative:.2e}; "
            f"{diagnose(picked, numeric, transposed=transposed)}")


def check_gradients(forward, backward, inputs=(), params=(), owner=None, zero_grad=None, seed=0):
    """Check a backward pass against central differences, for every input and every parameter.

    forward(*values) -> output array, computed from the parameter attributes as they are now.
    backward(upstream) -> the gradient of each input, in the order of inputs (a tuple, or one array).
    inputs: [(name, float64 array)]; params: attribute paths on owner ('W', 'norm1.gamma', 'blocks.0.output.b').
    zero_grad: called before the analytic pass (so gradients that accumulate start from 0).
    returns: a list of messages, one per wrong gradient (empty when all are right).
    """
    rng = np.random.default_rng(seed)
    names = [name for name, _ in inputs]
    values = [np.asarray(value, dtype=np.float64) for _, value in inputs]
    given = forward

    def forward(*arrays):  # fresh copies, so a forward that writes into its input cannot skew later calls
        return given(*[a.copy() for a in arrays])

    out = np.asarray(forward(*values))
    upstream = rng.standard_normal(out.shape)  # random and non-uniform, so no error can hide in a sum
    if zero_grad is not None:
        zero_grad()
    forward(*values)
    grads = backward(upstream)
    if len(inputs) == 1 and not isinstance(grads, (tuple, list)):
        grads = (grads,)
    param_grads = {}
    for path in params:
        grad = get_path(owner, grad_path(path))
        param_grads[path] = np.array(grad, dtype=np.float64) if isinstance(grad, np.ndarray) else grad
    problems = []
    if len(inputs) and (not isinstance(grads, (tuple, list)) or len(grads) != len(inputs)):
        return [f"backward returned {type(grads).__name__}, expected the gradients of {', '.join(names)}"]
    for k, (name, value) in enumerate(zip(names, values)):
        def evaluate(v, k=k):
            return forward(*values[:k], v, *values[k + 1:])
        message = compare(f"d{name}", grads[k], evaluate, value, upstream, rng)
        if message:
            problems.append(message)
    for path in params:
        original = get_path(owner, path)

        def evaluate(v, path=path):
            set_path(owner, path, v)
            return forward(*values)

        try:
            message = compare(grad_path(path), param_grads[path], evaluate,
                              np.asarray(original, dtype=np.float64), upstream, rng)
        finally:
            set_path(owner, path, original)  # the same array object, so optimizers still hold it
        if message:
            problems.append(message)
    return problems
