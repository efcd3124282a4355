"""Gradescope: results.json from a grading result, and the autograder zip that Gradescope runs.

Gradescope's format (Autograder Specifications, "Output format"): a top-level score, execution_time, output,
output_format, visibility, stdout_visibility, and one entry in "tests" per lesson (name, number, score, max_score,
status, output, visibility). Visibility takes Gradescope's four values (VISIBILITIES): a lesson's result and
output are shown to students as `visibility` says (visible by default), and the autograder's stdout, where the
grader's diagnostics go, as `stdout_visibility` says (hidden by default: instructors only). What a student reads
(the top-level output and each lesson's) holds their results and the failures of their own code, never the
grader's diagnostics: what the sandbox could not do on this machine, a refusal to run code it cannot confine, a
traceback of the grader itself. Those are printed to stdout. (What the submission's code prints is not kept: the
sandboxed child's stdout is /dev/null, kata/sandbox/supervisor.py.)

The zip holds setup.sh (run once when Gradescope builds the image: a .venv with the pinned requirements) and
run_autograder (run for each submission). package() bakes its choices into run_autograder as defaults, and these
environment variables override them:

    AUTOGRADER_ROOT  the folder holding source/, submission/ and results/ (default /autograder)
    KATA_PYTHON      the Python to grade with (default source/.venv/bin/python, made by setup.sh)
    KATA_LESSONS     comma-separated lesson ids to grade, e.g. "03,06"; set but empty: all lessons
    KATA_ISOLATED    1 to grade each lesson with the reference for the others, 0 not to
    KATA_TIMEOUT     seconds allowed per lesson (default: package()'s timeout, else kata/grading/settings.py's)
    KATA_VISIBILITY, KATA_STDOUT_VISIBILITY  the lessons' and stdout's: visible, after_due_date, after_published, hidden
    KATA_VARIANT     a SEED: every lesson graded again on a hidden variant, shown after the due date (variants.py)
    KATA_ALLOW_UNCONFINED  1 to grade even where the sandbox cannot confine a submission (trusted code only)

so a Gradescope run can be simulated in any folder without setup.sh:

    AUTOGRADER_ROOT=/tmp/ag KATA_PYTHON=.venv/bin/python bash /tmp/ag/source/run_autograder

run_autograder grades with this module's command, which checks every setting, then always writes results.json:

    python -m kata.grading.gradescope SUBMISSION RESULTS [--lesson IDS] [--isolated 0|1] [--timeout SECONDS]
        [--visibility V] [--stdout-visibility V] [--allow-unconfined 0|1] [--variant SEED]

and exits as run_autograder does: 0 once the submission was graded, or could not be (its results say why: the
student's to fix); 1 when the autograder itself failed (results.json says so; stdout says why); 2 when a setting
is bad (results.json says the autograder is misconfigured, and which setting). Where Python cannot run at all,
run_autograder writes a results.json of fixed text (valid JSON whatever the paths hold) and exits 1.
"""

import argparse
import io
import json
import math
import shlex
import sys
import traceback
import zipfile
from pathlib import Path

from ..course.exercises import generate
from ..course.files import OutputPathError, check_output, write_atomic, write_json
from ..course.manifest import lesson_ids as lesson_ids_of
from ..course.repository import ROOT
from ..sandbox import NotContained
from . import variants
from .grade import grade
from .messages import middle_cut
from .settings import DEFAULT_SECONDS, Settings
from .submission import SubmissionError

