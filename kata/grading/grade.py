"""Grade a submission lesson by lesson: each lesson's tests run in a process of their own with a time limit.

    grade("exercises")                     # the student's own folder, every lesson
    grade("alice.zip", ["04"], isolated=True, name="alice")

A file that is missing, does not parse or fails at import is reported on the lessons that run it, with file
and line; the other lessons are graded with that file's stub in its place (kata/grading/repair.py).

No report shows anything a child holding reference code produced. With isolated=True a lesson runs twice: with
the submission's own code for every lesson (every message, note and time shown comes from this run) and beside
the reference's code for the other lessons, after every shown run has ended, of which only whether each test
passed is kept: the score.
"""

import contextlib
import dataclasses
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..course import children
from ..course.exercises import unfinished
from ..course.manifest import lesson_ids as chosen_ids
from ..course.manifest import lessons
from ..course.manifest import owners as manifest_owners
from ..course.repository import NAMED, REFERENCE, ROOT, has_reference, python, shown
from ..sandbox import NotContained, unsupported
from .interrupted import GradingInterrupted, each, stopped
from .messages import cleaner
from .repair import repair
from .results import GradeResult, LessonResult, TestOutcome, VariantResult
from .run import reference_tests, run_lesson
from .settings import DEFAULT_SECONDS, Settings
from .submission import open_submission

DEFAULT_WORKERS = 2  # this machine has 2 cores; each lesson runs single-threaded


@contextlib.contextmanager
def _in_variant(seed):
    """A Ctrl-C during a variant's runs names its lessons "10 (variant 7)", apart from the public runs'."""
    try:
        yield
    except GradingInterrupted as stop:
        def named(lesson_id):
            return f"{lesson_id} (variant {seed})"
        raise GradingInterrupted([(named(i), test) for i, test in stop.running],
                                 {named(i): entry for i, entry in stop.finished.items()},
                                 [named(i) for i in stop.waiting]) from None


