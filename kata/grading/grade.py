"""Grade a submission lesson by lesson: each lesson's tests run in a subprocess with a time limit.

    grade("exercises")                     # the student's own folder, every lesson
    grade("alice.zip", ["04"], isolated=True, name="alice")

A file that is missing, does not parse or fails at import is reported on the lessons that run it, with file
and line; the other lessons are graded with the reference's copy of that file in its place.
This module is also the small pytest plugin (`-p kata.grading`) that the test subprocesses load: it logs each
test's outcome as it finishes (so a killed run keeps what it did) and stops a test that runs too long.
"""

import ast
import faulthandler
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

from .. import ONE_BLAS_THREAD
from ..course.exercises import pointer_for, unfinished
from ..course.files import write_json
from ..course.manifest import lesson_ids as lesson_ids_of, lessons
from ..course.repository import NAMED, ROOT, python
from .submission import REFERENCE, kata_files, open_submission, rename
from .submission import SubmissionError  # noqa: F401 - grade() raises it; callers import it from here

DEFAULT_TIMEOUT = 120.0  # seconds per lesson
DEFAULT_WORKERS = 2  # this machine has 2 cores; each lesson runs single-threaded
SANDBOX_GRACE = 5.0  # seconds a sandboxed test may take beyond its share: restarting the child after a timeout
MESSAGE_CHARS = 400
TRACE_LINE = re.compile(r'\s*(File "|\S+\.py:\d+ in )')


# ---------------------------------------------------------------- which lessons

def lesson_ids_of(ids):
    """Manifest-ordered lesson ids from ids (None means all; "2" means "02"); unknown ids raise ValueError."""
    known = [item.id for item in lessons()]
    ids = [ids] if isinstance(ids, str) else ids
    if not ids:
        return known
    wanted = {part.strip().zfill(2) for entry in ids for part in str(entry).split(",") if part.strip()}
    unknown = sorted(wanted - set(known))
    if unknown:
        raise ValueError(f"unknown lesson {', '.join(unknown)}: the lessons are {', '.join(known)}")
    return [i for i in known if i in wanted]


# ---------------------------------------------------------------- what is finished, what is broken

def _static_problems(folder, display):
    """{file: message} for reference files that are missing, not UTF-8 or not valid Python in folder.

    A missing file that no lesson owns (code given to students, such as validation.py) is no problem: the
    reference's copy is used (message None).
    """
    owned = {name for item in lessons() for name in item.files}
    problems = {}
    for name in kata_files():
        path = folder / name
        if not path.is_file():
            problems[name] = f"{display}/{name} is missing" if name in owned else None
            continue
        try:
            ast.parse(path.read_bytes().decode("utf-8"), str(path))
        except UnicodeDecodeError as error:
            problems[name] = f"{display}/{name} is not UTF-8 text ({error.reason} at byte {error.start})"
        except (SyntaxError, ValueError) as error:
            line = f" line {error.lineno}" if getattr(error, "lineno", None) else ""
            problems[name] = f"{display}/{name}{line}: {type(error).__name__}: {getattr(error, 'msg', error)}"
    return problems