VISIBILITIES = ("visible", "after_due_date", "after_published", "hidden")  # Gradescope's four values
VISIBILITY = "visible"  # the lessons' results and outputs: students see them at once
STDOUT_VISIBILITY = "hidden"  # stdout, where the grader's diagnostics go: instructors only
GRADED, FAILED, MISCONFIGURED = 0, 1, 2  # the exit statuses of main() and of run_autograder
FAILURES_SHOWN = 3  # the first failures tell a student where to start; the rest is noise in a collapsed box
OUTPUT_CHARS = 2000  # the longest message shown under a lesson
PACKAGED_FILES = ["grader.py", "manifest.toml", "pyproject.toml", "requirements.lock"]
PACKAGED_DIRS = ["kata", "tests", "solutions"]  # tests/: the graded lesson suites only (meta/ stays out)
# and exercises/, generated afresh (whatever the instructor's copy holds): stubs stand in for files a student left out
SKIPPED = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints"}
ZIP_DATE = (2024, 1, 1, 0, 0, 0)  # a fixed date: the same sources always give the same zip
NOT_YOURS = ("This says nothing about your work: your instructor can see the details in the autograder's output, "
             "and can regrade once the autograder is fixed.")


def checked_visibility(value, what="visibility"):
    """value when it is one of Gradescope's VISIBILITIES; ValueError otherwise."""
    if value not in VISIBILITIES:
        raise ValueError(f"{what} {value!r}: expected one of {', '.join(VISIBILITIES)}")
    return value


def _clip(text, limit=OUTPUT_CHARS):
    """text in at most limit characters (and a note when shortened): the middle is cut, never the pointer to the
    lesson (messages.middle_cut)."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return middle_cut(text, limit) + "\n[shortened; run grader.py locally for the whole message]"


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
    """The top-level text: the notes on the submission, score, what is complete, and where to go next (the notes
    on the machine, result.machine_notes, are for the instructor: run() prints them)."""
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


def _results(output, visibility, stdout_visibility, score=0.0, seconds=0, tests=()):
    """Gradescope's results.json (as a dict); output as plain text (the default, simple_format, reads HTML)."""
    return {"score": score, "execution_time": seconds, "output": output, "output_format": "text",
            "visibility": visibility, "stdout_visibility": stdout_visibility, "tests": list(tests)}


def results_json(result, visibility=VISIBILITY, stdout_visibility=STDOUT_VISIBILITY):
    """Gradescope's results.json (as a dict) for a GradeResult; each lesson is shown as visibility says."""
    tests = [{"name": f"Lesson {entry.id}: {entry.title}", "number": entry.id, "score": float(entry.score),
              "max_score": entry.max_score, "status": "passed" if entry.done else "failed",
              "output": lesson_output(entry), "visibility": visibility} for entry in result.lessons]
    tests += variants.gradescope_tests(result, lesson_output)  # a hidden variant's entries (none without one)
    return _results(summary(result), visibility, stdout_visibility,
                    score=float(round(sum(test["score"] for test in tests), 4)),  # (+ the variant's: variants.py)
                    seconds=math.ceil(float(result.execution_time)), tests=tests)


def error_json(message, visibility=VISIBILITY, stdout_visibility=STDOUT_VISIBILITY):
    """results.json for a submission that could not be graded at all: zero, and why (the student's to fix)."""
    return _results(f"The autograder could not grade this submission.\n\n{_clip(message)}", visibility,
                    stdout_visibility)


def failure_json(reason, visibility=VISIBILITY, stdout_visibility=STDOUT_VISIBILITY):
    """results.json when the autograder itself failed: zero, that it is not the student's doing, and the reason in
    a few words (the details are in stdout)."""
    return _results(f"The autograder failed and could not grade this submission: {reason}.\n\n{NOT_YOURS}",
                    visibility, stdout_visibility)


def misconfigured_json(problem):
    """results.json when a setting of the autograder is bad: zero, and which setting (the instructor's to fix)."""
    return _results(f"The autograder is misconfigured and could not grade this submission: {_clip(problem)}.\n\n"
                    "This says nothing about your work: your instructor has to correct the autograder's settings "
                    "(its environment variables), then regrade.", VISIBILITY, STDOUT_VISIBILITY)


