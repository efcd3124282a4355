"""Grade a submission lesson by lesson: each lesson's tests run in a process of their own with a time limit.

    grade("exercises")                     # the student's own folder, every lesson
    grade("alice.zip", ["04"], isolated=True, name="alice")

A file that is missing, does not parse or fails at import is reported on the lessons that run it, with file
and line; the other lessons are graded with the reference's copy of that file in its place (kata/grading/repair.py).
"""

import dataclasses
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..course.exercises import unfinished
from ..course.manifest import lesson_ids as chosen_ids
from ..course.manifest import lessons
from ..course.manifest import owners as manifest_owners
from ..course.repository import NAMED, REFERENCE, ROOT, python
from .messages import cleaner
from .repair import repair
from .results import GradeResult, LessonResult, TestOutcome
from .run import reference_tests, run_lesson
from .settings import DEFAULT_SECONDS, Settings
from .submission import open_submission

DEFAULT_WORKERS = 2  # this machine has 2 cores; each lesson runs single-threaded


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
          name=None, sandbox=None, allow_unconfined=False):
    """Grade impl and return a GradeResult (its to_json() is the JSON of CONTRACT.md sections 5 and 6.1).

    impl is "solutions", "exercises", or any layout kata.grading.submission accepts (a folder laid out like
    exercises/, a folder holding one, a .zip of either); messages call it name (default: impl as given), e.g.
    "alice/loss.py". Raises SubmissionError when the submission cannot be found or opened, ValueError for an
    unknown lesson id or a timeout that is not a positive, finite number of seconds; a broken submission is never an
    exception: its failures are in the result.
    sandbox: run the submission's code only in sandboxed child processes (kata/sandbox/) and take only the
    kata's files from it; None (the default) means yes for anything but "solutions" and "exercises".
    Where the sandbox cannot confine the submission's code on this machine, grade() raises NotContained (nothing
    of it ran) unless allow_unconfined (for code one trusts).
    """
    start = time.monotonic()
    chosen = [item for item in lessons() if item.id in chosen_ids(lesson_ids)]
    settings = Settings.checked(timeout, str(impl) not in NAMED if sandbox is None else sandbox, allow_unconfined)
    with tempfile.TemporaryDirectory(prefix="kata-grade-") as tmp:
        work = Path(tmp)
        sub = open_submission(impl, work, name, strict=settings.sandbox)
        tests = reference_tests()
        broken, repaired, isolation = repair(sub, work, settings)
        # said once per submission: what the sandbox could not do on this machine
        machine_notes = (f"sandbox without namespaces here ({isolation})",) if isolation else ()
        unfinished_ids = {stub.lesson for stub in unfinished(sub.folder)}
        broken_lessons = {i.id for i in lessons() if set(i.files) & set(broken)}

        def one(item):
            began = time.monotonic()
            ids = tests.get(item.id, [])
            problems = _affected(item, broken, isolated)
            if problems:
                message = "; ".join(problems)
                outcome, note, could_not_run = {t: ("error", message) for t in ids}, "", message
            else:
                arg, replacements = _lesson_folder(item, sub, repaired, isolated, work)
                outcome, note = run_lesson(item.id, arg, ids, settings, work, cleaner(replacements))
                could_not_run = ""
            return LessonResult(item.id, item.title, item.points, tuple(TestOutcome(t, *outcome[t]) for t in ids),
                                could_not_run=could_not_run, run_note=note,
                                seconds=round(time.monotonic() - began, 2))

        # lessons that run more of the model take longer: start them first
        order = sorted(chosen, key=lambda item: -len(item.depends))
        with ThreadPoolExecutor(max(1, workers)) as pool:
            done = dict(zip([item.id for item in order], pool.map(one, order)))
    results = []
    for item in chosen:
        entry = done[item.id]
        if not entry.done and (not isolated or not item.files):
            entry = dataclasses.replace(entry, dependency_note=_dependency_note(item, done, unfinished_ids,
                                                                                broken_lessons))
        results.append(entry)
    return GradeResult(str(impl), bool(isolated), settings.sandbox, tuple(results), sub.notes,
                       round(time.monotonic() - start, 2), machine_notes)