def _top_level_names(path):
    """Names a Python file defines or imports at its top level."""
    names = set()
    for node in ast.parse(Path(path).read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def import_failure(error, folder):
    """What a failed import of the implementation in folder says, as plain data (computed where it failed, which
    may be a sandbox that cannot see the reference): {"inside": [[file, line], ...] frames in folder, innermost
    last; "missing": [file, name] when a file of folder lacked an imported name, else None; "error": text}."""
    frames = [(f.filename, f.lineno) for f in traceback.extract_tb(error.__traceback__)]
    if isinstance(error, SyntaxError) and error.filename:
        frames.append((error.filename, error.lineno))
    inside = [[Path(f).name, n] for f, n in frames if Path(f).resolve().parent == folder]
    missing = re.match(r"cannot import name '(\w+)'", str(error))
    lacking = None
    if isinstance(error, ImportError) and missing and error.path and Path(error.path).resolve().parent == folder:
        lacking = [Path(error.path).name, missing[1]]
    return {"inside": inside, "missing": lacking, "error": f"{type(error).__name__}: {error}"}


def blame(failure):
    """Where an import failed and the files to blame, most likely first, from import_failure's report."""
    inside = [tuple(frame) for frame in failure["inside"]]
    if failure.get("missing"):
        target, name = failure["missing"]
        if (REFERENCE / target).is_file() and name in _top_level_names(REFERENCE / target):
            inside.append((target, None))  # the file lost a name the reference defines: blame it, not its importer
    culprits = [name for name, _ in reversed(inside) if name in kata_files()]
    return {"where": inside[-1] if inside else None, "culprits": list(dict.fromkeys(culprits)),
            "error": failure["error"]}


def _blame(error, folder):
    """Where an import of the implementation in folder failed, and the files to blame, most likely first."""
    return blame(import_failure(error, folder))


def _probe_main(folder, out, limit):
    """(In a subprocess.) Import the implementation in folder; write where it failed, as JSON, to out."""
    from ..course.implementation import ImplementationError, load
    folder = Path(folder).resolve()

    def no_exit(code=0):  # os._exit would leave no trace of where it was called
        raise SystemExit(f"os._exit({code}) called while importing")
    os._exit = no_exit
    with open(out + ".trace", "w") as trace:
        faulthandler.enable(file=trace)  # a crash of Python itself still says where it was
        faulthandler.dump_traceback_later(limit, exit=True, file=trace)
        try:
            load(str(folder))
            verdict = None
        except ImplementationError as wrapped:
            verdict = _blame(wrapped.__cause__, folder)
        faulthandler.cancel_dump_traceback_later()
    Path(out).write_text(json.dumps(verdict))


def _trace_location(trace_text, folder):
    """(file name, line, function) of the innermost frame inside folder in a faulthandler dump, or None."""
    for path, line, function in re.findall(r'File "([^"]+)", line (\d+) in (\S+)', trace_text):
        if Path(path).resolve().parent == Path(folder).resolve():
            return Path(path).name, int(line), function
    return None


def _probe(folder, display, work, limit):
    """None if the implementation in folder imports; else (files to blame, most likely first; message)."""
    out = work / f"probe-{time.monotonic_ns()}.json"
    code = "import sys; from kata.grading.grade import _probe_main; _probe_main(sys.argv[1], sys.argv[2], float(sys.argv[3]))"
    returncode, _ = _run([sys.executable, "-c", code, str(folder), str(out), str(limit)], limit + 10)
    if out.exists():
        verdict = json.loads(out.read_text())
        return None if verdict is None else _verdict_result(verdict, folder, display)
    trace = Path(str(out) + ".trace")
    dump = trace.read_text(errors="replace") if trace.exists() else ""
    spot = _trace_location(dump, folder)
    timed_out = returncode is None or dump.startswith("Timeout")  # faulthandler's header after its time limit
    what = f"did not finish within {limit:g} s" if timed_out else f"stopped Python (exit code {returncode})"
    if spot:
        return [spot[0]], f"{display}/{spot[0]} line {spot[1]}: importing it {what}"
    return [], f"importing {display} {what}"


def _probe_sandboxed(folder, display, work, limit):
    """_probe, with the import done by a sandboxed child (kata/sandbox.py) that reports where it failed."""
    # in a process of its own: the sandbox adopts and reaps orphans, which only a single-purpose process may do
    from ..course.repository import private_paths
    from ..sandbox import Policy
    out = work / f"probe-{time.monotonic_ns()}.json"
    policy = work / f"policy-{time.monotonic_ns()}.json"
    write_json(policy, Policy(hidden=tuple(str(p) for p in private_paths())).to_json())
    code, output = _run([sys.executable, "-m", "kata.sandbox", "--probe", str(out), "--seconds", str(limit),
                         "--policy", str(policy), str(folder)], limit + 30)
    if not out.exists():
        return [], f"importing {display} could not be tried (exit code {code}): {output.strip()[-300:]}"
    report = json.loads(out.read_text())
    (work / "isolation.txt").write_text("" if report.get("isolated") else str(report.get("note")))
    if report["broken"] is None:
        return None
    if not report["verdict"]:
        return [], _cleaner({folder: display})(f"importing {display} failed: {report['broken']}")
    return _verdict_result(blame(report["verdict"]), folder, display)


def _verdict_result(verdict, folder, display):
    """(files to blame, message naming file and line) of blame()'s verdict on a failed import."""
    where = verdict["where"]
    place = f"{display}/{where[0]}" + (f" line {where[1]}" if where[1] else "") if where else display
    return verdict["culprits"], _cleaner({folder: display})(f"{place}: {verdict['error']}")


def _repair(sub, work, limit, sandbox=False):
    """({file: message} of broken files, folder where they are replaced by the reference's copies)."""
    broken = _static_problems(sub.folder, sub.display)
    folder = sub.folder
    for _ in range(len(kata_files()) + 1):
        if broken and folder == sub.folder:
            folder = work / "repaired"
            shutil.copytree(sub.folder, folder, ignore=shutil.ignore_patterns("__pycache__", ".*"))
        for name in broken:
            shutil.copy(REFERENCE / name, folder / name)
        verdict = (_probe_sandboxed if sandbox else _probe)(folder, sub.display, work, limit)
        culprit = next((name for name in verdict[0] if name not in broken), None) if verdict else None
        if culprit is None:
            break  # imports now, or nothing left to replace: the tests will show the import error
        broken[culprit] = verdict[1]
    return {name: message for name, message in broken.items() if message}, folder


# ---------------------------------------------------------------- running one lesson's tests

def _run(command, limit, extra_env=None):
    """Run command in a process group of its own, killed after limit seconds. -> (returncode or None, output)"""
    with tempfile.TemporaryFile("w+") as output:
        proc = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
                                env=dict(_environment(), **(extra_env or {})))
        try:
            proc.wait(timeout=limit)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: with anything the submission started
        except OSError:
            pass  # nothing left in it
        proc.wait()
        output.seek(0)
        return (None if timed_out else proc.returncode), output.read()[-4000:]


