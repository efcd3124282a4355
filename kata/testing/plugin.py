"""The kata's pytest plugin: selects the implementation under test (--impl) and gives it to tests as `impl`.

Registered as a pytest11 entry point (pyproject.toml), so it loads before pytest reads the command line.

Tests reach the implementation only through `impl`: constructing objects, calling functions and methods
with arrays, numbers, strings and lists, and reading or assigning attributes the contract names.
Expected values come from hand-computed cases or from the reference through `expect` (kata/testing/expected.py:
computed from solutions/, or read from the values recorded from it in the students' edition), and under
`--variant SEED` every test draws its inputs afresh (seeded(), seed(), pick() in the same module).
"""

import re
from pathlib import Path

import numpy as np
import pytest

from ..course import implementation
from ..course.exercises import pointer_for
from ..course.manifest import lessons
from ..sandbox import SandboxError, unsupported
from . import expected
from .sandboxed import Sandboxed


def pytest_addoption(parser):
    parser.addoption("--impl", default="exercises",
                     help="implementation to test: solutions, exercises, or a folder laid out like exercises/")
    parser.addoption("--sandbox", action="store_true",
                     help="run the implementation in a child process (kata/sandbox/): the tests reach it through "
                          "plain data only, as the grader does for submissions")
    parser.addoption("--sandbox-test-seconds", type=float, default=60.0,
                     help="with --sandbox: the wall-clock time the implementation may use in one test")
    parser.addoption("--allow-unconfined", action="store_true",
                     help="with --sandbox: run the implementation even where the sandbox cannot confine it (code you "
                          "trust only); by default such a run is refused")
    parser.addoption("--expected", choices=expected.MODES, default=None,
                     help="where expected values come from: reference (computed from solutions/), record (the same, "
                          "and written to --recorded-dir), recorded (read from --recorded-dir); default: reference "
                          "where solutions/ exists, else recorded")
    parser.addoption("--recorded-dir", default=str(expected.RECORDED),
                     help="the folder of recorded expected values (default: tests/recorded)")
    parser.addoption("--variant", type=int, default=None, metavar="SEED",
                     help="draw every test's inputs afresh from SEED (needs the reference; default: the public "
                          "tests' own inputs)")


def pytest_configure(config):
    _lesson_tests_only(config)
    expected.set_variant(config.getoption("variant"))
    try:
        config._kata_expected = expected.Expectations(config.getoption("expected") or expected.default_mode(),
                                                      config.getoption("recorded_dir"))
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    config.addinivalue_line("markers", "meta: tests of the tests and tools (the catalogue of wrong "
                                       "implementations, the stubs)")
    for item in lessons():
        config.addinivalue_line("markers", f"{item.marker}: lesson {item.id}, {item.title}")


class Contract:
    """The implementation's package; a missing public name fails the test with a clear message."""

    def __init__(self, module, spec):
        self._module, self._spec = module, spec

    def __getattr__(self, name):
        module = self._module() if callable(self._module) else self._module
        try:
            return getattr(module, name)
        except AttributeError:
            pytest.fail(f"the implementation {self._spec!r} has no public name {name!r}: the contract "
                        f"(CONTRACT.md section 3) asks its __init__.py to export it", pytrace=False)


def sandboxed(config):
    """The Sandboxed implementation of a --sandbox session, or None."""
    return getattr(config, "_kata_sandboxed", None)


LESSONS_ONLY = re.compile(r"\s*\(?\s*lesson\d\d(\s+or\s+lesson\d\d)*\s*\)?\s*")


def _lesson_tests_only(config):
    """`pytest -m lesson03` (the students' command) selects lesson tests only, which live in tests/: when no path
    was given (pytest took its testpaths, tests and meta), only tests/ is collected: the repository's own suite
    holds no lesson test, and collecting it took 4 of the command's 6 seconds."""
    source = getattr(config, "args_source", None)
    if (source is not None and source.name == "TESTPATHS" and LESSONS_ONLY.fullmatch(config.option.markexpr or "")
            and any(Path(arg).name == "tests" for arg in config.args)):
        config.args[:] = [arg for arg in config.args if Path(arg).name == "tests"]


