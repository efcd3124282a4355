"""The implementation under test in a sandboxed child (kata/sandbox/), as `pytest --sandbox` and the grader run it:
started before the first test, given a deadline per test, and started again after it died or timed out."""

import pytest

from ..course.implementation import folder_of
from ..course.repository import private_paths
from ..sandbox import Policy, Sandbox, SandboxError

MIN_STARTUP_SECONDS = 5.0  # the import may take at least this long, however short a test's time
RESET_SECONDS = 10.0  # for forgetting a test's objects in the child after it


def policy(allow_unconfined=False):
    """The kata's sandbox policy: the child must not read the reference, the tests or the history; where it cannot
    be confined, it does not run at all unless allow_unconfined (for code one trusts)."""
    return Policy(hidden=tuple(str(path) for path in private_paths()), allow_unconfined=allow_unconfined)


class Sandboxed:
    """The implementation in a child process, started again after it dies or times out."""

    def __init__(self, spec, test_seconds, allow_unconfined=False):
        self.folder = folder_of(spec)
        self.test_seconds = test_seconds
        self.policy = policy(allow_unconfined)
        self.box = None
        self.import_error = None  # why the implementation could not be imported, once it failed to
        self.output = []  # what the implementation printed, from children already stopped

    def start(self):
        if self.import_error is not None:  # the same code fails the same way: no second wait
            raise self.import_error
        if self.box is None or not self.box.alive():
            self._stop_box()
            try:
                self.box = Sandbox(self.folder, self.policy,
                                   startup_seconds=max(MIN_STARTUP_SECONDS, self.test_seconds)).start()
            except SandboxError as error:
                self.box, self.import_error = None, error
                raise
        return self.box

    def module(self):
        return self.start().implementation()

    def before_test(self):
        box = self.start()
        if box.broken:
            pytest.fail(box.broken, pytrace=False)
        box.set_deadline(self.test_seconds)
        box.seed(0)  # as the _seed fixture does in one process: the same submission always gets the same result

    def after_test(self):
        try:
            if self.box is None or not self.box.alive():
                raise SandboxError("gone")
            self.box.set_deadline(RESET_SECONDS)
            self.box.reset()
            self.box.set_deadline(None)
        except SandboxError:  # timed out or died during the test: a fresh child for the next one
            self._stop_box()
        if self.box is None:
            try:
                self.start()
            except SandboxError:
                pass  # the next test's fixture says why

    def errors(self):
        """The errors of the implementation raised during the current test (Sandbox.errors)."""
        return self.box.errors() if self.box is not None else []

    def printed(self):
        """What the implementation printed since the last call (for whoever grades: never shown to the tests)."""
        text = "".join([*self.output, self.box.printed() if self.box is not None else ""])
        self.output = []
        return text

    def _stop_box(self):
        if self.box is not None:
            self.box.stop()
            self.output.append(self.box.printed())
            self.box = None

    def stop(self):
        self._stop_box()