def _environment():
    # single-threaded BLAS: lessons run side by side, and sums come out the same on every run
    return dict(os.environ, **ONE_BLAS_THREAD, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")


def _lesson_test_files():
    return sorted((ROOT / "tests").glob("test_lesson*.py"))


@cache
def reference_tests():
    """{lesson id: [test ids]} collected from the reference: the denominator of every lesson.

    Collected once per content of the lesson test files (and of what decides their ids), and kept in
    .kata/ so the next run of the grader need not collect again."""
    sources = [*_lesson_test_files(), ROOT / "tests" / "helpers.py", ROOT / "manifest.toml",
               ROOT / "kata" / "testing" / "plugin.py", ROOT / "kata" / "grading" / "grade.py"]
    digest = hashlib.sha1(b"".join(path.name.encode() + path.read_bytes() for path in sources if path.exists()))
    cached = ROOT / ".kata" / f"reference-tests-{digest.hexdigest()[:16]}.json"
    try:
        return json.loads(cached.read_text())
    except (OSError, ValueError):
        pass
    with tempfile.TemporaryDirectory(prefix="kata-collect-") as tmp:
        out = Path(tmp) / "tests.json"
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "kata.grading.grade", "-q",
                   "--collect-only", "--continue-on-collection-errors", "--impl=solutions",
                   *[str(path) for path in _lesson_test_files()]]
        code, output = _run(command, 120, {"KATA_COLLECT": str(out)})
        if not out.exists():
            raise RuntimeError(f"collecting the tests of the reference failed (exit {code}):\n{output}")
        found = json.loads(out.read_text())
    try:
        write_json(cached, found)
    except OSError:  # a read-only checkout grades all the same, collecting each time
        pass
    return found


def _read_log(path):
    """(finished {test id: (status, message)}, id of the test that started but did not finish, or None)."""
    done, started = {}, None
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
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
    return done, started


