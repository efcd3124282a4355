"""Tests of the Gradescope output: results.json per Gradescope's specification, and the autograder zip run in a
simulated Gradescope folder layout (submission in, results.json out), without setup.sh: KATA_PYTHON points
run_autograder at this Python and KATA_LESSONS keeps it to two fast lessons."""

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile

import pytest

from kata.course.exercises import generate
from kata.course.manifest import lesson
from kata.course.repository import ROOT
from kata.grading.gradescope import FAILURES_SHOWN, main, package, results_json, write_results
from kata.grading.results import GradeResult, LessonResult, TestOutcome

pytestmark = pytest.mark.meta

VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def synthetic_result(message=None):
    """A GradeResult: lesson 03 complete, lesson 06 with five failures (their message, if given) and a note."""
    failures = [TestOutcome(f"test_loss_{i}", "failed", message or f"loss {i} is wrong") for i in range(5)]
    return GradeResult("/tmp/sub", False, False, execution_time=3.2, lessons=(
        LessonResult("03", lesson("03").title, 12, (TestOutcome("test_linear", "passed"),
                                                    TestOutcome("test_relu", "passed"))),
        LessonResult("06", lesson("06").title, 6, (TestOutcome("test_ok", "passed"), *failures[:2],
                                                   TestOutcome("test_other", "passed"),
                                                   TestOutcome("test_more", "passed"), *failures[2:]),
                     run_note="loss.py: see the section on softmax")))


def check_spec(data):
    """data has the fields and types of Gradescope's results.json, and the top-level score is the tests' total."""
    assert set(data) == {"score", "execution_time", "output", "visibility", "stdout_visibility", "tests"}
    assert isinstance(data["score"], float) and isinstance(data["execution_time"], int)
    assert isinstance(data["output"], str) and data["output"]
    assert data["visibility"] in VISIBILITY and data["stdout_visibility"] in VISIBILITY
    for test in data["tests"]:
        assert set(test) == {"name", "number", "score", "max_score", "status", "output", "visibility"}, test
        assert isinstance(test["score"], float) and isinstance(test["max_score"], float)
        assert test["status"] in ("passed", "failed") and test["visibility"] in VISIBILITY
        assert test["status"] == ("passed" if test["score"] == test["max_score"] else "failed")
        assert test["name"] == f"Lesson {test['number']}: {lesson(test['number']).title}"
    assert data["score"] == pytest.approx(sum(test["score"] for test in data["tests"]))


def test_results_json_follows_gradescopes_specification():
    data = results_json(synthetic_result())
    check_spec(data)
    assert data["score"] == 14.25 and data["execution_time"] == 4
    assert [t["number"] for t in data["tests"]] == ["03", "06"]
    assert [(t["score"], t["max_score"], t["status"]) for t in data["tests"]] == [(12.0, 12.0, "passed"),
                                                                               (2.25, 6.0, "failed")]
    assert data["tests"][0]["name"] == "Lesson 03: Residual connections, layer norm, feed-forward"
    six = data["tests"][1]["output"]
    assert six.startswith("3/8 tests passed, 2.25/6 points.") and "loss.py: see the section on softmax" in six
    shown = [f"loss {i} is wrong" in six for i in range(5)]
    assert shown == [i < FAILURES_SHOWN for i in range(5)], f"only the first {FAILURES_SHOWN} failures: {six}"
    assert "Failing tests (5, the first 3 distinct messages)" in six
    assert "Score: 14.25/18" in data["output"] and "Next: lesson 06" in data["output"]
    assert "test_loss_0: loss 0 is wrong" in data["output"], "the summary names the first failure"


def test_identical_failures_are_shown_once():
    result = synthetic_result("CrossEntropyLoss.forward (lesson 06) is not implemented yet")
    six = results_json(result)["tests"][1]["output"]
    assert six.count("is not implemented yet") == 1, six
    assert "- test_loss_0 [failed] and 4 more with the same message" in six, six


def test_write_results_writes_the_json_atomically(tmp_path):
    path = tmp_path / "results" / "results.json"
    write_results(synthetic_result(), path)
    assert json.loads(path.read_text()) == results_json(synthetic_result())
    assert [p.name for p in path.parent.iterdir()] == ["results.json"], "no temporary file is left behind"


def test_package_holds_what_gradescope_runs_and_nothing_else(tmp_path):
    first, second = package(tmp_path / "a.zip"), package(tmp_path / "b.zip")
    assert first.read_bytes() == second.read_bytes(), "the same sources must give the same zip"
    with zipfile.ZipFile(first) as archive:
        infos = {info.filename: info for info in archive.infolist()}
    names = set(infos)
    for required in ["setup.sh", "run_autograder", "grader.py", "manifest.toml", "pyproject.toml", "requirements.txt",
                     "kata/grading/grade.py", "kata/testing/plugin.py", "tests/test_lesson06_loss.py", "solutions/loss.py",
                     "exercises/loss.py"]:
        assert required in names, f"{required} missing from the autograder zip"
    unwanted = [n for n in names if "__pycache__" in n or n.startswith((".venv", "lessons/", "notebooks/", "meta/"))]
    assert not unwanted, f"the zip should not hold {unwanted[:5]}"
    tests = sorted(n for n in names if n.startswith("tests/"))
    assert tests == sorted(f"tests/{p.name}" for p in (ROOT / "tests").glob("*.py")), "only the graded lesson suites"
    with zipfile.ZipFile(first) as archive:
        shipped = {name: archive.read(f"exercises/{name}").decode() for name in generate()}
    assert shipped == generate(), "exercises/ in the zip: the stubs as generated, whatever the local copy holds"
    for script in ("setup.sh", "run_autograder"):
        assert (infos[script].external_attr >> 16) & 0o111, f"{script} must be executable"