def write_results(result, path, visibility=VISIBILITY, stdout_visibility=STDOUT_VISIBILITY):
    """Write Gradescope's results.json for a grading result (atomically)."""
    write_json(path, results_json(result, visibility, stdout_visibility))


SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image: a .venv with the locked dependencies.
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
# the kata's declared dependencies (pyproject.toml) at the versions of requirements.lock, as `make setup` installs them
.venv/bin/python -m pip install --quiet --disable-pip-version-check --constraint requirements.lock --upgrade setuptools
.venv/bin/python -m pip install --quiet --disable-pip-version-check --constraint requirements.lock \
  --no-build-isolation --editable .
.venv/bin/python -c "import kata.testing.plugin, numpy; print('kata autograder ready, numpy', numpy.__version__)"
# the sandboxed child runs as another uid where the container forbids namespaces (kata/sandbox/): it must be
# able to run this Python, and never to read the reference or the tests
chmod o+x "${AUTOGRADER_ROOT:-/autograder}" . && chmod -R o+rX .venv && chmod -R go-rwx solutions tests
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for each submission: grade /autograder/submission, write /autograder/results/results.json.
# The defaults below are what `grader.py package-gradescope` was given; the environment overrides them (see
# kata/grading/gradescope.py): KATA_LESSONS ("03,06"), KATA_ISOLATED (0 or 1), KATA_TIMEOUT (seconds per lesson),
# KATA_VISIBILITY and KATA_STDOUT_VISIBILITY (visible, after_due_date, after_published or hidden), and
# KATA_ALLOW_UNCONFINED (1: grade where the sandbox cannot confine the code), KATA_VARIANT (a SEED). Python checks.
# All this prints is Gradescope's stdout (the grader's diagnostics), which students see as stdout_visibility says.
# Exit status: 0 graded (or the submission could not be: results.json says why), 1 the autograder failed,
# 2 a bad setting (results.json says the autograder is misconfigured).
set -u
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
RESULTS="$ROOT/results/results.json"
PYTHON="${KATA_PYTHON:-$SOURCE/.venv/bin/python}"
FALLBACK=@FALLBACK@
fallback() {  # a results.json of fixed text even when Python cannot run at all; why goes to stdout only
  printf 'run_autograder: %s\n' "$1"
  printf '%s\n' "$FALLBACK" >"$RESULTS"
  exit 1
}
mkdir -p "$ROOT/results"
rm -f "$RESULTS"
cd "$SOURCE" || fallback "no folder $SOURCE"
# it writes results.json itself: the results, or why the submission could not be graded, or which setting is bad
"$PYTHON" -m kata.grading.gradescope "$ROOT/submission" "$RESULTS" "--lesson=${KATA_LESSONS-@LESSONS@}" \
  "--isolated=${KATA_ISOLATED:-@ISOLATED@}" "--timeout=${KATA_TIMEOUT:-@TIMEOUT@}" \
  "--visibility=${KATA_VISIBILITY:-@VISIBILITY@}" "--stdout-visibility=${KATA_STDOUT_VISIBILITY:-@STDOUT_VISIBILITY@}" \
  "--allow-unconfined=${KATA_ALLOW_UNCONFINED:-0}" "--variant=${KATA_VARIANT-@VARIANT@}" 2>&1
status=$?
echo "kata.grading.gradescope exited with status $status"
[ -f "$RESULTS" ] || fallback "its Python ($PYTHON) could not run, or stopped before it wrote results.json"
exit "$status"
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


