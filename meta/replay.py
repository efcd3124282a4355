"""The replay cheater: a submission that scores full marks on the public tests by replaying their expected values,
as a lookup table keyed by the input would, and gets anything else wrong. meta/test_variants.py requires the
hidden variants (grader.py --variant SEED) to catch it.

    folder = replay_cheater(target, ["02"])     # target/*.py: the reference behind a gate, recorded on lesson 02

It is the reference's code behind a gate (GATE, appended to each of its files): every public function of the
contract, and every public method of its classes, computes a digest of its arguments (arrays by dtype, shape and
bytes; numbers; strings; lists, tuples and dicts of them; objects, self included, by their type), on the calls the
tests make (the reference's calls of its own functions pass through: their inputs hang on the objects' random
initialisation, which in the grader's sandbox is not the test process's). A digest
seen while the public tests ran gets the reference's answer; any other gets a wrong one (arrays and numbers times
1.01, integers plus one, strings with a character more). The digests seen are recorded by running the public tests
once, sandboxed as the grader runs them, on the gate in recording mode (it prints each key), then written into the
cheater's source as a literal set: what a student would do by printing the tests' inputs and pasting the table.
"""

import ast
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from kata import ONE_BLAS_THREAD
from kata.course.repository import REFERENCE, ROOT
from kata.testing.plugin import sandboxed

GATE = r'''

# ---------------------------------------------------------------- the replay gate (meta/replay.py)
import functools as _functools
import hashlib as _hashlib
import inspect as _inspect
import sys as _sys

import numpy as _np

_SEEN = @SEEN@
_RECORD = @RECORD@  # recording: every key is printed (the sandboxed child's output reaches the test process)


def _feed(value, digest):
    if isinstance(value, _np.ndarray):
        digest.update(f"array {value.dtype.str} {value.shape}".encode())
        digest.update(_np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (bool, _np.bool_)):
        digest.update(f"bool {bool(value)}".encode())
    elif isinstance(value, (int, float, _np.integer, _np.floating)):
        digest.update(f"number {float(value)!r}".encode())
    elif isinstance(value, str):
        digest.update(f"str {value!r}".encode())
    elif value is None:
        digest.update(b"none")
    elif isinstance(value, (list, tuple)):
        digest.update(f"list {len(value)}".encode())
        for item in value:
            _feed(item, digest)
    elif isinstance(value, dict):
        digest.update(f"dict {len(value)}".encode())
        for key in sorted(value, key=str):
            _feed(str(key), digest)
            _feed(value[key], digest)
    else:  # an object (a layer, a model, a function): its type only (its own random state differs in a sandbox)
        digest.update(f"object {type(value).__name__}".encode())


def _key(name, args, kwargs):
    digest = _hashlib.sha256(name.encode())
    _feed(list(args), digest)
    _feed(kwargs, digest)
    return digest.hexdigest()[:24]


def _wrong(value):
    if isinstance(value, _np.ndarray):
        if value.dtype.kind == "f":
            return value * 1.01
        if value.dtype.kind in "iu":
            return value + 1
        return value
    if isinstance(value, (bool, _np.bool_)):
        return value
    if isinstance(value, (int, _np.integer)):
        return value + 1
    if isinstance(value, (float, _np.floating)):
        return value * 1.01
    if isinstance(value, str):
        return value + " "
    if isinstance(value, (list, tuple)):
        return type(value)(_wrong(item) for item in value)
    if isinstance(value, dict):
        return {key: _wrong(item) for key, item in value.items()}
    return value


# the gate keys the calls the tests make; the calls between the reference's own functions pass (one count for the
# whole package, kept on the package itself)
_DEPTH = _sys.modules[__package__].__dict__.setdefault("_replay_depth", [0])


def _gate(name, function):
    @_functools.wraps(function)
    def gated(*args, **kwargs):
        if _DEPTH[0]:
            return function(*args, **kwargs)
        key = _key(name, args, kwargs)
        _DEPTH[0] += 1
        try:
            answer = function(*args, **kwargs)
        finally:
            _DEPTH[0] -= 1
        if _RECORD:
            print(f"KATA-REPLAY {key}", flush=True)
            return answer
        return answer if key in _SEEN else _wrong(answer)
    return gated


def _install():
    for public in @NAMES@:  # the contract's public names (the package's __all__) this module defines
        value = globals().get(public)
        if getattr(value, "__module__", None) != __name__:
            continue
        if _inspect.isfunction(value):
            gated = _gate(public, value)
            globals()[public] = gated
        elif _inspect.isclass(value):
            for attribute, member in list(vars(value).items()):
                if not attribute.startswith("_") and _inspect.isfunction(member):
                    setattr(value, attribute, _gate(f"{public}.{attribute}", member))


_install()
'''