def pytest_sessionstart(session):
    """With --sandbox, the child starts before the first test, so its start-up counts against no test's time."""
    config = session.config
    if config.getoption("--sandbox") and unsupported():
        raise pytest.UsageError(f"--sandbox: {unsupported()} (run the tests without it, or on Linux: WSL on Windows)")
    if config.getoption("--sandbox"):
        config._kata_sandboxed = Sandboxed(config.getoption("--impl"), config.getoption("sandbox_test_seconds"),
                                           config.getoption("allow_unconfined"))
        try:
            config._kata_sandboxed.start()
        except Exception:  # noqa: BLE001 - the impl fixture reports it, in the tests
            pass


def pytest_sessionfinish(session):
    sandboxed = getattr(session.config, "_kata_sandboxed", None)
    if sandboxed is not None:
        sandboxed.stop()
    expectations = getattr(session.config, "_kata_expected", None)
    if expectations is not None and expectations.mode == "record":
        expectations.write()


@pytest.fixture(scope="session")
def impl(request):
    spec = request.config.getoption("--impl")
    if request.config.getoption("--sandbox"):
        sandboxed = request.config._kata_sandboxed
        try:
            sandboxed.start()
        except SandboxError as error:
            pytest.fail(f"the implementation {spec!r} could not be started: {error}", pytrace=False)
        if sandboxed.box.broken:
            pytest.fail(sandboxed.box.broken, pytrace=False)
        return Contract(sandboxed.module, spec)
    try:
        return Contract(implementation.load(spec), spec)
    except implementation.ImplementationError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(autouse=True)
def _sandbox_per_test(request):
    """With --sandbox: a deadline for each test, and the child's objects forgotten after it."""
    sandboxed = getattr(request.config, "_kata_sandboxed", None)
    if sandboxed is None or "impl" not in request.fixturenames:
        yield
        return
    sandboxed.before_test()
    yield
    sandboxed.after_test()


@pytest.fixture
def expect(request):
    """expect(compute) -> the reference's answer: compute(reference module), or its recorded value (the students'
    edition); kata/testing/expected.py says what compute may use and return."""
    expectations, calls = request.config._kata_expected, [0]

    def answer(compute):
        calls[0] += 1
        try:
            return expectations.get(request.node.nodeid, calls[0] - 1, compute)
        except LookupError as error:
            pytest.fail(str(error), pytrace=False)

    return answer


@pytest.fixture(autouse=True)
def _seed():
    """The same submission gets the same result: every test starts from the same random state (under a variant,
    another one drawn from its SEED)."""
    np.random.seed(expected.seed(0))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """An unfinished stub fails with its own message and location, not a long traceback."""
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(NotImplementedError):
        entry, error = call.excinfo.traceback[-1], call.excinfo.value
        remote = getattr(error, "remote_place", None)  # raised by a sandboxed implementation: its place in the child
        place = remote if remote is not None else f"{entry.path}:{entry.lineno + 1}"
        report.longrepr = f"{place}: NotImplementedError: {error.remote_message if remote else error}"
    elif call.excinfo is not None and not call.excinfo.errisinstance((AssertionError, pytest.fail.Exception,
                                                                     pytest.skip.Exception)):
        # an error inside the student's code (a NumPy shape error, a TypeError): say which exercise and section
        # (the innermost frame in an exercise: a helper module of the student's is named by the exercise calling it;
        # a sandboxed implementation's frames are the error's remote_trail, inside the last frame here)
        places = [(entry.path, entry.lineno + 1) for entry in call.excinfo.traceback]
        places += [(place.file, place.line) for place in getattr(call.excinfo.value, "remote_trail", ())]
        for file, line in reversed(places):
            pointer = pointer_for(file, line)
            if pointer:
                report.sections.append(("where to look", f"{file}:{line}: {pointer}"))
                break
    return report