def run_lesson(lesson_id, impl_arg, tests, timeout, work, clean=lambda text: text, sandbox=False):
    """Run a lesson's tests on impl_arg within timeout seconds. -> ({test id: (status, message)}, note)

    One test may use at most a quarter of the time (all of it when it is alone), so one infinite loop leaves
    time for the others: the run starts again without the tests already done.
    """
    item = next(i for i in lessons() if i.id == lesson_id)
    share = min(4, max(len(tests), 1))
    results, deadline, attempt, note = {}, time.monotonic() + timeout, 0, ""
    while len(results) < len(tests) and deadline - time.monotonic() > 0.5:
        left, attempt = deadline - time.monotonic(), attempt + 1
        limit = min(timeout / share, left)
        log, trace = work / f"{lesson_id}-{attempt}.log", work / f"{lesson_id}-{attempt}.trace"
        remaining = [t for t in tests if t not in results]
        # the lesson's own test files, not tests/: a broken module of another lesson or tool cannot stop it
        targets = dict.fromkeys(t.split("::")[0] for t in tests) if attempt == 1 else remaining
        # (--tb=native: the messages are the plugin's; pytest's own tracebacks would cost ~0.1 s per failure;
        # no:unraisableexception: its clean-up collects garbage five times, for warnings the grader does not use)
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:unraisableexception",
                   "-p", "kata.grading.grade", "-q", "--tb=native",
                   f"--impl={impl_arg}", "-m", item.marker, *[str(ROOT / t) for t in targets]]
        watchdog = limit
        if sandbox:  # the sandbox's deadline stops the submission; the watchdog only backs it up (and allows for
            # starting a fresh child after a timeout)
            command += ["--sandbox", f"--sandbox-test-seconds={limit:g}"]
            watchdog = limit + SANDBOX_GRACE
        # a little grace so the test's own watchdog (which says where the code was) fires before the kill
        code, output = _run(command, left + 2 + (SANDBOX_GRACE if sandbox else 0),
                            {"KATA_LOG": str(log), "KATA_TRACE": str(trace), "KATA_TEST_LIMIT": str(watchdog),
                             "KATA_SANDBOX_SECONDS": str(limit), "KATA_STOP_AT": str(time.time() + left)})
        done, hung = _read_log(log)
        results.update({t: (s, clean(m)) for t, (s, m) in done.items() if t in tests})
        if hung is None:
            if code is not None and not done:
                note = clean(f"the tests did not start (pytest exit code {code}): {output.strip()[-MESSAGE_CHARS:]}")
                results.update({t: ("error", note) for t in remaining})
            break
        trace_text = trace.read_text(errors="replace") if trace.exists() else ""
        if code is None or trace_text:
            spot = _trace_location(trace_text, impl_folder(impl_arg))
            where = f": it was running {clean(str(impl_folder(impl_arg) / spot[0]))} line {spot[1]} ({spot[2]})" \
                if spot else ""
            results[hung] = ("timeout", f"did not finish within {limit:.0f} s{where}; an infinite loop, or much "
                                        f"slower code than needed? (each test may use 1/{share} of --timeout)")
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
    return results, note


def impl_folder(impl_arg):
    return ROOT / impl_arg if impl_arg in NAMED else Path(impl_arg)


def _short(text, limit=MESSAGE_CHARS):
    """The first lines of a failure, up to the assertion introspection, at most limit characters."""
    lines = []
    for line in str(text).replace("AssertionError: FAILURE: ", "AssertionError: ").strip().splitlines():
        if lines and (line.startswith(("assert ", "+  where")) or TRACE_LINE.match(line)):
            break  # pytest's introspection or pytest-check's traceback: the message above says it
        lines.append(line.rstrip())
    text = "\n".join(lines[:6])
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _cleaner(replacements):
    """A function that replaces temporary paths in a message by the names a reader knows."""
    # longest first: a folder before the folder that holds it
    order = sorted(replacements.items(), key=lambda pair: -max(len(str(pair[0])), len(str(Path(pair[0]).resolve()))))

    def clean(text):
        for path, name in order:
            text = rename(text, path, name)
        return _short(re.sub(r"kata_submission_[0-9a-f]{10}", "submission", text))
    return clean


# ---------------------------------------------------------------- grading

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
    owners = {name: [i.id for i in lessons() if name in i.files] for name in broken}
    if isolated and item.files:
        return [broken[n] for n in broken if item.id in owners[n]]
    runs = {item.id, *item.depends}
    return [broken[n] for n in broken if not owners[n] or runs & set(owners[n])]


def _dependency_note(item, by_id, unfinished_ids, broken_lessons):
    """Why a failing lesson may fail through the unfinished lessons whose code it runs ("" if none)."""
    pending = [d for d in item.depends if d in unfinished_ids or d in broken_lessons
               or (d in by_id and by_id[d]["score"] < by_id[d]["max_score"])]
    if not pending:
        return ""
    names = " and ".join([", ".join(pending[:-1]), pending[-1]] if len(pending) > 1 else pending)
    plural = len(pending) > 1
    return (f"lesson {item.id} runs your code from lesson{'s' if plural else ''} {names}, which "
            f"{'are' if plural else 'is'} not finished yet: finish {'them' if plural else 'it'}, or grade this "
            f"lesson alone with --isolated ({python()} grader.py --lesson {item.id} --isolated)")


