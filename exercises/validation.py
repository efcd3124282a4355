"""Input checks shared by every layer: given code, not an exercise.

Each check raises ValueError (or TypeError) whose message says what was wrong and what was expected.
"""

import numpy as np


def describe(x):
    """A short description of a value for error messages: its type, shape and dtype."""
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    return f"a {type(x).__name__}"


def check_array(x, name, ndim=None, last_dim=None, min_ndim=None):
    """Check that x is a real-valued ndarray with the given number of axes and last axis."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {describe(x)}")
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes, got shape {x.shape}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} axes, got shape {x.shape}")
    if last_dim is not None and x.shape[-1] != last_dim:
        raise ValueError(f"{name} must have last axis of size {last_dim}, got shape {x.shape}")
    return x


def check_tokens(tokens, vocab_size, name="tokens"):
    """Check that tokens is a (B, T) integer array of ids in [0, vocab_size)."""
    if not isinstance(tokens, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of token ids, got {describe(tokens)}")
    if tokens.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer token ids, got dtype {tokens.dtype}")
    if tokens.ndim != 2:
        raise ValueError(f"{name} must have shape (B, T), got shape {tokens.shape}")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
        bad = tokens[(tokens < 0) | (tokens >= vocab_size)][0]
        raise ValueError(f"{name} holds the id {bad}, expected ids in [0, {vocab_size})")
    return tokens


def check_mask(mask, shape, name="mask"):
    """Check that mask is a boolean array of the given (B, T) shape with a real token in every row."""
    if not isinstance(mask, np.ndarray) or mask.dtype != bool:
        raise TypeError(f"{name} must be a boolean numpy array of shape {shape}, got {describe(mask)}")
    if mask.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} (B, T), got shape {mask.shape}")
    if mask.size and not mask.any(axis=-1).all():
        row = int(np.flatnonzero(~mask.any(axis=-1))[0])
        raise ValueError(f"{name} row {row} masks every token; each row needs at least one True")
    return mask


def check_positive_int(value, name, minimum=1):
    """Check that value is an int (not a bool) of at least minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def xavier_uniform(fan_in, fan_out):
    """A (fan_in, fan_out) float64 matrix drawn from U(-a, a), a = sqrt(6 / (fan_in + fan_out))."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return np.random.uniform(-limit, limit, size=(fan_in, fan_out))
