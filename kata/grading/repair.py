"""Before the tests: which files of a submission are missing, do not parse or fail at import, and a copy of the
submission in which each of those is replaced by its stub (generated from the reference, with no line of a
solution in it), so that the lessons that do not run them are graded as usual (the lessons that do are reported
with the file and line). Nothing of the reference's solutions ever enters the submission's folder: whatever its
code can read could travel into a report."""

import ast
import json
import shutil
import sys
import time
from pathlib import Path

from ..course.exercises import pristine
from ..course.files import parse_python, write_atomic, write_json
from ..course.manifest import lessons
from ..course.places import in_dump
from ..course.repository import kata_files
from ..sandbox import NotContained
from ..testing.sandboxed import policy
from .messages import cleaner
from .run import run_process


def _static_problems(folder, display):
    """{file: message} for reference files that are missing, not UTF-8 or not valid Python in folder.

    A missing file that no lesson owns (code given to students, such as validation.py) is no problem: the
    given code is used (message None).
    """
    owned = {name for item in lessons() for name in item.files}
    problems = {}
    for name in kata_files():
        path = folder / name
        if not path.is_file():
            problems[name] = f"{display}/{name} is missing" if name in owned else None
            continue
        try:
            parse_python(path.read_bytes().decode("utf-8"), str(path))
        except UnicodeDecodeError as error:
            problems[name] = f"{display}/{name} is not UTF-8 text ({error.reason} at byte {error.start})"
        except (SyntaxError, ValueError) as error:
            line = f" line {error.lineno}" if getattr(error, "lineno", None) else ""
            problems[name] = f"{display}/{name}{line}: {type(error).__name__}: {getattr(error, 'msg', error)}"
        except (RecursionError, MemoryError) as error:  # Python's parser gives up on code nested this deep
            problems[name] = f"{display}/{name}: {type(error).__name__}: Python cannot parse it ({error})"
    return problems


def _top_level_names(source):
    """Names Python source defines or imports at its top level."""
    names = set()
    for node in parse_python(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def blame(failure):
    """Where an import failed and the files to blame, most likely first, from import_failure's report."""
    inside = [tuple(frame) for frame in failure["inside"]]
    if failure.get("missing"):
        target, name = failure["missing"]
        stubs = pristine()  # (a stub defines at its top level every name its reference file does)
        if target in stubs and name in _top_level_names(stubs[target]):
            inside.append((target, None))  # the file lost a name the reference defines: blame it, not its importer
    culprits = [name for name, _ in reversed(inside) if name in kata_files()]
    return {"where": inside[-1] if inside else None, "culprits": list(dict.fromkeys(culprits)),
            "error": failure["error"]}


def _probe(folder, display, work, settings):
    """None if the implementation in folder imports; else (files to blame, most likely first; message)."""
    out = work / f"probe-{time.monotonic_ns()}.json"
    limit = settings.probe_seconds
    returncode, _ = run_process([sys.executable, "-m", "kata.grading.probe", str(folder), str(out), str(limit)],
                                settings.probe_kill_after)
    if out.exists():
        verdict = json.loads(out.read_text(encoding="utf-8"))
        return None if verdict is None else _verdict_result(blame(verdict), folder, display)
    trace = Path(str(out) + ".trace")
    dump = trace.read_text(errors="replace", encoding="utf-8") if trace.exists() else ""
    spot = in_dump(dump, folder)
    timed_out = returncode is None or dump.startswith("Timeout")  # faulthandler's header after its time limit
    what = f"did not finish within {limit:g} s" if timed_out else f"stopped Python (exit code {returncode})"
    if spot:
        return [Path(spot.file).name], f"{display}/{Path(spot.file).name} line {spot.line}: importing it {what}"
    return [], f"importing {display} {what}"


def _probe_sandboxed(folder, display, work, settings):
    """(_probe's answer, what the sandbox could not do here ("" if nothing; None if it could not be tried)), with
    the import done by a sandboxed child (kata/sandbox/) that reports where it failed."""
    # in a process of its own: the sandbox adopts and reaps orphans, which only a single-purpose process may do
    out, rules = work / f"probe-{time.monotonic_ns()}.json", work / "policy.json"
    write_json(rules, policy(settings.allow_unconfined).to_json())
    code, output = run_process([sys.executable, "-m", "kata.sandbox", "--probe", str(out), "--seconds",
                                str(settings.probe_seconds), "--policy", str(rules), str(folder)],
                               settings.probe_kill_after)
    if not out.exists():
        return ([], f"importing {display} could not be tried (exit code {code}): {output.strip()[-300:]}"), None
    report = json.loads(out.read_text(encoding="utf-8"))
    if report.get("refused"):
        raise NotContained(report["refused"])
    isolation = "" if report.get("isolated") else str(report.get("note"))
    if report["broken"] is None:
        return None, isolation
    if not report["verdict"]:
        return ([], cleaner({folder: display})(f"importing {display} failed: {report['broken']}")), isolation
    return _verdict_result(blame(report["verdict"]), folder, display), isolation


def _verdict_result(verdict, folder, display):
    """(files to blame, message naming file and line) of blame()'s verdict on a failed import."""
    where = verdict["where"]
    place = f"{display}/{where[0]}" + (f" line {where[1]}" if where[1] else "") if where else display
    return verdict["culprits"], cleaner({folder: display})(f"{place}: {verdict['error']}")


def repair(sub, work, settings):
    """({file: message} of broken files, folder where they are replaced by their stubs, what the sandbox could not
    do on this machine ("" if nothing or not sandboxed))."""
    broken = _static_problems(sub.folder, sub.display)
    folder, isolation = sub.folder, ""
    for _ in range(len(kata_files()) + 1):
        if broken and folder == sub.folder:
            folder = work / "repaired"
            shutil.copytree(sub.folder, folder, ignore=shutil.ignore_patterns("__pycache__", ".*"))
        stubs = pristine() if broken else {}
        for name in broken:
            write_atomic(folder / name, stubs[name])
        if settings.sandbox:
            verdict, said = _probe_sandboxed(folder, sub.display, work, settings)
            isolation = isolation if said is None else said
        else:
            verdict = _probe(folder, sub.display, work, settings)
        culprit = next((name for name in verdict[0] if name not in broken), None) if verdict else None
        if culprit is None:
            break  # imports now, or nothing left to replace: the tests will show the import error
        broken[culprit] = verdict[1]
    return {name: message for name, message in broken.items() if message}, folder, isolation