def write_cheater(target, seen, recording=False):
    """target (created): the reference with the gate at the end of every file defining a name of the contract
    (so the gate stays when the grader takes one lesson's file beside the reference's others, --isolated), its
    table the set seen (digests); recording: the gate prints the key of every call instead, and answers as the
    reference."""
    target = Path(target)
    shutil.copytree(REFERENCE, target, ignore=shutil.ignore_patterns("__pycache__"))
    names = contract_names()
    table = "{" + "".join(f"\n    {key!r}," for key in sorted(seen)) + "\n}" if seen else "set()"
    gate = GATE.replace("@SEEN@", table).replace("@RECORD@", str(recording)).replace("@NAMES@", repr(names))
    for path in sorted(target.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        if path.name != "__init__.py" and defined & set(names):
            path.write_text(path.read_text(encoding="utf-8") + gate, encoding="utf-8")
    return target


def contract_names():
    """The package's __all__, as solutions/__init__.py lists it."""
    tree = ast.parse((REFERENCE / "__init__.py").read_text(encoding="utf-8"))
    found = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                 and any(getattr(target, "id", None) == "__all__" for target in node.targets))
    return sorted(ast.literal_eval(found))


def lesson_files(lesson_ids):
    """The test files of lesson_ids."""
    return [str(path) for lesson_id in lesson_ids
            for path in sorted((ROOT / "tests").glob(f"test_lesson{lesson_id}_*.py"))]


def record(lesson_ids, timeout=600):
    """The digests of every gated call while the public tests of lesson_ids run on the gate in recording mode, as
    the grader runs them: sandboxed (the tests' own draws depend on it: a layer's random initialisation happens in
    the child), each key printed by the child and gathered after each test by this module's pytest hooks."""
    with tempfile.TemporaryDirectory(prefix="kata-replay-") as tmp:
        folder, out = write_cheater(Path(tmp) / "impl", set(), recording=True), Path(tmp) / "seen.txt"
        env = dict(os.environ, **ONE_BLAS_THREAD, KATA_REPLAY_RECORD=str(out), PYTHONDONTWRITEBYTECODE="1")
        markers = " or ".join(f"lesson{lesson_id}" for lesson_id in lesson_ids)
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "meta.replay",
                               "--sandbox", "--impl", str(folder), "-m", markers, *lesson_files(lesson_ids)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"recording the public tests failed (exit {done.returncode}):\n{done.stdout[-3000:]}")
        return set(out.read_text(encoding="utf-8").split())


# ---------------------------------------------------------------- the recording run's pytest hooks (-p meta.replay)

_gathered = {"config": None, "keys": set()}


def pytest_configure(config):
    _gathered["config"] = config


def pytest_runtest_logfinish(nodeid, location):
    if os.environ.get("KATA_REPLAY_RECORD"):
        box = sandboxed(_gathered["config"])
        text = box.printed() if box is not None else ""
        _gathered["keys"].update(line.split()[1] for line in text.splitlines() if line.startswith("KATA-REPLAY "))


def pytest_unconfigure(config):
    if os.environ.get("KATA_REPLAY_RECORD"):
        Path(os.environ["KATA_REPLAY_RECORD"]).write_text("".join(f"{key}\n" for key in sorted(_gathered["keys"])),
                                                          encoding="utf-8")


def replay_cheater(target, lesson_ids):
    """The cheater in target, its table recorded on the public tests of lesson_ids; returns target."""
    return write_cheater(target, record(lesson_ids))
