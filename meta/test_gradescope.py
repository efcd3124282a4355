"""Tests of the Gradescope output: results.json per Gradescope's specification, and the autograder zip run in a
simulated Gradescope folder layout (submission in, results.json out), without setup.sh: KATA_PYTHON points
run_autograder at this Python and KATA_LESSONS keeps it to two fast lessons. What students read (the outputs of
results.json) never holds the grader's diagnostics, which go to stdout (hidden from students by default)."""

import dataclasses
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
from kata.grading.gradescope import (
    FAILED,
    FAILURES_SHOWN,
    GRADED,
    MISCONFIGURED,
    VISIBILITIES,
    main,
    package,
    results_json,
    write_results,
)
from kata.grading.results import GradeResult, LessonResult, TestOutcome
from kata.sandbox import NotContained

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
    assert set(data) == {"score", "execution_time", "output", "output_format", "visibility", "stdout_visibility",
                         "tests"}
    assert data["output_format"] == "text", "plain text: Gradescope's default for it (simple_format) reads HTML"
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
    for required in ["setup.sh", "run_autograder", "grader.py", "manifest.toml", "pyproject.toml", "requirements.lock",
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


SETTINGS = ("KATA_LESSONS", "KATA_ISOLATED", "KATA_TIMEOUT", "KATA_VISIBILITY", "KATA_STDOUT_VISIBILITY")


@pytest.fixture
def autograder(tmp_path):
    """Makes simulated /autograder folders: make(folder name, **package options) unzips the package into
    source/ beside an empty submission/ and returns (root, run)."""
    def make(name="autograder", **options):
        root = tmp_path / name
        with zipfile.ZipFile(package(tmp_path / f"{name}.zip", **options)) as archive:
            archive.extractall(root / "source")
        (root / "submission").mkdir()

        def run(lessons="03,06", python=sys.executable, status=0, **settings):
            """Run run_autograder (KATA_LESSONS=lessons unless None, settings as more variables); it must exit with
            status (any, when None) and leave a results.json: (its JSON, the process, seconds)."""
            for script in ("setup.sh", "run_autograder"):
                syntax = subprocess.run(["bash", "-n", str(root / "source" / script)], capture_output=True, text=True)
                assert syntax.returncode == 0, f"{script} has a syntax error: {syntax.stderr}"
            # (the submissions graded here are trusted: they may run where the sandbox cannot confine them)
            env = {key: value for key, value in os.environ.items() if key not in SETTINGS}
            env.update({"AUTOGRADER_ROOT": str(root), "KATA_PYTHON": str(python), "KATA_ALLOW_UNCONFINED": "1",
                        "OPENBLAS_NUM_THREADS": "1", **({} if lessons is None else {"KATA_LESSONS": lessons}),
                        **settings})
            start = time.perf_counter()
            proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], cwd=root, env=env,
                                  capture_output=True, text=True, timeout=300)
            seconds = time.perf_counter() - start
            assert status is None or proc.returncode == status, \
                f"run_autograder exited {proc.returncode}, not {status}:\n{proc.stdout}\n{proc.stderr}"
            results = root / "results" / "results.json"
            assert results.is_file(), f"run_autograder wrote no results.json:\n{proc.stdout}\n{proc.stderr}"
            return json.loads(results.read_bytes()), proc, seconds

        return root, run

    return make


@pytest.fixture
def gradescope(autograder):
    """A simulated /autograder with the package's defaults: (root, run)."""
    return autograder()


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
    assert (data["visibility"], data["stdout_visibility"]) == ("visible", "hidden"), "the package's defaults"
    assert {t["visibility"] for t in data["tests"]} == {"visible"}
    assert "graded: 12/18 points" in proc.stdout, proc.stdout
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
    data, proc, _ = run("42", status=2)  # an unknown lesson: results.json must carry its message
    assert data["score"] == 0.0 and "could not grade" in data["output"]
    assert "42" in data["output"], data["output"]
    assert "The autograder is misconfigured" in data["output"] and "KATA_LESSONS" in data["output"], data["output"]


