"""The students' edition: `python grader.py release --out DIR [--hint-levels N]`.

DIR (new, or an empty folder) receives a repository a class can be given: the lessons and their notebooks, the
stubs in exercises/, the graded lesson suites with the reference's expected values recorded into tests/recorded/
(the edition has no reference to compute them), the grader's student commands, train.py and play.py, the
pretrained checkpoint, and the edition's own checks in meta/ (kata/instructor/edition_checks.py). Left out:
solutions/, kata/instructor/ (so the grader registers no instructor command), the catalogue and the adversarial
suite (meta/), benchmarks/, ARCHITECTURE.md, .ci/ and the history.

The texts have one source: README.md, the lesson texts and CONTRACT.md mark what the edition leaves out or adds
(edition_text below), and the edition's notebooks are generated from the edition's lesson texts by the same
generator (kata/authoring/notebooks.py). The edition is built in a hidden folder beside DIR and moved into place
only once complete: a failed release leaves nothing behind.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from ..course.exercises import generate
from ..course.files import check_output, write_atomic
from ..course.repository import ROOT, SHIPPED_STUBS
from ..student.hints import LEVELS
from . import leaks

COMMAND = "release"
# what the edition holds, copied as it is (the texts with edition markers are written by edition_text)
FILES = ["grader.py", "train.py", "play.py", "make.py", "Makefile", "pyproject.toml", "requirements.lock",
         "manifest.toml", ".gitignore", ".gitattributes"]
TEXTS = ["README.md", "CONTRACT.md"]  # and every lessons/*.md
FOLDERS = ["checkpoints"]
TEST_FILES = ["__init__.py", "helpers.py", "positions.py"]  # and every tests/test_lesson*.py
# kata/instructor/: the instructor's commands, this module; the grading's batch and Gradescope modules, which only
# the instructor's commands reach (the autograder is built from the instructor's kata)
LEFT_OUT_OF_KATA = ("instructor", "__pycache__", "batch.py", "gradescope.py", "variants.py")
EDITION_CHECKS = Path(__file__).with_name("edition_checks.py")  # the edition's meta/test_edition.py
RECORD_SECONDS = 1800
HINT_LEVELS = 2  # the hint levels an edition gives by default: the third quotes the reference's lines
# edition markers, each on a line of its own: the lines between LEAVE_OUT and END are not in the edition; the lines
# between ONLY and its closing "-->" are in the edition alone (an HTML comment elsewhere: never rendered); a line
# ending with LEAVE_OUT_LINE (a table's row, say, where a comment line would end the table) is not in the edition
LEAVE_OUT, END, ONLY, ONLY_END = "<!-- edition: leave out -->", "<!-- edition: end -->", "<!-- edition: only", "-->"
LEAVE_OUT_LINE = "<!-- edition: leave out this line -->"


class ReleaseError(Exception):
    """The release could not be made; nothing was written. The message says why."""


def add_command(commands):
    release = commands.add_parser(COMMAND, help="write the students' edition: no solutions/, no catalogue, the "
                                                "reference's expected values recorded")
    release.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder to write it into")
    release.add_argument("--hint-levels", type=_levels, default=HINT_LEVELS, metavar="N",
                         help=f"give the first N hint levels of each exercise (1 to {LEVELS}; default {HINT_LEVELS}: "
                              f"the last level quotes the reference's lines, and with {LEVELS} the release names "
                              "each one the edition then holds)")


def _levels(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= LEVELS:
        raise argparse.ArgumentTypeError(f"expected a number of levels from 1 to {LEVELS}, got {text!r}")
    return value


def run_command(args):
    start = time.monotonic()
    try:
        folder = release(args.out, args.hint_levels)
    except ReleaseError as error:
        print(f"grader.py release: {error}", file=sys.stderr)
        return 1
    print(f"wrote the students' edition to {folder} in {time.monotonic() - start:.0f} s")
    return 0


# ---------------------------------------------------------------- one source for the texts

def edition_text(text, name="the text"):
    """text as the students' edition has it: the LEAVE_OUT ... END blocks and the LEAVE_OUT_LINE lines dropped, the
    ONLY ... --> blocks kept without their comment lines. ValueError for markers that do not pair up."""
    out, state = [], None
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        marker = line.strip()
        if state is None and marker == LEAVE_OUT:
            state = ("out", number)
        elif state is None and marker == ONLY:
            state = ("only", number)
        elif state and state[0] == "out" and marker == END:
            state = None
        elif state and state[0] == "only" and marker == ONLY_END:
            state = None
        elif marker in (LEAVE_OUT, ONLY, END):
            raise ValueError(f"{name} line {number}: {marker} inside the edition block of line {state[1]}"
                             if state else f"{name} line {number}: {marker} without the marker that opens it")
        elif marker.endswith(LEAVE_OUT_LINE):
            continue
        elif state is None or state[0] == "only":
            out.append(line)
    if state:
        raise ValueError(f"{name} line {state[1]}: an edition block that is never closed")
    return "".join(out)


def hints_text(text, levels):
    """hints.toml with only the first levels of each exercise (its top-level `levels` says how many it gives)."""
    data = tomllib.loads(text)
    lines = [f"# Hints for every exercise: the first {levels} of the {LEVELS} levels (this edition of the kata "
             f"gives no more).", "# `python grader.py hint LESSON [SYMBOL]` shows them one level at a time.", "",
             f"levels = {levels}", ""]
    for entry in data.get("hint", []):
        lines += ["[[hint]]", f"lesson = {json.dumps(entry['lesson'])}", f"symbol = {json.dumps(entry['symbol'])}",
                  "levels = ["]
        lines += [f"  {json.dumps(level, ensure_ascii=False)}," for level in entry["levels"][:levels]]
        lines += ["]", ""]
    result = "\n".join(lines)
    if tomllib.loads(result)["hint"] != [dict(entry, levels=entry["levels"][:levels]) for entry in data["hint"]]:
        raise ReleaseError("lessons/hints.toml could not be written again with fewer levels")  # (a quoting slip)
    return result


# ---------------------------------------------------------------- the release

def release(out, hint_levels=None, say=print, recorded_from=None):
    """Write the students' edition into out (a new or empty folder); returns its path.

    hint_levels: give only that many hint levels per exercise (default HINT_LEVELS; LEVELS: all). recorded_from: a tests/recorded/
    folder to copy rather than recording the reference's values again (the suite's second edition of a session).
    ReleaseError (nothing written) when the reference fails a lesson test; OutputPathError for an unusable out."""
    hint_levels = HINT_LEVELS if hint_levels is None else hint_levels
    out = check_output(out, "--out", folder=True, kind="empty").absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        write_edition(work, hint_levels)
        if recorded_from is None:
            record(work / "tests" / "recorded", say)
        else:
            shutil.copytree(recorded_from, work / "tests" / "recorded")
        generate_notebooks(work)
        hits = leaks.scan(work)
        if hits:
            say(f"warning: {len(hits)} lines of the reference's solution regions are in the edition:")
            for hit in hits:
                say(f"  {hit}")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(work, 0o777 & ~umask)  # (mkdtemp made it private to its owner)
        if out.is_dir():
            out.rmdir()  # (empty: checked above; a file put there since makes this fail, and nothing is lost)
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out


def write_edition(folder, hint_levels=None):
    """Every file of the edition but the recorded values and the notebooks."""
    for name in FILES:
        shutil.copy2(ROOT / name, folder / name)
    for name in TEXTS:
        write_atomic(folder / name, edition_text((ROOT / name).read_text(encoding="utf-8"), name))
    for path in sorted((ROOT / "lessons").glob("*.md")):
        write_atomic(folder / "lessons" / path.name,
                     edition_text(path.read_text(encoding="utf-8"), f"lessons/{path.name}"))
    hints = (ROOT / "lessons" / "hints.toml").read_text(encoding="utf-8")
    write_atomic(folder / "lessons" / "hints.toml",
                 hints if hint_levels in (None, LEVELS) else hints_text(hints, hint_levels))
    for name in FOLDERS:
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "kata", folder / "kata", ignore=shutil.ignore_patterns(*LEFT_OUT_OF_KATA, "*.pyc"))
    stubs = generate()
    write_atomic(folder / SHIPPED_STUBS.relative_to(ROOT), json.dumps(stubs, indent=1, sort_keys=True) + "\n")
    for name, text in stubs.items():
        write_atomic(folder / "exercises" / name, text)
    (folder / "tests").mkdir()
    for path in [*(ROOT / "tests" / name for name in TEST_FILES), *lesson_test_files()]:
        if path.is_file():
            shutil.copy2(path, folder / "tests" / path.name)
    write_atomic(folder / "meta" / "test_edition.py", EDITION_CHECKS.read_text(encoding="utf-8"))


def lesson_test_files():
    return sorted((ROOT / "tests").glob("test_lesson*.py"))


def record(folder, say=print):
    """The reference's expected values of every lesson test, recorded into folder; ReleaseError with the failures
    when a test does not pass on the reference (an edition whose tests the reference fails is not released)."""
    say("recording the reference's expected values (every lesson test, on solutions/)...")
    # (-p no:kata: the plugin is loaded by name, not also as the installed entry point, which may be missing)
    command = [sys.executable, "-m", "pytest", "-p", "no:kata", "-p", "kata.testing.plugin", "--impl", "solutions",
               "--expected", "record", "--recorded-dir", str(folder), "-q", "-rfE", "--tb=line",
               "-p", "no:cacheprovider", *map(str, lesson_test_files())]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=RECORD_SECONDS,
                              env=dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1"))
    except subprocess.TimeoutExpired:
        raise ReleaseError(f"recording the expected values took over {RECORD_SECONDS} s: nothing was released") \
            from None
    if done.returncode != 0:
        failures = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        shown_lines = "\n".join(failures or done.stdout.splitlines()[-30:] + done.stderr.splitlines()[-10:])
        raise ReleaseError(f"the lesson tests do not all pass on the reference, so nothing was released "
                           f"(exit {done.returncode}):\n{shown_lines}")
    if not any(folder.glob("*.json")):
        raise ReleaseError("no expected value was recorded (no lesson test calls expect()): nothing was released")


def generate_notebooks(folder):
    """The edition's notebooks, generated from its own lesson texts by its own copy of the generator."""
    done = subprocess.run([sys.executable, "-m", "kata.authoring.notebooks"], cwd=folder, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(folder)))
    if done.returncode != 0:
        raise ReleaseError(f"generating the edition's notebooks failed:\n{done.stdout}{done.stderr}")
