"""One gradient check for the whole suite: central differences in float64 against a backward pass.

A check perturbs inputs by passing fresh arrays and parameters by assigning fresh arrays to their
attributes (never by writing into the implementation's arrays), so it works through the contract alone.
Its probes look like ordinary calls (check_gradients says how), so a forward cannot answer them apart.
"""

import numpy as np

from ..course.contract import get_path, grad_path, set_path

EPS = 1e-6  # central-difference step; truncation error ~EPS**2, round-off ~1e-16 / EPS
RTOL = 1e-6  # allowed error relative to the largest gradient entry of the array
MAX_ENTRIES = 64  # arrays larger than this are checked on a random sample of entries
DIRECTIONS = 3  # random unit directions per array, besides the sampled entries


def sample_indices(shape, rng, max_entries=MAX_ENTRIES):
    """Every index of a small array; a random sample (first and last included) of a large one."""
    size = int(np.prod(shape))
    if size <= max_entries:
        flat = np.arange(size)
    else:
        flat = np.union1d([0, size - 1], rng.choice(size, max_entries - 2, replace=False))
    return [np.unravel_index(i, shape) for i in flat]


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


def directions(shape, rng, count=DIRECTIONS):
    """count random unit vectors of the given shape (Gaussian, normalised): every entry moves at once."""
    result = []
    for _ in range(count):
        d = rng.standard_normal(shape)
        result.append(d / max(float(np.sqrt(np.sum(d * d))), 1e-300))
    return result


