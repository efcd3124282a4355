"""The grader's half of a test process: loaded with `-p kata.grading.reporter --kata-run FILE` (FILE: a
kata.grading.settings.TestRun), it logs each test's outcome as it finishes (so a killed run keeps what it did),
stops a test that runs too long, starts no test once the lesson's time is up, and writes each failure's message
the way a report shows it. Collecting (TestRun.collect) writes the test ids of each lesson instead."""

import faulthandler
import json
import time
from pathlib import Path

import pytest

from ..course.exercises import pointer_for
from ..course.implementation import folder_of
from ..course.manifest import lessons
from ..course.places import inside, running
from ..sandbox import CallTimeout, peak_bytes
from ..testing.plugin import sandboxed
from .messages import MESSAGE_CHARS, POINTER, short
from .settings import TestRun

PRINTED_CHARS = 4000  # of what the implementation printed during one test, the last
_state = {"run": None, "outcome": {}, "trace": None, "folder": None}


def pytest_addoption(parser):
    parser.addoption("--kata-run", default=None, help="(the grader's) a TestRun as JSON: settings, time, log")


def _log(entry):
    with open(_state["run"].log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def _logging():
    return _state["run"] is not None and bool(_state["run"].log)


@pytest.hookimpl(tryfirst=True)  # before kata.testing.plugin reads --variant
def pytest_configure(config):
    if not config.getoption("--kata-run"):
        return
    run = _state["run"] = TestRun.read(config.getoption("--kata-run"))
    _state["config"] = config
    config.option.variant = run.settings.variant  # the grading's, whatever the command line said
    if run.settings.sandbox:  # the options of kata.testing.plugin, read when the session starts
        config.option.sandbox = True
        config.option.sandbox_test_seconds = run.test_seconds
        config.option.allow_unconfined = run.settings.allow_unconfined
    if run.log:
        _state["folder"] = folder_of(config.getoption("--impl"))
        _state["trace"] = open(run.trace, "w", encoding="utf-8")  # kept open: faulthandler writes to its descriptor


def pytest_collection_finish(session):
    if _state["run"] is not None and _state["run"].collect:
        markers = {item.marker: item.id for item in lessons()}
        found = {}
        for test in session.items:
            for lesson_id in dict.fromkeys(markers[m.name] for m in test.iter_markers() if m.name in markers):
                found.setdefault(lesson_id, []).append(test.nodeid)
        Path(_state["run"].collect).write_text(json.dumps(found), encoding="utf-8")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """No test starts once the lesson's time is up (its tests that time out, one after another, would otherwise
    keep the run going past it): the grader reports the rest as not run."""
    if _logging() and time.time() > _state["run"].stop_at:
        item.session.shouldstop = "the lesson's time is up"
        return True
    return None


def pytest_runtest_logstart(nodeid, location):
    if _logging():
        _log({"start": nodeid})
        _state["outcome"][nodeid] = ("passed", "")
        _state["trace"].seek(0)
        _state["trace"].truncate()
        faulthandler.dump_traceback_later(_state["run"].watchdog_seconds, exit=True, file=_state["trace"])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if _logging() and not report.passed:
        box = sandboxed(item.config)
        report.kata_message = message(report, call.excinfo, _state["folder"],
                                      box.errors() if box is not None else [])
        if call.excinfo is not None and call.excinfo.errisinstance(CallTimeout):  # the sandbox's deadline
            report.kata_timeout = True
            where = running(call.excinfo.value.place)
            report.kata_message = (f"did not finish within {_state['run'].test_seconds:.0f} s{where}; an infinite loop, "
                                   f"or much slower code than needed? (each test may use a share of --timeout)")
    return report


def pytest_runtest_logreport(report):
    outcome = _state["outcome"]
    if not _logging() or report.passed or outcome.get(report.nodeid, ("passed",))[0] != "passed":
        return  # the first problem of a test is the one to report
    status = "failed" if report.when == "call" or report.skipped else "error"
    if getattr(report, "kata_timeout", False):
        status = "timeout"
    outcome[report.nodeid] = (status, getattr(report, "kata_message", None) or short(str(report.longrepr)))


def pytest_runtest_logfinish(nodeid, location):
    if _logging():
        faulthandler.cancel_dump_traceback_later()
        status, message = _state["outcome"].pop(nodeid, ("error", "no outcome recorded"))
        box = sandboxed(_state["config"])
        printed = box.printed()[-PRINTED_CHARS:] if box is not None else ""  # for whoever grades, never a test
        _log({"id": nodeid, "status": status, "message": message, "peak": peak_bytes(), "printed": printed})


def _with_pointer(text, places):
    """text shortened to leave room for a pointer, then the pointer to the exercise that holds the innermost of
    places ((file, line) pairs, innermost last) lying in an exercise: a helper module of the student's, which no
    lesson teaches, points to the exercise that called it. text unchanged when it already holds a pointer."""
    if POINTER.search(text):
        return short(text)
    pointer = next(filter(None, (pointer_for(file, line) for file, line in reversed(places))), "")
    return short(text, MESSAGE_CHARS - len(pointer) - 2) + (f"; {pointer}" if pointer else "")


def _quoted(text, errors):
    """The first of errors (raised by a sandboxed implementation) whose place text quotes, or None."""
    found = [(text.find(f" (raised at {error.remote_place})"), index) for index, error in enumerate(errors)
             if error.remote_place is not None]
    first = min(((at, index) for at, index in found if at >= 0), default=None)
    return errors[first[1]] if first else None


def message(report, excinfo, folder, child_errors=()):
    """The exception line(s) of a failure, after file:line of the innermost frame in the implementation (folder),
    ending with the pointer to the exercise that raised it when the message has none.

    child_errors: the errors of a sandboxed implementation during the test, whose place a failure may quote."""
    if report.skipped:
        return f"skipped: {report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr}"
    if excinfo is None:
        return short(str(report.longrepr))
    error = excinfo.value
    text = str(error) if excinfo.errisinstance(pytest.fail.Exception) else excinfo.exconly()
    spots = [(entry.path, entry.lineno + 1) for entry in excinfo.traceback if inside(entry.path, folder)]
    # raised by a sandboxed implementation, or a failure of the test quoting one: its place in the child
    remote = error if getattr(error, "remote_place", None) is not None else _quoted(text, child_errors)
    place = remote.remote_place if remote is not None else None
    if not spots and place is not None and inside(place.file, folder):
        text = f"{place.file}:{place.line}: " + text.replace(f" (raised at {place})", "", 1)
        trail = [(p.file, p.line) for p in getattr(remote, "remote_trail", ()) if inside(p.file, folder)]
        return _with_pointer(text, [*trail, (place.file, place.line)])
    if spots:
        return _with_pointer(f"{spots[-1][0]}:{spots[-1][1]}: {text}", spots)
    return short(text)
