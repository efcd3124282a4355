"""Tests of the grader (kata/grading/ and grader.py): scores, broken submissions, timeouts, zips, the CLI."""

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile

import pytest

from kata.course.manifest import lessons
from kata.course.repository import ROOT
from kata.grading import grade as grading
from kata.grading.results import STATUSES
from kata.grading.submission import SubmissionError
from kata.sandbox import NotContained
from meta.helpers import insert_first, write_stubs

pytestmark = pytest.mark.meta



def grade(*args, **options):
    """The grader's JSON (CONTRACT.md section 6.1) for grading.grade's arguments. The submissions graded here are
    the reference and honest mistakes: they may run where the sandbox cannot confine them (the attacks may not:
    meta/test_adversarial.py)."""
    return grading.grade(*args, **{"allow_unconfined": True, **options}).to_json()


def copy_of(name, target):
    """A copy of solutions/, or of the pristine stubs ("exercises"), at target."""
    if name == "exercises":
        return write_stubs(target)
    shutil.copytree(ROOT / name, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def by_id(result):
    return {entry["id"]: entry for entry in result["lessons"]}


def statuses(entry):
    return {test["status"] for test in entry["tests"]}


def cli(*args, timeout=120, root=ROOT):
    return subprocess.run([sys.executable, str(root / "grader.py"), *args], cwd=root, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def stubs_run(tmp_path_factory, student_copy):
    """`python grader.py --json FILE` in a student's fresh copy of the repository, as a student runs it first:
    (process, result)."""
    out = tmp_path_factory.mktemp("cli") / "result.json"
    proc = cli(f"--json={out}", root=student_copy)
    assert proc.returncode == 0, f"grader.py exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc, json.loads(out.read_text())


def test_the_reference_gets_full_marks():
    result = grade("solutions", ["06"])
    (entry,) = result["lessons"]
    assert entry["id"] == "06" and entry["total"] > 0 and entry["passed"] == entry["total"], entry
    assert result["score"] == result["max_score"] == entry["max_score"] == lessons()[6].points
    assert entry["note"] == "" and statuses(entry) == {"passed"}


def test_the_reference_sandboxed_gets_full_marks_on_every_lesson(tmp_path):
    """Every test of every lesson reaches a sandboxed child through the same plain-data protocol (callbacks,
    arrays shared and updated in place, training loops): a right submission must lose nothing to it."""
    result = grade(str(copy_of("solutions", tmp_path / "submission")))
    assert result["sandbox"] is True
    for entry in result["lessons"]:
        failed = [(t["name"], t["message"]) for t in entry["tests"] if t["status"] != "passed"]
        assert entry["passed"] == entry["total"] > 0 and not failed, (entry["id"], entry["note"], failed[:3])
    assert result["score"] == result["max_score"] == sum(item.points for item in lessons())


def test_the_stubs_score_zero_on_every_lesson(stubs_run):
    _, result = stubs_run
    assert [e["id"] for e in result["lessons"]] == [item.id for item in lessons()]
    scores = {e["id"]: (e["score"], e["passed"]) for e in result["lessons"]}
    assert all(score == (0, 0) for score in scores.values()), scores
    assert result["score"] == 0 and result["max_score"] == sum(item.points for item in lessons())


def test_the_cli_shows_the_table_and_the_single_next_step(stubs_run):
    proc, _ = stubs_run
    out = proc.stdout
    for item in lessons():
        assert f"{item.id}      {item.title}" in out, f"lesson {item.id} missing from the table:\n{out}"
    step = out[out.index("Next step"):]
    for expected in ("exercises/data.py", "implement tokenize", "lessons/00_task_and_data.md", "Tokens and ids",
                     "python grader.py --lesson 00"):
        assert expected in step, f"the next step does not say {expected!r}:\n{step}"
    assert "is not implemented yet" in out, "the first failing test's message is not shown"
    assert "Traceback" not in out + proc.stderr


def test_the_student_whose_every_lesson_passes_is_told_what_to_type_next():
    from kata.course.repository import python
    from kata.grading.report import report
    from kata.grading.results import GradeResult, LessonResult, TestOutcome

    done = tuple(LessonResult(i.id, i.title, i.points, (TestOutcome("t", "passed"),)) for i in lessons())
    text = report(GradeResult("exercises", False, False, done), "exercises", True)
    last = text.splitlines()[-1]
    assert last == f"Next: train your own model with `{python()} train.py`.", last
    assert "{" not in text and "}" not in text, f"a placeholder was printed as it is:\n{text}"
    some = report(GradeResult("exercises", False, False, done[:3]), "exercises", True)
    assert some.splitlines()[-1].endswith(f"Run `{python()} grader.py` to see what comes next."), some


def test_the_json_has_the_structure_of_contract_section_5(stubs_run):
    _, result = stubs_run
    assert isinstance(result["implementation"], str)
    assert isinstance(result["score"], float) and isinstance(result["max_score"], float)
    for entry in result["lessons"]:
        assert {"id", "title", "score", "max_score", "tests"} <= set(entry)
        assert isinstance(entry["id"], str) and len(entry["id"]) == 2 and isinstance(entry["title"], str)
        assert isinstance(entry["score"], float) and isinstance(entry["max_score"], float)
        assert len(entry["tests"]) == entry["total"] > 0
        for test in entry["tests"]:
            assert set(test) == {"name", "status", "message"}, test
            assert test["status"] in set(STATUSES) and isinstance(test["message"], str)
            assert test["status"] == "passed" or test["message"], f"a failure without a message: {test}"
            assert len(test["message"]) <= 400, f"a message of {len(test['message'])} characters: {test['name']}"


def test_lesson_04_with_its_reference_file_passes_isolated_and_names_02_and_03_otherwise(tmp_path):
    folder = copy_of("exercises", tmp_path / "exercises")
    for name in lessons()[4].files:
        shutil.copy(ROOT / "solutions" / name, folder / name)
    alone = by_id(grade(str(folder), ["04"], isolated=True))["04"]
    assert alone["score"] == alone["max_score"] and alone["passed"] == alone["total"], alone["note"]
    together = by_id(grade(str(folder), ["04"]))["04"]
    assert together["score"] < together["max_score"]
    assert "02" in together["note"] and "03" in together["note"] and "--isolated" in together["note"], together["note"]


@pytest.mark.parametrize("appended, error", [("def broken(:\n    pass\n", "SyntaxError"),
                                             ("SCALE = 1 / 0\n", "ZeroDivisionError")],
                         ids=["syntax-error", "exception-at-import"])
def test_a_broken_file_zeroes_its_lesson_with_file_and_line_and_the_others_are_graded(tmp_path, appended, error):
    folder = copy_of("solutions", tmp_path / "submission")
    loss = folder / "loss.py"
    line = len(loss.read_text().splitlines()) + 1
    loss.write_text(loss.read_text() + appended)
    result = by_id(grade(str(folder), ["03", "06"]))
    assert result["06"]["score"] == 0 and statuses(result["06"]) == {"error"}
    message = result["06"]["tests"][0]["message"]
    assert f"loss.py line {line}" in message and error in message, message
    assert result["03"]["score"] == result["03"]["max_score"], result["03"]["note"]


def test_an_infinite_loop_times_out_and_grading_finishes(tmp_path):
    folder = copy_of("solutions", tmp_path / "submission")
    line = insert_first(folder / "loss.py", "CrossEntropyLoss.backward", "while True: pass")
    start = time.monotonic()
    entry = by_id(grade(str(folder), ["06"], timeout=4))["06"]
    assert time.monotonic() - start < 4 + 15, "grading did not stop at the lesson's timeout"
    hung = [t for t in entry["tests"] if t["status"] == "timeout"]
    assert hung and f"loss.py line {line}" in hung[0]["message"], hung[:1]
    assert 0 < entry["passed"] < entry["total"], "the forward tests (no loop) should still pass"
    assert "in time" in entry["note"]
    # six tests loop for 1 s each (a quarter of the lesson's 4 s): no test starts once the 4 s are up
    assert "not run: the lesson's 4 s ran out" in entry["note"], entry["note"]
    assert any(t["message"].startswith("not run: lesson 06 used up its 4 s") for t in entry["tests"])


def test_the_same_submission_gets_the_same_score(tmp_path):
    folder = copy_of("solutions", tmp_path / "submission")
    # wrong on some random draws only: the grader must seed every test the same way
    insert_first(folder / "loss.py", "CrossEntropyLoss.forward",
                 "if __import__('numpy').random.rand() < 0.3: raise ValueError('an unlucky draw')")
    first, second = (by_id(grade(str(folder), ["06"]))["06"] for _ in range(2))
    assert 0 < first["passed"] < first["total"], "the random failure should hit some tests and not others"
    assert [t["status"] for t in first["tests"]] == [t["status"] for t in second["tests"]]
    assert first["score"] == second["score"]


def test_a_zip_submission_is_graded_and_a_bad_one_is_refused(tmp_path):
    archive = tmp_path / "alice.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted((ROOT / "solutions").glob("*.py")):
            handle.write(path, f"alice/exercises/{path.name}")
    result = grade(str(archive), ["06"])
    assert result["score"] == result["max_score"] == lessons()[6].points
    hostile = tmp_path / "hostile.zip"
    with zipfile.ZipFile(hostile, "w") as handle:
        handle.writestr("../outside.py", "x = 1\n")
    with pytest.raises(SubmissionError, match="outside the archive"):
        grade(str(hostile), ["06"])
    with pytest.raises(SubmissionError, match="no such folder or zip"):
        grade(str(tmp_path / "missing"), ["06"])


def test_bad_usage_exits_2_with_a_message_and_no_traceback(tmp_path):
    for args, expected in (([f"--impl={tmp_path / 'missing'}"], "no such folder or zip"),
                           (["--lesson", "16"], "unknown lesson 16")):
        proc = cli(*args)
        assert proc.returncode == 2 and expected in proc.stderr, (args, proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_grade_opens_what_batch_opens_names_it_and_notes_what_it_added(tmp_path):
    upload = tmp_path / "upload"  # an unextracted zip of loose files, without __init__.py, lesson 06's file broken
    upload.mkdir()
    loss = (ROOT / "solutions" / "loss.py").read_text()
    with zipfile.ZipFile(upload / "work.zip", "w") as handle:
        for path in sorted((ROOT / "solutions").glob("*.py")):
            if path.name not in ("__init__.py", "loss.py"):
                handle.write(path, path.name)
        handle.writestr("loss.py", loss + "def broken(:\n")
    result = grade(str(upload), ["06"], name="alice")
    assert result["notes"] == ["__init__.py was not in the submission: the one of exercises/ was used."]
    message = result["lessons"][0]["tests"][0]["message"]
    assert message.startswith(f"alice/loss.py line {len(loss.splitlines()) + 1}: SyntaxError"), message
    assert str(tmp_path) not in json.dumps(result["lessons"]) and "/implementation" not in json.dumps(result)


def test_an_ambiguous_or_unsafe_submission_is_refused_before_grading(tmp_path):
    for version in ("v1", "v2"):
        copy_of("solutions", tmp_path / "two" / version)
    with pytest.raises(SubmissionError, match=r"several implementations \(v1, v2\)"):
        grade(str(tmp_path / "two"), ["06"])
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as handle:
        info = zipfile.ZipInfo("exercises/loss.py")
        info.external_attr = 0o120777 << 16
        handle.writestr(info, "/etc/passwd")
    with pytest.raises(SubmissionError, match="symbolic link"):
        grade(str(link), ["06"])


def test_without_namespaces_the_grader_refuses_what_it_cannot_confine_unless_allowed(tmp_path, monkeypatch):
    """Where namespaces cannot be made (a container that forbids them), the child runs as a uid of its own with the
    reference closed to it, as root, where that uid can run this Python; else (it would stay root, or keep the
    grader's own user) the grading stops with one line saying why and how to fix it, and nothing of the
    submission runs, unless --allow-unconfined."""
    folder = copy_of("solutions", tmp_path / "submission")
    monkeypatch.setenv("KATA_SANDBOX_NAMESPACES", "0")  # what a container that forbids them leaves
    proc = cli(f"--impl={folder}", "--lesson", "06")
    if proc.returncode == 2:
        message = proc.stderr.strip().splitlines()[-1]  # after "Grading ..."
        assert message.startswith("grader.py: refusing to run the submission's code where it cannot be contained")
        assert "--allow-unconfined" in message and "Traceback" not in proc.stderr and not proc.stdout, proc.stderr
        with pytest.raises(NotContained, match="cannot be contained"):
            grading.grade(str(folder), ["06"])
    else:  # root, and a uid of its own can run this Python: contained by file permissions
        assert proc.returncode == 0 and os.geteuid() == 0, proc.stderr
        assert "(a uid of its own)" in proc.stdout and "6/6" in proc.stdout, proc.stdout
    result = grade(str(folder), ["06"])  # allowed
    assert result["sandbox"] is True and result["score"] == 6.0, result["lessons"][0]["note"]
    if os.geteuid() == 0:
        assert any("sandbox without namespaces" in note and "KATA_SANDBOX_NAMESPACES=0" in note
                   for note in result["notes"]), result["notes"]


def test_a_sandboxed_failure_that_quotes_the_implementations_error_names_its_place_first(tmp_path):
    """pytest-check collects a stub's NotImplementedError into an AssertionError of its own: the report still
    starts with the stub's file and line (a field of the child's error), never with '(raised at ...)' inside."""
    entry = grade(str(copy_of("exercises", tmp_path / "stubs")), ["04"], isolated=True, name="stubs")["lessons"][0]
    messages = [test["message"] for test in entry["tests"]]
    assert all(message.startswith("stubs/block.py:") for message in messages), messages
    assert not [message for message in messages if "raised at" in message], messages


def test_a_file_python_cannot_parse_is_reported_and_the_grader_does_not_crash(tmp_path):
    """One expression of 200,000 terms: Python's parser gives up (RecursionError). The file's lessons score 0
    naming it, the others are graded, and the CLI writes its JSON."""
    folder = copy_of("solutions", tmp_path / "submission")
    (folder / "loss.py").write_text((folder / "loss.py").read_text() + "\nX = " + "+".join(["1"] * 200_000) + "\n")
    out = tmp_path / "result.json"
    proc = cli(f"--impl={folder}", "--lesson", "03,06", f"--json={out}", "--allow-unconfined")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    result = by_id(json.loads(out.read_text()))
    message = result["06"]["tests"][0]["message"]
    assert result["06"]["score"] == 0 and "loss.py" in message and "RecursionError" in message, message
    assert result["03"]["score"] == result["03"]["max_score"], result["03"]["note"]
