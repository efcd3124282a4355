"""How a grading runs, in one frozen value: the time a lesson may take and the margins around it, named once.

A lesson's tests run in a test process of their own; what that process needs to know (its settings, its share of
the time, where to log) crosses into it as one JSON file, named by one pytest argument (`--kata-run FILE`), and
is read back by kata/grading/reporter.py.
"""

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_SECONDS = 120.0  # a lesson's time limit (--timeout)


@dataclass(frozen=True)
class Settings:
    lesson_seconds: float = DEFAULT_SECONDS
    sandbox: bool = False  # the submission's code runs only in sandboxed child processes (kata/sandbox/)
    allow_unconfined: bool = False  # ... even where they cannot be confined (trusted code only; else refused)
    variant: int | None = None  # the hidden variant's SEED: every test draws its inputs from it (None: the public
    # tests' own inputs); the test process computes the expected values from the reference
    max_share: int = 4  # one test may use at most 1/max_share of its lesson's time (all of it when it is alone)
    sandbox_grace: float = 5.0  # a sandboxed test's extra time for restarting the child after a timeout
    kill_grace: float = 2.0  # a test process is killed this long after its time, so its own watchdog (which says
    # where the code was) fires first
    min_attempt: float = 0.5  # no test process is started with less time than this left
    probe_kill_grace: float = 10.0  # the import probe is killed this long after its own limit
    sandboxed_probe_kill_grace: float = 30.0  # likewise, with the sandbox's start-up and clean-up

    @classmethod
    def checked(cls, lesson_seconds=None, sandbox=False, allow_unconfined=False, variant=None):
        """Settings for grade()'s arguments; ValueError when the time is not a positive, finite number of seconds
        or the variant not a seed (variant_seed)."""
        try:
            seconds = DEFAULT_SECONDS if lesson_seconds is None else float(lesson_seconds)
        except (TypeError, ValueError):
            seconds = math.nan
        if not 0 < seconds < math.inf:  # nan too
            raise ValueError(f"timeout {lesson_seconds!r}: expected a positive, finite number of seconds per lesson")
        return cls(lesson_seconds=seconds, sandbox=bool(sandbox), allow_unconfined=bool(allow_unconfined),
                   variant=None if variant is None else variant_seed(variant))

    def share(self, tests):
        """Into how many parts a lesson's time is cut for its tests (each test may use one)."""
        return min(self.max_share, max(tests, 1))

    @property
    def probe_seconds(self):
        """The time an import of the submission may take when it is tried before the tests."""
        return max(2.0, min(self.lesson_seconds / 4, 30.0))

    @property
    def probe_kill_after(self):
        return self.probe_seconds + (self.sandboxed_probe_kill_grace if self.sandbox else self.probe_kill_grace)


@dataclass(frozen=True)
class TestRun:
    """What one test process is told: the grading's settings, its test's time, when to stop, where to write."""
    settings: Settings
    test_seconds: float = 0.0  # the time one test may take in this process
    stop_at: float = 0.0  # time.time() after which no test starts (the lesson's time is up)
    log: str = ""  # where each test's outcome is appended as a line of JSON
    trace: str = ""  # where the watchdog dumps the stack of a test that outlived its time
    collect: str = ""  # collecting only: where to write {lesson id: [test ids]}

    @property
    def watchdog_seconds(self):
        """When the test process's own watchdog stops a test: after its time, and with the sandbox also after the
        sandbox's own deadline has had its chance."""
        return self.test_seconds + (self.settings.sandbox_grace if self.settings.sandbox else 0.0)

    @property
    def kill_margin(self):
        """How long after the lesson's time left the grader kills the whole test process."""
        return self.settings.kill_grace + (self.settings.sandbox_grace if self.settings.sandbox else 0.0)

    def write(self, path):
        data = asdict(self)
        path.write_text(json.dumps(data), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path):
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**dict(data, settings=Settings(**data["settings"])))


def variant_seed(value):
    """A variant's SEED as an int (a whole number from 0 to 2**32 - 1, as NumPy's seeds are); ValueError otherwise."""
    try:
        seed = int(str(value).strip()) if not isinstance(value, bool) else -1
    except ValueError:
        seed = -1
    if not 0 <= seed < 2**32:
        raise ValueError(f"variant {value!r}: expected a seed, a whole number from 0 to {2**32 - 1}")
    return seed


def variant(text):
    """argparse's type for --variant SEED."""
    try:
        return variant_seed(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def seconds(text):
    """argparse's type for a --timeout: the lesson seconds Settings.checked accepts, else the reason."""
    try:
        return Settings.checked(text).lesson_seconds
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