def grade(impl="exercises", lesson_ids=None, isolated=False, timeout=DEFAULT_TIMEOUT, *, workers=DEFAULT_WORKERS,
          name=None, sandbox=None):
    """Grade impl and return the result (SPEC section 5 + extras, among them "notes" for the student).

    impl is "solutions", "exercises", or any layout kata.submission accepts (a folder laid out like exercises/,
    a folder holding one, a .zip of either); messages call it name (default: impl as given), e.g. "alice/loss.py".
    Raises SubmissionError when the submission cannot be found or opened, ValueError for an unknown lesson id or
    a timeout that is not a positive number of seconds; a broken submission is never an exception: its failures
    are in the result.
    sandbox: run the submission's code only in sandboxed child processes (kata/sandbox.py) and take only the
    kata's files from it; None (the default) means yes for anything but "solutions" and "exercises".
    """
    if sandbox is None:
        sandbox = str(impl) not in NAMED
    start = time.monotonic()
    chosen = [item for item in lessons() if item.id in lesson_ids_of(lesson_ids)]
    try:
        seconds = DEFAULT_TIMEOUT if timeout is None else float(timeout)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not seconds > 0:  # nan too
        raise ValueError(f"timeout {timeout!r}: expected a positive number of seconds per lesson")
    timeout = seconds
    with tempfile.TemporaryDirectory(prefix="kata-grade-") as tmp:
        work = Path(tmp)
        sub = open_submission(impl, work, name, strict=sandbox)
        tests = reference_tests()
        broken, repaired = _repair(sub, work, max(2.0, min(timeout / 4, 30.0)), sandbox)
        isolation = (work / "isolation.txt").read_text() if (work / "isolation.txt").exists() else ""
        if isolation:  # said once per submission: what the sandbox could not do on this machine
            sub.notes.append(f"sandbox without namespaces here ({isolation})")
        todo = unfinished(sub.folder)
        unfinished_ids = {entry[0] for entry in todo}
        broken_lessons = {i.id for i in lessons() if set(i.files) & set(broken)}

        def one(item):
            began = time.monotonic()
            ids = tests.get(item.id, [])
            problems = _affected(item, broken, isolated)
            if problems:
                message = "; ".join(problems)
                outcome, note = {t: ("error", message) for t in ids}, f"could not run: {message}"
            else:
                arg, replacements = _lesson_folder(item, sub, repaired, isolated, work)
                outcome, note = run_lesson(item.id, arg, ids, timeout, work, _cleaner(replacements), sandbox)
            passed = sum(status == "passed" for status, _ in outcome.values())
            return {"id": item.id, "title": item.title,
                    "score": round(item.points * passed / len(ids), 2) if ids else 0.0,
                    "max_score": float(item.points), "passed": passed, "total": len(ids), "note": note,
                    "seconds": round(time.monotonic() - began, 2),
                    "tests": [{"name": t, "status": outcome[t][0], "message": "" if outcome[t][0] == "passed"
                               else outcome[t][1]} for t in ids]}

        # lessons that run more of the model take longer: start them first
        order = sorted(chosen, key=lambda item: -len(item.depends))
        with ThreadPoolExecutor(max(1, workers)) as pool:
            done = dict(zip([item.id for item in order], pool.map(one, order)))
    results = [done[item.id] for item in chosen]
    for item, entry in zip(chosen, results):
        if entry["score"] < entry["max_score"] and (not isolated or not item.files):
            extra = _dependency_note(item, done, unfinished_ids, broken_lessons)
            entry["note"] = "; ".join(part for part in (entry["note"], extra) if part)
    return {"implementation": str(impl), "isolated": bool(isolated), "sandbox": bool(sandbox),
            "score": round(sum(e["score"] for e in results), 2),
            "max_score": float(sum(e["max_score"] for e in results)),
            "execution_time": round(time.monotonic() - start, 2), "notes": sub.notes, "lessons": results}


# ---------------------------------------------------------------- the plugin loaded into test subprocesses

_state = {"outcome": {}, "trace": None, "folder": None}


def _log(entry):
    with open(os.environ["KATA_LOG"], "a") as handle:
        handle.write(json.dumps(entry) + "\n")