def _lesson_folder(item, sub, repaired, isolated, work):
    """(--impl argument, path replacements for messages) for one lesson."""
    if not isolated or not item.files:  # a lesson with no files of its own (integration) runs all of the student's
        return (sub.arg if repaired == sub.folder else str(repaired)), {repaired: sub.display, ROOT: ""}
    folder = work / f"isolated-{item.id}"
    shutil.copytree(REFERENCE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    extra = [p.name for p in sub.folder.glob("*.py") if not (REFERENCE / p.name).exists()]  # the student's helpers
    for name in [*item.files, *extra]:
        shutil.copy(sub.folder / name, folder / name)
    shown = {folder / name: f"{sub.display}/{name}" for name in [*item.files, *extra]}
    return str(folder), {**shown, folder: "solutions", ROOT: ""}


WITHHELD = ("failed when graded beside the reference's code for the other lessons, though it passes with your own "
            "code for them: the message of that run is withheld (it ran beside the reference). Check how your code "
            "calls the other lessons' functions against the contract")
ISOLATED_NOTE = ("graded with the reference's code for the other lessons; the messages shown come from a run with your "
                 "own code for every lesson")


def _credit_from(beside, own):
    """A lesson's result under --isolated: the verdicts of the run beside the reference (beside), every word and
    figure from the run with the submission's own code alone (own). The run beside the reference held reference
    code its submission could read, so nothing of it is shown but whether each test passed."""
    tests = []
    for verdict, mine in zip(beside.tests, own.tests):
        if verdict.passed:
            tests.append(TestOutcome(verdict.name, "passed"))
        else:
            tests.append(mine if not mine.passed else TestOutcome(verdict.name, "failed", WITHHELD))
    could_not_run = beside.could_not_run  # its own file is broken: the same message in both runs
    note = "" if could_not_run or all(test.passed for test in tests) else ISOLATED_NOTE
    return dataclasses.replace(own, tests=tuple(tests), could_not_run=could_not_run,
                               run_note="; ".join(part for part in (note, own.run_note) if part),
                               peak_bytes=max(own.peak_bytes, beside.peak_bytes))


def _affected(item, broken, isolated):
    """Messages of the broken files whose code this lesson runs."""
    owners = {name: manifest_owners(name) for name in broken}
    if isolated and item.files:
        return [broken[n] for n in broken if item.id in owners[n]]
    runs = {item.id, *item.depends}
    return [broken[n] for n in broken if not owners[n] or runs & set(owners[n])]


def _dependency_note(item, by_id, unfinished_ids, broken_lessons):
    """Why a failing lesson may fail through the unfinished lessons whose code it runs ("" if none)."""
    pending = [d for d in item.depends if d in unfinished_ids or d in broken_lessons
               or (d in by_id and not by_id[d].done)]
    if not pending:
        return ""
    names = " and ".join([", ".join(pending[:-1]), pending[-1]] if len(pending) > 1 else pending)
    plural = len(pending) > 1
    return (f"lesson {item.id} runs your code from lesson{'s' if plural else ''} {names}, which "
            f"{'are' if plural else 'is'} not finished yet: finish {'them' if plural else 'it'}, or grade this "
            f"lesson alone with --isolated ({python()} grader.py --lesson {item.id} --isolated)")


def grade(impl="exercises", lesson_ids=None, isolated=False, timeout=DEFAULT_SECONDS, *, workers=DEFAULT_WORKERS,
          name=None, sandbox=None, allow_unconfined=False, variant=None):
    """Grade impl and return a GradeResult (its to_json() is the JSON of CONTRACT.md sections 5 and 6.1).

    impl is "solutions", "exercises", or any layout kata.grading.submission accepts (a folder laid out like
    exercises/, a folder holding one, a .zip of either); messages call it name (default: impl as given), e.g.
    "alice/loss.py". Raises SubmissionError when the submission cannot be found or opened, ValueError for an
    unknown lesson id or a timeout that is not a positive, finite number of seconds; a broken submission is never an
    exception: its failures are in the result.
    sandbox: run the submission's code only in sandboxed child processes (kata/sandbox/) and take only the
    kata's files from it; None (the default) means yes for anything but "solutions" and "exercises".
    Where the sandbox cannot confine the submission's code on this machine, grade() raises NotContained (nothing
    of it ran) unless allow_unconfined (for code one trusts), and so it does where no sandbox can run (not Linux).
    On Ctrl-C, every test process is killed at once and GradingInterrupted (a KeyboardInterrupt) says what was
    being graded.
    variant: a SEED (instructors): once the public tests have run, every lesson runs again, in the same way, on
    inputs its tests draw from SEED, with expected values computed from the reference in the test process (so
    the reference must be there: ValueError otherwise); the result's .variant holds those lessons, each scored
    against the public run's test ids.
    """
    chosen = [item for item in lessons() if item.id in chosen_ids(lesson_ids)]
    settings = Settings.checked(timeout, str(impl) not in NAMED if sandbox is None else sandbox, allow_unconfined,
                                variant)
    if settings.variant is not None and not has_reference():
        raise ValueError(f"--variant {settings.variant}: a variant's expected values are computed from the reference, "
                         f"and {shown(REFERENCE)}/ is not here (grade variants in the instructor's kata)")
    if settings.sandbox and unsupported():
        raise NotContained(f"{impl} would be graded sandboxed, but {unsupported()}: grade it on Linux (WSL on "
                           f"Windows), or with --no-sandbox if you trust its code")
    try:
        return _grade(impl, chosen, isolated, settings, workers, name)
    except GradingInterrupted:
        raise
    except KeyboardInterrupt:  # before any lesson's tests started (collecting, importing the submission)
        raise stopped(children.interrupt(), waiting=[item.id for item in chosen]) from None


def _grade(impl, chosen, isolated, settings, workers, name):
    start = time.monotonic()
    # (Windows releases a killed process's files a moment after it ends: a file still held stays behind, no error)
    with tempfile.TemporaryDirectory(prefix="kata-grade-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        sub = open_submission(impl, work, name, strict=settings.sandbox)
        tests = reference_tests()
        broken, repaired, isolation = repair(sub, work, settings)
        # said once per submission: what the sandbox could not do on this machine
        machine_notes = (f"sandbox without namespaces here ({isolation})",) if isolation else ()
        unfinished_ids = {stub.lesson for stub in unfinished(sub.folder)}
        broken_lessons = {i.id for i in lessons() if set(i.files) & set(broken)}

        public = dataclasses.replace(settings, variant=None)  # the public tests' runs
        # a variant's runs: the same, with its SEED in their settings and their files in a folder apart
        varied = {"run": settings, "folder": work / "variant"} if settings.variant is not None else None

        def one(item, beside_reference=False, run=public, folder=work):
            began = time.monotonic()
            ids = tests.get(item.id, [])
            problems = _affected(item, broken, beside_reference)
            if problems:
                message = "; ".join(problems)
                outcome, note, could_not_run, peak, printed = {t: ("error", message) for t in ids}, "", message, 0, ""
            else:
                arg, replacements = _lesson_folder(item, sub, repaired, beside_reference, folder)
                outcome, note, peak, printed = run_lesson(item.id, arg, ids, run, folder, cleaner(replacements))
                could_not_run = ""
            return LessonResult(item.id, item.title, item.points, tuple(TestOutcome(t, *outcome[t]) for t in ids),
                                could_not_run=could_not_run, run_note=note,
                                seconds=round(time.monotonic() - began, 2), peak_bytes=peak, printed=printed)

        # lessons that run more of the model take longer: start them first
        order = sorted(chosen, key=lambda item: -len(item.depends))
        ids = [item.id for item in order]
        alone = [item for item in order if isolated and item.files]
        with ThreadPoolExecutor(max(1, workers)) as pool:
            done, variant_done = dict(zip(ids, each(pool, one, order))), {}
            if varied:
                varied["folder"].mkdir()
                with _in_variant(settings.variant):
                    variant_done = dict(zip(ids, each(pool, lambda item: one(item, **varied), order)))
            # what a report may show ends here; then the runs beside the reference, of which only the verdicts count
            shown_time = round(time.monotonic() - start, 2)
            for item, credit in zip(alone, each(pool, lambda item: one(item, True), alone, done)):
                done[item.id] = _credit_from(credit, done[item.id])
            if varied:
                with _in_variant(settings.variant):
                    for item, credit in zip(alone, each(pool, lambda item: one(item, True, **varied), alone)):
                        variant_done[item.id] = _credit_from(credit, variant_done[item.id])

    def noted(found):
        results = []
        for item in chosen:
            entry = found[item.id]
            if not entry.done and (not isolated or not item.files):
                entry = dataclasses.replace(entry, dependency_note=_dependency_note(item, found, unfinished_ids,
                                                                                    broken_lessons))
            results.append(entry)
        return tuple(results)

    variant = VariantResult(settings.variant, noted(variant_done)) if settings.variant is not None else None
    return GradeResult(str(impl), bool(isolated), settings.sandbox, noted(done), sub.notes, shown_time,
                       machine_notes, variant)