def compare(name, analytic, value, indices, numeric, dirs, dir_numeric):
    """Check one analytic gradient against the numeric derivatives; None if it matches, else a message.

    indices, numeric: the sampled coordinates and the derivative along each; dirs, dir_numeric: the random unit
    directions and the derivative along each.
    """
    if analytic is None:
        return f"{name}: the gradient is None, expected an array of shape {value.shape}"
    if not isinstance(analytic, np.ndarray):
        return f"{name}: the gradient is a {type(analytic).__name__}, expected an array of shape {value.shape}"
    if analytic.shape != value.shape:
        return f"{name}: the gradient has shape {analytic.shape}, expected {value.shape} (the shape of {name})"
    picked = np.array([analytic[index] for index in indices], dtype=np.float64)
    along = np.array([np.sum(analytic * d) for d in dirs], dtype=np.float64)
    scale = max(np.abs(numeric).max(initial=0.0), np.abs(picked).max(initial=0.0), 1e-8)
    dir_scale = max(scale, np.abs(dir_numeric).max(initial=0.0), np.abs(along).max(initial=0.0))
    error = np.abs(picked - numeric)
    dir_error = np.abs(along - dir_numeric)
    coordinates_right = np.isfinite(picked).all() and error.max(initial=0.0) <= RTOL * scale
    if coordinates_right and np.isfinite(along).all() and dir_error.max(initial=0.0) <= RTOL * dir_scale:
        return None
    if coordinates_right:  # right one coordinate at a time, wrong along directions that move every entry
        worst = int(np.nanargmax(np.where(np.isfinite(dir_error), dir_error, np.inf)))
        a, n = along[worst], dir_numeric[worst]
        relative = abs(a - n) / max(abs(a), abs(n), 1e-12)
        return (f"{name}: wrong gradient along a random direction (every entry moved at once): "
                f"analytic {a:.8g}, numeric {n:.8g}, relative error {relative:.2e}; the gradient matches inputs "
                f"nudged one entry at a time but not this: does forward answer some inputs differently from others?")
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
    zero_grad: called before each analytic pass (so gradients that accumulate start from 0).
    returns: a list of messages, one per wrong gradient (empty when all are right).

    A submission cannot tell a probe from an ordinary call: every array is probed along sampled coordinates and
    along random unit directions (every entry moved at once), the probes run in random order, each call gets
    fresh arrays, and the analytic pass (forward, then backward with a random upstream gradient) runs twice
    among the probes, so some probes come before any backward and some after; both passes must be exact.
    """
    rng = np.random.default_rng(seed)
    names = [name for name, _ in inputs]
    values = [np.asarray(value, dtype=np.float64) for _, value in inputs]
    given = forward

    def forward(*arrays):  # fresh copies, so a forward that writes into its input cannot skew later calls
        return given(*[a.copy() for a in arrays])

    out = np.asarray(forward(*values))
    upstream = rng.standard_normal(out.shape)  # random and non-uniform, so no error can hide in a sum
    originals = {path: get_path(owner, path) for path in params}
    targets = [(f"d{name}", value) for name, value in zip(names, values)]
    targets += [(grad_path(path), np.asarray(originals[path], dtype=np.float64)) for path in params]

    def evaluate(t, v):
        if t < len(values):
            return forward(*values[:t], v, *values[t + 1:])
        path = params[t - len(values)]
        set_path(owner, path, v)
        try:
            return forward(*values)
        finally:
            set_path(owner, path, originals[path])  # the same array object, so optimizers still hold it

    def analytic_pass():
        if zero_grad is not None:
            zero_grad()
        forward(*values)
        grads = backward(upstream)
        if len(inputs) == 1 and not isinstance(grads, (tuple, list)):
            grads = (grads,)
        if len(inputs) and (not isinstance(grads, (tuple, list)) or len(grads) != len(inputs)):
            return f"backward returned {type(grads).__name__}, expected the gradients of {', '.join(names)}"
        result = list(grads) if len(inputs) else []
        result += [get_path(owner, grad_path(path)) for path in params]
        return [np.array(g, dtype=np.float64) if isinstance(g, np.ndarray) else g for g in result]  # copies

    indices = [sample_indices(value.shape, rng) for _, value in targets]
    dirs = [directions(value.shape, rng) for _, value in targets]
    probes = [(t, k, None) for t in range(len(targets)) for k in range(len(indices[t]))]
    probes += [(t, None, k) for t in range(len(targets)) for k in range(len(dirs[t]))]
    probes = [probes[i] for i in rng.permutation(len(probes))]
    n = len(probes)
    cuts = sorted([int(rng.integers(1, n // 2 + 1)), int(rng.integers(n // 2, n))]) if n >= 2 else [0, n]
    numeric = [np.empty(len(i)) for i in indices]
    dir_numeric = [np.empty(len(d)) for d in dirs]
    passes = []
    for step in range(n + 1):
        while len(passes) < 2 and cuts[len(passes)] == step:
            passes.append(analytic_pass())
        if step == n:
            break
        t, k, j = probes[step]
        value = targets[t][1]
        if j is None:
            nudge = np.zeros_like(value)
            nudge[indices[t][k]] = EPS
        else:
            nudge = EPS * dirs[t][j]
        sign = 1.0 if rng.random() < 0.5 else -1.0  # which side is probed first
        first = np.sum(np.asarray(evaluate(t, value + sign * nudge), dtype=np.float64) * upstream)
        second = np.sum(np.asarray(evaluate(t, value - sign * nudge), dtype=np.float64) * upstream)
        (numeric[t] if j is None else dir_numeric[t])[k if j is None else j] = sign * (first - second) / (2 * EPS)
    for grads in passes:
        if isinstance(grads, str):
            return [grads]
    problems = []
    for t, (name, value) in enumerate(targets):
        for number, grads in enumerate(passes):
            message = compare(name, grads[t], value, indices[t], numeric[t], dirs[t], dir_numeric[t])
            if message and number == 1 and zero_grad is not None and t >= len(values) \
                    and _added_up(passes[0][t], grads[t]):
                problems.append(Accumulated(
                    f"{name} after zero_grad() still held the gradient of the pass before: the second of two "
                    f"identical forward and backward passes gave twice the first (zero_grad must set every "
                    f"gradient the model has to 0, in place)"))
                break
            if message:
                problems.append(message if number == 0 else
                                f"the second of two identical forward and backward passes, right on the first: "
                                f"{message}")
                break
    return problems


class Accumulated(str):
    """A problem of check_gradients that lies in zero_grad, not in backward: the second analytic pass added onto
    the first's gradients."""


def _added_up(first, second):
    """Whether the second pass's gradient is the first one added twice (zero_grad cleared nothing of it)."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    return first.shape == second.shape and bool(np.any(first)) and np.allclose(second, 2 * first, rtol=1e-9,
                                                                                  atol=1e-12)