@pytest.fixture
def gradescope(tmp_path):
    """A simulated /autograder: the package unzipped into source/, an empty submission/; returns a runner."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(package(tmp_path / "autograder.zip")) as archive:
        archive.extractall(root / "source")
    (root / "submission").mkdir()

    def run(lessons="03,06", python=sys.executable):
        for script in ("setup.sh", "run_autograder"):
            syntax = subprocess.run(["bash", "-n", str(root / "source" / script)], capture_output=True, text=True)
            assert syntax.returncode == 0, f"{script} has a syntax error: {syntax.stderr}"
        # (the submissions graded here are trusted: they may run where the sandbox cannot confine them)
        env = dict(os.environ, AUTOGRADER_ROOT=str(root), KATA_PYTHON=python, KATA_LESSONS=lessons,
                   KATA_ALLOW_UNCONFINED="1", OPENBLAS_NUM_THREADS="1")
        start = time.perf_counter()
        proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], cwd=root, env=env,
                              capture_output=True, text=True, timeout=300)
        seconds = time.perf_counter() - start
        assert proc.returncode == 0, f"run_autograder must always exit 0:\n{proc.stdout}\n{proc.stderr}"
        results = root / "results" / "results.json"
        assert results.is_file(), f"run_autograder wrote no results.json:\n{proc.stdout}\n{proc.stderr}"
        return json.loads(results.read_text()), proc, seconds

    return root, run


def test_run_autograder_grades_a_submission_like_gradescope(gradescope, stubs):
    root, run = gradescope
    for path in (ROOT / "solutions").glob("*.py"):  # uploaded as loose files, lesson 06 left as the stub
        shutil.copy(path, root / "submission")
    shutil.copy(stubs / "loss.py", root / "submission" / "loss.py")
    (root / "submission" / "__init__.py").unlink()  # often left out of an upload: taken from exercises/, with a note
    data, proc, seconds = run("03,06")
    check_spec(data)
    scores = {t["number"]: (t["score"], t["max_score"]) for t in data["tests"]}
    assert scores == {"03": (12.0, 12.0), "06": (0.0, 6.0)}, f"{scores}\n{proc.stdout}\n{proc.stderr}"
    assert data["score"] == 12.0
    assert "is not implemented yet" in data["tests"][1]["output"], data["tests"][1]["output"]
    assert "__init__.py was not in the submission" in data["output"], data["output"]
    assert "submission/loss.py" in data["tests"][1]["output"], "messages name the student's file"
    assert "/implementation" not in json.dumps(data), "no temporary folder in what students read"
    print(f"simulated Gradescope run: {seconds:.1f} s, scores {scores}")


def test_run_autograder_reports_a_submission_without_python_files(gradescope):
    root, run = gradescope
    (root / "submission" / "answers.txt").write_text("I did it")
    data, proc, _ = run("06")
    assert data["score"] == 0.0 and data["tests"] == []
    assert "could not grade this submission" in data["output"]
    assert "nothing to grade" in data["output"] and "expected the files of exercises/" in data["output"], data["output"]


def test_run_autograder_still_writes_results_when_the_grader_fails(gradescope):
    root, run = gradescope
    shutil.copytree(ROOT / "solutions", root / "submission" / "exercises")
    data, proc, _ = run("42")  # grader.py refuses an unknown lesson: results.json must carry its message
    assert data["score"] == 0.0 and "could not grade" in data["output"]
    assert "42" in data["output"], data["output"]


def test_run_autograder_writes_results_even_when_python_cannot_run(gradescope, tmp_path):
    root, run = gradescope
    data, proc, _ = run("06", python=str(tmp_path / "no-such-python"))
    assert data["score"] == 0.0 and data["tests"] == []
    assert "no-such-python" in data["output"] and "could not run" in data["output"], data["output"]


def test_run_writes_the_reason_when_a_setting_or_the_grader_fails(tmp_path, monkeypatch):
    results = tmp_path / "results.json"
    assert main([str(tmp_path), str(results), "--timeout", "soon"]) == 0
    data = json.loads(results.read_text())
    assert data["score"] == 0.0 and "could not grade" in data["output"] and "soon" in data["output"], data["output"]

    def broken_grade(*args, **options):
        raise RuntimeError("the grader fell over")

    monkeypatch.setattr("kata.grading.gradescope.grade", broken_grade)
    assert main([str(tmp_path), str(results)]) == 0
    data = json.loads(results.read_text())
    assert data["tests"] == [] and "RuntimeError: the grader fell over" in data["output"], data["output"]