def run_autograder(lesson_ids=None, isolated=False, timeout=None, visibility=VISIBILITY,
                   stdout_visibility=STDOUT_VISIBILITY, variant=None):
    """The text of run_autograder with these defaults (checked: ValueError as package() says)."""
    visibility = checked_visibility(visibility)
    stdout_visibility = checked_visibility(stdout_visibility, "stdout visibility")
    fallback = failure_json("its Python could not run", visibility, stdout_visibility)
    defaults = {"@LESSONS@": "" if lesson_ids is None else ",".join(lesson_ids_of(lesson_ids)),
                "@ISOLATED@": "1" if isolated else "0", "@VARIANT@": variants.text(variant),
                "@TIMEOUT@": "" if timeout is None else repr(Settings.checked(timeout).lesson_seconds),
                "@VISIBILITY@": visibility, "@STDOUT_VISIBILITY@": stdout_visibility,
                "@FALLBACK@": shlex.quote(json.dumps(fallback))}  # ASCII, quoted for the shell
    text = RUN_AUTOGRADER
    for placeholder, value in defaults.items():
        text = text.replace(placeholder, value)
    return text


def package(out_path="autograder.zip", lesson_ids=None, isolated=False, timeout=None, visibility=VISIBILITY,
            stdout_visibility=STDOUT_VISIBILITY, variant=None):
    """Build the autograder zip Gradescope runs (setup.sh and run_autograder at its root); returns its path.

    The arguments become run_autograder's defaults (the KATA_* variables override them): the lessons to grade
    (None: all), isolated, the seconds per lesson (None: settings.py's), the visibility of the lessons' results
    and of stdout (Gradescope's VISIBILITIES). An unknown lesson, a timeout that is not a positive, finite number
    of seconds, an unknown visibility or a variant that is no seed raises ValueError, and nothing is written.
    """
    script = run_autograder(lesson_ids, isolated, timeout, visibility, stdout_visibility, variant)
    data = io.BytesIO()  # the sources are a few hundred kB: built in memory, then written at once
    with zipfile.ZipFile(data, "w") as archive:
        _add(archive, "setup.sh", SETUP_SH, executable=True)
        _add(archive, "run_autograder", script, executable=True)
        for name, path in _sources():
            _add(archive, name, path.read_bytes(), executable=path.stat().st_mode & 0o111 != 0)
        for name, text in sorted(generate().items()):
            _add(archive, f"exercises/{name}", text)
    write_atomic(out_path, data.getvalue())
    return Path(out_path)


def run(submission, results, lesson_ids=None, isolated=False, timeout=None, allow_unconfined=False,
        visibility=VISIBILITY, stdout_visibility=STDOUT_VISIBILITY, variant=None):
    """Grade submission as run_autograder does, write results.json and return the exit status (GRADED, FAILED).

    Settings are checked before (main()). A submission that cannot be graded gets a zero score and the reason; a
    failure of the autograder (the sandbox refusing this machine, the grader's own error) a zero score saying so,
    with the details printed to stdout, as is every diagnostic: only the instructor reads them by default."""
    shown = {"visibility": visibility, "stdout_visibility": stdout_visibility}
    print(f"grading {submission}: lessons {','.join(lesson_ids) if lesson_ids else 'all'}, isolated "
          f"{'yes' if isolated else 'no'}, {timeout or DEFAULT_SECONDS:g} s per lesson, visibility {visibility}, "
          f"stdout visibility {stdout_visibility}, variant {'none' if variant is None else variant}", flush=True)
    try:
        result = grade(submission, lesson_ids, isolated=isolated, timeout=timeout, name="submission",
                       allow_unconfined=allow_unconfined, variant=variant)
    except SubmissionError as problem:  # the student's to fix: results.json says why
        print(f"the submission could not be graded: {problem}")
        write_json(results, error_json(str(problem), **shown))
        return GRADED
    except NotContained as refusal:  # this machine's: the instructor's to fix
        print(f"the grading was refused: {refusal}")
        write_json(results, failure_json("the grading machine cannot safely run submitted code", **shown))
        return FAILED
    except Exception:  # the student still gets a results.json, and the log says where the grader failed
        print(f"the grader failed:\n{traceback.format_exc()}")
        write_json(results, failure_json("an error in the grader itself", **shown))
        return FAILED
    for note in result.machine_notes:
        print(f"note: {note}")
    for entry in result.lessons:  # the submission's own print output (never from a run beside the reference)
        if entry.printed.strip():
            print(f"--- what the submission printed during lesson {entry.id} (its last "
                  f"{len(entry.printed)} characters) ---\n{entry.printed.rstrip()}\n---")
    write_results(result, results, **shown)
    print(f"graded: {result.score:g}/{result.max_score:g} points in {result.execution_time:.1f} s")
    return GRADED


