"""What a grading found, typed: a test's outcome, a lesson's result, the whole result. `to_json()` gives the JSON
of CONTRACT.md sections 5 and 6.1 (the grader's --json, the batch's files), field for field."""

from dataclasses import dataclass, field

STATUSES = ("passed", "failed", "error", "timeout")


@dataclass(frozen=True)
class TestOutcome:
    __test__ = False  # not a test class, for pytest
    name: str  # the test's id, e.g. tests/test_lesson06_loss.py::test_loss_by_hand
    status: str  # one of STATUSES
    message: str = ""  # why it did not pass ("" when it passed)

    @property
    def passed(self):
        return self.status == "passed"

    def to_json(self):
        return {"name": self.name, "status": self.status, "message": "" if self.passed else self.message}


@dataclass(frozen=True)
class LessonResult:
    id: str
    title: str
    points: int  # the lesson's points at full marks
    tests: tuple  # TestOutcome, in the order of the reference's test ids
    could_not_run: str = ""  # why none of its tests could run (a broken file it runs), or ""
    run_note: str = ""  # what happened while its tests ran (timeouts, time used up), or ""
    dependency_note: str = ""  # which unfinished lessons it runs the code of, when it is not done, or ""
    seconds: float = 0.0
    peak_bytes: int = 0  # the most memory a test process of the lesson held at once (not in the JSON)
    printed: str = ""  # what the submission printed while sandboxed (not in the JSON: Gradescope's stdout)

    @property
    def total(self):
        return len(self.tests)

    @property
    def passed(self):
        return sum(test.passed for test in self.tests)

    @property
    def done(self):
        """Full marks: every test of the lesson passed (the one definition every tool uses)."""
        return self.total > 0 and self.passed == self.total

    @property
    def score(self):
        return round(self.points * self.passed / self.total, 2) if self.total else 0.0

    @property
    def max_score(self):
        return float(self.points)

    @property
    def first_failure(self):
        return next((test for test in self.tests if not test.passed), None)

    @property
    def note(self):
        """The note of the JSON: why it could not run or what happened, then what it depends on."""
        first = f"could not run: {self.could_not_run}" if self.could_not_run else self.run_note
        return "; ".join(part for part in (first, self.dependency_note) if part)

    def to_json(self):
        return {"id": self.id, "title": self.title, "score": self.score, "max_score": self.max_score,
                "passed": self.passed, "total": self.total, "note": self.note, "seconds": self.seconds,
                "tests": [test.to_json() for test in self.tests]}


class _Totals:
    """The totals over a result's lessons (GradeResult, VariantResult)."""

    @property
    def score(self):
        return round(sum(entry.score for entry in self.lessons), 2)

    @property
    def max_score(self):
        return float(sum(entry.max_score for entry in self.lessons))

    @property
    def passed(self):
        return sum(entry.passed for entry in self.lessons)

    @property
    def total(self):
        return sum(entry.total for entry in self.lessons)


@dataclass(frozen=True)
class VariantResult(_Totals):
    """The lessons graded again on a hidden variant's inputs (grade(variant=SEED)): each with the lesson's points and
    the public run's test ids as its denominator."""
    seed: int
    lessons: tuple  # LessonResult, in manifest order

    def lesson(self, lesson_id):
        return next((entry for entry in self.lessons if entry.id == lesson_id), None)

    def to_json(self):
        return {"seed": self.seed, "score": self.score, "max_score": self.max_score, "passed": self.passed,
                "total": self.total, "lessons": [entry.to_json() for entry in self.lessons]}


@dataclass(frozen=True)
class GradeResult(_Totals):
    implementation: str  # as given to grade()
    isolated: bool
    sandbox: bool
    lessons: tuple  # LessonResult, in manifest order
    notes: list = field(default_factory=list)  # about the submission as a whole (files ignored or added, ...)
    execution_time: float = 0.0
    machine_notes: tuple = ()  # about this machine, for whoever runs the grader: what the sandbox could not do here
    variant: VariantResult = None  # the same lessons on a hidden variant's inputs (grade(variant=SEED)), or None

    @property
    def all_notes(self):
        """The notes on the submission, then those on the machine (the JSON's "notes", the printed report's)."""
        return [*self.notes, *self.machine_notes]

    @property
    def done(self):
        return all(entry.done for entry in self.lessons)

    @property
    def peak_bytes(self):
        """The most memory one of the grading's test processes held at once: what the grader itself spent on the
        submission, whatever it sent (0 where not measured)."""
        return max((entry.peak_bytes for entry in self.lessons), default=0)

    @property
    def current(self):
        """The first lesson that is not done, or None."""
        return next((entry for entry in self.lessons if not entry.done), None)

    def to_json(self):
        found = {"implementation": self.implementation, "isolated": self.isolated, "sandbox": self.sandbox,
                 "score": self.score, "max_score": self.max_score, "execution_time": self.execution_time,
                 "notes": self.all_notes, "lessons": [entry.to_json() for entry in self.lessons]}
        if self.variant is not None:  # only when a variant was graded: the public keys stay as they are
            found["variant"] = self.variant.to_json()
        return found
