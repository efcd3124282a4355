"""Gradescope: results.json from a grading result, and the autograder zip that Gradescope runs.

Gradescope's format (Autograder Specifications, "Output format"): a top-level score, execution_time, output,
visibility, stdout_visibility, and one entry in "tests" per lesson (name, number, score, max_score, status,
output, visibility).

The zip holds setup.sh (run once when Gradescope builds the image: a .venv with the pinned requirements) and
run_autograder (run for each submission). run_autograder reads these environment variables:

    AUTOGRADER_ROOT  the folder holding source/, submission/ and results/ (default /autograder)
    KATA_PYTHON      the Python to grade with (default source/.venv/bin/python, made by setup.sh)
    KATA_LESSONS     comma-separated lesson ids to grade, e.g. "03,06"; set but empty: all lessons
                     (default: the lessons given to package(), else all)
    KATA_ISOLATED    1 to grade each lesson with the reference for the others (default: package()'s choice)
    KATA_TIMEOUT     seconds allowed per lesson (default: kata/grading/settings.py's)
    KATA_ALLOW_UNCONFINED  1 to grade even where the sandbox cannot confine a submission (for trusted code only)

so a Gradescope run can be simulated in any folder without setup.sh:

    AUTOGRADER_ROOT=/tmp/ag KATA_PYTHON=.venv/bin/python bash /tmp/ag/source/run_autograder

run_autograder grades with this module's command, which always writes results.json once Python runs:

    python -m kata.grading.gradescope SUBMISSION RESULTS [--lesson IDS] [--isolated] [--timeout SECONDS]
"""

import argparse
import io
import math
import sys
import traceback
import zipfile
from pathlib import Path

from ..course.exercises import generate
from ..course.files import write_atomic, write_json
from ..course.manifest import lesson_ids as lesson_ids_of
from ..course.repository import ROOT
from ..sandbox import NotContained
from .grade import grade
from .submission import SubmissionError

VISIBLE = "visible"
FAILURES_SHOWN = 3  # the first failures tell a student where to start; the rest is noise in a collapsed box
OUTPUT_CHARS = 2000  # the longest message shown under a lesson
PACKAGED_FILES = ["grader.py", "manifest.toml", "pyproject.toml", "requirements.txt"]
PACKAGED_DIRS = ["kata", "tests", "solutions"]  # tests/: the graded lesson suites only (meta/ stays out)
# and exercises/, generated afresh (whatever the instructor's copy holds): stubs stand in for files a student left out
SKIPPED = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints"}
ZIP_DATE = (2024, 1, 1, 0, 0, 0)  # a fixed date: the same sources always give the same zip


def _clip(text, limit=OUTPUT_CHARS):
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters; run grader.py locally for the whole message]"


def lesson_output(entry):
    """The text under a lesson on Gradescope: tests passed, the lesson's note, the first distinct failures."""
    lines = [f"{entry.passed}/{entry.total} tests passed, {entry.score:g}/{entry.max_score:g} points."]
    if entry.note:
        lines.append(entry.note)
    groups = {}  # one stub fails many tests with the same message: show it once
    for test in entry.tests:
        if not test.passed:
            groups.setdefault((test.status, test.message), []).append(test.name)
    if groups:
        failing = sum(len(names) for names in groups.values())
        shown = list(groups.items())[:FAILURES_SHOWN]
        more = f", the first {len(shown)} distinct messages" if len(groups) > len(shown) else ""
        lines.append(f"\nFailing tests ({failing}{more}):")
        for (status, message), names in shown:
            also = f" and {len(names) - 1} more with the same message" if len(names) > 1 else ""
            lines.append(f"- {names[0]} [{status}]{also}\n  {_clip(message)}")
    return "\n".join(lines)


