"""The students' edition's own checks (`make test` there; written as meta/test_edition.py by the release).

They check the kata's tools, never your exercises/: the recorded expected values exist for every lesson test and
the shipped stubs fail every one of them with their own message (graded from a fresh copy of the stubs, whatever
exercises/ holds), and the student commands run. `make grade` grades your work.
"""

import json
import subprocess
import sys

import pytest

from kata.course.exercises import pristine
from kata.course.manifest import lessons
from kata.course.repository import ROOT, has_reference

pytestmark = pytest.mark.meta
STUB_MESSAGE = "is not implemented yet"  # what every stub raises (kata/course/exercises.py: stub_source)


def run(*arguments, check=True):
    done = subprocess.run([sys.executable, *arguments], cwd=ROOT, capture_output=True, text=True, timeout=900)
    if check:
        assert done.returncode == 0, f"{' '.join(arguments)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done


def test_this_copy_is_the_students_edition():
    assert not has_reference() and not (ROOT / "kata" / "instructor").exists()
    assert "__init__.py" in pristine(), "kata/course/stubs.json, the shipped stubs, is missing"
    assert any((ROOT / "tests" / "recorded").glob("test_lesson*.json")), "tests/recorded/ is missing"


@pytest.fixture(scope="module")
def stubs_graded(tmp_path_factory):
    """The grader's JSON for a fresh copy of the shipped stubs (not exercises/: it holds your work)."""
    folder = tmp_path_factory.mktemp("edition") / "stubs"
    folder.mkdir()
    for name, text in pristine().items():
        (folder / name).write_text(text, encoding="utf-8")
    out = folder.parent / "stubs.json"
    run("grader.py", "--impl", str(folder), "--no-sandbox", "--json", str(out))
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.mark.parametrize("lesson_id", [item.id for item in lessons()])
def test_the_stubs_fail_every_test_of_the_lesson_with_their_own_message(stubs_graded, lesson_id):
    result = next(entry for entry in stubs_graded["lessons"] if entry["id"] == lesson_id)
    assert result["total"] > 0 and result["passed"] == 0 and result["score"] == 0, result
    for test in result["tests"]:
        # (a test whose recorded value is missing would fail with "no recorded expected value" instead)
        assert STUB_MESSAGE in test["message"], f"{test['name']}: {test['message'][:300]}"


def test_the_student_commands_run():
    assert "hint" in run("grader.py", "--help").stdout
    for script in ("train.py", "play.py"):
        run(script, "--help")
    refused = run("grader.py", "--impl", "solutions", check=False)
    assert refused.returncode == 2 and "no reference implementation" in refused.stderr, refused.stderr


def test_make_help_lists_no_target_that_needs_the_reference():
    listed = run("make.py", "help").stdout
    for name in ("exercises", "bench", "release"):
        assert f"  {name} " not in listed, listed
