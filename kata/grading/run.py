"""Running a lesson's tests: pytest in a process of its own (with kata.grading.reporter), killed at its deadline,
started again without the tests already done when one test used up its share of the time."""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import NamedTuple

from .. import ONE_BLAS_THREAD
from ..course import children
from ..course.files import write_json
from ..course.implementation import folder_of
from ..course.manifest import lesson
from ..course.places import Place, in_dump, running
from ..course.repository import ROOT, STATE, has_reference
from ..sandbox import die_with_parent, peak_bytes, sweep
from .messages import MESSAGE_CHARS
from .settings import Settings, TestRun

TESTS = ROOT / "tests"  # the graded lesson suites, and nothing else
COLLECT_SECONDS = 120  # collecting the reference's test ids (once per content of the tests)
# pytest as the grader runs it: no cache; (no:unraisableexception: its clean-up collects garbage five times per run,
# for warnings the grader does not use; --tb=native: the messages are the reporter's, pytest's own tracebacks
# would cost ~0.1 s per failure)
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:unraisableexception",
          "-p", "kata.grading.reporter", "-q", "--tb=native"]


class LessonRun(NamedTuple):
    results: dict  # {test id: (status, message)}
    note: str  # what happened: timeouts, time used up ("" if nothing)
    peak_bytes: int  # the most memory one of its test processes held: what the grader spent on the submission
    printed: str  # what the implementation printed (its last PRINTED_CHARS), for whoever grades


PRINTED_CHARS = 16_000


class LessonInterrupted(children.Interrupted):
    """The grading was interrupted (Ctrl-C) while this lesson's tests ran: test is the test id then running (None
    when none had started), as the test process's log says."""

    def __init__(self, lesson_id, test):
        super().__init__(lesson_id, test)
        self.lesson_id, self.test = lesson_id, test


def run_process(command, limit, extra_env=None, peaks=None):
    """Run command in a process group of its own, killed after limit seconds, with all it started. -> (returncode
    or None, output). peaks: a list to which the process's peak memory is added if it was still running at its
    deadline. Raises Interrupted (a KeyboardInterrupt) when the grading was interrupted (children.interrupt())
    before or while it ran; on KeyboardInterrupt the process is killed before the exception goes on."""
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as output:
        # on Linux it dies with the grader, however the grader ends (and its sandboxed child with it)
        proc = children.start(command, preexec=die_with_parent, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT,
                              env=dict(_environment(), **(extra_env or {})), stdin=subprocess.DEVNULL)
        try:  # (a Ctrl-C before this line: grade() kills it, children.interrupt())
            timed_out = not children.wait(proc, limit)
            if timed_out and peaks is not None:
                peaks.append(peak_bytes(proc.pid))
        finally:
            children.finish(proc)  # the whole group: with anything the submission started
        if children.interrupted():
            raise children.Interrupted()
        output.seek(0)
        return (None if timed_out else proc.returncode), output.read()[-4000:]


