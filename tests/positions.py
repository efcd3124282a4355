"""The positional table's dtype, refused once where lesson 01 makes it, and named wherever it shows later.

CONTRACT.md section 2: floats are float64 unless a caller asks otherwise. A table built in float32 is right
to about 3e-8: a check at float64 precision of anything computed after it fails, and without this check the
message would blame that later code (its backward, train_step) instead of the table.
"""

import numpy as np

from kata.course.manifest import reread

SEE_PE = reread("01", "Sinusoidal positions")


def narrow_dtype(values):
    """float16 or float32 when every value is a number of that dtype (and some are not 0 or +-1), else None."""
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all() or not np.any((values != 0) & (np.abs(values) != 1)):
        return None  # nothing to tell: a table of zeros and ones is wrong for other reasons
    for dtype in (np.float16, np.float32):
        with np.errstate(over="ignore"):
            if np.array_equal(values.astype(dtype).astype(np.float64), values):
                return np.dtype(dtype).name
    return None


def assert_float64_positions(positional_encoding, T, D, what):
    """positional_encoding.forward(float64 zeros (1, T, D)) must be float64 and hold float64 values.

    Fails with a message naming the dtype and lesson 01's section; says nothing about what forward returns
    otherwise (a wrong shape, a wrong value): the caller's own assertions say that.
    """
    out = positional_encoding.forward(np.zeros((1, T, D)))
    if not isinstance(out, np.ndarray):
        return
    assert out.dtype == np.float64, (
        f"{what}: PositionalEncoding.forward of float64 zeros returned {out.dtype}, expected float64 (CONTRACT.md "
        f"section 2: floats are float64 unless a caller asks otherwise); {SEE_PE}")
    dtype = narrow_dtype(out)
    assert dtype is None, (
        f"{what}: the positional table holds {dtype} values (every entry of forward(zeros) is a {dtype} number, "
        f"right to {'about 3e-8' if dtype == 'float32' else 'about 5e-4'} only), expected float64: build the table "
        f"in float64, NumPy's default (CONTRACT.md section 2: floats are float64 unless a caller asks otherwise); "
        f"{SEE_PE}")