def pytest_configure(config):
    if os.environ.get("KATA_LOG"):
        _state["folder"] = impl_folder(config.getoption("--impl")).resolve()
        _state["trace"] = open(os.environ["KATA_TRACE"], "w")  # kept open: faulthandler writes to its descriptor


def pytest_collection_finish(session):
    if os.environ.get("KATA_COLLECT"):
        markers = {item.marker: item.id for item in lessons()}
        found = {}
        for test in session.items:
            for lesson_id in dict.fromkeys(markers[m.name] for m in test.iter_markers() if m.name in markers):
                found.setdefault(lesson_id, []).append(test.nodeid)
        Path(os.environ["KATA_COLLECT"]).write_text(json.dumps(found))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """No test starts once the lesson's time is up (its tests that time out, one after another, would otherwise
    keep the run going past it): the grader reports the rest as not run."""
    if os.environ.get("KATA_STOP_AT") and time.time() > float(os.environ["KATA_STOP_AT"]):
        item.session.shouldstop = "the lesson's time is up"
        return True
    return None


def pytest_runtest_logstart(nodeid, location):
    if os.environ.get("KATA_LOG"):
        _log({"start": nodeid})
        _state["outcome"][nodeid] = ("passed", "")
        _state["trace"].seek(0)
        _state["trace"].truncate()
        faulthandler.dump_traceback_later(float(os.environ["KATA_TEST_LIMIT"]), exit=True, file=_state["trace"])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if os.environ.get("KATA_LOG") and not report.passed:
        report.kata_message = _message(report, call.excinfo)
        if call.excinfo is not None and type(call.excinfo.value).__name__ == "CallTimeout":
            report.kata_timeout = True
            place = call.excinfo.value.place
            where = f": it was running {place.file} line {place.line} ({place.function})" if place else ""
            report.kata_message = (f"did not finish within {float(os.environ['KATA_SANDBOX_SECONDS']):.0f} s{where}; an "
                                   f"infinite loop, or much slower code than needed? (each test may use a share of "
                                   f"--timeout)")
    return report


def pytest_runtest_logreport(report):
    outcome = _state["outcome"]
    if not os.environ.get("KATA_LOG") or report.passed or outcome.get(report.nodeid, ("passed",))[0] != "passed":
        return  # the first problem of a test is the one to report
    status = "failed" if report.when == "call" or report.skipped else "error"
    if getattr(report, "kata_timeout", False):
        status = "timeout"
    outcome[report.nodeid] = (status, getattr(report, "kata_message", None) or _short(str(report.longrepr)))


def pytest_runtest_logfinish(nodeid, location):
    if os.environ.get("KATA_LOG"):
        faulthandler.cancel_dump_traceback_later()
        status, message = _state["outcome"].pop(nodeid, ("error", "no outcome recorded"))
        _log({"id": nodeid, "status": status, "message": message})


def _message(report, excinfo):
    """The exception line(s) of a failure, after file:line of the innermost frame in the implementation."""
    if report.skipped:
        return f"skipped: {report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr}"
    if excinfo is None:
        return _short(str(report.longrepr))
    text = str(excinfo.value) if excinfo.errisinstance(pytest.fail.Exception) else excinfo.exconly()
    spots = [entry for entry in excinfo.traceback if Path(str(entry.path)).resolve().parent == _state["folder"]]
    remote = getattr(excinfo.value, "remote_place", None)  # kata.sandbox's: where an error of the child was raised
    if not spots and remote and remote.line is not None and Path(remote.file).resolve().parent == _state["folder"]:
        place, line = remote.file, remote.line
        text = f"{place}:{line}: " + text.replace(f" (raised at {remote})", "", 1)
        if not excinfo.errisinstance((AssertionError, NotImplementedError, pytest.fail.Exception)):
            pointer = pointer_for(place, line)
            return _short(text, MESSAGE_CHARS - len(pointer) - 2) + (f"; {pointer}" if pointer else "")
        return _short(text)
    if spots:
        text = f"{spots[-1].path}:{spots[-1].lineno + 1}: {text}"
        if not excinfo.errisinstance((AssertionError, NotImplementedError, pytest.fail.Exception)):
            pointer = pointer_for(spots[-1].path, spots[-1].lineno + 1)
            text = _short(text, MESSAGE_CHARS - len(pointer) - 2) + (f"; {pointer}" if pointer else "")
            return text
    return _short(text)