def _lessons(values):
    return (lesson_ids_of(values) or None) if values else None  # "" or "," (set but empty): every lesson


def _timeout(value):
    return None if value in (None, "") else Settings.checked(value).lesson_seconds


def _flag(value):
    if value not in ("0", "1"):
        raise ValueError(f"{value!r}: expected 0 or 1")
    return value == "1"


def checked_settings(args):
    """run()'s keywords from main()'s arguments (strings, as run_autograder passes them); ValueError naming
    every bad one by the environment variable that set it (package() checked the defaults it wrote)."""
    checks = {"lesson_ids": ("KATA_LESSONS", _lessons, args.lesson),
              "isolated": ("KATA_ISOLATED", _flag, args.isolated),
              "timeout": ("KATA_TIMEOUT", _timeout, args.timeout),
              "visibility": ("KATA_VISIBILITY", checked_visibility, args.visibility),
              "stdout_visibility": ("KATA_STDOUT_VISIBILITY", checked_visibility, args.stdout_visibility),
              "allow_unconfined": ("KATA_ALLOW_UNCONFINED", _flag, args.allow_unconfined),
              "variant": ("KATA_VARIANT", variants.checked, args.variant)}
    settings, problems = {}, []
    for name, (variable, check, value) in checks.items():
        try:
            settings[name] = check(value)
        except ValueError as error:
            problems.append(f"{variable}: {error}")
    if problems:
        raise ValueError("; ".join(problems))
    return settings


def main(argv=None):
    """Check the settings, grade, write results.json; the exit status (GRADED, FAILED, MISCONFIGURED)."""
    parser = argparse.ArgumentParser(prog="python -m kata.grading.gradescope", description=run.__doc__.splitlines()[0])
    parser.add_argument("submission", help="the folder Gradescope puts the upload in")
    parser.add_argument("results", help="the results.json to write")
    parser.add_argument("--lesson", action="append", metavar="IDS", help="grade only these lessons (02,03 or "
                        "repeated; default: all)")
    flag = {"nargs": "?", "const": "1", "default": "0", "metavar": "0|1"}
    parser.add_argument("--isolated", **flag, help="1: grade each lesson with the reference for the others (default 0)")
    parser.add_argument("--timeout", metavar="SECONDS", help=f"time allowed per lesson (default {DEFAULT_SECONDS:g})")
    parser.add_argument("--visibility", default=VISIBILITY, help=f"the lessons' visibility (default {VISIBILITY})")
    parser.add_argument("--stdout-visibility", default=STDOUT_VISIBILITY, help="stdout's visibility (default hidden)")
    parser.add_argument("--allow-unconfined", **flag,
                        help="1: grade even where the sandbox cannot confine the submission (code you trust only; "
                             "default 0)")
    parser.add_argument("--variant", default="", metavar="SEED", help="grade again on a hidden variant (default: none)")
    args = parser.parse_args(argv)  # no choices: a bad value is reported in results.json, below
    try:
        check_output(args.results, "results")
    except OutputPathError as error:  # nowhere to report anything else
        print(f"the autograder is misconfigured: {error}")
        return MISCONFIGURED
    try:
        settings = checked_settings(args)
    except ValueError as problem:
        print(f"the autograder is misconfigured: {problem}")
        write_json(args.results, misconfigured_json(str(problem)))
        return MISCONFIGURED
    return run(args.submission, args.results, **settings)


if __name__ == "__main__":
    sys.exit(main())