def _environment():
    # single-threaded BLAS: lessons run side by side, and sums come out the same on every run
    # UTF-8 mode: the test process writes its output and files as UTF-8 on every platform (Windows' default is its
    # ANSI code page), which is how the grader reads them
    return dict(os.environ, **ONE_BLAS_THREAD, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1", PYTHONUTF8="1")


def lesson_test_files():
    return sorted(TESTS.glob("test_*.py"))


@cache
def reference_tests():
    """{lesson id: [test ids]} collected from the reference: the denominator of every lesson.

    Collecting runs no implementation code: where there is no reference (the students' edition), the same ids
    are collected naming exercises/.

    Collected once per content of the lesson test files (and of what decides their ids), and kept in
    .kata/ so the next run of the grader need not collect again."""
    sources = [*lesson_test_files(), TESTS / "helpers.py", ROOT / "manifest.toml",
               ROOT / "kata" / "testing" / "plugin.py", Path(__file__).with_name("reporter.py")]
    digest = hashlib.sha1(b"".join(path.name.encode() + path.read_bytes() for path in sources if path.exists()))
    cached = STATE / f"reference-tests-{digest.hexdigest()[:16]}.json"
    try:
        return json.loads(cached.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    with tempfile.TemporaryDirectory(prefix="kata-collect-", ignore_cleanup_errors=True) as tmp:
        out = Path(tmp) / "tests.json"
        run = TestRun(Settings(), collect=str(out)).write(Path(tmp) / "run.json")
        command = [*PYTEST, f"--kata-run={run}", "--collect-only", "--continue-on-collection-errors",
                   f"--impl={'solutions' if has_reference() else 'exercises'}", *map(str, lesson_test_files())]
        code, output = run_process(command, COLLECT_SECONDS)
        if not out.exists():
            raise RuntimeError(f"collecting the tests of the reference failed (exit {code}):\n{output}")
        found = json.loads(out.read_text(encoding="utf-8"))
    try:
        write_json(cached, found)
    except OSError:  # a read-only checkout grades all the same, collecting each time
        pass
    return found


def _read_log(path):
    """(finished {test id: (status, message)}, id of the test that started but did not finish, or None, the test
    process's peak memory after its last finished test, what the implementation printed)."""
    done, started, peak, printed = {}, None, 0, []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if "start" in entry:
            started = entry["start"]
        else:
            done[entry["id"]] = (entry["status"], entry["message"])
            started = None if started == entry["id"] else started
            peak = max(peak, entry.get("peak", 0))
            printed.append(entry.get("printed", ""))
    return done, started, peak, "".join(printed)


def run_lesson(lesson_id, impl_arg, tests, settings, work, clean=lambda text: text):
    """Run a lesson's tests on impl_arg within settings.lesson_seconds: a LessonRun.

    One test may use at most a share of the time (all of it when it is alone), so one infinite loop leaves
    time for the others: the run starts again without the tests already done.
    """
    item, timeout = lesson(lesson_id), settings.lesson_seconds
    share = settings.share(len(tests))
    results, deadline, attempt, note, peaks, shown = {}, time.monotonic() + timeout, 0, "", [0], []
    while len(results) < len(tests) and deadline - time.monotonic() > settings.min_attempt:
        left, attempt = deadline - time.monotonic(), attempt + 1
        run = TestRun(settings, test_seconds=min(timeout / share, left), stop_at=time.time() + left,
                      log=str(work / f"{lesson_id}-{attempt}.log"), trace=str(work / f"{lesson_id}-{attempt}.trace"))
        remaining = [t for t in tests if t not in results]
        # the lesson's own test files: a broken module of another lesson cannot stop it
        targets = dict.fromkeys(t.split("::")[0] for t in tests) if attempt == 1 else remaining
        command = [*PYTEST, f"--kata-run={run.write(work / f'{lesson_id}-{attempt}.json')}", f"--impl={impl_arg}",
                   "-m", item.marker, *[str(ROOT / t) for t in targets]]
        try:
            code, output = run_process(command, left + run.kill_margin, peaks=peaks)
        except KeyboardInterrupt:  # Ctrl-C: say which lesson and which of its tests was running
            raise LessonInterrupted(lesson_id, _read_log(Path(run.log))[1]) from None
        if settings.sandbox:  # a test process killed at its deadline could not stop its child: nothing of it stays
            sweep()
        done, hung, peak, printed = _read_log(Path(run.log))
        peaks.append(peak)
        shown.append(printed)
        results.update({t: (s, clean(m)) for t, (s, m) in done.items() if t in tests})
        if hung is None:
            if code is not None and not done:
                note = clean(f"the tests did not start (pytest exit code {code}): {output.strip()[-MESSAGE_CHARS:]}")
                results.update({t: ("error", note) for t in remaining})
            break
        trace = Path(run.trace)
        trace_text = trace.read_text(encoding="utf-8", errors="replace") if trace.exists() else ""
        if code is None or trace_text:
            folder = folder_of(impl_arg)
            spot = in_dump(trace_text, folder)
            if spot is not None:  # named as the report names the submission's files
                spot = Place(clean(str(folder / Path(spot.file).name)), spot.line, spot.function)
            where = running(spot)
            results[hung] = ("timeout", f"did not finish within {run.test_seconds:.0f} s{where}; an infinite loop, "
                                        f"or much slower code than needed? (each test may use 1/{share} of --timeout)")
        else:
            message = f"the test process stopped during this test (exit code {code}): does the code call exit()?"
            results[hung] = ("error", message)
            if not done:  # it stops at once: every remaining test would do the same
                results.update({t: ("error", message) for t in remaining})
    skipped = [t for t in tests if t not in results]
    results.update({t: ("timeout", f"not run: lesson {lesson_id} used up its {timeout:g} s (--timeout)")
                    for t in skipped})
    hung = [t for t in tests if results[t][0] == "timeout" and t not in skipped]
    if hung:
        note = f"{len(hung)} test{'s' if len(hung) > 1 else ''} did not finish in time (the first: {hung[0]})"
    if skipped:
        note += f"{'; ' if note else ''}{len(skipped)} not run: the lesson's {timeout:g} s ran out (--timeout)"
    return LessonRun(results, note, max(peaks), "".join(shown)[-PRINTED_CHARS:])