def summary(result):
    """The top-level text: the notes on the submission, score, what is complete, and where to go next."""
    mode = ("each lesson graded with the reference code for the other lessons" if result.isolated
            else "your own code used for every lesson, as when your model trains")
    lines = [*result.notes, ""] if result.notes else []
    done = [entry.id for entry in result.lessons if entry.done]
    lines += [f"Score: {result.score:g}/{result.max_score:g} ({mode}).",
              f"Lessons at full marks: {', '.join(done) if done else 'none yet'}."]
    first = result.current
    if first is not None:
        lines.append(f"Next: lesson {first.id} ({first.title}), {first.passed}/{first.total} tests pass.")
        failure = first.first_failure
        if failure:
            lines.append(f"First failure: {failure.name}: {_clip(failure.message, 500)}")
        elif first.note:
            lines.append(first.note)
    lines.append("`python grader.py` on your machine runs the same tests.")
    return "\n".join(lines)


def results_json(result):
    """Gradescope's results.json (as a dict) for a GradeResult."""
    tests = [{"name": f"Lesson {entry.id}: {entry.title}", "number": entry.id, "score": float(entry.score),
              "max_score": entry.max_score, "status": "passed" if entry.done else "failed",
              "output": lesson_output(entry), "visibility": VISIBLE} for entry in result.lessons]
    return {"score": float(round(sum(test["score"] for test in tests), 4)),  # = result.score, as students see it
            "execution_time": math.ceil(float(result.execution_time)),
            "output": summary(result), "visibility": VISIBLE, "stdout_visibility": VISIBLE, "tests": tests}


def error_json(message):
    """results.json for a submission that could not be graded at all: zero, and why."""
    return {"score": 0.0, "execution_time": 0,
            "output": f"The autograder could not grade this submission.\n\n{_clip(message)}",
            "visibility": VISIBLE, "stdout_visibility": VISIBLE, "tests": []}


def write_results(result, path):
    """Write Gradescope's results.json for a grading result (atomically)."""
    write_json(path, results_json(result))


SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image: a .venv with the pinned requirements.
set -euo pipefail
cd "${AUTOGRADER_ROOT:-/autograder}/source"
recent() { command -v "$1" >/dev/null && "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; }
PYTHON=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if recent "$candidate"; then PYTHON="$candidate"; break; fi
done
if [ -z "$PYTHON" ]; then  # the kata needs Python >= 3.11 (tomllib); Ubuntu 22.04 ships 3.10
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y python3.11 python3.11-venv
  PYTHON=python3.11
fi
"$PYTHON" -m venv .venv || {  # Debian-based images split venv into its own package
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$(basename "$PYTHON")-venv" && "$PYTHON" -m venv .venv; }
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
.venv/bin/python -c "import kata.testing.plugin, numpy; print('kata autograder ready, numpy', numpy.__version__)"
# the sandboxed child runs as another uid where the container forbids namespaces (kata/sandbox/): it must be
# able to run this Python, and never to read the reference or the tests
chmod o+x "${AUTOGRADER_ROOT:-/autograder}" . && chmod -R o+rX .venv && chmod -R go-rwx solutions tests
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for each submission: grade /autograder/submission, write /autograder/results/results.json.
# Environment (see kata/grading/gradescope.py): AUTOGRADER_ROOT, KATA_PYTHON, KATA_LESSONS ("03,06"), KATA_ISOLATED (1),
# KATA_TIMEOUT (seconds per lesson).
set -u
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
RESULTS="$ROOT/results/results.json"
PYTHON="${KATA_PYTHON:-$SOURCE/.venv/bin/python}"
LESSONS="${KATA_LESSONS-@LESSONS@}"
ISOLATED="${KATA_ISOLATED:-@ISOLATED@}"
mkdir -p "$ROOT/results"
rm -f "$RESULTS"
fallback() {  # a results.json even when Python cannot run at all
  echo "{\"score\": 0.0, \"output\": \"The autograder failed: $1; see the log.\", \"tests\": []}" >"$RESULTS"
  exit 0
}
cd "$SOURCE" || fallback "no folder $SOURCE"
options=()
if [ -n "$LESSONS" ]; then options+=("--lesson=$LESSONS"); fi
if [ "$ISOLATED" = 1 ]; then options+=(--isolated); fi
if [ -n "${KATA_TIMEOUT:-}" ]; then options+=("--timeout=$KATA_TIMEOUT"); fi
if [ "${KATA_ALLOW_UNCONFINED:-0}" = 1 ]; then options+=(--allow-unconfined); fi
# it writes results.json itself, with the reason when the submission cannot be graded
"$PYTHON" -m kata.grading.gradescope "$ROOT/submission" "$RESULTS" ${options[@]+"${options[@]}"}
echo "kata.grading.gradescope exited with status $?"
[ -f "$RESULTS" ] || fallback "its Python ($PYTHON) could not run"
exit 0
"""


def _add(archive, name, data, executable=False):
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def _sources():
    """(name in the zip, path) for every file the grader needs, sorted."""
    missing = [name for name in PACKAGED_FILES + PACKAGED_DIRS if not (ROOT / name).exists()]
    if missing:
        raise ValueError(f"cannot build the autograder: {', '.join(missing)} missing from {ROOT}")
    files = [(name, ROOT / name) for name in PACKAGED_FILES]
    for folder in PACKAGED_DIRS:
        for path in sorted((ROOT / folder).rglob("*")):
            parts = path.relative_to(ROOT).parts
            if path.is_file() and not SKIPPED & set(parts) and path.suffix != ".pyc":
                files.append(("/".join(parts), path))
    return files


def package(out_path="autograder.zip", lesson_ids=None, isolated=False):
    """Build the autograder zip Gradescope runs (setup.sh and run_autograder at its root); returns its path.

    lesson_ids and isolated become run_autograder's defaults (KATA_LESSONS and KATA_ISOLATED override them).
    """
    lessons_default = "" if lesson_ids is None else ",".join(lesson_ids_of(lesson_ids))
    run = RUN_AUTOGRADER.replace("@LESSONS@", lessons_default).replace("@ISOLATED@", "1" if isolated else "0")
    data = io.BytesIO()  # the sources are a few hundred kB: built in memory, then written at once
    with zipfile.ZipFile(data, "w") as archive:
        _add(archive, "setup.sh", SETUP_SH, executable=True)
        _add(archive, "run_autograder", run, executable=True)
        for name, path in _sources():
            _add(archive, name, path.read_bytes(), executable=path.stat().st_mode & 0o111 != 0)
        for name, text in sorted(generate().items()):
            _add(archive, f"exercises/{name}", text)
    write_atomic(out_path, data.getvalue())
    return Path(out_path)


def run(submission, results, lesson_ids=None, isolated=False, timeout=None, allow_unconfined=False):
    """Grade submission as run_autograder does and write results.json; a submission (or a setting) that cannot
    be graded gets a zero score and the reason, a failure of the grader itself the last lines of its traceback."""
    try:
        result = grade(submission, lesson_ids, isolated=isolated, timeout=timeout, name="submission",
                       allow_unconfined=allow_unconfined)
    except (SubmissionError, NotContained, ValueError) as problem:
        print(problem, file=sys.stderr)
        write_json(results, error_json(str(problem)))
        return
    except Exception:  # the student still gets a results.json, and the log says where the grader failed
        trace = traceback.format_exc()
        print(trace, file=sys.stderr)
        write_json(results, error_json("\n".join(trace.strip().splitlines()[-20:])))
        return
    write_results(result, results)
    print(f"graded {submission}: {result.score:g}/{result.max_score:g} points in {result.execution_time:.1f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kata.grading.gradescope", description=run.__doc__.splitlines()[0])
    parser.add_argument("submission", help="the folder Gradescope puts the upload in")
    parser.add_argument("results", help="the results.json to write")
    parser.add_argument("--lesson", action="append", metavar="ID", help="grade only this lesson (02,03 or repeated)")
    parser.add_argument("--isolated", action="store_true", help="grade each lesson with the reference for the others")
    parser.add_argument("--timeout", metavar="SECONDS", help="time allowed per lesson")
    parser.add_argument("--allow-unconfined", action="store_true",
                        help="grade even where the sandbox cannot confine the submission (code you trust only)")
    args = parser.parse_args(argv)
    run(args.submission, args.results, args.lesson, args.isolated, args.timeout, args.allow_unconfined)
    return 0


if __name__ == "__main__":
    sys.exit(main())
