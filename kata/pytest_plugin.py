"""The kata's pytest plugin: selects the implementation under test (--impl) and gives it to tests as `impl`.

Registered as a pytest11 entry point (pyproject.toml), so it loads before pytest reads the command line.

Tests reach the implementation only through `impl`: constructing objects, calling functions and methods
with arrays, numbers, strings and lists, and reading or assigning attributes the contract names.
Expected values come from hand-computed cases or from `ref`, the reference solution.
"""

import numpy as np
import pytest

from kata import implementation, student
from kata.manifest import lessons


def pytest_addoption(parser):
    parser.addoption("--impl", default="exercises",
                     help="implementation to test: solutions, exercises, or a folder laid out like exercises/")


def pytest_configure(config):
    config.addinivalue_line("markers", "meta: tests of the tests and tools (the catalogue of wrong "
                                       "implementations, the stubs)")
    for item in lessons():
        config.addinivalue_line("markers", f"{item.marker}: lesson {item.id}, {item.title}")


class Contract:
    """The implementation's package; a missing public name fails the test with a clear message."""

    def __init__(self, module, spec):
        self._module, self._spec = module, spec

    def __getattr__(self, name):
        try:
            return getattr(self._module, name)
        except AttributeError:
            pytest.fail(f"the implementation {self._spec!r} has no public name {name!r}: the contract "
                        f"(SPEC section 3) asks its __init__.py to export it", pytrace=False)


@pytest.fixture(scope="session")
def impl(request):
    spec = request.config.getoption("--impl")
    try:
        return Contract(implementation.load(spec), spec)
    except implementation.ImplementationError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def ref():
    """The reference solution, for expected values."""
    return implementation.load("solutions")


@pytest.fixture(autouse=True)
def _seed():
    """The same submission gets the same result: every test starts from the same random state."""
    np.random.seed(0)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """An unfinished stub fails with its own message and location, not a long traceback."""
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(NotImplementedError):
        entry = call.excinfo.traceback[-1]
        report.longrepr = f"{entry.path}:{entry.lineno + 1}: NotImplementedError: {call.excinfo.value}"
    elif call.excinfo is not None and not call.excinfo.errisinstance((AssertionError, pytest.fail.Exception,
                                                                     pytest.skip.Exception)):
        # an error inside the student's code (a NumPy shape error, a TypeError): say which exercise and section
        for entry in reversed(call.excinfo.traceback):
            pointer = student.pointer_for(entry.path, entry.lineno + 1)
            if pointer:
                report.sections.append(("where to look", f"{entry.path}:{entry.lineno + 1}: {pointer}"))
                break
    return report
