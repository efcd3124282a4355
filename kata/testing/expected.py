"""Expected values from the reference, and the variant a test run draws its inputs from.

A test that needs the reference's answer asks for it through the `expect` fixture:

    expected = expect(lambda ref: ref.MultiHeadAttention(...).forward(x))

compute is given the reference module and must use nothing else the test holds but its own inputs: never an
object or array of the implementation under test. What it returns must be plain data: arrays, numbers, strings,
None, and tuples, lists and dicts of them. Where the reference comes from is the run's mode (pytest's --expected):

- reference: compute runs on `solutions/` (the instructor's kata, where the reference exists);
- record: the same, and every value is also kept under the test's id and its rank among the test's calls, then
  written to the recorded folder (one .npz and one .json per test module) when the session ends;
- recorded: nothing is computed; the value recorded for that test id and rank is returned (the students' edition,
  which holds no reference). The inputs a test draws are the same at each run, so the recorded values are the
  answers to the very inputs the test now gives.

The default is reference where solutions/ exists, else recorded.

A variant (--variant SEED, instructors only, and only against the reference) draws every test's inputs afresh:
tests make their random generators with seeded(k) and their seeds for the implementation with seed(k), which
mix SEED into k, and pick their sizes with pick(), which chooses among the sizes the test lists.
"""

import io
import json
import zlib
from pathlib import Path

import numpy as np

from ..course import implementation
from ..course.files import write_atomic
from ..course.repository import ROOT, has_reference

RECORDED = ROOT / "tests" / "recorded"
MODES = ("reference", "record", "recorded")
_RUN = {"variant": None}


def default_mode():
    return "reference" if has_reference() else "recorded"


# ---------------------------------------------------------------- variants

def set_variant(variant):
    _RUN["variant"] = None if variant is None else int(variant)


def variant():
    """The SEED of this run's variant, or None for the public tests."""
    return _RUN["variant"]


def seed(k):
    """The seed a test gives for its k-th draw: k itself, or under a variant a number drawn from (SEED, k)."""
    if _RUN["variant"] is None:
        return k
    return int(np.random.SeedSequence([_RUN["variant"], k]).generate_state(1)[0])


def seeded(k):
    """A random generator for the test's inputs: default_rng(k), or under a variant one seeded by (SEED, k)."""
    return np.random.default_rng(seed(k))


def pick(public, *others):
    """The sizes a test uses: public for the public tests; under a variant one of others (every one must be within
    the contract), chosen by SEED and by the choices themselves, so that tests listing other sizes choose apart."""
    if _RUN["variant"] is None or not others:
        return public
    which = zlib.crc32(repr((public, others)).encode("utf-8"))
    return others[int(np.random.SeedSequence([_RUN["variant"], which]).generate_state(1)[0]) % len(others)]


# ---------------------------------------------------------------- plain data

def plain(value, where="the value"):
    """value as plain data: arrays are copied (the caller keeps no alias), NumPy scalars become Python numbers.
    TypeError for anything else (an object of the reference must not cross)."""
    if isinstance(value, np.ndarray):
        return np.array(value)
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return type(value)(plain(item, f"{where}[{k}]") for k, item in enumerate(value))
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: plain(item, f"{where}[{key!r}]") for key, item in value.items()}
    raise TypeError(f"expect(): {where} is a {type(value).__name__}; compute must return arrays, numbers, strings, "
                    f"None, or tuples, lists and dicts (with str keys) of them")


def _encode(value, arrays):
    if isinstance(value, np.ndarray):
        arrays.append(value)
        return {"array": len(arrays) - 1}
    if isinstance(value, (tuple, list)):
        return {type(value).__name__: [_encode(item, arrays) for item in value]}
    if isinstance(value, dict):
        return {"dict": {key: _encode(item, arrays) for key, item in value.items()}}
    if isinstance(value, float) and not np.isfinite(value):
        return {"float": repr(value)}
    return {"value": value}


def _decode(node, arrays):
    (kind, item), = node.items()
    if kind == "array":
        return np.array(arrays[f"a{item}"])
    if kind in ("tuple", "list"):
        return (tuple if kind == "tuple" else list)(_decode(part, arrays) for part in item)
    if kind == "dict":
        return {key: _decode(part, arrays) for key, part in item.items()}
    if kind == "float":
        return float(item)
    return item


# ---------------------------------------------------------------- the three modes

def _module_name(nodeid):
    """'tests/test_lesson02_attention.py::test_x[True]' -> 'test_lesson02_attention'."""
    return Path(nodeid.split("::", 1)[0]).stem


class Expectations:
    """The expected values of one session, in one mode."""

    def __init__(self, mode, folder=RECORDED):
        if mode not in MODES:
            raise ValueError(f"--expected {mode}: expected one of {', '.join(MODES)}")
        if mode == "recorded" and variant() is not None:
            raise ValueError("--variant needs the reference (solutions/): variants are computed, never recorded")
        self.mode, self.folder = mode, Path(folder)
        self.kept = {}  # record: {module: {key: value}}
        self.loaded = {}  # recorded: {module: (index, arrays)}
        self._reference = None

    def reference(self):
        if self._reference is None:
            self._reference = implementation.load("solutions")
        return self._reference

    def get(self, nodeid, rank, compute):
        key = f"{nodeid.split('::', 1)[1]}#{rank}"
        if self.mode == "recorded":
            return self._load(nodeid, key)
        value = plain(compute(self.reference()))
        if self.mode == "record":
            self.kept.setdefault(_module_name(nodeid), {})[key] = value
            value = plain(value)  # the test gets a copy: what it does to it never reaches the recording
        return value

    def _load(self, nodeid, key):
        module = _module_name(nodeid)
        if module not in self.loaded:
            index, npz = self.folder / f"{module}.json", self.folder / f"{module}.npz"
            if not index.is_file() or not npz.is_file():
                raise LookupError(f"no recorded expected values for {module} in {self.folder}: this copy of the "
                                  f"kata is incomplete (ask whoever gave it to you for tests/recorded/)")
            with np.load(npz, allow_pickle=False) as arrays:
                self.loaded[module] = (json.loads(index.read_text(encoding="utf-8")), dict(arrays))
        index, arrays = self.loaded[module]
        if key not in index:
            raise LookupError(f"no recorded expected value {key!r} in {self.folder / module}.json: the recording is "
                              f"older than this test (record it again from the reference)")
        return _decode(index[key], arrays)

    def write(self):
        """record: write every module's values (called once the session ends)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for module, values in sorted(self.kept.items()):
            arrays = []
            index = {key: _encode(value, arrays) for key, value in values.items()}
            data = io.BytesIO()
            np.savez_compressed(data, **{f"a{k}": array for k, array in enumerate(arrays)})
            write_atomic(self.folder / f"{module}.npz", data.getvalue())
            write_atomic(self.folder / f"{module}.json", json.dumps(index, indent=0, sort_keys=True) + "\n")