def test_run_autograder_writes_results_even_when_python_cannot_run(gradescope, tmp_path):
    root, run = gradescope
    data, proc, _ = run("06", python=str(tmp_path / "no-such-python"), status=1)
    assert data["score"] == 0.0 and data["tests"] == []
    assert "could not run" in data["output"] and "The autograder failed" in data["output"], data["output"]
    assert "no-such-python" in proc.stdout, "which Python could not run: for the instructor, in stdout"
    assert "no-such-python" not in data["output"], "a path of the grading machine is not for students"


def test_run_writes_the_reason_when_a_setting_or_the_grader_fails(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results.json"
    assert main([str(tmp_path), str(results), "--timeout", "soon"]) == MISCONFIGURED
    data = json.loads(results.read_text())
    assert data["score"] == 0.0 and "could not grade" in data["output"] and "soon" in data["output"], data["output"]
    assert "misconfigured" in data["output"] and "KATA_TIMEOUT" in data["output"], data["output"]

    def broken_grade(*args, **options):
        raise RuntimeError("the grader fell over")

    monkeypatch.setattr("kata.grading.gradescope.grade", broken_grade)
    capsys.readouterr()
    assert main([str(tmp_path), str(results)]) == FAILED
    data, printed = json.loads(results.read_text()), capsys.readouterr().out
    assert data["tests"] == [] and "The autograder failed" in data["output"], data["output"]
    assert "RuntimeError: the grader fell over" in printed and "Traceback" in printed, "the traceback is in stdout"
    assert "fell over" not in data["output"] and "Traceback" not in data["output"], "and not where students read"


# ---------------------------------------------------------------- who sees what

def test_results_carry_the_chosen_visibilities_and_default_to_a_hidden_stdout():
    data = results_json(synthetic_result())
    assert (data["visibility"], data["stdout_visibility"]) == ("visible", "hidden"), "the safe defaults"
    for visibility, stdout in (("after_due_date", "after_published"), ("hidden", "visible")):
        data = results_json(synthetic_result(), visibility, stdout)
        check_spec(data)
        assert (data["visibility"], data["stdout_visibility"]) == (visibility, stdout)
        assert [test["visibility"] for test in data["tests"]] == [visibility] * 2, "each lesson as chosen"
    assert set(VISIBILITIES) == VISIBILITY, "Gradescope's four values"


def test_package_bakes_its_choices_into_run_autograder_and_the_environment_overrides_them(autograder):
    script = run_autograder_of(autograder()[0])
    assert "${KATA_VISIBILITY:-visible}" in script and "${KATA_STDOUT_VISIBILITY:-hidden}" in script, "the defaults"
    root, run = autograder("chosen", lesson_ids=["6"], isolated=True, timeout=30, visibility="after_published",
                           stdout_visibility="after_due_date")
    (root / "submission" / "answers.txt").write_text("no Python here")  # nothing to grade: no test process runs
    data, proc, _ = run(lessons=None)
    assert (data["visibility"], data["stdout_visibility"]) == ("after_published", "after_due_date"), data
    assert "lessons 06, isolated yes, 30 s per lesson, visibility after_published, stdout visibility after_due_date" \
        in proc.stdout, proc.stdout
    assert "nothing to grade" in data["output"], "the student's own problem: they read it"
    data, proc, _ = run(lessons="03", KATA_ISOLATED="0", KATA_TIMEOUT="45", KATA_VISIBILITY="hidden",
                        KATA_STDOUT_VISIBILITY="visible")
    assert (data["visibility"], data["stdout_visibility"]) == ("hidden", "visible"), data
    assert "lessons 03, isolated no, 45 s per lesson, visibility hidden, stdout visibility visible" in proc.stdout


def run_autograder_of(root):
    return (root / "source" / "run_autograder").read_text()


def student_text(data):
    """Everything of a results.json that a student may read: the outputs and the lessons' names."""
    return "\n".join([data["output"], *(f"{t['name']}\n{t['output']}" for t in data["tests"])])


def test_the_graders_diagnostics_go_to_stdout_never_where_students_read(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results.json"
    note = "sandbox without namespaces here (KATA_SANDBOX_NAMESPACES=0; a uid of its own)"
    graded = dataclasses.replace(synthetic_result(), notes=["loss.py is not a plain file: ignored"],
                                 machine_notes=(note,))
    monkeypatch.setattr("kata.grading.gradescope.grade", lambda *args, **options: graded)
    assert main([str(tmp_path), str(results)]) == GRADED
    data, printed = json.loads(results.read_text()), capsys.readouterr().out
    check_spec(data)
    assert "sandbox" not in student_text(data) and note in printed, (data, printed)
    assert "loss.py is not a plain file: ignored" in data["output"], "a note on the submission is the student's"
    assert graded.all_notes == graded.to_json()["notes"] == ["loss.py is not a plain file: ignored", note]

    refusal = "refusing to run the submission's code where it cannot be contained: chmod o+rx /opt/secret/python"
    monkeypatch.setattr("kata.grading.gradescope.grade", mock_raising(NotContained(refusal)))
    assert main([str(tmp_path), str(results), "--stdout-visibility", "after_due_date"]) == FAILED
    data, printed = json.loads(results.read_text()), capsys.readouterr().out
    check_spec(data)
    assert refusal in printed and "/opt/secret" not in student_text(data) and "refusing" not in data["output"]
    assert "cannot safely run submitted code" in data["output"] and "nothing about your work" in data["output"]
    assert data["stdout_visibility"] == "after_due_date", "a failure's results.json carries the choices too"


def mock_raising(error):
    def grade(*args, **options):
        raise error
    return grade


def test_a_sandbox_without_namespaces_is_told_to_the_instructor_only(gradescope):
    """The real thing, with namespaces turned off: graded anyway (trusted code), with a note on what the sandbox
    could not do; or, not allowed to run unconfined, contained otherwise (root) or refused. Stdout says it, never
    what students read."""
    root, run = gradescope
    shutil.copytree(ROOT / "solutions", root / "submission" / "exercises")
    data, proc, _ = run("06", KATA_SANDBOX_NAMESPACES="0", KATA_ALLOW_UNCONFINED="1")
    assert data["score"] == 6.0 and "note: sandbox without namespaces here" in proc.stdout, (proc.stdout, data)
    assert "namespaces" not in student_text(data), data
    data, proc, _ = run("06", status=None, KATA_SANDBOX_NAMESPACES="0", KATA_ALLOW_UNCONFINED="0")
    if proc.returncode == FAILED:
        assert "refusing to run" in proc.stdout and "cannot safely run" in data["output"], (proc.stdout, data)
    else:  # root, and a uid of its own can run this Python: contained by file permissions
        assert proc.returncode == GRADED and data["score"] == 6.0 and os.geteuid() == 0, (proc.stdout, data)
        assert "note: sandbox without namespaces here" in proc.stdout, proc.stdout
    assert "namespaces" not in student_text(data) and "refusing" not in student_text(data), data


# ---------------------------------------------------------------- a results.json whatever happens

NASTY = 'quote " back \\ new\nline é'  # what a path or a message may hold, and a shell's echo would not escape


def test_the_fallback_results_are_valid_json_whatever_the_paths_hold(autograder, tmp_path):
    root, run = autograder(f"root {NASTY}")
    python = tmp_path / f"python {NASTY}"  # no such file: Python cannot run
    data, proc, _ = run("06", python=python, status=FAILED)  # (run() reads the file with json.loads)
    assert data["score"] == 0.0 and data["tests"] == [] and "could not run" in data["output"], data
    assert str(python) in proc.stdout, "which Python: in stdout"
    assert NASTY not in student_text(data)
    shutil.rmtree(root / "source")  # no source folder: run_autograder run from elsewhere
    script = tmp_path / "run_autograder"
    with zipfile.ZipFile(tmp_path / f"root {NASTY}.zip") as archive:
        archive.extract("run_autograder", tmp_path)
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), KATA_PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == FAILED and "no folder" in proc.stdout, (proc.stdout, proc.stderr)
    assert json.loads((root / "results" / "results.json").read_bytes())["output"].startswith("The autograder failed")


def test_messages_with_quotes_backslashes_newlines_are_escaped_in_the_json(autograder):
    root, run = autograder(f"root {NASTY}")  # a real Python run from a nasty folder, about a nasty setting
    data, proc, _ = run(f"4{NASTY}", status=MISCONFIGURED)
    assert f"unknown lesson 4{NASTY.lower()}" in data["output"], data["output"]


# ---------------------------------------------------------------- bad settings fail loudly

BAD_TIMEOUTS = ("soon", "0", "-5", "inf", "nan", "-inf", "")


@pytest.mark.parametrize("options", [{"timeout": t} for t in BAD_TIMEOUTS[:-1]] + [
    {"timeout": 0}, {"timeout": float("nan")}, {"timeout": float("inf")}, {"lesson_ids": ["42"]},
    {"lesson_ids": "06,x"}, {"visibility": "public"}, {"visibility": "Visible"}, {"stdout_visibility": "never"},
    {"stdout_visibility": None}])
def test_package_refuses_a_bad_setting(tmp_path, options):
    with pytest.raises(ValueError) as error:
        package(tmp_path / "autograder.zip", **options)
    assert "\n" not in str(error.value) and not (tmp_path / "autograder.zip").exists()


@pytest.mark.parametrize("option, value", [("--timeout", t) for t in BAD_TIMEOUTS] + [
    ("--lesson", "42"), ("--visibility", "public"), ("--stdout-visibility", "never")])
def test_package_gradescope_exits_2_with_one_line_for_a_bad_option(tmp_path, capsys, option, value):
    from grader import main as grader_main
    out = tmp_path / "autograder.zip"
    try:
        status = grader_main(["package-gradescope", "--out", str(out), f"{option}={value}"])
    except SystemExit as stop:  # argparse's own refusal
        status = stop.code
    printed = capsys.readouterr()
    assert status == 2 and not out.exists() and not printed.out, (status, printed)
    assert len(printed.err.strip().splitlines()) == 1 and "Traceback" not in printed.err, printed.err
    assert value in printed.err or option in printed.err, printed.err


@pytest.mark.parametrize("option, value, variable", [("--timeout", t, "KATA_TIMEOUT") for t in BAD_TIMEOUTS[:-1]] + [
    ("--lesson", "42", "KATA_LESSONS"), ("--visibility", "public", "KATA_VISIBILITY"),
    ("--stdout-visibility", "", "KATA_STDOUT_VISIBILITY"), ("--isolated", "yes", "KATA_ISOLATED"),
    ("--allow-unconfined", "true", "KATA_ALLOW_UNCONFINED")])
def test_a_bad_setting_at_run_time_says_the_autograder_is_misconfigured(tmp_path, capsys, option, value, variable):
    results = tmp_path / "results.json"
    assert main([str(tmp_path / "submission"), str(results), f"{option}={value}"]) == MISCONFIGURED
    data = json.loads(results.read_text())
    check_spec(data)
    assert data["output"].startswith("The autograder is misconfigured") and variable in data["output"], data["output"]
    assert data["score"] == 0.0 and data["tests"] == [] and variable in capsys.readouterr().out


def test_run_autograder_names_every_bad_variable_and_exits_2(gradescope):
    root, run = gradescope
    data, proc, _ = run("06", status=MISCONFIGURED, KATA_TIMEOUT="inf", KATA_VISIBILITY="public")
    assert data["output"].startswith("The autograder is misconfigured"), data["output"]
    assert "KATA_TIMEOUT" in data["output"] and "KATA_VISIBILITY" in data["output"], data["output"]
    assert "KATA_LESSONS" not in data["output"] and "misconfigured" in proc.stdout


def test_what_the_submission_prints_is_kept_for_the_instructor_only(tmp_path, capsys):
    """A sandboxed submission's print output reaches run_autograder's stdout (hidden by default), never results.json,
    and under --isolated only the runs of its own code print there (never the run beside the reference)."""
    from meta.helpers import insert_first
    folder = shutil.copytree(ROOT / "solutions", tmp_path / "submission",
                             ignore=shutil.ignore_patterns("__pycache__"))
    marker = "PRINTED-BY-THE-SUBMISSION"
    (folder / "model.py").write_text((folder / "model.py").read_text() + "\n# MINE\n")  # the reference's is not
    insert_first(folder / "loss.py", "CrossEntropyLoss.backward",
                 f"print('{marker}', 'own' if '# MINE' in open(__file__.rsplit('/', 1)[0] + '/model.py').read() "
                 f"else 'beside')")
    results = tmp_path / "results.json"
    assert main([str(folder), str(results), "--lesson", "06", "--isolated"]) == GRADED
    data, printed = json.loads(results.read_text()), capsys.readouterr().out
    assert data["score"] == 6.0
    assert f"{marker} own" in printed, printed
    assert f"{marker} beside" not in printed, "the run beside the reference printed where a student may read"
    assert marker not in results.read_text()
